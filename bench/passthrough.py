"""Pass-through cost of ``AuthMiddleware``, in process: a request outside the auth path.

Times ``AuthMiddleware(bare_app, auth_app)`` against ``bare_app`` itself on
the same prebuilt environ (the pass-through path neither reads nor changes
it), calling the WSGI callables directly with a no-op ``start_response`` and
iterating the result as a server would. The two are interleaved over several
rounds; each round gives a ratio and the median ratio is reported, with the
per-call times. A do-nothing Python wrapper (``lambda e, s: app(e, s)``) is
timed too: it is the floor for any WSGI middleware written in Python.

Run: ``.venv/bin/python bench/passthrough.py [--rounds 15] [--seconds 0.2]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import timeit
from typing import TYPE_CHECKING
from typing import Any
from wsgiref.util import setup_testing_defaults

from _common import OUTSIDE_PATH
from _common import bare_app
from _common import calibrate
from _common import call
from _common import make_auth_app
from _common import noop_start_response

from wsgiauth.middleware import AuthMiddleware

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

TARGET = 1.05


def environ_for(path: str) -> dict[str, Any]:
    """A complete test environ for ``GET path``."""
    route, _, query = path.partition("?")
    environ: dict[str, Any] = {"PATH_INFO": route, "QUERY_STRING": query}
    setup_testing_defaults(environ)
    return environ


def per_call_ns(app: WSGIApplication, environ: dict[str, Any], number: int) -> float:
    """Nanoseconds per request: call the app, iterate its body (what a server does at least)."""
    timer = timeit.Timer(
        "for _ in app(environ, start_response): pass",
        globals={"app": app, "environ": environ, "start_response": noop_start_response},
    )
    return timer.timeit(number) * 1e9 / number


def main(argv: list[str] | None = None) -> int:
    """Print the middleware/bare ratio and the per-call times."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--seconds", type=float, default=0.2, help="per app per round")
    args = parser.parse_args(argv)

    auth_app, _ = make_auth_app()
    middleware = AuthMiddleware(bare_app, auth_app)

    def noop_wrapper(environ: Any, start_response: Any) -> Any:
        return bare_app(environ, start_response)

    environ = environ_for(OUTSIDE_PATH)
    # The pass-through path must not touch the environ: that is what lets one dict be reused.
    before = dict(environ)
    assert call(middleware, environ)[0] == "200 OK"
    assert environ == before, "AuthMiddleware changed the environ of a pass-through request"

    apps: dict[str, WSGIApplication] = {
        "bare": bare_app,
        "noop wrapper": noop_wrapper,
        "middleware": middleware,
    }
    number = calibrate(lambda: per_call_ns(bare_app, environ, 1000), args.seconds) * 1000
    times: dict[str, list[float]] = {name: [] for name in apps}
    for round_index in range(args.rounds):
        # Alternate the order so that neither app always runs first in a round.
        order = list(apps.items()) if round_index % 2 == 0 else list(reversed(apps.items()))
        for name, app in order:
            times[name].append(per_call_ns(app, environ, number))

    ratios = [m / b for m, b in zip(times["middleware"], times["bare"], strict=True)]
    floor = [w / b for w, b in zip(times["noop wrapper"], times["bare"], strict=True)]
    bare = statistics.median(times["bare"])
    mw = statistics.median(times["middleware"])
    wrapper = statistics.median(times["noop wrapper"])
    ratio = statistics.median(ratios)
    verdict = "meets" if ratio <= TARGET else "MISSES"
    print(f"python {sys.version.split()[0]}, {args.rounds} rounds x {number:,} calls per app")
    print(
        f"pass-through: middleware/bare = {ratio:.2f} "
        f"(bare {bare:.0f} ns, middleware {mw:.0f} ns per request; "
        f"target <= {TARGET:.2f}: {verdict})"
    )
    print(
        f"  min-based ratio {min(times['middleware']) / min(times['bare']):.2f}; "
        f"per-round ratios {min(ratios):.2f}..{max(ratios):.2f}"
    )
    print(
        f"  floor, a do-nothing Python wrapper: {statistics.median(floor):.2f} "
        f"({wrapper:.0f} ns); AuthMiddleware adds {mw - bare:.0f} ns per request, "
        f"{mw - wrapper:.0f} ns beyond that floor"
    )
    overhead = mw - bare
    print(
        f"  so the ratio is <= {TARGET:.2f} for any app that spends more than "
        f"{overhead / (TARGET - 1) / 1000:.1f} us per request (a trivial app spends {bare:.0f} ns)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
