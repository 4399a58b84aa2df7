"""The outbound HTTP client: timeouts, size cap, redirects, cookies and 503 translation."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer

import pytest
import requests
import responses

from wsgiauth.errors import AuthenticationError
from wsgiauth.errors import ServiceUnavailableError
from wsgiauth.http import HttpClient
from wsgiauth.http import HttpResponse
from wsgiauth.http import create_http_client

URL = "https://idp.example.com/.well-known/openid-configuration"


@pytest.fixture
def http() -> HttpClient:
    return create_http_client()


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock() as rsps:
        yield rsps


# --- a real server on loopback, for what a stub cannot fake (streaming, slowness, cookies)

Handler = Callable[[BaseHTTPRequestHandler], None]


@pytest.fixture
def server() -> Iterator[Callable[[Handler], str]]:
    servers: list[ThreadingHTTPServer] = []

    def start(handle: Handler) -> str:
        class RequestHandler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (stdlib naming)
                handle(self)

            do_POST = do_GET  # noqa: N815

            def log_message(self, *args: object) -> None:
                pass

        srv = ThreadingHTTPServer(("127.0.0.1", 0), RequestHandler)
        srv.daemon_threads = True
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        return f"http://127.0.0.1:{srv.server_address[1]}"

    yield start
    for srv in servers:
        srv.shutdown()
        srv.server_close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- success paths


def test_get_json_returns_object(http: HttpClient, mocked: responses.RequestsMock) -> None:
    mocked.get(URL, json={"issuer": "https://idp.example.com"})
    assert http.get_json(URL) == {"issuer": "https://idp.example.com"}
    assert mocked.calls[0].request.headers["Accept"] == "application/json"


def test_request_returns_4xx_for_the_caller(
    http: HttpClient, mocked: responses.RequestsMock
) -> None:
    mocked.post(URL, status=400, json={"error": "invalid_grant"})
    response = http.request("POST", URL, data={"grant_type": "authorization_code"})
    assert response.status == 400
    assert response.json() == {"error": "invalid_grant"}
    assert mocked.calls[0].request.body == "grant_type=authorization_code"


def test_timeouts_are_always_sent(mocked: responses.RequestsMock) -> None:
    mocked.get(URL, json={})
    HttpClient(connect_timeout=1.5, read_timeout=7).get_json(URL)
    assert mocked.calls[0].request.req_kwargs["timeout"] == (1.5, 7)  # type: ignore[attr-defined]


def test_with_read_timeout_shares_the_session() -> None:
    base = HttpClient(connect_timeout=2, read_timeout=10, max_bytes=99)
    derived = base.with_read_timeout(4)
    assert derived.session is base.session
    assert (derived.connect_timeout, derived.read_timeout, derived.max_bytes) == (2, 4, 99)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"read_timeout": 0}, "timeouts", id="zero-read-timeout"),
        pytest.param({"connect_timeout": -1}, "timeouts", id="negative-connect-timeout"),
        pytest.param({"max_bytes": 0}, "max_bytes", id="zero-max-bytes"),
    ],
)
def test_rejects_unsafe_settings(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        HttpClient(**kwargs)  # type: ignore[arg-type]


# --- faults become ServiceUnavailableError


@pytest.mark.parametrize(
    ("body", "message", "cause"),
    [
        pytest.param(
            requests.ConnectionError("refused"),
            "Identity provider at idp.example.com is unreachable",
            requests.ConnectionError,
            id="connection-error",
        ),
        pytest.param(
            requests.ReadTimeout("slow"),
            "Identity provider at idp.example.com timed out after 10s",
            requests.ReadTimeout,
            id="read-timeout",
        ),
        pytest.param(
            requests.ConnectTimeout("slow"),
            "Identity provider at idp.example.com timed out after 3.05s while connecting",
            requests.ConnectTimeout,
            id="connect-timeout",
        ),
        pytest.param(
            requests.TooManyRedirects("loop"),
            "Request to identity provider at idp.example.com failed (TooManyRedirects)",
            requests.TooManyRedirects,
            id="other-request-exception",
        ),
    ],
)
def test_transport_faults_become_503(
    http: HttpClient,
    mocked: responses.RequestsMock,
    body: Exception,
    message: str,
    cause: type[Exception],
) -> None:
    mocked.get(URL, body=body)
    with pytest.raises(ServiceUnavailableError) as info:
        http.get_json(URL)
    assert info.value.message == message
    assert info.value.status_code == 503
    assert isinstance(info.value.__cause__, cause)


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_becomes_503_naming_host_and_status(
    http: HttpClient, mocked: responses.RequestsMock, status: int
) -> None:
    mocked.post("https://idp.example.com:8443/token", status=status, body="upstream down")
    with pytest.raises(ServiceUnavailableError) as info:
        http.request("POST", "https://idp.example.com:8443/token", data={"a": "b"})
    assert info.value.message == f"Identity provider at idp.example.com:8443 answered {status}"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"body": "<html>oops</html>"}, "returned malformed JSON", id="html"),
        pytest.param({"body": b"\xff\xfe{"}, "returned malformed JSON", id="not-utf8"),
        pytest.param({"body": "[" * 100_000}, "returned malformed JSON", id="deeply-nested"),
        pytest.param({"json": ["a", "list"]}, "JSON that is not an object", id="json-array"),
        pytest.param({"json": {}, "status": 404}, "answered 404", id="404"),
        pytest.param({"json": {}, "status": 302}, "answered 302", id="unfollowed-3xx"),
    ],
)
def test_get_json_requires_a_2xx_json_object(
    http: HttpClient, mocked: responses.RequestsMock, kwargs: dict[str, object], message: str
) -> None:
    mocked.get(URL, **kwargs)
    with pytest.raises(ServiceUnavailableError, match=message):
        http.get_json(URL)


@pytest.mark.parametrize("name", ["Authorization", "authorization"])
def test_a_401_to_a_token_is_the_token_refused(
    http: HttpClient, mocked: responses.RequestsMock, name: str
) -> None:
    mocked.get(URL, json={"error": "invalid_token"}, status=401)
    with pytest.raises(AuthenticationError, match="at idp.example.com refused the token"):
        http.get_json(URL, headers={name: "Bearer at-1"})


def test_a_401_without_a_token_is_the_provider_failing(
    http: HttpClient, mocked: responses.RequestsMock
) -> None:
    mocked.get(URL, json={}, status=401)
    with pytest.raises(ServiceUnavailableError, match="answered 401"):
        http.get_json(URL)


def test_malformed_json_is_raised_from_the_decode_error() -> None:
    response = HttpResponse(status=200, headers={}, body=b"{", url=URL)
    with pytest.raises(ServiceUnavailableError) as info:
        response.json()
    assert info.value.message == "Identity provider at idp.example.com returned malformed JSON"
    assert isinstance(info.value.__cause__, ValueError)


def test_oversized_body_with_content_length_is_refused(mocked: responses.RequestsMock) -> None:
    mocked.get(URL, body=b"x" * 2048, auto_calculate_content_length=True)
    with pytest.raises(ServiceUnavailableError, match="sent more than 1024 bytes"):
        HttpClient(max_bytes=1024).get_json(URL)


def test_body_at_the_cap_is_accepted(mocked: responses.RequestsMock) -> None:
    mocked.get(URL, body=b"x" * 1024)
    assert HttpClient(max_bytes=1024).request("GET", URL).body == b"x" * 1024


def test_streamed_oversized_body_stops_reading(server: Callable[[Handler], str]) -> None:
    def endless(handler: BaseHTTPRequestHandler) -> None:
        # No Content-Length: the cap must be enforced while reading.
        handler.send_response(200)
        handler.send_header("Connection", "close")
        handler.end_headers()
        try:
            for _ in range(1000):
                handler.wfile.write(b"y" * 4096)
        except OSError:
            pass

    base = server(endless)
    with pytest.raises(ServiceUnavailableError, match="sent more than 10000 bytes"):
        HttpClient(max_bytes=10_000).request("GET", base + "/big")


def test_connection_refused_on_loopback() -> None:
    port = _free_port()
    with pytest.raises(ServiceUnavailableError) as info:
        create_http_client().get_json(f"http://127.0.0.1:{port}/jwks")
    assert info.value.message == f"Identity provider at 127.0.0.1:{port} is unreachable"


def test_real_read_timeout(server: Callable[[Handler], str]) -> None:
    release = threading.Event()

    def stall(handler: BaseHTTPRequestHandler) -> None:
        release.wait(5)

    base = server(stall)
    try:
        with pytest.raises(ServiceUnavailableError) as info:
            HttpClient(read_timeout=0.2).get_json(base + "/slow")
    finally:
        release.set()
    assert info.value.message.endswith("timed out after 0.2s")


# --- redirects and cookies


def test_post_never_follows_redirects(http: HttpClient, mocked: responses.RequestsMock) -> None:
    mocked.post(URL, status=307, headers={"Location": "https://evil.example/steal"})
    response = http.request("POST", URL, data={"client_secret": "s3cret"})
    assert response.status == 307
    assert len(mocked.calls) == 1


def test_get_follows_redirects(http: HttpClient, mocked: responses.RequestsMock) -> None:
    mocked.get(URL, status=302, headers={"Location": "https://idp.example.com/moved"})
    mocked.get("https://idp.example.com/moved", json={"ok": True})
    assert http.get_json(URL) == {"ok": True}


def test_idp_cookies_are_not_shared_between_requests(server: Callable[[Handler], str]) -> None:
    seen: list[str | None] = []

    def set_cookie(handler: BaseHTTPRequestHandler) -> None:
        seen.append(handler.headers.get("Cookie"))
        handler.send_response(200)
        handler.send_header("Set-Cookie", "sid=user-a; Path=/")
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", "2")
        handler.end_headers()
        handler.wfile.write(b"{}")

    base = server(set_cookie)
    http = create_http_client()
    http.get_json(base + "/userinfo")
    http.get_json(base + "/userinfo")
    assert seen == [None, None]
    assert len(http.session.cookies) == 0


def test_bodies_and_tokens_are_not_logged(
    http: HttpClient, mocked: responses.RequestsMock, caplog: pytest.LogCaptureFixture
) -> None:
    mocked.post(URL, json={"access_token": "tok-SECRET"})
    mocked.get("https://idp.example.com/userinfo", status=502, body="tok-SECRET")
    caplog.set_level("DEBUG", logger="wsgiauth.http")
    http.request("POST", URL, data={"refresh_token": "rt-SECRET"})
    with pytest.raises(ServiceUnavailableError):
        http.request("GET", "https://idp.example.com/userinfo?x=1", headers={"Authorization": "t"})
    assert caplog.records
    assert "SECRET" not in caplog.text
    assert "userinfo" not in caplog.text  # no paths or query strings either


def test_shared_by_threads(mocked: responses.RequestsMock) -> None:
    http = create_http_client()
    for i in range(8):
        mocked.get(f"https://idp.example.com/{i}", json={"i": i})
    results: dict[int, object] = {}

    def fetch(i: int) -> None:
        results[i] = http.get_json(f"https://idp.example.com/{i}")["i"]

    threads = [threading.Thread(target=fetch, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {i: i for i in range(8)}


def test_reroute_sends_a_fixed_host_to_a_loopback_fake():
    """The documented test seam for providers whose hosts are fixed."""
    import threading
    from wsgiref.simple_server import WSGIRequestHandler
    from wsgiref.simple_server import make_server

    seen = []

    def fake(environ, start_response):
        seen.append((environ["PATH_INFO"], environ["QUERY_STRING"]))
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b'{"login": "jane"}']

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args):
            pass

    with make_server("127.0.0.1", 0, fake, handler_class=Quiet) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            client = create_http_client()
            client.reroute("https://api.github.com", f"http://127.0.0.1:{server.server_port}")
            assert client.get_json("https://api.github.com/user?x=1") == {"login": "jane"}
            assert seen == [("/user", "x=1")]
            with pytest.raises(ServiceUnavailableError):  # other hosts are left alone
                client.get_json("https://api.github.com.invalid/user")
        finally:
            server.shutdown()
