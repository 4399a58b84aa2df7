"""Which database the key store and the user-info store use: Backstage's ``backend.database``.

:func:`database_from_config` reads the block as Backstage does (``client``,
``connection``, ``prefix``, ``plugin.auth`` overrides) and returns a
:class:`~wsgiauth.identity.database.Database`; without the block, an SQLite file
in :func:`default_data_dir`. Kept apart from :mod:`wsgiauth.identity.database`,
which runs statements and knows nothing of config files.

``':memory:'`` is per process. Under a server whose main process shares a store
with its workers (:mod:`wsgiauth.server_store`), it becomes that store's file, so
every worker sees the same keys; :func:`memory_setting` names the key that asks
for memory, and :func:`unshared_memory_error` says why and what to use instead,
for servers that share nothing to refuse it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..config import Config
from ..errors import ConfigError
from ..server_store import SERVER_STORE_ENV
from ..server_store import SINGLE_PROCESS_ENV
from ..server_store import server_store_path
from ..server_store import single_process
from .database import Database
from .postgres import conninfo_helpers

__all__ = ["database_from_config", "default_data_dir", "memory_setting", "unshared_memory_error"]

#: File name of the default SQLite database, in :func:`default_data_dir`.
DEFAULT_SQLITE_FILE = "wsgiauth.sqlite3"
#: File name used with Backstage's ``connection: {directory: ...}`` form (``<pluginId>.sqlite``).
DIRECTORY_SQLITE_FILE = "auth.sqlite"
_SQLITE_CLIENTS = ("better-sqlite3", "sqlite3")
_PG_CLIENTS = ("pg",)


def default_data_dir() -> Path:
    """Where wsgiauth keeps its SQLite file when the config names none (created if missing).

    ``$WSGIAUTH_DATA_DIR``, else ``$XDG_DATA_HOME/wsgiauth``, else ``~/.local/share/wsgiauth``.
    """
    if os.environ.get("WSGIAUTH_DATA_DIR"):
        path = Path(os.environ["WSGIAUTH_DATA_DIR"])
    else:
        xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
        path = Path(xdg) / "wsgiauth"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def _connection_block(database: Config) -> tuple[str | None, Any]:
    """``client`` and ``connection``, with ``plugin.auth`` overriding the top level."""
    client = database.get_optional_string("client")
    connection = database.get("connection")
    plugin = database.get_optional_config("plugin.auth")
    if plugin is not None:
        client = plugin.get_optional_string("client") or client
        override = plugin.get("connection")
        if isinstance(override, Mapping) and isinstance(connection, Mapping):
            connection = {**connection, **override}
        elif override is not None:
            connection = override
    return client, connection


def database_from_config(config: Config, *, base_dir: Path | None = None) -> Database:
    """The database named by ``backend.database`` (Backstage's shape), or the default file.

    - ``client: better-sqlite3`` / ``sqlite3`` with ``connection: ':memory:'``,
      ``{filename: path}`` or ``{directory: dir}`` (the file ``auth.sqlite`` in it);
    - ``client: pg`` with a ``postgresql://`` URL or ``{host, port, user, password,
      database}``; without a database name, ``backstage_plugin_auth`` (or
      ``<prefix>auth`` with ``backend.database.prefix``);
    - absent: the SQLite file ``wsgiauth.sqlite3`` in :func:`default_data_dir`.

    ``':memory:'`` is the server store's file when ``WSGIAUTH_SERVER_STORE`` names
    one (:func:`~wsgiauth.server_store.server_store_path`), else this process's memory.

    Relative paths are resolved against ``base_dir``, by default the folder of the
    config file that sets ``backend.database`` (as catalog locations are).

    :param config: the root config.
    """
    block = config.get_optional_config("backend.database")
    if block is None:
        return Database.sqlite(default_data_dir() / DEFAULT_SQLITE_FILE)
    base_dir = base_dir or config.source_dir("backend.database")
    client, connection = _connection_block(block)
    if client is None:
        raise block.error("client", "missing (better-sqlite3, sqlite3 or pg)")
    if client in _SQLITE_CLIENTS:
        path = _sqlite_path(block, connection, base_dir)
        if path == ":memory:":
            path = str(server_store_path() or path)
        return Database.sqlite(path)
    if client in _PG_CLIENTS:
        prefix = block.get_optional_string("prefix") or "backstage_plugin_"
        return _postgres(block, connection, f"{prefix}auth")
    raise block.error("client", f"unsupported client '{client}' (better-sqlite3, sqlite3 or pg)")


def memory_setting(config: Config) -> str | None:
    """The dotted key that keeps keys or user info in this process's memory, or None.

    ``auth.keyStore.provider: memory``, or a SQLite ``backend.database`` at
    ``':memory:'`` (the user info lives there whatever the key store), named as the
    config sets it (``backend.database.plugin.auth.connection`` when that overrides).

    :param config: the root config.
    """
    if config.get_optional_string("auth.keyStore.provider") == "memory":
        return "auth.keyStore.provider"
    block = config.get_optional_config("backend.database")
    if block is None:
        return None
    client, connection = _connection_block(block)
    if client not in _SQLITE_CLIENTS:
        return None
    if isinstance(connection, Mapping):
        connection = connection.get("filename")
    if connection != ":memory:":
        return None
    override = block.get("plugin.auth.connection")
    if isinstance(override, Mapping):
        override = override.get("filename")
    if override == ":memory:":
        return "backend.database.plugin.auth.connection"
    return "backend.database.connection"


def _sqlite_path(block: Config, connection: Any, base_dir: Path | None) -> str:
    def resolve(value: str) -> Path:
        path = Path(value).expanduser()
        return path if path.is_absolute() or base_dir is None else base_dir / path

    if connection is None:
        return str(default_data_dir() / DEFAULT_SQLITE_FILE)
    if isinstance(connection, str):
        return connection if connection == ":memory:" else str(resolve(connection))
    if isinstance(connection, Mapping):
        if isinstance(connection.get("filename"), str) and connection["filename"]:
            name = connection["filename"]
            return name if name == ":memory:" else str(resolve(name))
        if isinstance(connection.get("directory"), str) and connection["directory"]:
            directory = resolve(connection["directory"])
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            return str(directory / DIRECTORY_SQLITE_FILE)
    raise block.error(
        "connection", "expected ':memory:', {filename: <path>} or {directory: <path>}"
    )


def _postgres(block: Config, connection: Any, default_name: str) -> Database:
    if isinstance(connection, str):
        conninfo_to_dict, _ = conninfo_helpers()
        try:
            has_name = "dbname" in conninfo_to_dict(connection)
        except Exception as exc:
            raise block.error("connection", "not a valid PostgreSQL connection string") from exc
        extra: dict[str, Any] = {} if has_name else {"dbname": default_name}
        return Database.postgres(connection, **extra)
    if isinstance(connection, Mapping):
        keys = {"host": "host", "port": "port", "user": "user", "password": "password"}
        params: dict[str, Any] = {
            ours: str(connection[key]) for key, ours in keys.items() if connection.get(key)
        }
        params["dbname"] = str(connection.get("database") or default_name)
        return Database.postgres(**params)
    raise block.error("connection", "expected a postgresql:// URL or {host, port, user, ...}")


#: What to use instead of memory, by the key that asks for it.
_INSTEAD = {
    "auth.keyStore.provider": "'database' with a SQLite file or PostgreSQL in backend.database",
}
_INSTEAD_OF_DATABASE = "a SQLite file ({filename: <path>}) or PostgreSQL (client: pg)"


def unshared_memory_error(config: Config) -> ConfigError | None:
    """Why ``config`` cannot serve from several worker processes; None when it can.

    Memory is fine when the server's main process made a store for its workers
    (``WSGIAUTH_SERVER_STORE``) or ``WSGIAUTH_SINGLE_PROCESS=1`` says the app runs
    in one process. Otherwise each worker would sign with keys the others never
    see. Both are read from the process environment, as the stores read the first.

    :returns: the error naming the key that asks for memory and what to use instead.
    :raises ConfigError: a ``WSGIAUTH_SERVER_STORE`` that is not private.
    """
    key = memory_setting(config)
    if key is None or single_process() or server_store_path() is not None:
        return None
    instead = _INSTEAD.get(key, _INSTEAD_OF_DATABASE)
    return config.error(
        key,
        "keeps keys in the memory of each worker process, and this server gave its workers "
        f"no shared store ({SERVER_STORE_ENV}), so a token signed by one worker would fail "
        "at the others. Serve with `wsgiauth serve`, or with gunicorn and wsgiauth's hooks "
        "(`from wsgiauth.gunicorn_hooks import on_exit, on_starting` in the gunicorn config, "
        f"as examples/gunicorn.conf.py has; not with --preload); or use {instead}; several "
        f"hosts need PostgreSQL. If the server runs the app in one process only, set "
        f"{SINGLE_PROCESS_ENV}=1",
    )
