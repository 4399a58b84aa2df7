"""The responses shared by the auth routes: JSON bodies and Backstage's error body.

JSON bodies are sent as Express sends them (``application/json; charset=utf-8``),
never cached, since every one of them carries a session or an error about one.
:func:`error_response` is the one place an :class:`~wsgiauth.errors.HttpError`
becomes a response, for the auth app and for every host that refuses a request.

A :class:`FixedRoute` answers the same bytes to every plain ``GET`` (JWKS, OpenID
discovery): its :class:`FixedResponse` is built once, and the auth app can send it
without building a WebOb request or response. :func:`redirect_response` is a 302
whose ``Location`` WebOb would send as it is, sent without WebOb looking at it again.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Any
from urllib.parse import quote

from webob import Request
from webob import Response
from webob.response import EmptyResponse

from .errors import HttpError
from .errors import MethodNotAllowedError
from .errors import ServiceUnavailableError

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse
    from _typeshed.wsgi import WSGIEnvironment

__all__ = [
    "FixedResponse",
    "FixedRoute",
    "error_response",
    "json_response",
    "redirect_response",
    "request_url",
    "wsgi_bytes",
]


@dataclass(frozen=True, slots=True)
class FixedResponse:
    """A ``200 OK`` built once: its headers exactly as WebOb sends them, and its body.

    Build it with :meth:`of`; :meth:`response` is the same answer as a WebOb response.
    """

    #: The given headers, then ``Content-Length`` (where WebOb puts it).
    headers: tuple[tuple[str, str], ...]
    body: bytes
    #: WebOb's ``conditional_response``: ``If-None-Match`` gets a 304, ``Range`` a 206.
    conditional: bool = False

    @classmethod
    def of(
        cls, body: bytes, headers: Sequence[tuple[str, str]], *, conditional: bool = False
    ) -> FixedResponse:
        """``body`` with ``headers`` (no ``Content-Length``: it is added here)."""
        return cls((*headers, ("Content-Length", str(len(body)))), body, conditional)

    def response(self) -> Response:
        """The WebOb response sending exactly these headers and body."""
        return Response(
            body=self.body, headerlist=list(self.headers), conditional_response=self.conditional
        )


class FixedRoute:
    """A route handler whose answer reads nothing from the request.

    Called with a request, it is a handler like any other. The auth app also calls
    :attr:`answer` itself for a plain ``GET`` or ``HEAD`` (no query, body, ``Origin``
    or conditional header) and sends its bytes as they are.

    :param answer: the current answer; may raise an
        :class:`~wsgiauth.errors.HttpError`.
    """

    __slots__ = ("answer",)

    def __init__(self, answer: Callable[[], FixedResponse]) -> None:
        self.answer = answer

    def __call__(self, request: Request) -> Response:
        """The answer as a WebOb response, for the general path."""
        return self.answer().response()


#: ``json.dumps(..., separators=(",", ":"))``, without building an encoder per call.
_COMPACT = json.JSONEncoder(separators=(",", ":"))


def json_response(body: Any, *, status: int = 200) -> Response:
    """A non-cacheable JSON response.

    The header list is complete, ``Content-Length`` last as WebOb's ``body`` setter
    puts it, so WebOb has nothing left to compute.
    """
    data = _COMPACT.encode(body).encode("utf-8")
    # No Location: WebOb would send the header list as it is.
    return _SentAsIs(
        app_iter=[data],
        status=status,
        headerlist=[
            ("Content-Type", "application/json; charset=utf-8"),
            ("Cache-Control", "no-store"),
            ("Content-Length", str(len(data))),
        ],
    )


#: A ``Location`` that WebOb's ``Response._make_location_absolute`` returns unchanged:
#: it starts with a scheme (WebOb's ``SCHEME_RE``) and has no tab, CR or LF to strip.
_ABSOLUTE_LOCATION = re.compile(r"[a-z]+:[^\t\r\n]*", re.IGNORECASE)


class _SentAsIs(Response):
    """A response whose header list WebOb would send unchanged: sent without the copy
    that makes a ``Location`` absolute. Its ``Location`` must not change once built."""

    def __call__(
        self, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]:
        if self.conditional_response:
            return super().__call__(environ, start_response)
        start_response(self.status, list(self.headerlist))
        if environ["REQUEST_METHOD"] == "HEAD":
            return EmptyResponse(self.app_iter)
        return self.app_iter


def redirect_response(status: int | str, location: str) -> Response:
    """A redirect with no body, not cached: the answer of ``/start``.

    The header list is what WebOb's ``location`` and ``cache_control`` setters made
    (PEP 3333 wants a ``Content-Type`` on every 302). An absolute ``location`` (always,
    from the built-in providers) is sent without WebOb's second look at it; any other
    goes through WebOb, which makes it absolute.
    """
    headerlist = [
        ("Content-Type", "text/plain"),
        ("Content-Length", "0"),
        ("Location", location),
        ("Cache-Control", "no-store"),
    ]
    kind = _SentAsIs if _ABSOLUTE_LOCATION.fullmatch(location) else Response
    return kind(status=status, headerlist=headerlist, app_iter=[b""])


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
    elif isinstance(error, ServiceUnavailableError) and error.retry_after is not None:
        response.retry_after = error.retry_after
    return response
