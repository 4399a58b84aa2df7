"""The IdP's memory: one-time requests and codes, rotation, revocation, bounds."""

from __future__ import annotations

import pytest

from wsgiauth.fake_idp import grants
from wsgiauth.fake_idp.grants import AuthorizationRequest
from wsgiauth.fake_idp.grants import Grant
from wsgiauth.fake_idp.grants import GrantStore
from wsgiauth.fake_idp.grants import IssuedCode


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(clock) -> GrantStore:
    return GrantStore(clock=clock)


def a_grant() -> Grant:
    return Grant(client_id="c", user_ref="user:default/jane", scopes=("openid",), auth_time=1)


def a_code(store: GrantStore, grant: Grant | None = None) -> str:
    return store.issue_code(IssuedCode(grant or a_grant(), "http://a/cb", "x" * 43, None))


def test_a_request_is_taken_once_and_expires(store, clock):
    request = AuthorizationRequest("c", "http://a/cb", ("openid",), None, None, "x" * 43)
    store.add_request(request)
    assert store.peek_request(request.id) == request
    assert store.take_request(request.id) == request
    assert store.take_request(request.id) is None
    late = AuthorizationRequest("c", "http://a/cb", ("openid",), None, None, "x" * 43)
    store.add_request(late)
    clock.now += grants.REQUEST_TTL
    assert store.take_request(late.id) is None


def test_a_code_is_redeemed_once(store):
    code = a_code(store)
    assert store.redeem_code(code) is not None
    assert store.redeem_code(code) is None


def test_a_replayed_code_revokes_its_grant_only(store):
    grant, other = a_grant(), a_grant()
    code, other_code = a_code(store, grant), a_code(store, other)
    store.redeem_code(code)
    store.redeem_code(other_code)
    access, refresh = store.issue_tokens(grant)
    other_access, _ = store.issue_tokens(other)
    store.redeem_code(code)
    assert store.access_grant(access) is None
    assert store.rotate_refresh(refresh) is None
    assert store.access_grant(other_access) == other


def test_rotation_and_replay(store):
    grant = a_grant()
    a_code(store, grant)
    access, refresh = store.issue_tokens(grant)
    assert store.rotate_refresh(refresh) == grant
    new_access, new_refresh = store.issue_tokens(grant)
    assert store.rotate_refresh(refresh) is None  # the replay...
    assert store.rotate_refresh(new_refresh) is None  # ...ends the grant
    assert store.access_grant(new_access) is None
    assert store.access_grant(access) is None


def test_tokens_expire(store, clock):
    grant = a_grant()
    a_code(store, grant)
    access, refresh = store.issue_tokens(grant)
    clock.now += grants.ACCESS_TOKEN_TTL
    assert store.access_grant(access) is None
    assert store.refresh_grant(refresh) == grant
    clock.now += grants.REFRESH_TOKEN_TTL
    assert store.rotate_refresh(refresh) is None


def test_tokens_of_a_grant_never_made_by_a_code_do_not_work(store):
    access, refresh = store.issue_tokens(a_grant())
    assert store.access_grant(access) is None
    assert store.rotate_refresh(refresh) is None


def test_maps_are_bounded(store, monkeypatch):
    monkeypatch.setattr(grants, "MAX_ENTRIES", 3)
    codes = [a_code(store) for _ in range(5)]
    assert [store.redeem_code(code) is not None for code in codes] == [
        False,
        False,
        True,
        True,
        True,
    ]


def test_revoking_an_access_token(store):
    grant = a_grant()
    a_code(store, grant)
    access, refresh = store.issue_tokens(grant)
    store.revoke_access_token(access)
    assert store.access_grant(access) is None
    assert store.refresh_grant(refresh) == grant
