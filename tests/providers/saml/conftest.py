"""Shared by the ``saml`` provider tests: an IdP that signs responses made here, and the app.

An IdP key and certificate are made with ``cryptography``; each response is built
from a template, signed with ``xmlsec1`` (through pysaml2's backend), then tampered
with as a test asks, as an attacker would.
"""

from __future__ import annotations

import base64
import datetime
import re
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
    issuer: str = IDP,
    audience: str = SP,
    recipient: str = ACS,
    not_before: int = -5,
    not_on_or_after: int = 300,
    signed: bool = True,
) -> str:
    signature = signature_template(assertion_id) if signed else ""
    return (
        f'<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{assertion_id}"'
        f' Version="2.0" IssueInstant="{timestamp()}">'
        f"<saml:Issuer>{issuer}</saml:Issuer>{signature}"
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
        from saml2 import sigver  # noqa: PLC0415 - the test modules skip without pysaml2

        self.key_file = key_file
        self.crypto = sigver.CryptoBackendXmlSec1(sigver.get_xmlsec_binary())

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
        issuer: str = IDP,
        response_issuer: bool = True,
        tamper: Callable[[str], str] | None = None,
        **assertion: Any,
    ) -> str:
        """The base64 ``SAMLResponse``: signed as asked, then ``tamper``-ed.

        ``issuer`` is the Issuer the assertion and (unless ``response_issuer`` is false)
        the response name.
        """
        assertion_id = assertion_id or f"_a{uuid.uuid4().hex}"
        response_id = f"_r{uuid.uuid4().hex}"
        body = assertion_xml(
            assertion_id,
            in_response_to=in_response_to,
            signed=sign_assertion,
            issuer=issuer,
            **assertion,
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
            + (f"<saml:Issuer>{issuer}</saml:Issuer>" if response_issuer else "")
            + f"{signature}"
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
