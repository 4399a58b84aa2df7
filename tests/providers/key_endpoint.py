"""A fake public-key endpoint on 127.0.0.1, for the proxy providers' signed headers.

It answers fixed paths with fixed bodies (a JWKS for Google IAP, one PEM per ``kid``
for AWS ALB), counts the requests, and goes down on demand (:attr:`KeyEndpoint.down`:
a 502 from every path). Fixed hosts reach it through
:meth:`wsgiauth.http.HttpClient.reroute`. Also: ES256 JWT signing with padded or
unpadded segments (ALB pads its base64url with ``=``).
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler
from wsgiref.simple_server import make_server

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from webob import Request
from webob import Response

__all__ = ["KeyEndpoint", "sign_es256"]


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


class KeyEndpoint:
    """Path → (content type, body); every other path is a 404."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[str, bytes, dict[str, str]]] = {}
        #: Answer 502 everywhere.
        self.down = False
        #: The paths asked for, in order.
        self.requests: list[str] = []
        self.base_url = ""

    def serve(
        self,
        path: str,
        body: Any,
        *,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer ``path`` with ``body`` (JSON unless bytes or str)."""
        if isinstance(body, str):
            data = body.encode()
        elif isinstance(body, bytes):
            data = body
        else:
            data = json.dumps(body).encode()
        self.routes[path] = (content_type, data, dict(headers or {}))

    @contextmanager
    def serving(self) -> Iterator[KeyEndpoint]:
        """Serve on a free loopback port for the ``with`` block."""
        server = make_server("127.0.0.1", 0, self, handler_class=_Quiet)
        self.base_url = f"http://127.0.0.1:{server.server_port}"
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        self.requests.append(request.path)
        if self.down:
            response = Response(
                status=502, body=b"<html>Bad gateway</html>", content_type="text/html"
            )
        elif request.path in self.routes:
            content_type, body, headers = self.routes[request.path]
            response = Response(body=body, content_type=content_type, charset=None)
            response.headers.update(headers)
        else:
            response = Response(status=404, body=b"Not found", content_type="text/plain")
        return response(environ, start_response)


def _b64(data: bytes, *, pad: bool) -> str:
    encoded = base64.urlsafe_b64encode(data).decode()
    return encoded if pad else encoded.rstrip("=")


def sign_es256(
    key: ec.EllipticCurvePrivateKey,
    header: dict[str, Any],
    claims: dict[str, Any],
    *,
    pad: bool = False,
) -> str:
    """A JWS over ``header`` (``alg`` ES256 unless it says otherwise) and ``claims``.

    ``pad=True`` keeps the ``=`` padding on every segment, as AWS ALB does; the
    signature covers the segments as sent.
    """
    header = {"typ": "JWT", "alg": "ES256", **header}
    signing_input = (
        _b64(json.dumps(header).encode(), pad=pad)
        + "."
        + _b64(json.dumps(claims).encode(), pad=pad)
    )
    r, s = decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return signing_input + "." + _b64(signature, pad=pad)
