"""SingleFlight: one call per key at a time; a finished result is shared for a grace period."""

from __future__ import annotations

import threading

import pytest

from wsgiauth.oauth.single_flight import SingleFlight


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_concurrent_callers_share_one_call():
    flight: SingleFlight[int] = SingleFlight()
    started, release = threading.Event(), threading.Event()
    calls = []

    def slow() -> int:
        calls.append(1)
        started.set()
        release.wait(5)
        return 42

    results = []
    threads = [threading.Thread(target=lambda: results.append(flight.run("k", slow)))]
    threads[0].start()
    started.wait(5)
    threads += [threading.Thread(target=lambda: results.append(flight.run("k", slow)))]
    threads[1].start()
    release.set()
    for thread in threads:
        thread.join(5)
    assert results == [42, 42]
    assert len(calls) == 1


def test_result_is_shared_within_grace_only():
    clock = Clock()
    flight: SingleFlight[int] = SingleFlight(grace=20, clock=clock)
    counter = iter(range(100))
    assert flight.run("k", lambda: next(counter)) == 0
    clock.now += 19
    assert flight.run("k", lambda: next(counter)) == 0
    clock.now += 2
    assert flight.run("k", lambda: next(counter)) == 1


def test_keys_are_independent():
    flight: SingleFlight[str] = SingleFlight()
    assert flight.run("a", lambda: "A") == "A"
    assert flight.run("b", lambda: "B") == "B"


def test_errors_are_not_remembered():
    flight: SingleFlight[int] = SingleFlight()

    def fail() -> int:
        raise RuntimeError("provider down")

    with pytest.raises(RuntimeError):
        flight.run("k", fail)
    assert flight.run("k", lambda: 7) == 7


def test_waiters_get_the_owners_error():
    flight: SingleFlight[int] = SingleFlight()
    started, release = threading.Event(), threading.Event()

    def fail() -> int:
        started.set()
        release.wait(5)
        raise RuntimeError("invalid_grant")

    errors = []

    def call() -> None:
        try:
            flight.run("k", fail)
        except RuntimeError as error:
            errors.append(str(error))

    first = threading.Thread(target=call)
    first.start()
    started.wait(5)
    second = threading.Thread(target=call)
    second.start()
    release.set()
    first.join(5)
    second.join(5)
    assert errors == ["invalid_grant", "invalid_grant"]


def test_memory_is_bounded():
    flight: SingleFlight[int] = SingleFlight(max_entries=3)
    for index in range(10):
        flight.run(str(index), lambda index=index: index)
    assert len(flight._flights) == 3


def test_forget_drops_a_shared_result():
    flight: SingleFlight[int] = SingleFlight()
    counter = iter(range(100))
    assert flight.run("token", lambda: next(counter)) == 0
    flight.forget("token")
    assert flight.run("token", lambda: next(counter)) == 1
