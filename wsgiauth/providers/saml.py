"""SAML 2.0 sign-in (Backstage's first ``saml`` provider), on pysaml2 and ``xmlsec1``.

Read against ``@backstage/plugin-auth-backend`` 0.19.4 (``SamlAuthProvider`` over
passport-saml): config at ``auth.providers.saml`` with no environment level;
``entryPoint``, ``issuer`` (our SP entity id), ``cert`` of the IdP, ``audience``,
``privateKey``, ``signatureAlgorithm``, ``digestAlgorithm``, ``acceptedClockSkewMs``,
``identifierFormat`` and, from its successor, ``wantAuthnResponseSigned`` and
``wantAssertionsSigned`` (both default ``true``); the profile's ``email`` and
``displayName``; the result ``{fullProfile: {nameID, ...}}``; the resolver
``nameIdMatchingUserEntityName``. Beyond Backstage: ``metadataUrl`` instead of
``cert``, ``idpIssuer`` (the IdP entity id, required with ``cert``), ``publicCert``
(the SP certificate for the metadata), attribute names, and the popup wire of the
OAuth providers (flow cookie, allowed origins, ``/refresh`` from a sealed session
cookie, ``/logout``).

The flow: ``start`` sends an ``AuthnRequest`` (HTTP-Redirect binding, signed when
``privateKey`` is set) whose ID is derived from the flow nonce, with the ``state`` as
``RelayState``. The IdP POSTs the ``Response`` to ``handler/frame``; the route handlers
check the flow cookie against the ``RelayState``, then :meth:`SamlAuthenticator.authenticate`
refuses an XML comment anywhere, more than one assertion, and hands the rest to
pysaml2 (signatures, ``InResponseTo``, destination, recipient, audience, validity with
the skew), checks the binding to this flow again itself and remembers the assertion
ID until it expires (:class:`~wsgiauth.oauth.ReplayStore`, the configured database).
pysaml2 is imported only when a ``saml`` provider is configured (``wsgiauth[saml]``).
"""

from __future__ import annotations

import atexit
import base64
import binascii
import hashlib
import json
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from collections.abc import Mapping
from typing import TYPE_CHECKING
from typing import Any
from xml.sax.saxutils import quoteattr

from webob import Response

from ..oauth import AuthenticationError
from ..oauth import InputError
from ..oauth import MemoryReplayStore
from ..oauth import OAuthAuthenticatorResult
from ..oauth import OAuthSession
from ..oauth import OAuthStartResponse
from ..oauth import ProfileInfo
from ..oauth import ProviderModule
from ..oauth import ServiceUnavailableError
from ..oauth import create_oauth_provider_factory
from ..oauth import read_absolute_url
from ..sign_in import create_sign_in_resolver_factory

if TYPE_CHECKING:
    from typing import Self

    from webob import Request

    from ..oauth import AuthProviderFactoryOptions
    from ..oauth import Config
    from ..oauth import HttpClient
    from ..oauth import OAuthAuthenticateInput
    from ..oauth import OAuthRefreshInput
    from ..oauth import OAuthStartInput
    from ..oauth import ReplayStore
    from ..sign_in import AuthResolverContext
    from ..sign_in import BackstageSignInResult
    from ..sign_in import SignInInfo
    from ..sign_in import SignInResolver

__all__ = [
    "CONFIG_KEYS",
    "SamlAuthenticator",
    "module",
    "name_id_matching_user_entity_name",
    "request_id",
]

CONFIG_KEYS = frozenset(
    {
        "entryPoint",
        "issuer",
        "cert",
        "metadataUrl",
        "idpIssuer",
        "audience",
        "privateKey",
        "publicCert",
        "wantAuthnResponseSigned",
        "wantAssertionsSigned",
        "acceptedClockSkewMs",
        "signatureAlgorithm",
        "digestAlgorithm",
        "identifierFormat",
        "emailAttribute",
        "displayNameAttribute",
        "groupsAttribute",
    }
)

_ASSERTION_NS = "urn:oasis:names:tc:SAML:2.0:assertion"
_PROTOCOL_NS = "urn:oasis:names:tc:SAML:2.0:protocol"
_DSIG_NS = "http://www.w3.org/2000/09/xmldsig#"
_REDIRECT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
_POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
_SIGNATURES = {
    "sha256": "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
    "sha512": "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512",
}
_DIGESTS = {
    "sha256": "http://www.w3.org/2001/04/xmlenc#sha256",
    "sha512": "http://www.w3.org/2001/04/xmlenc#sha512",
}
#: Attribute names tried, in order, when config names none (common IdPs, ADFS, eduPerson).
_DEFAULT_ATTRIBUTES = {
    "email": (
        "email",
        "mail",
        "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
        "urn:oid:0.9.2342.19200300.100.1.3",
    ),
    "displayName": (
        "displayName",
        "http://schemas.microsoft.com/identity/claims/displayname",
        "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name",
        "urn:oid:2.16.840.1.113730.3.1.241",
    ),
    "groups": (
        "groups",
        "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups",
        "memberOf",
        "urn:oid:1.3.6.1.4.1.5923.1.5.1.1",
    ),
}
#: How long a replayed assertion ID is remembered when the assertion names no end.
_DEFAULT_ASSERTION_LIFETIME = 24 * 3600
#: How long IdP metadata fetched from ``metadataUrl`` is used before it is fetched again.
METADATA_MAX_AGE = 24 * 3600


def _saml2() -> Any:
    """pysaml2, imported only for a configured ``saml`` provider."""
    try:
        import saml2.client  # type: ignore[import-untyped]  # noqa: PLC0415
        import saml2.config  # type: ignore[import-untyped]  # noqa: PLC0415
        import saml2.metadata  # type: ignore[import-untyped]  # noqa: PLC0415
        import saml2.sigver  # type: ignore[import-untyped]  # noqa: PLC0415
    except ImportError:
        return None
    return saml2


class _KeyFiles:
    """PEM values written to a private directory: pysaml2 and xmlsec1 read keys from files."""

    def __init__(self) -> None:
        self.directory: str | None = None

    def write(self, name: str, pem: str) -> str:
        if self.directory is None:
            self.directory = tempfile.mkdtemp(prefix="wsgiauth-saml-")  # mode 0700
            atexit.register(shutil.rmtree, self.directory, True)
        path = os.path.join(self.directory, name)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(_pem(pem, "PRIVATE KEY" if "key" in name else "CERTIFICATE"))
        return path


def _pem(value: str, label: str) -> str:
    """A PEM block from config: whole PEM, or its base64 body alone (Backstage's ``cert``)."""
    value = value.strip()
    if value.startswith("-----BEGIN"):
        return value + "\n"
    body = "".join(value.split())
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return f"-----BEGIN {label}-----\n" + "\n".join(lines) + f"\n-----END {label}-----\n"


def _cert_body(pem: str) -> str:
    """The base64 body of a certificate, as metadata's ``X509Certificate`` holds it."""
    return "".join(
        line for line in _pem(pem, "CERTIFICATE").splitlines() if not line.startswith("-----")
    )


def request_id(nonce: str) -> str:
    """The ``AuthnRequest`` ID of the flow whose ``state`` carries ``nonce``.

    The ``InResponseTo`` of the answer must be it: a response made for another flow
    (another browser's, or the attacker's own) cannot finish this one.
    """
    return "_" + hashlib.sha256(b"wsgiauth.saml\x00" + nonce.encode("utf-8")).hexdigest()[:40]


class SamlAuthenticator:
    """One SAML identity provider, as an OAuth-shaped authenticator for the popup wire."""

    persist_scopes = False
    required_scopes: tuple[str, ...] = ()
    #: SAML has no refresh token: the route handlers keep a sealed session instead.
    session_cookie = True
    #: The IdP POSTs the response from its own site (HTTP-POST binding).
    posts_callback = True
    #: Where assertion IDs are remembered; :func:`_factory` binds the app's.
    replay_store: ReplayStore = MemoryReplayStore()

    def __init__(self, *, config: Config, callback_url: str, http: HttpClient) -> None:
        saml2 = _saml2()
        if saml2 is None:
            raise config.error("", "the saml provider needs pysaml2: pip install 'wsgiauth[saml]'")
        try:
            self._xmlsec = saml2.sigver.get_xmlsec_binary()
        except saml2.sigver.SigverError:
            raise config.error(
                "", "the saml provider needs xmlsec1 (Debian: apt-get install xmlsec1)"
            ) from None
        self._saml2 = saml2
        self._http = http
        self.callback_url = callback_url
        self.entry_point = str(read_absolute_url(config, "entryPoint"))
        self.issuer = config.get_string("issuer")
        self.audience = config.get_optional_string("audience") or self.issuer
        cert = config.get_optional_string("cert")
        self.metadata_url = read_absolute_url(config, "metadataUrl", required=False)
        if (cert is None) == (self.metadata_url is None):
            raise config.error("cert", "set either cert (with idpIssuer) or metadataUrl")
        self.idp_issuer = config.get_optional_string("idpIssuer")
        if cert is not None and not self.idp_issuer:
            raise config.error("idpIssuer", "required with cert: the IdP's entity ID")
        self._want_response_signed = config.get_optional_bool("wantAuthnResponseSigned")
        self._want_assertions_signed = config.get_optional_bool("wantAssertionsSigned")
        if self._want_response_signed is False and self._want_assertions_signed is False:
            raise config.error(
                "wantAssertionsSigned", "the response or its assertion must be signed"
            )
        skew_ms = config.get_optional_number("acceptedClockSkewMs")
        if skew_ms is not None and not 0 <= skew_ms <= 300_000:
            raise config.error("acceptedClockSkewMs", "expected 0 to 300000 milliseconds")
        self.skew = int((skew_ms or 0) / 1000)
        self.signature_algorithm = self._algorithm(config, "signatureAlgorithm", _SIGNATURES)
        self.digest_algorithm = self._algorithm(config, "digestAlgorithm", _DIGESTS)
        self.identifier_format = config.get_optional_string("identifierFormat")
        self.attributes = {
            field: (name,) if name else _DEFAULT_ATTRIBUTES[field]
            for field in _DEFAULT_ATTRIBUTES
            for name in [config.get_optional_string(f"{field}Attribute")]
        }
        self._files = _KeyFiles()
        private_key = config.get_optional_string("privateKey")
        public_cert = config.get_optional_string("publicCert")
        self._key_file = self._files.write("sp-key.pem", private_key) if private_key else None
        self._cert_file = self._files.write("sp-cert.pem", public_cert) if public_cert else None
        if private_key and not public_cert:
            raise config.error("publicCert", "required with privateKey, for the SP metadata")
        self._lock = threading.Lock()
        self._metadata: bytes | None = None
        self._idp_certs: tuple[str, ...] = (_cert_body(cert),) if cert else ()
        self._loaded_at = 0.0
        self._sp_config: Any = self._build_config() if cert else None
        if self._sp_config is not None:
            self._loaded_at = float("inf")

    @staticmethod
    def _algorithm(config: Config, key: str, known: Mapping[str, str]) -> str:
        value = config.get_optional_string(key) or "sha256"
        if value not in known:
            raise config.error(key, f"expected one of {', '.join(known)}")
        return known[value]

    @classmethod
    def from_config(cls, config: Config, *, callback_url: str, http: HttpClient) -> Self:
        """Build from ``auth.providers.saml``; every bad key fails here, at startup."""
        return cls(config=config, callback_url=callback_url, http=http)

    # -- pysaml2 configuration ----------------------------------------------------------

    def _idp_metadata(self) -> str:
        """The IdP as pysaml2 wants it: metadata made from ``entryPoint`` and its certs."""
        keys = "".join(
            '<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data>'
            f"<ds:X509Certificate>{cert}</ds:X509Certificate>"
            "</ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"
            for cert in self._idp_certs
        )
        return (
            f'<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata"'
            f' xmlns:ds="{_DSIG_NS}" entityID={quoteattr(str(self.idp_issuer))}>'
            '<md:IDPSSODescriptor'
            ' protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">'
            f"{keys}<md:SingleSignOnService Binding={quoteattr(_REDIRECT)}"
            f" Location={quoteattr(self.entry_point)}/>"
            "</md:IDPSSODescriptor></md:EntityDescriptor>"
        )

    def _build_config(self, *, entity_id: str | None = None) -> Any:
        sp: dict[str, Any] = {
            "endpoints": {"assertion_consumer_service": [(self.callback_url, _POST)]},
            "want_response_signed": self._want_response_signed is not False,
            "want_assertions_signed": self._want_assertions_signed is not False,
            "authn_requests_signed": self._key_file is not None,
            "allow_unsolicited": False,
            "signing_algorithm": self.signature_algorithm,
            "digest_algorithm": self.digest_algorithm,
        }
        if self.identifier_format:
            sp["name_id_format"] = [self.identifier_format]
        settings: dict[str, Any] = {
            "entityid": entity_id or self.issuer,
            "xmlsec_binary": self._xmlsec,
            "service": {"sp": sp},
            "metadata": {"inline": [self._idp_metadata()]},
            "accepted_time_diff": self.skew,
            "allow_unknown_attributes": True,
        }
        if self._key_file and self._cert_file:
            settings["key_file"] = self._key_file
            settings["cert_file"] = self._cert_file
        config = self._saml2.config.SPConfig()
        config.load(settings)
        return config

    def _config(self) -> Any:
        """The SP config; with ``metadataUrl``, from metadata fetched at most once a day."""
        with self._lock:
            if self._sp_config is None or time.time() - self._loaded_at > METADATA_MAX_AGE:
                self._load_metadata()
            return self._sp_config

    def _load_metadata(self) -> None:
        from defusedxml import ElementTree  # type: ignore[import-untyped]  # noqa: PLC0415

        response = self._http.request("GET", str(self.metadata_url))
        if not response.ok:
            raise ServiceUnavailableError("The SAML identity provider's metadata is unavailable")
        try:
            root = ElementTree.fromstring(response.body)
        except Exception as error:
            raise ServiceUnavailableError(
                "The SAML identity provider's metadata is not valid XML"
            ) from error
        md = "{urn:oasis:names:tc:SAML:2.0:metadata}"
        certs = tuple(
            "".join((node.text or "").split())
            for descriptor in root.iter(f"{md}IDPSSODescriptor")
            for key in descriptor.iter(f"{md}KeyDescriptor")
            if key.get("use") in (None, "signing")
            for node in key.iter(f"{{{_DSIG_NS}}}X509Certificate")
        )
        entity_id = root.get("entityID")
        if not certs or not entity_id:
            raise ServiceUnavailableError(
                "The SAML identity provider's metadata has no entity ID or signing certificate"
            )
        self.idp_issuer = self.idp_issuer or entity_id
        self._idp_certs = certs
        self._sp_config = self._build_config()
        self._loaded_at = time.time()

    # -- the flow -------------------------------------------------------------------------

    def start(self, input: OAuthStartInput) -> OAuthStartResponse:  # noqa: A002 (protocol name)
        """The IdP's ``entryPoint`` with an ``AuthnRequest`` bound to this flow."""
        client = self._saml2.client.Saml2Client(config=self._config())
        _, info = client.prepare_for_authenticate(
            entityid=self.idp_issuer,
            relay_state=input.state,
            binding=_REDIRECT,
            message_id=request_id(input.nonce),
            sign=self._key_file is not None,
            sigalg=self.signature_algorithm if self._key_file else None,
            digest_alg=self.digest_algorithm,
        )
        return OAuthStartResponse(dict(info["headers"])["Location"])

    def authenticate(self, input: OAuthAuthenticateInput) -> OAuthAuthenticatorResult:  # noqa: A002
        """Verify the posted ``Response`` and read the profile from its one assertion."""
        xml = _posted_response(input.request)
        _check_structure(xml)
        expected = request_id(input.nonce)
        response = self._parse(xml, expected)
        assertion = response.assertion
        _check_binding(response, assertion, expected, self.callback_url, self.audience)
        self._check_replay(assertion)
        profile = self._profile(response, assertion)
        session = OAuthSession(access_token="", refresh_token=json.dumps(profile))  # noqa: S106
        return OAuthAuthenticatorResult(full_profile=profile, session=session)

    def _parse(self, xml: bytes, expected: str) -> Any:
        config = self._config()
        if self.audience != self.issuer:
            # pysaml2 checks the audience against the entity ID: parse as the audience.
            config = self._build_config(entity_id=self.audience)
        client = self._saml2.client.Saml2Client(config=config)
        encoded = base64.b64encode(xml).decode("ascii")
        try:
            response = client.parse_authn_request_response(
                encoded, _POST, outstanding={expected: "/"}
            )
        except Exception as error:  # pysaml2 raises anything from Exception to its own errors
            raise AuthenticationError(f"SAML response refused: {_reason(error)}") from error
        if response is None or response.assertion is None:
            raise AuthenticationError("SAML response refused: it has no valid assertion")
        return response

    def _check_replay(self, assertion: Any) -> None:
        """An assertion is good once: a captured response cannot sign in again."""
        ends = [
            data.not_on_or_after
            for confirmation in assertion.subject.subject_confirmation
            for data in [confirmation.subject_confirmation_data]
            if data is not None and data.not_on_or_after
        ]
        if assertion.conditions is not None and assertion.conditions.not_on_or_after:
            ends.append(assertion.conditions.not_on_or_after)
        tz = self._saml2.time_util
        expires = max((tz.str_to_time(end) for end in ends), default=None)
        expires_at = (
            time.mktime(expires) - time.timezone if expires is not None
            else time.time() + _DEFAULT_ASSERTION_LIFETIME
        )
        key = hashlib.sha256(f"saml\x00{self.idp_issuer}\x00{assertion.id}".encode()).hexdigest()
        if not self.replay_store.first_use(key, expires_at + self.skew):
            raise AuthenticationError("SAML response refused: the assertion was already used")

    def _profile(self, response: Any, assertion: Any) -> dict[str, Any]:
        attributes: dict[str, list[str]] = {}
        for statement in assertion.attribute_statement:
            for attribute in statement.attribute:
                values = [value.text or "" for value in attribute.attribute_value]
                attributes.setdefault(attribute.name, []).extend(values)
        name_id = assertion.subject.name_id
        sessions = [statement.session_index for statement in assertion.authn_statement]
        profile: dict[str, Any] = {
            "issuer": assertion.issuer.text if assertion.issuer is not None else None,
            "nameID": name_id.text.strip() if name_id is not None and name_id.text else None,
            "nameIDFormat": name_id.format if name_id is not None else None,
            "sessionIndex": next((index for index in sessions if index), None),
            "attributes": attributes,
        }
        for field, names in self.attributes.items():
            found: list[str] = next(
                (attributes[name] for name in names if attributes.get(name)), []
            )
            profile[field] = found if field == "groups" else (found[0] if found else None)
        return profile

    def refresh(self, input: OAuthRefreshInput) -> OAuthAuthenticatorResult:  # noqa: A002
        """The session kept at sign-in (sealed, and refused after ``sessionDuration``)."""
        try:
            profile = json.loads(input.refresh_token)
        except ValueError:
            raise AuthenticationError("The SAML session is invalid") from None
        if not isinstance(profile, dict):
            raise AuthenticationError("The SAML session is invalid")
        session = OAuthSession(access_token="", refresh_token=input.refresh_token)  # noqa: S106
        return OAuthAuthenticatorResult(full_profile=profile, session=session)

    def default_profile_transform(self, result: OAuthAuthenticatorResult) -> ProfileInfo:
        """Backstage's: ``email`` and ``displayName`` of the full profile."""
        profile = result.full_profile
        email, name = profile.get("email"), profile.get("displayName")
        return ProfileInfo(
            email=email if isinstance(email, str) else None,
            display_name=name if isinstance(name, str) else None,
        )

    # -- metadata -------------------------------------------------------------------------

    def routes(self) -> Mapping[str, Callable[[Request], Response]]:
        """``<auth base>/<id>/metadata``: the SP metadata for the IdP's admin."""
        return {"metadata": self.metadata}

    def metadata(self, request: Request) -> Response:
        """This SP's entity ID, ACS URL (HTTP-POST) and, when set, its certificate."""
        if self._metadata is None:  # made once: it depends on config alone
            create = self._saml2.metadata.create_metadata_string
            self._metadata = create(None, config=self._build_config(), valid=None)
        response = Response(body=self._metadata, content_type="application/samlmetadata+xml")
        response.cache_control = "no-cache"
        return response


def _posted_response(request: Request) -> bytes:
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


def _check_structure(xml: bytes) -> None:
    """Refusals made before any signature is checked, on the document as sent.

    - A comment: exclusive canonicalisation drops comments, so
      ``user@example.com<!---->.evil.com`` keeps the signature of
      ``user@example.com.evil.com`` while a parser that reads the first text node
      sees another user.
    - Anything but one ``Assertion``, a child of the ``Response``: XML signature
      wrapping hides a forged assertion next to (or around) the signed one, hoping
      the signature is checked on one and the profile read from the other.
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


def _check_binding(
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
        if confirmation.method == "urn:oasis:names:tc:SAML:2.0:cm:bearer"
        and confirmation.subject_confirmation_data is not None
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


def _reason(error: Exception) -> str:
    """A short reason for a pysaml2 refusal (its class name, and its message when short)."""
    message = str(error).splitlines()[0] if str(error) else ""
    name = type(error).__name__
    return f"{name}: {message}" if message and len(message) <= 160 else name


# -- resolvers -------------------------------------------------------------------------


def _name_id_resolver(options: Mapping[str, Any] | None) -> SignInResolver:
    def resolve(info: SignInInfo, context: AuthResolverContext) -> BackstageSignInResult:
        result = info.result
        profile = result.full_profile if isinstance(result, OAuthAuthenticatorResult) else {}
        name_id = profile.get("nameID")
        if not isinstance(name_id, str) or not name_id:
            raise AuthenticationError("No nameID found in SAML response")
        return context.sign_in_with_catalog_user({"entityRef": {"name": name_id}})

    return resolve


#: Backstage's ``nameIdMatchingUserEntityName``: the NameID is the User entity's name.
name_id_matching_user_entity_name = create_sign_in_resolver_factory(_name_id_resolver)


def _factory(options: AuthProviderFactoryOptions) -> Any:
    """Bind the app's replay store (the configured database) to this provider's authenticator."""
    store = options.replay_store or MemoryReplayStore()

    class BoundSamlAuthenticator(SamlAuthenticator):
        replay_store = store

    factory = create_oauth_provider_factory(
        BoundSamlAuthenticator, config_keys=CONFIG_KEYS, environments=False
    )
    return factory(options)


module = ProviderModule(
    provider_id="saml",
    factory=_factory,
    resolvers={"nameIdMatchingUserEntityName": name_id_matching_user_entity_name},
)
