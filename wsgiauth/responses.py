"""The responses shared by the auth routes: JSON bodies and Backstage's error body.

JSON bodies are sent as Express sends them (``application/json; charset=utf-8``),
never cached, since every one of them carries a session or an error about one.
:func:`error_response` is the one place an :class:`~wsgiauth.errors.HttpError`
becomes a response, for the auth app and for every host that refuses a request.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING
from typing import Any
from urllib.parse import quote

from webob import Request
from webob import Response

from .errors import HttpError
from .errors import MethodNotAllowedError

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

__all__ = ["error_response", "json_response", "request_url", "wsgi_bytes"]


def json_response(body: Any, *, status: int = 200) -> Response:
    """A non-cacheable JSON response."""
    return Response(
        body=json.dumps(body, separators=(",", ":")).encode("utf-8"),
        status=status,
        headerlist=[
            ("Content-Type", "application/json; charset=utf-8"),
            ("Cache-Control", "no-store"),
        ],
    )


def wsgi_bytes(value: str) -> bytes:
    """The bytes of a PEP 3333 native string (latin-1); a server that decoded them gets UTF-8."""
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogateescape")


#: What stays unescaped in a path, as in WebOb's ``path_qs``.
_PATH_SAFE = "/~!$&'()*+,;=:@"
#: A query is sent escaped: keep its escapes and separators, escape anything else.
_QUERY_SAFE = _PATH_SAFE + "%?[]"


def request_url(environ: WSGIEnvironment) -> str:
    """The request's path and query, escaped from the raw environ: never decodes, never fails.

    Error bodies echo it; decoding a hostile path or query again to render the error
    would raise while reporting it.
    """
    path = wsgi_bytes(environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", ""))
    url = quote(path, safe=_PATH_SAFE)
    query = environ.get("QUERY_STRING")
    if query:
        url += "?" + quote(wsgi_bytes(query), safe=_QUERY_SAFE)
    return url


def error_response(request: Request, error: HttpError, *, name: str | None = None) -> Response:
    """Backstage's error body (spec §6.3): ``error``, ``request`` and ``response``."""
    body: dict[str, object] = {
        "error": {"name": name or error.name, "message": error.full_message()},
        "request": {"method": request.method, "url": request_url(request.environ)},
        "response": {"statusCode": error.status_code},
    }
    cause = error.__cause__
    if isinstance(cause, HttpError):
        body["error"] = {**body["error"], "cause": {"name": cause.name, "message": cause.message}}  # type: ignore[dict-item]
    response = json_response(body, status=error.status_code)
    if isinstance(error, MethodNotAllowedError):
        response.allow = error.allow
    return response
