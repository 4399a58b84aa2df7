"""The replay store on PostgreSQL, shared by the workers that refuse a replayed assertion."""

from __future__ import annotations

import threading

import pytest

from wsgiauth.identity.database import Database
from wsgiauth.identity.replay import SqlReplayStore

pytestmark = pytest.mark.e2e


def test_a_value_is_used_once_across_processes_on_postgres(postgres_dsn) -> None:
    one, two = Database.postgres(postgres_dsn), Database.postgres(postgres_dsn)
    try:
        clock = [1_000_000.0]
        first = SqlReplayStore(one, clock=lambda: clock[0])
        second = SqlReplayStore(two, clock=lambda: clock[0])
        assert first.first_use("assertion-1", clock[0] + 60)
        assert not second.first_use("assertion-1", clock[0] + 60)
        clock[0] += 61
        assert second.first_use("assertion-1", clock[0] + 60)  # expired, so usable again
    finally:
        one.close()
        two.close()


def test_racing_workers_let_one_use_win_on_postgres(postgres_dsn) -> None:
    """Eight threads with their own connections present one value at once: one wins."""
    database = Database.postgres(postgres_dsn)
    try:
        store = SqlReplayStore(database)
        store.first_use("warm-up", 2e9)  # the table exists before the race
        barrier = threading.Barrier(8, timeout=10)
        wins: list[bool] = []

        def present() -> None:
            barrier.wait()
            wins.append(store.first_use("raced", 2e9))

        threads = [threading.Thread(target=present) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=20)
        assert sorted(wins) == [False] * 7 + [True]
    finally:
        database.close()
