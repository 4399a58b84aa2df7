"""Real servers on 127.0.0.1 for the end-to-end tests: an OpenID provider and gunicorn.

The unit tests stub the identity provider, so they only prove that wsgiauth
agrees with our own reading of OpenID Connect. Here the IdP is the npm
``oidc-provider`` (``tests/e2e/idp/server.mjs``) and wsgiauth runs under a real
gunicorn with two worker processes, so a login may start on one worker and
finish on the other, as in production. The IdP's built-in login form is driven
with ``requests`` (see :class:`IdpLoginDriver`); a browser comes later.

Missing ``node`` or ``tests/e2e/idp/node_modules`` is a failure, not a skip:
``scripts/test`` installs both, and CI must really run these tests.
"""

from __future__ import annotations

import contextlib
import os
import queue
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin

import pytest
import requests
import yaml

from tests.e2e.postgres import postgres_dsn  # noqa: F401 - PostgreSQL for every e2e test
from tests.e2e.postgres import postgres_server  # noqa: F401

REPO_ROOT = Path(__file__).resolve().parents[2]
IDP_DIR = Path(__file__).resolve().parent / "idp"
CLIENT_ID = "wsgiauth-e2e"
CLIENT_SECRET = "e2e-secret"
CALLBACK_PATH = "/api/auth/oidc/handler/frame"
READY_TIMEOUT = 20.0
HTTP_TIMEOUT = 10.0
#: devInteractions accepts any password.
ANY_PASSWORD = "any-password"


def free_port() -> int:
    """A port that was free a moment ago (bind to 0, read it, release it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tail(path: Path, lines: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "<no log>"


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop a server we started: SIGTERM, then SIGKILL if it lingers."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


# --- the OpenID provider ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class OidcProvider:
    """A running oidc-provider and the one client registered at it."""

    #: ``http://127.0.0.1:<port>``, exactly as the IdP puts it in ``iss``.
    issuer: str
    #: The discovery document URL (what wsgiauth's ``metadataUrl`` takes).
    metadata_url: str
    client_id: str
    client_secret: str
    #: The redirect URIs registered for the client.
    redirect_uris: tuple[str, ...]
    #: stderr of the node process.
    log_path: Path


@contextlib.contextmanager
def run_oidc_provider(redirect_uris: list[str], log_path: Path) -> Iterator[OidcProvider]:
    """Run ``node tests/e2e/idp/server.mjs`` on a free port until the block ends."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed: the e2e tests need Node.js (scripts/test installs it)")
    if not (IDP_DIR / "node_modules" / "oidc-provider").is_dir():
        pytest.fail(f"oidc-provider is not installed: run `npm ci --prefix {IDP_DIR}`")
    args = [node, str(IDP_DIR / "server.mjs"), "--port", "0"]
    for uri in redirect_uris:
        args += ["--redirect-uri", uri]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(args, cwd=IDP_DIR, stdout=subprocess.PIPE, stderr=log)
    try:
        issuer = _wait_for_ready(proc, log_path)
        yield OidcProvider(
            issuer=issuer,
            metadata_url=f"{issuer}/.well-known/openid-configuration",
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            redirect_uris=tuple(redirect_uris),
            log_path=log_path,
        )
    finally:
        _stop(proc)
        if proc.stdout is not None:
            proc.stdout.close()


def _wait_for_ready(proc: subprocess.Popen[bytes], log_path: Path) -> str:
    """Read the IdP's stdout (in a thread, so the wait is bounded) until ``READY <issuer>``."""
    lines: queue.Queue[bytes] = queue.Queue()
    assert proc.stdout is not None
    stdout = proc.stdout

    def pump() -> None:
        for line in iter(stdout.readline, b""):
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + READY_TIMEOUT
    while (remaining := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=min(remaining, 0.5)).decode().strip()
        except queue.Empty:
            if proc.poll() is not None:
                break
            continue
        if line.startswith("READY "):
            return line.removeprefix("READY ")
    _stop(proc)
    pytest.fail(f"oidc-provider did not get ready (exit {proc.returncode}):\n{_tail(log_path)}")


@pytest.fixture(scope="session")
def wsgiauth_port() -> int:
    """The port gunicorn will serve wsgiauth on; chosen first, as the IdP must know the callback."""
    return free_port()


@pytest.fixture(scope="session")
def oidc_provider(
    wsgiauth_port: int, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OidcProvider]:
    """The IdP, with wsgiauth's callback on ``wsgiauth_port`` registered for the client."""
    log_path = tmp_path_factory.mktemp("idp") / "idp.log"
    callback = f"http://127.0.0.1:{wsgiauth_port}{CALLBACK_PATH}"
    with run_oidc_provider([callback], log_path) as provider:
        yield provider


# --- driving the IdP's login form -------------------------------------------


@dataclass(slots=True)
class HtmlForm:
    """One ``<form>`` of a page: where it posts and its named fields."""

    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)


class _FormParser(HTMLParser):
    """Collects the forms and their ``<input>`` fields (enough for devInteractions)."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[HtmlForm] = []
        self._current: HtmlForm | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "form":
            self._current = HtmlForm(
                action=values.get("action", ""), method=values.get("method", "get").lower()
            )
            self.forms.append(self._current)
        elif tag == "input" and self._current is not None and values.get("name"):
            self._current.fields[values["name"]] = values.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None


def parse_forms(html: str) -> list[HtmlForm]:
    """All forms in ``html``."""
    parser = _FormParser()
    parser.feed(html)
    parser.close()
    return parser.forms


class IdpLoginDriver:
    """Plays the user at oidc-provider's devInteractions pages, with a ``requests.Session``.

    Starting from a response that redirects to the IdP (or an authorize URL), it
    follows redirects by hand, fills the login form (any login, any password; the
    login becomes the account id) and the consent form when shown, and stops at
    the first redirect to ``stop_prefix`` (the client's callback), whose URL it
    returns without requesting it.
    """

    max_steps = 12

    def __init__(self, session: requests.Session, *, stop_prefix: str) -> None:
        self.session = session
        self.stop_prefix = stop_prefix
        #: Which interaction pages were seen, in order (``"login"``, ``"consent"``).
        self.prompts: list[str] = []

    def login(
        self,
        start: requests.Response | str,
        *,
        login: str,
        password: str = ANY_PASSWORD,
    ) -> str:
        """Log in as ``login`` and return the callback URL (carrying ``code`` and ``state``)."""
        response = (
            self.session.get(start, allow_redirects=False, timeout=HTTP_TIMEOUT)
            if isinstance(start, str)
            else start
        )
        for _ in range(self.max_steps):
            if response.is_redirect:
                target = urljoin(response.url, response.headers["Location"])
                if target.startswith(self.stop_prefix):
                    return target
                response = self.session.get(target, allow_redirects=False, timeout=HTTP_TIMEOUT)
                continue
            assert response.status_code == 200, (
                f"IdP answered {response.status_code} at {response.url}:\n{response.text[:2000]}"
            )
            form, prompt = self._next_form(response)
            self.prompts.append(prompt)
            data = dict(form.fields)
            if prompt == "login":
                data.update(login=login, password=password)
            response = self.session.request(
                form.method,
                urljoin(response.url, form.action),
                data=data,
                allow_redirects=False,
                timeout=HTTP_TIMEOUT,
            )
        raise AssertionError(f"no redirect to {self.stop_prefix} after {self.max_steps} steps")

    @staticmethod
    def _next_form(response: requests.Response) -> tuple[HtmlForm, str]:
        """The form a user (or the page's own script) would submit next, and its kind.

        Interaction pages carry a hidden ``prompt`` field (``login``/``consent``).
        Other IdP pages (e.g. ending the previous session when a different
        account logs in) submit their only form from JavaScript on load.
        """
        forms = parse_forms(response.text)
        interactions = [f for f in forms if "prompt" in f.fields]
        if len(interactions) == 1:
            return interactions[0], interactions[0].fields["prompt"]
        if len(forms) == 1 and "document.forms[0].submit()" in response.text:
            return forms[0], "auto-submit"
        raise AssertionError(f"no form to submit at {response.url}:\n{response.text[:3000]}")


class IdpLogin:
    """The ``idp_login`` fixture: ``idp_login(session, start, login=...)`` -> callback URL."""

    def __init__(self, provider: OidcProvider) -> None:
        self.provider = provider

    def __call__(
        self,
        session: requests.Session,
        start: requests.Response | str,
        *,
        login: str,
        stop_prefix: str | None = None,
    ) -> str:
        """Log in at the IdP; stop at the (first registered) callback URL and return it."""
        driver = IdpLoginDriver(session, stop_prefix=stop_prefix or self.provider.redirect_uris[0])
        return driver.login(start, login=login)

    def sign_in(
        self,
        session: requests.Session,
        base_url: str,
        *,
        login: str,
        scope: str = "openid",
        timeout: float = HTTP_TIMEOUT,
        log_tail: Callable[[], str] | None = None,
    ) -> str:
        """Start the oidc popup flow at ``base_url`` (its own origin) and log in as ``login``.

        Returns the callback URL (``code`` and ``state``), not yet requested; ``log_tail``
        adds the server's log to a failed ``/start``.
        """
        start = session.get(
            f"{base_url}/api/auth/oidc/start",
            params={"env": "development", "origin": base_url, "scope": scope},
            allow_redirects=False,
            timeout=timeout,
        )
        assert start.status_code == 302, f"start {start.status_code}: {start.text}" + (
            f"\n{log_tail()}" if log_tail else ""
        )
        return self(session, start, login=login, stop_prefix=f"{base_url}{CALLBACK_PATH}")


@pytest.fixture(scope="session")
def idp_login(oidc_provider: OidcProvider) -> IdpLogin:
    """Drives the IdP's login (and consent) pages for a ``requests.Session``."""
    return IdpLogin(oidc_provider)


# --- wsgiauth under gunicorn ------------------------------------------------


@dataclass(frozen=True, slots=True)
class WsgiServer:
    """A running gunicorn serving ``tests/e2e/apps.py``'s app."""

    #: ``http://127.0.0.1:<port>``; also the app origin (``app.baseUrl``).
    base_url: str
    config_path: Path
    #: gunicorn's combined access and error log.
    log_path: Path

    def log_tail(self, lines: int = 80) -> str:
        """The end of the server log, for assertion messages."""
        return _tail(self.log_path, lines)


def e2e_config(base_url: str, provider: OidcProvider) -> dict[str, object]:
    """An app-config (Backstage schema) wiring wsgiauth's ``oidc`` provider to ``provider``."""
    return {
        "app": {"baseUrl": base_url},
        "backend": {"baseUrl": base_url},
        "auth": {
            "environment": "development",
            # Shared by every worker, so a flow may hop between them.
            "session": {"secret": secrets.token_urlsafe(32)},
            "keyStore": {"provider": "memory"},
            "providers": {
                "oidc": {
                    "development": {
                        "metadataUrl": provider.metadata_url,
                        "clientId": provider.client_id,
                        "clientSecret": provider.client_secret,
                        # Backstage's default prompt=none cannot log anyone in.
                        "prompt": "login",
                    }
                }
            },
        },
    }


#: A gunicorn config with wsgiauth's server hooks and nothing else.
HOOKS_CONF = "from wsgiauth.gunicorn_hooks import on_exit, on_starting, post_fork  # noqa: F401\n"


@contextlib.contextmanager
def run_gunicorn(
    port: int,
    config: dict[str, object],
    workdir: Path,
    *,
    workers: int = 2,
    app: str = "tests.e2e.apps:make_app()",
    extra_args: Sequence[str] = (),
) -> Iterator[WsgiServer]:
    """Serve ``app`` (by default ``tests.e2e.apps:make_app()``) with ``config`` on 127.0.0.1.

    Unless ``extra_args`` names a gunicorn config (``-c``), one with wsgiauth's hooks is
    used, as a user's would: the workers share what the config keeps in memory.
    """
    config_path = workdir / "app-config.yaml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    if "-c" not in extra_args:
        hooks = workdir / "gunicorn.conf.py"
        hooks.write_text(HOOKS_CONF)
        extra_args = ["-c", str(hooks), *extra_args]
    log_path = workdir / "gunicorn.log"
    env = {**os.environ, "WSGIAUTH_CONFIG": str(config_path), "PYTHONUNBUFFERED": "1"}
    args = [
        sys.executable,
        "-m",
        "gunicorn",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--access-logfile",
        "-",
        "--access-logformat",
        # The worker pid shows a login hopping between workers.
        '%(h)s pid=%(p)s "%(r)s" %(s)s %(b)s',
        "--error-logfile",
        "-",
    ]
    if gunicorn_version() >= (27,):
        # Else each gunicorn claims the same socket in $HOME, and test runs collide.
        args.append("--no-control-socket")
    args.extend(extra_args)
    args.append(app)
    with log_path.open("wb") as log:
        proc = subprocess.Popen(args, cwd=REPO_ROOT, env=env, stdout=log, stderr=log)
    server = WsgiServer(
        base_url=f"http://127.0.0.1:{port}", config_path=config_path, log_path=log_path
    )
    try:
        _wait_for_http(proc, server)
        yield server
    finally:
        _stop(proc)


def gunicorn_version() -> tuple[int, ...]:
    """The installed gunicorn's (major, minor, ...) version."""
    import gunicorn

    return tuple(gunicorn.version_info)


def _wait_for_http(proc: subprocess.Popen[bytes], server: WsgiServer) -> None:
    """Poll the downstream app until it answers 200, the process dies or time runs out."""
    wait_for_http(proc, f"{server.base_url}/", server.log_path, what="gunicorn")


def wait_for_http(
    proc: subprocess.Popen[bytes],
    url: str,
    log_path: Path,
    *,
    what: str,
    timeout: float = READY_TIMEOUT,
) -> None:
    """Poll ``url`` until it answers 200; else stop ``proc`` and fail with the end of its log.

    A busy machine may accept before the server answers: timeouts are retried too,
    until the process exits or ``timeout`` seconds have passed.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        with contextlib.suppress(requests.ConnectionError, requests.Timeout):
            if requests.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.1)
    _stop(proc)
    pytest.fail(f"{what} did not serve {url} (exit {proc.returncode}):\n{_tail(log_path)}")


@pytest.fixture(scope="session")
def wsgiauth_server(
    wsgiauth_port: int,
    oidc_provider: OidcProvider,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[WsgiServer]:
    """wsgiauth under gunicorn (two workers) with the ``oidc`` provider pointed at the IdP."""
    base_url = f"http://127.0.0.1:{wsgiauth_port}"
    workdir = tmp_path_factory.mktemp("gunicorn")
    with run_gunicorn(wsgiauth_port, e2e_config(base_url, oidc_provider), workdir) as server:
        yield server
