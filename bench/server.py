"""Real-server throughput: gunicorn, one worker, loaded by ``wrk`` on 127.0.0.1.

For each worker class (``sync`` and ``gthread``) two gunicorn servers run side
by side: the bare trivial app and the same app behind ``AuthMiddleware`` with
stubbed providers, the real ``guest`` provider and a memory key store
(``bench/apps.py``). ``wrk`` loads each endpoint with a bounded number of
connections; each endpoint's ``--duration`` is cut into ``--rounds`` slices, the
slices of all endpoints are interleaved, and the best slice is kept (other load on
a shared host only ever slows a slice down). With two or more CPUs the server is
pinned to one CPU and ``wrk`` to the others, so the figures are per core. Before
the load, a guest token is fetched and verified with PyJWT against the server's
JWKS, so the JWKS endpoint lists a key. Printed: req/s and p99 latency per
endpoint, the pass-through ratio, which worker class is faster, and the worker's
resident memory (``VmRSS`` and peak ``VmHWM`` from ``/proc``).

Needs ``wrk`` (Debian/Ubuntu: ``apt-get install -y wrk``; macOS: ``brew install wrk``).
Everything binds 127.0.0.1; servers are stopped at the end, also on error.

Run: ``.venv/bin/python bench/server.py [--duration 5] [--threads 2] [--connections 16]
[--workers sync,gthread]``
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import jwt
from _common import BACKEND
from _common import GUEST_REFRESH_PATH
from _common import JWKS_PATH
from _common import REFRESH_HEADERS
from _common import REFRESH_PATH
from _common import START_PATH
from _common import fmt_int
from _common import oidc_available
from _common import refresh_cookie

BENCH_DIR = Path(__file__).resolve().parent
OUTSIDE = "/app/dashboard"


@dataclass(frozen=True)
class Endpoint:
    """One URL path to load, its headers, the status it must answer and its target."""

    name: str
    path: str
    status: int
    headers: tuple[tuple[str, str], ...] = ()
    target: str = ""


@dataclass(frozen=True)
class Result:
    """What ``wrk`` measured."""

    rps: float
    p50_ms: float
    p99_ms: float
    errors: str


def endpoints() -> list[Endpoint]:
    """The routes loaded on the wrapped server (pass-through is measured separately)."""
    refresh_headers = (*REFRESH_HEADERS.items(), ("Cookie", refresh_cookie()))
    found = [
        Endpoint("/start (fake)", START_PATH.format(id="fake"), 302, (), "oidc /start >= 4000"),
        Endpoint("/refresh (fake)", REFRESH_PATH.format(id="fake"), 200, refresh_headers),
        Endpoint(
            "guest refresh", GUEST_REFRESH_PATH, 200, tuple(REFRESH_HEADERS.items()), ">= 3000"
        ),
        Endpoint("JWKS", JWKS_PATH, 200, (), ">= 5500"),
    ]
    if oidc_available():
        found.append(Endpoint("/start (oidc)", START_PATH.format(id="oidc"), 302, (), ">= 4000"))
    return found


def cpu_split() -> tuple[set[int] | None, set[int] | None]:
    """CPUs for the server and for ``wrk``: apart when there are two or more, else shared."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None, None
    return {cpus[0]}, set(cpus[1:])


def _pinned(cpus: set[int] | None) -> Callable[[], None] | None:
    """A ``preexec_fn`` that pins the child (and what it forks) to ``cpus``."""
    if cpus is None:
        return None
    return lambda: os.sched_setaffinity(0, cpus)


@functools.cache
def _has_control_socket() -> bool:
    help_text = subprocess.run(
        [sys.executable, "-m", "gunicorn", "--help"], capture_output=True, text=True, check=True
    ).stdout
    return "--no-control-socket" in help_text


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def get_status(url: str, headers: tuple[tuple[str, str], ...] = ()) -> int:
    """The status of ``GET url`` (redirects not followed)."""
    request = urllib.request.Request(url, headers=dict(headers))
    try:
        with _OPENER.open(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def get_json(url: str, headers: tuple[tuple[str, str], ...] = ()) -> dict[str, object]:
    """The JSON body of ``GET url``, which must answer 200."""
    request = urllib.request.Request(url, headers=dict(headers))
    with _OPENER.open(request, timeout=5) as response:
        body: dict[str, object] = json.load(response)
        return body


def check_guest_token(server_url: str) -> None:
    """A guest ``/refresh`` token verifies with PyJWT against the server's JWKS.

    Run before the load: it is also what makes the JWKS endpoint list a key.
    """
    answer = get_json(server_url + GUEST_REFRESH_PATH, tuple(REFRESH_HEADERS.items()))
    identity = answer["backstageIdentity"]
    if not isinstance(identity, dict):
        raise RuntimeError(f"guest /refresh answered {answer}")
    token = identity["token"]
    keys = get_json(server_url + JWKS_PATH)["keys"]
    if not isinstance(keys, list) or not keys:
        raise RuntimeError(f"JWKS lists no key after a token was issued: {keys}")
    kid = jwt.get_unverified_header(token)["kid"]
    key = next(jwt.PyJWK(k) for k in keys if k["kid"] == kid)
    jwt.decode(token, key, algorithms=["ES256"], audience="backstage", issuer=f"{BACKEND}/api/auth")


class Server:
    """One gunicorn master with one worker, serving ``apps:<factory>()`` on 127.0.0.1."""

    def __init__(self, factory: str, worker: str, threads: int, cpus: set[int] | None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [
            sys.executable, "-m", "gunicorn",
            "-w", "1", "-k", worker,
            "-b", f"127.0.0.1:{self.port}",
            "--pythonpath", str(BENCH_DIR),
            "--log-level", "warning",
            "--timeout", "60",
        ]  # fmt: skip
        if worker == "gthread":
            command += ["--threads", str(threads)]
        if _has_control_socket():
            # gunicorn >= 24 opens ~/.gunicorn/gunicorn.ctl; two masters would fight over it.
            command.append("--no-control-socket")
        command.append(f"apps:{factory}()")
        self.process = subprocess.Popen(command, cwd=BENCH_DIR.parent, preexec_fn=_pinned(cpus))

    def wait_ready(self, timeout: float = 20.0) -> None:
        """Block until the server answers, or fail."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}")
            try:
                get_status(self.url + OUTSIDE)
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"gunicorn on {self.url} not ready after {timeout} s")

    def worker_pid(self) -> int:
        """The pid of the single worker (the master's child)."""
        pid = self.process.pid
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        if len(children) != 1:
            raise RuntimeError(f"expected one gunicorn worker, found {children}")
        return int(children[0])

    def memory_mb(self) -> tuple[float, float]:
        """The worker's ``VmRSS`` and ``VmHWM`` (peak) in MB."""
        status = Path(f"/proc/{self.worker_pid()}/status").read_text()
        values = dict(re.findall(r"^(VmRSS|VmHWM):\s+(\d+) kB", status, re.MULTILINE))
        return int(values["VmRSS"]) / 1024, int(values["VmHWM"]) / 1024

    def stop(self) -> None:
        """Stop this master (and so its worker); kill it if it does not stop in 10 s."""
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)


@contextlib.contextmanager
def servers(
    worker: str, threads: int, cpus: set[int] | None
) -> Iterator[tuple[Server, Server, Server]]:
    """The bare server, a wrapped one for pass-through only, and a wrapped one for the
    auth routes; all stopped on the way out whatever happens.

    Pass-through gets its own wrapped server so that the heap the auth routes grow
    (and the garbage collection it costs) is not charged to the middleware.
    """
    started: list[Server] = []
    try:
        for factory in ("bare", "wrapped", "wrapped"):
            started.append(Server(factory, worker, threads, cpus))
        for server in started:
            server.wait_ready()
        yield started[0], started[1], started[2]
    finally:
        for server in started:
            server.stop()


_LATENCY = re.compile(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\b", re.MULTILINE)
_SCALE = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def parse_wrk(output: str) -> Result:
    """Requests/sec, p50 and p99 (ms) and any error lines from ``wrk --latency``."""
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.MULTILINE)
    latency = {
        m.group(1): float(m.group(2)) * _SCALE[m.group(3)] for m in _LATENCY.finditer(output)
    }
    if rps is None or set(latency) != {"50", "99"}:
        raise RuntimeError(f"cannot parse wrk output:\n{output}")
    errors = "; ".join(
        line.strip()
        for line in output.splitlines()
        if line.strip().startswith(("Socket errors", "Non-2xx"))
    )
    return Result(float(rps.group(1)), latency["50"], latency["99"], errors)


def run_wrk(
    url: str,
    headers: tuple[tuple[str, str], ...],
    *,
    threads: int,
    connections: int,
    seconds: int,
    client_cpus: set[int] | None,
) -> Result:
    """Load ``url`` for ``seconds``; ``wrk`` is killed if it overruns."""
    command = [
        "wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s",
        "--latency", "--timeout", "5s",
    ]  # fmt: skip
    for name, value in headers:
        command += ["-H", f"{name}: {value}"]
    command.append(url)
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=seconds + 30,
        check=True,
        preexec_fn=_pinned(client_cpus),
    )
    return parse_wrk(done.stdout)


@dataclass(frozen=True)
class WorkerFigures:
    """Every figure for one worker class."""

    #: Endpoint name → its best slice.
    best: dict[str, Result]
    #: Endpoint name → req/s of every slice, to show the noise.
    slices: dict[str, list[float]]
    #: ``(VmRSS, VmHWM)`` in MB of the wrapped app's worker and of the bare app's.
    rss: tuple[float, float]
    bare_rss: tuple[float, float]


def bench_worker(worker: str, args: argparse.Namespace) -> WorkerFigures:
    """Load every endpoint of both servers: best slice per endpoint, slices interleaved."""
    with servers(worker, args.gthreads, args.server_cpus) as (bare, passing, wrapped):
        check_guest_token(wrapped.url)
        loads = [
            ("bare app", bare, OUTSIDE, 200, ()),
            ("pass-through", passing, OUTSIDE, 200, ()),
            *((e.name, wrapped, e.path, e.status, e.headers) for e in endpoints()),
        ]
        for _, server, path, status, headers in loads:
            got = get_status(server.url + path, headers)
            if got != status:
                raise RuntimeError(f"{worker}: GET {path} answered {got}, expected {status}")
        best: dict[str, Result] = {}
        slices: dict[str, list[float]] = {name: [] for name, *_ in loads}
        for _ in range(args.rounds):
            for name, server, path, _, headers in loads:
                result = run_wrk(
                    server.url + path,
                    headers,
                    threads=args.threads,
                    connections=args.connections,
                    seconds=args.slice,
                    client_cpus=args.client_cpus,
                )
                slices[name].append(result.rps)
                if name not in best or result.rps > best[name].rps:
                    best[name] = result
        return WorkerFigures(best, slices, wrapped.memory_mb(), bare.memory_mb())


def report(results: dict[str, WorkerFigures], args: argparse.Namespace) -> None:
    """Print the table, the pass-through ratio, the worker comparison and memory."""
    workers = list(results)
    print(
        f"gunicorn 1 worker on 127.0.0.1, wrk -t{args.threads} -c{args.connections} --latency; "
        f"gthread --threads {args.gthreads}; per endpoint the best of {args.rounds} "
        f"interleaved {args.slice}-s slices (a shared host only ever slows a slice down)"
    )
    if args.server_cpus is None:
        print("server and wrk share the only CPU: figures are lower than per-core")
    else:
        print(f"server pinned to CPU {args.server_cpus}, wrk to CPUs {args.client_cpus}")
    rows = ["bare app", "pass-through", *(e.name for e in endpoints())]
    targets = {"pass-through": "ratio >= 0.97", **{e.name: e.target for e in endpoints()}}
    header = f"{'endpoint':<18}" + "".join(f"{w + ' req/s':>15}{'p99 ms':>9}" for w in workers)
    print(f"{header}   target")
    for row in rows:
        line = f"{row:<18}"
        for worker in workers:
            result = results[worker].best[row]
            line += f"{fmt_int(result.rps):>15}{result.p99_ms:>9.2f}"
        print(f"{line}   {targets.get(row, '')}".rstrip())
    for worker, figures in results.items():
        ratio = figures.best["pass-through"].rps / figures.best["bare app"].rps
        verdict = "meets" if ratio >= 0.97 else "MISSES"
        spread = ", ".join(
            f"{name} {fmt_int(min(figures.slices[name]))}..{fmt_int(max(figures.slices[name]))}"
            for name in ("bare app", "pass-through")
        )
        print(
            f"{worker}: pass-through/bare = {ratio:.3f} (target >= 0.97: {verdict}; "
            f"req/s over the slices: {spread})"
        )
        for row in rows:
            if figures.best[row].errors:
                print(f"  {worker} {row}: {figures.best[row].errors}")
    if len(workers) == 2:
        first, second = workers
        speedups = [results[second].best[row].rps / results[first].best[row].rps for row in rows]
        mean = statistics.geometric_mean(speedups)
        wins = sum(speedup > 1 for speedup in speedups)
        print(
            f"{second} vs {first}: {mean:.2f}x geometric mean over the {len(rows)} endpoints, "
            f"faster on {wins}; faster worker class: {second if mean > 1 else first}"
        )
    for worker, figures in results.items():
        rss, peak = figures.rss
        verdict = "meets" if peak < 60 else "MISSES"
        print(
            f"{worker} worker memory: RSS {rss:.1f} MB, peak {peak:.1f} MB "
            f"(bare app worker {figures.bare_rss[0]:.1f} MB; target < 60 MB: {verdict})"
        )


def main(argv: list[str] | None = None) -> int:
    """Print the throughput table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=5, help="seconds of load per endpoint")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections")
    parser.add_argument("--gthreads", type=int, default=4, help="threads of the gthread worker")
    parser.add_argument(
        "--rounds", type=int, default=5, help="slices the duration is cut into, interleaved"
    )
    parser.add_argument(
        "--workers", default="sync,gthread", help="gunicorn worker classes to compare"
    )
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print(
            "server.py needs wrk: apt-get install -y wrk (Debian/Ubuntu), brew install wrk (macOS)",
            file=sys.stderr,
        )
        return 2

    args.server_cpus, args.client_cpus = cpu_split()
    args.slice = max(1, round(args.duration / args.rounds))
    results = {worker: bench_worker(worker, args) for worker in args.workers.split(",")}
    report(results, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
