"""``auth.fetch`` sends the identity token only to the origins it trusts.

Those are the page's origin, the origin of the client's ``baseUrl`` and the
``tokenOrigins`` option. Two more loopback servers (:class:`Recorder`) stand for
an API in ``tokenOrigins`` and a foreign one; both allow CORS with
``Authorization``, so only the client decides whether the header goes out, and
both record every request they get, preflights included.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from typing import TYPE_CHECKING

import pytest

from tests.e2e.browser.conftest import idp_login
from tests.e2e.browser.conftest import serve_in_thread
from tests.e2e.browser.conftest import user_of
from tests.e2e.conftest import free_port

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse
    from _typeshed.wsgi import WSGIEnvironment

pytestmark = pytest.mark.e2e

JANE = "user:default/jane"
GUEST = "user:development/guest"


@dataclass(frozen=True, slots=True)
class Seen:
    """One request a recorder got."""

    method: str
    path: str
    #: The ``Authorization`` header, or None.
    authorization: str | None
    #: A preflight's ``Access-Control-Request-Headers``, or None.
    requested_headers: str | None
    #: The ``X-Probe`` header, or None.
    probe: str | None


@dataclass(slots=True)
class Recorder:
    """A loopback server on its own origin that records requests and allows any CORS caller."""

    origin: str = ""
    seen: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        with self.lock:
            self.seen.append(
                Seen(
                    method=method,
                    path=environ.get("PATH_INFO") or "/",
                    authorization=environ.get("HTTP_AUTHORIZATION"),
                    requested_headers=environ.get("HTTP_ACCESS_CONTROL_REQUEST_HEADERS"),
                    probe=environ.get("HTTP_X_PROBE"),
                )
            )
        headers = [
            ("Access-Control-Allow-Origin", environ.get("HTTP_ORIGIN", "*")),
            ("Access-Control-Allow-Headers", "Authorization, X-Probe"),
            ("Access-Control-Allow-Methods", "GET"),
            ("Cache-Control", "no-store"),
            ("Vary", "Origin"),
        ]
        if method == "OPTIONS":
            start_response("204 No Content", headers)
            return [b""]
        body = json.dumps({"ok": True}).encode()
        headers += [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        start_response("200 OK", headers)
        return [body]

    def gets(self) -> list[Seen]:
        with self.lock:
            return [seen for seen in self.seen if seen.method == "GET"]

    def asked_for_authorization(self) -> bool:
        """Whether any request carried ``Authorization`` or a preflight asked to send it."""
        with self.lock:
            return any(
                seen.authorization is not None
                or "authorization" in (seen.requested_headers or "").lower()
                for seen in self.seen
            )


def _recorder() -> Iterator[Recorder]:
    port = free_port()
    recorder = Recorder(origin=f"http://localhost:{port}")
    with serve_in_thread(port, recorder):
        yield recorder


@pytest.fixture
def listed() -> Iterator[Recorder]:
    """An API the test page lists in ``tokenOrigins``."""
    yield from _recorder()


@pytest.fixture
def foreign() -> Iterator[Recorder]:
    """An API on an origin the client does not trust."""
    yield from _recorder()


def fetch_json(frontend, expression: str) -> dict:
    """Run ``auth.fetch(...)`` (``expression`` evaluates to its arguments) and return its JSON."""
    result: dict = frontend.page.evaluate(
        f"async () => {{ const r = await t.auth.fetch(...{expression}); return r.json(); }}"
    )
    return result


def test_fetch_sends_the_token_to_the_page_and_listed_origins_only(
    frontend, context, listed, foreign
):
    # A margin longer than any token's life: every trusted fetch refreshes first.
    frontend.open(margin="86400", tokenOrigins=listed.origin)
    popup = frontend.start_popup("signin")
    idp_login(popup, frontend.env, "jane")
    assert user_of(frontend.outcome("signin")["value"]) == JANE
    refreshes: list[str] = []
    context.on("request", lambda r: refreshes.append(r.url) if "/refresh" in r.url else None)

    # A foreign origin, as a URL or a Request: no token, and no refresh for it.
    assert fetch_json(frontend, f"[{json.dumps(foreign.origin + '/url')}]") == {"ok": True}
    request = f"new Request({json.dumps(foreign.origin + '/request')})"
    assert fetch_json(frontend, f"[{request}]") == {"ok": True}
    assert [seen.path for seen in foreign.gets()] == ["/url", "/request"]
    assert not foreign.asked_for_authorization(), foreign.seen
    assert refreshes == []

    # An origin in tokenOrigins gets the (refreshed) token, and a Request keeps its headers.
    url = json.dumps(listed.origin + "/request")
    request = f"new Request({url}, {{headers: {{'X-Probe': 'kept'}}}})"
    assert fetch_json(frontend, f"[{request}]") == {"ok": True}
    (seen,) = listed.gets()
    token = frontend.session()["backstageIdentity"]["token"]
    assert seen.authorization == f"Bearer {token}"
    assert seen.probe == "kept"
    assert len(refreshes) == 1, refreshes

    # The page's own origin: relative URLs and Requests carry the token (whoami verifies it).
    assert fetch_json(frontend, "['/api/whoami']") == {"user": JANE}
    assert fetch_json(frontend, "[new Request('/api/whoami')]") == {"user": JANE}
    assert not foreign.asked_for_authorization(), foreign.seen


def test_fetch_sends_the_token_to_the_auth_backend_from_another_origin(
    frontend, context, browser_env, foreign
):
    # The page is on the other origin; the auth baseUrl is on the backend's.
    frontend.open(origin=browser_env.other, restore="")
    frontend.run("guest", "guest", "signIn")
    assert user_of(frontend.outcome("guest")["value"]) == GUEST
    token = frontend.session()["backstageIdentity"]["token"]
    sent: list[tuple[str, str | None]] = []
    context.on(
        "request",
        lambda r: (
            sent.append((r.url, r.headers.get("authorization")))
            if r.resource_type == "fetch"
            else None
        ),
    )

    # The baseUrl's origin, and the page's own (a relative URL): both get the token.
    jwks = f"{browser_env.auth_base}/.well-known/jwks.json"
    assert "keys" in fetch_json(frontend, f"[{json.dumps(jwks)}]")
    assert frontend.page.evaluate("async () => (await t.auth.fetch('/nothing')).status") == 404
    assert sent == [(jwks, f"Bearer {token}"), (f"{browser_env.other}/nothing", f"Bearer {token}")]

    # Any other origin does not.
    assert fetch_json(frontend, f"[{json.dumps(foreign.origin + '/x')}]") == {"ok": True}
    assert [seen.path for seen in foreign.gets()] == ["/x"]
    assert not foreign.asked_for_authorization(), foreign.seen


def test_token_origins_must_be_origins(frontend):
    frontend.open(restore="")
    errors = frontend.page.evaluate(
        """() => ['https://api.example.com/v1', 'https://api.example.com/', 'api.example.com']
          .map((origin) => {
            try {
              new WsgiAuth({ tokenOrigins: [origin] });
              return null;
            } catch (error) {
              return error.name;
            }
          })"""
    )
    assert errors == ["TypeError"] * 3
    origins = frontend.page.evaluate(
        "() => new WsgiAuth({ tokenOrigins: ['https://api.example.com:8443'] }).tokenOrigins"
    )
    backend = frontend.env.backend
    assert origins == [backend, backend, "https://api.example.com:8443"]
