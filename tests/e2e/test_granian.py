"""``wsgiauth serve`` on granian, as the README's first command runs it: the demo config.

Granian hands the app a decoded ``PATH_INFO`` and no ``RAW_URI``, so the request
limits and the refusal of a path that is not UTF-8 are checked here over a real
socket, byte for byte, as well as guest sign-in, the JWKS, the JSON 404 and a
graceful stop on SIGTERM.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import jwt
import pytest

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_CONFIG = REPO_ROOT / "examples" / "app-config.yaml"
STARTUP_LIMIT = 30.0
TIMEOUT = 10
#: How long a graceful stop may take with nothing in flight.
STOP_LIMIT = 5.0
#: The auth routes' body limit (docs/deployment.md, "Request limits").
BODY_LIMIT = 64 * 1024
#: Their limit on all request headers together.
HEADERS_LIMIT = 32 * 1024


@dataclass
class Served:
    proc: subprocess.Popen[str]
    host: str
    port: int

    def stop(self) -> None:
        """Kill its process group (granian's workers too) if it still runs; close stdout."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def _start(workdir: Path) -> Served:
    """``wsgiauth serve --port 0`` on the demo config, waiting (bounded) for its banner."""
    env = {
        **os.environ,
        "WSGIAUTH_DATA_DIR": str(workdir),
        "PYTHONWARNINGS": "ignore",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("WSGIAUTH_CONFIG", None)
    env.pop("WSGIAUTH_APP", None)
    log = (workdir / "serve.log").open("w")
    args = ["--config", str(DEMO_CONFIG), "--port", "0", "--workers", "2", "--access-log"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "wsgiauth.cli", "serve", *args],
        stdout=subprocess.PIPE,
        stderr=log,
        env=env,
        cwd=REPO_ROOT,
        text=True,
        start_new_session=True,  # a process group of its own, for Served.stop
    )
    log.close()
    assert proc.stdout is not None
    deadline = time.monotonic() + STARTUP_LIMIT
    prefix = "wsgiauth serving on http://"
    while time.monotonic() < deadline and proc.poll() is None:
        line = proc.stdout.readline()  # the banner is the only line on stdout
        if line.startswith(prefix):
            host, _, port = line[len(prefix) :].strip().rpartition(":")
            return Served(proc, host, int(port))
    Served(proc, "", 0).stop()
    raise AssertionError(f"wsgiauth serve did not start: {(workdir / 'serve.log').read_text()}")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    workdir = tmp_path_factory.mktemp("granian")
    server = _start(workdir)
    try:
        yield server
    finally:
        server.proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.proc.wait(timeout=TIMEOUT)
        server.stop()


def request(
    served: Served, method: str, target: str, headers: dict[str, str] | None = None
) -> tuple[int, http.client.HTTPMessage, bytes]:
    """(status, headers, body); header names are case-insensitive (granian sends them lowercase)."""
    connection = http.client.HTTPConnection(served.host, served.port, timeout=TIMEOUT)
    try:
        connection.request(method, target, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


def raw(served: Served, head: bytes, body_chunks: Iterable[bytes] = ()) -> tuple[int, bytes]:
    """Write a request byte for byte (the head, then each chunk); (status, body) of the answer."""
    with socket.create_connection((served.host, served.port), timeout=TIMEOUT) as sock:
        try:
            sock.sendall(head)
            for chunk in body_chunks:
                sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # answered before the body was all sent: read the answer
        response = http.client.HTTPResponse(sock, method="POST")
        response.begin()
        return response.status, response.read()


def test_guest_sign_in_and_a_token_the_jwks_verifies(served):
    status, headers, body = request(served, "GET", "/api/auth/guest/refresh")
    assert status == 200, body
    token = json.loads(body)["backstageIdentity"]["token"]

    status, headers, body = request(served, "GET", "/api/auth/.well-known/jwks.json")
    assert status == 200
    assert headers["Content-Type"].startswith("application/json")
    keys = jwt.PyJWKSet.from_dict(json.loads(body))
    kid = jwt.get_unverified_header(token)["kid"]
    key = next(key for key in keys.keys if key.key_id == kid)
    claims = jwt.decode(token, key.key, algorithms=["ES256"], audience="backstage")
    assert claims["sub"] == "user:development/guest"

    # The demo portal's protected path accepts it, on whichever worker answers.
    for _ in range(4):
        status, _, body = request(served, "GET", "/api/me", {"Authorization": f"Bearer {token}"})
        assert status == 200, body


def test_an_unknown_auth_path_is_a_json_404(served):
    status, headers, body = request(served, "GET", "/api/auth/nope/start?env=development")
    assert status == 404
    assert headers["Content-Type"].startswith("application/json")
    payload = json.loads(body)
    assert payload["error"]["name"] == "NotFoundError"
    assert payload["response"] == {"statusCode": 404}


def test_a_chunked_body_over_the_limit_is_413(served):
    head = (
        b"POST /api/auth/guest/handler/frame HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    chunk = b"a" * 16 * 1024

    def chunks() -> Iterator[bytes]:
        for _ in range(BODY_LIMIT // len(chunk) + 2):
            yield b"%x\r\n%s\r\n" % (len(chunk), chunk)
        yield b"0\r\n\r\n"

    status, body = raw(served, head, chunks())
    assert status == 413, body
    assert json.loads(body)["error"]["name"] == "PayloadTooLargeError"


def test_headers_over_the_limit_are_431(served):
    # Each header stays small; together they pass the auth routes' 32 KiB.
    headers = {f"X-Filler-{n}": "f" * 4000 for n in range(HEADERS_LIMIT // 4000 + 1)}
    status, headers_out, body = request(served, "GET", "/api/auth/guest/refresh", headers)
    assert status == 431, body
    assert headers_out["Content-Type"].startswith("application/json")


@pytest.mark.parametrize(
    "target",
    [
        pytest.param(b"/api/auth/guest/%FF/refresh", id="escaped"),
        pytest.param(b"/api/auth/%C3%28/start?env=development", id="bad-sequence"),
    ],
)
def test_a_path_that_is_not_utf8_is_400(served, target):
    head = b"GET " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    status, body = raw(served, head)
    assert status == 400, body
    assert json.loads(body)["response"] == {"statusCode": 400}


def test_sigterm_stops_it_gracefully(tmp_path):
    server = _start(tmp_path)
    status, _, _ = request(server, "GET", "/api/auth/.well-known/jwks.json")
    assert status == 200
    server.proc.send_signal(signal.SIGTERM)
    try:
        code = server.proc.wait(timeout=STOP_LIMIT)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"still running {STOP_LIMIT} s after SIGTERM") from None
    finally:
        server.stop()
    assert code == 0, (tmp_path / "serve.log").read_text()
    log = (tmp_path / "serve.log").read_text()
    assert "Traceback" not in log
    assert "Granian shutdown completed" in log
