"""The identity seams: KeyStore, UserInfoStore, TokenIssuer, and StoredKey.

The protocols have no code of their own; these tests hold every shipped
implementation to their method signatures, and show that an object with just
the protocol's methods is all the token factory needs.
"""

from __future__ import annotations

import dataclasses

import pytest

from tests.identity.conftest import ISSUER
from tests.identity.conftest import FakeClock
from tests.identity.conftest import kid_of
from tests.identity.conftest import verify
from tests.protocols import protocol_mismatches
from wsgiauth.identity.key_stores import MemoryKeyStore
from wsgiauth.identity.key_stores import SqlKeyStore
from wsgiauth.identity.key_stores import StaticKeyStore
from wsgiauth.identity.token_factory import StaticTokenIssuer
from wsgiauth.identity.token_factory import TokenFactory
from wsgiauth.identity.types import KeyStore
from wsgiauth.identity.types import StoredKey
from wsgiauth.identity.types import TokenIssuer
from wsgiauth.identity.types import UserInfoStore
from wsgiauth.identity.user_info import MemoryUserInfoStore
from wsgiauth.identity.user_info import SqlUserInfoStore
from wsgiauth.types import TokenParams


@pytest.mark.parametrize(
    ("implementation", "protocol"),
    [
        pytest.param(MemoryKeyStore, KeyStore, id="MemoryKeyStore"),
        pytest.param(SqlKeyStore, KeyStore, id="SqlKeyStore"),
        pytest.param(StaticKeyStore, KeyStore, id="StaticKeyStore"),
        pytest.param(MemoryUserInfoStore, UserInfoStore, id="MemoryUserInfoStore"),
        pytest.param(SqlUserInfoStore, UserInfoStore, id="SqlUserInfoStore"),
        pytest.param(TokenFactory, TokenIssuer, id="TokenFactory"),
        pytest.param(StaticTokenIssuer, TokenIssuer, id="StaticTokenIssuer"),
    ],
)
def test_shipped_implementations_follow_their_protocol(implementation, protocol):
    assert protocol_mismatches(implementation, protocol) == []


class RenamedParameter:
    def add_key(self, key):
        pass

    def list_keys(self):
        return []

    def remove_keys(self, ids):
        pass


class RequiredExtra:
    def save_user_info(self, sub, claims, when):
        pass

    def get_user_info(self, sub):
        return None


@pytest.mark.parametrize(
    ("implementation", "protocol", "problem"),
    [
        pytest.param(
            RenamedParameter,
            KeyStore,
            "remove_keys: parameter 'ids', expected 'kids'",
            id="renamed-parameter",
        ),
        pytest.param(
            RequiredExtra,
            UserInfoStore,
            "save_user_info: extra parameter 'when' has no default",
            id="required-extra-parameter",
        ),
        pytest.param(MemoryKeyStore, TokenIssuer, "issue_token: missing", id="another-protocol"),
    ],
)
def test_an_implementation_that_differs_is_reported(implementation, protocol, problem):
    assert problem in protocol_mismatches(implementation, protocol)


class DictKeyStore:
    """A KeyStore of a dict: the three protocol methods and nothing else."""

    def __init__(self, clock):
        self.keys = {}
        self.clock = clock

    def add_key(self, key):
        self.keys[key["kid"]] = StoredKey(key=dict(key), created_at=self.clock())

    def list_keys(self):
        return sorted(self.keys.values(), key=lambda stored: stored.created_at)

    def remove_keys(self, kids):
        for kid in kids:
            self.keys.pop(kid, None)


class DictUserInfoStore:
    def __init__(self):
        self.saved = {}

    def save_user_info(self, sub, claims):
        self.saved[sub] = dict(claims)

    def get_user_info(self, sub):
        return self.saved.get(sub)


def test_a_key_store_of_just_the_protocol_methods_serves_the_token_factory():
    clock = FakeClock()
    store = DictKeyStore(clock)
    factory = TokenFactory(ISSUER, store, 600, clock=clock)
    token = factory.issue_token(TokenParams(claims={"sub": "user:default/jane"}))
    assert list(store.keys) == [kid_of(token)]
    assert store.keys[kid_of(token)].key["kid"] == kid_of(token)
    assert "d" not in store.keys[kid_of(token)].key  # only the public half is published
    assert verify(token, factory.list_public_keys())["sub"] == "user:default/jane"


def test_a_user_info_store_of_just_the_protocol_methods_gets_each_tokens_claims():
    users = DictUserInfoStore()
    factory = TokenFactory(ISSUER, MemoryKeyStore(), 600, user_info_store=users)
    factory.issue_token(
        TokenParams(claims={"sub": "user:default/jane", "ent": ["group:default/a"]})
    )
    saved = users.get_user_info("user:default/jane")
    assert (saved["sub"], saved["ent"]) == ("user:default/jane", ["group:default/a"])


def test_stored_keys_are_values_no_caller_can_change():
    """A key list is shared by every thread that verifies; nobody may edit an entry."""
    stored = StoredKey(key={"kid": "k1"}, created_at=1.0)
    assert stored == StoredKey(key={"kid": "k1"}, created_at=1.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        stored.created_at = 2.0  # type: ignore[misc]
