"""The ``saml`` provider through the real auth app, against responses signed here.

An IdP key and certificate are made with ``cryptography``; each response is built
from a template, signed with ``xmlsec1`` (through pysaml2's backend), then tampered
with as an attacker would. Every refusal is a sign-in that must fail in the popup.
"""

from __future__ import annotations

import base64
import datetime
import re
import time
import uuid
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs
from urllib.parse import urlsplit

import pytest
import webtest
import yaml

from tests.certificates import key_and_cert
from tests.conftest import APP_ORIGIN
from tests.conftest import BACKEND
from tests.conftest import base_config
from tests.conftest import parse_web_message
from wsgiauth import AuthMiddleware
from wsgiauth import Config
from wsgiauth import create_auth_app
from wsgiauth.errors import ConfigError
from wsgiauth.identity.replay import MemoryReplayStore
from wsgiauth.providers import saml as saml_provider

saml2_sigver = pytest.importorskip("saml2.sigver")

IDP = "https://idp.example/saml"
SSO = "https://idp.example/sso"
SP = "urn:wsgiauth:test-sp"
ACS = f"{BACKEND}/api/auth/saml/handler/frame"
XRW = {"X-Requested-With": "XMLHttpRequest"}
SECRET = "a-session-secret-for-tests-only-0123456789"


@pytest.fixture(scope="module")
def idp_keys(tmp_path_factory) -> tuple[str, str]:
    """The IdP's signing key (a file, for xmlsec1) and its certificate (PEM)."""
    key_pem, cert_pem = key_and_cert("test-idp")
    key_file = tmp_path_factory.mktemp("idp") / "idp-key.pem"
    key_file.write_text(key_pem)
    return str(key_file), cert_pem


def timestamp(seconds: int = 0) -> str:
    moment = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def signature_template(reference: str) -> str:
    return (
        '<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo>'
        '<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>'
        '<ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/>'
        f'<ds:Reference URI="#{reference}"><ds:Transforms>'
        '<ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>'
        '<ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:Transforms>'
        '<ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/>'
        "<ds:DigestValue/></ds:Reference></ds:SignedInfo><ds:SignatureValue/></ds:Signature>"
    )


def assertion_xml(
    assertion_id: str,
    *,
    in_response_to: str,
    name_id: str = "jane",
    audience: str = SP,
    recipient: str = ACS,
    not_before: int = -5,
    not_on_or_after: int = 300,
    signed: bool = True,
) -> str:
    signature = signature_template(assertion_id) if signed else ""
    return (
        f'<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{assertion_id}"'
        f' Version="2.0" IssueInstant="{timestamp()}"><saml:Issuer>{IDP}</saml:Issuer>{signature}'
        "<saml:Subject><saml:NameID"
        ' Format="urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified">'
        f"{name_id}</saml:NameID>"
        '<saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer">'
        f'<saml:SubjectConfirmationData NotOnOrAfter="{timestamp(not_on_or_after)}"'
        f' Recipient="{recipient}" InResponseTo="{in_response_to}"/>'
        "</saml:SubjectConfirmation></saml:Subject>"
        f'<saml:Conditions NotBefore="{timestamp(not_before)}"'
        f' NotOnOrAfter="{timestamp(not_on_or_after)}"><saml:AudienceRestriction>'
        f"<saml:Audience>{audience}</saml:Audience></saml:AudienceRestriction></saml:Conditions>"
        f'<saml:AuthnStatement AuthnInstant="{timestamp()}" SessionIndex="session-1">'
        "<saml:AuthnContext><saml:AuthnContextClassRef>"
        "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
        "</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>"
        "<saml:AttributeStatement>"
        '<saml:Attribute Name="email"><saml:AttributeValue>jane@example.com'
        "</saml:AttributeValue></saml:Attribute>"
        '<saml:Attribute Name="displayName"><saml:AttributeValue>Jane Doe'
        "</saml:AttributeValue></saml:Attribute>"
        '<saml:Attribute Name="groups"><saml:AttributeValue>admins</saml:AttributeValue>'
        "<saml:AttributeValue>staff</saml:AttributeValue></saml:Attribute>"
        "</saml:AttributeStatement></saml:Assertion>"
    )


class Idp:
    """Signs responses as the IdP whose certificate the SP trusts."""

    def __init__(self, key_file: str) -> None:
        self.key_file = key_file
        self.crypto = saml2_sigver.CryptoBackendXmlSec1(saml2_sigver.get_xmlsec_binary())

    def sign(self, xml: str, node: str, node_id: str) -> str:
        signed = self.crypto.sign_statement(xml, node, self.key_file, node_id)
        return signed.decode() if isinstance(signed, bytes) else signed

    def response(
        self,
        in_response_to: str,
        *,
        destination: str | None = ACS,
        sign_assertion: bool = True,
        sign_response: bool = False,
        assertion_id: str | None = None,
        tamper: Callable[[str], str] | None = None,
        **assertion: Any,
    ) -> str:
        """The base64 ``SAMLResponse``: signed as asked, then ``tamper``-ed."""
        assertion_id = assertion_id or f"_a{uuid.uuid4().hex}"
        response_id = f"_r{uuid.uuid4().hex}"
        body = assertion_xml(
            assertion_id, in_response_to=in_response_to, signed=sign_assertion, **assertion
        )
        if sign_assertion:
            body = self.sign(body, "urn:oasis:names:tc:SAML:2.0:assertion:Assertion", assertion_id)
            body = re.sub(r"^<\?xml[^>]*\?>\s*", "", body)
        signature = signature_template(response_id) if sign_response else ""
        xml = (
            '<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"'
            ' xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion"'
            f' ID="{response_id}" Version="2.0" IssueInstant="{timestamp()}"'
            + (f' Destination="{destination}"' if destination is not None else "")
            + f' InResponseTo="{in_response_to}">'
            f"<saml:Issuer>{IDP}</saml:Issuer>{signature}"
            '<samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/>'
            f"</samlp:Status>{body}</samlp:Response>"
        )
        if sign_response:
            xml = self.sign(xml, "urn:oasis:names:tc:SAML:2.0:protocol:Response", response_id)
        if tamper is not None:
            xml = tamper(xml)
        return base64.b64encode(xml.encode()).decode()


@pytest.fixture(scope="module")
def idp(idp_keys) -> Idp:
    return Idp(idp_keys[0])


def saml_config(idp_keys: tuple[str, str], **overrides: Any) -> dict[str, Any]:
    return {
        "entryPoint": SSO,
        "issuer": SP,
        "idpIssuer": IDP,
        "cert": idp_keys[1],
        "wantAuthnResponseSigned": False,
        "signIn": {"resolvers": [{"resolver": "nameIdMatchingUserEntityName"}]},
        **overrides,
    }


def build(tmp_path: Path, saml: dict[str, Any], **auth: Any) -> webtest.TestApp:
    users = tmp_path / "users.yaml"
    users.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "backstage.io/v1alpha1",
                "kind": "User",
                "metadata": {"name": "jane"},
                "spec": {"profile": {"email": "jane@example.com"}, "memberOf": ["admins"]},
            }
        )
    )
    settings = {"keyStore": {"provider": "memory"}, "session": {"secret": SECRET}, **auth}
    config = base_config(providers={"saml": saml}, **settings)
    config["catalog"] = {"locations": [{"type": "file", "target": str(users)}]}
    app = create_auth_app(Config.from_dict(config))
    return webtest.TestApp(AuthMiddleware(lambda environ, start: [], app))


@pytest.fixture
def app(tmp_path, idp_keys) -> webtest.TestApp:
    return build(tmp_path, saml_config(idp_keys))


class Flow:
    """One started sign-in: the AuthnRequest ID the IdP answers and the RelayState."""

    def __init__(self, app: webtest.TestApp) -> None:
        start = app.get(f"/api/auth/saml/start?env=development&origin={APP_ORIGIN}")
        assert start.status_int == 302
        self.location = start.location
        query = parse_qs(urlsplit(start.location).query)
        self.relay_state = query["RelayState"][0]
        request = zlib.decompress(base64.b64decode(query["SAMLRequest"][0]), -15).decode()
        self.request_xml = request
        self.request_id = re.search(r' ID="([^"]+)"', request).group(1)  # type: ignore[union-attr]
        self.app = app

    def post(self, saml_response: str, *, relay_state: str | None = None) -> dict[str, Any]:
        page = self.app.post(
            "/api/auth/saml/handler/frame",
            {"SAMLResponse": saml_response, "RelayState": relay_state or self.relay_state},
        )
        return parse_web_message(page.text)


def refused(message: dict[str, Any], reason: str) -> None:
    """Sign-in failed for ``reason`` (a regex: pysaml2's words or our own second check's)."""
    assert "response" not in message, message
    assert re.search(reason, message["error"]["message"]), message["error"]


# -- the flow ---------------------------------------------------------------------------


def test_start_sends_an_authn_request_bound_to_the_flow(app) -> None:
    flow = Flow(app)
    assert flow.location.startswith(SSO + "?")
    assert f'AssertionConsumerServiceURL="{ACS}"' in flow.request_xml
    assert f">{SP}</" in flow.request_xml  # our issuer
    assert flow.request_id.startswith("_") and len(flow.request_id) == 41


def test_sign_in_refresh_and_logout(app, idp) -> None:
    flow = Flow(app)
    message = flow.post(idp.response(flow.request_id))
    response = message["response"]
    assert response["profile"] == {"email": "jane@example.com", "displayName": "Jane Doe"}
    assert response["providerInfo"] == {}  # as Backstage's SAML: no provider tokens
    identity = response["backstageIdentity"]["identity"]
    assert identity["userEntityRef"] == "user:default/jane"
    assert "group:default/admins" in identity["ownershipEntityRefs"]

    refreshed = app.get("/api/auth/saml/refresh?env=development", headers=XRW).json
    assert refreshed["backstageIdentity"]["identity"]["userEntityRef"] == "user:default/jane"
    assert refreshed["profile"]["email"] == "jane@example.com"

    app.post("/api/auth/saml/logout?env=development", headers=XRW)
    after = app.get("/api/auth/saml/refresh?env=development", headers=XRW, status=401)
    assert after.json["error"]["name"] == "AuthenticationError"


def test_signed_response_and_signed_assertion(tmp_path, idp_keys, idp) -> None:
    app = build(tmp_path, saml_config(idp_keys, wantAuthnResponseSigned=True))
    flow = Flow(app)
    message = flow.post(idp.response(flow.request_id, sign_response=True))
    assert message["response"]["backstageIdentity"]["identity"]["userEntityRef"] == (
        "user:default/jane"
    )


def test_the_session_ends_after_session_duration(tmp_path, idp_keys, idp, monkeypatch) -> None:
    """Refused by the server, even from a browser that kept the cookie past its max-age."""
    app = build(tmp_path, saml_config(idp_keys, sessionDuration={"minutes": 5}))
    flow = Flow(app)
    assert "response" in flow.post(idp.response(flow.request_id))
    session = app.cookies["saml-refresh-token"]
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 301)
    later = webtest.TestApp(app.app)  # a fresh jar: the kept cookie is sent as is
    later.set_cookie("saml-refresh-token", session)
    later.get("/api/auth/saml/refresh?env=development", headers=XRW, status=401)
    monkeypatch.setattr(time, "time", real)
    later.get("/api/auth/saml/refresh?env=development", headers=XRW, status=200)


def test_metadata_for_the_idp_admin(app) -> None:
    metadata = app.get("/api/auth/saml/metadata")
    assert metadata.content_type == "application/samlmetadata+xml"
    assert f'entityID="{SP}"' in metadata.text
    assert f'Location="{ACS}"' in metadata.text
    assert "HTTP-POST" in metadata.text


def test_signed_authn_requests_with_an_sp_key(tmp_path, idp_keys) -> None:
    key, cert = key_and_cert("test-sp")
    app = build(tmp_path, saml_config(idp_keys, privateKey=key, publicCert=cert))
    query = parse_qs(urlsplit(Flow(app).location).query)
    assert query["SigAlg"] == ["http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"]
    assert query["Signature"][0]
    assert "X509Certificate" in app.get("/api/auth/saml/metadata").text


# -- refusals ---------------------------------------------------------------------------


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


def test_refuses_an_unsigned_assertion_in_a_signed_response(tmp_path, idp_keys, idp) -> None:
    app = build(tmp_path, saml_config(idp_keys, wantAuthnResponseSigned=True))
    flow = Flow(app)
    response = idp.response(flow.request_id, sign_assertion=False, sign_response=True)
    refused(flow.post(response), "Signature missing for assertion")


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


def test_refuses_a_tampered_name_id(app, idp) -> None:
    flow = Flow(app)

    def rename(xml: str) -> str:
        return xml.replace(">jane</saml:NameID>", ">admin</saml:NameID>")

    refused(flow.post(idp.response(flow.request_id, tamper=rename)), "Failed to verify signature")


def test_refuses_a_replayed_response(app, idp) -> None:
    """The whole POST sent again, with the flow cookie the first one cleared put back."""
    flow = Flow(app)
    cookies = dict(app.cookies)
    response = idp.response(flow.request_id)
    assert "response" in flow.post(response)
    for name, value in cookies.items():
        app.set_cookie(name, value)
    refused(flow.post(response), "already used")


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


def test_refuses_a_response_without_the_flow_cookie(app, idp) -> None:
    flow = Flow(app)
    app.reset()
    refused(flow.post(idp.response(flow.request_id)), "missing cookie nonce")


def test_refuses_a_missing_response(app) -> None:
    flow = Flow(app)
    refused(flow.post(""), "no SAMLResponse")


# -- config -------------------------------------------------------------------------------


def test_needs_a_session_secret(tmp_path, idp_keys) -> None:
    with pytest.raises(ConfigError) as error:
        build(tmp_path, saml_config(idp_keys), session={})
    assert error.value.path == "auth.session.secret"


def test_needs_pysaml2(tmp_path, idp_keys, monkeypatch) -> None:
    monkeypatch.setattr(saml_provider, "_saml2", lambda: None)
    with pytest.raises(ConfigError, match=r"wsgiauth\[saml\]"):
        build(tmp_path, saml_config(idp_keys))


@pytest.mark.parametrize(
    ("change", "path"),
    [
        pytest.param({"cert": None}, "auth.providers.saml.cert", id="no-cert"),
        pytest.param({"idpIssuer": None}, "auth.providers.saml.idpIssuer", id="no-idp-issuer"),
        pytest.param({"entryPoint": "/sso"}, "auth.providers.saml.entryPoint", id="relative"),
        pytest.param(
            {"wantAssertionsSigned": False},
            "auth.providers.saml.wantAssertionsSigned",
            id="nothing-signed",
        ),
        pytest.param(
            {"signatureAlgorithm": "sha1"}, "auth.providers.saml.signatureAlgorithm", id="sha1"
        ),
        pytest.param({"certificate": "x"}, "auth.providers.saml.certificate", id="unknown-key"),
    ],
)
def test_bad_config_fails_at_startup(tmp_path, idp_keys, change, path) -> None:
    config = {
        key: value
        for key, value in {**saml_config(idp_keys), **change}.items()
        if value is not None
    }
    with pytest.raises(ConfigError) as error:
        build(tmp_path, config)
    assert error.value.path == path


def test_memory_replay_store_is_the_default_binding() -> None:
    assert isinstance(saml_provider.SamlAuthenticator.replay_store, MemoryReplayStore)


def test_accepted_clock_skew(tmp_path, idp_keys, idp) -> None:
    """An IdP clock a minute ahead is accepted with ``acceptedClockSkewMs: 120000``."""
    app = build(tmp_path, saml_config(idp_keys, acceptedClockSkewMs=120_000))
    flow = Flow(app)
    assert "response" in flow.post(idp.response(flow.request_id, not_before=60))


def test_idp_metadata_from_metadata_url(tmp_path, idp_keys, idp, mocked) -> None:
    """``metadataUrl`` gives the entity ID and signing certificate, fetched on first use."""
    body = "".join(idp_keys[1].strip().splitlines()[1:-1])
    metadata = (
        '<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata"'
        f' xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="{IDP}">'
        '<md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">'
        '<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data>'
        f"<ds:X509Certificate>{body}</ds:X509Certificate></ds:X509Data></ds:KeyInfo>"
        "</md:KeyDescriptor></md:IDPSSODescriptor></md:EntityDescriptor>"
    )
    url = "https://idp.example/metadata.xml"
    config = saml_config(idp_keys, metadataUrl=url)
    del config["cert"], config["idpIssuer"]
    app = build(tmp_path, config)
    assert not mocked.calls  # nothing fetched at startup
    mocked.get(url, status=503)
    start = app.get(f"/api/auth/saml/start?env=development&origin={APP_ORIGIN}", status=503)
    assert start.json["error"]["name"] == "ServiceUnavailableError"
    mocked.replace("GET", url, body=metadata)
    flow = Flow(app)
    message = flow.post(idp.response(flow.request_id))
    assert message["response"]["backstageIdentity"]["identity"]["userEntityRef"] == (
        "user:default/jane"
    )


def test_check_config(tmp_path, idp_keys) -> None:
    """``wsgiauth check-config`` builds the provider as the app does, secret included."""
    from tests.providers.popup import check_config_of

    config = base_config(providers={"saml": saml_config(idp_keys)}, keyStore={"provider": "memory"})
    config["auth"]["session"] = {"secret": SECRET}
    assert check_config_of(tmp_path, config) == []
    del config["auth"]["session"]
    [error] = check_config_of(tmp_path, config)
    assert error.path == "auth.session.secret"
