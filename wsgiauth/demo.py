"""A tiny demo portal: the WSGI app ``wsgiauth serve`` wraps when no ``--app`` is given.

It is plain WSGI on purpose, so it shows what :class:`~wsgiauth.middleware.AuthMiddleware`
does to any app: requests under the auth base path never reach it, and the others
arrive with the caller's identity (if any) in ``environ["wsgiauth.identity"]``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING
from typing import Any

if TYPE_CHECKING:
    from collections.abc import Iterable

    from _typeshed.wsgi import StartResponse
    from _typeshed.wsgi import WSGIEnvironment

__all__ = ["application"]

_PAGE = b"""<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>wsgiauth demo portal</title></head>
<body>
<h1>wsgiauth demo portal</h1>
<p>This small WSGI app is wrapped by wsgiauth: requests under <code>/api/auth</code>
are answered by the Backstage-compatible auth backend, everything else reaches this app.</p>
<ul>
<li><a href="/api/auth/.well-known/jwks.json">/api/auth/.well-known/jwks.json</a>:
the public keys that verify identity tokens</li>
<li><a href="/api/hello">/api/hello</a>: a JSON endpoint that shows the caller's identity</li>
</ul>
</body>
</html>
"""


def _json_default(value: Any) -> Any:
    to_json = getattr(value, "to_json", None)
    return to_json() if callable(to_json) else str(value)


def application(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    """Serve ``GET /`` (HTML), ``GET /api/hello`` (JSON) and 404 for anything else."""
    path = environ.get("PATH_INFO", "") or "/"
    if environ.get("REQUEST_METHOD") in ("GET", "HEAD") and path in ("/", "/api/hello"):
        if path == "/":
            body, content_type = _PAGE, "text/html; charset=utf-8"
        else:
            payload = {"hello": "world", "identity": environ.get("wsgiauth.identity")}
            body = json.dumps(payload, default=_json_default).encode()
            content_type = "application/json"
        status = "200 OK"
    else:
        body, content_type, status = b"Not Found\n", "text/plain; charset=utf-8", "404 Not Found"
    headers = [("Content-Type", content_type), ("Content-Length", str(len(body)))]
    start_response(status, headers)
    return [b""] if environ.get("REQUEST_METHOD") == "HEAD" else [body]
