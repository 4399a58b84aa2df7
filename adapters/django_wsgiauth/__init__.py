"""django_wsgiauth: wsgiauth in a Django project.

In ``settings.py``::

    WSGIAUTH = {
        "CONFIG": BASE_DIR / "app-config.yaml",  # path(s), a wsgiauth.Config or an AuthApp
        "PROTECTED": ["/api/private"],           # path prefixes that need a valid token
        "SET_USER": False,                       # also set a request.user stand-in
    }
    MIDDLEWARE = [..., "django_wsgiauth.middleware.WsgiAuthMiddleware"]

and in ``wsgi.py`` ``application = wrap(get_wsgi_application())`` (from
:mod:`django_wsgiauth.wsgi`), which mounts the auth app in front of Django so
Django never sees the auth paths. Views read ``request.wsgiauth_identity`` and
require sign-in with :func:`login_required`. No auth logic lives here: the core
verifies tokens and writes the 401.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpResponse
from webob import Response

from wsgiauth import AuthApp
from wsgiauth import BackstageIdentity
from wsgiauth import ConfigError
from wsgiauth import HttpError
from wsgiauth import auth_app_from
from wsgiauth import authenticate
from wsgiauth import refusal_response

__all__ = [
    "AnonymousIdentityUser",
    "IdentityUser",
    "get_auth_app",
    "login_required",
    "options",
    "wsgi_environ",
]


def options() -> dict[str, Any]:
    """``settings.WSGIAUTH``, checked to be a dict."""
    value = getattr(settings, "WSGIAUTH", None)
    if not isinstance(value, dict):
        raise ConfigError("missing: set it to a dict with at least CONFIG", path="WSGIAUTH")
    return value


def get_auth_app() -> AuthApp:
    """The auth app of ``WSGIAUTH["CONFIG"]``, one per config, shared by wrap and middleware."""
    source = options().get("CONFIG")
    return _auth_app(tuple(source) if isinstance(source, list) else source)  # hashable


@functools.lru_cache(maxsize=16)
def _auth_app(source: Any) -> AuthApp:
    # One auth app per config: its verifier must see the keys that app signs with.
    return auth_app_from(source, setting="WSGIAUTH.CONFIG")


class IdentityUser:
    """A ``request.user`` stand-in for a caller with a valid identity token."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False

    def __init__(self, identity: BackstageIdentity) -> None:
        self.identity = identity
        #: The user entity ref, e.g. ``user:default/jane``.
        self.username = identity.user_entity_ref

    def get_username(self) -> str:
        """The user entity ref, as Django's ``get_username``."""
        return self.username

    def __str__(self) -> str:
        return self.username


class AnonymousIdentityUser:
    """A ``request.user`` stand-in for a caller without a valid identity token."""

    is_authenticated = False
    is_anonymous = True
    is_active = False
    is_staff = False
    is_superuser = False
    username = ""
    identity = None

    def get_username(self) -> str:
        """The empty string, as Django's ``AnonymousUser``."""
        return ""


def login_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Answer 401 in Backstage's JSON error shape unless a valid identity token came."""

    @functools.wraps(view)
    def wrapper(request: Any, *args: Any, **kwargs: Any) -> Any:
        auth_app = get_auth_app()
        environ = wsgi_environ(request)
        try:
            identity = authenticate(environ, auth_app.verifier)
        except HttpError as error:
            return http_response(refusal_response(environ, error, cors=auth_app.cors))
        request.wsgiauth_identity = identity
        return view(request, *args, **kwargs)

    return wrapper


def wsgi_environ(request: Any) -> dict[str, Any]:
    """``request.META`` with the path back in its PEP 3333 form, as wsgiauth reads it.

    Django replaces ``PATH_INFO`` with decoded text: a non-ASCII protected prefix
    would never match it, and rendering a refusal would decode the path twice.
    """
    meta: dict[str, Any] = request.META
    path = meta.get("PATH_INFO", "")
    if path.isascii():
        return meta  # the common case: the same text in both forms, no copy
    return {**meta, "PATH_INFO": path.encode("utf-8").decode("latin-1")}


def http_response(response: Response) -> HttpResponse:
    """The core's refusal (or preflight answer) as Django's response, headers as sent."""
    reason = response.status.partition(" ")[2]
    django_response = HttpResponse(
        response.body, status=response.status_code, reason=reason, headers=response.headerlist
    )
    if "Content-Type" not in response.headers:
        del django_response.headers["Content-Type"]  # Django's default; a 204 has no body
    return django_response
