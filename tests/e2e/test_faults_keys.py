"""Faults under load, four gunicorn workers on PostgreSQL: a key rotation, a database restart.

gunicorn runs ``examples/gunicorn.conf.py`` (gthread) with four workers sharing one
PostgreSQL key store, and background load (:mod:`tests.e2e.load`: guest refreshes
and JWKS fetches, each on a new connection, so every worker gets its share) runs
while the fault happens. The tests count outcomes and assert on the counts, never
on wall time: a request slower than its (generous) client timeout counts as a failure.

- **Key rotation.** ``wsgiauth keys rotate`` runs in the middle of the load. Every
  worker must move to a new key by itself, publishing it before it signs with it:
  right after each token is received, the JWKS of a random worker (a new
  connection) must already list its kid. Afterwards every token of the run verifies,
  at the JWKS of a random worker and with an :class:`~wsgiauth.IdentityVerifier`
  pointed at the JWKS URL.
- **Database restart.** PostgreSQL is stopped under load and started again. While
  it is down, token-issuing requests get 503 (never a 500, never a hang past the
  client timeout) and the JWKS is served from the last list; once it is back the
  service recovers by itself, and no key is lost.

Each test prints its counts (``pytest -s`` shows them).
"""

from __future__ import annotations

import random
import secrets
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jwt
import pytest
import requests

from tests.e2e.conftest import free_port
from tests.e2e.load import CLOSE
from tests.e2e.load import XHR
from tests.e2e.load import Load
from tests.e2e.load import guest_refresh
from tests.e2e.load import jwks_fetch
from tests.e2e.postgres import PostgresServer
from tests.e2e.test_gunicorn import WORKERS
from tests.e2e.test_gunicorn import Gunicorn
from tests.e2e.test_gunicorn import run_gunicorn
from wsgiauth import IdentityVerifier

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parents[2]
#: Client timeout of every request: generous, so only a real hang counts as one.
TIMEOUT = 20.0
GUEST_REF = "user:development/guest"
#: Warm-up: refreshes until every worker has made (and published) its key (bounds).
WARM_UP_REQUESTS = 4000
WARM_UP_SECONDS = 60.0
#: ``TokenFactory.list_cache_seconds`` in the workers: a key list is at most two of these old.
LIST_CACHE_SECONDS = 1.0
#: Seconds of load around each phase of a fault (a bound, not an assertion).
PHASE_SECONDS = 3.0
#: How long the workers get to act on a rotation request, and to recover (bounds on waits).
ROTATION_TIMEOUT = 60.0
RECOVERY_TIMEOUT = 60.0
#: Time for PostgreSQL to be down, with the load on.
DOWN_SECONDS = 5.0
#: JWKS copies fetched (new connections, so from several workers) to verify tokens against.
JWKS_COPIES = 12


# --- the server -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(postgres_server: PostgresServer, tmp_path_factory) -> Iterator[Gunicorn]:
    """Four workers, guest sign-in, keys and user info in one PostgreSQL database."""
    workdir = tmp_path_factory.mktemp("gunicorn-faults-keys")
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    connection = {"host": "127.0.0.1", "port": postgres_server.port, "user": "postgres"}
    config = {
        "app": {"baseUrl": base_url},
        "backend": {
            "baseUrl": base_url,
            "database": {"client": "pg", "connection": {**connection, "database": "faults_keys"}},
        },
        "auth": {
            "environment": "development",
            "session": {"secret": secrets.token_urlsafe(32)},
            "keyStore": {"provider": "database"},
            "providers": {"guest": {}},
        },
    }
    with run_gunicorn(port, config, workdir, "postgres") as running:
        yield running


def config_path(server: Gunicorn) -> Path:
    """The app-config the workers run with (``run_gunicorn`` writes it next to the log)."""
    return server.log_path.parent / "app-config.yaml"


# --- helpers ----------------------------------------------------------------------------


def kid_of(token: str) -> str:
    return str(jwt.get_unverified_header(token)["kid"])


def refresh(server: Gunicorn) -> requests.Response:
    return requests.get(f"{server.auth}/guest/refresh", headers={**XHR, **CLOSE}, timeout=TIMEOUT)


def listed_kids(server: Gunicorn) -> set[str]:
    """The kids of the JWKS of whichever worker answers (a new connection)."""
    response = jwks_fetch(server.auth)(TIMEOUT)
    assert response.status_code == 200, response.text
    return {key["kid"] for key in response.json()["keys"]}


def warm_up(server: Gunicorn) -> set[str]:
    """Refresh (eight at a time) until every worker signs; then let every key list catch up.

    A worker's first key signs as soon as it is published: before this, another
    worker's JWKS may not list it yet. Only rotated keys wait for the lists. Workers
    still booting take no connections, so this waits for them, within bounds.
    """
    kids: set[str] = set()
    deadline = time.monotonic() + WARM_UP_SECONDS
    sent = 0

    def one() -> None:
        nonlocal sent
        while len(kids) < WORKERS and time.monotonic() < deadline and sent < WARM_UP_REQUESTS:
            sent += 1
            response = refresh(server)
            assert response.status_code == 200, f"{response.text}\n{server.log_tail()}"
            kids.add(kid_of(response.json()["backstageIdentity"]["token"]))

    with ThreadPoolExecutor(8) as pool:
        for future in [pool.submit(one) for _ in range(8)]:
            future.result()
    assert len(kids) >= WORKERS, f"{sent} refreshes reached {len(kids)} workers"
    time.sleep(2 * LIST_CACHE_SECONDS + 0.5)
    return kids


def jwks_copies(server: Gunicorn) -> list[jwt.PyJWKSet]:
    """The JWKS as several workers serve it (new connections)."""
    copies = []
    for _ in range(JWKS_COPIES):
        response = jwks_fetch(server.auth)(TIMEOUT)
        assert response.status_code == 200, response.text
        copies.append(jwt.PyJWKSet.from_dict(response.json()))
    return copies


def verification_failures(server: Gunicorn, tokens: list[str]) -> Counter[str]:
    """Verify each token at a random worker's JWKS and with an IdentityVerifier; count failures."""
    copies = jwks_copies(server)
    verifier = IdentityVerifier(f"{server.auth}/.well-known/jwks.json", issuer=server.auth)
    failures: Counter[str] = Counter()
    for token in tokens:
        key_set = random.choice(copies)  # noqa: S311 - picking a copy, not a secret
        try:
            claims = jwt.decode(
                token,
                key_set[kid_of(token)].key,
                algorithms=["ES256"],
                audience="backstage",
                issuer=server.auth,
            )
            assert claims["sub"] == GUEST_REF
        except Exception as exc:  # noqa: BLE001 - counted
            failures[f"jwks: {type(exc).__name__}"] += 1
        try:
            assert verifier.verify(token).user_entity_ref == GUEST_REF
        except Exception as exc:  # noqa: BLE001 - counted
            failures[f"verifier: {type(exc).__name__}"] += 1
    return failures


def run_keys_command(server: Gunicorn, *args: str) -> subprocess.CompletedProcess[str]:
    """``wsgiauth keys ...`` against the workers' config, as an operator runs it."""
    command = [sys.executable, "-m", "wsgiauth.cli", "keys", *args, "--config"]
    return subprocess.run(
        [*command, str(config_path(server))],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


class TokenLog:
    """The tokens of a refresh stream, and whether a JWKS listed each kid on receipt."""

    def __init__(self, server: Gunicorn) -> None:
        self.server = server
        self._lock = threading.Lock()
        self.tokens: list[str] = []
        #: (kid, JWKS status) of each token whose kid the JWKS fetched right after missed
        self.unpublished: list[tuple[str, int]] = []

    def send(self, timeout: float) -> requests.Response:
        """A guest refresh, then at once the JWKS of a random worker (a new connection)."""
        response = requests.get(
            f"{self.server.auth}/guest/refresh", headers={**XHR, **CLOSE}, timeout=timeout
        )
        if response.status_code != 200:
            return response
        token = response.json()["backstageIdentity"]["token"]
        jwks = jwks_fetch(self.server.auth)(timeout)
        listed = jwks.status_code == 200 and kid_of(token) in {
            key["kid"] for key in jwks.json()["keys"]
        }
        with self._lock:
            self.tokens.append(token)
            if not listed:
                self.unpublished.append((kid_of(token), jwks.status_code))
        return response

    def kids(self) -> set[str]:
        with self._lock:
            return {kid_of(token) for token in self.tokens}


def report(title: str, load: Load, streams: list[str]) -> str:
    """Counts of 200, 503 and anything else, per stream and phase (in the order they came)."""
    lines = [title]
    phases = list(dict.fromkeys(o.phase for o in load.outcomes))
    for stream in streams:
        for phase in phases:
            counts = load.counts(stream, phase=phase)
            ok, unavailable = counts.get(200, 0), counts.get(503, 0)
            other = {k: v for k, v in counts.items() if k not in (200, 503)}
            lines.append(f"  {stream:8} {phase:22} 200={ok} 503={unavailable} other={other}")
    text = "\n".join(lines)
    print(text)
    return text


# --- key rotation under load --------------------------------------------------------------


def test_a_rotation_under_load_fails_no_token(server):
    before = warm_up(server)
    tokens = TokenLog(server)
    load = Load(timeout=TIMEOUT, max_seconds=ROTATION_TIMEOUT + 4 * PHASE_SECONDS)
    load.stream("refresh", tokens.send, threads=4)
    load.stream("jwks", jwks_fetch(server.auth), threads=2)
    load.set_phase("before")
    with load:
        time.sleep(PHASE_SECONDS)

        load.set_phase("rotating")
        rotate = run_keys_command(server, "rotate")
        assert rotate.returncode == 0, rotate.stderr
        rotated = load.wait_for(lambda: len(tokens.kids() - before) >= WORKERS, ROTATION_TIMEOUT)
        load.set_phase("after")
        time.sleep(PHASE_SECONDS)

    new_kids = tokens.kids() - before
    summary = report(
        f"rotation: {len(tokens.tokens)} tokens, {len(new_kids)} keys rotated in, "
        f"{len(tokens.unpublished)} signed before published",
        load,
        ["refresh", "jwks"],
    )
    assert rotated, f"workers that moved to a new key: {len(new_kids)}\n{summary}"
    assert len(new_kids) == WORKERS, summary
    assert set(load.counts()) == {200}, f"{summary}\n{server.log_tail()}"
    assert tokens.unpublished == [], summary
    assert len({kid_of(token) for token in tokens.tokens} & before) >= 1  # the old keys signed
    assert verification_failures(server, tokens.tokens) == Counter(), summary
    # The old keys stay listed for the tokens they signed; a new key is the newest.
    assert before | new_kids <= listed_kids(server)
    listing = run_keys_command(server, "list", "--format", "json")
    assert listing.returncode == 0, listing.stderr
    assert listing.stdout.count('"newest": true') == 1
    assert '"rotationRequestedAt": null' not in listing.stdout


# --- PostgreSQL restart under load -----------------------------------------------------------


def _issued(load: Load, phase: str) -> list[str]:
    return [
        o.response.json()["backstageIdentity"]["token"]
        for o in load.outcomes
        if o.stream == "refresh" and o.phase == phase and o.response is not None and o.status == 200
    ]


def test_a_database_restart_under_load(server, postgres_server):
    warm_up(server)
    listed_before = listed_kids(server) | listed_kids(server)
    jwks_down: list[set[str]] = []

    def jwks_while_down(timeout: float) -> requests.Response:
        response = jwks_fetch(server.auth)(timeout)
        if load.phase == "down" and response.status_code == 200:
            jwks_down.append({key["kid"] for key in response.json()["keys"]})
        return response

    load = Load(timeout=TIMEOUT, max_seconds=RECOVERY_TIMEOUT + DOWN_SECONDS + 6 * PHASE_SECONDS)
    load.stream("refresh", guest_refresh(server.auth), threads=3, pause=0.02)
    load.stream("jwks", jwks_while_down, threads=2, pause=0.02)
    load.set_phase("up")
    try:
        with load:
            time.sleep(PHASE_SECONDS)
            load.set_phase("stopping")
            postgres_server.stop()
            load.set_phase("down")
            time.sleep(DOWN_SECONDS)
            load.set_phase("starting")
            postgres_server.start()
            load.set_phase("restarted")
            recovered = load.wait_for(
                lambda: load.counts("refresh", phase="restarted").get(200, 0) >= 1,
                RECOVERY_TIMEOUT,
            )
            load.set_phase("recovered")
            time.sleep(PHASE_SECONDS)
    finally:
        if not _accepts(postgres_server):
            postgres_server.start()

    phases = ["up", "stopping", "down", "starting", "restarted", "recovered"]
    summary = report("database restart:", load, ["refresh", "jwks"])
    everything = load.counts()
    assert set(everything) <= {200, 503}, f"{summary}\n{server.log_tail()}"  # no 500, no hang
    assert set(load.counts("refresh", phase="up")) == {200}, summary
    assert set(load.counts("refresh", phase="down")) == {503}, summary
    assert recovered, summary
    assert set(load.counts("refresh", phase="recovered")) == {200}, summary
    for phase in phases:
        assert set(load.counts("jwks", phase=phase)) == {200}, summary  # the last list, if need be
    assert jwks_down, summary
    assert all(kids == listed_before for kids in jwks_down), summary
    # No key lost: every kid listed before is listed after, and the tokens from before verify.
    assert listed_before <= listed_kids(server) & listed_kids(server)
    assert verification_failures(server, _issued(load, "up")) == Counter(), summary
    assert _issued(load, "up") and _issued(load, "recovered"), summary


def _accepts(postgres: PostgresServer) -> bool:
    import psycopg

    try:
        with psycopg.connect(postgres.dsn, connect_timeout=3):
            return True
    except psycopg.OperationalError:
        return False
