"""Our own refusals of a SAML response (and pysaml2's, where both catch it), in the popup.

Each response is signed here, then tampered with as an attacker would: wrapped, commented,
encrypted, meant for another place, time or flow. Every refusal is a sign-in that must fail.
"""

from __future__ import annotations

import base64
import uuid

import pytest

from tests.conftest import BACKEND
from tests.providers.saml.conftest import Flow
from tests.providers.saml.conftest import assertion_xml
from tests.providers.saml.conftest import build
from tests.providers.saml.conftest import refused
from tests.providers.saml.conftest import saml_config

pytest.importorskip("saml2.sigver")


def test_refuses_a_second_unsigned_assertion(app, idp) -> None:
    """Wrapping: a forged assertion next to the signed one."""
    flow = Flow(app)
    forged = assertion_xml("_forged", in_response_to=flow.request_id, name_id="admin", signed=False)

    def add_forged(xml: str) -> str:
        return xml.replace("</samlp:Status>", "</samlp:Status>" + forged)

    refused(
        flow.post(idp.response(flow.request_id, tamper=add_forged)),
        "exactly one assertion|Invalid number of assertions",
    )


def test_refuses_a_moved_signature(app, idp) -> None:
    """Wrapping: the signed assertion hidden in an extension, a forged one with its ID read."""
    flow = Flow(app)
    assertion_id = f"_a{uuid.uuid4().hex}"
    forged = assertion_xml(
        assertion_id, in_response_to=flow.request_id, name_id="admin", signed=False
    )

    def wrap(xml: str) -> str:
        start = xml.index("<saml:Assertion")
        end = xml.index("</saml:Assertion>") + len("</saml:Assertion>")
        hidden = f"<samlp:Extensions>{xml[start:end]}</samlp:Extensions><samlp:Status>"
        return xml[:start].replace("<samlp:Status>", hidden, 1) + forged + xml[end:]

    response = idp.response(flow.request_id, assertion_id=assertion_id, tamper=wrap)
    refused(flow.post(response), "exactly one assertion|Signature missing")


def test_refuses_an_encrypted_assertion(app, idp) -> None:
    """No decryption key is configured: an encrypted assertion is refused, never skipped."""
    flow = Flow(app)

    def add_encrypted(xml: str) -> str:
        return xml.replace("</samlp:Response>", "<saml:EncryptedAssertion/></samlp:Response>")

    response = idp.response(flow.request_id, tamper=add_encrypted)
    refused(flow.post(response), "encrypted assertions are not supported")


def test_refuses_a_comment_in_the_name_id(app, idp) -> None:
    """The signature of ``jane.evil.com`` still holds with ``jane<!---->.evil.com``."""
    flow = Flow(app)

    def comment(xml: str) -> str:
        return xml.replace(">jane.evil.com<", ">jane<!---->.evil.com<")

    response = idp.response(flow.request_id, name_id="jane.evil.com", tamper=comment)
    refused(flow.post(response), "XML comment")


def test_refuses_a_comment_in_a_utf16_document(app, idp) -> None:
    """The comment check reads the parsed document, not the bytes for ``<!--``."""
    flow = Flow(app)
    holder: dict[str, bytes] = {}

    def utf16(xml: str) -> str:
        commented = xml.replace(">jane.evil.com<", ">jane<!---->.evil.com<")
        holder["raw"] = ('<?xml version="1.0" encoding="UTF-16"?>' + commented).encode("utf-16")
        return commented

    idp.response(flow.request_id, name_id="jane.evil.com", tamper=utf16)
    assert b"<!--" not in holder["raw"]
    refused(flow.post(base64.b64encode(holder["raw"]).decode()), "XML comment")


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        pytest.param(
            {"audience": "urn:someone-else"}, "AudienceRestrictions|wrong Audience", id="audience"
        ),
        pytest.param({"recipient": f"{BACKEND}/other"}, "wrong Recipient", id="recipient"),
        pytest.param(
            {"destination": f"{BACKEND}/other"},
            "no valid assertion|wrong Destination",
            id="destination",
        ),
        pytest.param(
            {"not_before": -600, "not_on_or_after": -120},
            "Can't use response, too old",
            id="expired",
        ),
        pytest.param({"not_before": 120}, "Can't use response yet", id="not-yet-valid"),
        pytest.param({"not_before": 60}, "Can't use response yet", id="past-the-skew"),
    ],
)
def test_refuses_a_response_meant_for_another_place_or_time(app, idp, options, reason) -> None:
    flow = Flow(app)
    refused(flow.post(idp.response(flow.request_id, **options)), reason)


def test_refuses_a_signed_response_without_destination(tmp_path, idp_keys, idp) -> None:
    app = build(tmp_path, saml_config(idp_keys, wantAuthnResponseSigned=True))
    flow = Flow(app)
    response = idp.response(flow.request_id, sign_response=True, destination=None)
    refused(flow.post(response), "a signed response has no Destination")


def test_an_unsigned_response_may_leave_out_destination(app, idp) -> None:
    """SAML core §3.2.2 asks for it only on signed messages; the assertion is signed."""
    flow = Flow(app)
    assert "response" in flow.post(idp.response(flow.request_id, destination=None))


def test_refuses_a_response_to_another_flow(app, idp) -> None:
    """InResponseTo names flow A; the RelayState and flow cookie are flow B's."""
    first, second = Flow(app), Flow(app)
    message = second.post(idp.response(first.request_id))
    refused(message, "Unsolicited response|InResponseTo is not this sign-in")


def test_refuses_an_unsolicited_response(app, idp) -> None:
    flow = Flow(app)

    def unsolicited(xml: str) -> str:
        return xml.replace(f' InResponseTo="{flow.request_id}"', "", 1)

    refused(
        flow.post(idp.response(flow.request_id, tamper=unsolicited)),
        "Unsolicited response|InResponseTo is not this sign-in",
    )


def test_refuses_a_missing_response(app) -> None:
    flow = Flow(app)
    refused(flow.post(""), "no SAMLResponse")
