"""One refresh per refresh token across processes and hosts, through the database.

Identity providers that rotate refresh tokens accept each one once, so two tabs
that refresh at the same moment must share one exchange, even when different
workers (or hosts) serve them. The workers meet in the table
``refresh_flights (key, owner, claimed_at, finished_at, result)`` of the
:class:`~wsgiauth.identity.database.Database` the key store uses:

- the first caller claims the key with an ``INSERT`` that does nothing on conflict,
  runs the exchange, and stores its result with ``finished_at``; on an error it
  deletes its row (errors are not shared: the next caller tries on its own);
- the others poll (short, growing sleeps) until the result is there, which they use
  if it finished within the grace, or the row is gone (they claim it), or the claim
  is older than the wait (its owner died: they take it over with an ``UPDATE``
  guarded on the old owner).

The key is a secret (it holds the refresh token). The row holds neither it nor
the result in the clear: HKDF-SHA256 of the key gives the row's id and an
AES-GCM key that seals the result, so only a caller holding the same old refresh
token can read what the exchange returned. Times are each host's wall clock.

When the database fails, the caller falls back to its own exchange (the
in-process :class:`~wsgiauth.oauth.single_flight.SingleFlight` in front still
deduplicates its threads) and a warning is logged.
"""

from __future__ import annotations

import base64
import logging
import os
import secrets
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ..errors import ServiceUnavailableError
from ..types import REFRESH_GRACE_SECONDS
from ..types import REFRESH_WAIT_SECONDS

if TYPE_CHECKING:
    from .database import Database

__all__ = ["DEFAULT_GRACE_SECONDS", "WAIT_SECONDS", "SqlRefreshFlights"]

log = logging.getLogger(__name__)

#: The same grace and wait in every process (``wsgiauth.types``).
DEFAULT_GRACE_SECONDS = REFRESH_GRACE_SECONDS
WAIT_SECONDS = REFRESH_WAIT_SECONDS
#: At most one prune per this many seconds, per process.
_PRUNE_INTERVAL = 60.0
_FIRST_POLL = 0.01
_MAX_POLL = 0.25
_HKDF_INFO = b"wsgiauth refresh-flight v1"
_NONCE = 12


class _Sealed:
    """The row id and the result's AEAD key, both derived from the secret key."""

    __slots__ = ("_aead", "row_id")

    def __init__(self, key: str) -> None:
        derived = HKDF(algorithm=hashes.SHA256(), length=64, salt=None, info=_HKDF_INFO).derive(
            key.encode("utf-8")
        )
        self.row_id = derived[:32].hex()
        self._aead = AESGCM(derived[32:])

    def seal(self, value: str) -> str:
        nonce = os.urandom(_NONCE)
        sealed = self._aead.encrypt(nonce, value.encode("utf-8"), self.row_id.encode("ascii"))
        return base64.b64encode(nonce + sealed).decode("ascii")

    def unseal(self, text: str) -> str | None:
        """The value, or ``None`` if the row was sealed under another key or altered."""
        try:
            raw = base64.b64decode(text, validate=True)
            opened = self._aead.decrypt(raw[:_NONCE], raw[_NONCE:], self.row_id.encode("ascii"))
            return opened.decode("utf-8")
        except (InvalidTag, ValueError):
            return None


class SqlRefreshFlights:
    """The ``refresh_flights`` table of a SQLite or PostgreSQL :class:`Database`.

    :param grace: seconds a finished result is handed to late callers.
    :param wait: seconds a claim may run before it is taken over.
    """

    def __init__(
        self,
        database: Database,
        *,
        grace: float = DEFAULT_GRACE_SECONDS,
        wait: float = WAIT_SECONDS,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.database = database
        self.grace = grace
        self.wait = wait
        self._clock = clock
        self._sleep = sleep
        self._ready = False
        self._last_prune = float("-inf")

    def run(self, key: str, call: Callable[[], str]) -> str:
        """``call()``, unless a call with the same ``key`` runs or just finished anywhere.

        ``call``'s errors propagate (to this caller only); the database's never do.
        """
        sealed = _Sealed(key)
        owner = secrets.token_hex(16)
        try:
            self._schema()
            self._prune()
            claimed = self._claim(sealed.row_id, owner)
        except ServiceUnavailableError as exc:
            log.warning("Refresh flights unavailable, refreshing in this process only: %s", exc)
            return call()
        if claimed:
            return self._fly(sealed, owner, call)
        deadline = time.monotonic() + 2 * self.wait  # a guard against skewed clocks
        pause = _FIRST_POLL
        while True:
            try:
                outcome = self._look(sealed, owner)
            except ServiceUnavailableError as exc:
                log.warning("Refresh flights unavailable, refreshing on our own: %s", exc)
                return call()
            if isinstance(outcome, str):
                return outcome
            if outcome:
                return self._fly(sealed, owner, call)
            if time.monotonic() > deadline:
                log.warning("Gave up waiting for another process's refresh")
                return call()
            self._sleep(pause)
            pause = min(pause * 1.5, _MAX_POLL)

    def forget(self, key: str) -> None:
        """Delete the flight of ``key``, so nobody is handed its result any more."""
        try:
            self._schema()
            self.database.execute(
                "DELETE FROM refresh_flights WHERE flight_key = ?", (_Sealed(key).row_id,)
            )
        except ServiceUnavailableError as exc:
            log.warning("Could not forget a refresh flight: %s", exc)

    # --- the protocol -----------------------------------------------------------------

    def _claim(self, row_id: str, owner: str) -> bool:
        rows = self.database.execute(
            "INSERT INTO refresh_flights (flight_key, owner, claimed_at) VALUES (?, ?, ?)"
            " ON CONFLICT (flight_key) DO NOTHING RETURNING owner",
            (row_id, owner, self._clock()),
        )
        return bool(rows)

    def _look(self, sealed: _Sealed, owner: str) -> str | bool:
        """The shared result, ``True`` once this caller owns the flight, else ``False``."""
        rows = self.database.execute(
            "SELECT owner, claimed_at, finished_at, result FROM refresh_flights"
            " WHERE flight_key = ?",
            (sealed.row_id,),
        )
        if not rows:
            return self._claim(sealed.row_id, owner)
        current, claimed_at, finished_at, result = rows[0]
        now = self._clock()
        if finished_at is not None:
            if now - finished_at <= self.grace and result is not None:
                shared = sealed.unseal(result)
                if shared is not None:
                    return shared
                log.warning("Ignoring a refresh flight whose result does not unseal")
            return self._take_over(sealed.row_id, current, owner)
        if now - claimed_at > self.wait:
            log.warning("Taking over a refresh claimed %.0f s ago", now - claimed_at)
            return self._take_over(sealed.row_id, current, owner)
        return False

    def _take_over(self, row_id: str, previous: str, owner: str) -> bool:
        rows = self.database.execute(
            "UPDATE refresh_flights SET owner = ?, claimed_at = ?, finished_at = NULL,"
            " result = NULL WHERE flight_key = ? AND owner = ? RETURNING owner",
            (owner, self._clock(), row_id, previous),
        )
        return bool(rows)

    def _fly(self, sealed: _Sealed, owner: str, call: Callable[[], str]) -> str:
        try:
            value = call()
        except BaseException:
            self._release(sealed.row_id, owner)
            raise
        try:
            self.database.execute(
                "UPDATE refresh_flights SET result = ?, finished_at = ?"
                " WHERE flight_key = ? AND owner = ?",
                (sealed.seal(value), self._clock(), sealed.row_id, owner),
            )
        except ServiceUnavailableError as exc:
            log.warning("Could not share a refresh result: %s", exc)
        return value

    def _release(self, row_id: str, owner: str) -> None:
        try:
            self.database.execute(
                "DELETE FROM refresh_flights WHERE flight_key = ? AND owner = ?", (row_id, owner)
            )
        except ServiceUnavailableError as exc:
            log.warning("Could not release a failed refresh flight: %s", exc)

    # --- housekeeping -----------------------------------------------------------------

    def _schema(self) -> None:
        if not self._ready:
            self.database.create_tables(
                "CREATE TABLE IF NOT EXISTS refresh_flights ("
                " flight_key VARCHAR(64) PRIMARY KEY, owner VARCHAR(32) NOT NULL,"
                " claimed_at DOUBLE PRECISION NOT NULL, finished_at DOUBLE PRECISION,"
                " result TEXT)"
            )
            self._ready = True

    def _prune(self) -> None:
        """Delete rows nobody can use any more, at most once per interval (this process's)."""
        now = self._clock()
        if now - self._last_prune < _PRUNE_INTERVAL:
            return
        self._last_prune = now
        try:
            self.database.execute(
                "DELETE FROM refresh_flights WHERE claimed_at < ?",
                # Older rows are of use to nobody: past the grace, and past any wait.
                (now - 2 * (self.grace + self.wait),),
            )
        except ServiceUnavailableError as exc:
            log.warning("Failed to remove old refresh flights: %s", exc)
