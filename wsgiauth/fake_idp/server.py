"""Serving the fake IdP on the standard library's threaded server, in a process or a thread.

Loopback only unless told otherwise: an IdP that signs anyone in as any listed user
must not be reachable from another machine by accident.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socketserver
import threading
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Sequence
from wsgiref.simple_server import WSGIRequestHandler
from wsgiref.simple_server import WSGIServer
from wsgiref.simple_server import make_server

from .app import FakeIdp
from .registry import FakeClient
from .registry import FakeUser

__all__ = ["WARNING", "FakeIdpServer", "is_loopback", "running_fake_idp"]

#: Printed when it starts; also on every page it serves.
WARNING = (
    "WARNING: wsgiauth fake-idp is an OpenID provider for development and tests ONLY. "
    "Anyone who reaches it signs in as any listed user. Never use it to protect anything."
)


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) is this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class FakeIdpServer:
    """A bound server for a :class:`FakeIdp` whose issuer is made from the bound port.

    The port is known only once bound (``port=0``), and the issuer must be known before
    the first token, so the app is built from a factory taking the issuer.
    """

    def __init__(
        self, make_app: Callable[[str], FakeIdp], *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self._server = make_server(host, port, _not_ready, _ThreadingServer, _QuietHandler)
        shown = f"[{host}]" if ":" in host else host
        self.issuer = f"http://{shown}:{self._server.server_port}"
        try:
            self.app = make_app(self.issuer)
        except BaseException:
            self._server.server_close()
            raise
        self._server.set_app(self.app)

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def shutdown(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _not_ready(environ: object, start_response: Callable[..., object]) -> list[bytes]:
    start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
    return [b"starting\n"]


@contextlib.contextmanager
def running_fake_idp(
    users: Sequence[FakeUser],
    clients: Sequence[FakeClient],
    *,
    auto_consent: str | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
) -> Iterator[FakeIdp]:
    """A fake IdP served from a daemon thread until the block ends (tests, fixtures)."""
    server = FakeIdpServer(
        lambda issuer: FakeIdp(issuer, users, clients, auto_consent=auto_consent),
        host=host,
        port=port,
    )
    thread = threading.Thread(target=server.serve_forever, name="fake-idp", daemon=True)
    thread.start()
    try:
        yield server.app
    finally:
        server.shutdown()
        thread.join(timeout=10)
