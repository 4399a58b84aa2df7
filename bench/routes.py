"""Auth routes in process: requests per second per core of ``/start``, ``/refresh``, JWKS.

Single thread, no server: each request is a fresh copy of an environ built
once by ``webob.Request.blank`` (the app writes into its environ), sent
through ``AuthMiddleware(bare_app, auth_app)`` as a deployment would, with a
no-op ``start_response`` and the body iterated and closed. The provider is
:class:`_common.BenchAuthenticator` (no network); the real ``oidc`` provider is
measured too when ``wsgiauth/providers/oidc.py`` exists, its discovery
document served by a canned ``requests`` transport whose call count is printed.
The real ``guest`` provider's ``/refresh`` signs a real ES256 identity token per
request (keys in a memory key store); the JWKS endpoint is measured after one
token was issued, so its key list is not empty.
Every figure comes with the bare trivial app measured the same way in the
same run, and the ratio between them.

``--environ server`` puts what granian puts in every environ (this process's whole
``os.environ`` and a few CGI keys) into each template too: the work that scales
with the size of the environ then shows in process.

Run: ``.venv/bin/python bench/routes.py [--rounds 5] [--seconds 0.4] [--profile start]
[--environ server]``
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import statistics
import sys
import traceback
from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Any

from _common import GUEST_REFRESH_PATH
from _common import JWKS_PATH
from _common import REFRESH_HEADERS
from _common import REFRESH_PATH
from _common import START_PATH
from _common import CannedAdapter
from _common import bare_app
from _common import calibrate
from _common import call
from _common import fmt_int
from _common import make_auth_app
from _common import oidc_available
from _common import refresh_cookie
from _common import time_loop
from webob import Request

from wsgiauth.middleware import AuthMiddleware

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication


@dataclass
class Case:
    """One route to time: the app, an environ template and the status it must answer."""

    name: str
    app: WSGIApplication
    template: dict[str, Any]
    status: str
    adapter: CannedAdapter | None = None

    def once(self) -> None:
        """One request on a fresh environ copy."""
        call(self.app, dict(self.template))


#: Set by ``--environ server``: keys every environ of a granian worker starts with.
SERVER_ENVIRON: dict[str, Any] = {}


def server_environ() -> dict[str, Any]:
    """What granian puts in every environ before the request's keys (granian/wsgi.py)."""
    return {
        **os.environ,
        "GATEWAY_INTERFACE": "CGI/1.1",
        "SCRIPT_NAME": "",
        "SERVER_SOFTWARE": "Granian",
        "wsgi.input_terminated": True,
        "wsgi.multiprocess": False,
        "wsgi.multithread": True,
        "wsgi.run_once": False,
    }


def template(path: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """The environ of ``GET path`` as WebOb builds it (after the server's keys, if set)."""
    return {**SERVER_ENVIRON, **Request.blank(path, headers=headers or {}).environ}


def build_cases() -> tuple[Case, list[Case], list[str]]:
    """The bare-app case, the route cases, and notes on what could not be measured."""
    notes: list[str] = []
    sealed, _ = make_auth_app(secret=True)
    unsealed, _ = make_auth_app(secret=False)
    bare = Case("bare app", bare_app, template("/app/dashboard"), "200 OK")
    cases = [
        Case(
            "start (fake)",
            AuthMiddleware(bare_app, sealed),
            template(START_PATH.format(id="fake")),
            "302 Found",
        ),
        Case(
            "refresh (fake, sealed cookie)",
            AuthMiddleware(bare_app, sealed),
            template(
                REFRESH_PATH.format(id="fake"),
                {**REFRESH_HEADERS, "Cookie": refresh_cookie(secret=True)},
            ),
            "200 OK",
        ),
        Case(
            "refresh (fake, no session secret)",
            AuthMiddleware(bare_app, unsealed),
            template(
                REFRESH_PATH.format(id="fake"),
                {**REFRESH_HEADERS, "Cookie": refresh_cookie(secret=False)},
            ),
            "200 OK",
        ),
        # The guest refresh issues the first token, so the JWKS case below lists its key.
        Case(
            "guest refresh",
            AuthMiddleware(bare_app, sealed),
            template(GUEST_REFRESH_PATH, REFRESH_HEADERS),
            "200 OK",
        ),
        Case("JWKS", AuthMiddleware(bare_app, sealed), template(JWKS_PATH), "200 OK"),
    ]
    if not oidc_available():
        notes.append("oidc: wsgiauth/providers/oidc.py does not exist yet; measured fake only")
    else:
        try:
            oidc_app, adapter = make_auth_app(oidc=True)
            case = Case(
                "start (oidc)",
                AuthMiddleware(bare_app, oidc_app),
                template(START_PATH.format(id="oidc")),
                "302 Found",
                adapter,
            )
            status, _ = call(case.app, dict(case.template))
            if status != case.status:
                raise RuntimeError(f"oidc /start answered {status}")
            cases.append(case)
        except Exception as error:
            traceback.print_exc()
            notes.append(f"oidc: could not be measured ({type(error).__name__}: {error})")
    for case in [bare, *cases]:
        status, headers = call(case.app, dict(case.template))
        if status != case.status:
            raise SystemExit(f"{case.name}: expected {case.status}, got {status} {headers}")
    jwks = Request.blank(JWKS_PATH).get_response(AuthMiddleware(bare_app, sealed))
    if not jwks.json["keys"]:
        raise SystemExit("JWKS: the key list is empty after a token was issued")
    return bare, cases, notes


def measure(bare: Case, cases: list[Case], rounds: int, seconds: float) -> dict[str, list[float]]:
    """Nanoseconds per request, per round, the bare app interleaved with every case."""
    times: dict[str, list[float]] = {case.name: [] for case in [bare, *cases]}
    numbers = {case.name: calibrate(case.once, seconds) for case in [bare, *cases]}
    for _ in range(rounds):
        for case in [bare, *cases]:
            times[case.name].append(time_loop(case.once, numbers[case.name]))
    return times


def profile(case: Case, seconds: float, top: int) -> None:
    """cProfile top entries (own time, then cumulative) for one case."""
    number = calibrate(case.once, seconds)
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(number):
        case.once()
    profiler.disable()
    print(f"\n=== cProfile: {case.name}, {number:,} requests ===")
    for key in ("tottime", "cumulative"):
        stats = pstats.Stats(profiler, stream=sys.stdout)
        stats.strip_dirs().sort_stats(key).print_stats(top)


def main(argv: list[str] | None = None) -> int:
    """Print req/s per route with its ratio to the bare app."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=0.4, help="per case per round")
    parser.add_argument(
        "--profile", metavar="NAME", help="also cProfile the cases whose name contains NAME"
    )
    parser.add_argument("--top", type=int, default=18, help="profile entries to print")
    parser.add_argument(
        "--environ",
        choices=["blank", "server"],
        default="blank",
        help="blank: WebOb's environ; server: with granian's keys and os.environ too",
    )
    args = parser.parse_args(argv)
    if args.environ == "server":
        SERVER_ENVIRON.update(server_environ())

    bare, cases, notes = build_cases()
    for case in cases:
        if case.adapter is not None:
            case.adapter.calls.clear()  # discovery at startup and in the check call is fine
    times = measure(bare, cases, args.rounds, args.seconds)
    bare_rps = [1e9 / ns for ns in times[bare.name]]
    print(
        f"python {sys.version.split()[0]}, single thread, median of {args.rounds} rounds, "
        f"{args.environ} environ ({len(bare.template)} keys)"
    )
    print(f"bare app: {fmt_int(statistics.median(bare_rps))} req/s")
    for case in cases:
        rps = [1e9 / ns for ns in times[case.name]]
        ratio = statistics.median(r / b for r, b in zip(rps, bare_rps, strict=True))
        line = (
            f"{case.name}: {fmt_int(statistics.median(rps))} req/s "
            f"({statistics.median(times[case.name]) / 1000:.1f} us/request; "
            f"bare app: {fmt_int(statistics.median(bare_rps))} req/s, ratio {ratio:.4f})"
        )
        if case.adapter is not None:
            line += f"; IdP calls while timed: {len(case.adapter.calls)}"
        print(line)
    for note in notes:
        print(f"note: {note}")
    if args.profile:
        chosen: list[Case] = [c for c in cases if args.profile in c.name]
        for case in chosen:
            profile(case, 1.0, args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
