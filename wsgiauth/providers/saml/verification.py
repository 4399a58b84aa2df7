"""Our own refusals of a SAML response, around pysaml2's signature and condition checks.

pysaml2 checks signatures, ``InResponseTo``, destination, recipient, audience and
validity. Before it, :func:`check_structure` refuses what signature checking alone
lets through (comments, signature wrapping, encrypted assertions), and
:func:`named_issuers` reads the Issuers named, unverified, for pysaml2's certificate
lookup when ``idpIssuer`` is not set (a name pysaml2 reads otherwise finds no
certificate: refused); after it, :func:`check_binding` checks the binding to this flow
again on the assertion that is read, so that a gap in pysaml2 is not a gap in wsgiauth.
Each refusal is an ``AuthenticationError`` that says which check failed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import TYPE_CHECKING
from typing import Any
from typing import cast

from ...oauth import AuthenticationError
from ...oauth import InputError

if TYPE_CHECKING:
    from xml.etree.ElementTree import Element

    from webob import Request

__all__ = [
    "check_binding",
    "check_structure",
    "named_issuers",
    "posted_response",
    "refusal_reason",
    "request_id",
]

_ASSERTION_NS = "urn:oasis:names:tc:SAML:2.0:assertion"
_PROTOCOL_NS = "urn:oasis:names:tc:SAML:2.0:protocol"
_BEARER = "urn:oasis:names:tc:SAML:2.0:cm:bearer"


def request_id(nonce: str) -> str:
    """The ``AuthnRequest`` ID of the flow whose ``state`` carries ``nonce``.

    The ``InResponseTo`` of the answer must be it: a response made for another flow
    (another browser's, or the attacker's own) cannot finish this one.
    """
    return "_" + hashlib.sha256(b"wsgiauth.saml\x00" + nonce.encode("utf-8")).hexdigest()[:40]


def posted_response(request: Request) -> bytes:
    """The XML of the ``SAMLResponse`` form field (HTTP-POST binding)."""
    if request.method != "POST":
        raise InputError("Authentication failed, the SAML response must be POSTed")
    value = request.POST.get("SAMLResponse")
    if not isinstance(value, str) or not value:
        raise InputError("Authentication failed, the callback has no SAMLResponse")
    try:
        return base64.b64decode(value, validate=False)
    except (binascii.Error, ValueError):
        raise InputError("Authentication failed, the SAMLResponse is not base64") from None


def check_structure(xml: bytes) -> Element:
    """Refusals made before any signature is checked, on the document as sent; its root.

    - A comment: exclusive canonicalisation drops comments, so
      ``user@example.com<!---->.evil.com`` keeps the signature of
      ``user@example.com.evil.com`` while a parser that reads the first text node
      sees another user.
    - Anything but one ``Assertion``, a child of the ``Response``: XML signature
      wrapping hides a forged assertion next to (or around) the signed one, hoping
      the signature is checked on one and the profile read from the other.
    - An encrypted assertion: not supported, so never half-read.
    """
    from xml.etree.ElementTree import Comment  # noqa: PLC0415
    from xml.etree.ElementTree import TreeBuilder  # noqa: PLC0415

    from defusedxml.ElementTree import DefusedXMLParser  # type: ignore[import-untyped]  # noqa: PLC0415

    # Parsed, not searched for "<!--": the document may be UTF-16, or anything XML allows.
    parser = DefusedXMLParser(target=TreeBuilder(insert_comments=True))
    try:
        parser.feed(xml)
        root = parser.close()
    except Exception as error:  # defusedxml refuses DTDs and entities too
        raise AuthenticationError("SAML response refused: it is not valid XML") from error
    if any(node.tag is Comment for node in root.iter()):
        raise AuthenticationError("SAML response refused: it contains an XML comment")
    if root.tag != f"{{{_PROTOCOL_NS}}}Response":
        raise AuthenticationError("SAML response refused: it is not a Response")
    assertions = list(root.iter(f"{{{_ASSERTION_NS}}}Assertion"))
    direct = root.findall(f"{{{_ASSERTION_NS}}}Assertion")
    if len(assertions) != 1 or len(direct) != 1:
        raise AuthenticationError("SAML response refused: it must hold exactly one assertion")
    if root.find(f".//{{{_ASSERTION_NS}}}EncryptedAssertion") is not None:
        raise AuthenticationError("SAML response refused: encrypted assertions are not supported")
    return cast("Element", root)


def named_issuers(root: Element) -> tuple[str, ...]:
    """The ``Issuer`` values of the ``Response`` and of its one ``Assertion``, unverified.

    Read before any signature is checked, as pysaml2 reads them (stripped), for what
    needs the IdP's entity ID when ``idpIssuer`` is not set: pysaml2 finds the signing
    certificate by it. Nothing is trusted for being named here.
    """
    issuer = f"{{{_ASSERTION_NS}}}Issuer"
    nodes = [root.find(issuer), root.find(f"{{{_ASSERTION_NS}}}Assertion/{issuer}")]
    names = [(node.text or "").strip() for node in nodes if node is not None]
    return tuple(dict.fromkeys(name for name in names if name))


def check_binding(
    response: Any, assertion: Any, expected: str, callback_url: str, audience: str
) -> None:
    """What pysaml2 checks too, checked here again on the assertion that is read.

    ``InResponseTo`` names this flow's request; the response goes to our callback; the
    bearer confirmation names it as recipient; the audience is ours.
    """
    if response.in_response_to != expected:
        raise AuthenticationError("SAML response refused: InResponseTo is not this sign-in")
    destination = response.response.destination
    if destination is not None and destination != callback_url:
        raise AuthenticationError("SAML response refused: wrong Destination")
    if destination is None and response.response.signature is not None:
        # SAML core §3.2.2: a signed message names where it goes, or it can go anywhere.
        raise AuthenticationError("SAML response refused: a signed response has no Destination")
    confirmations = [
        confirmation.subject_confirmation_data
        for confirmation in assertion.subject.subject_confirmation
        if confirmation.method == _BEARER and confirmation.subject_confirmation_data is not None
    ]
    if not any(data.recipient == callback_url for data in confirmations):
        raise AuthenticationError("SAML response refused: wrong Recipient")
    if any(data.in_response_to not in (None, expected) for data in confirmations):
        raise AuthenticationError("SAML response refused: InResponseTo is not this sign-in")
    restrictions = assertion.conditions.audience_restriction if assertion.conditions else []
    audiences = [
        item.text.strip()
        for restriction in restrictions
        for item in restriction.audience
        if item.text
    ]
    if audience not in audiences:
        raise AuthenticationError("SAML response refused: wrong Audience")


def refusal_reason(error: Exception) -> str:
    """A short reason for a pysaml2 refusal (its class name, and its message when short)."""
    message = str(error).splitlines()[0] if str(error) else ""
    name = type(error).__name__
    return f"{name}: {message}" if message and len(message) <= 160 else name
