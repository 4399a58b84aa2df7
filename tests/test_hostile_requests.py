"""The served stack against generated hostile requests, in process (issue 8's property).

Whatever a client sends, through ``AuthMiddleware`` and ``IdentityMiddleware`` to a
protected app: no 5xx, nothing logged at error level (no traceback), no protected
view ever run without an identity, and every answer of the auth app says
``nosniff``. The stack is wrapped in ``wsgiref``'s validator, so an answer that
breaks WSGI (a CR in a header, a body on a 204) fails too.
"""

from __future__ import annotations

import io
import logging
from typing import Any
from wsgiref.util import setup_testing_defaults
from wsgiref.validate import validator

import pytest
from hypothesis import event
from hypothesis import given
from hypothesis import settings

from tests.hostile import AUTH_BASE
from tests.hostile import BREACH_HEADER
from tests.hostile import HostileRequest
from tests.hostile import build_stack
from tests.hostile import requests
from tests.hostile import stack_config
from wsgiauth import Config


class _Body(io.RawIOBase):
    """A request body as a server streams it: ``body``, then ``oversize`` more bytes."""

    def __init__(self, body: bytes, oversize: int) -> None:
        self.data = io.BytesIO(body)
        self.left = oversize
        self.served = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        size = self.data.readinto(buffer)
        if not size and self.left:
            size = min(len(buffer), self.left)
            buffer[:size] = b"a" * size
            self.left -= size
        self.served += size
        return size


class _ErrorRecords(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def stack() -> Any:
    return validator(build_stack(Config.from_dict(stack_config())))


@pytest.fixture(scope="module")
def valid_token(stack) -> str:
    status, _, body = call(stack, HostileRequest("GET", f"{AUTH_BASE}/guest/refresh", b""))
    assert status.startswith("200"), body
    import json

    return str(json.loads(body)["backstageIdentity"]["token"])


@pytest.fixture(scope="module")
def error_records() -> Any:
    handler = _ErrorRecords()
    root = logging.getLogger()
    root.addHandler(handler)
    yield handler
    root.removeHandler(handler)


def environ_of(request: HostileRequest) -> tuple[dict[str, Any], _Body]:
    """The environ a server builds for ``request``."""
    environ: dict[str, Any] = {
        "REQUEST_METHOD": request.method,
        "SCRIPT_NAME": "",
        "PATH_INFO": request.path_info,
        "QUERY_STRING": request.query.decode("latin-1"),
    }
    setup_testing_defaults(environ)
    for name, value in request.headers.items():
        key = name.upper().replace("-", "_")
        environ[key if key == "CONTENT_TYPE" else f"HTTP_{key}"] = value
    stream = _Body(request.body, request.oversize)
    environ["wsgi.input"] = io.BufferedReader(stream)
    if request.framing == "length":
        environ["CONTENT_LENGTH"] = str(len(request.body) + request.oversize)
    elif request.framing == "chunked":
        environ["wsgi.input_terminated"] = True
        environ["HTTP_TRANSFER_ENCODING"] = "chunked"
    return environ, stream


def call(app: Any, request: HostileRequest) -> tuple[str, list[tuple[str, str]], bytes]:
    environ, _ = environ_of(request)
    answer: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        answer.update(status=status, headers=headers)
        return lambda data: None

    chunks = app(environ, start_response)
    try:
        body = b"".join(chunks)
    finally:
        getattr(chunks, "close", lambda: None)()
    return answer["status"], answer["headers"], body


def under_auth_base(path_info: str) -> bool:
    return path_info == AUTH_BASE or path_info.startswith(AUTH_BASE + "/")


@settings(max_examples=400, deadline=None)
@given(request=requests())
def test_no_request_breaks_the_stack(stack, valid_token, error_records, request):
    request = request.with_token(valid_token)
    error_records.records.clear()
    status, headers, body = call(stack, request)
    names = {name.lower(): value for name, value in headers}
    code = int(status.split()[0])
    event(f"{code} {'auth' if under_auth_base(request.path_info) else 'app'}")  # in statistics
    assert code < 500, (request, status, body[:300])
    assert not error_records.records, [r.getMessage() for r in error_records.records]
    assert BREACH_HEADER.lower() not in names, request
    if under_auth_base(request.path_info):
        sniffing = [value for name, value in headers if name.lower() == "x-content-type-options"]
        assert sniffing == ["nosniff"], (request, status)
