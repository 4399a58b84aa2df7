"""The ``wsgiauth`` command: check a config, or serve the auth app for trying it out.

``wsgiauth check-config FILE...`` lists every problem in a set of app-config files
(one per line, ``file: dotted.key: message``) so a deployment can be checked before
it starts. ``wsgiauth serve`` runs the auth app, bare or around a WSGI app, on the
stdlib's threaded server: meant for development and demos, not production (use
gunicorn or another real WSGI server there).

The served app gets the loaded config if it has a ``configure(config)`` method that
returns the WSGI app to serve (the demo portal does), and callers' identities through
:class:`~wsgiauth.identity.middleware.IdentityMiddleware`; the paths it lists in a
``protected_paths`` attribute need a valid identity token.
"""

from __future__ import annotations

import argparse
import os
import socketserver
import sys
from collections.abc import Sequence
from wsgiref.simple_server import WSGIRequestHandler
from wsgiref.simple_server import WSGIServer
from wsgiref.simple_server import make_server

from .app import create_auth_app
from .check import check_config
from .errors import ConfigError
from .loader import load_config
from .wsgi import CONFIG_ENV
from .wsgi import configured
from .wsgi import import_app
from .wsgi import served_stack

__all__ = ["main"]


class _ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    """One thread per request, as real WSGI servers do, so the app's thread safety is exercised.

    On Ctrl-C, requests in flight finish (and are logged) before the process exits.
    """

    daemon_threads = False
    block_on_close = True


class _QuietHandler(WSGIRequestHandler):
    """A request handler that keeps stderr free of one line per request."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


def _config_paths(given: Sequence[str] | None) -> list[str]:
    if given:
        return list(given)
    from_env = os.environ.get(CONFIG_ENV, "")
    return [path for path in from_env.split(os.pathsep) if path]


def _check(args: argparse.Namespace) -> int:
    paths = _config_paths(args.files)
    if not paths:
        print(f"wsgiauth: no config file given (pass FILE or set {CONFIG_ENV})", file=sys.stderr)
        return 2
    problems = check_config(*paths)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        return 1
    print(f"ok: {' '.join(paths)}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    paths = _config_paths(args.config)
    if not paths:
        print(
            f"wsgiauth: no config file given (pass --config or set {CONFIG_ENV})", file=sys.stderr
        )
        return 2
    try:
        config = load_config(*paths)
        auth_app = create_auth_app(config)
    except ConfigError as exc:
        print(f"wsgiauth: {exc}", file=sys.stderr)
        return 2
    try:
        inner = None if args.bare else configured(import_app(args.app), config)
    except ConfigError as exc:
        print(f"wsgiauth: {exc}", file=sys.stderr)
        return 2
    except (ImportError, AttributeError, ValueError) as exc:
        print(f"wsgiauth: cannot load --app {args.app}: {exc}", file=sys.stderr)
        return 2
    app = served_stack(auth_app, inner)
    handler = WSGIRequestHandler if args.access_log else _QuietHandler
    try:
        server = make_server(args.host, args.port, app, _ThreadingWSGIServer, handler)
    except OSError as exc:
        print(
            f"wsgiauth: cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr
        )
        return 2
    with server:
        print(f"wsgiauth serving on http://{args.host}:{server.server_port}", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wsgiauth", description="Check an app-config, or serve the auth app."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    check = commands.add_parser("check-config", help="list every problem in config files")
    check.add_argument("files", nargs="*", metavar="FILE", help=f"default: ${CONFIG_ENV}")
    check.set_defaults(run=_check)

    serve = commands.add_parser("serve", help="serve the auth app (development only)")
    serve.add_argument(
        "--config",
        action="append",
        metavar="FILE",
        help=f"app-config file; repeat it, later files win (default: ${CONFIG_ENV})",
    )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=7007, help="0 picks a free port")
    serve.add_argument(
        "--app",
        default="wsgiauth.demo:application",
        metavar="DOTTED",
        help="the WSGI app to wrap, as package.module:attr (default: %(default)s)",
    )
    serve.add_argument(
        "--bare",
        action="store_true",
        help="no wrapped app: paths outside the auth base path get 404",
    )
    serve.add_argument("--access-log", action="store_true", help="log every request to stderr")
    serve.set_defaults(run=_serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``wsgiauth`` command line; returns the exit status."""
    args = _parser().parse_args(argv)
    return args.run(args)  # type: ignore[no-any-return]


if __name__ == "__main__":
    raise SystemExit(main())
