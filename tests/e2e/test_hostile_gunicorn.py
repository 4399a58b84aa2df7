"""Hostile requests over a real socket to gunicorn, and a chunked body too large to hold.

The same generated requests as ``tests/test_hostile_requests.py`` (see
``tests/hostile.py``), written byte for byte on a socket to gunicorn (gthread, one
worker, keep-alive so it drains what the app did not read), against the same stack.
Answers gunicorn gives itself (its HTML 400 for a request line it cannot parse) are
not the app's and are only checked for status.
"""

from __future__ import annotations

import http.client
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck
from hypothesis import event
from hypothesis import given
from hypothesis import settings

from tests.e2e.conftest import WsgiServer
from tests.e2e.conftest import free_port
from tests.e2e.conftest import run_gunicorn
from tests.hostile import AUTH_BASE
from tests.hostile import BREACH_HEADER
from tests.hostile import HostileRequest
from tests.hostile import requests
from tests.hostile import stack_config

pytestmark = pytest.mark.e2e

TIMEOUT = 20
#: The body streamed at handler/frame: far past the 64 KB limit.
HUGE = 100 * 1024 * 1024
CHUNK = 256 * 1024
#: How far a worker's peak RSS may rise while refusing :data:`HUGE`.
MAX_PEAK_GROWTH = 16 * 1024 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WsgiServer]:
    port = free_port()
    workdir = tmp_path_factory.mktemp("hostile")
    args = ["--worker-class", "gthread", "--threads", "2", "--limit-request-field_size", "65536"]
    with run_gunicorn(
        port,
        stack_config(),
        workdir,
        workers=1,
        app="tests.e2e.apps:make_hostile_stack()",
        extra_args=args,
    ) as running:
        yield running


def _port(server: WsgiServer) -> int:
    return int(server.base_url.rsplit(":", 1)[1])


def send(server: WsgiServer, request: HostileRequest) -> http.client.HTTPResponse | None:
    """Write ``request`` byte for byte, then read gunicorn's answer.

    None when gunicorn dropped the connection without an answer (it refuses some
    malformed framing that way); whether the app failed shows in the log, checked last.
    """
    target = request.path.encode("utf-8") + (b"?" + _line_safe(request.query))
    lines = [request.method.encode() + b" " + target + b" HTTP/1.1", b"Host: 127.0.0.1"]
    lines += [f"{name}: {value}".encode("latin-1") for name, value in request.headers.items()]
    if request.framing == "length":
        lines.append(f"Content-Length: {len(request.body) + request.oversize}".encode())
    elif request.framing == "chunked":
        lines.append(b"Transfer-Encoding: chunked")
    sock = socket.create_connection(("127.0.0.1", _port(server)), timeout=TIMEOUT)
    try:
        try:
            sock.sendall(b"\r\n".join(lines) + b"\r\n\r\n")
            _send_body(sock, request)
        except (BrokenPipeError, ConnectionResetError):
            pass  # answered (or refused) before the body was all sent: read what came
        response = http.client.HTTPResponse(sock, method=request.method)
        try:
            response.begin()
            response.body = response.read()  # type: ignore[attr-defined]
        except (ConnectionResetError, http.client.RemoteDisconnected):
            return None
        return response
    finally:
        sock.close()


def _line_safe(query: bytes) -> bytes:
    """Raw bytes stay raw, but those that would end the request line are escaped."""
    return re.sub(rb"[\x00-\x20#\x7f]", lambda m: b"%%%02X" % m.group()[0], query)


def _send_body(sock: socket.socket, request: HostileRequest) -> None:
    parts = [request.body]
    left = request.oversize
    while left:
        parts.append(b"a" * min(CHUNK, left))
        left -= len(parts[-1])
    for part in parts:
        if request.framing == "chunked" and part:
            sock.sendall(b"%x\r\n%s\r\n" % (len(part), part))
        elif request.framing == "length":
            sock.sendall(part)
    if request.framing == "chunked":
        sock.sendall(b"0\r\n\r\n")


def _gunicorns_own(response: http.client.HTTPResponse) -> bool:
    """gunicorn's own refusal of a request it cannot parse (400, or 414 past its 4 KB
    request line): never reached the app. It is an HTML page; the auth app's refusals
    are all JSON.
    """
    content_type = response.getheader("Content-Type") or ""
    return response.status in (400, 414) and content_type.startswith("text/html")


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(request=requests(max_oversize=1024 * 1024))
def test_no_request_breaks_the_served_stack(server, request):
    response = send(server, request)
    event("dropped" if response is None else str(response.status))  # in statistics
    if response is None:
        return
    assert response.status < 500, (request, response.status, response.body[:300])
    assert response.getheader(BREACH_HEADER) is None, request
    path_info = request.path_info
    if (path_info == AUTH_BASE or path_info.startswith(AUTH_BASE + "/")) and not _gunicorns_own(
        response
    ):
        assert response.getheader("X-Content-Type-Options") == "nosniff", (request, response.status)


def test_the_log_holds_no_error_and_no_traceback(server):
    """Run after the property: whatever it sent, nothing was logged at error level."""
    send(server, HostileRequest("GET", "/private", b"", {"Origin": "null"}))
    log = Path(server.log_path).read_text(errors="replace")
    assert "Traceback" not in log, server.log_tail()
    assert not re.search(r"\[ERROR\]|protected view ran", log), server.log_tail()


def _peak_rss(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    assert match, status
    return int(match.group(1)) * 1024


def test_a_100mb_chunked_body_is_refused_without_being_held(server):
    """Before the fix the worker read it whole: its peak RSS rose by about 300 MB."""
    answer = send(server, HostileRequest("GET", "/_pid", b""))
    assert answer is not None
    pid = int(answer.body)  # type: ignore[attr-defined]
    before = _peak_rss(pid)
    response = send(
        server,
        HostileRequest(
            "POST", f"{AUTH_BASE}/fake/handler/frame", b"", framing="chunked", oversize=HUGE
        ),
    )
    assert response is not None
    assert response.status == 413
    assert b"PayloadTooLargeError" in response.body  # type: ignore[attr-defined]
    assert response.getheader("X-Content-Type-Options") == "nosniff"
    assert _peak_rss(pid) - before < MAX_PEAK_GROWTH
