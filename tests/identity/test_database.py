"""Database on SQLite: statements, per-thread connections, WAL, faults as 503.

The same class on PostgreSQL (reconnects, database creation, a closed port) runs
against a real server in ``tests/e2e/test_postgres.py``.
"""

from __future__ import annotations

import sqlite3
import threading

import pytest

from wsgiauth.errors import ServiceUnavailableError
from wsgiauth.identity.database import Database

TABLE = "CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY, v DOUBLE PRECISION)"


@pytest.fixture
def databases():
    """Open databases through this list; all are closed after the test."""
    opened: list[Database] = []

    def track(database: Database) -> Database:
        opened.append(database)
        return database

    yield track
    for database in opened:
        database.close()


def test_statements_take_question_marks_and_return_rows(databases):
    database = databases(Database.sqlite(":memory:"))
    database.create_tables(TABLE)
    assert database.execute("INSERT INTO t VALUES (?, ?)", ("a", 1.5)) == []
    assert database.execute("SELECT k, v FROM t WHERE k = ?", ("a",)) == [("a", 1.5)]


def test_sqlite_timestamps_are_epoch_seconds(databases):
    database = databases(Database.sqlite(":memory:"))
    assert database.timestamp_type == "DOUBLE PRECISION"
    assert database.timestamp_param() == "?"
    assert database.timestamp_column("created_at") == "created_at"


def test_postgres_sql_fragments():
    pytest.importorskip("psycopg", reason="the postgres extra (psycopg) is not installed")
    database = Database.postgres("postgresql://u:secret@db.example/auth")
    assert database.dialect == "postgres"
    assert database.timestamp_type == "TIMESTAMPTZ"
    assert database.timestamp_param() == "to_timestamp(?)"
    assert database.timestamp_column("created_at") == "EXTRACT(EPOCH FROM created_at)"
    assert repr(database) == "<Database postgres db.example:5432/auth>"  # no password


def test_sqlite_file_uses_wal(tmp_path, databases):
    database = databases(Database.sqlite(tmp_path / "keys.sqlite3"))
    assert database.execute("PRAGMA journal_mode") == [("wal",)]
    assert repr(database) == f"<Database sqlite {tmp_path / 'keys.sqlite3'}>"


def test_sqlite_concurrent_creation_and_inserts(tmp_path, databases):
    path = tmp_path / "keys.sqlite3"
    barrier = threading.Barrier(8)
    errors = []

    def publish(index):
        database = databases(Database.sqlite(path))
        barrier.wait()
        try:
            database.create_tables(TABLE)
            database.execute("INSERT INTO t VALUES (?, ?)", (f"k{index}", index))
        except Exception as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=publish, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    rows = databases(Database.sqlite(path)).execute("SELECT k FROM t")
    assert {k for (k,) in rows} == {f"k{i}" for i in range(8)}


def test_sqlite_memory_database_is_shared_by_threads(databases):
    database = databases(Database.sqlite(":memory:"))
    database.create_tables(TABLE)
    thread = threading.Thread(
        target=database.execute, args=("INSERT INTO t VALUES ('from-thread', 0)",)
    )
    thread.start()
    thread.join()
    assert database.execute("SELECT k FROM t") == [("from-thread",)]


def test_sqlite_locked_past_the_busy_timeout_is_503(tmp_path, databases):
    path = tmp_path / "keys.sqlite3"
    database = databases(Database.sqlite(path, busy_timeout=0.05))
    database.create_tables(TABLE)
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        with pytest.raises(ServiceUnavailableError) as info:
            database.execute("INSERT INTO t VALUES ('blocked', 0)")
        assert isinstance(info.value.__cause__, sqlite3.OperationalError)
        assert info.value.full_message() == "The database is unavailable"
    finally:
        holder.close()
    database.execute("INSERT INTO t VALUES ('after', 0)")


def test_sqlite_file_that_cannot_be_opened_is_503(tmp_path, databases):
    database = databases(Database.sqlite(tmp_path / "missing-dir" / "keys.sqlite3"))
    with pytest.raises(ServiceUnavailableError) as info:
        database.execute("SELECT 1")
    assert isinstance(info.value.__cause__, sqlite3.OperationalError)


def test_use_after_close_opens_again(tmp_path):
    database = Database.sqlite(tmp_path / "db.sqlite3")
    database.create_tables(TABLE)
    thread = threading.Thread(target=database.execute, args=("SELECT 1",))
    thread.start()
    thread.join()
    database.close()
    assert database.execute("SELECT count(*) FROM t") == [(0,)]
    database.close()
