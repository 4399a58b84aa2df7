"""The ``wsgiauth`` command: check a config, or serve the auth app.

``wsgiauth check-config FILE...`` lists every problem in a set of app-config files
(one per line, ``file: dotted.key: message``) so a deployment can be checked before
it starts. ``wsgiauth serve`` runs the auth app, bare or around a WSGI app, on
granian (``pip install 'wsgiauth[serve]'``): several worker processes, each building
the served stack as :mod:`wsgiauth.wsgi` does from ``WSGIAUTH_CONFIG`` and
``WSGIAUTH_APP``, which the command sets for them; SIGTERM or Ctrl-C stops it
gracefully. Without granian it falls back to the stdlib's threaded server, which is
for development only. To embed wsgiauth in an app that already has a server, see
:mod:`wsgiauth.wsgi` (gunicorn).

The served app gets the loaded config if it has a ``configure(config)`` method that
returns the WSGI app to serve (the demo portal does), and callers' identities through
:class:`~wsgiauth.identity.middleware.IdentityMiddleware`; the paths it lists in a
``protected_paths`` attribute need a valid identity token.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import signal
import socket
import socketserver
import sys
import threading
import time
from collections.abc import Sequence
from types import FrameType
from typing import TYPE_CHECKING
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler
from wsgiref.simple_server import WSGIServer
from wsgiref.simple_server import make_server

from .app import create_auth_app
from .bulkhead import THREADS_ENV
from .check import check
from .check import describe
from .check import port_warning
from .check import render
from .errors import ConfigError
from .fake_idp.command import add_arguments as add_fake_idp_arguments
from .fake_idp.command import run as run_fake_idp
from .identity.keys_command import add_arguments as add_keys_arguments
from .loader import load_config
from .server_store import SINGLE_PROCESS_ENV
from .server_store import ServerStore
from .wsgi import APP_ENV
from .wsgi import CONFIG_ENV
from .wsgi import configured
from .wsgi import import_app
from .wsgi import served_stack

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

    from .config import Config

__all__ = ["main"]

#: Seconds the requests in flight get to finish after SIGTERM, as gunicorn's default.
GRACEFUL_TIMEOUT = 30
#: Seconds to wait for granian's first worker before giving up on printing the banner.
ANNOUNCE_TIMEOUT = 60


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
    report = check(paths, port=args.port)
    found = [(error, "error") for error in report.errors]
    found += [(warning, "warning") for warning in report.warnings]
    if args.format == "json":
        print(json.dumps([describe(problem, severity) for problem, severity in found], indent=2))
        return 1 if report.errors else 0
    for problem, severity in found:
        print(render(problem, severity), file=sys.stderr)
    if report.errors:
        return 1
    print(f"ok: {' '.join(paths)}")
    return 0


def _warn_port(config: Config, port: int) -> None:
    """Print :func:`~wsgiauth.check.port_warning` for ``port``, if there is one."""
    warning = port_warning(config, port)
    if warning is not None:
        print(f"wsgiauth: {render(warning, 'warning')}", file=sys.stderr)


def _serve(args: argparse.Namespace) -> int:
    paths = _config_paths(args.config)
    if not paths:
        print(
            f"wsgiauth: no config file given (pass --config or set {CONFIG_ENV})", file=sys.stderr
        )
        return 2
    try:
        import granian  # noqa: F401 - only whether it is installed
    except ImportError:
        on_granian = False
        # The standard server runs one process: its keys sign at once (wsgiauth.identity.service).
        os.environ[SINGLE_PROCESS_ENV] = "1"
    else:
        on_granian = True
    try:
        config = load_config(*paths)
        _warn_port(config, args.port)
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
    if not on_granian:
        print(
            "wsgiauth: granian is not installed (pip install 'wsgiauth[serve]'): serving on "
            "the standard library's server, which is for development only",
            file=sys.stderr,
        )
        return _serve_stdlib(args, served_stack(auth_app, inner))
    return _serve_granian(args, paths)


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _bindable(host: str, port: int) -> int | str:
    """The port ``host:port`` resolves to (a free one for 0), or why it cannot be bound.

    granian binds in its main process and reports a failure only in its log; checking
    first keeps the command's usual message and exit status, and names the port picked
    for 0 (free a moment ago: another process could take it before granian binds it).
    """
    try:
        info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(info[0], socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(info[4])
            return int(sock.getsockname()[1])
    except OSError as exc:
        return exc.strerror or str(exc)


def _granian_logging() -> dict[str, Any]:
    """granian's logging config, on stderr: stdout carries only the banner."""
    from granian.log import LOGGING_CONFIG

    config: dict[str, Any] = copy.deepcopy(LOGGING_CONFIG)
    for handler in config["handlers"].values():
        handler["stream"] = "ext://sys.stderr"
    return config


_at_fork_registered = False


def _default_signals() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _stop_booting_workers_on_a_signal() -> None:
    """Let SIGTERM and SIGINT end a granian worker that is still building the stack.

    A forked worker inherits the main process's handlers, which only flag the main
    process's copy of the server, until granian installs its own once the app is
    loaded: a stop asked in between was lost, and the main process waited out
    :data:`GRACEFUL_TIMEOUT`. With the default handlers, a booting worker (which serves
    nothing yet) just exits.
    """
    global _at_fork_registered
    if not _at_fork_registered:
        os.register_at_fork(after_in_child=_default_signals)
        _at_fork_registered = True


def _announce_when_listening(host: str, port: int, banner: str) -> None:
    """Print ``banner`` once ``host:port`` accepts connections, from a daemon thread.

    On Linux each granian worker binds the port itself (``SO_REUSEPORT``), so the port
    is served only once a worker is up, after granian's startup hooks have run.
    """

    def wait() -> None:
        deadline = time.monotonic() + ANNOUNCE_TIMEOUT
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((host, port), timeout=1):
                    print(banner, flush=True)
                    return
            except OSError:
                time.sleep(0.05)

    threading.Thread(target=wait, name="wsgiauth-banner", daemon=True).start()


def _serve_granian(args: argparse.Namespace, paths: list[str]) -> int:
    """Serve ``wsgiauth.wsgi:application`` on granian until SIGTERM or SIGINT; 0 on a clean stop.

    Each worker builds the served stack from the environment (``WSGIAUTH_CONFIG`` and,
    unless ``--bare``, ``WSGIAUTH_APP``), exactly as under gunicorn. This process makes
    the server store (:mod:`wsgiauth.server_store`) that the workers share where the
    config asks for memory, and removes it when the server stops.
    """
    from granian import Granian
    from granian.constants import Interfaces

    port = _bindable(args.host, args.port)
    if isinstance(port, str):
        print(f"wsgiauth: cannot listen on {args.host}:{args.port}: {port}", file=sys.stderr)
        return 2
    os.environ[CONFIG_ENV] = os.pathsep.join(os.path.abspath(path) for path in paths)
    # Sizes each provider's bulkhead (wsgiauth.bulkhead) in the workers.
    os.environ[THREADS_ENV] = str(args.threads)
    if args.bare:
        os.environ.pop(APP_ENV, None)
    else:
        os.environ[APP_ENV] = args.app
    server = Granian(
        "wsgiauth.wsgi:application",
        address=args.host,
        port=port,
        interface=Interfaces.WSGI,
        websockets=False,
        workers=args.workers,
        blocking_threads=args.threads,
        backlog=args.backlog,
        log_access=args.access_log,
        log_dictconfig=_granian_logging(),
        # Requests in flight get this long to finish on SIGTERM, then their worker is killed.
        workers_kill_timeout=GRACEFUL_TIMEOUT,
    )
    _stop_booting_workers_on_a_signal()
    host = f"[{args.host}]" if ":" in args.host else args.host
    banner = f"wsgiauth serving on http://{host}:{port}"
    server.on_startup(lambda: _announce_when_listening(args.host, port, banner))
    with ServerStore.create() as store:
        store.export()
        try:
            server.serve()
        except SystemExit as exc:  # granian exits 1 when a worker died (e.g. failed to boot)
            return exc.code if isinstance(exc.code, int) else 1
    return 0


def _serve_stdlib(args: argparse.Namespace, app: WSGIApplication) -> int:
    """Serve ``app`` on the stdlib's threaded server until SIGTERM or SIGINT."""
    handler = WSGIRequestHandler if args.access_log else _QuietHandler

    class _Server(_ThreadingWSGIServer):
        request_queue_size = args.backlog

    try:
        server = make_server(args.host, args.port, app, _Server, handler)
    except OSError as exc:
        print(
            f"wsgiauth: cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr
        )
        return 2

    def _interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, _interrupt)
    with server:
        print(f"wsgiauth serving on http://{args.host}:{server.server_port}", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            signal.signal(signal.SIGTERM, previous)
    return 0


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wsgiauth", description="Check an app-config, or serve the auth app."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    check = commands.add_parser("check-config", help="list every problem in config files")
    check.add_argument("files", nargs="*", metavar="FILE", help=f"default: ${CONFIG_ENV}")
    check.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="text: one problem a line on stderr; json: a list on stdout, for CI",
    )
    check.add_argument(
        "--port",
        type=int,
        metavar="N",
        help="the port the server will listen on: warn if backend.baseUrl names another",
    )
    check.set_defaults(run=_check)

    serve = commands.add_parser(
        "serve", help="serve the auth app on granian (the stdlib's server without it)"
    )
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
    serve.add_argument(
        "--workers",
        type=_positive,
        default=_cpus(),
        help="worker processes, granian only (default: the number of CPUs, %(default)s here)",
    )
    serve.add_argument(
        "--threads",
        type=_positive,
        # Four: p99 stays under 5 ms on CPU-bound routes (bench/README.md), and each
        # provider's bulkhead still leaves two threads free while one IdP is slow.
        default=4,
        help="threads running the app in each worker, granian only (default: %(default)s)",
    )
    serve.add_argument(
        "--backlog",
        type=_positive,
        default=1024,
        help="connections waiting to be accepted (default: %(default)s)",
    )
    serve.add_argument(
        "--access-log",
        action="store_true",
        help="log every request (path without its query string) to stderr",
    )
    serve.set_defaults(run=_serve)

    keys = commands.add_parser("keys", help="list, rotate or prune the shared signing keys")
    add_keys_arguments(keys)

    fake_idp = commands.add_parser(
        "fake-idp", help="a fake OpenID provider, for development and tests only"
    )
    add_fake_idp_arguments(fake_idp)
    fake_idp.set_defaults(run=run_fake_idp)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``wsgiauth`` command line; returns the exit status."""
    args = _parser().parse_args(argv)
    return args.run(args)  # type: ignore[no-any-return]


if __name__ == "__main__":
    raise SystemExit(main())
