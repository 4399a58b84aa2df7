"""Which database ``backend.database`` names: SQLite files, PostgreSQL URLs, the default."""

from __future__ import annotations

import sys

import pytest

from wsgiauth.config import Config
from wsgiauth.errors import ConfigError
from wsgiauth.identity.database_config import database_from_config
from wsgiauth.identity.key_stores import key_store_from_config
from wsgiauth.loader import load_config


def test_default_data_dir_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.delenv("WSGIAUTH_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    database = database_from_config(Config.from_dict({}))
    assert database.description == str(tmp_path / "wsgiauth" / "wsgiauth.sqlite3")
    assert (tmp_path / "wsgiauth").is_dir()


@pytest.mark.parametrize(
    ("block", "dialect", "description"),
    [
        pytest.param(
            {"client": "better-sqlite3", "connection": ":memory:"},
            "sqlite",
            ":memory:",
            id="memory",
        ),
        pytest.param(
            {"client": "sqlite3", "connection": {"filename": "db/auth.db"}},
            "sqlite",
            "{base}/db/auth.db",
            id="relative-filename",
        ),
        pytest.param(
            {"client": "better-sqlite3", "connection": {"directory": "dbs"}},
            "sqlite",
            "{base}/dbs/auth.sqlite",
            id="directory",
        ),
        pytest.param(
            {"client": "pg", "connection": "postgresql://u:secret@db.example:5433"},
            "postgres",
            "db.example:5433/backstage_plugin_auth",
            id="pg-url-default-name",
        ),
        pytest.param(
            {"client": "pg", "connection": "postgresql://u@db.example/mine"},
            "postgres",
            "db.example:5432/mine",
            id="pg-url-with-name",
        ),
        pytest.param(
            {
                "client": "pg",
                "connection": {"host": "h", "port": 6000, "user": "u", "password": "p"},
            },
            "postgres",
            "h:6000/backstage_plugin_auth",
            id="pg-object",
        ),
        pytest.param(
            {"client": "pg", "prefix": "bs_", "connection": {"host": "h"}},
            "postgres",
            "h:5432/bs_auth",
            id="pg-prefix",
        ),
        pytest.param(
            {
                "client": "pg",
                "connection": {"host": "h", "database": "shared"},
                "plugin": {"auth": {"connection": {"database": "authdb"}}},
            },
            "postgres",
            "h:5432/authdb",
            id="plugin-override",
        ),
    ],
)
def test_database_from_config(tmp_path, block, dialect, description):
    if dialect == "postgres":
        # PostgreSQL connection strings are read with psycopg's conninfo parser.
        pytest.importorskip("psycopg", reason="the postgres extra (psycopg) is not installed")
    database = database_from_config(
        Config.from_dict({"backend": {"database": block}}), base_dir=tmp_path
    )
    assert database.dialect == dialect
    assert database.description == description.format(base=tmp_path)
    assert "secret" not in repr(database)


@pytest.mark.parametrize(
    ("block", "path"),
    [
        pytest.param({"connection": ":memory:"}, "backend.database.client", id="no-client"),
        pytest.param({"client": "mysql2"}, "backend.database.client", id="unsupported"),
        pytest.param(
            {"client": "sqlite3", "connection": {"host": "x"}},
            "backend.database.connection",
            id="bad-sqlite-connection",
        ),
        pytest.param(
            {"client": "pg", "connection": 5}, "backend.database.connection", id="bad-pg-connection"
        ),
    ],
)
def test_database_config_errors(block, path):
    with pytest.raises(ConfigError) as info:
        database_from_config(Config.from_dict({"backend": {"database": block}}))
    assert info.value.path == path


def test_postgres_without_the_postgres_extra_is_a_config_error_naming_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if psycopg were not installed
    monkeypatch.setitem(sys.modules, "psycopg.conninfo", None)
    config = {"backend": {"database": {"client": "pg", "connection": "postgresql://db/auth"}}}
    with pytest.raises(ConfigError) as info:
        database_from_config(Config.from_dict(config))
    assert info.value.path == "backend.database.client"
    assert "pip install 'wsgiauth[postgres]'" in info.value.reason


def test_relative_sqlite_path_is_relative_to_the_config_file(tmp_path, monkeypatch):
    folder = tmp_path / "conf"
    folder.mkdir()
    config_file = folder / "app-config.yaml"
    config_file.write_text(
        "backend:\n  database:\n    client: better-sqlite3\n"
        "    connection:\n      filename: keys.sqlite\n"
    )
    monkeypatch.chdir(tmp_path)  # not the config's folder
    store = key_store_from_config(load_config(config_file))
    store.add_key({"kid": "k1", "kty": "EC"})
    assert (folder / "keys.sqlite").exists()
    assert not (tmp_path / "keys.sqlite").exists()
    store.database.close()
