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
from wsgiauth.identity.user_info import MemoryUserInfoStore
from wsgiauth.identity.user_info import SqlUserInfoStore
from wsgiauth.identity.user_info import user_info_store_from_config
from wsgiauth.types import TokenParams

JANE = "user:default/jane"


@pytest.fixture(
    params=[
        pytest.param("memory"),
        pytest.param("sqlite"),
        pytest.param("postgres", marks=pytest.mark.e2e),
    ]
)
def store(request, tmp_path):
    if request.param == "memory":
        yield MemoryUserInfoStore()
        return
    if request.param == "sqlite":
        database = Database.sqlite(tmp_path / "users.sqlite3")
    else:
        database = Database.postgres(request.getfixturevalue("postgres_dsn"))
    yield SqlUserInfoStore(database)
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
def test_store_from_config_without_a_sql_key_store(config, kind):
    users = user_info_store_from_config(Config.from_dict(config), key_store=MemoryKeyStore())
    assert isinstance(users, kind)
    if isinstance(users, SqlUserInfoStore):
        users.database.close()
