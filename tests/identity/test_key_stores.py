"""Key stores: memory, SQL (on SQLite here), static PEM keys, and choosing one from config.

The KeyStore contract below runs on PostgreSQL too, in ``tests/e2e/test_postgres.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.identity.conftest import ISSUER
from tests.identity.conftest import FakeClock
from tests.identity.conftest import kid_of
from tests.identity.conftest import verify
from wsgiauth.config import Config
from wsgiauth.errors import ConfigError
from wsgiauth.identity.database import Database
from wsgiauth.identity.key_stores import ROTATION_TABLE
from wsgiauth.identity.key_stores import MemoryKeyStore
from wsgiauth.identity.key_stores import SqlKeyStore
from wsgiauth.identity.key_stores import StaticKeyStore
from wsgiauth.identity.key_stores import key_store_from_config
from wsgiauth.identity.token_factory import TokenFactory
from wsgiauth.identity.types import RotatableKeyStore
from wsgiauth.types import TokenParams

JANE = TokenParams(claims={"sub": "user:default/jane"})


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


@pytest.fixture(
    params=[
        pytest.param("memory"),
        pytest.param("sqlite-file"),
        pytest.param("sqlite-memory"),
    ]
)
def make_store(request, databases, tmp_path):
    """Build stores of the parametrised kind; two calls share one backing database."""

    def make(clock):
        if request.param == "memory":
            if not hasattr(make, "shared"):
                make.shared = MemoryKeyStore(clock=clock)
            return make.shared
        if request.param == "sqlite-file":
            return SqlKeyStore(databases(Database.sqlite(tmp_path / "keys.sqlite3")), clock=clock)
        if not hasattr(make, "shared"):  # sqlite-memory
            make.shared = databases(Database.sqlite(":memory:"))
        return SqlKeyStore(make.shared, clock=clock)

    return make


# --- the KeyStore contract, on every store -------------------------------------------------


def test_store_adds_lists_oldest_first_and_removes(make_store):
    clock = FakeClock(1_700_000_000.0)
    store = make_store(clock)
    assert store.list_keys() == []
    store.add_key({"kid": "b", "kty": "EC"})
    clock.advance(10.5)
    store.add_key({"kid": "a", "kty": "EC"})
    listed = store.list_keys()
    assert [(s.key, s.created_at) for s in listed] == [
        ({"kid": "b", "kty": "EC"}, pytest.approx(1_700_000_000.0, abs=1)),
        ({"kid": "a", "kty": "EC"}, pytest.approx(1_700_000_010.5, abs=1)),
    ]
    store.remove_keys(["b", "unknown"])
    assert [s.key["kid"] for s in store.list_keys()] == ["a"]
    store.remove_keys([])
    assert len(store.list_keys()) == 1


def test_two_stores_on_one_database_see_each_others_keys(make_store):
    clock = FakeClock()
    first, second = make_store(clock), make_store(clock)
    first.add_key({"kid": "one"})
    second.add_key({"kid": "two"})
    assert {s.key["kid"] for s in first.list_keys()} == {"one", "two"}
    assert {s.key["kid"] for s in second.list_keys()} == {"one", "two"}


def test_adding_a_key_twice_keeps_one_row(make_store):
    store = make_store(FakeClock())
    store.add_key({"kid": "one"})
    store.add_key({"kid": "one"})
    assert len(store.list_keys()) == 1


def test_the_rotation_mark_is_set_replaced_and_shared(make_store):
    clock = FakeClock()
    first, second = make_store(clock), make_store(clock)
    assert first.rotation_requested_at() is None
    first.request_rotation(1_700_000_000.25)
    assert second.rotation_requested_at() == pytest.approx(1_700_000_000.25, abs=1e-3)
    second.request_rotation(1_700_000_100.5)
    assert first.rotation_requested_at() == pytest.approx(1_700_000_100.5, abs=1e-3)
    # The mark is not a key: the key list is unchanged.
    assert first.list_keys() == []


def test_tokens_from_one_factory_verify_with_the_keys_of_another(make_store):
    clock = FakeClock()
    one = TokenFactory(ISSUER, make_store(clock), 600, clock=clock)
    two = TokenFactory(ISSUER, make_store(clock), 600, clock=clock)
    token_one, token_two = one.issue_token(JANE), two.issue_token(JANE)
    assert kid_of(token_one) != kid_of(token_two)
    assert verify(token_one, two.list_public_keys())["sub"] == "user:default/jane"
    assert verify(token_two, one.list_public_keys())["sub"] == "user:default/jane"


# --- SQLite --------------------------------------------------------------------------------


def test_sqlite_token_verifies_after_a_restart(tmp_path):
    path = tmp_path / "keys.sqlite3"
    before = Database.sqlite(path)
    token = TokenFactory(ISSUER, SqlKeyStore(before), 600).issue_token(JANE)
    before.close()
    after = Database.sqlite(path)
    try:
        restarted = TokenFactory(ISSUER, SqlKeyStore(after), 600)
        assert verify(token, restarted.list_public_keys())["sub"] == "user:default/jane"
        # The new process makes its own key; both stay listed.
        assert kid_of(restarted.issue_token(JANE)) != kid_of(token)
        assert len(restarted.list_public_keys()) == 2
    finally:
        after.close()


def test_malformed_rows_are_skipped(tmp_path, databases):
    database = databases(Database.sqlite(tmp_path / "keys.sqlite3"))
    store = SqlKeyStore(database)
    store.add_key({"kid": "good"})
    database.execute("INSERT INTO signing_keys VALUES ('bad', 'not json', 0)")
    database.execute("INSERT INTO signing_keys VALUES ('nokid', '{}', 0)")
    assert [s.key["kid"] for s in store.list_keys()] == ["good"]


# --- static keys ---------------------------------------------------------------------------


def _pem_pair(directory: Path, name: str, key=None) -> dict[str, str]:
    key = key or ec.generate_private_key(ec.SECP256R1())
    (directory / f"{name}.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    (directory / f"{name}.pub").write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return {"privateKeyFile": f"{name}.key", "publicKeyFile": f"{name}.pub", "keyId": name}


def _static(keys) -> Config:
    return Config.from_dict(
        {"auth": {"keyStore": {"provider": "static", "static": {"keys": keys}}}}
    )


def test_static_store_lists_configured_keys_and_takes_no_new_ones(tmp_path):
    store = StaticKeyStore.from_config(_static([_pem_pair(tmp_path, "k1")]), base_dir=tmp_path)
    [stored] = store.list_keys()
    assert {k: stored.key[k] for k in ("kid", "alg", "use", "kty", "crv")} == {
        "kid": "k1",
        "alg": "ES256",
        "use": "sig",
        "kty": "EC",
        "crv": "P-256",
    }
    with pytest.raises(ConfigError):
        store.add_key({"kid": "new"})
    store.remove_keys(["k1"])
    assert len(store.list_keys()) == 1


def test_static_store_from_key_store_from_config(tmp_path):
    store = key_store_from_config(_static([_pem_pair(tmp_path, "k1")]), base_dir=tmp_path)
    assert isinstance(store, StaticKeyStore)


@pytest.mark.parametrize(
    ("change", "path"),
    [
        pytest.param({"publicKeyFile": "other.pub"}, "publicKeyFile", id="mismatched-pair"),
        pytest.param({"privateKeyFile": "nope.key"}, "privateKeyFile", id="missing-file"),
        pytest.param({"algorithm": "HS256"}, "algorithm", id="symmetric"),
        pytest.param({"algorithm": "RS256"}, "privateKeyFile", id="wrong-key-type"),
        pytest.param({"keyId": None}, "keyId", id="no-key-id"),
    ],
)
def test_static_store_config_errors_name_the_key(tmp_path, change, path):
    _pem_pair(tmp_path, "other")
    entry = {**_pem_pair(tmp_path, "k1"), **change}
    with pytest.raises(ConfigError) as info:
        StaticKeyStore.from_config(_static([entry]), base_dir=tmp_path)
    assert info.value.path == f"auth.keyStore.static.keys[0].{path}"


# --- choosing a store from config ---------------------------------------------------------
# (Which database backend.database names: test_database_config.py.)


@pytest.mark.parametrize(
    ("key_store", "kind"),
    [
        pytest.param({"provider": "memory"}, MemoryKeyStore, id="memory"),
        pytest.param({"provider": "database"}, SqlKeyStore, id="database"),
        pytest.param({}, SqlKeyStore, id="default"),
    ],
)
def test_key_store_from_config(monkeypatch, tmp_path, key_store, kind):
    monkeypatch.setenv("WSGIAUTH_DATA_DIR", str(tmp_path / "data"))
    store = key_store_from_config(Config.from_dict({"auth": {"keyStore": key_store}}))
    assert isinstance(store, kind)
    if isinstance(store, SqlKeyStore):
        assert store.database.description == str(tmp_path / "data" / "wsgiauth.sqlite3")
        store.database.close()


@pytest.mark.parametrize(
    ("provider", "message"),
    [
        pytest.param("firestore", "the firestore key store is not supported", id="firestore"),
        pytest.param("redis", "unknown key store 'redis'", id="unknown"),
    ],
)
def test_unsupported_key_stores(provider, message):
    with pytest.raises(ConfigError) as info:
        key_store_from_config(Config.from_dict({"auth": {"keyStore": {"provider": provider}}}))
    assert info.value.path == "auth.keyStore.provider"
    assert message in info.value.reason


def test_the_rotation_mark_leaves_the_signing_keys_columns_alone(tmp_path, databases):
    database = databases(Database.sqlite(tmp_path / "keys.sqlite3"))
    SqlKeyStore(database).request_rotation(1_700_000_000.0)
    columns = [row[1] for row in database.execute("PRAGMA table_info(signing_keys)")]
    assert columns == ["kid", "key", "created_at"]
    tables = {row[0] for row in database.execute("SELECT name FROM sqlite_master")}
    assert {"signing_keys", ROTATION_TABLE} <= tables


def test_only_shared_stores_carry_a_rotation_mark(tmp_path):
    assert isinstance(MemoryKeyStore(), RotatableKeyStore)
    assert isinstance(SqlKeyStore(Database.sqlite(":memory:")), RotatableKeyStore)
    static = StaticKeyStore.from_config(_static([_pem_pair(tmp_path, "k1")]), base_dir=tmp_path)
    assert not isinstance(static, RotatableKeyStore)
