"""One SQL connection handler for the two engines wsgiauth stores keys and user info in.

SQLite (the stdlib ``sqlite3``) is the embedded default; PostgreSQL (psycopg 3,
the ``wsgiauth[postgres]`` extra, imported only when used) is the store that
several processes or hosts share. :class:`Database` hides what differs between
them from the stores that use it: placeholders (stores write ``?``), timestamp
columns (epoch seconds in SQLite, ``timestamptz`` in PostgreSQL as Backstage's
own tables have them), and driver errors, which become
:class:`~wsgiauth.errors.ServiceUnavailableError` so that a database that is
down answers 503 instead of a stack trace.

Connections are per thread (WSGI servers run threads; neither driver lets two
threads share a connection), opened on first use, re-opened after the server
drops them, and never carried across ``fork()`` (gunicorn ``--preload``).

:func:`database_from_config` reads Backstage's ``backend.database`` block.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Mapping
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from typing import Literal

from ..config import Config
from ..errors import ConfigError
from ..errors import ServiceUnavailableError

__all__ = ["DEFAULT_PG_DATABASE", "Database", "database_from_config", "default_data_dir"]

log = logging.getLogger(__name__)

#: Backstage gives each plugin its own PostgreSQL database named ``backstage_plugin_<id>``;
#: the auth plugin's is the default here, so wsgiauth can share Backstage's key table.
DEFAULT_PG_DATABASE = "backstage_plugin_auth"
#: File name of the default SQLite database, in :func:`default_data_dir`.
DEFAULT_SQLITE_FILE = "wsgiauth.sqlite3"
#: File name used with Backstage's ``connection: {directory: ...}`` form (``<pluginId>.sqlite``).
DIRECTORY_SQLITE_FILE = "auth.sqlite"
_SQLITE_CLIENTS = ("better-sqlite3", "sqlite3")
_PG_CLIENTS = ("pg",)
_UNAVAILABLE = "The database is unavailable"

Dialect = Literal["sqlite", "postgres"]


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


class Database:
    """A SQLite file or a PostgreSQL database, with per-thread connections.

    Build one with :meth:`sqlite` or :meth:`postgres` (or :func:`database_from_config`)
    and share it between the key store and the user-info store.
    """

    def __init__(self, dialect: Dialect, *, target: str, params: Mapping[str, Any]) -> None:
        self.dialect: Dialect = dialect
        #: The file or ``host:port/dbname`` (no password), for logs.
        self.description = target
        self._params = dict(params)
        self._memory = dialect == "sqlite" and params["database"] == ":memory:"
        self._lock = threading.Lock()
        self._local = threading.local()
        self._connections: list[Any] = []
        self._abandoned: list[Any] = []
        self._pid = os.getpid()

    @classmethod
    def sqlite(cls, filename: str | os.PathLike[str], *, busy_timeout: float = 5.0) -> Database:
        """A SQLite database file (``":memory:"`` for a private in-memory one).

        :param busy_timeout: seconds to wait for another process's write lock.
        """
        name = os.fspath(filename)
        return cls("sqlite", target=name, params={"database": name, "timeout": busy_timeout})

    @classmethod
    def postgres(
        cls,
        conninfo: str = "",
        *,
        connect_timeout: float = 3.0,
        statement_timeout: float = 5.0,
        **params: Any,
    ) -> Database:
        """A PostgreSQL database from a libpq URL/conninfo and/or keyword parameters.

        Without a database name, :data:`DEFAULT_PG_DATABASE` is used; it is created on
        first use if missing (as Backstage does), when the role may create databases.
        """
        conninfo_to_dict, make_conninfo = _conninfo_helpers()
        merged = conninfo_to_dict(make_conninfo(conninfo, **params))
        merged.setdefault("dbname", DEFAULT_PG_DATABASE)
        merged["connect_timeout"] = max(1, round(connect_timeout))
        if statement_timeout:
            options = f"-c statement_timeout={round(statement_timeout * 1000)}"
            merged["options"] = f"{merged.get('options', '')} {options}".strip()
        target = f"{merged.get('host', 'localhost')}:{merged.get('port', 5432)}/{merged['dbname']}"
        return cls("postgres", target=target, params={"conninfo": make_conninfo(**merged)})

    def __repr__(self) -> str:
        return f"<Database {self.dialect} {self.description}>"

    # --- SQL fragments that differ between the engines --------------------------------

    @property
    def timestamp_type(self) -> str:
        """Column type of a point in time (``timestamptz`` on PostgreSQL, as Backstage's)."""
        return "TIMESTAMPTZ" if self.dialect == "postgres" else "DOUBLE PRECISION"

    def timestamp_param(self) -> str:
        """A placeholder that takes epoch seconds and stores a point in time."""
        return "to_timestamp(?)" if self.dialect == "postgres" else "?"

    def timestamp_column(self, column: str) -> str:
        """An expression reading ``column`` back as epoch seconds."""
        return f"EXTRACT(EPOCH FROM {column})" if self.dialect == "postgres" else column

    # --- running statements -----------------------------------------------------------

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement (``?`` placeholders) in autocommit mode; return its rows.

        A connection that the server dropped while idle is re-opened and the
        statement retried once; other connection failures raise
        :class:`ServiceUnavailableError` from the driver's error.
        """
        if self.dialect == "postgres":
            sql = sql.replace("?", "%s")
        for attempt in (1, 2):
            conn, fresh = self._connection()
            try:
                with self._guard():
                    cursor = conn.execute(sql, params)
                    return list(cursor.fetchall()) if cursor.description else []
            except self._unavailable_errors() as exc:
                if self.dialect == "postgres":
                    self._discard(conn)
                    if attempt == 1 and not fresh:
                        log.info("Reconnecting to %s after: %s", self.description, exc)
                        continue
                log.warning("Database %s unavailable: %s", self.description, exc)
                raise ServiceUnavailableError(_UNAVAILABLE) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def create_tables(self, *statements: str) -> None:
        """Run ``CREATE TABLE IF NOT EXISTS`` statements, safe when processes race.

        PostgreSQL can still fail two concurrent ``IF NOT EXISTS`` creations on its
        type catalog (a unique violation); the loser retries once and then sees the table.
        """
        for statement in statements:
            try:
                self.execute(statement)
            except Exception as exc:
                if not self._is_duplicate(exc):
                    raise
                self.execute(statement)

    def close(self) -> None:
        """Close every connection this object opened (in any thread)."""
        with self._lock:
            connections, self._connections = self._connections, []
            self._local = threading.local()
        for conn in connections:
            with contextlib.suppress(Exception):
                conn.close()

    # --- connections ------------------------------------------------------------------

    def _guard(self) -> contextlib.AbstractContextManager[Any]:
        # A private ":memory:" database lives in one connection, so threads take turns.
        return self._lock if self._memory else contextlib.nullcontext()

    def _connection(self) -> tuple[Any, bool]:
        if self._pid != os.getpid():
            self._after_fork()
        conn = getattr(self._local, "conn", None)
        if conn is not None and not getattr(conn, "closed", False):
            return conn, False
        if self._memory:
            with self._lock:
                if not self._connections:
                    self._connections.append(self._open_sqlite())
                conn = self._connections[0]
        else:
            conn = self._open_sqlite() if self.dialect == "sqlite" else self._open_postgres()
            with self._lock:
                self._connections.append(conn)
        self._local.conn = conn
        return conn, True

    def _after_fork(self) -> None:
        # The parent's connections share sockets/files with it: keep them referenced (so no
        # finaliser closes them from here) but never use them.
        with self._lock:
            self._abandoned.extend(self._connections)
            self._connections = []
            self._local = threading.local()
            self._pid = os.getpid()

    def _discard(self, conn: Any) -> None:
        with self._lock:
            if conn in self._connections:
                self._connections.remove(conn)
        if getattr(self._local, "conn", None) is conn:
            self._local.conn = None
        with contextlib.suppress(Exception):
            conn.close()

    def _open_sqlite(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                self._params["database"],
                timeout=self._params["timeout"],
                isolation_level=None,
                check_same_thread=False,  # only so close() may run in another thread
            )
            if not self._memory:
                self._use_wal(conn)
        except sqlite3.Error as exc:
            log.warning("Cannot open SQLite database %s: %s", self.description, exc)
            raise ServiceUnavailableError(_UNAVAILABLE) from exc
        return conn

    def _use_wal(self, conn: sqlite3.Connection) -> None:
        """Switch the file to WAL, so readers (JWKS) go on while another process writes.

        The mode is stored in the file, so only its first user switches. The switch
        needs an exclusive lock and SQLite does not apply the busy timeout to it: when
        processes open a new file at once, the losers retry until the timeout.
        """
        deadline = time.monotonic() + self._params["timeout"]
        while True:
            try:
                if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                    conn.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() >= deadline:
                    raise
                time.sleep(0.01)

    def _open_postgres(self) -> Any:
        import psycopg

        try:
            try:
                return psycopg.connect(self._params["conninfo"], autocommit=True)
            except psycopg.OperationalError as exc:
                # libpq gives no SQLSTATE for a failed connection: match the message, and
                # let _create_pg_database check the catalog before creating anything.
                if "does not exist" not in str(exc):
                    raise
                self._create_pg_database()
                return psycopg.connect(self._params["conninfo"], autocommit=True)
        except psycopg.Error as exc:
            log.warning("Cannot connect to PostgreSQL %s: %s", self.description, exc)
            raise ServiceUnavailableError(_UNAVAILABLE) from exc

    def _create_pg_database(self) -> None:
        import psycopg
        from psycopg import errors
        from psycopg import sql
        from psycopg.conninfo import conninfo_to_dict
        from psycopg.conninfo import make_conninfo

        params = conninfo_to_dict(self._params["conninfo"])
        dbname = str(params["dbname"])
        admin = make_conninfo("", **{**params, "dbname": "postgres"})
        with (
            psycopg.connect(admin, autocommit=True) as conn,
            contextlib.suppress(errors.DuplicateDatabase, errors.UniqueViolation),
        ):
            found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,))
            if found.fetchone() is None:
                log.info("Creating PostgreSQL database %s", dbname)
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))

    def _unavailable_errors(self) -> tuple[type[BaseException], ...]:
        if self.dialect == "sqlite":
            return (sqlite3.OperationalError,)
        import psycopg

        return (psycopg.OperationalError, psycopg.InterfaceError)

    def _is_duplicate(self, exc: Exception) -> bool:
        if self.dialect != "postgres":
            return False
        from psycopg import errors

        return isinstance(
            exc, errors.UniqueViolation | errors.DuplicateTable | errors.DuplicateObject
        )


def _conninfo_helpers() -> tuple[Any, Any]:
    """psycopg's conninfo parser and builder, or a ConfigError naming the missing extra."""
    try:
        from psycopg.conninfo import conninfo_to_dict
        from psycopg.conninfo import make_conninfo
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise ConfigError(
            "PostgreSQL needs psycopg 3: pip install 'wsgiauth[postgres]'",
            path="backend.database.client",
        ) from exc
    return conninfo_to_dict, make_conninfo


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
        return Database.sqlite(_sqlite_path(block, connection, base_dir))
    if client in _PG_CLIENTS:
        prefix = block.get_optional_string("prefix") or "backstage_plugin_"
        return _postgres(block, connection, f"{prefix}auth")
    raise block.error("client", f"unsupported client '{client}' (better-sqlite3, sqlite3 or pg)")


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
        conninfo_to_dict, _ = _conninfo_helpers()
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
