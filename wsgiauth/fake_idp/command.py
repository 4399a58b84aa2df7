"""``wsgiauth fake-idp``: the fake OpenID provider as a command.

    wsgiauth fake-idp --port 8400 --users examples/catalog.yaml \\
        --client-id demo --client-secret s3cret \\
        --redirect-uri http://127.0.0.1:7007/api/auth/oidc/handler/frame

Prints a loud warning on stderr, then ``wsgiauth fake-idp serving on <issuer>`` on
stdout once it listens; SIGTERM or Ctrl-C stops it.
"""

from __future__ import annotations

import argparse
import signal
import sys
from types import FrameType

from .app import FakeIdp
from .registry import FakeClient
from .registry import FakeUser
from .registry import clients_from_yaml
from .registry import users_from_catalog
from .server import WARNING
from .server import FakeIdpServer
from .server import is_loopback

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``fake-idp`` subcommand's options."""
    parser.add_argument("--host", default="127.0.0.1", help="default: %(default)s")
    parser.add_argument("--port", type=int, default=8400, help="0 picks a free port")
    parser.add_argument(
        "--users", metavar="CATALOG", help="a Backstage catalog YAML: its User entities sign in"
    )
    parser.add_argument(
        "--auto-consent",
        metavar="USER_REF",
        help="sign every request in as this user at once, with no page",
    )
    parser.add_argument("--clients", metavar="YAML", help="clients from a YAML list")
    parser.add_argument("--client-id", default="wsgiauth-dev", help="default: %(default)s")
    parser.add_argument(
        "--client-secret", help="the client's secret (default: a public client, PKCE only)"
    )
    parser.add_argument(
        "--redirect-uri", action="append", default=[], metavar="URL", help="repeatable"
    )
    parser.add_argument("--post-logout-redirect-uri", action="append", default=[], metavar="URL")
    parser.add_argument(
        "--id-token-alg", choices=("RS256", "ES256"), default="RS256", help="default: %(default)s"
    )
    parser.add_argument(
        "--dangerously-allow-remote",
        action="store_true",
        help="allow --host to be other than loopback (anyone reaching it signs in as anyone)",
    )


def run(args: argparse.Namespace) -> int:
    """Serve until SIGTERM or SIGINT; 2 on a bad option."""
    try:
        users, clients = _registry(args)
    except (OSError, ValueError) as exc:
        print(f"wsgiauth fake-idp: {exc}", file=sys.stderr)
        return 2
    if not is_loopback(args.host) and not args.dangerously_allow_remote:
        print(
            f"wsgiauth fake-idp: refusing to listen on {args.host}, not loopback "
            "(--dangerously-allow-remote)",
            file=sys.stderr,
        )
        return 2
    try:
        server = FakeIdpServer(
            lambda issuer: FakeIdp(issuer, users, clients, auto_consent=args.auto_consent),
            host=args.host,
            port=args.port,
        )
    except OSError as exc:
        print(
            f"wsgiauth fake-idp: cannot listen on {args.host}:{args.port}: {exc.strerror}",
            file=sys.stderr,
        )
        return 2
    except ValueError as exc:
        print(f"wsgiauth fake-idp: {exc}", file=sys.stderr)
        return 2

    def _interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, _interrupt)
    print(WARNING, file=sys.stderr, flush=True)
    print(f"wsgiauth fake-idp serving on {server.issuer}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.shutdown()
    return 0


def _registry(args: argparse.Namespace) -> tuple[list[FakeUser], list[FakeClient]]:
    if args.users:
        users = users_from_catalog(args.users)
    elif args.auto_consent:
        users = [FakeUser.from_ref(args.auto_consent)]
    else:
        raise ValueError("give --users CATALOG (or --auto-consent USER_REF)")
    if args.clients:
        if args.redirect_uri or args.client_secret:
            raise ValueError("give --clients or --redirect-uri/--client-secret, not both")
        return users, clients_from_yaml(args.clients)
    if not args.redirect_uri:
        raise ValueError("give --redirect-uri URL (or --clients YAML)")
    client = FakeClient(
        client_id=args.client_id,
        client_secret=args.client_secret,
        redirect_uris=tuple(args.redirect_uri),
        post_logout_redirect_uris=tuple(args.post_logout_redirect_uri),
        id_token_signed_response_alg=args.id_token_alg,
    )
    return users, [client]
