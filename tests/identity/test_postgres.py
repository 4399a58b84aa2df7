"""PostgreSQL's own part of the database layer, without a server: conninfo, errors, the extra.

psycopg is optional, so it is never imported at this module's import time; the
tests that need it skip without it. Everything that needs a running PostgreSQL
is in ``tests/e2e/test_postgres.py``.
"""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from wsgiauth.errors import ConfigError
from wsgiauth.identity import postgres


@pytest.fixture
def psycopg():
    return pytest.importorskip("psycopg", reason="the postgres extra (psycopg) is not installed")


def test_the_database_layer_imports_and_runs_sqlite_without_psycopg():
    code = (
        "import sys\n"
        "sys.modules['psycopg'] = None  # as if the postgres extra were not installed\n"
        "import wsgiauth.identity.postgres, wsgiauth.identity.database_config\n"
        "import wsgiauth.identity.key_stores, wsgiauth.identity.user_info\n"
        "from wsgiauth.identity.database import Database\n"
        "print(Database.sqlite(':memory:').execute('SELECT 1'))\n"
    )
    result = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "[(1,)]\n", "")


def test_without_psycopg_the_config_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "psycopg", None)
    monkeypatch.setitem(sys.modules, "psycopg.conninfo", None)
    with pytest.raises(ConfigError) as info:
        postgres.conninfo_helpers()
    assert info.value.path == "backend.database.client"
    assert "pip install 'wsgiauth[postgres]'" in info.value.reason


@pytest.mark.parametrize(
    ("conninfo", "params", "dbname", "target"),
    [
        pytest.param(
            "postgresql://u:secret@db.example:5433",
            {},
            postgres.DEFAULT_PG_DATABASE,
            "db.example:5433/backstage_plugin_auth",
            id="url-default-name",
        ),
        pytest.param(
            "postgresql://u@db.example/mine", {}, "mine", "db.example:5432/mine", id="url-name"
        ),
        pytest.param(
            "",
            {"host": "h", "user": "u", "password": "p", "dbname": "auth"},
            "auth",
            "h:5432/auth",
            id="keywords",
        ),
        pytest.param("", {}, postgres.DEFAULT_PG_DATABASE, None, id="nothing"),
    ],
)
def test_conninfo_and_target(psycopg, conninfo, params, dbname, target):
    from psycopg.conninfo import conninfo_to_dict

    full, described = postgres.postgres_conninfo(
        conninfo, connect_timeout=3.0, statement_timeout=5.0, **params
    )
    parsed = conninfo_to_dict(full)
    assert parsed["dbname"] == dbname
    assert parsed["connect_timeout"] == "3"
    assert parsed["options"] == "-c statement_timeout=5000"
    if target is not None:
        assert described == target
    assert "secret" not in described


def test_timeouts(psycopg):
    from psycopg.conninfo import conninfo_to_dict

    full, _ = postgres.postgres_conninfo(
        "postgresql://db/auth?options=-c%20search_path%3Dx",
        connect_timeout=0.2,
        statement_timeout=0,
    )
    parsed = conninfo_to_dict(full)
    assert parsed["connect_timeout"] == "1"  # libpq takes whole seconds, at least 1
    assert parsed["options"] == "-c search_path=x"  # no statement_timeout when 0
    full, _ = postgres.postgres_conninfo(
        "postgresql://db/auth?options=-c%20search_path%3Dx",
        connect_timeout=3.0,
        statement_timeout=1.5,
    )
    assert conninfo_to_dict(full)["options"] == "-c search_path=x -c statement_timeout=1500"


def test_a_closed_port_is_an_operational_error_and_creates_nothing(psycopg, monkeypatch):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    created = []
    monkeypatch.setattr(postgres, "create_database", created.append)
    conninfo, _ = postgres.postgres_conninfo(
        f"postgresql://nobody@127.0.0.1:{port}/x", connect_timeout=1, statement_timeout=0
    )
    with pytest.raises(psycopg.OperationalError):
        postgres.connect(conninfo)
    assert created == []


def test_error_classes(psycopg):
    assert postgres.driver_error() is psycopg.Error
    assert postgres.unavailable_errors() == (psycopg.OperationalError, psycopg.InterfaceError)
    for lost_race in (
        psycopg.errors.UniqueViolation,
        psycopg.errors.DuplicateTable,
        psycopg.errors.DuplicateObject,
    ):
        assert postgres.is_duplicate(lost_race())
    assert not postgres.is_duplicate(psycopg.OperationalError())
    assert not postgres.is_duplicate(ValueError())
