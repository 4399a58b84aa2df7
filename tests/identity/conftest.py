"""Fixtures and helpers for the identity tests: a fake clock, key store doubles, token decoding."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Sequence
from typing import Any

import jwt
import pytest

from wsgiauth.errors import ServiceUnavailableError
from wsgiauth.identity.key_stores import MemoryKeyStore
from wsgiauth.identity.types import StoredKey

ISSUER = "http://localhost:7007/api/auth"


class FakeClock:
    """A settable epoch clock, shared by factories and stores; starts at the real time."""

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds


class RecordingKeyStore(MemoryKeyStore):
    """A memory key store that counts calls, can be slow, and can be taken down."""

    def __init__(self, *, clock: FakeClock, delay: float = 0.0) -> None:
        super().__init__(clock=clock)
        self.delay = delay
        self.down = False
        self.calls: dict[str, int] = {"add_key": 0, "list_keys": 0, "remove_keys": 0}
        self.removed: list[str] = []

    def _call(self, name: str) -> None:
        self.calls[name] += 1
        if self.delay:
            time.sleep(self.delay)
        if self.down:
            raise ServiceUnavailableError("The database is unavailable")

    def add_key(self, key: dict[str, Any]) -> None:
        self._call("add_key")
        super().add_key(key)

    def list_keys(self) -> list[StoredKey]:
        self._call("list_keys")
        return super().list_keys()

    def remove_keys(self, kids: Sequence[str]) -> None:
        self._call("remove_keys")
        self.removed.extend(kids)
        super().remove_keys(kids)


def b64decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _crafted(header: bytes | str, signature: str = "c2ln") -> str:
    """A token with this header segment (bytes are base64url-encoded), payload ``{}``."""
    segment = b64encode(header) if isinstance(header, bytes) else header
    return f"{segment}.e30.{signature}"


_SMALL_HEADER = b'{"alg":"ES256","kid":"k"}'

#: Tokens crafted to break decoding (issue 8, item 5), and the 401 message each gets.
#: Before the fix the first one escaped the verifier as RecursionError: a 500 on every path.
CRAFTED_TOKENS = [
    pytest.param(_crafted(b"[" * 5000), "the header segment is too long", id="nested-header"),
    pytest.param(
        _crafted(json.dumps({"alg": "ES256", "kid": "k", "pad": "x" * 2000}).encode()),
        "the header segment is too long",
        id="oversized-header",
    ),
    pytest.param(
        _crafted(_SMALL_HEADER, signature="A" * 3000),
        "the signature segment is too long",
        id="oversized-signature",
    ),
    pytest.param(_crafted(b'["ES256"]'), "malformed token", id="header-a-list"),
    pytest.param(_crafted(b"[" * 700), "malformed token", id="header-nested-within-cap"),
    pytest.param(_crafted("a"), "malformed token", id="header-bad-base64"),
    pytest.param(_crafted("\u00e9yJ"), "malformed token", id="header-not-ascii"),
    pytest.param(_crafted(b'{"alg":"\xff\xfe"}'), "malformed token", id="header-bad-utf8"),
    pytest.param(_crafted(_SMALL_HEADER) + ".x", "malformed token", id="four-segments"),
]


def segments(token: str) -> tuple[bytes, bytes]:
    """The raw header and payload bytes of a compact JWS."""
    header, payload, _ = token.split(".")
    return b64decode(header), b64decode(payload)


def claims_of(token: str) -> dict[str, Any]:
    return json.loads(segments(token)[1])


def kid_of(token: str) -> str:
    return json.loads(segments(token)[0])["kid"]


def verify(token: str, jwks: list[dict[str, Any]], *, check_time: bool = True) -> dict[str, Any]:
    """Verify a user token against a JWKS as a Backstage service would (PyJWT)."""
    kid = kid_of(token)
    matches = [jwk for jwk in jwks if jwk["kid"] == kid]
    if not matches:
        raise LookupError(f"kid {kid} not in the key list")
    key = jwt.PyJWK(matches[0])
    options = {} if check_time else {"verify_exp": False, "verify_iat": False, "verify_nbf": False}
    return jwt.decode(
        token,
        key,
        algorithms=[matches[0]["alg"]],
        audience="backstage",
        issuer=ISSUER,
        options=options,  # type: ignore[arg-type]
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def recording_store(clock: FakeClock) -> RecordingKeyStore:
    return RecordingKeyStore(clock=clock)
