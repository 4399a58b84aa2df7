"""One provider refresh per refresh token at a time, shared by the callers that race it.

Identity providers that rotate refresh tokens accept each one once. When two
tabs (or a page and its API calls) refresh at the same moment with the same
cookie, the second exchange fails with ``invalid_grant`` and the user looks
logged out. Here the first caller refreshes; callers that arrive while it runs,
or within a short grace window after, get its result (and so the new refresh
token). This holds within one process; :mod:`wsgiauth.oauth.shared_refresh` puts
it in front of the database's refresh flights
(:mod:`wsgiauth.identity.refresh_flights`, same grace and wait), so that the
threads of a process make one flight and the processes and hosts one exchange.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from typing import Generic
from typing import TypeVar

from ..types import REFRESH_GRACE_SECONDS
from ..types import REFRESH_WAIT_SECONDS

__all__ = ["SingleFlight"]

T = TypeVar("T")

#: The same grace and wait in every process (``wsgiauth.types``).
DEFAULT_GRACE_SECONDS = REFRESH_GRACE_SECONDS
WAIT_SECONDS = REFRESH_WAIT_SECONDS


@dataclass(slots=True)
class _Flight(Generic[T]):
    done: threading.Event = field(default_factory=threading.Event)
    result: T | None = None
    error: BaseException | None = None
    finished_at: float = 0.0


class SingleFlight(Generic[T]):
    """Deduplicates calls by key; results live for ``grace`` seconds, errors not at all."""

    def __init__(
        self,
        *,
        grace: float = DEFAULT_GRACE_SECONDS,
        max_entries: int = 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.grace = grace
        self.max_entries = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._flights: OrderedDict[str, _Flight[T]] = OrderedDict()

    def run(self, key: str, call: Callable[[], T]) -> T:
        """``call()``, unless a call with the same ``key`` is running or just finished."""
        key = _digest(key)
        with self._lock:
            flight = self._flights.get(key)
            now = self._clock()
            if (
                flight is not None
                and flight.done.is_set()
                and (flight.error is not None or now - flight.finished_at > self.grace)
            ):
                del self._flights[key]
                flight = None
            owner = flight is None
            if flight is None:
                flight = self._flights[key] = _Flight()
                while len(self._flights) > self.max_entries:
                    self._flights.popitem(last=False)
        if not owner:
            if flight.done.wait(WAIT_SECONDS) and flight.error is None:
                return flight.result  # type: ignore[return-value]
            if flight.error is not None:
                raise flight.error
            return call()  # the other caller hung: try on our own
        try:
            flight.result = call()
            return flight.result
        except BaseException as error:
            flight.error = error
            raise
        finally:
            flight.finished_at = self._clock()
            flight.done.set()

    def forget(self, key: str) -> None:
        """Drop a finished result, so nobody is handed it any more (e.g. after logout)."""
        with self._lock:
            self._flights.pop(_digest(key), None)


def _digest(key: str) -> str:
    """Keys are refresh tokens: keep only their hash."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()
