"""CORS: an allowed frontend origin may refresh and log out with credentials; no other may."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from webob import Request
from webob import Response

from tests.conftest import base_config
from tests.conftest import make_testapp
from wsgiauth import origins
from wsgiauth.cors import CorsPolicy
from wsgiauth.errors import ConfigError

XRW = {"X-Requested-With": "XMLHttpRequest"}


@pytest.fixture
def testapp():
    config = base_config()
    config["backend"]["cors"] = {"origin": ["https://*.portal.example"], "credentials": True}
    return make_testapp(config)


@pytest.mark.parametrize(
    "origin", ["http://localhost:3000", "https://eu.portal.example", "HTTPS://EU.PORTAL.EXAMPLE"]
)
def test_preflight_of_an_allowed_origin(testapp, origin):
    response = testapp.options(
        "/api/auth/fake/refresh?env=development",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "x-requested-with",
        },
    )
    assert response.status_int == 204
    assert response.headers["Access-Control-Allow-Origin"] == origin
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    assert "X-Requested-With" in response.headers["Access-Control-Allow-Headers"]
    assert response.headers["Access-Control-Allow-Methods"] == "GET, POST"


@pytest.mark.parametrize(
    "origin", ["https://evil.example", "https://portal.example.evil.example", "null"]
)
def test_other_origins_get_no_cors_headers(testapp, origin):
    preflight = testapp.options("/api/auth/fake/refresh", headers={"Origin": origin})
    assert not any(h.startswith("Access-Control-") for h in preflight.headers)
    # "null" is no origin one can set cookies for: refused before any exchange.
    actual = testapp.get(
        "/api/auth/fake/refresh?env=development",
        headers={**XRW, "Origin": origin},
        status=400 if origin == "null" else 401,
    )
    assert "Access-Control-Allow-Origin" not in actual.headers


def test_actual_responses_and_errors_carry_the_headers(testapp):
    headers = {**XRW, "Origin": "https://eu.portal.example"}
    response = testapp.get("/api/auth/fake/refresh?env=development", headers=headers, status=401)
    assert response.headers["Access-Control-Allow-Origin"] == "https://eu.portal.example"
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    assert "Origin" in response.headers["Vary"]


def test_no_origin_no_cors_headers(testapp):
    response = testapp.get("/api/auth/fake/refresh?env=development", headers=XRW, status=401)
    assert "Access-Control-Allow-Origin" not in response.headers


@pytest.mark.parametrize(
    ("origin", "path"),
    [
        pytest.param("*", "backend.cors.origin", id="star"),
        pytest.param("https://ok.example *", "backend.cors.origin", id="star-in-a-string"),
        pytest.param(
            ["https://ok.example", "example.com"], "backend.cors.origin[1]", id="no-scheme"
        ),
    ],
)
def test_a_pattern_without_scheme_fails_at_load(origin, path):
    config = base_config()
    config["backend"]["cors"] = {"origin": origin, "credentials": True}
    with pytest.raises(ConfigError) as raised:
        make_testapp(config)
    assert raised.value.path == path
    assert "must start with http:// or https://" in raised.value.reason


def test_a_sandboxed_iframe_cannot_read_refresh(monkeypatch):
    """``Origin: null`` gets no CORS headers, even if a ``*`` slipped past the load check."""
    monkeypatch.setattr(origins, "_origin_pattern", lambda pattern: pattern)
    config = base_config(experimentalExtraAllowedOrigins=["*", "https://*"])
    config["backend"]["cors"] = {"origin": ["*", "https://*"], "credentials": True}
    testapp = make_testapp(config)
    preflight = testapp.options(
        "/api/auth/fake/refresh?env=development",
        headers={
            "Origin": "null",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "x-requested-with",
        },
    )
    assert not any(h.startswith("Access-Control-") for h in preflight.headers)
    actual = testapp.get(
        "/api/auth/fake/refresh?env=development", headers={**XRW, "Origin": "null"}, status="*"
    )
    assert actual.status_int >= 400
    assert "Access-Control-Allow-Origin" not in actual.headers


def test_a_non_ascii_pattern_admits_the_punycode_a_browser_sends():
    config = base_config()
    config["backend"]["cors"] = {"origin": ["https://*.bücher.example"], "credentials": True}
    testapp = make_testapp(config)
    headers = {**XRW, "Origin": "https://shop.xn--bcher-kva.example"}
    response = testapp.get("/api/auth/fake/refresh?env=development", headers=headers, status=401)
    assert response.headers["Access-Control-Allow-Origin"] == "https://shop.xn--bcher-kva.example"


# -- apply: the header list written directly is what WebOb's setters write -----------------

ALLOWED = "http://localhost:3000"


def _apply_by_setters(policy: CorsPolicy, request: Request, response: Response) -> None:
    """``apply`` as it was before its fast path: WebOb's ``vary`` and header setters."""
    origin = request.headers.get("Origin")
    response.vary = (*(response.vary or ()), "Origin")
    if origin and policy.is_allowed(origin):
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Credentials"] = "true"


_HEADER_NAMES = st.sampled_from(
    [
        "Content-Type",
        "Cache-Control",
        "Vary",
        "vary",
        "Access-Control-Allow-Origin",
        "access-control-allow-credentials",
        "Set-Cookie",
    ]
)
_HEADER_VALUES = st.sampled_from(["a", "Accept", "Accept, Cookie", "", "Origin", "*", "true"])


@settings(max_examples=300)
@given(
    headers=st.lists(st.tuples(_HEADER_NAMES, _HEADER_VALUES), max_size=5),
    origin=st.sampled_from(
        [None, "", ALLOWED, "http://evil.example", "null", "HTTP://LOCALHOST:3000"]
    ),
)
def test_apply_writes_what_webobs_setters_write(headers, origin):
    policy = CorsPolicy(origins.create_origin_filter(ALLOWED))
    request = Request.blank("/x", headers={} if origin is None else {"Origin": origin})
    fast, slow = Response(headerlist=list(headers)), Response(headerlist=list(headers))
    policy.apply(request, fast)
    _apply_by_setters(policy, request, slow)
    assert fast.headerlist == slow.headerlist


@pytest.mark.parametrize(
    "origin", ["http://evil.example", "null", "http://localhost:3000.evil.example"]
)
def test_apply_gives_a_refused_origin_no_cors_headers(origin):
    policy = CorsPolicy(origins.create_origin_filter(ALLOWED))
    response = Response(headerlist=[("Content-Type", "application/json")], app_iter=[b""])
    policy.apply(Request.blank("/x", headers={"Origin": origin}), response)
    assert response.headerlist == [("Content-Type", "application/json"), ("Vary", "Origin")]


def test_apply_lets_the_allowed_origin_read_with_credentials():
    policy = CorsPolicy(origins.create_origin_filter(ALLOWED))
    response = Response(headerlist=[("Content-Type", "application/json")], app_iter=[b""])
    policy.apply(Request.blank("/x", headers={"Origin": ALLOWED}), response)
    assert response.headerlist[1:] == [
        ("Vary", "Origin"),
        ("Access-Control-Allow-Origin", ALLOWED),
        ("Access-Control-Allow-Credentials", "true"),
    ]
