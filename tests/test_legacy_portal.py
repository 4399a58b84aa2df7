"""examples/legacy_portal: an old WSGI app authorizing on REMOTE_USER, signed in through wsgiauth.

The portal's users table is the catalog (SqlCatalog), guest sign-in is mapped
to one of its users, and the portal's unchanged admin check decides from
REMOTE_USER and its own ``admins`` group.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from wsgiref.validate import validator

import jwt
import pytest
import requests
import webtest
import yaml

from examples.legacy_portal import CONFIG_PATH
from examples.legacy_portal import OAUTH2_PROXY_CONFIG_PATH
from examples.legacy_portal import bare_user_names
from examples.legacy_portal import make_app
from wsgiauth import load_config
from wsgiauth.check import check_config

REPO_ROOT = Path(__file__).resolve().parents[1]


def portal(tmp_path, guest_ref=None):
    """The wrapped portal over a fresh database; guest signs in as ``guest_ref`` if given."""
    paths = [CONFIG_PATH]
    if guest_ref is not None:
        override = tmp_path / "override.yaml"
        override.write_text(
            yaml.safe_dump({"auth": {"providers": {"guest": {"userEntityRef": guest_ref}}}})
        )
        paths.append(override)
    return webtest.TestApp(validator(make_app(tmp_path / "portal.db", load_config(*paths))))


def sign_in(testapp):
    """Guest sign-in, as the portal's sign-in script does it; returns the identity token."""
    return testapp.get("/api/auth/guest/refresh").json["backstageIdentity"]["token"]


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def main_of(response):
    """The ``<main>`` of a portal page, the part the sign-in script swaps in."""
    text = response.text
    return text[text.index("<main>") : text.index("</main>")]


@pytest.fixture
def testapp(tmp_path):
    return portal(tmp_path)


def test_guest_token_names_a_user_of_the_table_with_its_groups(testapp):
    claims = jwt.decode(sign_in(testapp), options={"verify_signature": False})

    assert claims["sub"] == "user:default/alice"
    assert claims["ent"] == ["user:default/alice", "group:default/admins", "group:default/staff"]


def test_admin_page_allowed_for_a_member_of_admins(testapp):
    response = testapp.get("/admin", headers=bearer(sign_in(testapp)))

    assert response.status_int == 200
    assert "<td>bob</td><td>staff</td>" in main_of(response)


@pytest.mark.parametrize(
    "user",
    [pytest.param("bob", id="staff-only"), pytest.param("carol", id="no-groups")],
)
def test_admin_page_denied_for_other_users(tmp_path, user):
    testapp = portal(tmp_path, guest_ref=f"user:default/{user}")

    response = testapp.get("/admin", headers=bearer(sign_in(testapp)), status=403)

    assert f"{user} is not an administrator" in main_of(response)


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-token"),
        pytest.param(bearer("not.a.token"), id="garbage-token"),
        # The server sets REMOTE_USER; a header only ever becomes HTTP_REMOTE_USER.
        pytest.param({"Remote-User": "alice"}, id="spoofed-header"),
    ],
)
def test_admin_page_asks_to_sign_in_without_a_valid_token(testapp, headers):
    response = testapp.get("/admin", headers=headers, status=401)

    assert "Sign in first" in main_of(response)


def test_tampered_token_is_not_trusted(testapp):
    token = sign_in(testapp)
    header, payload, signature = token.split(".")
    forged = f"{header}.{payload}.{signature[:-6]}AAAAAA"

    testapp.get("/admin", headers=bearer(forged), status=401)


def test_group_changes_in_the_table_apply_at_once(tmp_path):
    testapp = portal(tmp_path, guest_ref="user:default/bob")
    token = sign_in(testapp)
    testapp.get("/admin", headers=bearer(token), status=403)

    with contextlib.closing(sqlite3.connect(tmp_path / "portal.db")) as db, db:
        db.execute("UPDATE users SET groups = 'staff, admins' WHERE username = 'bob'")

    assert testapp.get("/admin", headers=bearer(token)).status_int == 200


def test_user_outside_the_table_is_signed_in_but_not_an_admin(tmp_path):
    # The guest's default ref is in namespace "development": not a portal user.
    testapp = portal(tmp_path, guest_ref="user:development/guest")
    token = sign_in(testapp)

    home = testapp.get("/", headers=bearer(token))
    assert "Hello, user:development/guest." in main_of(home)
    testapp.get("/admin", headers=bearer(token), status=403)
    testapp.get("/profile", headers=bearer(token), status=401)


def test_profile_shows_the_signed_in_user_from_the_table(testapp):
    response = testapp.get("/profile", headers=bearer(sign_in(testapp)))

    assert "Alice Admin (alice), alice@example.com" in main_of(response)
    assert "Groups: admins, staff" in main_of(response)


def test_pages_and_sign_in_scripts_are_served(testapp):
    home = testapp.get("/")
    assert "Hello, stranger" in main_of(home)
    assert '<script src="/api/auth/.client/wsgiauth.js">' in home.text
    script = testapp.get("/static/sign-in.js").text
    assert "auth.provider('guest', { proxy: true, title: 'Guest' })" in script
    assert "provider.signIn()" in script
    assert "Sign in as guest" in home.text
    assert "WsgiAuth" in testapp.get("/api/auth/.client/wsgiauth.js").text
    testapp.get("/nowhere", status=404)


# --- the variant behind oauth2-proxy ------------------------------------------------
# In process, the proxy's headers are sent directly: the end-to-end run through a
# header-injecting proxy in front of gunicorn is tests/e2e/test_oauth2_proxy.py.

PROXY_REFRESH = "/api/auth/oauth2Proxy/refresh"


def forwarded(user):
    """What oauth2-proxy sets for a signed-in portal user."""
    return {"X-Forwarded-User": user, "X-Forwarded-Email": f"{user}@example.com"}


@pytest.fixture
def behind_proxy(tmp_path):
    """The portal with the oauth2-proxy variant config, given as a path (as gunicorn would)."""
    app = make_app(tmp_path / "portal.db", str(OAUTH2_PROXY_CONFIG_PATH))
    return webtest.TestApp(validator(app))


def test_oauth2_proxy_variant_config_passes_check_config():
    assert check_config(OAUTH2_PROXY_CONFIG_PATH) == []


@pytest.mark.parametrize(
    ("user", "groups"),
    [
        pytest.param("alice", ["group:default/admins", "group:default/staff"], id="alice"),
        pytest.param("bob", ["group:default/staff"], id="bob"),
    ],
)
def test_forwarded_user_signs_in_as_that_user_of_the_table(behind_proxy, user, groups):
    body = behind_proxy.get(PROXY_REFRESH, headers=forwarded(user)).json
    claims = jwt.decode(body["backstageIdentity"]["token"], options={"verify_signature": False})

    assert claims["sub"] == f"user:default/{user}"
    assert claims["ent"] == [f"user:default/{user}", *groups]
    assert body["profile"] == {"email": f"{user}@example.com", "displayName": user}


def test_forwarded_user_reaches_the_portal_as_remote_user(behind_proxy):
    token = behind_proxy.get(PROXY_REFRESH, headers=forwarded("bob")).json["backstageIdentity"]
    headers = bearer(token["token"])

    assert "Hello, bob." in main_of(behind_proxy.get("/", headers=headers))
    assert "Bob Builder (bob)" in main_of(behind_proxy.get("/profile", headers=headers))
    denied = behind_proxy.get("/admin", headers=headers, status=403)
    assert "bob is not an administrator" in main_of(denied)


def test_forwarded_user_outside_the_table_is_refused(behind_proxy):
    response = behind_proxy.get(PROXY_REFRESH, headers=forwarded("mallory"), status=404)

    assert response.json["error"]["name"] == "NotFoundError"


def test_without_the_proxys_headers_there_is_no_sign_in(behind_proxy):
    response = behind_proxy.get(PROXY_REFRESH, status=401)

    assert response.json["error"]["name"] == "AuthenticationError"
    # The header alone is no identity for the portal: only the token sets REMOTE_USER.
    behind_proxy.get("/admin", headers=forwarded("alice"), status=401)


def test_oauth2_proxy_variant_signs_in_through_the_oauth2proxy_provider(behind_proxy):
    home = behind_proxy.get("/")
    script = behind_proxy.get("/static/sign-in.js").text

    assert '<button id="sign-in" type="button">Sign in</button>' in home.text
    assert "const provider = auth.provider('oauth2Proxy');" in script
    assert "guest" not in script
    # The guest provider is not configured in this variant.
    behind_proxy.get("/api/auth/guest/refresh", status=404)


@pytest.mark.parametrize(
    ("remote_user", "seen"),
    [
        pytest.param("user:default/alice", "alice", id="default-namespace"),
        pytest.param("user:other/alice", "user:other/alice", id="other-namespace"),
        pytest.param("group:default/admins", "group:default/admins", id="not-a-user"),
        pytest.param(None, None, id="none"),
    ],
)
def test_bare_user_names(remote_user, seen):
    captured = {}

    def app(environ, start_response):
        captured["user"] = environ.get("REMOTE_USER")
        start_response("200 OK", [])
        return [b""]

    environ = {} if remote_user is None else {"REMOTE_USER": remote_user}
    bare_user_names(app)(environ, lambda *args: None)

    assert captured["user"] == seen


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def served_portal(tmp_path_factory):
    """``python -m examples.legacy_portal`` on a free port; its base URL."""
    tmp_path = tmp_path_factory.mktemp("legacy-portal")
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "examples.legacy_portal", "--port", str(port)]
    command += ["--db", str(tmp_path / "portal.db")]
    log = tmp_path / "portal.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(command, cwd=REPO_ROOT, stdout=out, stderr=out, env=os.environ)
    try:
        deadline = time.monotonic() + 20
        while True:
            with contextlib.suppress(requests.ConnectionError):
                if requests.get(f"{base}/", timeout=2).status_code == 200:
                    break
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.e2e
def test_one_command_serves_the_portal(served_portal):
    refreshed = requests.get(f"{served_portal}/api/auth/guest/refresh", timeout=5)
    token = refreshed.json()["backstageIdentity"]["token"]

    admin = requests.get(f"{served_portal}/admin", headers=bearer(token), timeout=5)

    assert admin.status_code == 200, admin.text
