"""User-info stores: the claims of each issued token, kept per user for /v1/userinfo."""

from __future__ import annotations

import json

import pytest

from tests.identity.conftest import ISSUER
from wsgiauth.config import Config
from wsgiauth.errors import ServiceUnavailableError
from wsgiauth.identity.database import Database
from wsgiauth.identity.key_stores import MemoryKeyStore
from wsgiauth.identity.key_stores import SqlKeyStore
from wsgiauth.identity.token_factory import TokenFactory
from wsgiauth.identity.user_info import EXPIRED_AFTER_SECONDS
from wsgiauth.identity.user_info import PRUNE_INTERVAL
from wsgiauth.identity.user_info import MemoryUserInfoStore
from wsgiauth.identity.user_info import SqlUserInfoStore
from wsgiauth.identity.user_info import user_info_store_from_config
from wsgiauth.types import TokenParams

JANE = "user:default/jane"


@pytest.fixture(params=[pytest.param("memory"), pytest.param("sqlite")])
def store(request, tmp_path, clock):
    """Each store; the contract below runs on PostgreSQL in ``tests/e2e/test_postgres.py``."""
    if request.param == "memory":
        yield MemoryUserInfoStore(clock=clock)
        return
    database = Database.sqlite(tmp_path / "users.sqlite3")
    yield SqlUserInfoStore(database, clock=clock)
    database.close()


def test_saved_claims_come_back_and_are_replaced(store):
    assert store.get_user_info(JANE) is None
    store.save_user_info(JANE, {"sub": JANE, "ent": [JANE], "exp": 1_700_000_600})
    store.save_user_info("user:default/joe", {"sub": "user:default/joe", "exp": 1})
    store.save_user_info(JANE, {"sub": JANE, "ent": ["group:default/a"], "exp": 1_700_001_200})
    assert store.get_user_info(JANE) == {
        "sub": JANE,
        "ent": ["group:default/a"],
        "exp": 1_700_001_200,
    }
    assert store.get_user_info("user:default/joe") == {"sub": "user:default/joe", "exp": 1}


def test_returned_claims_are_a_copy(store):
    store.save_user_info(JANE, {"sub": JANE, "exp": 1})
    store.get_user_info(JANE)["sub"] = "changed"
    assert store.get_user_info(JANE)["sub"] == JANE


def _save(store, ref: str, exp: float | None) -> None:
    claims = {"sub": ref} if exp is None else {"sub": ref, "exp": int(exp)}
    store.save_user_info(ref, claims)


def test_expired_entries_go_on_a_write_and_live_ones_stay(store, clock):
    """Issue 8 item 12: rows whose exp passed a token lifetime ago are pruned."""
    start = clock.now
    _save(store, JANE, start + 600)  # the first write prunes (nothing yet)
    _save(store, "user:default/gone", start - EXPIRED_AFTER_SECONDS)
    _save(store, "user:default/no-exp", None)
    # Expired, but by less than a token lifetime when the next prune runs: kept.
    _save(store, "user:default/recent", start + PRUNE_INTERVAL + 60 - EXPIRED_AFTER_SECONDS)
    _save(store, "user:default/live", start + PRUNE_INTERVAL + 600)
    clock.advance(PRUNE_INTERVAL)

    _save(store, "user:default/new", clock.now + 600)

    assert store.get_user_info("user:default/gone") is None
    assert store.get_user_info("user:default/no-exp") is None
    for ref in (JANE, "user:default/recent", "user:default/live", "user:default/new"):
        assert store.get_user_info(ref) is not None, ref


def test_expired_entries_are_pruned_at_most_once_per_interval(store, clock):
    _save(store, JANE, clock.now + 600)  # prunes
    _save(store, "user:default/gone", 1)
    clock.advance(PRUNE_INTERVAL - 1)
    _save(store, JANE, clock.now + 600)
    assert store.get_user_info("user:default/gone") is not None  # not pruned yet
    clock.advance(1)
    _save(store, JANE, clock.now + 600)
    assert store.get_user_info("user:default/gone") is None


def test_a_failed_prune_does_not_fail_the_save(tmp_path, clock, caplog):
    database = Database.sqlite(tmp_path / "users.sqlite3")
    users = SqlUserInfoStore(database, clock=clock)
    users._prune = "DELETE FROM no_such_table WHERE exp < ?"
    try:
        _save(users, JANE, clock.now + 600)
        assert users.get_user_info(JANE) == {"sub": JANE, "exp": int(clock.now + 600)}
        assert "Failed to remove expired user_info rows" in caplog.text
    finally:
        database.close()


@pytest.mark.parametrize(
    "body",
    [
        pytest.param("not json", id="not-json"),
        pytest.param("[" * 50_000, id="nested"),
        pytest.param("[]", id="not-an-object"),
        pytest.param('{"claims": []}', id="claims-not-an-object"),
    ],
)
def test_a_sql_row_that_does_not_parse_is_no_user_info(tmp_path, body):
    database = Database.sqlite(tmp_path / "users.sqlite3")
    users = SqlUserInfoStore(database)
    try:
        _save(users, JANE, 1)
        database.execute("UPDATE user_info SET user_info = ?", (body,))
        assert users.get_user_info(JANE) is None
    finally:
        database.close()


def test_sql_row_is_backstage_shaped(tmp_path):
    database = Database.sqlite(tmp_path / "users.sqlite3")
    try:
        factory = TokenFactory(
            ISSUER, SqlKeyStore(database), 600, user_info_store=SqlUserInfoStore(database)
        )
        factory.issue_token(TokenParams(claims={"sub": JANE, "ent": ["group:default/a"]}))
        [(ref, body, exp)] = database.execute(
            "SELECT user_entity_ref, user_info, exp FROM user_info"
        )
        assert ref == JANE
        claims = json.loads(body)["claims"]
        assert claims == {"sub": JANE, "ent": ["group:default/a"], "exp": exp}
    finally:
        database.close()


def test_unavailable_database_fails_issuing_with_503(tmp_path):
    users = SqlUserInfoStore(Database.sqlite(tmp_path / "missing" / "users.sqlite3"))
    factory = TokenFactory(ISSUER, MemoryKeyStore(), 600, user_info_store=users)
    with pytest.raises(ServiceUnavailableError):
        factory.issue_token(TokenParams(claims={"sub": JANE}))


def test_store_from_config_shares_the_key_store_database(tmp_path):
    key_store = SqlKeyStore(Database.sqlite(tmp_path / "keys.sqlite3"))
    users = user_info_store_from_config(Config.from_dict({}), key_store=key_store)
    assert isinstance(users, SqlUserInfoStore)
    assert users.database is key_store.database
    key_store.database.close()


@pytest.mark.parametrize(
    ("config", "kind"),
    [
        pytest.param({}, MemoryUserInfoStore, id="no-database"),
        pytest.param(
            {"backend": {"database": {"client": "sqlite3", "connection": ":memory:"}}},
            SqlUserInfoStore,
            id="database",
        ),
    ],
)
def test_store_from_config_without_a_sql_key_store(config, kind, monkeypatch):
    monkeypatch.delenv("WSGIAUTH_SERVER_STORE", raising=False)
    users = user_info_store_from_config(Config.from_dict(config), key_store=MemoryKeyStore())
    assert isinstance(users, kind)
    if isinstance(users, SqlUserInfoStore):
        users.database.close()


def test_static_keys_without_a_database_keep_user_info_in_the_server_store(tmp_path, monkeypatch):
    # Static keys need no database, but /v1/userinfo must answer on every worker.
    directory = tmp_path / "store"
    directory.mkdir(mode=0o700)
    monkeypatch.setenv("WSGIAUTH_SERVER_STORE", str(directory / "store.sqlite3"))

    users = user_info_store_from_config(Config.from_dict({}), key_store=MemoryKeyStore())

    assert isinstance(users, SqlUserInfoStore)
    assert users.database.description == str(directory / "store.sqlite3")
    users.database.close()
