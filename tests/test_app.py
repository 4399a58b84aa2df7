"""AuthApp: routing, methods, sizes, the error body, and no stack trace ever."""

from __future__ import annotations

import json
import logging
import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import quote
from urllib.parse import unquote_to_bytes

import jwt
import pytest
import yaml
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from tests.conftest import base_config
from tests.conftest import make_testapp
from wsgiauth.app import AuthApp
from wsgiauth.app import auth_app_from
from wsgiauth.app import create_auth_app
from wsgiauth.config import Config
from wsgiauth.errors import ConfigError
from wsgiauth.errors import InputError


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        pytest.param("POST", "/api/auth/fake/start?env=development", "GET", id="post-start"),
        pytest.param("GET", "/api/auth/fake/logout?env=development", "POST", id="get-logout"),
        pytest.param("PUT", "/api/auth/fake/refresh", "GET, POST", id="put-refresh"),
        pytest.param("DELETE", "/api/auth/fake/handler/frame", "GET, POST", id="delete-frame"),
    ],
)
def test_wrong_method_is_405_with_allow(testapp, method, path, allow):
    response = testapp.request(path, method=method, status=405)
    assert response.headers["Allow"] == allow
    assert response.json["error"]["name"] == "MethodNotAllowedError"
    assert response.json["response"] == {"statusCode": 405}


def test_unknown_route_of_a_known_provider_is_404(testapp):
    response = testapp.get("/api/auth/fake/whatever", status=404)
    assert response.json["error"]["name"] == "NotFoundError"


def test_error_body_has_backstage_shape(testapp):
    response = testapp.get("/api/auth/nope/refresh?x=1", status=404)
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.json == {
        "error": {"name": "NotFoundError", "message": "Unknown auth provider 'nope'"},
        "request": {"method": "GET", "url": "/api/auth/nope/refresh?x=1"},
        "response": {"statusCode": 404},
    }


def test_oversized_query_is_431(testapp):
    response = testapp.get("/api/auth/fake/start?env=development&x=" + "a" * 9000, status=431)
    assert response.json["error"]["name"] == "HeaderTooLargeError"


def test_oversized_headers_are_431(testapp):
    cookie = "; ".join(f"c{i}={'x' * 4000}" for i in range(9))
    response = testapp.get(
        "/api/auth/fake/refresh?env=development",
        headers={"Cookie": cookie, "X-Requested-With": "XMLHttpRequest"},
        status=431,
    )
    assert response.json["error"] == {
        "name": "HeaderTooLargeError",
        "message": "Request headers are too large",
    }


def test_oversized_body_is_413(testapp):
    response = testapp.post("/api/auth/fake/handler/frame", {"code": "a" * 70000}, status=413)
    assert response.json["error"]["name"] == "PayloadTooLargeError"


def test_unexpected_errors_are_a_generic_500_without_stack(testapp, monkeypatch, caplog):
    handlers = testapp.auth_app.providers["fake"].handlers["development"]

    def explode(request):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(handlers.authenticator, "refresh", explode)
    testapp.set_cookie("fake-refresh-token", "x")
    with caplog.at_level(logging.ERROR, logger="wsgiauth.app"):
        response = testapp.get(
            "/api/auth/fake/refresh?env=development",
            headers={"X-Requested-With": "XMLHttpRequest"},
            status=500,
        )
    assert response.json["error"]["name"] == "Error"
    assert response.json["error"]["message"].startswith("An internal error occurred logId=")
    assert "secret internals" not in response.text
    assert "Traceback" not in response.text
    assert "secret internals" in caplog.text  # logged for the operator


def test_bad_provider_config_fails_at_startup_naming_the_key():
    config = base_config(providers={"fake": {"development": "not a mapping"}})
    from tests.conftest import FAKE_MODULE

    with pytest.raises(ConfigError) as raised:
        create_auth_app(Config.from_dict(config), providers={"fake": FAKE_MODULE})
    assert "auth.providers.fake.development" in str(raised.value)


def test_unknown_provider_id_fails_at_startup():
    config = base_config(providers={"nosuch": {"development": {}}})
    with pytest.raises(ConfigError) as raised:
        create_auth_app(Config.from_dict(config))
    assert "auth.providers.nosuch" in str(raised.value)


@pytest.mark.parametrize("key", ["app.baseUrl", "backend.baseUrl"])
def test_base_urls_must_be_absolute(key):
    config = base_config()
    section, name = key.split(".")
    config[section][name] = "localhost:3000"
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        create_auth_app(Config.from_dict(config))


query_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=200
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    action=st.sampled_from(["start", "handler/frame", "refresh"]),
    params=st.dictionaries(
        st.sampled_from(
            ["env", "origin", "scope", "flow", "redirectUrl", "state", "code", "error"]
        ),
        query_text,
        max_size=6,
    ),
)
def test_any_query_gets_a_clean_answer(action, params):
    """Whatever the query, the answer is a redirect, a page or a 4xx JSON error: never a 500."""
    testapp = make_testapp(base_config())
    query = "&".join(f"{quote(k)}={quote(v)}" for k, v in params.items())
    response = testapp.get(
        f"/api/auth/fake/{action}?{query}",
        headers={"X-Requested-With": "XMLHttpRequest"},
        expect_errors=True,
    )
    assert response.status_int in (200, 302) or 400 <= response.status_int < 500, response.text
    if response.status_int >= 400:
        assert set(response.json) == {"error", "request", "response"}


def _guest_config(**auth: Any) -> dict[str, Any]:
    return base_config(providers={"guest": {}}, keyStore={"provider": "memory"}, **auth)


def _write(path: Path, config: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.parametrize(
    "shape",
    [
        pytest.param(str, id="str"),
        pytest.param(lambda path: path, id="pathlike"),
        pytest.param(lambda path: [str(path)], id="list"),
        pytest.param(lambda path: (path,), id="tuple-of-pathlike"),
    ],
)
def test_auth_app_from_paths(tmp_path, shape):
    path = _write(tmp_path / "app-config.yaml", _guest_config(basePath="/sign-in"))
    auth_app = auth_app_from(shape(path), setting="SETTING")
    assert auth_app.base_path == "/sign-in"
    assert set(auth_app.providers) == {"guest"}
    assert auth_app.verifier is not None


def test_auth_app_from_several_paths_merges_them_later_wins(tmp_path):
    base = _write(tmp_path / "base.yaml", _guest_config(basePath="/first"))
    local = _write(tmp_path / "local.yaml", {"auth": {"basePath": "/second"}})
    assert auth_app_from([base, local], setting="SETTING").base_path == "/second"


def test_auth_app_from_a_config_builds_it():
    auth_app = auth_app_from(Config.from_dict(_guest_config()), setting="SETTING")
    assert set(auth_app.providers) == {"guest"}
    assert auth_app.base_path == "/api/auth"


def test_auth_app_from_an_auth_app_is_that_app():
    auth_app = create_auth_app(Config.from_dict(_guest_config()))
    assert auth_app_from(auth_app, setting="SETTING") is auth_app


@pytest.mark.parametrize(
    "source",
    [
        pytest.param(None, id="none"),
        pytest.param("", id="empty-path"),
        pytest.param("  ", id="blank-path"),
        pytest.param([], id="no-paths"),
        pytest.param(["app-config.yaml", " "], id="one-blank-of-two"),
        pytest.param([None], id="none-in-the-list"),
    ],
)
def test_auth_app_from_nothing_names_the_setting(source):
    with pytest.raises(ConfigError) as caught:
        auth_app_from(source, setting="WSGIAUTH_CONFIG")
    assert caught.value.path == "WSGIAUTH_CONFIG"
    assert str(caught.value).startswith("WSGIAUTH_CONFIG: missing")


@pytest.mark.parametrize(
    ("source", "message"),
    [
        pytest.param(42, "not int", id="another-type"),
        pytest.param(AuthApp({}), "no identity verifier", id="app-without-verifier"),
    ],
)
def test_auth_app_from_an_unusable_source_names_the_setting(source, message):
    with pytest.raises(ConfigError, match=message) as caught:
        auth_app_from(source, setting="my.setting")
    assert caught.value.path == "my.setting"


def test_auth_app_from_a_missing_file_is_the_loaders_error(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match="cannot read file") as caught:
        auth_app_from(missing, setting="SETTING")
    assert str(caught.value).startswith(f"{missing}: ")


# -- hostile input: clean 4xx, never a 500 (hardening) ---------------------------------


@pytest.mark.parametrize(
    ("path", "message", "url"),
    [
        pytest.param(
            "/api/auth/fake/start?x=%ff",
            "Request query is not valid UTF-8",
            "/api/auth/fake/start?x=%ff",
            id="query",
        ),
        pytest.param(
            "/api/auth/fake/start?\x80",
            "Request query is not valid UTF-8",
            "/api/auth/fake/start?%80",
            id="raw-byte-in-query",
        ),
        pytest.param(
            "/api/auth/.well-known/jwks.json?%c3=1",
            "Request query is not valid UTF-8",
            "/api/auth/.well-known/jwks.json?%c3=1",
            id="jwks",
        ),
        pytest.param(
            "/api/auth/;/%ff/start",
            "Request path is not valid UTF-8",
            "/api/auth/;/%FF/start",
            id="path",
        ),
        pytest.param(
            "/api/auth/fake/%ff%fe",
            "Request path is not valid UTF-8",
            "/api/auth/fake/%FF%FE",
            id="action",
        ),
    ],
)
def test_invalid_utf8_is_a_400_not_a_500(testapp, path, message, url, caplog):
    with caplog.at_level(logging.ERROR):
        response = testapp.get(path, status=400)
    assert response.json["error"] == {"name": "InputError", "message": message}
    # The path is echoed re-escaped from PATH_INFO, the query as it came (raw bytes escaped).
    assert response.json["request"]["url"] == url
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


class _CountingStream:
    """A chunked request body: no length, read only as far as asked."""

    def __init__(self, size: int) -> None:
        self.left = size
        self.served = 0

    def read(self, size: int = -1) -> bytes:
        size = self.left if size < 0 else min(size, self.left, 8192)
        self.left -= size
        self.served += size
        return b"a" * size


def _chunked_post(testapp, path: str, stream: Any):
    """POST ``stream`` as a server passes a chunked body: no length, ``wsgi.input_terminated``."""
    from webob import Request

    from wsgiauth.middleware import AuthMiddleware

    request = Request.blank(path, method="POST")
    request.environ.pop("CONTENT_LENGTH", None)
    request.environ.update(
        {
            "wsgi.input": stream,
            "wsgi.input_terminated": True,
            "CONTENT_TYPE": "application/x-www-form-urlencoded",
            "HTTP_COOKIE": "; ".join(f"{k}={v}" for k, v in testapp.cookies.items()),
        }
    )
    return request.get_response(AuthMiddleware(lambda e, s: [], testapp.auth_app))


@pytest.mark.parametrize("size", [pytest.param(100 * 1024 * 1024, id="100MB"), 65537])
def test_chunked_body_is_read_only_up_to_the_limit(testapp, size):
    from wsgiauth.app import MAX_BODY_LENGTH

    stream = _CountingStream(size)
    response = _chunked_post(testapp, "/api/auth/fake/handler/frame", stream)
    assert response.status_int == 413
    assert response.json["error"]["name"] == "PayloadTooLargeError"
    assert stream.served <= MAX_BODY_LENGTH + 1


def test_chunked_body_within_the_limit_reaches_the_handler(testapp):
    from io import BytesIO

    from tests.conftest import parse_web_message
    from tests.oauth.test_route_handlers import START
    from tests.oauth.test_route_handlers import start

    _, state = start(testapp, START)
    stream = BytesIO(b"code=chunked@example.com")
    response = _chunked_post(testapp, f"/api/auth/fake/handler/frame?state={state}", stream)
    message = parse_web_message(response.text)
    assert message["response"]["profile"]["email"] == "chunked@example.com"


@pytest.mark.parametrize(
    "path",
    [
        "/api/auth/fake/start?env=development",
        "/api/auth/fake/start?env=development&origin=https://evil.example",
        "/api/auth/fake/handler/frame?state=00",
        "/api/auth/fake/refresh?env=development",
        "/api/auth/nope/start",
        "/api/auth/.well-known/jwks.json",
        "/api/auth/.client/wsgiauth.js",
    ],
)
def test_every_answer_carries_nosniff_and_no_referrer(testapp, path):
    response = testapp.get(path, expect_errors=True)
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    preflight = testapp.options(path, headers={"Origin": "https://evil.example"})
    assert preflight.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(
    ("module_name", "builds"),
    [pytest.param("oauth2", True, id="oauth2-offers-it"), pytest.param("fake", False, id="fake")],
)
def test_a_provider_module_keeps_its_resolvers_under_another_id(module_name, builds):
    from tests.conftest import FAKE_MODULE
    from wsgiauth.providers import oauth2

    env = {
        "clientId": "id",
        "clientSecret": "secret",
        "authorizationUrl": "https://idp.example/authorize",
        "tokenUrl": "https://idp.example/token",
        "signIn": {"resolvers": [{"resolver": "usernameMatchingUserEntityName"}]},
    }
    config = Config.from_dict(base_config(providers={"corp": {"development": env}}))
    module = {"oauth2": oauth2.module, "fake": FAKE_MODULE}[module_name]
    if builds:
        assert "corp" in create_auth_app(config, providers={"corp": module}).providers
    else:
        with pytest.raises(ConfigError, match="usernameMatchingUserEntityName"):
            create_auth_app(config, providers={"corp": module})


# -- the fast path of fixed routes (JWKS, discovery) --------------------------------------

FIXED_PATHS = ("/.well-known/jwks.json", "/.well-known/openid-configuration")


def _fast_and_general_twins() -> tuple[AuthApp, AuthApp]:
    """Two apps on the same identity routes: one sees them as fixed routes, one does not."""
    from wsgiauth.cors import CorsPolicy
    from wsgiauth.identity.key_stores import MemoryKeyStore
    from wsgiauth.identity.service import create_identity_service
    from wsgiauth.types import TokenParams

    config = Config.from_dict(base_config(providers={"guest": {}}))
    identity = create_identity_service(
        config, issuer="http://localhost:7007/api/auth", key_store=MemoryKeyStore()
    )
    identity.token_issuer.issue_token(TokenParams(claims={"sub": "user:default/jane"}))
    routes = identity.routes.routes()
    cors = CorsPolicy(lambda origin: origin == "http://localhost:3000")
    fast = AuthApp({}, routes=routes, cors=cors)
    # A plain function hides the FixedRoute: only the general path can answer.
    hidden = {path: (lambda request, h=handler: h(request)) for path, handler in routes.items()}
    return fast, AuthApp({}, routes=hidden, cors=cors)


def _raw(app: AuthApp, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
    """What a server would send: status, header list, body bytes."""
    seen: list[Any] = []
    result = app(environ, lambda status, headers, exc_info=None: seen.extend([status, headers]))
    try:
        body = b"".join(result)
    finally:
        getattr(result, "close", lambda: None)()
    return seen[0], list(seen[1]), body


def _environ(path: str, method: str = "GET", **extra: Any) -> dict[str, Any]:
    from webob import Request

    environ = Request.blank(path, environ={"REQUEST_METHOD": method}).environ
    return {**environ, "SCRIPT_NAME": "/api/auth", **extra}


@pytest.fixture
def requests_built(monkeypatch) -> list[object]:
    """Every WebOb request the auth app builds, as it builds them."""
    from webob import Request

    import wsgiauth.app

    built: list[object] = []

    class Counting(Request):
        def __init__(self, environ, **kwargs):
            built.append(environ)
            super().__init__(environ, **kwargs)

    monkeypatch.setattr(wsgiauth.app, "Request", Counting)
    return built


@pytest.mark.parametrize("path", FIXED_PATHS)
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_a_fixed_route_answers_exactly_what_the_general_path_does(requests_built, path, method):
    fast, general = _fast_and_general_twins()
    answer = _raw(fast, _environ(path, method))
    assert requests_built == []  # answered without a WebOb request
    assert answer == _raw(general, _environ(path, method))
    assert requests_built  # the twin did build one
    status, headers, body = answer
    assert status == "200 OK"
    assert ("X-Content-Type-Options", "nosniff") in headers
    assert dict(headers)["Content-Length"] == str(len(_raw(fast, _environ(path))[2]))
    assert (body == b"") == (method == "HEAD")


@pytest.mark.parametrize("path", FIXED_PATHS)
@pytest.mark.parametrize(
    ("method", "extra"),
    [
        pytest.param("GET", {"QUERY_STRING": "x=1"}, id="query"),
        pytest.param("GET", {"QUERY_STRING": "x=%ff"}, id="query-not-utf8"),
        pytest.param("GET", {"CONTENT_LENGTH": "3"}, id="body"),
        pytest.param("GET", {"CONTENT_LENGTH": str(10**6)}, id="body-too-large"),
        pytest.param("POST", {}, id="post"),
        pytest.param("OPTIONS", {"HTTP_ORIGIN": "http://localhost:3000"}, id="preflight"),
        pytest.param("DELETE", {}, id="delete"),
        pytest.param("GET", {"HTTP_ORIGIN": "http://localhost:3000"}, id="cors-allowed"),
        pytest.param("GET", {"HTTP_ORIGIN": "https://evil.example"}, id="cors-refused"),
        pytest.param("GET", {"HTTP_IF_NONE_MATCH": "*"}, id="if-none-match"),
        pytest.param("HEAD", {"HTTP_IF_NONE_MATCH": "*"}, id="head-if-none-match"),
        pytest.param("GET", {"HTTP_IF_MODIFIED_SINCE": "Sun, 06 Dec 2026 00:00:00 GMT"}, id="ims"),
        pytest.param("GET", {"HTTP_RANGE": "bytes=0-4"}, id="range"),
        pytest.param("GET", {"HTTP_RANGE": "bytes=0-4", "HTTP_IF_RANGE": '"x"'}, id="if-range"),
        pytest.param("GET", {"HTTP_X_BIG": "a" * 40000}, id="headers-too-large"),
    ],
)
def test_a_request_the_fast_path_does_not_take_goes_the_general_way(
    requests_built, path, method, extra
):
    fast, general = _fast_and_general_twins()
    answer = _raw(fast, _environ(path, method, **extra))
    assert requests_built  # the general path built a WebOb request
    assert answer == _raw(general, _environ(path, method, **extra))


def test_the_fast_path_renders_a_failing_route_as_the_general_path_does(requests_built):
    from wsgiauth.errors import ServiceUnavailableError
    from wsgiauth.responses import FixedRoute

    def down():
        raise ServiceUnavailableError("the key store is unavailable")

    app = AuthApp({}, routes={"/.well-known/jwks.json": FixedRoute(down)})
    status, _, body = _raw(app, _environ("/.well-known/jwks.json"))
    assert status == "503 Service Unavailable"
    assert b'"ServiceUnavailableError"' in body
    assert requests_built


@given(
    environs=st.lists(
        st.dictionaries(
            st.text(min_size=1, max_size=8).map(lambda k: k.upper())
            | st.text(max_size=8).map(lambda k: "HTTP_" + k.upper()),
            st.text(max_size=20),
            max_size=12,
        ),
        min_size=1,
        max_size=6,
    )
)
def test_the_headers_length_is_the_sum_of_the_http_values(environs):
    from wsgiauth.app import _HeadersLength

    measure = _HeadersLength()
    for environ in environs * 2:  # the second pass runs with every other key learned
        expected = sum(len(v) for k, v in environ.items() if k.startswith("HTTP_"))
        assert measure(environ) == expected


def test_headers_past_the_limit_are_431_also_once_the_other_keys_are_learned():
    import os

    fast, _ = _fast_and_general_twins()
    server_environ = {**os.environ, **_environ("/.well-known/jwks.json")}  # as granian's
    assert _raw(fast, dict(server_environ))[0] == "200 OK"
    too_large = {**server_environ, "HTTP_X_BIG": "a" * 40000}
    assert _raw(fast, too_large)[0] == "431 Request Header Fields Too Large"


def test_a_sign_in_saves_its_user_info_once_with_its_expiry(tmp_path: Path) -> None:
    # The token issuer saves the claims with exp; a second save by the resolver context
    # overwrote them without it (two writes per sign-in, and the row pruned as expired).
    database = tmp_path / "auth.sqlite3"
    config = base_config(providers={"guest": {}})
    config["backend"]["database"] = {"client": "better-sqlite3", "connection": str(database)}
    testapp = make_testapp(config)
    answer = testapp.get(
        "/api/auth/guest/refresh?env=development",
        headers={"X-Requested-With": "XMLHttpRequest"},
    ).json
    token = answer["backstageIdentity"]["token"]
    exp = jwt.decode(token, options={"verify_signature": False})["exp"]
    with sqlite3.connect(database) as connection:
        rows = connection.execute("SELECT user_entity_ref, user_info, exp FROM user_info")
        rows = rows.fetchall()
    assert [(ref, saved_exp) for ref, _, saved_exp in rows] == [("user:development/guest", exp)]
    assert json.loads(rows[0][1])["claims"]["exp"] == exp


def _guest_refresh(testapp, *, multiprocess: bool, status: int = 200):
    return testapp.get(
        "/api/auth/guest/refresh?env=development",
        headers={"X-Requested-With": "XMLHttpRequest"},
        extra_environ={"wsgi.multiprocess": multiprocess},
        status=status,
    )


def test_memory_keys_under_several_processes_are_refused_not_split(no_server_word, caplog):
    # An adapter's app under gunicorn without wsgiauth's hooks: only the first request
    # says that the server runs several processes. Each would sign with its own keys.
    testapp = make_testapp(_guest_config())
    assert testapp.auth_app.unshared_memory.path == "auth.keyStore.provider"
    assert "backstageIdentity" in _guest_refresh(testapp, multiprocess=False).json
    with caplog.at_level(logging.ERROR, logger="wsgiauth.app"):
        for _ in range(2):
            answer = _guest_refresh(testapp, multiprocess=True, status=503).json
    assert answer["error"]["name"] == "ServiceUnavailableError"
    assert "auth.keyStore.provider keeps keys in the memory" in answer["error"]["message"]
    logged = [r for r in caplog.records if r.name == "wsgiauth.app"]
    assert len(logged) == 1  # once, with the fixes
    assert "wsgiauth.gunicorn_hooks" in logged[0].getMessage()


def test_memory_keys_are_served_by_the_standard_librarys_server(no_server_word):
    # wsgiref says wsgi.multiprocess as its default, though it never forks.
    import wsgiref.simple_server

    testapp = make_testapp(_guest_config())
    software = wsgiref.simple_server.software_version
    assert software.startswith("WSGIServer/")
    answer = testapp.get(
        "/api/auth/guest/refresh?env=development",
        headers={"X-Requested-With": "XMLHttpRequest"},
        extra_environ={"wsgi.multiprocess": True, "SERVER_SOFTWARE": software},
    )
    assert "backstageIdentity" in answer.json


@pytest.mark.parametrize(
    "environment",
    [
        pytest.param({"WSGIAUTH_SINGLE_PROCESS": "1"}, id="declared-single-process"),
        pytest.param({"WSGIAUTH_SERVER_STORE": "server-store"}, id="server-store"),
    ],
)
def test_memory_keys_a_server_shares_are_served_to_several_processes(
    no_server_word, monkeypatch, tmp_path, environment
):
    for name, value in environment.items():
        if value == "server-store":
            (tmp_path / "store").mkdir(mode=0o700)
            value = str(tmp_path / "store" / "store.sqlite3")
        monkeypatch.setenv(name, value)
    testapp = make_testapp(_guest_config())
    assert testapp.auth_app.unshared_memory is None
    assert "backstageIdentity" in _guest_refresh(testapp, multiprocess=True).json


def test_a_database_file_is_served_to_several_processes(no_server_word, tmp_path):
    config = base_config(providers={"guest": {}})
    config["backend"]["database"] = {"client": "better-sqlite3", "connection": str(tmp_path / "a")}
    testapp = make_testapp(config)
    assert testapp.auth_app.unshared_memory is None
    assert "backstageIdentity" in _guest_refresh(testapp, multiprocess=True).json


_ESCAPES = st.builds(lambda byte: f"%{byte:02x}", st.integers(0, 255)) | st.builds(
    lambda byte: f"%{byte:02X}", st.integers(0, 255)
)


@given(
    st.lists(
        _ESCAPES | st.text(st.characters(codec="ascii"), max_size=4) | st.just("%"), max_size=12
    ).map("".join)
)
def test_the_utf8_check_of_an_ascii_query_refuses_exactly_what_does_not_decode(query):
    # Only an escape of a byte past ASCII is decoded in full; the verdict is the decode's.
    from wsgiauth.app import _check_utf8

    try:
        unquote_to_bytes(query).decode("utf-8")
        decodes = True
    except UnicodeDecodeError:
        decodes = False
    if decodes:
        _check_utf8({"PATH_INFO": "/", "QUERY_STRING": query})
    else:
        with pytest.raises(InputError, match="query is not valid UTF-8"):
            _check_utf8({"PATH_INFO": "/", "QUERY_STRING": query})
