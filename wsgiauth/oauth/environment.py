"""Per-environment dispatch for OAuth providers (Backstage ``OAuthEnvironmentHandler``).

An OAuth provider is configured once per environment (``auth.providers.<id>.<env>``).
The environment comes from the ``env`` query parameter or, on the callback
(where the identity provider adds no ``env``), from the decoded ``state``.
Errors found here are JSON errors, before any provider code runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from ..errors import InputError
from ..errors import NotFoundError
from .state import decode_oauth_state
from .state import query_param

if TYPE_CHECKING:
    from webob import Request
    from webob import Response

    from .route_handlers import OAuthRouteHandlers

__all__ = ["EnvironmentHandler"]


class EnvironmentHandler:
    """Routes each request to the handlers of the environment it names."""

    def __init__(self, provider_id: str, handlers: Mapping[str, OAuthRouteHandlers]) -> None:
        self.provider_id = provider_id
        self.handlers = dict(handlers)

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

    def _pick(self, request: Request) -> OAuthRouteHandlers:
        env = query_param(request.GET, "env")
        if not env and "state" in request.GET:
            env = decode_oauth_state(request.GET["state"])["env"]
        if not env:
            raise InputError("Must specify 'env' query to select environment")
        handlers = self.handlers.get(env)
        if handlers is None:
            raise NotFoundError(
                f"No configuration available for the '{env}' environment of this provider."
            )
        return handlers
