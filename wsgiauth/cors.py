"""CORS for a frontend on another origin than the auth backend (Backstage ``backend.cors``).

A page on ``https://portal.example`` may call ``refresh`` and ``logout`` on
``https://auth.example`` only if the browser is told so, with credentials so
the refresh-token cookie travels. Only allowed origins get the headers: the
origin of ``app.baseUrl`` and the ``backend.cors.origin`` patterns (globs as
Backstage accepts them). Any other origin gets no CORS headers at all, so its
scripts cannot read our answers. Stricter than Backstage: a pattern must start
with ``http://`` or ``https://`` (checked at startup), and ``null`` is never
allowed, because every sandboxed iframe on any site sends it (see
:mod:`wsgiauth.origins`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from webob import Response

from .origins import checked_origin_patterns
from .origins import create_origin_filter

if TYPE_CHECKING:
    from webob import Request

    from .config import Config

__all__ = ["CorsPolicy", "cors_policy_from_config"]


@dataclass(frozen=True, slots=True)
class CorsPolicy:
    """Which origins may call the auth routes from a script, and how."""

    is_allowed: Callable[[str], bool]
    methods: str = "GET, POST"
    allowed_headers: str = "Authorization, Content-Type, X-Requested-With"
    max_age: int = 600

    def preflight(self, request: Request) -> Response:
        """The answer to ``OPTIONS``: 204, with CORS headers only for an allowed origin."""
        response = Response(status=204)
        origin = request.headers.get("Origin")
        if origin and self.is_allowed(origin):
            response.headers["Access-Control-Allow-Methods"] = self.methods
            response.headers["Access-Control-Allow-Headers"] = self.allowed_headers
            response.headers["Access-Control-Max-Age"] = str(self.max_age)
        return response

    def apply(self, request: Request, response: Response) -> None:
        """Let an allowed origin's script read ``response``, cookies included.

        A response that has none of the headers set here (every route's) gets them
        appended to its header list: what WebOb's ``vary`` and header setters would
        write, without them. Any other takes those setters.
        """
        origin = request.environ.get("HTTP_ORIGIN")
        allowed = origin if origin and self.is_allowed(origin) else None
        headerlist = response.headerlist
        if any(name.lower() in _SET_HERE for name, _ in headerlist):
            _apply_with_setters(response, allowed)
            return
        headerlist.append(("Vary", "Origin"))
        if allowed:
            headerlist.append(("Access-Control-Allow-Origin", allowed))
            headerlist.append(("Access-Control-Allow-Credentials", "true"))


#: The headers ``apply`` writes, lowercase.
_SET_HERE = frozenset({"vary", "access-control-allow-origin", "access-control-allow-credentials"})


def _apply_with_setters(response: Response, allowed_origin: str | None) -> None:
    """``apply`` on a response that already names Vary or a CORS header: WebOb merges them."""
    response.vary = (*(response.vary or ()), "Origin")
    if allowed_origin:
        response.headers["Access-Control-Allow-Origin"] = allowed_origin
        response.headers["Access-Control-Allow-Credentials"] = "true"


def cors_policy_from_config(config: Config) -> CorsPolicy:
    """The policy of ``backend.cors`` plus the app's own origin.

    :param config: the root config.
    :raises ConfigError: a ``backend.cors.origin`` pattern without ``http://`` or
        ``https://``; a bare ``*`` would admit ``null`` with credentials.
    """
    key = "backend.cors.origin"
    patterns = checked_origin_patterns(config, key, config.get_optional_string_or_list(key) or [])
    methods = config.get_optional_string_or_list("backend.cors.methods")
    max_age = config.get_optional_number("backend.cors.maxAge")
    policy = CorsPolicy(create_origin_filter(config.get_string("app.baseUrl"), patterns))
    if methods:
        policy = CorsPolicy(policy.is_allowed, methods=", ".join(methods))
    if max_age is not None:
        policy = CorsPolicy(policy.is_allowed, policy.methods, max_age=int(max_age))
    return policy
