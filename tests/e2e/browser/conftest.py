"""Fixtures for the real-browser tests: IdP, gunicorn, a second origin and headless Chromium.

One session-wide setup (:class:`BrowserEnv`):

- the npm ``oidc-provider`` on ``127.0.0.1`` (any login name; ``jane`` has the
  email ``jane@example.com``);
- gunicorn (two workers) serving :func:`tests.e2e.browser.pages.make_app` at
  ``http://localhost:<port>``: wsgiauth with the ``oidc`` and ``guest``
  providers, a YAML catalog where ``jane`` and the guest have groups, an SQLite
  key store shared by the workers, and the test frontend page;
- the same frontend on a second origin, ``http://localhost:<other port>``
  (same site, so SameSite=Lax cookies still flow), allowed by ``backend.cors``
  and ``auth.experimentalExtraAllowedOrigins``; it also serves the hostile pages;
- Debian's Chromium (``/usr/bin/chromium``, never a downloaded browser),
  headless, one per session; each test gets a fresh context (no shared cookies).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socketserver
import subprocess
import sys
import threading
from collections.abc import Callable
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler
from wsgiref.simple_server import WSGIServer
from wsgiref.simple_server import make_server

import pytest
import yaml

from tests.e2e.browser.pages import frontend_app
from tests.e2e.conftest import ANY_PASSWORD
from tests.e2e.conftest import REPO_ROOT
from tests.e2e.conftest import OidcProvider
from tests.e2e.conftest import _stop
from tests.e2e.conftest import free_port
from tests.e2e.conftest import gunicorn_version
from tests.e2e.conftest import run_oidc_provider
from tests.e2e.conftest import wait_for_http

try:
    from playwright.sync_api import Browser
    from playwright.sync_api import BrowserContext
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import Page
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - scripts/test installs it
    sync_playwright = None  # type: ignore[assignment]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # This machine's closed network refuses Chromium's own connections.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Everything the tests load is on loopback; anything else (the IdP page's
    # web font) fails at once instead of waiting on a resolver.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
]
#: Bound on every wait for the page, a popup or a navigation (ms).
TIMEOUT_MS = 10_000
PAGES = "tests.e2e.browser.pages:make_app()"

CATALOG = [
    {
        "apiVersion": "backstage.io/v1alpha1",
        "kind": "User",
        "metadata": {"name": "jane"},
        "spec": {
            "profile": {"displayName": "Jane Doe", "email": "jane@example.com"},
            "memberOf": ["platform"],
        },
    },
    {
        "apiVersion": "backstage.io/v1alpha1",
        "kind": "User",
        "metadata": {"name": "guest", "namespace": "development"},
        "spec": {"memberOf": ["group:default/visitors"]},
    },
    {
        "apiVersion": "backstage.io/v1alpha1",
        "kind": "Group",
        "metadata": {"name": "platform"},
        "spec": {"type": "team", "children": []},
    },
    {
        "apiVersion": "backstage.io/v1alpha1",
        "kind": "Group",
        "metadata": {"name": "visitors"},
        "spec": {"type": "team", "children": []},
    },
]


# --- servers ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BrowserEnv:
    """Where everything runs."""

    #: ``http://localhost:<port>``: wsgiauth, the frontend page and ``/api/whoami``.
    backend: str
    #: ``http://localhost:<other port>``: the same page on another origin, and the hostile pages.
    other: str
    idp: OidcProvider
    #: gunicorn's log, for assertion messages.
    log_path: Path

    @property
    def auth_base(self) -> str:
        """The auth base URL the client talks to."""
        return f"{self.backend}/api/auth"

    @property
    def callback(self) -> str:
        """The oidc provider's callback (``handler/frame``) URL."""
        return f"{self.auth_base}/oidc/handler/frame"

    def log_tail(self, lines: int = 60) -> str:
        """The end of the gunicorn log."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "<no log>"


def browser_config(backend: str, other: str, idp: OidcProvider, workdir: Path) -> dict[str, Any]:
    """app-config for the backend: guest + oidc (with a catalog resolver), CORS for ``other``."""
    catalog = workdir / "catalog.yaml"
    catalog.write_text(yaml.safe_dump_all(CATALOG, sort_keys=False))
    return {
        "app": {"baseUrl": backend},
        "backend": {
            "baseUrl": backend,
            "cors": {"origin": [other], "credentials": True},
            # Shared by both workers: a token signed by one verifies on the other.
            "database": {
                "client": "better-sqlite3",
                "connection": {"filename": str(workdir / "auth.sqlite")},
            },
        },
        "catalog": {"locations": [{"type": "file", "target": str(catalog)}]},
        "auth": {
            "environment": "development",
            "session": {"secret": secrets.token_urlsafe(32)},
            "keyStore": {"provider": "database"},
            "experimentalExtraAllowedOrigins": [other],
            "providers": {
                "guest": {},
                "oidc": {
                    "development": {
                        "metadataUrl": idp.metadata_url,
                        "clientId": idp.client_id,
                        "clientSecret": idp.client_secret,
                        # Backstage's default prompt=none cannot log anyone in.
                        "prompt": "login",
                        "signIn": {
                            "resolvers": [{"resolver": "emailLocalPartMatchingUserEntityName"}]
                        },
                    }
                },
            },
        },
    }


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """No access log on the test output."""


class _ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


@contextlib.contextmanager
def serve_in_thread(port: int, app: Any) -> Iterator[None]:
    """Serve a WSGI app on ``127.0.0.1:port`` from a thread until the block ends."""
    server = make_server(
        "127.0.0.1", port, app, server_class=_ThreadingWSGIServer, handler_class=_QuietHandler
    )
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.daemon = True
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@contextlib.contextmanager
def run_pages_server(port: int, config: dict[str, Any], workdir: Path) -> Iterator[Path]:
    """gunicorn (two workers) serving :data:`PAGES` with ``config`` on ``127.0.0.1:port``.

    Yields the log path. Like ``tests.e2e.conftest.run_gunicorn``, with our own app.
    """
    config_path = workdir / "app-config.yaml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    log_path = workdir / "gunicorn.log"
    env = {**os.environ, "WSGIAUTH_CONFIG": str(config_path), "PYTHONUNBUFFERED": "1"}
    args = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "2"]
    args += ["--access-logfile", "-", "--error-logfile", "-"]
    args += ["--access-logformat", '%(h)s pid=%(p)s "%(r)s" %(s)s %(b)s']
    if gunicorn_version() >= (27,):
        args.append("--no-control-socket")
    args.append(PAGES)
    with log_path.open("wb") as log:
        proc = subprocess.Popen(args, cwd=REPO_ROOT, env=env, stdout=log, stderr=log)
    try:
        wait_for_http(proc, f"http://127.0.0.1:{port}/", log_path, what="gunicorn")
        yield log_path
    finally:
        _stop(proc)


@pytest.fixture(scope="session")
def browser_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserEnv]:
    """The IdP, wsgiauth under gunicorn, and the second origin, for the whole session."""
    port, other_port = free_port(), free_port()
    backend, other = f"http://localhost:{port}", f"http://localhost:{other_port}"
    workdir = tmp_path_factory.mktemp("browser")
    callback = f"{backend}/api/auth/oidc/handler/frame"
    with run_oidc_provider([callback], workdir / "idp.log") as idp:
        config = browser_config(backend, other, idp, workdir)
        with (
            run_pages_server(port, config, workdir) as log_path,
            serve_in_thread(other_port, frontend_app(f"{backend}/api/auth")),
        ):
            yield BrowserEnv(backend=backend, other=other, idp=idp, log_path=log_path)


# --- the browser ------------------------------------------------------------


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless; a missing browser or Playwright is a failure, not a skip."""
    if sync_playwright is None:
        pytest.fail("playwright is not installed: pip install -e '.[test]' (scripts/test does)")
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (scripts/test does)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


@dataclass(slots=True)
class ConsoleLog:
    """Every console message of every page in a context: ``(page URL, type, text)``."""

    entries: list[tuple[str, str, str]] = field(default_factory=list)

    def texts(self, needle: str) -> list[str]:
        """The messages containing ``needle``."""
        return [text for _, _, text in self.entries if needle in text]


#: Runs first in every page and frame: traps ``window.pwned`` (an injected script
#: setting it logs ``PWNED``) and logs CSP violations.
TRAPS = """
(() => {
  let pwned;
  Object.defineProperty(window, 'pwned', {
    configurable: false,
    get() { return pwned; },
    set(value) { pwned = value; console.error('PWNED ' + location.href + ' ' + value); },
  });
  document.addEventListener('securitypolicyviolation', (event) => {
    console.warn('CSP-VIOLATION ' + event.violatedDirective + ' ' + location.href);
  }, true);
})();
"""


@pytest.fixture
def console() -> ConsoleLog:
    """The console messages of the test's browser context."""
    return ConsoleLog()


@pytest.fixture
def context(browser: Browser, console: ConsoleLog) -> Iterator[BrowserContext]:
    """A fresh browser context (own cookies), with bounded waits and the traps installed."""
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    context.set_default_navigation_timeout(TIMEOUT_MS)
    context.add_init_script(TRAPS)
    context.on(
        "console",
        lambda message: console.entries.append(
            (message.page.url if message.page else "", message.type, message.text)
        ),
    )
    try:
        yield context
    finally:
        context.close()


# --- driving pages ----------------------------------------------------------


class Frontend:
    """Drives the test page (``window.t``) in one tab."""

    def __init__(self, page: Page, env: BrowserEnv) -> None:
        self.page = page
        self.env = env

    def open(self, origin: str | None = None, **query: str) -> Frontend:
        """Load the page (on ``origin``, default the backend's) and wait for ``restore``."""
        url = f"{origin or self.env.backend}/"
        if query:
            url += "?" + "&".join(f"{key}={value}" for key, value in query.items())
        self.page.goto(url)
        self.wait("restore")
        return self

    def reload(self) -> Frontend:
        """Reload the page and wait for ``restore``."""
        self.page.reload()
        self.wait("restore")
        return self

    def run(self, key: str, provider: str, method: str, arg: object = None) -> None:
        """Start ``providers[provider][method](arg)`` without waiting for it."""
        self.page.evaluate(
            "([k, p, m, a]) => t.run(k, p, m, a ?? undefined)", [key, provider, method, arg]
        )

    def start_popup(self, key: str, method: str = "signIn", arg: object = None) -> Page:
        """Start an oidc call that opens a popup; return the popup page."""
        with self.page.expect_popup() as popup:
            self.run(key, "oidc", method, arg)
        return popup.value

    def outcome(self, key: str) -> dict[str, Any]:
        """Wait until ``t.outcomes[key]`` settles and return it."""
        return self.wait(key)

    def wait(self, key: str) -> dict[str, Any]:
        self.page.wait_for_function(
            "k => window.t && t.outcomes[k] && t.outcomes[k].state !== 'pending'", arg=key
        )
        return self.state(key)

    def state(self, key: str) -> dict[str, Any]:
        """``t.outcomes[key]`` now (``None`` if never started)."""
        result: dict[str, Any] = self.page.evaluate("k => t.outcomes[k] ?? null", key)
        return result

    def session(self) -> dict[str, Any] | None:
        """``auth.session`` now."""
        result: dict[str, Any] | None = self.page.evaluate("() => t.auth.session")
        return result

    def text(self, selector: str) -> str:
        return self.page.locator(selector).inner_text()


def user_of(session: dict[str, Any] | None) -> str | None:
    """The user entity ref of a session (or outcome value)."""
    if not session:
        return None
    ref: str = session["backstageIdentity"]["identity"]["userEntityRef"]
    return ref


def idp_login(page: Page, env: BrowserEnv, login: str, *, max_steps: int = 8) -> None:
    """Play the user at the IdP in ``page``: fill the login (and consent) forms.

    Returns when the page has left the IdP (to the callback, which closes a
    popup, or back to the app in the redirect flow) or has closed.
    """
    for _ in range(max_steps):
        if page.is_closed():
            return
        try:
            page.wait_for_load_state("domcontentloaded")
        except PlaywrightError:
            if page.is_closed():
                return
            raise
        url = page.url
        if not url.startswith(env.idp.issuer):
            return
        form = page.locator("form:has(input[name=prompt])")
        if form.count() == 0:
            # A page that submits itself (e.g. ending the previous IdP session).
            page.wait_for_url(lambda now, before=url: now != before, wait_until="commit")
            continue
        if form.locator("input[name=prompt]").get_attribute("value") == "login":
            form.locator("input[name=login]").fill(login)
            form.locator("input[name=password]").fill(ANY_PASSWORD)
        try:
            with page.expect_navigation(wait_until="commit"):
                form.locator("button[type=submit]").click()
        except PlaywrightError:
            # The callback page may close the popup before Playwright reports the commit.
            if page.is_closed():
                return
            raise
    raise AssertionError(f"still at the IdP after {max_steps} steps: {page.url}")


def wait_closed(page: Page) -> None:
    """Wait (bounded) for a popup to close itself."""
    if not page.is_closed():
        page.wait_for_event("close")


@pytest.fixture
def frontend(context: BrowserContext, browser_env: BrowserEnv) -> Frontend:
    """The test page in a new tab of the test's context (not loaded yet: call ``open``)."""
    return Frontend(context.new_page(), browser_env)


@pytest.fixture
def new_frontend(context: BrowserContext, browser_env: BrowserEnv) -> Callable[[], Frontend]:
    """Another tab of the same context (same cookies)."""
    return lambda: Frontend(context.new_page(), browser_env)
