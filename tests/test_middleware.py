"""AuthMiddleware: the auth base path goes to the auth app, everything else passes untouched."""

from __future__ import annotations

import io
from wsgiref.util import setup_testing_defaults

import pytest

from tests.conftest import base_config
from tests.conftest import make_testapp
from wsgiauth.app import AuthApp
from wsgiauth.middleware import AuthMiddleware


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/", id="root"),
        pytest.param("/api/authx/fake/start", id="prefix-without-slash"),
        pytest.param("/api/auth-other", id="sibling"),
        pytest.param("/api", id="parent"),
        pytest.param("/API/auth/fake/start", id="case-differs"),
        pytest.param("/x/api/auth/fake/start", id="nested"),
    ],
)
def test_other_paths_reach_the_app(testapp, path):
    response = testapp.get(path)
    assert response.headers["X-Inner"] == "yes"
    assert response.json["path"] == path


@pytest.mark.parametrize(
    "path", ["/api/auth", "/api/auth/", "/api/auth/fake/start", "/api/auth/x/y/z"]
)
def test_auth_paths_reach_the_auth_app(testapp, path):
    response = testapp.get(path, expect_errors=True)
    assert "X-Inner" not in response.headers
    assert response.content_type == "application/json"


def test_pass_through_keeps_environ_body_headers_and_streaming():
    seen = {}

    def app(environ, start_response):
        seen.update(environ)
        body = environ["wsgi.input"].read()
        start_response("201 Created", [("X-A", "1"), ("Set-Cookie", "a=b")])

        def stream():
            yield b"part1"
            yield body

        return stream()

    middleware = AuthMiddleware(app, AuthApp({}))
    environ: dict = {}
    setup_testing_defaults(environ)
    environ.update(
        {
            "PATH_INFO": "/upload",
            "REQUEST_METHOD": "POST",
            "HTTP_COOKIE": "fake-refresh-token=x",
            "wsgi.input": io.BytesIO(b"payload"),
            "CONTENT_LENGTH": "7",
        }
    )
    before = dict(environ)
    statuses = []
    chunks = list(middleware(environ, lambda status, headers: statuses.append((status, headers))))
    assert chunks == [b"part1", b"payload"]
    assert statuses == [("201 Created", [("X-A", "1"), ("Set-Cookie", "a=b")])]
    assert seen == before
    assert environ == before


def test_auth_path_moves_into_script_name():
    seen = {}

    class Recorder(AuthApp):
        def __call__(self, environ, start_response):
            seen.update(SCRIPT_NAME=environ["SCRIPT_NAME"], PATH_INFO=environ["PATH_INFO"])
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b""]

    middleware = AuthMiddleware(lambda e, s: [], Recorder({}))
    environ: dict = {}
    setup_testing_defaults(environ)
    environ.update(SCRIPT_NAME="/portal", PATH_INFO="/api/auth/oidc/start")
    list(middleware(environ, lambda *a: None))
    assert seen == {"SCRIPT_NAME": "/portal/api/auth", "PATH_INFO": "/oidc/start"}


def test_base_path_is_configurable():
    testapp = make_testapp(base_config(basePath="/auth"))
    testapp.get("/auth/fake/start?env=development", status=302)
    assert testapp.get("/api/auth/fake/start").headers["X-Inner"] == "yes"


def test_base_path_must_be_absolute():
    with pytest.raises(ValueError, match="must start with '/'"):
        AuthMiddleware(lambda e, s: [], AuthApp({}), base_path="auth")
