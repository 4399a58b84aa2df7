"""Users from a catalog file, clients from flags or YAML."""

from __future__ import annotations

import pytest

from tests.fake_idp.conftest import CATALOG
from wsgiauth.fake_idp.registry import FakeClient
from wsgiauth.fake_idp.registry import FakeUser
from wsgiauth.fake_idp.registry import clients_from_yaml
from wsgiauth.fake_idp.registry import users_from_catalog


def test_users_of_the_demo_catalog():
    assert users_from_catalog(CATALOG) == [
        FakeUser(ref="user:development/guest", name="guest", display_name="Guest"),
        FakeUser(
            ref="user:default/jane",
            name="jane",
            display_name="Jane Doe",
            email="jane@example.com",
        ),
    ]


def test_a_catalog_without_users_is_refused(tmp_path):
    path = tmp_path / "catalog.yaml"
    path.write_text("kind: Group\nmetadata: {name: g}\n")
    with pytest.raises(ValueError, match="no User"):
        users_from_catalog(path)
    path.write_text("kind: User\nmetadata: {}\n")
    with pytest.raises(ValueError, match="metadata.name"):
        users_from_catalog(path)


def test_claims_follow_the_scopes():
    user = FakeUser(ref="user:default/jane", name="jane", email="jane@example.com")
    assert user.claims(["openid"]) == {"sub": "user:default/jane"}
    assert user.claims(["openid", "profile"]) == {
        "sub": "user:default/jane",
        "preferred_username": "jane",
        "name": "jane",
    }
    assert user.claims(["email"])["email_verified"] is True
    assert "email" not in FakeUser(ref="user:default/x", name="x").claims(["email"])


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("jane", "user:default/jane"),
        ("user:ns/jane", "user:ns/jane"),
        ("ns/jane", "user:ns/jane"),
    ],
)
def test_user_from_ref(ref, expected):
    assert FakeUser.from_ref(ref).ref == expected


@pytest.mark.parametrize("ref", ["group:default/a", "user:default/", ""])
def test_user_from_a_bad_ref(ref):
    with pytest.raises(ValueError):
        FakeUser.from_ref(ref)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"client_id": ""}, "client_id", id="no-id"),
        pytest.param({"redirect_uris": ()}, "redirect URI", id="no-uri"),
        pytest.param({"redirect_uris": ("/cb",)}, "absolute", id="relative"),
        pytest.param({"redirect_uris": ("http://a/cb#x",)}, "absolute", id="fragment"),
        pytest.param({"redirect_uris": ("javascript:alert(1)",)}, "absolute", id="scheme"),
        pytest.param({"id_token_signed_response_alg": "HS256"}, "RS256, ES256", id="hs256"),
    ],
)
def test_bad_clients(kwargs, message):
    values = {"client_id": "c", "redirect_uris": ("http://a/cb",), **kwargs}
    with pytest.raises(ValueError, match=message):
        FakeClient(**values)


def test_clients_from_yaml(tmp_path):
    path = tmp_path / "clients.yaml"
    path.write_text(
        "- client_id: a\n  client_secret: s\n  redirect_uris: [http://a/cb]\n"
        "  id_token_signed_response_alg: ES256\n"
        "- client_id: b\n  redirect_uris: [http://b/cb]\n"
        "  post_logout_redirect_uris: [http://b/]\n"
    )
    assert clients_from_yaml(path) == [
        FakeClient("a", ("http://a/cb",), "s", (), "ES256"),
        FakeClient("b", ("http://b/cb",), None, ("http://b/",)),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{}", "a list"),
        ("[]", "a list"),
        ("[1]", "mapping"),
        ("- {client_id: a, redirect_uris: [http://a/], scopes: [x]}", "unknown client keys"),
    ],
)
def test_bad_clients_yaml(tmp_path, text, message):
    path = tmp_path / "clients.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        clients_from_yaml(path)
