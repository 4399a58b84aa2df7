"""What is PostgreSQL's own in :class:`~wsgiauth.identity.database.Database`.

The connection string (libpq conninfo, with the timeouts we add), connecting,
creating the database on first use as Backstage does, and telling psycopg's
errors apart. Kept out of :mod:`wsgiauth.identity.database`, which holds what
both engines share (per-thread connections, retries, SQL fragments), so that
module reads as one engine-neutral handler.

PostgreSQL is optional: psycopg 3 comes with the ``wsgiauth[postgres]`` extra
and is imported inside these functions, only when a PostgreSQL database is
configured. This module imports without psycopg installed.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from ..errors import ConfigError

__all__ = [
    "DEFAULT_PG_DATABASE",
    "connect",
    "conninfo_helpers",
    "create_database",
    "driver_error",
    "is_duplicate",
    "postgres_conninfo",
    "unavailable_errors",
]

log = logging.getLogger(__name__)

#: Backstage gives each plugin its own PostgreSQL database named ``backstage_plugin_<id>``;
#: the auth plugin's is the default here, so wsgiauth can share Backstage's key table.
DEFAULT_PG_DATABASE = "backstage_plugin_auth"


def conninfo_helpers() -> tuple[Any, Any]:
    """psycopg's conninfo parser and builder, or a ConfigError naming the missing extra."""
    try:
        from psycopg.conninfo import conninfo_to_dict
        from psycopg.conninfo import make_conninfo
    except ImportError as exc:
        raise ConfigError(
            "PostgreSQL needs psycopg 3: pip install 'wsgiauth[postgres]'",
            path="backend.database.client",
        ) from exc
    return conninfo_to_dict, make_conninfo


def postgres_conninfo(
    conninfo: str = "", *, connect_timeout: float, statement_timeout: float, **params: Any
) -> tuple[str, str]:
    """The conninfo to connect with, and ``host:port/dbname`` (no password) for logs.

    Without a database name, :data:`DEFAULT_PG_DATABASE` is used. The timeouts are
    in seconds: a database that hangs must answer 503, not hold a worker.
    """
    conninfo_to_dict, make_conninfo = conninfo_helpers()
    merged = conninfo_to_dict(make_conninfo(conninfo, **params))
    merged.setdefault("dbname", DEFAULT_PG_DATABASE)
    merged["connect_timeout"] = max(1, round(connect_timeout))
    if statement_timeout:
        options = f"-c statement_timeout={round(statement_timeout * 1000)}"
        merged["options"] = f"{merged.get('options', '')} {options}".strip()
    target = f"{merged.get('host', 'localhost')}:{merged.get('port', 5432)}/{merged['dbname']}"
    return make_conninfo(**merged), target


def connect(conninfo: str) -> Any:
    """An autocommit connection, creating the database first if it does not exist.

    :raises psycopg.Error: the server is unreachable or refuses us.
    """
    import psycopg

    try:
        return psycopg.connect(conninfo, autocommit=True)
    except psycopg.OperationalError as exc:
        # libpq gives no SQLSTATE for a failed connection: match the message, and
        # let create_database check the catalog before creating anything.
        if "does not exist" not in str(exc):
            raise
        create_database(conninfo)
        return psycopg.connect(conninfo, autocommit=True)


def create_database(conninfo: str) -> None:
    """Create the database ``conninfo`` names, through the ``postgres`` maintenance database.

    Safe when processes race: a database another process just created is no error.
    """
    import psycopg
    from psycopg import errors
    from psycopg import sql
    from psycopg.conninfo import conninfo_to_dict
    from psycopg.conninfo import make_conninfo

    params = conninfo_to_dict(conninfo)
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


def driver_error() -> type[Exception]:
    """``psycopg.Error``, the base of every error the driver raises."""
    import psycopg

    return psycopg.Error


def unavailable_errors() -> tuple[type[BaseException], ...]:
    """The errors that mean the server (or our connection to it) is gone: a 503."""
    import psycopg

    return (psycopg.OperationalError, psycopg.InterfaceError)


def is_duplicate(exc: Exception) -> bool:
    """Whether ``exc`` is a lost race of two ``CREATE ... IF NOT EXISTS``."""
    from psycopg import errors

    return isinstance(exc, errors.UniqueViolation | errors.DuplicateTable | errors.DuplicateObject)
