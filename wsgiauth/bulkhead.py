"""A cap on concurrent outbound calls to one identity provider: the bulkhead.

A WSGI worker has a few threads (gunicorn gthread: 4, ``wsgiauth serve``: 8).
When one provider turns slow, every sign-in and refresh for it holds a thread
for the whole outbound call, and soon no thread is left for anything else:
JWKS, other providers, the wrapped app. A :class:`Bulkhead` gives each provider
a fixed number of slots (by default half the server's threads, see
:func:`default_limit`); a call that finds them all taken fails at once with a
:class:`~wsgiauth.errors.ServiceUnavailableError` (a 503 in Backstage's error
shape, with ``Retry-After: 1``) instead of queueing. A slow provider then costs
at most its slots, and the other threads keep serving. It never waits for a
slot: a queue of waiting threads is exactly the starvation it exists to stop.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from .errors import ServiceUnavailableError

__all__ = ["THREADS_ENV", "Bulkhead", "default_limit"]

#: Threads per process serving requests; ``wsgiauth serve`` and
#: ``examples/gunicorn.conf.py`` set it for their workers.
THREADS_ENV = "WSGIAUTH_THREADS"
#: The ``Retry-After`` of a refused call: slots free as calls end, within the
#: outbound timeouts (:mod:`wsgiauth.http`).
RETRY_AFTER_SECONDS = 1
#: The thread count assumed when the server does not say (half of it is the limit).
_UNKNOWN_THREADS = 8


def default_limit(threads: int | None = None) -> int:
    """Half the threads of one process (at least 1): the slots of one provider.

    :param threads: the server's threads per process; default ``$WSGIAUTH_THREADS``,
        else 8.
    """
    if threads is None:
        raw = os.environ.get(THREADS_ENV, "")
        threads = int(raw) if raw.isdigit() and int(raw) > 0 else _UNKNOWN_THREADS
    return max(1, threads // 2)


class Bulkhead:
    """At most ``limit`` calls at once through :meth:`slot`; the next one fails fast.

    :param name: what the calls go to (a provider id), for the error message.
    :param limit: how many calls may be in flight at once in this process.
    """

    def __init__(self, name: str, limit: int) -> None:
        if limit < 1:
            raise ValueError("a bulkhead needs at least one slot")
        self.name = name
        self.limit = limit
        self._slots = threading.BoundedSemaphore(limit)
        self._lock = threading.Lock()
        self._in_flight = 0
        #: Calls refused because every slot was taken, since startup.
        self.rejected = 0

    @property
    def in_flight(self) -> int:
        """Calls holding a slot now."""
        return self._in_flight

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one slot for the ``with`` block, or raise ``ServiceUnavailableError`` now."""
        if not self._slots.acquire(blocking=False):
            with self._lock:
                self.rejected += 1
            raise ServiceUnavailableError(
                f"Identity provider {self.name} is busy: {self.limit} calls to it are "
                "already in flight, try again shortly",
                retry_after=RETRY_AFTER_SECONDS,
            )
        with self._lock:
            self._in_flight += 1
        try:
            yield
        finally:
            with self._lock:
                self._in_flight -= 1
            self._slots.release()
