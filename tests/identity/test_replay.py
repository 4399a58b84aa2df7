"""The replay store: a value is good once until it expires, in memory and across processes."""

from __future__ import annotations

import time

import pytest

from wsgiauth import Config
from wsgiauth.identity.database import Database
from wsgiauth.identity.key_stores import MemoryKeyStore
from wsgiauth.identity.key_stores import SqlKeyStore
from wsgiauth.identity.replay import MemoryReplayStore
from wsgiauth.identity.replay import SqlReplayStore
from wsgiauth.identity.replay import replay_store_from_config


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_memory_store_refuses_a_value_until_it_expires() -> None:
    clock = Clock()
    store = MemoryReplayStore(clock=clock)
    assert store.first_use("a", clock.now + 60)
    assert not store.first_use("a", clock.now + 60)
    assert store.first_use("b", clock.now + 60)
    clock.now += 61
    assert store.first_use("a", clock.now + 60)


def test_sql_store_is_shared_by_every_process_on_the_database(tmp_path) -> None:
    """Two stores on one SQLite file stand for two workers."""
    path = tmp_path / "replay.sqlite"
    clock = Clock()
    one = SqlReplayStore(Database.sqlite(path), clock=clock)
    two = SqlReplayStore(Database.sqlite(path), clock=clock)
    assert one.first_use("assertion-1", clock.now + 60)
    assert not two.first_use("assertion-1", clock.now + 60)
    assert not one.first_use("assertion-1", clock.now + 60)
    assert two.first_use("assertion-2", clock.now + 60)
    clock.now += 61
    assert two.first_use("assertion-1", clock.now + 60)


def test_sql_store_works_on_a_memory_database() -> None:
    clock = Clock()
    store = SqlReplayStore(Database.sqlite(":memory:"), clock=clock)
    assert store.first_use("x", clock.now + 5)
    assert not store.first_use("x", clock.now + 5)


def test_sql_store_refuses_an_overlong_key(tmp_path) -> None:
    store = SqlReplayStore(Database.sqlite(tmp_path / "r.sqlite"))
    with pytest.raises(ValueError, match="too long"):
        store.first_use("k" * 257, time.time() + 5)


def test_from_config_uses_the_key_stores_database(tmp_path) -> None:
    database = Database.sqlite(tmp_path / "keys.sqlite")
    store = replay_store_from_config(Config.from_dict({}), key_store=SqlKeyStore(database))
    assert isinstance(store, SqlReplayStore) and store.database is database
    memory = replay_store_from_config(Config.from_dict({}), key_store=MemoryKeyStore())
    assert isinstance(memory, MemoryReplayStore)
