"""SharedRefresh: the in-process single flight in front of the database's refresh flights."""

from __future__ import annotations

import threading

import pytest

from tests.conftest import base_config
from tests.conftest import make_testapp
from tests.conftest import set_cookies
from wsgiauth.errors import AuthenticationError
from wsgiauth.errors import ServiceUnavailableError
from wsgiauth.identity.database import Database
from wsgiauth.identity.refresh_flights import SqlRefreshFlights
from wsgiauth.oauth.shared_refresh import SharedRefresh
from wsgiauth.oauth.shared_refresh import decode_result
from wsgiauth.oauth.shared_refresh import encode_result
from wsgiauth.oauth.types import OAuthAuthenticatorResult
from wsgiauth.oauth.types import OAuthSession

XRW = {"X-Requested-With": "XMLHttpRequest"}
REFRESH = "/api/auth/fake/refresh?env=development"


def result(n: int = 1) -> OAuthAuthenticatorResult:
    return OAuthAuthenticatorResult(
        full_profile={"email": "jane@example.com", "groups": ["a", "b"], "n": n},
        session=OAuthSession(
            access_token=f"access-{n}",
            scope="openid email",
            id_token="id.token.x",
            expires_in_seconds=3600,
            refresh_token=f"refresh-{n}",
            refresh_token_expires_in_seconds=None,
        ),
    )


class Exchange:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> OAuthAuthenticatorResult:
        self.count += 1
        return result(self.count)


@pytest.fixture
def database(tmp_path):
    database = Database.sqlite(tmp_path / "flights.sqlite3")
    yield database
    database.close()


def worker(database: Database, namespace: str = "oidc/development") -> SharedRefresh:
    """What one worker process holds for one provider environment."""
    return SharedRefresh(SqlRefreshFlights(database), namespace=namespace)


def test_a_result_survives_the_trip_through_json():
    assert decode_result(encode_result(result(7))) == result(7)


def test_a_profile_value_json_cannot_hold_becomes_text():
    odd = OAuthAuthenticatorResult(full_profile={"when": object}, session=OAuthSession("a"))
    assert decode_result(encode_result(odd)).full_profile == {"when": str(object)}


@pytest.mark.parametrize(
    "text",
    [
        "",
        "[]",
        '{"fullProfile": {}}',
        '{"fullProfile": 1, "session": {"access_token": "a"}}',
        '{"fullProfile": {}, "session": {"nope": 1}}',
    ],
)
def test_an_unreadable_shared_result_is_a_503(text):
    with pytest.raises(ServiceUnavailableError):
        decode_result(text)


def test_without_shared_flights_threads_of_one_process_share_one_exchange():
    refreshes = SharedRefresh(namespace="oidc/development")
    started, release = threading.Event(), threading.Event()
    exchange = Exchange()

    def slow() -> OAuthAuthenticatorResult:
        started.set()
        release.wait(5)
        return exchange()

    results: list[OAuthAuthenticatorResult] = []
    first = threading.Thread(target=lambda: results.append(refreshes.run("rt", slow)))
    first.start()
    assert started.wait(5)
    second = threading.Thread(target=lambda: results.append(refreshes.run("rt", slow)))
    second.start()
    release.set()
    first.join(5)
    second.join(5)
    assert exchange.count == 1
    assert results == [result(1), result(1)]


def test_two_workers_on_one_database_share_one_exchange(database, tmp_path):
    other_database = Database.sqlite(tmp_path / "flights.sqlite3")
    exchange = Exchange()
    first = worker(database).run("rt", exchange)
    second = worker(other_database).run("rt", exchange)
    other_database.close()
    assert exchange.count == 1
    assert first == second == result(1)


def test_the_owner_keeps_the_providers_own_result(database):
    original = result(1)
    assert worker(database).run("rt", lambda: original) is original


def test_environments_and_providers_never_share(database):
    exchange = Exchange()
    worker(database, "oidc/development").run("rt", exchange)
    worker(database, "oidc/production").run("rt", exchange)
    worker(database, "github/development").run("rt", exchange)
    assert exchange.count == 3


def test_errors_reach_their_caller_only(database):
    def refused() -> OAuthAuthenticatorResult:
        raise AuthenticationError("invalid_grant")

    with pytest.raises(AuthenticationError):
        worker(database).run("rt", refused)
    exchange = Exchange()
    worker(database).run("rt", exchange)
    assert exchange.count == 1


def test_a_logout_in_any_worker_forgets_the_result_in_all(database):
    exchange = Exchange()
    here, there = worker(database), worker(database)
    here.run("rt", exchange)
    there.forget("rt")
    here.run("rt", exchange)  # this worker keeps no result of its own past the flight
    assert exchange.count == 2
    here.forget("rt")
    there.run("rt", exchange)
    assert exchange.count == 3


def test_without_shared_flights_forget_drops_the_local_result():
    exchange = Exchange()
    refreshes = SharedRefresh(namespace="oidc/development")
    refreshes.run("rt", exchange)
    refreshes.run("rt", exchange)
    refreshes.forget("rt")
    refreshes.run("rt", exchange)
    assert exchange.count == 2


# --- through the routes ------------------------------------------------------------------


def test_two_workers_racing_one_rotating_token_both_succeed(monkeypatch):
    """Two auth apps on one database (two gunicorn workers): the second tab is not logged out."""
    workers = [make_testapp(base_config()), make_testapp(base_config())]
    used: list[str] = []
    attempts: list[str] = []

    def rotating_refresh(input):
        attempts.append(input.refresh_token)
        if input.refresh_token in used:
            raise AuthenticationError("invalid_grant")
        used.append(input.refresh_token)
        return result(len(used))

    for app in workers:
        authenticator = app.auth_app.providers["fake"].handlers["development"].authenticator
        monkeypatch.setattr(authenticator, "refresh", rotating_refresh)
    first, second = workers
    for app in workers:
        app.set_cookie("fake-refresh-token", "refresh-0")
        app.set_cookie("fake-granted-scope", "openid")

    one = first.get(REFRESH, headers=XRW)
    other = second.get(REFRESH, headers=XRW)

    assert attempts == ["refresh-0"]
    assert one.json["providerInfo"]["accessToken"] == "access-1"
    assert other.json["providerInfo"]["accessToken"] == "access-1"
    assert set_cookies(other)["fake-refresh-token"].startswith("fake-refresh-token=refresh-1;")

    for app in workers:
        app.set_cookie("fake-refresh-token", "refresh-0")
    first.post("/api/auth/fake/logout?env=development", headers=XRW)
    # The logout in one worker forgot the shared result in the other: a real (refused) exchange.
    second.get(REFRESH, headers=XRW, status=401)
    assert attempts == ["refresh-0", "refresh-0"]
