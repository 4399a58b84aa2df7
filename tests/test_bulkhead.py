"""The bulkhead: a slow provider holds at most its slots, and the next call fails fast.

Blocking is done with events, never with sleeps: a call "in flight" is one whose
fake token endpoint has been entered and not yet released.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import responses
import webtest

from tests.conftest import base_config
from wsgiauth.app import create_auth_app
from wsgiauth.bulkhead import THREADS_ENV
from wsgiauth.bulkhead import Bulkhead
from wsgiauth.bulkhead import default_limit
from wsgiauth.config import Config
from wsgiauth.errors import ConfigError
from wsgiauth.errors import ServiceUnavailableError
from wsgiauth.http import HttpClient
from wsgiauth.middleware import AuthMiddleware

TOKEN_URL = "https://slow.example/token"
#: Bounds every wait, so a broken cap fails the test instead of hanging it.
WAIT = 10


class GatedEndpoint:
    """A fake endpoint that holds each call until released, counting those it let in."""

    def __init__(self) -> None:
        self.entered = threading.Semaphore(0)
        self.release = threading.Event()
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self, request: Any) -> tuple[int, dict[str, str], str]:
        with self._lock:
            self.calls += 1
        self.entered.release()
        self.release.wait(WAIT)
        body = {"access_token": "at", "token_type": "bearer", "scope": "openid"}
        return 200, {"Content-Type": "application/json"}, json.dumps(body)

    def wait_entered(self, count: int) -> None:
        for _ in range(count):
            assert self.entered.acquire(timeout=WAIT), "the call never reached the endpoint"


@pytest.fixture
def gated() -> Iterator[tuple[GatedEndpoint, responses.RequestsMock]]:
    endpoint = GatedEndpoint()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        mocked.add_callback(responses.POST, TOKEN_URL, callback=endpoint)
        try:
            yield endpoint, mocked
        finally:
            endpoint.release.set()


# --- Bulkhead ---------------------------------------------------------------------------


def test_a_full_bulkhead_refuses_at_once_and_a_freed_slot_is_reused():
    bulkhead = Bulkhead("corp", 2)
    with bulkhead.slot(), bulkhead.slot():
        assert bulkhead.in_flight == 2
        with pytest.raises(ServiceUnavailableError, match="corp is busy: 2 calls"):
            with bulkhead.slot():
                pass  # pragma: no cover - never entered
    assert bulkhead.in_flight == 0
    assert bulkhead.rejected == 1
    with bulkhead.slot():
        assert bulkhead.in_flight == 1


def test_a_slot_is_freed_when_the_call_raises():
    bulkhead = Bulkhead("corp", 1)
    with pytest.raises(RuntimeError), bulkhead.slot():
        raise RuntimeError("the call failed")
    with bulkhead.slot():
        assert bulkhead.in_flight == 1


def test_a_bulkhead_needs_a_slot():
    with pytest.raises(ValueError, match="at least one slot"):
        Bulkhead("corp", 0)


@pytest.mark.parametrize(
    ("env", "threads", "limit"),
    [
        pytest.param("4", None, 2, id="gunicorn-gthread-4"),
        pytest.param("8", None, 4, id="serve-8"),
        pytest.param("1", None, 1, id="one-thread"),
        pytest.param(None, None, 4, id="unknown-is-8"),
        pytest.param("zero", None, 4, id="garbage-is-unknown"),
        pytest.param("4", 6, 3, id="explicit-wins"),
    ],
)
def test_the_default_limit_is_half_the_threads(monkeypatch, env, threads, limit):
    if env is None:
        monkeypatch.delenv(THREADS_ENV, raising=False)
    else:
        monkeypatch.setenv(THREADS_ENV, env)
    assert default_limit(threads) == limit


# --- HttpClient -------------------------------------------------------------------------


def test_the_client_holds_a_slot_per_call_and_refuses_past_the_limit(gated):
    endpoint, _ = gated
    http = HttpClient().with_bulkhead(Bulkhead("corp", 2))
    with ThreadPoolExecutor(2) as pool:
        slow = [pool.submit(http.request, "POST", TOKEN_URL) for _ in range(2)]
        endpoint.wait_entered(2)

        with pytest.raises(ServiceUnavailableError, match="corp is busy"):
            http.request("POST", TOKEN_URL)
        # A derived client (a provider's own timeout) shares the slots.
        with pytest.raises(ServiceUnavailableError, match="corp is busy"):
            http.with_read_timeout(1).request("POST", TOKEN_URL)

        endpoint.release.set()
        assert [call.result(WAIT).status for call in slow] == [200, 200]
    assert endpoint.calls == 2  # the refused calls never left the process
    assert http.request("POST", TOKEN_URL).status == 200


def test_a_client_without_a_bulkhead_is_not_capped(gated):
    endpoint, _ = gated
    http = HttpClient()
    with ThreadPoolExecutor(3) as pool:
        calls = [pool.submit(http.request, "POST", TOKEN_URL) for _ in range(3)]
        endpoint.wait_entered(3)
        endpoint.release.set()
        assert [call.result(WAIT).status for call in calls] == [200, 200, 200]


# --- the auth app -----------------------------------------------------------------------


def _slow_and_guest(**auth: Any) -> Config:
    corp = {
        "clientId": "id",
        "clientSecret": "secret",
        "authorizationUrl": "https://slow.example/authorize",
        "tokenUrl": TOKEN_URL,
    }
    return Config.from_dict(
        base_config(
            providers={"oauth2": {"development": corp}, "guest": {}},
            keyStore={"provider": "memory"},
            **auth,
        )
    )


def _no_app(environ: Any, start_response: Any) -> list[bytes]:  # pragma: no cover
    raise AssertionError("only auth routes are requested")


def _refresh(app: Any, provider: str, refresh_token: str | None = None) -> webtest.TestResponse:
    client = webtest.TestApp(AuthMiddleware(_no_app, app))
    if refresh_token is not None:
        client.set_cookie(f"{provider}-refresh-token", refresh_token)
        client.set_cookie(f"{provider}-granted-scope", "openid")
    return client.get(
        f"/api/auth/{provider}/refresh",
        params={"env": "development"},
        headers={"X-Requested-With": "XMLHttpRequest"},
        expect_errors=True,
    )


def test_a_slow_provider_gets_its_slots_and_a_fast_503_past_them_while_others_serve(gated):
    endpoint, _ = gated
    app = create_auth_app(_slow_and_guest(outbound={"maxConcurrentCalls": 1}))
    with ThreadPoolExecutor(1) as pool:
        # Another refresh token each: refreshes of one token share one exchange anyway.
        slow = pool.submit(_refresh, app, "oauth2", "token-1")
        endpoint.wait_entered(1)

        refused = _refresh(app, "oauth2", "token-2")
        assert refused.status_int == 503
        assert refused.json["error"]["name"] == "ServiceUnavailableError"
        assert "oauth2 is busy" in refused.json["error"]["message"]
        assert refused.json["response"] == {"statusCode": 503}
        assert refused.headers["Retry-After"] == "1"  # slots free within a call's timeout
        # Other providers and the JWKS do not wait for the slow one.
        assert _refresh(app, "guest").status_int == 200
        jwks = webtest.TestApp(AuthMiddleware(_no_app, app)).get("/api/auth/.well-known/jwks.json")
        assert jwks.status_int == 200

        endpoint.release.set()
        assert slow.result(WAIT).status_int == 200
    assert endpoint.calls == 1
    assert _refresh(app, "oauth2", "token-3").status_int == 200


def test_the_server_threads_size_the_bulkhead_by_default(gated, monkeypatch):
    endpoint, _ = gated
    monkeypatch.setenv(THREADS_ENV, "4")  # two slots per provider
    app = create_auth_app(_slow_and_guest())
    with ThreadPoolExecutor(2) as pool:
        slow = [pool.submit(_refresh, app, "oauth2", f"token-{n}") for n in range(2)]
        endpoint.wait_entered(2)
        assert _refresh(app, "oauth2", "token-3").status_int == 503
        endpoint.release.set()
        assert [call.result(WAIT).status_int for call in slow] == [200, 200]


@pytest.mark.parametrize("limit", [0, 1.5, -2, "many"])
def test_a_bad_limit_fails_at_startup_naming_the_key(limit):
    with pytest.raises(ConfigError, match=r"auth\.outbound\.maxConcurrentCalls"):
        create_auth_app(_slow_and_guest(outbound={"maxConcurrentCalls": limit}))
