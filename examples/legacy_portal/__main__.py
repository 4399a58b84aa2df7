"""``python -m examples.legacy_portal``: serve the legacy portal, wrapped, on 127.0.0.1:7007.

A threaded stdlib server, for trying it out. Under gunicorn, serve
``examples.legacy_portal:make_app('/path/to/portal.sqlite3')`` with one worker,
or give it an app-config with a shared key store (docs/deployment.md): this one
keeps signing keys in memory.
"""

from __future__ import annotations

import argparse
import os
import socketserver
import tempfile
from wsgiref.simple_server import WSGIServer
from wsgiref.simple_server import make_server

from wsgiauth import load_config

from . import CONFIG_PATH
from . import make_app


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


def main() -> None:
    """Parse the options, set up the database and serve until Ctrl-C."""
    parser = argparse.ArgumentParser(prog="python -m examples.legacy_portal")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7007)
    parser.add_argument(
        "--db",
        default=os.path.join(tempfile.gettempdir(), "wsgiauth-legacy-portal.sqlite3"),
        help="the portal's SQLite file, created with its users if missing (default: %(default)s)",
    )
    parser.add_argument(
        "--config",
        default=str(CONFIG_PATH),
        help="the app-config; app-config.oauth2-proxy.yaml runs the portal behind oauth2-proxy "
        "(default: %(default)s)",
    )
    args = parser.parse_args()
    app = make_app(args.db, load_config(args.config))
    with make_server(args.host, args.port, app, _ThreadingServer) as server:
        print(f"legacy portal on http://{args.host}:{args.port} (database {args.db})", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
