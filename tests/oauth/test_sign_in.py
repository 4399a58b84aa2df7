"""Sign-in through an OAuth provider: the identity joins the popup message and refresh."""

from __future__ import annotations

from pathlib import Path

import jwt
import pytest

from tests.conftest import base_config
from tests.conftest import make_testapp
from tests.conftest import parse_web_message
from tests.conftest import state_of

CATALOG = Path(__file__).parent.parent / "files" / "catalog"
XRW = {"X-Requested-With": "XMLHttpRequest"}


@pytest.fixture
def testapp():
    resolvers = [{"resolver": "emailMatchingUserEntityProfileEmail"}]
    config = base_config(
        providers={"fake": {"development": {"signIn": {"resolvers": resolvers}}}},
        keyStore={"provider": "memory"},
    )
    config["catalog"] = {
        "locations": [
            {"type": "file", "target": str(CATALOG / "users.yaml")},
            {"type": "file", "target": str(CATALOG / "groups.yaml")},
        ]
    }
    return make_testapp(config)


def sign_in(testapp, email: str) -> dict:
    start = testapp.get("/api/auth/fake/start?env=development&origin=http://localhost:3000")
    page = testapp.get(
        f"/api/auth/fake/handler/frame?state={state_of(start.location)}&code={email}"
    )
    return parse_web_message(page.text)


def test_catalog_user_gets_a_token_with_their_groups(testapp):
    message = sign_in(testapp, "jane@acme.org")
    identity = message["response"]["backstageIdentity"]
    assert identity["identity"] == {
        "type": "user",
        "userEntityRef": "user:default/jane",
        "ownershipEntityRefs": [
            "user:default/jane",
            "group:default/team-a",
            "group:default/team-b",
        ],
    }
    claims = jwt.decode(identity["token"], options={"verify_signature": False})
    assert claims["sub"] == "user:default/jane"
    assert claims["ent"] == identity["identity"]["ownershipEntityRefs"]


def test_refresh_carries_the_identity_too(testapp):
    sign_in(testapp, "jane@acme.org")
    url = "/api/auth/fake/refresh?env=development&email=jane@acme.org"
    body = testapp.get(url, headers=XRW).json
    assert body["backstageIdentity"]["identity"]["userEntityRef"] == "user:default/jane"


def test_refresh_of_a_user_gone_from_the_catalog_is_401(testapp):
    sign_in(testapp, "jane@acme.org")
    url = "/api/auth/fake/refresh?env=development&email=gone@acme.org"
    error = testapp.get(url, headers=XRW, status=401).json["error"]
    assert error["cause"]["name"] == "NotFoundError"


def test_unknown_user_sees_the_resolver_error_in_the_popup(testapp):
    message = sign_in(testapp, "stranger@nowhere.example")
    assert "response" not in message
    assert message["error"]["name"] == "NotFoundError"
    assert message["error"]["message"].startswith(
        "Failed to sign-in, unable to resolve user identity"
    )
