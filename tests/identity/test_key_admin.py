"""KeyAdmin and shared_key_store: what ``wsgiauth keys`` sees and does, on SQLite files.

The same operations on PostgreSQL, and a rotation reaching running servers, are in
``tests/e2e/test_faults_keys.py``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.identity.conftest import ISSUER
from tests.identity.conftest import FakeClock
from tests.identity.conftest import kid_of
from wsgiauth.audit import AUDIT_LOGGER
from wsgiauth.config import Config
from wsgiauth.errors import ConfigError
from wsgiauth.identity.database import Database
from wsgiauth.identity.key_admin import KeyAdmin
from wsgiauth.identity.key_admin import shared_key_store
from wsgiauth.identity.key_stores import SqlKeyStore
from wsgiauth.identity.token_factory import TokenFactory
from wsgiauth.types import TokenParams

JANE = TokenParams(claims={"sub": "user:default/jane"})
DURATION = 600


@pytest.fixture
def database(tmp_path):
    database = Database.sqlite(tmp_path / "auth.sqlite3")
    yield database
    database.close()


def sqlite_config(path: Path, **auth) -> Config:
    backend = {"database": {"client": "better-sqlite3", "connection": {"filename": str(path)}}}
    return Config.from_dict({"backend": backend, "auth": auth})


def test_listing_shows_every_key_oldest_first_with_its_listing_time(database):
    clock = FakeClock(1_700_000_000.0)
    store = SqlKeyStore(database, clock=clock)
    store.add_key({"kid": "old", "alg": "ES256"})
    clock.advance(100)
    store.add_key({"kid": "new", "alg": "ES384"})
    clock.advance(5)
    store.request_rotation(clock())

    listing = KeyAdmin(store, DURATION, clock=clock).listing()

    assert [(k.kid, k.algorithm, k.newest) for k in listing.keys] == [
        ("old", "ES256", False),
        ("new", "ES384", True),
    ]
    old, new = listing.keys
    assert old.created_at == pytest.approx(1_700_000_000.0)
    assert old.listed_until == pytest.approx(1_700_000_000.0 + 3 * DURATION)
    assert new.listed_until == pytest.approx(1_700_000_100.0 + 3 * DURATION)
    assert listing.rotation_requested_at == pytest.approx(1_700_000_105.0)
    assert listing.now == clock()


def test_an_empty_store_lists_nothing_and_no_rotation(database):
    listing = KeyAdmin(SqlKeyStore(database), DURATION).listing()
    assert listing.keys == ()
    assert listing.rotation_requested_at is None


def test_prune_removes_only_keys_past_their_listing_time(database):
    clock = FakeClock(1_700_000_000.0)
    store = SqlKeyStore(database, clock=clock)
    store.add_key({"kid": "expired"})
    clock.advance(DURATION)
    store.add_key({"kid": "live"})
    clock.advance(2 * DURATION)  # "expired" is exactly 3 durations old: not listed any more
    admin = KeyAdmin(store, DURATION, clock=clock)

    assert admin.prune() == ["expired"]
    assert [k.kid for k in admin.listing().keys] == ["live"]
    assert admin.prune() == []


def test_rotate_reaches_a_factory_on_another_connection_to_the_file(tmp_path):
    """Two processes in all but name: the admin and a server share only the SQLite file."""
    clock = FakeClock()
    server_db, admin_db = (Database.sqlite(tmp_path / "auth.sqlite3") for _ in range(2))
    try:
        factory = TokenFactory(ISSUER, SqlKeyStore(server_db, clock=clock), DURATION, clock=clock)
        first = kid_of(factory.issue_token(JANE))
        clock.advance(10)
        admin = KeyAdmin(SqlKeyStore(admin_db, clock=clock), DURATION, clock=clock)
        assert admin.rotate() == clock()
        clock.advance(1)
        assert kid_of(factory.issue_token(JANE)) == first  # published, not signing yet
        listed = [k.kid for k in admin.listing().keys]
        assert len(listed) == 2 and listed[0] == first and admin.listing().keys[1].newest
        clock.advance(factory.rotation_delay_seconds + 0.01)
        assert kid_of(factory.issue_token(JANE)) == listed[1]
    finally:
        server_db.close()
        admin_db.close()


def test_from_config_reads_the_store_and_the_token_lifetime(tmp_path):
    path = tmp_path / "auth.sqlite3"
    SqlKeyStore(Database.sqlite(path)).add_key({"kid": "k"})
    admin = KeyAdmin.from_config(sqlite_config(path, backstageTokenExpiration={"minutes": 20}))
    assert admin.key_duration_seconds == 1200
    [key] = admin.listing().keys
    assert key.listed_until == pytest.approx(key.created_at + 3 * 1200)


#: For ``auth.audit.hook`` by dotted path.
SHIPPED: list[dict[str, object]] = []


def test_a_rotation_request_and_a_prune_are_audited_and_reach_the_configured_hook(
    tmp_path, caplog
):
    caplog.set_level(logging.INFO, logger=AUDIT_LOGGER)
    SHIPPED.clear()
    path = tmp_path / "auth.sqlite3"
    SqlKeyStore(Database.sqlite(path)).add_key({"kid": "k"})
    hook = f"{__name__}:SHIPPED.append"
    admin = KeyAdmin.from_config(sqlite_config(path, audit={"hook": hook}))

    mark = admin.rotate()
    assert admin.prune() == []

    events = [r.audit for r in caplog.records if r.name == AUDIT_LOGGER]  # type: ignore[attr-defined]
    assert events == [
        {"event": "key.rotation_requested", "mark": mark},
        {"event": "key.pruned", "kids": []},
    ]
    assert SHIPPED == events


@pytest.mark.parametrize(
    ("auth", "connection", "path", "message"),
    [
        pytest.param(
            {"keyStore": {"provider": "memory"}},
            None,
            "auth.keyStore.provider",
            "the memory key store lives inside each serving process",
            id="memory",
        ),
        pytest.param(
            {"keyStore": {"provider": "static"}},
            None,
            "auth.keyStore.provider",
            "static keys are the PEM files of auth.keyStore.static.keys",
            id="static",
        ),
        pytest.param(
            {}, ":memory:", "backend.database", "an in-memory SQLite database", id="sqlite-memory"
        ),
        pytest.param(
            {}, "missing", "backend.database", "no process has published a key", id="no-file"
        ),
    ],
)
def test_stores_out_of_reach_are_refused_naming_the_key(tmp_path, auth, connection, path, message):
    if connection is None:
        config = Config.from_dict({"auth": auth})
    elif connection == ":memory:":
        database = {"client": "better-sqlite3", "connection": ":memory:"}
        config = Config.from_dict({"backend": {"database": database}})
    else:
        config = sqlite_config(tmp_path / "missing.sqlite3")
    with pytest.raises(ConfigError) as info:
        shared_key_store(config)
    assert info.value.path == path
    assert message in info.value.reason
    assert not (tmp_path / "missing.sqlite3").exists()  # nothing was created on the way


def test_an_existing_file_is_the_shared_store(tmp_path):
    path = tmp_path / "auth.sqlite3"
    SqlKeyStore(Database.sqlite(path)).list_keys()
    store = shared_key_store(sqlite_config(path))
    assert isinstance(store, SqlKeyStore)
    assert store.database.description == str(path)
