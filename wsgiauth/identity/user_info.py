"""The claims of each issued identity token, for ``/v1/userinfo`` (Backstage ``UserInfoDatabase``).

Every time a token is issued its claims (``sub``, ``ent``, ``exp`` and any extra
claims) are saved under the user's entity ref, so that a service holding only a
limited token, or a token issued without ``ent`` (``omitIdentityTokenOwnershipClaim``),
can still learn the user's ownership refs. The SQL table is Backstage's
``user_info (user_entity_ref, user_info, exp)``, with the JSON ``{"claims": ...}``.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from ..config import Config
from .database import Database
from .database import database_from_config
from .key_stores import SqlKeyStore
from .types import KeyStore
from .types import UserInfoStore

__all__ = ["MemoryUserInfoStore", "SqlUserInfoStore", "user_info_store_from_config"]


class MemoryUserInfoStore:
    """User info kept in this process (one entry per user, replaced on each issue)."""

    def __init__(self) -> None:
        self._claims: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def save_user_info(self, sub: str, claims: dict[str, Any]) -> None:
        """Remember the claims of the latest token issued to ``sub``."""
        with self._lock:
            self._claims[sub] = dict(claims)

    def get_user_info(self, sub: str) -> dict[str, Any] | None:
        """The claims saved for ``sub``, or None."""
        with self._lock:
            claims = self._claims.get(sub)
        return None if claims is None else dict(claims)


class SqlUserInfoStore:
    """User info in the ``user_info`` table of a SQLite or PostgreSQL :class:`Database`."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self._ready = False
        exp = database.timestamp_param()
        self._upsert = (
            "INSERT INTO user_info (user_entity_ref, user_info, exp)"  # noqa: S608 - fixed fragment
            f" VALUES (?, ?, {exp}) ON CONFLICT (user_entity_ref)"
            " DO UPDATE SET user_info = excluded.user_info, exp = excluded.exp"
        )

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
        body = json.dumps({"claims": claims}, separators=(",", ":"))
        exp = claims.get("exp")
        self.database.execute(self._upsert, (sub, body, exp if isinstance(exp, int) else 0))

    def get_user_info(self, sub: str) -> dict[str, Any] | None:
        """The claims saved for ``sub``, or None."""
        self._schema()
        rows = self.database.execute(
            "SELECT user_info FROM user_info WHERE user_entity_ref = ?", (sub,)
        )
        if not rows:
            return None
        claims = json.loads(rows[0][0]).get("claims")
        return claims if isinstance(claims, dict) else None


def user_info_store_from_config(
    config: Config, *, key_store: KeyStore | None = None, base_dir: Path | None = None
) -> UserInfoStore:
    """Where to keep user info: the key store's database if it has one, else
    ``backend.database`` if configured, else this process's memory.

    :param config: the root config.
    """
    if isinstance(key_store, SqlKeyStore):
        return SqlUserInfoStore(key_store.database)
    if config.has("backend.database"):
        return SqlUserInfoStore(database_from_config(config, base_dir=base_dir))
    return MemoryUserInfoStore()
