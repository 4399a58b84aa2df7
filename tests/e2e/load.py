"""Background load for the fault tests: threads that send requests and count the outcomes.

A fault test starts a :class:`Load`, adds streams (a name, a ``send`` function and a
number of threads), breaks something while the threads run, and asserts on the
counts: ``load.counts("refresh", phase="down")`` is a ``Counter`` of HTTP statuses,
with the exception's class name (``"ReadTimeout"``, ``"ConnectionError"``) for a
request that got no answer. Every request has the client ``timeout``, so a hang is
counted as a ``ReadTimeout``, never waited out; nothing asserts on wall time.

The load is bounded: each thread stops when the block ends, after ``max_seconds``,
or once the streams have sent ``max_requests`` in all. An outcome belongs to the
phase (:meth:`Load.set_phase`) its request was sent *and* answered in; one that
straddles a change of phase is counted under ``"<before>-><after>"``.

The senders here open a new connection per request (``Connection: close``), so
gunicorn hands consecutive requests to different workers.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType

import requests

#: A request of a stream: given the client timeout, send it and return the response.
Sender = Callable[[float], requests.Response]

#: What the browser client sends with a refresh (spec: the refresh route's CSRF check).
XHR = {"X-Requested-With": "XMLHttpRequest"}
#: A new connection per request: a kept-alive connection stays with one worker.
CLOSE = {"Connection": "close"}


def guest_refresh(auth_url: str) -> Sender:
    """``GET <auth_url>/guest/refresh`` as the browser client sends it, on a new connection."""

    def send(timeout: float) -> requests.Response:
        return requests.get(f"{auth_url}/guest/refresh", headers={**XHR, **CLOSE}, timeout=timeout)

    return send


def jwks_fetch(auth_url: str) -> Sender:
    """``GET <auth_url>/.well-known/jwks.json`` on a new connection."""

    def send(timeout: float) -> requests.Response:
        return requests.get(f"{auth_url}/.well-known/jwks.json", headers=CLOSE, timeout=timeout)

    return send


@dataclass(frozen=True, slots=True)
class Outcome:
    """One request of a stream and what came of it."""

    stream: str
    #: The phase it was sent and answered in, or ``"<sent>-><answered>"``.
    phase: str
    #: The HTTP status, or the class name of the exception that replaced the response.
    status: int | str
    #: None when ``status`` is an exception's name.
    response: requests.Response | None
    #: ``time.monotonic()`` when the answer (or the exception) came.
    received_at: float


class Load:
    """Streams of requests on background threads, until the ``with`` block ends.

    :param timeout: the client timeout of every request (seconds); generous, so that
        only a real hang counts as one on a loaded machine.
    :param max_seconds: every thread stops after this long, block or not.
    :param max_requests: every thread stops once the streams have sent this many.
    """

    def __init__(
        self, *, timeout: float = 20.0, max_seconds: float = 120.0, max_requests: int = 20_000
    ) -> None:
        self.timeout = timeout
        self.max_seconds = max_seconds
        self.max_requests = max_requests
        self.phase = "start"
        self._streams: list[tuple[str, Sender, float]] = []
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._sent = 0
        self._outcomes: list[Outcome] = []
        self._deadline = 0.0
        self._started = False

    def stream(self, name: str, send: Sender, *, threads: int = 1, pause: float = 0.0) -> None:
        """Add ``threads`` threads that call ``send`` in a loop, ``pause`` seconds apart.

        Added to a running load, they start at once.
        """
        for _ in range(threads):
            self._streams.append((name, send, pause))
            if self._started:
                self._start_thread(len(self._streams) - 1)

    def set_phase(self, phase: str) -> None:
        """Count what is sent and answered from now on under ``phase``."""
        with self._lock:
            self.phase = phase

    @property
    def outcomes(self) -> list[Outcome]:
        """Every outcome so far, in the order they came."""
        with self._lock:
            return list(self._outcomes)

    def counts(self, stream: str | None = None, *, phase: str | None = None) -> Counter[int | str]:
        """Statuses of the outcomes of ``stream`` (all by default) in ``phase`` (all by default)."""
        return Counter(
            o.status
            for o in self.outcomes
            if (stream is None or o.stream == stream) and (phase is None or o.phase == phase)
        )

    def wait_for(self, condition: Callable[[], bool], timeout: float, poll: float = 0.1) -> bool:
        """Wait until ``condition()`` holds (True), the load stopped or ``timeout`` passed."""
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() >= deadline or self._stop.is_set():
                return condition()
            time.sleep(poll)
        return True

    # --- running ----------------------------------------------------------------------

    def start(self) -> None:
        """Start every stream's threads."""
        self._deadline = time.monotonic() + self.max_seconds
        self._started = True
        for index in range(len(self._streams)):
            self._start_thread(index)

    def _start_thread(self, index: int) -> None:
        name, send, pause = self._streams[index]
        thread = threading.Thread(
            target=self._run, args=(name, send, pause), name=f"load-{name}-{index}", daemon=True
        )
        self._threads.append(thread)
        thread.start()

    def stop(self) -> None:
        """Stop the threads and wait for their last requests (each bounded by ``timeout``)."""
        self._stop.set()
        for thread in self._threads:
            thread.join(self.timeout + 5)

    def __enter__(self) -> Load:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _take_one(self) -> bool:
        with self._lock:
            if self._sent >= self.max_requests:
                return False
            self._sent += 1
            return True

    def _running(self) -> Iterator[None]:
        while not self._stop.is_set() and time.monotonic() < self._deadline and self._take_one():
            yield None

    def _run(self, name: str, send: Sender, pause: float) -> None:
        for _ in self._running():
            sent_in = self.phase
            response: requests.Response | None
            try:
                response = send(self.timeout)
                status: int | str = response.status_code
            except Exception as exc:  # noqa: BLE001 - counted, as a failure of the stream
                response, status = None, type(exc).__name__
            with self._lock:
                phase = sent_in if sent_in == self.phase else f"{sent_in}->{self.phase}"
                self._outcomes.append(Outcome(name, phase, status, response, time.monotonic()))
            if pause:
                self._stop.wait(pause)
