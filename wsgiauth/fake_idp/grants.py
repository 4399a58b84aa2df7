"""The fake IdP's memory: pending sign-ins, codes, grants and their tokens.

Everything an IdP must get right about one-time values lives here, under one lock:

- an authorization request and a code are taken once (a second take finds nothing);
  a code is good for :data:`CODE_TTL` seconds, and presenting a spent code again
  revokes every token issued from it (RFC 6749 §4.1.2);
- each refresh rotates: the old refresh token is spent, and presenting a spent one
  revokes the whole grant, the tokens of the thief and of the user alike (RFC 9700
  §4.14.2, as oidc-provider does);
- every map is bounded (:data:`MAX_ENTRIES`): expired entries go first, then the oldest.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from typing import Generic
from typing import TypeVar

__all__ = [
    "ACCESS_TOKEN_TTL",
    "CODE_TTL",
    "MAX_ENTRIES",
    "REFRESH_TOKEN_TTL",
    "REQUEST_TTL",
    "AuthorizationRequest",
    "Grant",
    "GrantStore",
    "IssuedCode",
]

#: Seconds a sign-in page stays valid.
REQUEST_TTL = 600.0
#: Seconds an authorization code stays valid.
CODE_TTL = 60.0
#: Seconds an access token (and an ID token) stays valid.
ACCESS_TOKEN_TTL = 3600.0
#: Seconds a refresh token stays valid.
REFRESH_TOKEN_TTL = 86400.0
#: Entries per map before the oldest are dropped.
MAX_ENTRIES = 10_000

Clock = Callable[[], float]
_V = TypeVar("_V")


@dataclass(frozen=True, slots=True)
class AuthorizationRequest:
    """A checked ``/authorize`` request waiting for the user to pick who signs in."""

    client_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    state: str | None
    nonce: str | None
    code_challenge: str
    #: The form's hidden field and the cookie that binds the page to this browser.
    id: str = field(default_factory=lambda: secrets.token_urlsafe(24))


@dataclass(frozen=True, slots=True)
class Grant:
    """One sign-in of a user at a client: what its codes and tokens stand for (``sid``)."""

    client_id: str
    user_ref: str
    scopes: tuple[str, ...]
    auth_time: int
    id: str = field(default_factory=lambda: secrets.token_urlsafe(16))


@dataclass(frozen=True, slots=True)
class IssuedCode:
    """What a code was issued for: checked again at the token endpoint."""

    grant: Grant
    redirect_uri: str
    code_challenge: str
    nonce: str | None


@dataclass(slots=True)
class _Entry(Generic[_V]):
    value: _V
    expires_at: float


class _Bounded(Generic[_V]):
    """A dict of expiring entries, capped at :data:`MAX_ENTRIES` (not thread-safe alone)."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._entries: dict[str, _Entry[_V]] = {}

    def put(self, key: str, value: _V, ttl: float) -> None:
        if len(self._entries) >= MAX_ENTRIES:
            now = self._clock()
            for stale in [k for k, e in self._entries.items() if e.expires_at <= now]:
                del self._entries[stale]
            while len(self._entries) >= MAX_ENTRIES:
                del self._entries[next(iter(self._entries))]
        self._entries[key] = _Entry(value, self._clock() + ttl)

    def get(self, key: str) -> _V | None:
        entry = self._entries.get(key)
        if entry is None or entry.expires_at <= self._clock():
            return None
        return entry.value

    def pop(self, key: str) -> _V | None:
        entry = self._entries.pop(key, None)
        if entry is None or entry.expires_at <= self._clock():
            return None
        return entry.value

    def drop_where(self, keep: Callable[[_V], bool]) -> None:
        for key in [k for k, e in self._entries.items() if not keep(e.value)]:
            del self._entries[key]


class GrantStore:
    """Requests, codes and tokens in memory; every method is atomic."""

    def __init__(self, *, clock: Clock = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._requests: _Bounded[AuthorizationRequest] = _Bounded(clock)
        self._codes: _Bounded[IssuedCode] = _Bounded(clock)
        #: Spent code -> the grant it made, remembered to revoke it on a replay.
        self._spent_codes: _Bounded[str] = _Bounded(clock)
        self._grants: _Bounded[Grant] = _Bounded(clock)
        self._access: _Bounded[Grant] = _Bounded(clock)
        self._refresh: _Bounded[Grant] = _Bounded(clock)
        #: Rotated refresh token -> its grant id, to revoke the grant on a replay.
        self._spent_refresh: _Bounded[str] = _Bounded(clock)

    def now(self) -> float:
        return self._clock()

    def add_request(self, request: AuthorizationRequest) -> None:
        with self._lock:
            self._requests.put(request.id, request, REQUEST_TTL)

    def peek_request(self, request_id: str) -> AuthorizationRequest | None:
        with self._lock:
            return self._requests.get(request_id)

    def take_request(self, request_id: str) -> AuthorizationRequest | None:
        """The pending request, removed: a sign-in page is answered once."""
        with self._lock:
            return self._requests.pop(request_id)

    def issue_code(self, issued: IssuedCode) -> str:
        code = secrets.token_urlsafe(32)
        with self._lock:
            self._grants.put(issued.grant.id, issued.grant, REFRESH_TOKEN_TTL)
            self._codes.put(code, issued, CODE_TTL)
        return code

    def redeem_code(self, code: str) -> IssuedCode | None:
        """The code's issue, once; a replay of a spent code revokes its grant and gets None."""
        with self._lock:
            issued = self._codes.pop(code)
            if issued is not None:
                self._spent_codes.put(code, issued.grant.id, REFRESH_TOKEN_TTL)
                return issued
            grant_id = self._spent_codes.get(code)
            if grant_id is not None:
                self._revoke(grant_id)
            return None

    def issue_tokens(self, grant: Grant) -> tuple[str, str]:
        """A new access token and refresh token for a live grant."""
        access, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        with self._lock:
            self._access.put(access, grant, ACCESS_TOKEN_TTL)
            self._refresh.put(refresh, grant, REFRESH_TOKEN_TTL)
        return access, refresh

    def rotate_refresh(self, token: str) -> Grant | None:
        """The grant of a live refresh token, which is spent now; a replay revokes the grant."""
        with self._lock:
            grant = self._refresh.pop(token)
            if grant is not None and self._grants.get(grant.id) is not None:
                self._spent_refresh.put(token, grant.id, REFRESH_TOKEN_TTL)
                return grant
            grant_id = self._spent_refresh.get(token)
            if grant_id is not None:
                self._revoke(grant_id)
            return None

    def access_grant(self, token: str) -> Grant | None:
        """The live grant an access token stands for."""
        with self._lock:
            grant = self._access.get(token)
            if grant is None or self._grants.get(grant.id) is None:
                return None
            return grant

    def refresh_grant(self, token: str) -> Grant | None:
        """The grant of a live refresh token, without spending it (revocation)."""
        with self._lock:
            return self._refresh.get(token)

    def revoke_access_token(self, token: str) -> None:
        with self._lock:
            self._access.pop(token)

    def revoke_grant(self, grant_id: str) -> None:
        """End a grant: its codes, access and refresh tokens stop working."""
        with self._lock:
            self._revoke(grant_id)

    def _revoke(self, grant_id: str) -> None:
        self._grants.pop(grant_id)
        for tokens in (self._access, self._refresh):
            tokens.drop_where(lambda grant: grant.id != grant_id)
        self._codes.drop_where(lambda issued: issued.grant.id != grant_id)
