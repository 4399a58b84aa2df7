"""Side by side in one run: the bare app and wsgiauth under the same server, granian and gunicorn.

For each server (granian ``--interface wsgi``, gunicorn ``gthread``) five
one-worker servers run at once, all pinned to the same CPU: the bare trivial app
twice (the *control pair*: bare against bare, so the noise of the host is in the
printout), the app behind ``AuthMiddleware`` for pass-through only, the app
behind ``AuthMiddleware`` for the auth routes, and a trivial app that answers
JWKS's exact bytes (``bench/apps.py``). ``wrk -t2
-c16 --latency`` runs on the other CPU, on 127.0.0.1. Each load's ``--duration``
is cut into ``--rounds`` slices; the slices of every load of both servers are
interleaved, and the best slice is kept (other load on a shared host only ever
slows a slice down). Printed per server: req/s, p50 and p99 of the best slice,
the ratio to the first bare server, the spread of the slices, and each worker's
resident memory (``VmRSS`` from ``/proc``, after the load).

Loads: bare app, bare app (control), pass-through (a path outside ``/api/auth``
through ``AuthMiddleware``), guest ``/refresh`` (a real ES256 token per
request), oidc ``/start`` (the real ``oidc`` provider on the canned IdP of
``bench/_common.py``), JWKS, and JWKS's answer from the trivial app: what the
server itself spends on JWKS's six headers and body, so JWKS over it is what
wsgiauth adds.

Needs ``wrk`` and granian (``pip install granian``; without it only gunicorn is
measured). Everything binds 127.0.0.1; servers are stopped at the end, also on error.

``--threads`` takes a list (``--threads 1,4``), and so does ``--switch-interval``
(``default,1``, in ms, set by ``bench/apps.py`` in each worker): each server kind then
runs once per combination, its five servers each, all interleaved in one run, so their
effect is measured against the same noise.

Run: ``.venv/bin/python bench/serve_compare.py [--duration 10] [--rounds 5]
[--servers granian,gunicorn] [--threads 4]``
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path

from _common import GUEST_REFRESH_PATH
from _common import JWKS_PATH
from _common import REFRESH_HEADERS
from _common import START_PATH
from _common import fmt_int
from _common import oidc_available
from server import OUTSIDE
from server import Result as Slice
from server import _has_control_socket
from server import _pinned
from server import check_guest_token
from server import cpu_split
from server import free_port
from server import get_status
from server import run_wrk

BENCH_DIR = Path(__file__).resolve().parent
SERVERS = ("granian", "gunicorn")


@dataclass(frozen=True)
class Load:
    """One row: which server process (by role) gets which request."""

    name: str
    role: str
    path: str
    status: int
    headers: tuple[tuple[str, str], ...] = ()


def loads() -> list[Load]:
    """The rows of the table, in order; the first is the baseline of every ratio."""
    found = [
        Load("bare app", "bare", OUTSIDE, 200),
        Load("bare app (control)", "control", OUTSIDE, 200),
        Load("pass-through", "passing", OUTSIDE, 200),
        Load("guest refresh", "wrapped", GUEST_REFRESH_PATH, 200, tuple(REFRESH_HEADERS.items())),
    ]
    if oidc_available():
        found.append(Load("oidc /start", "wrapped", START_PATH.format(id="oidc"), 302))
    found.append(Load("JWKS", "wrapped", JWKS_PATH, 200))
    found.append(Load("JWKS's answer, bare", "shaped", OUTSIDE, 200))
    return found


#: Server role → the ``apps`` factory it serves.
ROLES = {
    "bare": "bare",
    "control": "bare",
    "passing": "wrapped",
    "wrapped": "wrapped",
    "shaped": "jwks_shaped",
}


#: A server kind and its thread count: one table of the printout.
#: A server kind, its thread count and its GIL switch interval in ms (None: Python's).
Setup = tuple[str, int, float | None]


class Server:
    """One server (granian or gunicorn) with one worker, serving ``apps:<factory>()``."""

    def __init__(
        self,
        kind: str,
        threads: int,
        switch_interval: float | None,
        factory: str,
        args: argparse.Namespace,
    ) -> None:
        self.kind = kind
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        if kind == "granian":
            command = [
                sys.executable, "-m", "granian",
                "--interface", "wsgi", "--workers", "1",
                "--blocking-threads", str(threads),
                "--host", "127.0.0.1", "--port", str(self.port),
                "--log-level", "warning", "--no-access-log",
                "--factory", f"apps:{factory}",
            ]  # fmt: skip
        else:
            command = [
                sys.executable, "-m", "gunicorn",
                "-w", "1", "-k", "gthread", "--threads", str(threads),
                "-b", f"127.0.0.1:{self.port}",
                "--log-level", "warning", "--timeout", "60",
            ]  # fmt: skip
            if _has_control_socket():
                # gunicorn >= 24 opens ~/.gunicorn/gunicorn.ctl; two masters would fight over it.
                command.append("--no-control-socket")
            command.append(f"apps:{factory}()")
        path = [str(BENCH_DIR), *filter(None, [os.environ.get("PYTHONPATH")])]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
        if switch_interval is not None:
            env["BENCH_SWITCH_INTERVAL_MS"] = str(switch_interval)  # read by apps.py
        self.process = subprocess.Popen(
            command, cwd=BENCH_DIR.parent, env=env, preexec_fn=_pinned(args.server_cpus)
        )
        self._worker: int | None = None

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Block until the server answers, or fail."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.kind} exited with {self.process.returncode}")
            try:
                get_status(self.url + OUTSIDE)
                self._worker = self.worker_pid()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"{self.kind} on {self.url} not ready after {timeout} s")

    def worker_pid(self) -> int:
        """The pid of the single worker (the main process's only child)."""
        pid = self.process.pid
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        if len(children) != 1:
            raise RuntimeError(f"expected one {self.kind} worker, found {children}")
        return int(children[0])

    def rss_mb(self) -> float:
        """The worker's ``VmRSS`` in MB."""
        status = Path(f"/proc/{self.worker_pid()}/status").read_text()
        found = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
        if found is None:
            raise RuntimeError(f"no VmRSS for the {self.kind} worker")
        return int(found.group(1)) / 1024

    def stop(self) -> None:
        """SIGTERM the main process; kill it (and its worker) if it does not stop in 10 s."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        if self._worker is not None:
            with contextlib.suppress(ProcessLookupError):
                if Path(f"/proc/{self._worker}").exists():
                    os.kill(self._worker, signal.SIGKILL)


@contextlib.contextmanager
def started(
    setups: list[Setup], args: argparse.Namespace
) -> Iterator[dict[tuple[Setup, str], Server]]:
    """``(setup, role)`` → a running server; all stopped on the way out."""
    running: dict[tuple[Setup, str], Server] = {}
    try:
        for setup in setups:
            for role, factory in ROLES.items():
                running[setup, role] = Server(*setup, factory, args)
        for server in running.values():
            server.wait_ready()
        yield running
    finally:
        for server in running.values():
            server.stop()


@dataclass
class Row:
    """Every slice of one load on one server."""

    slices: list[Slice] = field(default_factory=list)

    def best(self) -> Slice:
        """The slice with the most req/s."""
        return max(self.slices, key=lambda s: s.rps)


def bench(
    setups: list[Setup], args: argparse.Namespace
) -> tuple[dict[tuple[Setup, str], Row], dict[tuple[Setup, str], float]]:
    """Every load on every server, slices interleaved; then each worker's RSS."""
    rows: dict[tuple[Setup, str], Row] = {}
    with started(setups, args) as running:
        plan = [(setup, load) for setup in setups for load in loads()]
        for setup in setups:
            check_guest_token(running[setup, "wrapped"].url)
        for setup, load in plan:
            url = running[setup, load.role].url + load.path
            got = get_status(url, load.headers)
            if got != load.status:
                raise RuntimeError(
                    f"{setup}: GET {load.path} answered {got}, expected {load.status}"
                )
            rows[setup, load.name] = Row()
        for round_ in range(args.rounds):
            # Alternate the order of the servers from round to round.
            for setup, load in plan if round_ % 2 == 0 else plan[::-1]:
                url = running[setup, load.role].url + load.path
                rows[setup, load.name].slices.append(
                    run_wrk(
                        url,
                        load.headers,
                        threads=args.wrk_threads,
                        connections=args.connections,
                        seconds=args.slice,
                        client_cpus=args.client_cpus,
                    )
                )
        rss = {key: server.rss_mb() for key, server in running.items()}
    return rows, rss


def report(
    setups: list[Setup],
    rows: dict[tuple[Setup, str], Row],
    rss: dict[tuple[Setup, str], float],
    args: argparse.Namespace,
) -> None:
    """Print one table per server kind and thread count."""
    kinds = list(dict.fromkeys(kind for kind, *_ in setups))
    versions = ", ".join(f"{kind} {importlib.metadata.version(kind)}" for kind in kinds)
    threads = ",".join(str(t) for t in args.thread_counts)
    print(
        f"1 worker per server on 127.0.0.1 ({versions}; granian --interface wsgi "
        f"--blocking-threads {threads}, gunicorn -k gthread --threads {threads}); "
        f"wrk -t{args.wrk_threads} -c{args.connections} --latency; per load the best of "
        f"{args.rounds} interleaved {args.slice}-s slices"
    )
    if args.server_cpus is None:
        print("servers and wrk share the only CPU: figures are lower than per-core")
    else:
        print(f"servers pinned to CPU {args.server_cpus}, wrk to CPUs {args.client_cpus}")
    names = [load.name for load in loads()]
    roles = {load.name: load.role for load in loads()}
    for setup in setups:
        kind, count, switch = setup
        print()
        label = "granian (wsgi)" if kind == "granian" else "gunicorn gthread"
        if len(args.thread_counts) > 1:
            label += f", {count} thr"
        if switch is not None:
            label += f", switch {switch:g} ms"
        print(
            f"{label:<20}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'vs bare':>9}"
            f"{'slices req/s':>20}{'RSS MB':>9}"
        )
        base = rows[setup, names[0]].best().rps
        for name in names:
            row = rows[setup, name]
            best = row.best()
            low, high = min(s.rps for s in row.slices), max(s.rps for s in row.slices)
            spread = f"{fmt_int(low)}..{fmt_int(high)}"
            print(
                f"{name:<20}{fmt_int(best.rps):>9}{best.p50_ms:>9.2f}{best.p99_ms:>9.2f}"
                f"{best.rps / base:>9.3f}{spread:>20}{rss[setup, roles[name]]:>9.1f}"
            )
        for name in names:
            errors = {s.errors for s in rows[setup, name].slices if s.errors}
            if errors:
                print(f"  {name}: {'; '.join(sorted(errors))}")
    print()
    print(
        "vs bare = best req/s / best req/s of the first bare server of the same table; "
        "the control row is bare against bare (the noise of the host). RSS: the worker serving "
        "the row (guest refresh, oidc /start and JWKS share one), read after the load."
    )


def main(argv: list[str] | None = None) -> int:
    """Print the side-by-side tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds of load per row")
    parser.add_argument("--rounds", type=int, default=5, help="slices per row, interleaved")
    parser.add_argument("--servers", default=",".join(SERVERS), help="granian,gunicorn")
    parser.add_argument(
        "--threads", default="4", help="granian blocking / gthread threads; a list: 1,4"
    )
    parser.add_argument(
        "--switch-interval",
        default="default",
        metavar="MS",
        help="the workers' GIL switch interval in ms (sys.setswitchinterval); a list: default,1",
    )
    parser.add_argument("--wrk-threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("serve_compare.py needs wrk: apt-get install -y wrk (Debian/Ubuntu)", file=sys.stderr)
        return 2
    kinds = [kind for kind in args.servers.split(",") if kind]
    unknown = set(kinds) - set(SERVERS)
    if unknown:
        parser.error(f"unknown servers: {sorted(unknown)}")
    if "granian" in kinds and importlib.util.find_spec("granian") is None:
        print("granian is not installed (pip install granian): measuring gunicorn only")
        kinds.remove("granian")
    if not kinds:
        return 2
    try:
        args.thread_counts = [int(t) for t in args.threads.split(",") if t]
    except ValueError:
        parser.error(f"--threads: whole numbers separated by commas, not {args.threads!r}")
    if not args.thread_counts or min(args.thread_counts) < 1:
        parser.error("--threads: at least one count, each at least 1")
    try:
        switches = [
            float(ms) if ms != "default" else None for ms in args.switch_interval.split(",")
        ]
    except ValueError:
        parser.error(
            f"--switch-interval: ms or 'default', comma-separated: {args.switch_interval!r}"
        )
    setups = [
        (kind, count, switch)
        for kind in kinds
        for count in args.thread_counts
        for switch in switches
    ]
    args.server_cpus, args.client_cpus = cpu_split()
    args.slice = max(1, round(args.duration / args.rounds))
    rows, rss = bench(setups, args)
    report(setups, rows, rss, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
