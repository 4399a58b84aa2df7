"""EnvironmentHandler: each request goes to the environment named by ``env`` or the state.

Backstage's ``OAuthEnvironmentHandler`` reads ``env`` from the query and, on the
callback (where the identity provider adds no ``env``), from the decoded ``state``;
its two errors are JSON errors, raised before any provider code runs.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from webob import Request
from webob import Response

from tests.conftest import APP_ORIGIN
from tests.conftest import base_config
from tests.conftest import make_testapp
from tests.conftest import parse_web_message
from tests.conftest import state_of
from wsgiauth.errors import InputError
from wsgiauth.errors import NotAllowedError
from wsgiauth.errors import NotFoundError
from wsgiauth.oauth.environment import EnvironmentHandler
from wsgiauth.oauth.environment import query_of
from wsgiauth.oauth.state import encode_oauth_state

ROUTES = ["start", "frame_handler", "refresh", "logout"]


class RecordingHandlers:
    """Stands in for one environment's OAuthRouteHandlers: answers with its name."""

    def __init__(self, env: str) -> None:
        self.env = env
        self.calls: list[tuple[str, Request]] = []

    def _answer(self, route: str, request: Request) -> Response:
        self.calls.append((route, request))
        return Response(text=f"{self.env} {route}")

    def start(self, request):
        return self._answer("start", request)

    def frame_handler(self, request):
        return self._answer("frame_handler", request)

    def refresh(self, request):
        return self._answer("refresh", request)

    def logout(self, request):
        return self._answer("logout", request)


@pytest.fixture
def handler() -> EnvironmentHandler:
    return EnvironmentHandler(
        "fake",
        {
            "development": RecordingHandlers("development"),
            "production": RecordingHandlers("production"),
        },
    )


def state_for(env: str) -> str:
    return encode_oauth_state({"nonce": "n0nce", "env": env})


@pytest.mark.parametrize("route", [pytest.param(route, id=route) for route in ROUTES])
@pytest.mark.parametrize(
    ("query", "env"),
    [
        pytest.param("env=production", "production", id="query"),
        pytest.param(f"state={state_for('production')}", "production", id="state"),
        pytest.param(
            f"env=development&state={state_for('production')}", "development", id="query-wins"
        ),
    ],
)
def test_each_route_goes_to_the_named_environment(handler, route, query, env):
    request = Request.blank(f"/{route}?{query}")
    response = getattr(handler, route)(request)
    assert response.text == f"{env} {route}"
    other = "development" if env == "production" else "production"
    assert handler.handlers[env].calls == [(route, request)]
    assert handler.handlers[other].calls == []


@pytest.mark.parametrize(
    ("query", "error", "message"),
    [
        pytest.param(
            "", InputError, "Must specify 'env' query to select environment", id="no-env-no-state"
        ),
        pytest.param(
            "code=abc", InputError, "Must specify 'env' query to select environment", id="code-only"
        ),
        pytest.param(
            "env=staging",
            NotFoundError,
            "No configuration available for the 'staging' environment of this provider.",
            id="unknown-env",
        ),
        pytest.param(
            f"state={state_for('staging')}",
            NotFoundError,
            "No configuration available for the 'staging' environment of this provider.",
            id="unknown-env-in-state",
        ),
        pytest.param(
            "env=" + "d" * 65,
            InputError,
            "Query parameter 'env' is too long, at most 64 characters",
            id="env-too-long",
        ),
        pytest.param(
            f"state={encode_oauth_state({'nonce': 'n0nce'})}",
            NotAllowedError,
            "OAuth state is invalid, missing env",
            id="state-without-env",
        ),
        pytest.param(
            "state=zz", NotAllowedError, "OAuth state is invalid, missing env", id="bad-state"
        ),
    ],
)
def test_no_usable_environment_is_an_error_before_any_handler_runs(handler, query, error, message):
    for route in ROUTES:
        with pytest.raises(error) as info:
            getattr(handler, route)(Request.blank(f"/{route}?{query}"))
        assert info.value.full_message() == message
    assert all(handlers.calls == [] for handlers in handler.handlers.values())


def test_the_handlers_mapping_is_copied():
    given = {"development": RecordingHandlers("development")}
    handler = EnvironmentHandler("fake", given)
    given["production"] = RecordingHandlers("production")
    with pytest.raises(NotFoundError):
        handler.start(Request.blank("/start?env=production"))


# -- on the wire ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "status", "name", "message"),
    [
        pytest.param(
            "/api/auth/fake/start",
            400,
            "InputError",
            "Must specify 'env' query to select environment",
            id="no-env",
        ),
        pytest.param(
            "/api/auth/fake/start?env=production",
            404,
            "NotFoundError",
            "No configuration available for the 'production' environment of this provider.",
            id="unknown-env",
        ),
        pytest.param(
            "/api/auth/fake/refresh?env=production",
            404,
            "NotFoundError",
            "No configuration available for the 'production' environment of this provider.",
            id="unknown-env-refresh",
        ),
    ],
)
def test_backstage_errors_on_the_wire(testapp, query, status, name, message):
    response = testapp.get(query, headers={"X-Requested-With": "XMLHttpRequest"}, status=status)
    assert response.content_type == "application/json"
    assert response.json["error"] == {"name": name, "message": message}
    assert response.json["response"] == {"statusCode": status}
    assert "Set-Cookie" not in response.headers


def test_a_sign_in_started_in_one_environment_finishes_in_it():
    providers = {"fake": {"development": {"clientId": "dev"}, "production": {"clientId": "prod"}}}
    testapp = make_testapp(base_config(providers=providers))
    start = testapp.get(f"/api/auth/fake/start?env=production&origin={APP_ORIGIN}")
    # The identity provider's callback carries state and code, and no env.
    page = testapp.get(
        f"/api/auth/fake/handler/frame?state={state_of(start.location)}&code=jane@example.com"
    )
    assert parse_web_message(page.text)["response"]["profile"]["email"] == "jane@example.com"
    handlers = testapp.auth_app.providers["fake"].handlers
    production = handlers["production"].authenticator
    assert production.config.get_string("clientId") == "prod"
    assert [name for name, _ in production.calls] == ["start", "authenticate"]
    assert handlers["development"].authenticator.calls == []


class WithRoutes(RecordingHandlers):
    """Handlers whose authenticator has a route of its own (SAML's ``metadata``)."""

    def __init__(self, env: str) -> None:
        super().__init__(env)
        outer = self

        class Authenticator:
            def routes(self):
                return {"metadata": lambda request: outer._answer("metadata", request)}

        self.authenticator = Authenticator()


def test_a_provider_without_environments_answers_any_env() -> None:
    single = EnvironmentHandler("saml", {"development": WithRoutes("development")}, single=True)
    for query in ("", "env=production", f"state={state_for('staging')}"):
        assert single.start(Request.blank(f"/start?{query}")).text == "development start"


def test_extra_routes_of_the_authenticator() -> None:
    single = EnvironmentHandler("saml", {"development": WithRoutes("development")}, single=True)
    routes = single.extra_routes()
    assert list(routes) == ["metadata"]
    assert routes["metadata"](Request.blank("/metadata")).text == "development metadata"
    plain = EnvironmentHandler("fake", {"development": RecordingHandlers("development")})
    assert plain.extra_routes() == {}


_QUERY_PARTS = st.sampled_from(
    ["env", "origin", "a", "=", "&", ";", "+", "%", "%2B", "-", "1", " "]
)


@settings(max_examples=300)
@given(
    st.lists(
        _QUERY_PARTS
        | st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=3)
        | st.builds(lambda b: f"%{b:02x}", st.integers(0, 127)),
        max_size=12,
    ).map("".join)
)
def test_query_of_reads_what_request_get_reads(query):
    # Last value of a name wins, blanks kept, '+' a space: as WebOb's MultiDict answers.
    environ = Request.blank("/").environ
    environ["QUERY_STRING"] = query.encode("utf-8").decode("latin-1")  # PEP 3333 native
    request = Request(environ)
    try:
        webob = Request(dict(environ)).GET
    except UnicodeDecodeError:  # not UTF-8 (AuthApp refuses it before any handler)
        with pytest.raises(UnicodeDecodeError):
            query_of(request)
        return
    params = query_of(request)
    assert dict(params) == {name: webob[name] for name in webob}
    assert query_of(Request(dict(environ))) is params  # parsed once per query string


@pytest.mark.parametrize(
    ("query", "webob"),
    [
        ("env=a;env=b", True),
        ("env=%C3%A9", False),
        ("env=\xc3\xa9", True),
        ("a=1&a=2", False),
        ("env=%a", True),
        ("env=%+1", True),
    ],
)
def test_a_query_only_webob_reads_the_same_way_takes_its_parse(query, webob):
    request = Request.blank("/")
    request.environ["QUERY_STRING"] = query
    assert (query_of(request) is request.GET) is webob


def test_query_of_parses_again_when_the_query_string_changed():
    request = Request.blank("/?env=a")
    assert query_of(request)["env"] == "a"
    request.environ["QUERY_STRING"] = "env=b"
    assert query_of(request)["env"] == "b"
    with pytest.raises(TypeError):  # shared between requests: read-only
        query_of(request)["env"] = "c"  # type: ignore[index]


def test_a_query_that_is_not_utf8_raises_as_webob_does():
    request = Request.blank("/")
    request.environ["QUERY_STRING"] = "env=%ff"
    with pytest.raises(UnicodeDecodeError):
        query_of(request)
