"""Backstage's development config under several workers: one store, never a silent split.

Backstage's templates use ``backend.database: {client: better-sqlite3, connection:
':memory:'}`` for local development. Served by gunicorn with
``examples/gunicorn.conf.py`` (whose hooks make the server store, see
``wsgiauth.server_store``) and four workers, or by ``wsgiauth serve --workers 4``,
every worker must sign tokens that every other worker's JWKS lists. Sign-ins go
through Backstage's wire (guest refresh with ``X-Requested-With``, and the OIDC
popup flow against the npm oidc-provider), once with ``auth.session.secret`` and
once without (the flow cookies then travel unsealed, and a flow started on one
worker must still finish on another). Every token is checked at the JWKS of a
worker picked by the server (``Connection: close``: a new connection each time)
and by an ``IdentityVerifier`` in this process; failures are counted, and must be
none. A bare gunicorn command, which cannot tell wsgiauth its workers, must refuse
to start, naming the key. The store must be gone once the server stops.
"""

from __future__ import annotations

import contextlib
import os
import random
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path

import jwt
import pytest
import requests
import yaml

from tests.e2e.conftest import CALLBACK_PATH
from tests.e2e.conftest import IdpLogin
from tests.e2e.conftest import OidcProvider
from tests.e2e.conftest import free_port
from tests.e2e.conftest import gunicorn_version
from tests.e2e.conftest import run_oidc_provider
from tests.e2e.test_gunicorn import Gunicorn
from tests.e2e.test_gunicorn import posted_message
from tests.e2e.test_gunicorn import run_gunicorn
from wsgiauth import IdentityVerifier

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parents[2]
WORKERS = 4
TIMEOUT = 20
STARTUP_LIMIT = 60.0
#: Sign-ins per gunicorn run (with a session secret, and again without one).
SIGN_INS = 500
#: Of those, through the OIDC popup flow at the IdP (the rest are guest refreshes).
OIDC_SIGN_INS = 200
#: Under ``wsgiauth serve``: fewer.
SERVE_SIGN_INS = 100
SERVE_OIDC_SIGN_INS = 25
#: Client threads: sign-ins overlap, as browsers' do.
CONCURRENCY = 4
GUEST_REF = "user:development/guest"
XHR = {"X-Requested-With": "XMLHttpRequest"}
CLOSE = {"Connection": "close"}


def backstage_dev_config(base_url: str, idp: OidcProvider, *, secret: bool) -> dict:
    """Backstage's local-development app-config, with guest and OIDC sign-in."""
    auth: dict = {
        "environment": "development",
        "providers": {
            "guest": {},
            "oidc": {
                "development": {
                    "metadataUrl": idp.metadata_url,
                    "clientId": idp.client_id,
                    "clientSecret": idp.client_secret,
                    "prompt": "login",  # Backstage's default prompt=none logs nobody in
                    "signIn": {
                        "resolvers": [
                            {
                                "resolver": "emailLocalPartMatchingUserEntityName",
                                "dangerouslyAllowSignInWithoutUserInCatalog": True,
                            }
                        ]
                    },
                }
            },
        },
    }
    if secret:
        auth["session"] = {"secret": secrets.token_urlsafe(32)}
    return {
        "app": {"baseUrl": base_url},
        "backend": {
            "baseUrl": base_url,
            "database": {"client": "better-sqlite3", "connection": ":memory:"},
        },
        "auth": auth,
    }


# --- counting sign-ins -----------------------------------------------------------------


@dataclass
class Tally:
    """What happened to every sign-in; ``failures`` must stay empty."""

    signed_in: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)
    kids: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail(self, kind: str, detail: str) -> None:
        with self.lock:
            self.failures[kind] += 1
            if len(self.examples) < 5:
                self.examples.append(f"{kind}: {detail[:300]}")

    def ok(self, kind: str, kid: str) -> None:
        with self.lock:
            self.signed_in[kind] += 1
            self.kids[kid] += 1


def guest_sign_in(auth_url: str) -> str:
    """Backstage's guest sign-in: a refresh, on a new connection."""
    response = requests.get(f"{auth_url}/guest/refresh", headers={**XHR, **CLOSE}, timeout=TIMEOUT)
    assert response.status_code == 200, f"guest refresh {response.status_code}: {response.text}"
    return response.json()["backstageIdentity"]["token"]


def oidc_sign_in(base_url: str, idp: OidcProvider, login: str) -> str:
    """Backstage's popup flow: start, the IdP's login form, the callback's posted message.

    The user agent names the flow, so the access log tells which workers served it.
    """
    with requests.Session() as browser:
        browser.headers.update({"User-Agent": f"flow-{login}", **CLOSE})  # a new connection each
        callback = IdpLogin(idp).sign_in(
            browser, base_url, login=login, scope="openid email", timeout=TIMEOUT
        )
        done = browser.get(callback, allow_redirects=False, timeout=TIMEOUT)
    message = posted_message(done)
    assert message["type"] == "authorization_response", message
    assert "response" in message, message
    token = message["response"]["backstageIdentity"]["token"]
    assert jwt.decode(token, options={"verify_signature": False})["sub"] == (
        f"user:default/{login}"
    )
    return token


def check_token(token: str, auth_url: str, verifier: IdentityVerifier, subject: str) -> None:
    """The token verifies at a JWKS fetched on a new connection, and in this process."""
    response = requests.get(f"{auth_url}/.well-known/jwks.json", headers=CLOSE, timeout=TIMEOUT)
    assert response.status_code == 200, f"JWKS {response.status_code}"
    kid = jwt.get_unverified_header(token)["kid"]
    keys = {key["kid"]: key for key in response.json()["keys"]}
    if kid not in keys:
        raise LookupError(f"kid {kid} not in JWKS ({len(keys)} keys)")
    claims = jwt.decode(
        token,
        jwt.PyJWK(keys[kid]).key,
        algorithms=["ES256"],
        audience="backstage",
        issuer=auth_url,
    )
    assert claims["sub"] == subject
    assert verifier.verify(token).user_entity_ref == subject


def sign_in_many(
    base_url: str, idp: OidcProvider, total: int, oidc: int, label: str
) -> tuple[Tally, float]:
    """``total`` sign-ins (``oidc`` of them through the IdP), shuffled, on a few threads."""
    auth_url = f"{base_url}/api/auth"
    verifier = IdentityVerifier(f"{auth_url}/.well-known/jwks.json", issuer=auth_url)
    tally = Tally()
    kinds = ["oidc"] * oidc + ["guest"] * (total - oidc)
    random.shuffle(kinds)

    def one(item: tuple[int, str]) -> None:
        number, kind = item
        login = f"{label}{number}"
        try:
            if kind == "guest":
                token, subject = guest_sign_in(auth_url), GUEST_REF
            else:
                token, subject = oidc_sign_in(base_url, idp, login), f"user:default/{login}"
        except Exception as exc:  # counted, then asserted to be none
            tally.fail(f"{kind} sign-in", repr(exc))
            return
        try:
            check_token(token, auth_url, verifier, subject)
        except Exception as exc:
            tally.fail(f"{kind} verify", repr(exc))
            return
        tally.ok(kind, jwt.get_unverified_header(token)["kid"])

    started = time.monotonic()
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        list(pool.map(one, enumerate(kinds), timeout=900))
    return tally, time.monotonic() - started


def report(label: str, tally: Tally, seconds: float, workers: int | str) -> str:
    line = (
        f"{label}: {sum(tally.signed_in.values())} signed in ({dict(tally.signed_in)}), "
        f"failures {dict(tally.failures)}, {len(tally.kids)} signing keys, "
        f"{workers} workers issued tokens, {seconds:.1f} s"
    )
    print(f"\n{line}")  # the figures for the record (pytest -s)
    return line


# --- fixtures ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ports() -> dict[str, int]:
    return {"secret": free_port(), "no-secret": free_port(), "serve": free_port()}


@pytest.fixture(scope="module")
def idp(ports, tmp_path_factory) -> Iterator[OidcProvider]:
    uris = [f"http://127.0.0.1:{port}{CALLBACK_PATH}" for port in ports.values()]
    with run_oidc_provider(uris, tmp_path_factory.mktemp("idp") / "idp.log") as provider:
        yield provider


@pytest.fixture
def private_tmp(tmp_path, monkeypatch) -> Path:
    """A TMPDIR of the test's own for the server, to see its store come and go."""
    directory = tmp_path / "tmp"
    directory.mkdir()
    monkeypatch.setenv("TMPDIR", str(directory))
    monkeypatch.delenv("WSGIAUTH_SERVER_STORE", raising=False)
    monkeypatch.delenv("WSGIAUTH_SINGLE_PROCESS", raising=False)
    # Eight threads a worker: each provider's bulkhead (half of them) then holds every
    # sign-in the client threads can have in flight, and none is shed with a 503.
    monkeypatch.setenv("GUNICORN_THREADS", str(2 * CONCURRENCY))
    return directory


SIGN_IN_PATHS = {"/api/auth/guest/refresh", "/api/auth/oidc/handler/frame"}
JWKS_PATHS = {"/api/auth/.well-known/jwks.json"}


def pids_serving(server: Gunicorn, paths: set[str]) -> set[int]:
    """The workers that answered requests for ``paths``."""
    return {pid for pid, path, _ in server.served() if path in paths}


def flows_that_hopped(server: Gunicorn) -> int:
    """OIDC flows whose callback a worker served that did not serve their start."""
    started: dict[str, int] = {}
    finished: dict[str, int] = {}
    for pid, path, agent in server.served():
        if path == "/api/auth/oidc/start":
            started[agent] = pid
        elif path == CALLBACK_PATH:
            finished[agent] = pid
    return sum(1 for agent, pid in finished.items() if started.get(agent, pid) != pid)


# --- tests ------------------------------------------------------------------------------


@pytest.mark.parametrize("secret", [True, False], ids=["session-secret", "no-session-secret"])
def test_backstage_dev_config_under_gunicorn_signs_in_every_time(
    ports, idp, tmp_path, private_tmp, secret
):
    variant = "secret" if secret else "no-secret"
    port = ports[variant]
    config = backstage_dev_config(f"http://127.0.0.1:{port}", idp, secret=secret)

    with run_gunicorn(port, config, tmp_path, store=":memory:") as server:
        stores = list(private_tmp.glob("wsgiauth-server-*/"))
        assert len(stores) == 1, stores
        tally, seconds = sign_in_many(server.base_url, idp, SIGN_INS, OIDC_SIGN_INS, variant)
        pids = pids_serving(server, SIGN_IN_PATHS)
        jwks_pids = pids_serving(server, JWKS_PATHS)
        line = report(f"gunicorn {WORKERS} workers, {variant}", tally, seconds, len(pids))
        hopped = flows_that_hopped(server)
        print(f"{len(jwks_pids)} workers served the JWKS; {hopped} OIDC flows hopped workers")
        assert stores[0].is_dir()

    assert not tally.failures, f"{line}\n{tally.examples}\n{server.log_tail()}"
    assert sum(tally.signed_in.values()) == SIGN_INS
    assert tally.signed_in["oidc"] == OIDC_SIGN_INS
    # Every worker signs with a key of its own: several signed, and all verified anywhere.
    assert 2 <= len(tally.kids) <= WORKERS, tally.kids
    assert 2 <= len(pids) <= WORKERS, pids
    assert 2 <= len(jwks_pids) <= WORKERS, jwks_pids  # new connections reach several
    assert hopped >= 1  # flows started on one worker finished on another
    assert list(private_tmp.iterdir()) == [], "the store outlived the server"


@dataclass
class Served:
    proc: subprocess.Popen[str]
    base_url: str
    log_path: Path

    def stop(self) -> int:
        """SIGTERM (a graceful stop), then SIGKILL the group if it lingers; the exit status."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=TIMEOUT * 2)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            raise
        finally:
            if self.proc.stdout is not None:
                self.proc.stdout.close()


@contextlib.contextmanager
def run_serve(port: int, config: dict, workdir: Path) -> Iterator[Served]:
    """``wsgiauth serve --bare --workers 4`` on granian, until the block ends."""
    config_path = workdir / "app-config.yaml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    log_path = workdir / "serve.log"
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "PYTHONUNBUFFERED": "1"}
    env.pop("WSGIAUTH_CONFIG", None)
    args = ["--config", str(config_path), "--port", str(port), "--workers", str(WORKERS)]
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "wsgiauth.cli", "serve", "--bare", "--access-log", *args],
            stdout=subprocess.PIPE,
            stderr=log,
            env=env,
            cwd=REPO_ROOT,
            text=True,
            start_new_session=True,
        )
    served = Served(proc, f"http://127.0.0.1:{port}", log_path)
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + STARTUP_LIMIT
        while time.monotonic() < deadline and proc.poll() is None:
            if proc.stdout.readline().startswith("wsgiauth serving on "):
                break
        else:
            pytest.fail(f"wsgiauth serve did not start:\n{log_path.read_text()}")
        yield served
    finally:
        if proc.poll() is None:
            served.stop()


def test_backstage_dev_config_under_wsgiauth_serve_signs_in_every_time(
    ports, idp, tmp_path, private_tmp
):
    port = ports["serve"]
    config = backstage_dev_config(f"http://127.0.0.1:{port}", idp, secret=False)

    with run_serve(port, config, tmp_path) as served:
        stores = list(private_tmp.glob("wsgiauth-server-*/"))
        assert len(stores) == 1, stores
        tally, seconds = sign_in_many(
            served.base_url, idp, SERVE_SIGN_INS, SERVE_OIDC_SIGN_INS, "serve"
        )
        # granian's access log names no worker: one signing key per worker counts them.
        line = report(f"wsgiauth serve --workers {WORKERS}", tally, seconds, len(tally.kids))
        assert served.stop() == 0

    assert not tally.failures, f"{line}\n{tally.examples}\n{served.log_path.read_text()[-3000:]}"
    assert sum(tally.signed_in.values()) == SERVE_SIGN_INS
    assert 1 <= len(tally.kids) <= WORKERS, tally.kids
    assert list(private_tmp.iterdir()) == [], "the store outlived the server"


def bare_gunicorn(config_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """``gunicorn wsgiauth.wsgi:application`` without wsgiauth's hooks."""
    env = {**os.environ, "WSGIAUTH_CONFIG": str(config_path)}
    env.pop("WSGIAUTH_SERVER_STORE", None)
    env.pop("WSGIAUTH_SINGLE_PROCESS", None)
    args = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{free_port()}"]
    # One worker: when several fail to boot at once, gunicorn 27's master may trip over
    # its own HaltServer and exit 1 instead of 3. The refusal is the same in each.
    args += ["--workers", "1", *extra]
    if gunicorn_version() >= (27,):
        args.append("--no-control-socket")
    args.append("wsgiauth.wsgi:application")
    return subprocess.run(
        args, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.parametrize(
    ("change", "key"),
    [
        pytest.param(lambda config: None, "backend.database.connection", id="memory-database"),
        pytest.param(
            lambda config: config["auth"].update(keyStore={"provider": "memory"}),
            "auth.keyStore.provider",
            id="memory-key-store",
        ),
    ],
)
def test_a_bare_gunicorn_command_refuses_to_start_naming_the_key(
    idp, tmp_path, change: Callable[[dict], None], key: str
):
    config = backstage_dev_config("http://127.0.0.1:7007", idp, secret=False)
    change(config)
    config_path = tmp_path / "app-config.yaml"
    config_path.write_text(yaml.safe_dump(config))

    result = bare_gunicorn(config_path)

    assert result.returncode == 3, result.stderr  # gunicorn's "Worker failed to boot."
    assert f"{config_path}: {key}: keeps keys in the memory of each worker" in result.stderr
    assert "wsgiauth.gunicorn_hooks" in result.stderr


def test_preload_loads_the_app_before_the_hooks_and_refuses(idp, tmp_path, private_tmp):
    config = backstage_dev_config("http://127.0.0.1:7007", idp, secret=False)
    config_path = tmp_path / "app-config.yaml"
    config_path.write_text(yaml.safe_dump(config))

    result = bare_gunicorn(config_path, "-c", "examples/gunicorn.conf.py", "--preload")

    assert result.returncode != 0, result.stderr
    assert "backend.database.connection: keeps keys in the memory" in result.stderr
    assert list(private_tmp.iterdir()) == []
