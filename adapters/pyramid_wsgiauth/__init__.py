"""pyramid_wsgiauth: wsgiauth in a Pyramid 2 app, through ``config.include("pyramid_wsgiauth")``.

Settings, prefixed as Pyramid add-ons do:

- ``wsgiauth.config``: the app-config file path(s), whitespace separated (or, in
  code, a ``wsgiauth.Config`` or a ready ``AuthApp``);
- ``wsgiauth.security_policy`` (``asbool``): install :class:`WsgiAuthSecurityPolicy`,
  so ``request.identity`` and view permissions work, and a forbidden view that
  answers 401 in Backstage's JSON shape when no one is signed in.

The auth app is mounted with ``wsgiapp2`` on ``{base_path}/*subpath``: Pyramid
routes to it and hands back its answers untouched. ``request.auth_identity`` is
the caller's verified identity or None. No auth logic lives here.
"""

from __future__ import annotations

import re
from typing import Any

from pyramid.authorization import ACLHelper
from pyramid.authorization import Authenticated
from pyramid.authorization import Everyone
from pyramid.interfaces import PHASE3_CONFIG
from pyramid.security import NO_PERMISSION_REQUIRED
from pyramid.settings import asbool
from pyramid.wsgi import wsgiapp2

from wsgiauth import BackstageIdentity
from wsgiauth import HttpError
from wsgiauth import auth_app_from
from wsgiauth import authenticate
from wsgiauth import refusal_response

__all__ = ["WsgiAuthSecurityPolicy", "includeme"]

ROUTE = "wsgiauth"
#: A path only the auth app should answer; a route matching it earlier shadows the auth app.
_PROBE = "/.well-known/jwks.json"


def includeme(config: Any) -> None:
    """Mount the auth app and expose identities; fails here on a bad ``wsgiauth.config``."""
    settings = config.get_settings()
    source = settings.get("wsgiauth.config")
    if isinstance(source, str):  # an .ini setting: paths separated by whitespace
        source = source.split()
    auth_app = auth_app_from(source, setting="wsgiauth.config")
    config.registry["wsgiauth.auth_app"] = auth_app
    base = auth_app.base_path
    config.add_route(ROUTE, base + "/*subpath")
    config.add_view(
        wsgiapp2(auth_app),
        route_name=ROUTE,
        permission=NO_PERMISSION_REQUIRED,  # a default permission must not lock sign-in out
        require_csrf=False,  # the auth app checks X-Requested-With and origins itself
    )
    config.add_request_method(_auth_identity, "auth_identity", reify=True)
    if asbool(settings.get("wsgiauth.security_policy", False)):
        config.set_security_policy(WsgiAuthSecurityPolicy())
        config.add_forbidden_view(_forbidden)  # the including app's own one wins

    def check_routes() -> None:
        routes = config.get_routes_mapper().get_routes()
        mine = next(i for i, route in enumerate(routes) if route.name == ROUTE)
        for index, route in enumerate(routes):
            if index == mine:
                continue
            shown = f"{route.name!r} ({route.pattern})"
            auth_app.check_host_route(shown, re.split(r"[{*]", route.pattern, maxsplit=1)[0])
            if index < mine and route.match(base + _PROBE) is not None:
                raise auth_app.route_clash(shown)  # an earlier catch-all shadows the auth app

    config.action(None, check_routes, order=PHASE3_CONFIG + 1)  # after every add_route


class WsgiAuthSecurityPolicy:
    """Pyramid's ``ISecurityPolicy`` over wsgiauth identities.

    ACL principals are ``Everyone``, and for a signed-in caller ``Authenticated``,
    the user entity ref and its ownership refs (``group:default/team-a``), so
    ``(Allow, "group:default/admins", "edit")`` works in an ``__acl__``.
    """

    def __init__(self) -> None:
        self.acl = ACLHelper()

    def identity(self, request: Any) -> BackstageIdentity | None:
        """The verified identity, or None."""
        return request.auth_identity  # type: ignore[no-any-return]

    def authenticated_userid(self, request: Any) -> str | None:
        """The user entity ref, e.g. ``user:default/jane``."""
        identity = self.identity(request)
        return identity.user_entity_ref if identity else None

    def effective_principals(self, request: Any) -> list[str]:
        """What ACL entries are matched against."""
        identity = self.identity(request)
        if identity is None:
            return [Everyone]
        return [Everyone, Authenticated, identity.user_entity_ref, *identity.ownership_entity_refs]

    def permits(self, request: Any, context: Any, permission: str) -> Any:
        """The context's ACL decides, over :meth:`effective_principals`."""
        return self.acl.permits(context, self.effective_principals(request), permission)

    def remember(self, request: Any, userid: Any, **kw: Any) -> list[tuple[str, str]]:
        """Nothing: identity tokens come from the auth app's routes, not from a view."""
        return []

    def forget(self, request: Any, **kw: Any) -> list[tuple[str, str]]:
        """Nothing: the browser client signs out through the auth app's logout route."""
        return []


def _auth_identity(request: Any) -> BackstageIdentity | None:
    verifier = request.registry["wsgiauth.auth_app"].verifier
    return authenticate(request.environ, verifier, protected=False)


def _forbidden(context: Any, request: Any) -> Any:
    """Not signed in: the core's 401 (missing or bad token) or preflight; signed in: a 403."""
    if request.auth_identity is not None:
        return context
    auth_app = request.registry["wsgiauth.auth_app"]
    try:
        authenticate(request.environ, auth_app.verifier)
    except HttpError as error:
        return refusal_response(request.environ, error, cors=auth_app.cors)  # webob's: as is
    return context
