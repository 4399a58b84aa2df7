"""Where the public halves of signing keys are published (Backstage ``KeyStores``, spec §9.2).

Each process signs with its own private key and publishes the public JWK here,
so that any process (or host) can serve every key a verifier may need:

- :class:`MemoryKeyStore`: one process only (tests, a single-process dev server);
- :class:`SqlKeyStore`: the table ``signing_keys (kid, key, created_at)`` in SQLite
  (the default) or PostgreSQL, shared by every process that uses the same database.
  On PostgreSQL the table has Backstage's own column types, so wsgiauth and a
  Backstage auth backend pointed at the same ``backstage_plugin_auth`` database
  publish into one key set. The rotation mark of ``wsgiauth keys rotate`` lives
  beside it, in a one-row table of wsgiauth's own (:data:`ROTATION_TABLE`), so
  Backstage's columns stay as they are;
- :class:`StaticKeyStore`: fixed key pairs from PEM files; it never rotates and
  cannot take new keys (used with :class:`~wsgiauth.identity.token_factory.StaticTokenIssuer`).

:func:`key_store_from_config` picks one from ``auth.keyStore.provider``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization

from ..config import Config
from ..errors import ConfigError
from ..server_store import server_store_path
from .database import Database
from .database_config import database_from_config
from .types import KeyStore
from .types import StoredKey

__all__ = [
    "KeyPair",
    "MemoryKeyStore",
    "SqlKeyStore",
    "StaticKeyStore",
    "key_store_from_config",
    "public_jwk_of",
]

log = logging.getLogger(__name__)

Clock = Callable[[], float]

#: The one-row table holding the rotation mark (``id = 1``), next to ``signing_keys``.
ROTATION_TABLE = "wsgiauth_key_rotation"


class MemoryKeyStore:
    """Keys kept in this process only: nothing survives a restart or reaches another process."""

    def __init__(self, *, clock: Clock = time.time) -> None:
        self._clock = clock
        self._keys: dict[str, StoredKey] = {}
        self._rotation: float | None = None
        self._lock = threading.Lock()

    def add_key(self, key: dict[str, Any]) -> None:
        """Publish a public JWK, stamped with the current time."""
        with self._lock:
            self._keys[key["kid"]] = StoredKey(key=dict(key), created_at=self._clock())

    def list_keys(self) -> list[StoredKey]:
        """Every published key, oldest first."""
        with self._lock:
            return sorted(self._keys.values(), key=lambda stored: stored.created_at)

    def remove_keys(self, kids: Sequence[str]) -> None:
        """Forget the given keys."""
        with self._lock:
            for kid in kids:
                self._keys.pop(kid, None)

    def request_rotation(self, at: float) -> None:
        """Set the rotation mark (this process's factories only)."""
        self._rotation = at

    def rotation_requested_at(self) -> float | None:
        """The last rotation mark, None if none was set."""
        return self._rotation


class SqlKeyStore:
    """Keys in the ``signing_keys`` table of a SQLite or PostgreSQL :class:`Database`.

    The table is created on first use (``IF NOT EXISTS``, so processes may race), with
    :data:`ROTATION_TABLE` for the rotation mark. Rows are timestamped by this
    process's clock.
    """

    def __init__(self, database: Database, *, clock: Clock = time.time) -> None:
        #: Shared with the user-info store when both live in one database.
        self.database = database
        self._clock = clock
        self._ready = False
        # Only the engine's fixed SQL fragments are interpolated; values go in placeholders.
        stamp, created = database.timestamp_param(), database.timestamp_column("created_at")
        self._insert = f"INSERT INTO signing_keys (kid, key, created_at) VALUES (?, ?, {stamp}) ON CONFLICT (kid) DO NOTHING"  # noqa: S608, E501
        self._select = f"SELECT key, {created} FROM signing_keys ORDER BY created_at, kid"  # noqa: S608
        self._mark = (
            f"INSERT INTO {ROTATION_TABLE} (id, requested_at) VALUES (1, {stamp})"  # noqa: S608
            " ON CONFLICT (id) DO UPDATE SET requested_at = excluded.requested_at"
        )
        requested = database.timestamp_column("requested_at")
        self._read_mark = f"SELECT {requested} FROM {ROTATION_TABLE} WHERE id = 1"  # noqa: S608

    def _schema(self) -> None:
        if not self._ready:
            self.database.create_tables(
                "CREATE TABLE IF NOT EXISTS signing_keys ("
                " kid VARCHAR(255) PRIMARY KEY, key TEXT NOT NULL,"
                f" created_at {self.database.timestamp_type} NOT NULL)",
                f"CREATE TABLE IF NOT EXISTS {ROTATION_TABLE} ("
                f" id INTEGER PRIMARY KEY, requested_at {self.database.timestamp_type} NOT NULL)",
            )
            self._ready = True

    def add_key(self, key: dict[str, Any]) -> None:
        """Insert the public JWK (idempotent on ``kid``); 503 if the database is down."""
        self._schema()
        body = json.dumps(key, separators=(",", ":"))
        self.database.execute(self._insert, (key["kid"], body, self._clock()))

    def list_keys(self) -> list[StoredKey]:
        """Every published key, oldest first; rows that do not parse are skipped."""
        self._schema()
        keys = []
        for body, created_at in self.database.execute(self._select):
            try:
                jwk = json.loads(body)
            except ValueError:
                log.warning("Skipping a signing_keys row whose key is not JSON")
                continue
            if isinstance(jwk, dict) and isinstance(jwk.get("kid"), str):
                keys.append(StoredKey(key=jwk, created_at=float(created_at)))
        return keys

    def remove_keys(self, kids: Sequence[str]) -> None:
        """Delete the rows of the given key ids."""
        if not kids:
            return
        self._schema()
        marks = ", ".join("?" for _ in kids)
        sql = f"DELETE FROM signing_keys WHERE kid IN ({marks})"  # noqa: S608 - placeholders only
        self.database.execute(sql, list(kids))

    def request_rotation(self, at: float) -> None:
        """Set the rotation mark that every process sharing the database reads."""
        self._schema()
        self.database.execute(self._mark, (at,))

    def rotation_requested_at(self) -> float | None:
        """The rotation mark, None if none was ever set; 503 if the database is down."""
        self._schema()
        rows = self.database.execute(self._read_mark)
        return float(rows[0][0]) if rows else None


@dataclass(frozen=True, slots=True)
class KeyPair:
    """A static signing key: the private key object and its public JWK."""

    #: A ``cryptography`` private key object.
    private_key: Any
    #: The public JWK with ``kid``, ``alg`` and ``use: sig``.
    public_jwk: dict[str, Any]


class StaticKeyStore:
    """Fixed key pairs from PEM files (``auth.keyStore.static.keys``); the first one signs.

    Use it for deployments that must not depend on a shared database: every
    process loads the same files. Generate a pair with::

        openssl ecparam -name prime256v1 -genkey | openssl pkcs8 -topk8 -nocrypt -out private.pem
        openssl ec -in private.pem -pubout -out public.pem
    """

    def __init__(self, key_pairs: Sequence[KeyPair], *, clock: Clock = time.time) -> None:
        if not key_pairs:
            raise ConfigError("at least one key pair is needed", path="auth.keyStore.static.keys")
        self.key_pairs = tuple(key_pairs)
        created_at = clock()
        self._stored = [StoredKey(key=pair.public_jwk, created_at=created_at) for pair in key_pairs]

    @classmethod
    def from_config(cls, config: Config, *, base_dir: Path | None = None) -> StaticKeyStore:
        """Load ``auth.keyStore.static.keys[] {publicKeyFile, privateKeyFile, keyId, algorithm}``.

        Files are SPKI (public) and PKCS#8 (private) PEM; relative paths are resolved
        against ``base_dir``, by default the folder of the config file that names them.
        A pair that does not match is a :class:`ConfigError`.

        :param config: the root config.
        """
        base_dir = base_dir or config.source_dir("auth.keyStore.static")
        pairs = []
        for entry in config.get_config_list("auth.keyStore.static.keys"):
            algorithm = entry.get_optional_string("algorithm") or "ES256"
            try:
                jwt_algorithm = jwt.get_algorithm_by_name(algorithm)
            except NotImplementedError:
                raise entry.error("algorithm", f"unsupported algorithm '{algorithm}'") from None
            if algorithm.startswith("HS") or algorithm == "none":
                raise entry.error("algorithm", "must be an asymmetric algorithm")
            public_pem = _read(entry, "publicKeyFile", base_dir)
            private_pem = _read(entry, "privateKeyFile", base_dir)
            try:
                public_key = serialization.load_pem_public_key(public_pem)
                private_key = serialization.load_pem_private_key(private_pem, password=None)
                jwt_algorithm.prepare_key(private_key)  # the key type must fit the algorithm
                public_jwk = public_jwk_of(jwt_algorithm, public_key)
                derived = public_jwk_of(jwt_algorithm, private_key.public_key())
            except (ValueError, TypeError, AttributeError, jwt.InvalidKeyError) as exc:
                raise entry.error("privateKeyFile", f"not a valid {algorithm} key pair") from exc
            if public_jwk != derived:
                raise entry.error("publicKeyFile", "does not match privateKeyFile")
            key_id = entry.get_string("keyId")
            jwk = {**public_jwk, "kid": key_id, "alg": algorithm, "use": "sig"}
            pairs.append(KeyPair(private_key=private_key, public_jwk=jwk))
        if not pairs:
            raise config.error("auth.keyStore.static.keys", "at least one key pair is needed")
        return cls(pairs)

    def add_key(self, key: dict[str, Any]) -> None:
        """Static keys are fixed: always fails."""
        raise ConfigError("Cannot add keys to the static key store", path="auth.keyStore")

    def list_keys(self) -> list[StoredKey]:
        """The configured public keys, in config order."""
        return list(self._stored)

    def remove_keys(self, kids: Sequence[str]) -> None:
        """Static keys never expire: does nothing."""


def public_jwk_of(algorithm: Any, public_key: Any) -> dict[str, Any]:
    """A public key as jose's ``exportJWK`` gives it (PyJWT adds ``key_ops`` for RSA; drop it)."""
    jwk: dict[str, Any] = algorithm.to_jwk(public_key, as_dict=True)
    jwk.pop("key_ops", None)
    return jwk


def _read(entry: Config, key: str, base_dir: Path | None) -> bytes:
    path = Path(entry.get_string(key)).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    try:
        return path.read_bytes()
    except OSError as exc:
        raise entry.error(key, f"cannot read {path}: {exc.strerror}") from exc


def key_store_from_config(config: Config, *, base_dir: Path | None = None) -> KeyStore:
    """The key store named by ``auth.keyStore.provider`` (Backstage ``KeyStores.fromConfig``).

    ``database`` (the default; ``postgres``, its old name, is accepted) uses
    ``backend.database`` (see :func:`~wsgiauth.identity.database_config.database_from_config`),
    ``memory`` keeps keys in this process (in the server's store when
    ``WSGIAUTH_SERVER_STORE`` names one, so that every worker sees every key: see
    :mod:`wsgiauth.server_store`), ``static`` loads PEM files.
    ``firestore`` is Backstage's but not supported here.

    :param config: the root config.
    """
    provider = config.get_optional_string("auth.keyStore.provider") or "database"
    if provider in ("database", "postgres"):
        return SqlKeyStore(database_from_config(config, base_dir=base_dir))
    if provider == "memory":
        store = server_store_path()
        return MemoryKeyStore() if store is None else SqlKeyStore(Database.sqlite(store))
    if provider == "static":
        return StaticKeyStore.from_config(config, base_dir=base_dir)
    if provider == "firestore":
        raise config.error("auth.keyStore.provider", "the firestore key store is not supported")
    raise config.error(
        "auth.keyStore.provider",
        f"unknown key store '{provider}' (expected database, memory or static)",
    )
