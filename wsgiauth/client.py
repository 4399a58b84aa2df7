"""Serves the browser client, ``wsgiauth.js``, from the auth app.

The script ships inside the package (``wsgiauth/static/``) and is served under
``<base>/.client/wsgiauth.js``: a path no provider id can take, since ids
never start with a dot. It is read once and served with an ``ETag``; WebOb's
``conditional_response`` answers ``If-None-Match`` with a 304.
"""

from __future__ import annotations

import hashlib
from functools import cache
from importlib.resources import files
from typing import TYPE_CHECKING

from webob import Response

from .errors import NotFoundError

if TYPE_CHECKING:
    from webob import Request

__all__ = ["CLIENT_PATH", "client_script"]

CLIENT_PATH = "/.client/wsgiauth.js"


@cache
def _script() -> tuple[bytes, str] | None:
    resource = files("wsgiauth") / "static" / "wsgiauth.js"
    if not resource.is_file():
        return None
    body = resource.read_bytes()
    return body, hashlib.sha256(body).hexdigest()[:32]


def client_script(request: Request) -> Response:
    """``GET <base>/.client/wsgiauth.js``: the plain-JavaScript client, no build step."""
    script = _script()
    if script is None:
        raise NotFoundError("The browser client is not installed")
    body, etag = script
    # WebOb answers If-None-Match with a 304 when the response is called.
    return Response(
        body=body,
        headerlist=[
            ("Content-Type", "text/javascript; charset=utf-8"),
            ("Cache-Control", "public, max-age=300"),
            ("ETag", f'"{etag}"'),  # nosniff: AuthApp adds it to every answer
        ],
        conditional_response=True,
    )
