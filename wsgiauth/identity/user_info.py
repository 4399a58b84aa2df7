"""The claims of each issued identity token, for ``/v1/userinfo`` (Backstage ``UserInfoDatabase``).

Every time a token is issued its claims (``sub``, ``ent``, ``exp`` and any extra
claims) are saved under the user's entity ref, so that a service holding only a
limited token, or a token issued without ``ent`` (``omitIdentityTokenOwnershipClaim``),
can still learn the user's ownership refs. The SQL table is Backstage's
``user_info (user_entity_ref, user_info, exp)``, with the JSON ``{"claims": ...}``.

Each user's entry is replaced on every issue, and its ``exp`` is that of the
user's latest token. Entries whose ``exp`` passed more than
:data:`EXPIRED_AFTER_SECONDS` ago are deleted on a write, at most once per
:data:`PRUNE_INTERVAL` per store: no token that can still be verified needs
them, and the claims of users who stopped signing in should not stay for ever.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..config import Config
from ..server_store import server_store_path
from .database import Database
from .database_config import database_from_config
from .key_stores import SqlKeyStore
from .token_factory import TOKEN_EXPIRATION_MAX
from .types import KeyStore
from .types import UserInfoStore

__all__ = ["MemoryUserInfoStore", "SqlUserInfoStore", "user_info_store_from_config"]

log = logging.getLogger(__name__)

#: An entry is expired this long after its ``exp``: the longest token lifetime.
#: The entry holds the latest token's ``exp``, so past it no token of the user
#: verifies, unless the lifetime was shortened since an older token was issued;
#: a lifetime's margin covers that and the verifiers' clock leeway.
EXPIRED_AFTER_SECONDS = TOKEN_EXPIRATION_MAX
#: Expired entries are deleted at most this often (seconds), on a write.
PRUNE_INTERVAL = 3600.0


def _exp(claims: dict[str, Any]) -> int:
    """The entry's ``exp``: the claim, or 0 (expired) when it is not an integer."""
    exp = claims.get("exp")
    return exp if isinstance(exp, int) and not isinstance(exp, bool) else 0


class MemoryUserInfoStore:
    """User info kept in this process (one entry per user, replaced on each issue)."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._claims: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._clock = clock
        self._last_prune = -math.inf

    def save_user_info(self, sub: str, claims: dict[str, Any]) -> None:
        """Remember the claims of the latest token issued to ``sub``."""
        now = self._clock()
        with self._lock:
            if now - self._last_prune >= PRUNE_INTERVAL:
                self._last_prune = now
                cutoff = now - EXPIRED_AFTER_SECONDS
                for ref in [ref for ref, old in self._claims.items() if _exp(old) < cutoff]:
                    del self._claims[ref]
            self._claims[sub] = dict(claims)

    def get_user_info(self, sub: str) -> dict[str, Any] | None:
        """The claims saved for ``sub``, or None."""
        with self._lock:
            claims = self._claims.get(sub)
        return None if claims is None else dict(claims)


class SqlUserInfoStore:
    """User info in the ``user_info`` table of a SQLite or PostgreSQL :class:`Database`."""

    def __init__(self, database: Database, *, clock: Callable[[], float] = time.time) -> None:
        self.database = database
        self._clock = clock
        self._ready = False
        self._last_prune = -math.inf
        exp = database.timestamp_param()
        self._upsert = (
            "INSERT INTO user_info (user_entity_ref, user_info, exp)"  # noqa: S608 - fixed fragment
            f" VALUES (?, ?, {exp}) ON CONFLICT (user_entity_ref)"
            " DO UPDATE SET user_info = excluded.user_info, exp = excluded.exp"
        )
        self._prune = f"DELETE FROM user_info WHERE exp < {exp}"  # noqa: S608 - fixed fragment

    def _schema(self) -> None:
        if not self._ready:
            self.database.create_tables(
                "CREATE TABLE IF NOT EXISTS user_info ("
                " user_entity_ref VARCHAR(255) PRIMARY KEY, user_info TEXT NOT NULL,"
                f" exp {self.database.timestamp_type} NOT NULL)"
            )
            self._ready = True

    def save_user_info(self, sub: str, claims: dict[str, Any]) -> None:
        """Insert or replace the row of ``sub``; 503 if the database is down."""
        self._schema()
        self._prune_expired()
        body = json.dumps({"claims": claims}, separators=(",", ":"))
        self.database.execute(self._upsert, (sub, body, _exp(claims)))

    def get_user_info(self, sub: str) -> dict[str, Any] | None:
        """The claims saved for ``sub``, or None (also for a row that does not parse)."""
        self._schema()
        rows = self.database.execute(
            "SELECT user_info FROM user_info WHERE user_entity_ref = ?", (sub,)
        )
        if not rows:
            return None
        try:
            document = json.loads(rows[0][0])
        except (ValueError, RecursionError):
            log.warning("Ignoring a user_info row that is not JSON")
            return None
        claims = document.get("claims") if isinstance(document, dict) else None
        return claims if isinstance(claims, dict) else None

    def _prune_expired(self) -> None:
        """Delete expired rows, at most once per :data:`PRUNE_INTERVAL` (one process's)."""
        now = self._clock()
        if now - self._last_prune < PRUNE_INTERVAL:
            return
        self._last_prune = now
        try:
            self.database.execute(self._prune, (now - EXPIRED_AFTER_SECONDS,))
        except Exception as exc:  # pruning is housekeeping; saving goes on
            log.warning("Failed to remove expired user_info rows: %s", exc)


def user_info_store_from_config(
    config: Config, *, key_store: KeyStore | None = None, base_dir: Path | None = None
) -> UserInfoStore:
    """Where to keep user info: the key store's database if it has one, else
    ``backend.database`` if configured, else the server store that a server's
    main process gave its workers (:mod:`wsgiauth.server_store`), else this
    process's memory.

    :param config: the root config.
    """
    if isinstance(key_store, SqlKeyStore):
        return SqlUserInfoStore(key_store.database)
    if config.has("backend.database"):
        return SqlUserInfoStore(database_from_config(config, base_dir=base_dir))
    store = server_store_path()
    if store is not None:
        return SqlUserInfoStore(Database.sqlite(store))
    return MemoryUserInfoStore()
