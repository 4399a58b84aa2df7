"""The SAML flow through the real auth app: start, sign-in, refresh, logout, metadata.

Also what the authenticator checks itself or hands to pysaml2: signatures, replays,
the clock skew, IdP metadata from ``metadataUrl``.
"""

from __future__ import annotations

import re
import time
from urllib.parse import parse_qs
from urllib.parse import urlsplit

import pytest
import webtest

from tests.certificates import key_and_cert
from tests.conftest import APP_ORIGIN
from tests.providers.saml.conftest import ACS
from tests.providers.saml.conftest import IDP
from tests.providers.saml.conftest import SP
from tests.providers.saml.conftest import SSO
from tests.providers.saml.conftest import XRW
from tests.providers.saml.conftest import Flow
from tests.providers.saml.conftest import build
from tests.providers.saml.conftest import refused
from tests.providers.saml.conftest import saml_config
from wsgiauth.identity.replay import MemoryReplayStore
from wsgiauth.providers import saml as saml_provider

pytest.importorskip("saml2.sigver")


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


def test_authn_context_is_requested_as_passport_saml_does(tmp_path, idp_keys) -> None:
    """Backstage's ``authnContext``: a ``RequestedAuthnContext``, ``Comparison="exact"``."""
    refs = [
        "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport",
        "urn:federation:authentication:windows",
    ]
    app = build(tmp_path, saml_config(idp_keys, authnContext=refs))
    xml = Flow(app).request_xml
    assert re.search(r'RequestedAuthnContext[^>]* Comparison="exact"', xml)
    assert re.findall(r"AuthnContextClassRef[^>]*>([^<]+)<", xml) == refs


def test_no_authn_context_is_requested_without_the_key(app) -> None:
    assert "RequestedAuthnContext" not in Flow(app).request_xml


def test_signed_authn_requests_with_an_sp_key(tmp_path, idp_keys) -> None:
    key, cert = key_and_cert("test-sp")
    app = build(tmp_path, saml_config(idp_keys, privateKey=key, publicCert=cert))
    query = parse_qs(urlsplit(Flow(app).location).query)
    assert query["SigAlg"] == ["http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"]
    assert query["Signature"][0]
    assert "X509Certificate" in app.get("/api/auth/saml/metadata").text


def test_refuses_an_unsigned_assertion_in_a_signed_response(tmp_path, idp_keys, idp) -> None:
    app = build(tmp_path, saml_config(idp_keys, wantAuthnResponseSigned=True))
    flow = Flow(app)
    response = idp.response(flow.request_id, sign_assertion=False, sign_response=True)
    refused(flow.post(response), "Signature missing for assertion")


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


def test_refuses_a_response_without_the_flow_cookie(app, idp) -> None:
    flow = Flow(app)
    app.reset()
    refused(flow.post(idp.response(flow.request_id)), "missing cookie nonce")


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
