"""The guest provider on the wire (spec §1.8)."""

from __future__ import annotations

from pathlib import Path

import jwt
import pytest

from tests.conftest import base_config
from tests.conftest import make_testapp
from wsgiauth.app import create_auth_app
from wsgiauth.config import Config
from wsgiauth.errors import ConfigError

CATALOG = Path(__file__).parent.parent / "files" / "catalog"


def guest_app(guest: dict | None = None, **auth):
    config = base_config(providers={"guest": guest or {}}, keyStore={"provider": "memory"}, **auth)
    return make_testapp(config)


def verify(testapp, token: str) -> dict:
    jwks = testapp.get("/api/auth/.well-known/jwks.json").json
    [key] = [k for k in jwks["keys"] if k["kid"] == jwt.get_unverified_header(token)["kid"]]
    return jwt.decode(
        token,
        jwt.PyJWK.from_dict(key).key,
        algorithms=["ES256"],
        audience="backstage",
        issuer="http://localhost:7007/api/auth",
    )


def test_guest_refresh_issues_a_token_that_verifies_against_the_jwks():
    testapp = guest_app()
    response = testapp.get("/api/auth/guest/refresh")
    assert response.content_type == "application/json"
    body = response.json
    assert set(body) == {"profile", "backstageIdentity"}
    assert body["profile"] == {}
    identity = body["backstageIdentity"]
    assert identity["identity"] == {
        "type": "user",
        "userEntityRef": "user:development/guest",
        "ownershipEntityRefs": ["user:development/guest"],
    }
    assert 3590 <= identity["expiresInSeconds"] <= 3600
    claims = verify(testapp, identity["token"])
    assert claims["sub"] == "user:development/guest"
    assert claims["ent"] == ["user:development/guest"]


def test_guest_needs_no_x_requested_with_and_answers_post_too():
    testapp = guest_app()
    assert testapp.post("/api/auth/guest/refresh").json["backstageIdentity"]["token"]


def test_guest_ref_and_ownership_come_from_config():
    testapp = guest_app(
        {"userEntityRef": "user:default/Visitor", "ownershipEntityRefs": ["group:default/Guests"]}
    )
    identity = testapp.get("/api/auth/guest/refresh").json["backstageIdentity"]["identity"]
    assert identity["userEntityRef"] == "user:default/visitor"
    assert identity["ownershipEntityRefs"] == ["group:default/guests"]


def test_guest_in_the_catalog_gets_its_groups():
    config = base_config(providers={"guest": {"userEntityRef": "user:default/jane"}})
    config["catalog"] = {
        "locations": [
            {"type": "file", "target": str(CATALOG / "users.yaml")},
            {"type": "file", "target": str(CATALOG / "groups.yaml")},
        ]
    }
    config["auth"]["keyStore"] = {"provider": "memory"}
    testapp = make_testapp(config)
    identity = testapp.get("/api/auth/guest/refresh").json["backstageIdentity"]["identity"]
    # team-a from her memberOf, team-b from its spec.members: direct groups only, no parents.
    assert identity["ownershipEntityRefs"] == [
        "user:default/jane",
        "group:default/team-a",
        "group:default/team-b",
    ]


@pytest.mark.parametrize("route", ["start", "handler/frame"])
def test_guest_has_no_popup(route):
    response = guest_app().get(f"/api/auth/guest/{route}", status=501)
    assert response.json["error"] == {"name": "NotImplementedError", "message": "Not implemented"}


def test_guest_refuses_outside_development():
    testapp = guest_app(environment="production")
    response = testapp.get("/api/auth/guest/refresh", status=501)
    assert response.json["error"]["name"] == "NotImplementedError"
    assert "dangerouslyAllowOutsideDevelopment" in response.json["error"]["message"]


def test_guest_outside_development_when_dangerously_allowed():
    testapp = guest_app({"dangerouslyAllowOutsideDevelopment": True}, environment="production")
    assert testapp.get("/api/auth/guest/refresh").json["backstageIdentity"]["token"]


def test_bad_guest_ref_fails_at_startup():
    config = base_config(providers={"guest": {"userEntityRef": "not a ref"}})
    with pytest.raises(ConfigError, match=r"auth\.providers\.guest\.userEntityRef"):
        create_auth_app(Config.from_dict(config))
