"""The pytest plugin, run by pytest itself (``pytester``) on the examples of docs/testing.md.

Each section of the page is a small project: its code blocks that start with a
``# <file name>`` comment are written to a fresh directory, and pytest runs there in a
subprocess, where the plugin is active only through its ``pytest11`` entry point.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

DOC = Path(__file__).resolve().parents[2] / "docs" / "testing.md"
_BLOCK = re.compile(
    r"```(?:python|yaml|toml)\n# ([\w.-]+\.(?:py|yaml|toml))\b[^\n]*\n(.*?)```", re.S
)


def doc_files(section: str) -> dict[str, str]:
    """The files of ``## <section>`` in docs/testing.md, by name."""
    text = DOC.read_text()
    start = text.index(f"\n## {section}\n")
    end = text.find("\n## ", start + 1)
    return {name: body for name, body in _BLOCK.findall(text[start : end if end > 0 else None])}


def write(pytester: pytest.Pytester, files: dict[str, str]) -> None:
    for name, body in files.items():
        (pytester.path / name).write_text(body)


@pytest.fixture
def project(pytester, monkeypatch, tmp_path):
    monkeypatch.setenv("WSGIAUTH_DATA_DIR", str(tmp_path / "data"))
    # Importing examples/django_app's wsgi.py (as the adapter tests do) sets it for good.
    monkeypatch.delenv("DJANGO_SETTINGS_MODULE", raising=False)
    return pytester


def test_the_flask_example_signs_in_in_three_lines(project):
    files = doc_files("Flask")
    assert set(files) == {"myapp.py", "app-config.yaml", "pyproject.toml", "test_private.py"}
    test = files["test_private.py"].split("\n\n\n")[0].strip().splitlines()
    assert len(test) == 3, "the sign-in test is three lines"
    write(project, files)
    result = project.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_the_plain_wsgi_example(project):
    write(project, {**doc_files("Flask"), **doc_files("Plain WSGI")})
    (project.path / "test_private.py").unlink()
    result = project.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_the_django_example(project):
    files = doc_files("Django")
    assert set(files) >= {"settings.py", "urls.py", "wsgi.py", "conftest.py", "test_api.py"}
    write(project, {"app-config.yaml": doc_files("Flask")["app-config.yaml"], **files})
    result = project.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_the_fake_idp_example(project):
    files = doc_files("Sign-in end to end: `fake_idp`")
    assert set(files) == {"catalog.yaml", "test_oidc.py"}
    write(project, files)
    result = project.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_the_plugin_comes_from_the_entry_point(project):
    write(project, doc_files("Flask"))
    result = project.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:wsgiauth")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(["*fixture 'wsgiauth_webtest' not found*"])


def test_without_the_option_the_error_says_what_to_do(project):
    project.makepyfile(test_x="def test_x(identity_token):\n    pass\n")
    result = project.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*set `wsgiauth_app = package.module:app`*"])


def test_a_factory_and_wsgiauth_requests_on_a_served_app(project):
    files = doc_files("Flask")
    files["pyproject.toml"] = '[tool.pytest.ini_options]\nwsgiauth_app = "myapp:make()"\n'
    files["myapp.py"] += "\n\ndef make():\n    return app\n"
    files["test_private.py"] = """
import threading
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest


class Quiet(WSGIRequestHandler):
    def log_request(self, *args):
        pass


@pytest.fixture
def served_url(wsgiauth_app):
    server = make_server("127.0.0.1", 0, wsgiauth_app, handler_class=Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_served(wsgiauth_requests, served_url):
    session = wsgiauth_requests("user:default/jane", groups=["group:default/team-a"])
    response = session.get(f"{served_url}/private", timeout=10)
    assert response.json()["groups"] == ["user:default/jane", "group:default/team-a"]


def test_served_without_token(served_url):
    import requests
    assert requests.get(f"{served_url}/private", timeout=10).status_code == 401
"""
    write(project, files)
    result = project.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_an_app_on_a_database_file_built_by_a_factory_signs_at_once(project, monkeypatch):
    """A store other processes could read makes a new key wait; the app under test is
    this process's alone, so the plugin builds it as such: no test waits for its key."""
    files = {**doc_files("Flask"), **doc_files("Plain WSGI")}
    files["app-config.yaml"] = files["app-config.yaml"].replace(
        "auth:\n  keyStore:\n    provider: memory\n",
        "  database:\n    client: better-sqlite3\n    connection: auth.sqlite3\n",
    )
    files["pyproject.toml"] = '[tool.pytest.ini_options]\nwsgiauth_app = "factory:make()"\n'
    files["factory.py"] = """
from wsgiauth import AuthMiddleware, IdentityMiddleware, create_auth_app, load_config
from wsgiapp import app


def make():
    auth_app = create_auth_app(load_config("app-config.yaml"))
    protected = IdentityMiddleware(app, auth_app.verifier, protected=["/private"])
    return AuthMiddleware(protected, auth_app)
"""
    files["test_private.py"] = """
import os

from wsgiauth.testing import find_auth_app


def test_signs_at_once(wsgiauth_app, wsgiauth_webtest):
    issuer = find_auth_app(wsgiauth_app).token_issuer
    assert issuer.shared_store is False
    assert issuer.publish_first_key() == 0.0  # published, and no wait before it signs
    jane = wsgiauth_webtest("user:default/jane").get("/private").json
    assert jane == {"user": "user:default/jane"}
    assert "WSGIAUTH_SINGLE_PROCESS" not in os.environ  # only while the app was built


def test_the_store_is_one_other_processes_could_read():
    from wsgiauth import create_auth_app, load_config
    assert create_auth_app(load_config("app-config.yaml")).token_issuer.shared_store is True
"""
    write(project, files)
    (project.path / "test_wsgiapp.py").unlink()
    monkeypatch.delenv("WSGIAUTH_SINGLE_PROCESS", raising=False)
    result = project.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
