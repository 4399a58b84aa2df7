"""The shared signing keys, seen and handled from outside the serving processes.

What ``wsgiauth keys`` does, without its printing: list the keys in the key store
every process shares, with their age and how long they stay listed; ask every
process to rotate (the mark of :class:`~wsgiauth.identity.types.RotatableKeyStore`,
which each :class:`~wsgiauth.identity.token_factory.TokenFactory` acts on by
itself, see there); delete keys past their listing time. Only a store the serving
processes share can be handled from here: the ``database`` store (a SQLite file or
PostgreSQL). A ``memory`` store lives inside each process and ``static`` keys are
files, so both are refused, naming ``auth.keyStore.provider``.

The store holds public keys only, so nothing here can show private material.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..audit import AuditEvent
from ..audit import AuditSettings
from ..audit import audit
from ..audit import audit_settings_from_config
from ..audit import auditing
from ..config import Config
from .key_stores import key_store_from_config
from .token_factory import KEY_LISTING_FACTOR
from .token_factory import read_token_expiration
from .types import RotatableKeyStore

__all__ = ["KeyAdmin", "KeyInfo", "KeyListing", "shared_key_store"]

_PROVIDER = "auth.keyStore.provider"


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """One published key as an operator sees it."""

    kid: str
    algorithm: str
    #: Epoch seconds, by the clock of the process that published it.
    created_at: float
    #: Epoch seconds after which no process lists it (three token lifetimes).
    listed_until: float
    #: The most recently published key.
    newest: bool


@dataclass(frozen=True, slots=True)
class KeyListing:
    """The keys of the store, oldest first, and the last rotation request."""

    keys: tuple[KeyInfo, ...]
    #: The rotation mark (epoch seconds), None if no rotation was ever requested.
    rotation_requested_at: float | None
    #: When the listing was made (epoch seconds); ages are counted from it.
    now: float


def shared_key_store(config: Config, *, base_dir: Path | None = None) -> RotatableKeyStore:
    """The key store ``config`` names, if the serving processes share it.

    :raises ConfigError: naming ``auth.keyStore.provider`` for a ``memory`` or
        ``static`` store, ``backend.database`` for an in-memory or missing SQLite
        file (no process has published there: probably the wrong config).
    """
    provider = config.get_optional_string(_PROVIDER) or "database"
    if provider == "memory":
        raise config.error(
            _PROVIDER,
            "the memory key store lives inside each serving process, out of reach: "
            "wsgiauth keys works on the database key store (a SQLite file or PostgreSQL)",
        )
    if provider == "static":
        raise config.error(
            _PROVIDER,
            "static keys are the PEM files of auth.keyStore.static.keys and never rotate "
            "by themselves: edit that list (see docs/deployment.md, Secret rotation)",
        )
    store = key_store_from_config(config, base_dir=base_dir)
    database = getattr(store, "database", None)
    if database is not None and database.dialect == "sqlite":
        if database.description == ":memory:":
            raise config.error(
                "backend.database",
                "an in-memory SQLite database lives inside each serving process, out of reach",
            )
        if not Path(database.description).is_file():
            raise config.error(
                "backend.database",
                f"no SQLite database at {database.description}: no process has published a "
                "key there (is this the config the servers use?)",
            )
    if not isinstance(store, RotatableKeyStore):
        raise config.error(_PROVIDER, f"the {provider} key store cannot be handled from here")
    return store


class KeyAdmin:
    """List, rotate and prune the keys of a shared store.

    :param key_duration_seconds: the token lifetime the serving processes use
        (:func:`~wsgiauth.identity.token_factory.read_token_expiration`); a key is
        listed for three of them.
    :param audit_settings: where a rotation request and a prune are audited besides
        the ``wsgiauth.audit`` logger: the servers' hook (``auth.audit.hook``).
    """

    def __init__(
        self,
        store: RotatableKeyStore,
        key_duration_seconds: int,
        *,
        clock: Callable[[], float] = time.time,
        audit_settings: AuditSettings | None = None,
    ) -> None:
        self.store = store
        self.key_duration_seconds = key_duration_seconds
        self._clock = clock
        self._audit_settings = audit_settings or AuditSettings()

    @classmethod
    def from_config(cls, config: Config, *, base_dir: Path | None = None) -> KeyAdmin:
        """The admin of the store ``config`` names, with its ``auth.backstageTokenExpiration``
        and ``auth.audit`` hook."""
        return cls(
            shared_key_store(config, base_dir=base_dir),
            read_token_expiration(config),
            audit_settings=audit_settings_from_config(config),
        )

    def _audit(self, event: AuditEvent, **fields: Any) -> None:
        # An operator's act, not a request: no route and no client, but the hook gets it.
        with auditing(self._audit_settings, {}):
            audit(event, **fields)

    def listing(self) -> KeyListing:
        """Every key in the store (expired ones too, until pruned), oldest first."""
        now = self._clock()
        stored = sorted(self.store.list_keys(), key=lambda s: (s.created_at, s.key["kid"]))
        newest = stored[-1].key["kid"] if stored else None
        keys = tuple(
            KeyInfo(
                kid=s.key["kid"],
                algorithm=str(s.key.get("alg", "?")),
                created_at=s.created_at,
                listed_until=s.created_at + KEY_LISTING_FACTOR * self.key_duration_seconds,
                newest=s.key["kid"] == newest,
            )
            for s in stored
        )
        return KeyListing(keys, self.store.rotation_requested_at(), now)

    def rotate(self) -> float:
        """Ask every process signing with a key made before now to replace it; returns the mark."""
        mark = self._clock()
        self.store.request_rotation(mark)
        self._audit(AuditEvent.KEY_ROTATION_REQUESTED, mark=mark)
        return mark

    def close(self) -> None:
        """Close the store's database connections (the command is done with them)."""
        database = getattr(self.store, "database", None)
        if database is not None:
            database.close()

    def prune(self) -> list[str]:
        """Delete the keys past their listing time; returns their kids."""
        listing = self.listing()
        expired = [key.kid for key in listing.keys if key.listed_until <= listing.now]
        self.store.remove_keys(expired)
        self._audit(AuditEvent.KEYS_PRUNED, kids=expired)
        return expired
