"""The demo portal signs in through OIDC at ``wsgiauth fake-idp``, in Chromium.

The stack ``scripts/demo`` runs when no OpenID provider is configured, as real
processes: ``wsgiauth fake-idp`` with the demo catalog's users, and ``wsgiauth serve``
with the demo's configs (``app-config.yaml`` + ``app-config.oidc.yaml``), moved to a
free port by a third config. The popup shows the fake IdP's sign-in page; the user
picks someone there, exactly as in the demo.
"""

from __future__ import annotations

import os
import queue
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.e2e.browser.conftest import wait_closed
from tests.e2e.conftest import READY_TIMEOUT
from tests.e2e.conftest import REPO_ROOT
from tests.e2e.conftest import _stop
from tests.e2e.conftest import free_port

pytestmark = pytest.mark.e2e

EXAMPLES = REPO_ROOT / "examples"
CLIENT_ID = "wsgiauth-demo"


@dataclass(frozen=True)
class DemoStack:
    url: str
    issuer: str
    logs: Path


def _first_line(proc: subprocess.Popen[str], prefix: str, log: Path) -> str:
    """The first stdout line starting with ``prefix`` (bounded wait), without the prefix."""
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None
    stdout = proc.stdout
    threading.Thread(
        target=lambda: [lines.put(line) for line in iter(stdout.readline, "")], daemon=True
    ).start()
    deadline = time.monotonic() + READY_TIMEOUT * 3
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            if proc.poll() is not None:
                break
            continue
        if line.startswith(prefix):
            return line.removeprefix(prefix).strip()
    _stop(proc)
    pytest.fail(f"no {prefix!r} line (exit {proc.returncode}):\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def demo_stack(tmp_path_factory) -> Iterator[DemoStack]:
    workdir = tmp_path_factory.mktemp("demo-fake-idp")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    secret = secrets.token_urlsafe(24)
    idp_log = workdir / "fake-idp.log"
    with idp_log.open("w") as log:
        idp = subprocess.Popen(
            [sys.executable, "-m", "wsgiauth.cli", "fake-idp", "--port", "0",
             "--users", str(EXAMPLES / "catalog.yaml"), "--client-id", CLIENT_ID,
             "--client-secret", secret, "--redirect-uri", f"{url}/api/auth/oidc/handler/frame"],
            stdout=subprocess.PIPE, stderr=log, text=True, cwd=REPO_ROOT,
        )  # fmt: skip
    try:
        issuer = _first_line(idp, "wsgiauth fake-idp serving on ", idp_log)
        moved = workdir / "port.yaml"
        moved.write_text(yaml.safe_dump({"app": {"baseUrl": url}, "backend": {"baseUrl": url}}))
        env = {
            **os.environ,
            "OIDC_METADATA_URL": f"{issuer}/.well-known/openid-configuration",
            "OIDC_CLIENT_ID": CLIENT_ID,
            "OIDC_CLIENT_SECRET": secret,
            "AUTH_SESSION_SECRET": secrets.token_urlsafe(32),
            "WSGIAUTH_DATA_DIR": str(workdir / "data"),
        }
        serve_log = workdir / "serve.log"
        with serve_log.open("w") as log:
            serve = subprocess.Popen(
                [sys.executable, "-m", "wsgiauth.cli", "serve",
                 "--config", str(EXAMPLES / "app-config.yaml"),
                 "--config", str(EXAMPLES / "app-config.oidc.yaml"),
                 "--config", str(moved), "--port", str(port), "--workers", "1"],
                stdout=subprocess.PIPE, stderr=log, text=True, cwd=REPO_ROOT, env=env,
            )  # fmt: skip
        try:
            _first_line(serve, "wsgiauth serving on ", serve_log)
            yield DemoStack(url=url, issuer=issuer, logs=workdir)
        finally:
            _stop(serve)
            serve.stdout.close()
    finally:
        _stop(idp)
        idp.stdout.close()


def open_popup(page, stack: DemoStack):
    page.goto(stack.url + "/")
    with page.expect_popup() as popup:
        page.get_by_role("button", name="Sign in with OIDC").click()
    sign_in = popup.value
    sign_in.wait_for_load_state("domcontentloaded")
    assert sign_in.url.startswith(stack.issuer + "/authorize?")
    return sign_in


def test_the_demo_signs_in_with_oidc_at_the_fake_idp(context, demo_stack):
    page = context.new_page()
    popup = open_popup(page, demo_stack)
    assert popup.get_by_role("alert").inner_text().startswith("wsgiauth fake-idp: for development")
    assert popup.get_by_role("button", name="Guest").count() == 1

    popup.get_by_role("button", name="Jane Doe").click()
    wait_closed(popup)

    page.wait_for_selector("#profile:not([hidden])")
    assert page.locator("#ref").inner_text() == "user:default/jane"
    assert page.locator("#email").inner_text() == "jane@example.com"
    assert "Signed in with OIDC" in page.locator("#session-info").inner_text()
    page.get_by_role("button", name="Call protected API").click()
    page.wait_for_selector("#api:not([hidden])")
    assert page.locator("#api-status").inner_text().startswith("200")
    assert '"userEntityRef": "user:default/jane"' in page.locator("#api-body").inner_text()

    # A reload signs in again silently, from the refresh cookie (a rotated refresh token).
    page.reload()
    page.wait_for_selector("#profile:not([hidden])")
    assert page.locator("#ref").inner_text() == "user:default/jane"


def test_a_user_the_resolvers_cannot_match_sees_the_error(context, demo_stack):
    page = context.new_page()
    popup = open_popup(page, demo_stack)
    popup.get_by_role("button", name="Guest").click()  # no email in the catalog
    wait_closed(popup)
    page.wait_for_selector("#error:not([hidden])")
    error = page.locator("#error").inner_text()
    assert error == "AuthenticationError: Login failed, user profile does not contain an email"
    assert page.locator("#profile").is_hidden()


def test_cancel_at_the_fake_idp_is_an_error_not_a_session(context, demo_stack):
    page = context.new_page()
    popup = open_popup(page, demo_stack)
    popup.get_by_role("button", name="Cancel").click()
    wait_closed(popup)
    page.wait_for_selector("#error:not([hidden])")
    assert page.locator("#error").inner_text() == (
        "AuthenticationError: Authentication rejected, The user denied the request."
    )
    assert page.locator("#profile").is_hidden()
