"""Which database ``backend.database`` names: SQLite files, PostgreSQL URLs, the default."""

from __future__ import annotations

import sys

import pytest

from wsgiauth.config import Config
from wsgiauth.errors import ConfigError
from wsgiauth.identity.database_config import database_from_config
from wsgiauth.identity.database_config import memory_setting
from wsgiauth.identity.key_stores import MemoryKeyStore
from wsgiauth.identity.key_stores import SqlKeyStore
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


# --- ':memory:' and the server store ---------------------------------------------------


@pytest.fixture
def server_store(tmp_path, monkeypatch):
    """A server store named in the environment, as a server's main process hands it over."""
    directory = tmp_path / "store"
    directory.mkdir(mode=0o700)
    path = directory / "store.sqlite3"
    monkeypatch.setenv("WSGIAUTH_SERVER_STORE", str(path))
    return path


MEMORY = {"backend": {"database": {"client": "better-sqlite3", "connection": ":memory:"}}}


def test_memory_is_this_process_without_a_server_store(monkeypatch):
    monkeypatch.delenv("WSGIAUTH_SERVER_STORE", raising=False)
    assert database_from_config(Config.from_dict(MEMORY)).description == ":memory:"
    assert isinstance(key_store_from_config(MEMORY_KEYS), MemoryKeyStore)


def test_memory_is_the_server_store_when_one_is_named(server_store):
    database = database_from_config(Config.from_dict(MEMORY))
    assert (database.dialect, database.description) == ("sqlite", str(server_store))

    key_store = key_store_from_config(MEMORY_KEYS)
    assert isinstance(key_store, SqlKeyStore)
    assert key_store.database.description == str(server_store)


def test_a_file_stays_a_file_with_a_server_store(server_store, tmp_path):
    config = Config.from_dict(
        {"backend": {"database": {"client": "sqlite3", "connection": str(tmp_path / "a.db")}}}
    )
    assert database_from_config(config).description == str(tmp_path / "a.db")


def test_a_server_store_others_may_write_is_refused(server_store):
    server_store.parent.chmod(0o777)
    with pytest.raises(ConfigError, match="WSGIAUTH_SERVER_STORE"):
        database_from_config(Config.from_dict(MEMORY))
    with pytest.raises(ConfigError, match="WSGIAUTH_SERVER_STORE"):
        key_store_from_config(MEMORY_KEYS)


MEMORY_KEYS = Config.from_dict({"auth": {"keyStore": {"provider": "memory"}}})


@pytest.mark.parametrize(
    ("config", "key"),
    [
        pytest.param({}, None, id="nothing"),
        pytest.param(MEMORY, "backend.database.connection", id="backstage-dev"),
        pytest.param(
            {
                "backend": {
                    "database": {"client": "sqlite3", "connection": {"filename": ":memory:"}}
                }
            },
            "backend.database.connection",
            id="filename",
        ),
        pytest.param(
            {"auth": {"keyStore": {"provider": "memory"}}}, "auth.keyStore.provider", id="keys"
        ),
        pytest.param(
            {**MEMORY, "auth": {"keyStore": {"provider": "memory"}}},
            "auth.keyStore.provider",
            id="both",
        ),
        pytest.param(
            # The user info lives in backend.database whatever the key store.
            {**MEMORY, "auth": {"keyStore": {"provider": "static"}}},
            "backend.database.connection",
            id="static-keys",
        ),
        pytest.param(
            {
                "backend": {
                    "database": {
                        "client": "better-sqlite3",
                        "connection": "auth.db",
                        "plugin": {"auth": {"connection": {"filename": ":memory:"}}},
                    }
                }
            },
            "backend.database.plugin.auth.connection",
            id="plugin-override",
        ),
        pytest.param(
            {
                "backend": {
                    "database": {
                        "client": "better-sqlite3",
                        "connection": ":memory:",
                        "plugin": {"auth": {"connection": "auth.db"}},
                    }
                }
            },
            None,
            id="plugin-file",
        ),
        pytest.param(
            {"backend": {"database": {"client": "sqlite3", "connection": "auth.db"}}},
            None,
            id="file",
        ),
        pytest.param(
            {"backend": {"database": {"client": "pg", "connection": ":memory:"}}},
            None,
            id="pg",
        ),
        pytest.param({"auth": {"keyStore": {"provider": "database"}}}, None, id="default-file"),
    ],
)
def test_memory_setting_names_the_key_that_asks_for_memory(config, key):
    assert memory_setting(Config.from_dict(config)) == key
