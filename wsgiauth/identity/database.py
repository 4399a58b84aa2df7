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

What is PostgreSQL's own (conninfo, creating the database, its error classes)
is in :mod:`wsgiauth.identity.postgres`; which database the config names is
:func:`~wsgiauth.identity.database_config.database_from_config`.
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
from typing import Any
from typing import Literal

from ..errors import ServiceUnavailableError
from . import postgres

__all__ = ["Database"]

log = logging.getLogger(__name__)

_UNAVAILABLE = "The database is unavailable"

Dialect = Literal["sqlite", "postgres"]


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

    @property
    def shared(self) -> bool:
        """Whether other processes can open this database (all but in-memory SQLite)."""
        return not self._memory

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

        Without a database name, :data:`~wsgiauth.identity.postgres.DEFAULT_PG_DATABASE`
        is used; it is created on first use if missing (as Backstage does), when the
        role may create databases.
        """
        full, target = postgres.postgres_conninfo(
            conninfo, connect_timeout=connect_timeout, statement_timeout=statement_timeout, **params
        )
        return cls("postgres", target=target, params={"conninfo": full})

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
        try:
            return postgres.connect(self._params["conninfo"])
        except postgres.driver_error() as exc:  # evaluated only when something was raised
            log.warning("Cannot connect to PostgreSQL %s: %s", self.description, exc)
            raise ServiceUnavailableError(_UNAVAILABLE) from exc

    def _unavailable_errors(self) -> tuple[type[BaseException], ...]:
        if self.dialect == "sqlite":
            return (sqlite3.OperationalError,)
        return postgres.unavailable_errors()

    def _is_duplicate(self, exc: Exception) -> bool:
        return self.dialect == "postgres" and postgres.is_duplicate(exc)
