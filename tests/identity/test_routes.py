"""The identity endpoints on the wire: JWKS, OpenID discovery, userinfo (spec §9.3)."""

from __future__ import annotations

import re

import jwt
import pytest

from tests.conftest import base_config
from tests.conftest import make_testapp
from tests.identity.conftest import CRAFTED_TOKENS
from wsgiauth.errors import ServiceUnavailableError
from wsgiauth.identity.key_stores import MemoryKeyStore

BASE = "http://localhost:7007/api/auth"


@pytest.fixture
def testapp():
    config = base_config(providers={"guest": {}}, keyStore={"provider": "memory"})
    return make_testapp(config)


def guest_token(testapp) -> str:
    return testapp.get("/api/auth/guest/refresh").json["backstageIdentity"]["token"]


def test_jwks_lists_the_signing_key_once_a_token_exists(testapp):
    assert testapp.get("/api/auth/.well-known/jwks.json").json == {"keys": []}
    guest_token(testapp)
    response = testapp.get("/api/auth/.well-known/jwks.json")
    [key] = response.json["keys"]
    assert set(key) == {"kty", "crv", "x", "y", "kid", "alg"}
    assert (key["kty"], key["crv"], key["alg"]) == ("EC", "P-256", "ES256")
    assert response.headers["Cache-Control"] == "public, max-age=30"
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"


def test_jwks_revalidates_with_its_etag(testapp):
    guest_token(testapp)
    first = testapp.get("/api/auth/.well-known/jwks.json")
    etag = first.headers["ETag"]
    assert re.fullmatch(r'"[0-9a-f]{32}"', etag)  # sha256 of the body, hex, 32 characters
    again = testapp.get("/api/auth/.well-known/jwks.json", headers={"If-None-Match": etag})
    assert again.status_int == 304
    assert again.body == b""
    assert again.headers["ETag"] == etag
    assert again.headers["Cache-Control"] == "public, max-age=30"
    assert "Content-Type" not in again.headers
    assert again.headers["X-Content-Type-Options"] == "nosniff"
    other = testapp.get("/api/auth/.well-known/jwks.json", headers={"If-None-Match": '"x"'})
    assert other.status_int == 200
    assert other.body == first.body


@pytest.mark.parametrize(
    "if_none_match",
    [
        pytest.param("{etag}", id="same"),
        pytest.param('"x", {etag}', id="in-a-list"),
        pytest.param("W/{etag}", id="weak"),
    ],
)
def test_jwks_304_on_get_and_head(testapp, if_none_match):
    etag = testapp.get("/api/auth/.well-known/jwks.json").headers["ETag"]
    headers = {"If-None-Match": if_none_match.format(etag=etag)}
    assert testapp.get("/api/auth/.well-known/jwks.json", headers=headers).status_int == 304
    assert testapp.head("/api/auth/.well-known/jwks.json", headers=headers).status_int == 304


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        # WebOb's conditional_response: "*" is no condition, and ranges are served.
        pytest.param({"If-None-Match": "*"}, 200, id="star"),
        pytest.param({"Range": "bytes=0-5"}, 206, id="range"),
        pytest.param({"Range": "bytes=99999-"}, 416, id="range-past-the-end"),
    ],
)
def test_jwks_other_conditional_requests(testapp, headers, status):
    response = testapp.get("/api/auth/.well-known/jwks.json", headers=headers, status=status)
    if status == 206:
        assert response.body == b'{"keys'


def test_jwks_etag_changes_with_the_key_set(testapp):
    empty = testapp.get("/api/auth/.well-known/jwks.json")
    guest_token(testapp)
    headers = {"If-None-Match": empty.headers["ETag"]}
    listed = testapp.get("/api/auth/.well-known/jwks.json", headers=headers)
    assert listed.status_int == 200
    assert listed.headers["ETag"] != empty.headers["ETag"]


def test_openid_configuration_names_our_endpoints(testapp):
    body = testapp.get("/api/auth/.well-known/openid-configuration").json
    assert body["issuer"] == BASE
    assert body["jwks_uri"] == f"{BASE}/.well-known/jwks.json"
    assert body["userinfo_endpoint"] == f"{BASE}/v1/userinfo"
    assert body["id_token_signing_alg_values_supported"] == ["ES256"]


def test_userinfo_returns_the_claims_of_the_token(testapp):
    token = guest_token(testapp)
    body = testapp.get("/api/auth/v1/userinfo", headers={"Authorization": f"Bearer {token}"}).json
    # As Backstage's TokenFactory saves them: the token's claims but aud, iat, iss and uip.
    exp = jwt.decode(token, options={"verify_signature": False})["exp"]
    assert body == {
        "claims": {"sub": "user:development/guest", "ent": ["user:development/guest"], "exp": exp}
    }


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        pytest.param({}, "No token provided", id="none"),
        pytest.param({"Authorization": "Basic abc"}, "No token provided", id="basic"),
    ],
)
def test_userinfo_without_a_bearer_token_is_401(testapp, headers, message):
    response = testapp.get("/api/auth/v1/userinfo", headers=headers, status=401)
    assert response.json["error"] == {"name": "AuthenticationError", "message": message}


def test_userinfo_with_a_forged_token_is_401(testapp):
    token = guest_token(testapp)
    header, payload, signature = token.split(".")
    forged = f"{header}.{payload}.{signature[::-1]}"
    response = testapp.get(
        "/api/auth/v1/userinfo", headers={"Authorization": f"Bearer {forged}"}, status=401
    )
    assert response.json["error"]["name"] == "AuthenticationError"


@pytest.mark.parametrize(("token", "reason"), CRAFTED_TOKENS)
def test_userinfo_with_a_crafted_token_is_401_not_500(testapp, token, reason):
    guest_token(testapp)  # keys exist, as in a running service
    response = testapp.get(
        "/api/auth/v1/userinfo", headers={"Authorization": f"Bearer {token}"}, status=401
    )
    assert response.json["error"] == {
        "name": "AuthenticationError",
        "message": f"Invalid identity token: {reason}",
    }


def test_token_endpoint_is_not_implemented(testapp):
    testapp.get("/api/auth/v1/token", status=501)


class DownKeyStore(MemoryKeyStore):
    def add_key(self, key):
        raise ServiceUnavailableError("key store is down")

    def list_keys(self):
        raise ServiceUnavailableError("key store is down")


def test_key_store_down_gives_a_clear_503():
    config = base_config(providers={"guest": {}})
    testapp = make_testapp(config, key_store=DownKeyStore())
    response = testapp.get("/api/auth/guest/refresh", status=503)
    assert response.json["error"]["name"] == "ServiceUnavailableError"
    assert "key store" in response.json["error"]["message"]
    response = testapp.get("/api/auth/.well-known/jwks.json", status=503)
    assert response.json["error"]["name"] == "ServiceUnavailableError"
