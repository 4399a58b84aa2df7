"""Refresh flights on the database: one exchange per refresh token across processes.

Two ``SqlRefreshFlights`` on one SQLite file stand for two workers; the last
test runs real OS processes. The same flights run on PostgreSQL in
``tests/e2e/test_refresh_races.py``.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
import time

import pytest

from wsgiauth.identity.database import Database
from wsgiauth.identity.refresh_flights import DEFAULT_GRACE_SECONDS
from wsgiauth.identity.refresh_flights import WAIT_SECONDS
from wsgiauth.identity.refresh_flights import SqlRefreshFlights
from wsgiauth.identity.refresh_flights import _Sealed

TOKEN = "oidc/development\x00rt-0123456789abcdef"  # noqa: S105 - a test key
RESULT = '{"session":{"accessToken":"at-secret","refresh":"rt-new-secret"}}'


class Calls:
    """A call that counts itself and returns a fixed value (or raises)."""

    def __init__(self, value: str = RESULT, error: BaseException | None = None) -> None:
        self.value = value
        self.error = error
        self.count = 0

    def __call__(self) -> str:
        self.count += 1
        if self.error is not None:
            raise self.error
        return self.value


@pytest.fixture
def database(tmp_path):
    database = Database.sqlite(tmp_path / "flights.sqlite3")
    yield database
    database.close()


@pytest.fixture
def worker(database, clock):
    """A flight store as one worker has it."""
    return SqlRefreshFlights(database, clock=clock)


@pytest.fixture
def other_worker(tmp_path, clock):
    """Another worker: its own ``Database`` (connections) on the same file."""
    database = Database.sqlite(tmp_path / "flights.sqlite3")
    yield SqlRefreshFlights(database, clock=clock)
    database.close()


def rows(database: Database) -> list[tuple]:
    return database.execute("SELECT * FROM refresh_flights")


def test_the_first_caller_claims_and_runs(worker, database):
    call = Calls()
    assert worker.run(TOKEN, call) == RESULT
    assert call.count == 1
    [(key, owner, claimed_at, finished_at, result)] = rows(database)
    assert len(key) == 64 and owner and result
    assert finished_at >= claimed_at


def test_a_finished_result_is_shared_with_another_worker_within_grace(worker, other_worker, clock):
    first, second = Calls("first"), Calls("second")
    worker.run(TOKEN, first)
    clock.advance(DEFAULT_GRACE_SECONDS - 1)
    assert other_worker.run(TOKEN, second) == "first"
    assert second.count == 0


def test_after_the_grace_the_next_caller_exchanges_again(worker, other_worker, clock):
    worker.run(TOKEN, Calls("first"))
    clock.advance(DEFAULT_GRACE_SECONDS + 1)
    second = Calls("second")
    assert other_worker.run(TOKEN, second) == "second"
    assert second.count == 1
    # ... and the new result is what the grace now shares.
    assert worker.run(TOKEN, Calls("third")) == "second"


def test_keys_are_independent(worker):
    assert worker.run(TOKEN, Calls("a")) == "a"
    assert worker.run(TOKEN + "x", Calls("b")) == "b"


def test_errors_are_not_shared(worker, other_worker, database):
    with pytest.raises(RuntimeError, match="invalid_grant"):
        worker.run(TOKEN, Calls(error=RuntimeError("invalid_grant")))
    assert rows(database) == []
    retry = Calls("retried")
    assert other_worker.run(TOKEN, retry) == "retried"
    assert retry.count == 1


def test_a_waiter_gets_the_running_owners_result(worker, other_worker):
    started, release = threading.Event(), threading.Event()

    def slow() -> str:
        started.set()
        release.wait(5)
        return "owner's"

    results: list[str] = []
    owner = threading.Thread(target=lambda: results.append(worker.run(TOKEN, slow)))
    owner.start()
    assert started.wait(5)
    waiter_call = Calls("waiter's")
    waiter = threading.Thread(target=lambda: results.append(other_worker.run(TOKEN, waiter_call)))
    waiter.start()
    time.sleep(0.1)  # the waiter polls the row meanwhile
    release.set()
    owner.join(5)
    waiter.join(5)
    assert results == ["owner's", "owner's"]
    assert waiter_call.count == 0


def test_a_waiter_whose_owner_fails_claims_and_tries_itself(worker, other_worker):
    started, release = threading.Event(), threading.Event()

    def failing() -> str:
        started.set()
        release.wait(5)
        raise RuntimeError("provider said no")

    errors: list[BaseException] = []

    def own() -> None:
        try:
            worker.run(TOKEN, failing)
        except RuntimeError as error:
            errors.append(error)

    owner = threading.Thread(target=own)
    owner.start()
    assert started.wait(5)
    retry = Calls("own try")
    results: list[str] = []
    waiter = threading.Thread(target=lambda: results.append(other_worker.run(TOKEN, retry)))
    waiter.start()
    time.sleep(0.1)
    release.set()
    owner.join(5)
    waiter.join(5)
    assert len(errors) == 1
    assert results == ["own try"]
    assert retry.count == 1


def test_a_dead_owners_claim_is_taken_over_after_the_wait(database, clock, caplog):
    """A worker that died mid-exchange left its claim: the next one waits it out, then runs."""
    waited: list[float] = []

    def sleep(seconds: float) -> None:  # time passes only for this clock
        waited.append(seconds)
        clock.advance(seconds)

    dead = SqlRefreshFlights(database, clock=clock)
    dead._schema()
    assert dead._claim(_Sealed(TOKEN).row_id, "dead-owner")  # claimed, never finished
    alive = SqlRefreshFlights(database, clock=clock, sleep=sleep)
    call = Calls("taken over")
    with caplog.at_level(logging.WARNING):
        assert alive.run(TOKEN, call) == "taken over"
    assert call.count == 1
    assert WAIT_SECONDS < sum(waited) < WAIT_SECONDS + 1
    assert "Taking over a refresh" in caplog.text
    [(_, owner, _, finished_at, _)] = rows(database)
    assert owner != "dead-owner" and finished_at is not None


def test_forget_deletes_the_shared_result(worker, other_worker, database):
    worker.run(TOKEN, Calls("before logout"))
    other_worker.forget(TOKEN)
    assert rows(database) == []
    after = Calls("after logout")
    assert worker.run(TOKEN, after) == "after logout"
    assert after.count == 1


def test_the_table_holds_neither_the_token_nor_the_result(worker, database):
    worker.run(TOKEN, Calls())
    dump = repr(rows(database))
    for secret in ("rt-0123456789abcdef", "at-secret", "rt-new-secret", "session"):
        assert secret not in dump


def test_a_result_sealed_for_another_token_does_not_unseal(worker, database, caplog):
    """Copying another session's sealed result into our row must not hand it to us."""
    other = TOKEN + "-other"
    worker.run(other, Calls("other session's tokens"))
    worker.run(TOKEN, Calls("ours"))
    [(foreign,)] = database.execute(
        "SELECT result FROM refresh_flights WHERE flight_key = ?", (row_id_of(other),)
    )
    database.execute(
        "UPDATE refresh_flights SET result = ? WHERE flight_key = ?", (foreign, row_id_of(TOKEN))
    )
    again = Calls("exchanged again")
    with caplog.at_level(logging.WARNING):
        assert worker.run(TOKEN, again) == "exchanged again"
    assert again.count == 1
    assert "does not unseal" in caplog.text


def row_id_of(key: str) -> str:
    return _Sealed(key).row_id


def test_only_the_old_tokens_key_opens_a_result():
    """The AEAD key comes from the token: another token's key fails even with our row id."""
    ours, theirs = _Sealed(TOKEN), _Sealed(TOKEN + "-other")
    sealed = ours.seal("tokens")
    assert ours.unseal(sealed) == "tokens"
    assert theirs.unseal(sealed) is None
    theirs.row_id = ours.row_id  # the same associated data: only the key differs now
    assert theirs.unseal(sealed) is None
    assert ours.unseal(sealed[:-4] + "AAAA") is None
    assert ours.unseal("not base64!") is None


def test_old_rows_are_pruned(worker, database, clock):
    worker.run(TOKEN, Calls())
    clock.advance(2 * (DEFAULT_GRACE_SECONDS + WAIT_SECONDS) + 61)
    worker.run(TOKEN + "x", Calls())
    assert len(rows(database)) == 1


def test_an_unavailable_database_falls_back_to_this_process(tmp_path, caplog):
    database = Database.sqlite(tmp_path)  # a directory: every statement fails
    flights = SqlRefreshFlights(database)
    call = Calls("alone")
    with caplog.at_level(logging.WARNING):
        assert flights.run(TOKEN, call) == "alone"
        flights.forget(TOKEN)
    assert call.count == 1
    assert "refreshing in this process only" in caplog.text


def test_a_result_that_cannot_be_stored_is_still_returned(worker, database, caplog):
    def exchange_then_lose_the_database() -> str:
        database.execute("DROP TABLE refresh_flights")
        return "kept"

    with caplog.at_level(logging.WARNING):
        assert worker.run(TOKEN, exchange_then_lose_the_database) == "kept"
    assert "Could not share a refresh result" in caplog.text


def test_a_memory_database_works_in_one_process(clock):
    database = Database.sqlite(":memory:")
    flights = SqlRefreshFlights(database, clock=clock)
    assert flights.run(TOKEN, Calls("mem")) == "mem"
    assert flights.run(TOKEN, Calls("again")) == "mem"
    database.close()


# --- real processes -----------------------------------------------------------------

PROCESSES = 4
ROUNDS = 15


def _race(path: str, barrier, out) -> None:
    """One OS process: for each round, meet the others at the barrier, then run the flight.

    The exchange holds its claim until every process has arrived for the round, so
    the others really run while it is in flight.
    """
    flights = SqlRefreshFlights(Database.sqlite(path))
    log = Database.sqlite(path)
    for round_ in range(ROUNDS):
        barrier.wait(30)

        def exchange(round_: int = round_) -> str:
            deadline = time.monotonic() + 10
            while log.execute("SELECT COUNT(*) FROM arrivals WHERE round = ?", (round_,)) != [
                (PROCESSES,)
            ]:
                assert time.monotonic() < deadline, "the other processes never arrived"
                time.sleep(0.005)
            log.execute("INSERT INTO calls (round) VALUES (?)", (round_,))
            return f"tokens of round {round_} from pid {multiprocessing.current_process().pid}"

        log.execute("INSERT INTO arrivals (round) VALUES (?)", (round_,))
        out.put((round_, flights.run(f"key-{round_}", exchange)))


def test_processes_racing_on_one_sqlite_file_make_one_exchange_per_key(tmp_path):
    path = str(tmp_path / "shared.sqlite3")
    setup = Database.sqlite(path)
    setup.execute("CREATE TABLE calls (round INTEGER)")
    setup.execute("CREATE TABLE arrivals (round INTEGER)")
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(PROCESSES)
    out = context.Queue()
    processes = [context.Process(target=_race, args=(path, barrier, out)) for _ in range(PROCESSES)]
    for process in processes:
        process.start()
    results = [out.get(timeout=120) for _ in range(PROCESSES * ROUNDS)]
    for process in processes:
        process.join(30)
        assert process.exitcode == 0

    calls = Database.sqlite(path).execute("SELECT round, COUNT(*) FROM calls GROUP BY round")
    assert dict(calls) == dict.fromkeys(range(ROUNDS), 1)
    by_round: dict[int, set[str]] = {}
    for round_, result in results:
        by_round.setdefault(round_, set()).add(result)
    assert all(len(shared) == 1 for shared in by_round.values()), by_round
