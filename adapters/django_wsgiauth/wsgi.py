"""``wrap``: mount the auth app in front of Django's WSGI application.

The auth paths are answered before Django runs (no middleware, URL resolver,
CSRF check or debug page touches them); every other request reaches Django
unchanged. It also fails at startup when a URL pattern lies under the auth base
path, where Django would never see a request.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from django.urls import URLResolver
from django.urls import get_resolver

from wsgiauth import AuthMiddleware

from . import get_auth_app

__all__ = ["wrap"]


def wrap(application: Any) -> AuthMiddleware:
    """``application`` with the auth app of ``settings.WSGIAUTH`` mounted at its base path."""
    auth_app = get_auth_app()
    for route in _routes(get_resolver().url_patterns):
        literal = re.split(r"[<(\[\\*+?{$]", route, maxsplit=1)[0]  # up to a variable
        auth_app.check_host_route(f"URL pattern {route!r}", literal)
    return AuthMiddleware(application, auth_app)


def _routes(patterns: Any, prefix: str = "") -> Iterator[str]:
    """Every URL pattern as text, includes joined (``^`` anchors dropped)."""
    for pattern in patterns:
        route = prefix + str(pattern.pattern).lstrip("^")
        if isinstance(pattern, URLResolver):
            yield from _routes(pattern.url_patterns, route)
        else:
            yield route
