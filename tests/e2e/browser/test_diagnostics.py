"""The diagnostics page in Chromium: it renders in development, and refuses elsewhere
without its token.

Development is the session's gunicorn (``browser_env``: oidc against the npm
oidc-provider, guest, a YAML catalog, an SQLite key store). Production is the same
auth app built in this process and served on loopback by a threaded stdlib server,
with ``auth.diagnostics.enabled`` and a token; Chromium sends the token as a
bearer header (``set_extra_http_headers``), as an operator's tool would.
"""

from __future__ import annotations

import json
import secrets
import socketserver
import threading
from collections.abc import Iterator
from wsgiref.simple_server import WSGIRequestHandler
from wsgiref.simple_server import WSGIServer
from wsgiref.simple_server import make_server

import pytest
import requests

from tests.e2e.conftest import free_port
from wsgiauth.app import create_auth_app
from wsgiauth.config import Config
from wsgiauth.middleware import AuthMiddleware

pytestmark = pytest.mark.e2e

TOKEN = secrets.token_urlsafe(32)
CLIENT_SECRET = "browser-client-secret-" + secrets.token_hex(8)
SESSION_SECRET = "browser-session-secret-" + secrets.token_hex(8)


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture(scope="module")
def production(browser_env) -> Iterator[str]:
    """A production auth app with the page enabled behind ``TOKEN``; its auth base URL."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    config = Config.from_dict(
        {
            "app": {"baseUrl": base},
            "backend": {"baseUrl": base},
            "auth": {
                "environment": "production",
                "session": {"secret": SESSION_SECRET},
                "keyStore": {"provider": "memory"},
                "diagnostics": {"enabled": True, "token": TOKEN},
                "providers": {
                    "oidc": {
                        "production": {
                            "metadataUrl": browser_env.idp.metadata_url,
                            "clientId": browser_env.idp.client_id,
                            "clientSecret": CLIENT_SECRET,
                        }
                    }
                },
            },
        }
    )

    def no_app(environ, start_response):
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found"]

    app = AuthMiddleware(no_app, create_auth_app(config))
    server = make_server(
        "127.0.0.1", port, app, server_class=_ThreadingServer, handler_class=_Quiet
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"{base}/api/auth"
    finally:
        server.shutdown()
        server.server_close()


def test_the_page_renders_in_development(context, console, browser_env):
    # A guest token first: a worker publishes its key before it signs.
    signed = requests.get(
        f"{browser_env.auth_base}/guest/refresh",
        headers={"X-Requested-With": "XMLHttpRequest"},
        timeout=10,
    )
    assert signed.status_code == 200, signed.text
    page = context.new_page()
    response = page.goto(f"{browser_env.auth_base}/.diagnostics")

    assert response is not None and response.status == 200, browser_env.log_tail()
    assert page.locator("h1").inner_text() == "wsgiauth diagnostics"
    callbacks = page.locator("code.callback").all_inner_texts()
    assert browser_env.callback in callbacks
    # The oidc provider answered the probes: two "yes" for discovery and JWKS at least.
    assert page.get_by_text("discovery", exact=True).count() >= 1
    assert page.locator("td .ok").count() >= 2
    assert int(page.locator(".entities").inner_text()) == 4  # the session's catalog
    assert page.locator(".next-rotation").inner_text() != "none"
    assert not console.texts("CSP-VIOLATION"), console.entries
    assert not console.texts("PWNED")

    page.goto(f"{browser_env.auth_base}/.diagnostics?format=json")
    report = json.loads(page.locator("body").inner_text())
    oidc = next(p for p in report["providers"] if p["provider"] == "oidc")
    assert oidc["callbackUrl"] == browser_env.callback
    assert [probe["ok"] for probe in oidc["probes"]] == [True, True]


def test_outside_development_it_refuses_without_its_token(context, console, production):
    page = context.new_page()
    refused = page.goto(f"{production}/.diagnostics")

    assert refused is not None and refused.status == 401
    body = json.loads(page.locator("body").inner_text())
    assert body["error"]["name"] == "AuthenticationError"
    assert "callback" not in page.content().lower()

    context.set_extra_http_headers({"Authorization": f"Bearer {TOKEN[:-1]}"})
    assert page.goto(f"{production}/.diagnostics").status == 401

    context.set_extra_http_headers({"Authorization": f"Bearer {TOKEN}"})
    shown = page.goto(f"{production}/.diagnostics")
    assert shown is not None and shown.status == 200
    assert page.locator("h1").inner_text() == "wsgiauth diagnostics"
    assert f"{production}/oidc/handler/frame" in page.locator("code.callback").all_inner_texts()
    html = page.content()
    for secret in (TOKEN, CLIENT_SECRET, SESSION_SECRET):
        assert secret not in html
    assert not console.texts("CSP-VIOLATION"), console.entries
