"""wsgiauth under gunicorn with four workers sharing one key store, as deployed.

gunicorn runs ``wsgiauth.wsgi:application`` with ``examples/gunicorn.conf.py``
(gthread workers), in front of :func:`whoami` (``WSGIAUTH_APP``), once with
the key store in a SQLite file and once in PostgreSQL, with one
``auth.session.secret``. The access log of that config names the worker pid
and the user agent, so each request is given its own agent and the log says
which worker served it. Requests to gunicorn send ``Connection: close`` where
the worker matters: a kept-alive connection would stay with one worker.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import jwt
import pytest
import requests
import yaml

from tests.e2e.conftest import CALLBACK_PATH
from tests.e2e.conftest import IdpLogin
from tests.e2e.conftest import e2e_config
from tests.e2e.conftest import free_port
from tests.e2e.conftest import gunicorn_version
from tests.e2e.conftest import run_oidc_provider
from tests.e2e.conftest import wait_for_http
from tests.e2e.postgres import postgres_server  # noqa: F401 - a fixture
from wsgiauth import AuthenticationError
from wsgiauth import IdentityVerifier

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parents[2]
GUNICORN_CONF = REPO_ROOT / "examples" / "gunicorn.conf.py"
WORKERS = 4
TIMEOUT = 10
READY_TIMEOUT = 30
#: How long to wait for a request's access-log line (written after the response).
LOG_TIMEOUT = 5
MAX_LOGINS = 30
MAX_TRIES = 60
BURST = 2000
CONCURRENCY = 16
#: ``TokenFactory.list_cache_seconds``: a worker's JWKS shows a key another worker
#: published at most this long ago.
KEY_LIST_CACHE_SECONDS = 1.0
CLOSE = {"Connection": "close"}
GUEST_REF = "user:development/guest"
_LOG_LINE = re.compile(
    r'pid=<(?P<pid>\d+)> "(?P<method>\S+) (?P<path>\S+) [^"]*" (?P<status>\d+) '
    r'.* "(?P<agent>[^"]*)"$'
)


def whoami(environ, start_response):
    """The wrapped app: which worker answered, and who the identity middleware says called."""
    body = json.dumps({"pid": os.getpid(), "user": environ.get("REMOTE_USER")}).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


#: Tokens are required there; elsewhere whoami answers anyone.
whoami.protected_paths = ("/whoami",)  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Gunicorn:
    """A running gunicorn and where its log goes."""

    base_url: str
    log_path: Path
    store: str

    @property
    def auth(self) -> str:
        return f"{self.base_url}/api/auth"

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def served(self) -> list[tuple[int, str, str]]:
        """``(worker pid, path, user agent)`` of each request in the access log so far."""
        return [
            (int(match["pid"]), match["path"], match["agent"])
            for line in self.log_path.read_text(errors="replace").splitlines()
            if (match := _LOG_LINE.search(line))
        ]

    def served_by(self, path: str, agent: str) -> int:
        """The pid of the worker that served ``path`` to ``agent``, from the access log."""
        deadline = time.monotonic() + LOG_TIMEOUT
        while True:
            for pid, served_path, served_agent in self.served():
                if (served_path, served_agent) == (path, agent):
                    return pid
            assert time.monotonic() < deadline, f"no log line for {path} {agent}\n{self.log_tail()}"
            time.sleep(0.05)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@contextlib.contextmanager
def run_gunicorn(port: int, config: dict, workdir: Path, store: str) -> Iterator[Gunicorn]:
    """``gunicorn -c examples/gunicorn.conf.py`` with four workers, until the block ends."""
    config_path = workdir / "app-config.yaml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    log_path = workdir / "gunicorn.log"
    env = {
        **os.environ,
        "WSGIAUTH_CONFIG": str(config_path),
        "WSGIAUTH_APP": f"{__name__}:whoami",
        "PYTHONUNBUFFERED": "1",
    }
    args = [sys.executable, "-m", "gunicorn", "-c", str(GUNICORN_CONF)]
    args += ["--bind", f"127.0.0.1:{port}", "--workers", str(WORKERS)]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(args, cwd=REPO_ROOT, env=env, stdout=log, stderr=log)
    server = Gunicorn(base_url=f"http://127.0.0.1:{port}", log_path=log_path, store=store)
    try:
        # Workers still booting leave connections waiting in the listen queue.
        wait_for_http(proc, f"{server.base_url}/", log_path, what="gunicorn", timeout=READY_TIMEOUT)
        yield server
    finally:
        _stop(proc)


# --- fixtures ---------------------------------------------------------------


@pytest.fixture(scope="module")
def ports() -> dict[str, int]:
    """One port per key store variant, known before the IdP registers the callbacks."""
    return {"sqlite": free_port(), "postgres": free_port()}


@pytest.fixture(scope="module")
def idp(ports, tmp_path_factory):
    uris = [f"http://127.0.0.1:{port}{CALLBACK_PATH}" for port in ports.values()]
    with run_oidc_provider(uris, tmp_path_factory.mktemp("idp") / "idp.log") as provider:
        yield provider


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(request, ports, idp, tmp_path_factory) -> Iterator[Gunicorn]:
    """Four workers sharing a key store (SQLite file or PostgreSQL) and one session secret."""
    store = request.param
    workdir = tmp_path_factory.mktemp(f"gunicorn-{store}")
    if store == "sqlite":
        connection: object = {"filename": str(workdir / "auth.sqlite3")}
        database = {"client": "better-sqlite3", "connection": connection}
    else:
        pg = request.getfixturevalue("postgres_server")
        # A database that does not exist yet: the workers create it on first use.
        connection = {"host": "127.0.0.1", "port": pg.port, "user": "postgres"}
        database = {"client": "pg", "connection": {**connection, "database": "gunicorn_e2e"}}
    port = ports[store]
    base_url = f"http://127.0.0.1:{port}"
    config = e2e_config(base_url, idp)
    config["backend"]["database"] = database
    auth = config["auth"]
    auth["keyStore"] = {"provider": "database"}
    oidc = auth["providers"]["oidc"]["development"]
    oidc["signIn"] = {
        "resolvers": [
            {
                "resolver": "emailLocalPartMatchingUserEntityName",
                "dangerouslyAllowSignInWithoutUserInCatalog": True,
            }
        ]
    }
    auth["providers"]["guest"] = {}
    with run_gunicorn(port, config, workdir, store) as running:
        yield running


# --- helpers ----------------------------------------------------------------


def posted_message(response: requests.Response) -> dict:
    """The message the callback page posts to the app (spec §5.2)."""
    assert response.status_code == 200, response.text
    encoded = re.findall(r"decodeURIComponent\('([^']*)'\)", response.text)
    assert len(encoded) == 2, response.text
    return json.loads(unquote(encoded[0]))


def guest_refresh(session: requests.Session, server: Gunicorn, **kwargs) -> requests.Response:
    return session.get(f"{server.auth}/guest/refresh", timeout=TIMEOUT, **kwargs)


def kid_of(token: str) -> str:
    return jwt.get_unverified_header(token)["kid"]


def tokens_from_two_workers(server: Gunicorn) -> dict[str, str]:
    """Guest tokens, one per signing key, until two workers' keys are seen (bounded)."""
    by_kid: dict[str, str] = {}
    for _ in range(MAX_TRIES):
        response = guest_refresh(requests, server, headers=CLOSE)
        assert response.status_code == 200, response.text
        token = response.json()["backstageIdentity"]["token"]
        by_kid.setdefault(kid_of(token), token)
        if len(by_kid) >= 2:
            return by_kid
    pytest.fail(f"every token was signed by one key in {MAX_TRIES} tries: {by_kid.keys()}")


# --- tests ------------------------------------------------------------------


def test_logins_started_on_one_worker_complete_on_another(server, idp):
    idp_login = IdpLogin(idp)
    hops = []
    for attempt in range(MAX_LOGINS):
        agent = f"login-{server.store}-{attempt}"
        with requests.Session() as browser:
            browser.headers.update({"User-Agent": agent, **CLOSE})
            login = f"hopper{attempt}"
            callback_url = idp_login.sign_in(
                browser, server.base_url, login=login, timeout=TIMEOUT, log_tail=server.log_tail
            )
            done = browser.get(callback_url, allow_redirects=False, timeout=TIMEOUT)

        message = posted_message(done)
        assert message["type"] == "authorization_response", f"{message}\n{server.log_tail()}"
        assert message["response"]["profile"]["email"] == f"{login}@example.com"
        token = message["response"]["backstageIdentity"]["token"]
        assert jwt.decode(token, options={"verify_signature": False})["sub"] == (
            f"user:default/{login}"
        )
        started = server.served_by("/api/auth/oidc/start", agent)
        finished = server.served_by("/api/auth/oidc/handler/frame", agent)
        if started != finished:
            hops.append((started, finished))
            break

    assert hops, f"{MAX_LOGINS} logins all started and finished on the same worker"


def test_tokens_issued_by_one_worker_verify_on_all(server):
    by_kid = tokens_from_two_workers(server)
    time.sleep(KEY_LIST_CACHE_SECONDS + 0.5)  # every worker's key list has caught up

    # The JWKS, fetched again and again until two workers have served it: every
    # copy lists every worker's key, and each token verifies against each copy.
    jwks_pids = set()
    for attempt in range(MAX_TRIES):
        agent = f"jwks-{server.store}-{attempt}"
        response = requests.get(
            f"{server.auth}/.well-known/jwks.json",
            headers={"User-Agent": agent, **CLOSE},
            timeout=TIMEOUT,
        )
        assert response.status_code == 200
        key_set = jwt.PyJWKSet.from_dict(response.json())
        for kid, token in by_kid.items():
            claims = jwt.decode(
                token,
                key_set[kid].key,
                algorithms=["ES256"],
                audience="backstage",
                issuer=server.auth,
            )
            assert claims["sub"] == GUEST_REF
        jwks_pids.add(server.served_by("/api/auth/.well-known/jwks.json", agent))
        if len(jwks_pids) >= 2:
            break
    assert len(jwks_pids) >= 2, "one worker served every JWKS request"

    verifier = IdentityVerifier(f"{server.auth}/.well-known/jwks.json", issuer=server.auth)
    for token in by_kid.values():
        assert verifier.verify(token).user_entity_ref == GUEST_REF

    # Each worker verifies in process, from the shared store. A token accepted by two
    # workers was accepted by at least one that did not sign it.
    for kid, token in by_kid.items():
        verified_by = set()
        for _ in range(MAX_TRIES):
            response = requests.get(
                f"{server.base_url}/whoami",
                headers={"Authorization": f"Bearer {token}", **CLOSE},
                timeout=TIMEOUT,
            )
            assert response.status_code == 200, f"{kid}: {response.text}"
            assert response.json()["user"] == GUEST_REF
            verified_by.add(response.json()["pid"])
            if len(verified_by) >= 2:
                break
        assert len(verified_by) >= 2, f"only worker {verified_by} verified the token of {kid}"


def test_a_forged_token_is_refused_by_every_worker(server):
    token = next(iter(tokens_from_two_workers(server).values()))
    header, payload, signature = token.split(".")
    forged = f"{header}.{payload}.{'A' * len(signature)}"

    statuses = Counter(
        requests.get(
            f"{server.base_url}/whoami",
            headers={"Authorization": f"Bearer {forged}", **CLOSE},
            timeout=TIMEOUT,
        ).status_code
        for _ in range(20)
    )

    assert statuses == {401: 20}
    verifier = IdentityVerifier(f"{server.auth}/.well-known/jwks.json", issuer=server.auth)
    with pytest.raises(AuthenticationError):
        verifier.verify(forged)


def test_a_burst_of_concurrent_refreshes_gets_no_5xx(server):
    local = threading.local()
    sessions: list[requests.Session] = []
    lock = threading.Lock()

    def refresh(_: int) -> tuple[object, str | None]:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
            with lock:
                sessions.append(session)
        try:
            response = guest_refresh(session, server)
        except requests.RequestException as exc:
            return type(exc).__name__, None
        if response.status_code != 200:
            return response.status_code, None
        return 200, response.json()["backstageIdentity"]["token"]

    try:
        with ThreadPoolExecutor(CONCURRENCY) as pool:
            results = list(pool.map(refresh, range(BURST), timeout=600))
    finally:
        for session in sessions:
            session.close()

    statuses = Counter(status for status, _ in results)
    assert statuses == {200: BURST}, f"{statuses}\n{server.log_tail()}"
    kids = Counter(kid_of(token) for _, token in results if token)
    # One signing key per worker process (keys rotate after an hour, not per request).
    assert 1 <= len(kids) <= WORKERS, kids
    verifier = IdentityVerifier(f"{server.auth}/.well-known/jwks.json", issuer=server.auth)
    for token in {token for _, token in results if token}:
        assert verifier.verify(token).user_entity_ref == GUEST_REF


def test_missing_config_variable_stops_gunicorn_naming_it(tmp_path):
    env = {key: value for key, value in os.environ.items() if key != "WSGIAUTH_CONFIG"}
    args = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{free_port()}"]
    if gunicorn_version() >= (27,):
        args.append("--no-control-socket")
    args.append("wsgiauth.wsgi:application")

    result = subprocess.run(
        args, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
    )

    assert result.returncode == 3, result.stderr  # gunicorn's "Worker failed to boot."
    assert "WSGIAUTH_CONFIG is not set" in result.stderr
