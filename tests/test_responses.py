"""wsgiauth.responses: JSON bodies and Backstage's error body, from any environ."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from webob import Request
from webob import Response

from wsgiauth.errors import HttpError
from wsgiauth.errors import InputError
from wsgiauth.errors import MethodNotAllowedError
from wsgiauth.errors import NotFoundError
from wsgiauth.errors import ServiceUnavailableError
from wsgiauth.responses import error_response
from wsgiauth.responses import json_response
from wsgiauth.responses import redirect_response
from wsgiauth.responses import request_url
from wsgiauth.responses import wsgi_bytes


def test_json_response_is_compact_and_never_cached():
    response = json_response({"name": "Zoë", "n": [1, 2]}, status=201)
    assert response.status_int == 201
    assert response.body == b'{"name":"Zo\\u00eb","n":[1,2]}'
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("body", [{}, {"name": "Zoë", "n": [1, 2]}, ["x" * 5000]])
def test_json_response_sends_what_webobs_body_setter_made(body, method):
    """The header list is written whole; it is what ``Response(body=...)`` made."""
    data = json.dumps(body, separators=(",", ":")).encode()
    general = Response(
        body=data,
        status=200,
        headerlist=[
            ("Content-Type", "application/json; charset=utf-8"),
            ("Cache-Control", "no-store"),
        ],
    )
    request = Request.blank("/x", method=method)
    sent, expected = request.get_response(json_response(body)), request.get_response(general)
    assert sent.headerlist == expected.headerlist
    assert sent.body == expected.body


def test_error_body_has_backstage_shape():
    request = Request.blank("/api/auth/nope/refresh?x=1", method="POST")
    response = error_response(request, NotFoundError("Unknown auth provider 'nope'"))
    assert response.status_int == 404
    assert json.loads(response.body) == {
        "error": {"name": "NotFoundError", "message": "Unknown auth provider 'nope'"},
        "request": {"method": "POST", "url": "/api/auth/nope/refresh?x=1"},
        "response": {"statusCode": 404},
    }


def test_an_http_error_cause_is_named_and_a_foreign_one_is_not():
    request = Request.blank("/x")
    try:
        try:
            raise InputError("Missing session cookie")
        except InputError as cause:
            raise HttpError("Refresh failed") from cause
    except HttpError as error:
        body = json.loads(error_response(request, error).body)
    assert body["error"]["cause"] == {"name": "InputError", "message": "Missing session cookie"}
    try:
        try:
            raise OSError("connection refused to 10.0.0.7")
        except OSError as cause:
            raise HttpError("Upstream failed") from cause
    except HttpError as error:
        body = json.loads(error_response(request, error).body)
    assert "cause" not in body["error"]  # driver and socket text stay out of bodies


def test_method_not_allowed_says_what_is():
    error = MethodNotAllowedError("Method PUT is not allowed", allow=("GET", "POST"))
    response = error_response(Request.blank("/x", method="PUT"), error)
    assert response.status_int == 405
    assert response.headers["Allow"] == "GET, POST"


def test_a_503_says_when_to_retry_when_it_is_known():
    busy = error_response(Request.blank("/x"), ServiceUnavailableError("busy", retry_after=1))
    assert (busy.status_int, busy.headers["Retry-After"]) == (503, "1")
    down = error_response(Request.blank("/x"), ServiceUnavailableError("down"))
    assert "Retry-After" not in down.headers


@pytest.mark.parametrize(
    ("path_info", "query", "url"),
    [
        pytest.param("/api/auth/x", "a=1&b=%20", "/api/auth/x?a=1&b=%20", id="plain"),
        pytest.param("/caf\xc3\xa9", "", "/caf%C3%A9", id="utf8-in-wsgi-form"),
        pytest.param("/\xff", "q=%ff", "/%FF?q=%ff", id="not-utf8"),
        pytest.param("/api/日本", "q=\xc3\xa9", "/api/%E6%97%A5%E6%9C%AC?q=%C3%A9", id="decoded"),
        pytest.param("/a b", "x=<script>", "/a%20b?x=%3Cscript%3E", id="escaped"),
    ],
)
def test_request_url_never_decodes_and_never_fails(path_info, query, url):
    """Django hands on decoded text in PATH_INFO; a hostile path must still be reported."""
    environ = Request.blank("/").environ
    environ.update(PATH_INFO=path_info, QUERY_STRING=query)
    assert request_url(environ) == url


@pytest.mark.parametrize(
    ("text", "raw"),
    [
        pytest.param("caf\xc3\xa9", b"caf\xc3\xa9", id="wsgi-form"),
        pytest.param("日本", "日本".encode(), id="already-decoded"),
    ],
)
def test_wsgi_bytes(text, raw):
    assert wsgi_bytes(text) == raw


def test_a_fixed_response_has_webobs_headers_and_body():
    from wsgiauth.responses import FixedResponse

    headers = [("Content-Type", "application/json; charset=utf-8"), ("ETag", '"e"')]
    fixed = FixedResponse.of(b'{"keys":[]}', headers, conditional=True)
    webob = Response(body=b'{"keys":[]}', headerlist=list(headers), conditional_response=True)
    assert fixed.headers == tuple(webob.headerlist)  # Content-Length last, as WebOb puts it
    response = fixed.response()
    assert response.headerlist == webob.headerlist
    assert response.body == webob.body
    assert response.conditional_response


def test_a_fixed_route_is_a_handler_answering_its_current_response():
    from wsgiauth.responses import FixedResponse
    from wsgiauth.responses import FixedRoute

    answers = iter([FixedResponse.of(b"one", []), FixedResponse.of(b"two", [])])
    route = FixedRoute(lambda: next(answers))
    assert route(Request.blank("/")).body == b"one"
    assert route(Request.blank("/")).body == b"two"


def _sent(response: Response, method: str) -> tuple[str, list[tuple[str, str]], bytes]:
    """Status, header list and body as a server gets them."""
    calls: list[tuple[str, list[tuple[str, str]]]] = []
    environ = Request.blank("/api/auth/oidc/start", method=method).environ
    body = b"".join(response(environ, lambda status, headers, *_: calls.append((status, headers))))
    [(status, headers)] = calls
    return status, headers, body


def _webob_redirect(status: int, location: str) -> Response:
    """The general path: WebOb's own response, which makes the Location absolute."""
    return Response(
        status=status,
        headerlist=[
            ("Content-Type", "text/plain"),
            ("Content-Length", "0"),
            ("Location", location),
            ("Cache-Control", "no-store"),
        ],
        app_iter=[b""],
    )


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@settings(max_examples=300)
@given(
    location=st.one_of(
        st.from_regex(r"\Ahttps?://[a-z0-9.:/?=&%+_-]{0,40}\Z"),
        st.text(max_size=40),
        st.sampled_from(
            ["/x", "//evil.example", " http://x", "http://a\tb", "HTTP://A", "x:\r\n", "ſ:y"]
        ),
    )
)
def test_redirect_response_sends_what_webob_sends(method, location):
    assert _sent(redirect_response(302, location), method) == _sent(
        _webob_redirect(302, location), method
    )


@pytest.mark.parametrize(
    ("location", "as_is"),
    [
        ("https://idp.example/auth?state=a%2Bb", True),
        ("HTTP://IDP.EXAMPLE", True),
        ("/relative", False),
        ("//evil.example/", False),
        (" https://idp.example/", False),
        ("https://idp.example/\t", False),
        ("https://idp.example/\r\nSet-Cookie: x=y", False),
    ],
)
def test_only_a_location_webob_would_keep_skips_webob(location, as_is):
    # Anything WebOb would rewrite (relative, protocol-relative, tab/CR/LF) takes its path.
    assert (type(redirect_response(302, location)) is not Response) is as_is
