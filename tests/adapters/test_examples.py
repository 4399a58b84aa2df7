"""The framework examples: each builds its app on the demo config and signs in as guest.

In-process with WebTest first (every example module exposes ``make_app``; the
Django project is loaded through its own settings), then each one command from
the README for real, on a free port on 127.0.0.1.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from wsgiref.validate import validator

import pytest
import requests
import webtest

EXAMPLES = Path(__file__).parent.parent.parent / "examples"
DEMO_CONFIG = str(EXAMPLES / "app-config.yaml")
MODULES = ["plain_wsgi", "pyramid_app", "bottle_app", "flask_app"]


def load(name: str, monkeypatch):
    """Import ``examples/<name>.py`` (Pyramid's Configurator looks its caller up in sys.modules)."""
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    return module


def check_guest_sign_in(app: webtest.TestApp) -> None:
    """The page loads the client, /private needs a token, the guest's token opens it."""
    assert '<script src="/api/auth/.client/wsgiauth.js">' in app.get("/").text
    assert "WsgiAuth" in app.get("/api/auth/.client/wsgiauth.js").text
    refused = app.get("/private", status=401)
    assert refused.json["error"]["name"] == "AuthenticationError"
    token = app.get("/api/auth/guest/refresh").json["backstageIdentity"]["token"]
    body = app.get("/private", headers={"Authorization": f"Bearer {token}"}).json
    assert body["user"] == "user:development/guest"
    # From the demo catalog: the guest is a member of the visitors group.
    assert "group:default/visitors" in body["ownership"]


@pytest.mark.parametrize("name", MODULES)
def test_example_signs_in_as_guest(name, monkeypatch):
    monkeypatch.delenv("WSGIAUTH_CONFIG", raising=False)
    module = load(name, monkeypatch)
    assert module.CONFIG == DEMO_CONFIG
    check_guest_sign_in(webtest.TestApp(validator(module.make_app())))


def test_pyramid_example_checks_group_permissions(monkeypatch):
    app = webtest.TestApp(validator(load("pyramid_app", monkeypatch).make_app(DEMO_CONFIG)))
    token = app.get("/api/auth/guest/refresh").json["backstageIdentity"]["token"]
    visitors = app.get("/visitors", headers={"Authorization": f"Bearer {token}"})
    assert visitors.json["user"] == "user:development/guest"


@pytest.fixture
def django_example(django_configured, monkeypatch):
    """The example project's settings in force, its package importable."""
    from django.test import override_settings

    monkeypatch.delenv("WSGIAUTH_CONFIG", raising=False)
    monkeypatch.syspath_prepend(str(EXAMPLES / "django_app"))
    for module in [m for m in sys.modules if m == "demo_site" or m.startswith("demo_site.")]:
        monkeypatch.delitem(sys.modules, module)
    settings = importlib.import_module("demo_site.settings")
    values = {key: getattr(settings, key) for key in dir(settings) if key.isupper()}
    with override_settings(**values):
        yield importlib.import_module("demo_site.wsgi").application


def test_django_example_signs_in_as_guest(django_example):
    app = webtest.TestApp(validator(django_example))
    check_guest_sign_in(app)
    app.get("/api/me", status=401)
    token = app.get("/api/auth/guest/refresh").json["backstageIdentity"]["token"]
    me = app.get("/api/me", headers={"Authorization": f"Bearer {token}"}).json
    assert me == {"username": "user:development/guest"}


# -- the one commands, for real -----------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


COMMANDS = {
    "plain_wsgi": ["examples/plain_wsgi.py"],
    "pyramid_app": ["examples/pyramid_app.py"],
    "bottle_app": ["examples/bottle_app.py"],
    "flask_app": ["examples/flask_app.py"],
    "django_app": ["examples/django_app/manage.py", "runserver", "127.0.0.1:{port}"],
}


@pytest.mark.e2e
@pytest.mark.parametrize("name", list(COMMANDS))
def test_example_command_serves_and_signs_in_as_guest(name, tmp_path):
    port = free_port()
    args = [sys.executable, *(arg.format(port=port) for arg in COMMANDS[name])]
    env = {**os.environ, "PORT": str(port), "PYTHONUNBUFFERED": "1"}
    env.pop("WSGIAUTH_CONFIG", None)
    log = (tmp_path / "server.log").open("wb")
    # Its own session, so that Django's autoreloader child goes down with it.
    process = subprocess.Popen(
        args,
        cwd=EXAMPLES.parent,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, (tmp_path / "server.log").read_text()
            try:
                refreshed = requests.get(f"{base}/api/auth/guest/refresh", timeout=5)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, (tmp_path / "server.log").read_text()
                time.sleep(0.1)
        token = refreshed.json()["backstageIdentity"]["token"]
        assert requests.get(f"{base}/private", timeout=5).status_code == 401
        private = requests.get(
            f"{base}/private", headers={"Authorization": f"Bearer {token}"}, timeout=5
        )
        assert private.json()["user"] == "user:development/guest"
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
        log.close()
