"""Tabs racing one rotating refresh token across gunicorn workers keep their session.

gunicorn runs ``examples/gunicorn.conf.py`` with four workers; the ``oidc``
provider talks to the npm oidc-provider (``tests/e2e/idp/server.mjs``), which
rotates the refresh token on every use and revokes the whole grant when a
rotated one comes back: a second exchange with the old token loses the session
for good. After one sign-in, each race sends two ``/refresh`` requests with the
same cookie at once, each on its own connection (``Connection: close``, so they
spread over the workers), then the chain goes on with the new cookie. Each
request carries a marker in its query, so the access log says which worker
served it.

With the refresh flights on the database (the SQLite file, then PostgreSQL) no
session is lost. With them switched off (:func:`in_process_only_app`) the
same races lose sessions: the proof that the test can fail.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import requests

from tests.e2e.conftest import CALLBACK_PATH
from tests.e2e.conftest import IdpLogin
from tests.e2e.conftest import e2e_config
from tests.e2e.conftest import free_port
from tests.e2e.conftest import run_gunicorn
from tests.e2e.conftest import run_oidc_provider
from wsgiauth.identity.database import Database
from wsgiauth.identity.refresh_flights import WAIT_SECONDS
from wsgiauth.identity.refresh_flights import SqlRefreshFlights

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

    from tests.e2e.conftest import OidcProvider
    from tests.e2e.conftest import WsgiServer

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parents[2]
GUNICORN_CONF = REPO_ROOT / "examples" / "gunicorn.conf.py"
WORKERS = 4
RACERS = 3
#: A waiter may wait for the owner's exchange up to 30 s: the client waits longer.
TIMEOUT = 45
COOKIE = "oidc-refresh-token"
XRW = {"X-Requested-With": "XMLHttpRequest", "Connection": "close"}
_LOG_LINE = re.compile(
    r'pid=<?(?P<pid>\d+)>? "GET /api/auth/oidc/refresh\?\S*race=(?P<race>[\w-]+)'
)


def in_process_only_app() -> WSGIApplication:
    """gunicorn app factory: the e2e app with each process refreshing on its own.

    The shared refresh flights are swapped for in-process ones, as before
    issue 12: what the races below must catch.
    """
    from tests.e2e.apps import make_app
    from wsgiauth.oauth.shared_refresh import SharedRefresh

    app = make_app()
    for env, handlers in app.auth_app.providers["oidc"].handlers.items():  # type: ignore[attr-defined]
        handlers._refreshes = SharedRefresh(namespace=f"oidc/{env}")
    return app


@pytest.fixture(scope="module")
def ports() -> dict[str, int]:
    return {"sqlite": free_port(), "postgres": free_port(), "in-process": free_port()}


@pytest.fixture(scope="module")
def idp(ports, tmp_path_factory) -> Iterator[OidcProvider]:
    uris = [f"http://127.0.0.1:{port}{CALLBACK_PATH}" for port in ports.values()]
    with run_oidc_provider(uris, tmp_path_factory.mktemp("idp") / "idp.log") as provider:
        yield provider


@contextlib.contextmanager
def serve(
    variant: str, port: int, idp: OidcProvider, workdir: Path, database: dict[str, object]
) -> Iterator[WsgiServer]:
    base_url = f"http://127.0.0.1:{port}"
    config = e2e_config(base_url, idp)
    config["backend"]["database"] = database  # type: ignore[index]
    config["auth"]["keyStore"] = {"provider": "database"}  # type: ignore[index]
    config["auth"]["providers"]["oidc"]["development"]["signIn"] = {  # type: ignore[index]
        "resolvers": [
            {
                "resolver": "emailLocalPartMatchingUserEntityName",
                "dangerouslyAllowSignInWithoutUserInCatalog": True,
            }
        ]
    }
    app = (
        f"{__name__}:in_process_only_app()"
        if variant == "in-process"
        else "tests.e2e.apps:make_app()"
    )
    # One thread per worker: two requests at once cannot both go to one worker.
    extra = ["-c", str(GUNICORN_CONF), "--threads", "1"]
    with run_gunicorn(port, config, workdir, workers=WORKERS, app=app, extra_args=extra) as server:
        yield server


def sqlite_database(workdir: Path) -> dict[str, object]:
    return {"client": "better-sqlite3", "connection": {"filename": str(workdir / "auth.sqlite3")}}


@dataclass
class Chain:
    """One browser's session, refreshed race after race; signs in again when it is lost."""

    server: WsgiServer
    idp: OidcProvider
    name: str
    cookies: dict[str, str] = field(default_factory=dict)
    lost: list[str] = field(default_factory=list)
    logins: int = 0

    def sign_in(self) -> None:
        self.logins += 1
        callback = f"{self.server.base_url}{CALLBACK_PATH}"
        with requests.Session() as browser:
            start = browser.get(
                f"{self.server.base_url}/api/auth/oidc/start",
                params={"env": "development", "origin": self.server.base_url},
                allow_redirects=False,
                timeout=TIMEOUT,
            )
            assert start.status_code == 302, f"{start.text}\n{self.server.log_tail()}"
            url = IdpLogin(self.idp)(browser, start, login=self.name, stop_prefix=callback)
            done = browser.get(url, allow_redirects=False, timeout=TIMEOUT)
            assert done.status_code == 200, done.text
            self.cookies = {
                cookie.name: cookie.value
                for cookie in browser.cookies
                if cookie.name.startswith("oidc-") and cookie.value
            }
        assert COOKIE in self.cookies, f"no refresh cookie after sign-in: {self.cookies}"

    def race(self, pool: ThreadPoolExecutor, number: int) -> None:
        """``RACERS`` refreshes with one cookie at once; a non-200 is a lost session."""
        barrier = threading.Barrier(RACERS)
        header = "; ".join(f"{name}={value}" for name, value in self.cookies.items())

        def refresh(racer: int) -> requests.Response | str:
            barrier.wait(TIMEOUT)
            try:
                return requests.get(
                    f"{self.server.base_url}/api/auth/oidc/refresh",
                    params={"env": "development", "race": f"{number}-{racer}"},
                    headers={**XRW, "Cookie": header},
                    timeout=TIMEOUT,
                )
            except requests.RequestException as exc:
                return type(exc).__name__

        answers = list(pool.map(refresh, range(RACERS)))
        failed = [a if isinstance(a, str) else a.status_code for a in answers]
        failed = [status for status in failed if status != 200]
        if failed:
            self.lost.append(f"race {number}: {failed}")
            self.sign_in()
            return
        tokens = {a.cookies.get(COOKIE) for a in answers if not isinstance(a, str)}
        tokens.discard(None)
        if not tokens:
            self.lost.append(f"race {number}: no new refresh token")
            self.sign_in()
            return
        self.cookies[COOKIE] = next(iter(tokens))  # type: ignore[assignment]


def workers_per_race(server: WsgiServer) -> dict[str, set[int]]:
    """Race number -> the pids of the workers that served its requests (from the log)."""
    served: dict[str, set[int]] = {}
    for line in server.log_path.read_text(errors="replace").splitlines():
        match = _LOG_LINE.search(line)
        if match:
            number = match["race"].rsplit("-", 1)[0]
            served.setdefault(number, set()).add(int(match["pid"]))
    return served


def run_races(server: WsgiServer, idp: OidcProvider, races: int, name: str) -> dict[str, object]:
    chain = Chain(server, idp, name)
    chain.sign_in()
    started = time.monotonic()
    with ThreadPoolExecutor(RACERS) as pool:
        for number in range(races):
            chain.race(pool, number)
    elapsed = time.monotonic() - started
    time.sleep(0.5)  # the access log is written after each response
    served = workers_per_race(server)
    crossed = sum(1 for pids in served.values() if len(pids) > 1)
    report = {
        "races": races,
        "lost": len(chain.lost),
        "crossed": crossed,
        "logged": len(served),
        "seconds": round(elapsed, 1),
        "first_lost": chain.lost[:5],
        "workers": Counter(pid for pids in served.values() for pid in pids),
    }
    print(f"\nrefresh races ({name}): {report}")  # noqa: T201 - figures for the report
    return report


def assert_no_session_lost(report: dict[str, object], server: WsgiServer) -> None:
    races = report["races"]
    assert report["lost"] == 0, f"{report}\n{server.log_tail()}"
    assert report["logged"] == races, report
    # The flights must cross processes: most races were served by two workers.
    assert report["crossed"] >= races // 2, report  # type: ignore[operator]


def test_a_thousand_races_on_the_sqlite_file_lose_no_session(ports, idp, tmp_path):
    database = sqlite_database(tmp_path)
    with serve("sqlite", ports["sqlite"], idp, tmp_path, database) as server:
        report = run_races(server, idp, 1000, "sqlite")
    assert_no_session_lost(report, server)


def test_races_on_postgresql_lose_no_session(ports, idp, tmp_path, postgres_server):
    connection = {"host": "127.0.0.1", "port": postgres_server.port, "user": "postgres"}
    database = {"client": "pg", "connection": {**connection, "database": "refresh_races"}}
    with serve("postgres", ports["postgres"], idp, tmp_path, database) as server:
        report = run_races(server, idp, 200, "postgres")
    assert_no_session_lost(report, server)


def test_without_shared_flights_the_same_races_lose_sessions(ports, idp, tmp_path):
    """The proof that the races above can fail: each worker on its own loses sessions."""
    database = sqlite_database(tmp_path)
    with serve("in-process", ports["in-process"], idp, tmp_path, database) as server:
        report = run_races(server, idp, 30, "in-process")
    assert report["lost"] > 0, report  # type: ignore[operator]


# --- the flights themselves on PostgreSQL ---------------------------------------------


def test_the_flights_hold_on_postgresql(postgres_dsn):
    """What the SQLite unit tests check, on PostgreSQL: two workers, one database."""
    databases = [Database.postgres(postgres_dsn), Database.postgres(postgres_dsn)]
    here, there = (SqlRefreshFlights(database) for database in databases)
    key = "oidc/development\x00rt-postgres-secret"
    calls: list[str] = []

    def exchange(value: str):
        def call() -> str:
            calls.append(value)
            return value

        return call

    try:
        assert here.run(key, exchange("at-first")) == "at-first"
        assert there.run(key, exchange("at-second")) == "at-first"  # shared, not run
        dump = repr(databases[0].execute("SELECT * FROM refresh_flights"))
        assert "rt-postgres-secret" not in dump and "at-first" not in dump

        # An owner still exchanging: the other worker waits for its result.
        started, release = threading.Event(), threading.Event()

        def slow() -> str:
            started.set()
            release.wait(5)
            return "at-slow"

        results: list[str] = []
        owner = threading.Thread(target=lambda: results.append(here.run(key + "2", slow)))
        owner.start()
        assert started.wait(5)
        waiter = threading.Thread(
            target=lambda: results.append(there.run(key + "2", exchange("at-waiter")))
        )
        waiter.start()
        time.sleep(0.2)
        release.set()
        owner.join(10)
        waiter.join(10)
        assert results == ["at-slow", "at-slow"]

        # Errors are not shared; logout forgets.
        def refused() -> str:
            raise RuntimeError("invalid_grant")

        with pytest.raises(RuntimeError):
            here.run(key + "3", refused)
        assert there.run(key + "3", exchange("at-retry")) == "at-retry"
        there.forget(key)
        assert here.run(key, exchange("at-after-logout")) == "at-after-logout"
        assert calls == ["at-first", "at-retry", "at-after-logout"]

        # A claim left by a dead worker is taken over after the wait.
        now = [time.time()]
        claimed_at = now[0]
        late = SqlRefreshFlights(
            databases[1],
            clock=lambda: now[0],
            sleep=lambda seconds: now.__setitem__(0, now[0] + seconds),
        )
        databases[0].execute(
            "UPDATE refresh_flights SET finished_at = NULL, result = NULL, owner = 'dead'"
        )
        assert late.run(key, exchange("at-taken-over")) == "at-taken-over"
        assert now[0] - claimed_at > WAIT_SECONDS  # on the injected clock: it waited first
    finally:
        for database in databases:
            database.close()
