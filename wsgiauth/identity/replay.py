"""One-time values seen, until they expire: what refuses a replayed SAML assertion.

:class:`SqlReplayStore` keeps them in the ``replay_seen`` table of the configured
:class:`~wsgiauth.identity.database.Database` (SQLite or PostgreSQL), so a value
used at one worker is refused at every other; the insert itself decides, so two
workers racing with one value cannot both win. :class:`MemoryReplayStore` is for
one process (no database configured, ``auth.keyStore.provider: memory``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from ..config import Config
from .database import Database
from .database_config import database_from_config
from .key_stores import SqlKeyStore
from .types import KeyStore

__all__ = ["MemoryReplayStore", "SqlReplayStore", "replay_store_from_config"]

#: Expired values are deleted at most this often (seconds), on a write.
PRUNE_INTERVAL = 60.0
#: Keys come from others (an IdP's assertion ID); longer ones are refused (ValueError).
MAX_KEY_LENGTH = 256


class MemoryReplayStore:
    """Values seen by this process."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()
        self._clock = clock

    def first_use(self, key: str, expires_at: float) -> bool:
        """Record ``key`` until ``expires_at``; ``False`` if it is already recorded."""
        now = self._clock()
        with self._lock:
            self._seen = {k: exp for k, exp in self._seen.items() if exp > now}
            if key in self._seen:
                return False
            self._seen[key] = expires_at
            return True


class SqlReplayStore:
    """Values seen by any process on the same database."""

    def __init__(self, database: Database, *, clock: Callable[[], float] = time.time) -> None:
        self.database = database
        self._clock = clock
        self._lock = threading.Lock()
        self._next_prune = 0.0
        ts = database.timestamp_param()
        self._insert = (
            f"INSERT INTO replay_seen (value, expires_at) VALUES (?, {ts})"  # noqa: S608
            " ON CONFLICT (value) DO NOTHING RETURNING value"
        )
        self._prune = f"DELETE FROM replay_seen WHERE expires_at < {ts}"  # noqa: S608
        self._prune_one = f"DELETE FROM replay_seen WHERE value = ? AND expires_at < {ts}"  # noqa: S608
        self._created = False

    def _schema(self) -> None:
        """Created on first use: apps without a provider that needs it get no table."""
        if not self._created:
            self.database.create_tables(
                "CREATE TABLE IF NOT EXISTS replay_seen (value VARCHAR(256) PRIMARY KEY,"
                f" expires_at {self.database.timestamp_type} NOT NULL)"
            )
            self._created = True

    def first_use(self, key: str, expires_at: float) -> bool:
        """Record ``key`` until ``expires_at``; ``False`` if any process recorded it."""
        if len(key) > MAX_KEY_LENGTH:
            raise ValueError("replay key too long")
        self._schema()
        now = self._clock()
        with self._lock:
            prune = now >= self._next_prune
            if prune:
                self._next_prune = now + PRUNE_INTERVAL
        if prune:
            self.database.execute(self._prune, (now,))
        else:
            # An expired row of the same value must not refuse its (legitimate) reuse.
            self.database.execute(self._prune_one, (key, now))
        return bool(self.database.execute(self._insert, (key, expires_at)))


def replay_store_from_config(
    config: Config, *, key_store: KeyStore, base_dir: Path | None = None
) -> MemoryReplayStore | SqlReplayStore:
    """The key store's database if it has one, else ``backend.database`` if configured,
    else this process's memory: where user info is kept too.
    """
    if isinstance(key_store, SqlKeyStore):
        return SqlReplayStore(key_store.database)
    if config.has("backend.database"):
        return SqlReplayStore(database_from_config(config, base_dir=base_dir))
    return MemoryReplayStore()
