"""Per-environment dispatch for OAuth providers (Backstage ``OAuthEnvironmentHandler``).

An OAuth provider is configured once per environment (``auth.providers.<id>.<env>``).
The environment comes from the ``env`` query parameter or, on the callback
(where the identity provider adds no ``env``), from the decoded ``state``.
A provider without environments (Backstage's ``saml``: ``auth.providers.<id>`` is
its config) has one handler, which answers whatever ``env`` says.
Errors found here are JSON errors, before any provider code runs.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from collections.abc import Mapping
from functools import lru_cache
from types import MappingProxyType
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from ..errors import InputError
from ..errors import NotFoundError
from .state import callback_state
from .state import decode_oauth_state
from .state import query_param
from .types import SupportsOAuthRoutes

if TYPE_CHECKING:
    from webob import Request
    from webob import Response

    from .route_handlers import OAuthRouteHandlers

__all__ = ["EnvironmentHandler", "query_of"]

#: A ``%`` that does not start a two-digit escape, which WebOb and ``parse_qsl`` read apart.
_ODD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


def query_of(request: Request) -> Mapping[str, str]:
    """The query's parameters, as ``request.GET`` reads them (the last value of a name wins).

    Without WebOb's ``MultiDict``: ``parse_qsl`` answers the same for a query that is
    ASCII, has no ``;`` (which WebOb also splits on) and whose every ``%`` starts a
    two-digit escape (WebOb reads ``%a`` as a newline); any other query is WebOb's.
    A query that is not UTF-8 raises ``UnicodeDecodeError`` as ``request.GET`` does
    (``AuthApp`` refuses it with a 400 before this runs). Read-only.
    """
    source: str = request.environ.get("QUERY_STRING", "")
    if ";" in source or not source.isascii() or ("%" in source and _ODD_PERCENT.search(source)):
        return request.GET
    return _parsed(source)


@lru_cache(maxsize=256)
def _parsed(source: str) -> Mapping[str, str]:
    """The parse of a query: a browser's ``/start`` query repeats (its nonce is ours),
    so most are parsed once. At most 256 queries of at most 8 KB (``AuthApp``'s limit)."""
    return MappingProxyType(dict(parse_qsl(source, keep_blank_values=True, errors="strict")))


class EnvironmentHandler:
    """Routes each request to the handlers of the environment it names."""

    def __init__(
        self,
        provider_id: str,
        handlers: Mapping[str, OAuthRouteHandlers],
        *,
        single: bool = False,
    ) -> None:
        """:param single: one handler for every request, whatever its ``env``."""
        self.provider_id = provider_id
        self.handlers = dict(handlers)
        self._single = next(iter(self.handlers.values())) if single else None

    def start(self, request: Request) -> Response:
        """``GET /start`` of the chosen environment."""
        return self._pick(request).start(request)

    def frame_handler(self, request: Request) -> Response:
        """``GET|POST /handler/frame`` of the environment named in ``state``."""
        return self._pick(request).frame_handler(request)

    def refresh(self, request: Request) -> Response:
        """``GET|POST /refresh`` of the chosen environment."""
        return self._pick(request).refresh(request)

    def logout(self, request: Request) -> Response:
        """``POST /logout`` of the chosen environment."""
        return self._pick(request).logout(request)

    def extra_routes(self) -> dict[str, Callable[[Request], Response]]:
        """The authenticators' own ``GET`` routes (:class:`SupportsOAuthRoutes`), by action."""
        authenticators = [getattr(h, "authenticator", None) for h in self.handlers.values()]
        names = {
            name
            for authenticator in authenticators
            if isinstance(authenticator, SupportsOAuthRoutes)
            for name in authenticator.routes()
        }
        return {name: self._extra_route(name) for name in sorted(names)}

    def _extra_route(self, name: str) -> Callable[[Request], Response]:
        def route(request: Request) -> Response:
            authenticator = self._pick(request).authenticator
            routes = (
                authenticator.routes() if isinstance(authenticator, SupportsOAuthRoutes) else {}
            )
            if name not in routes:
                raise NotFoundError(f"Unknown route '{name}' of auth provider '{self.provider_id}'")
            return routes[name](request)

        return route

    def _pick(self, request: Request) -> OAuthRouteHandlers:
        if self._single is not None:
            return self._single
        env = query_param(query_of(request), "env")
        if not env:
            state = callback_state(request)
            if state:
                env = decode_oauth_state(state)["env"]
        if not env:
            raise InputError("Must specify 'env' query to select environment")
        handlers = self.handlers.get(env)
        if handlers is None:
            raise NotFoundError(
                f"No configuration available for the '{env}' environment of this provider."
            )
        return handlers
