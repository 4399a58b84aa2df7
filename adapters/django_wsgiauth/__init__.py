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
import os
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpResponse

from wsgiauth import AuthApp
from wsgiauth import BackstageIdentity
from wsgiauth import Config
from wsgiauth import ConfigError
from wsgiauth import IdentityMiddleware
from wsgiauth import create_auth_app
from wsgiauth import load_config

__all__ = ["AnonymousIdentityUser", "IdentityUser", "get_auth_app", "login_required", "options"]


def options() -> dict[str, Any]:
    """``settings.WSGIAUTH``, checked to be a dict."""
    value = getattr(settings, "WSGIAUTH", None)
    if not isinstance(value, dict):
        raise ConfigError("missing: set it to a dict with at least CONFIG", path="WSGIAUTH")
    return value


def get_auth_app() -> AuthApp:
    """The auth app of ``WSGIAUTH["CONFIG"]``, one per config, shared by wrap and middleware."""
    source = options().get("CONFIG")
    if isinstance(source, AuthApp):
        return source
    if isinstance(source, str | os.PathLike):
        source = (os.fspath(source),)
    elif isinstance(source, list | tuple):
        source = tuple(os.fspath(path) for path in source)
    return _build(source)


@functools.lru_cache(maxsize=16)
def _build(source: Any) -> AuthApp:
    # One auth app per config: its verifier must see the keys that app signs with.
    if isinstance(source, Config):
        auth_app = create_auth_app(source)
    elif isinstance(source, tuple) and source and all(path.strip() for path in source):
        auth_app = create_auth_app(load_config(*source))
    else:
        raise ConfigError("missing: set it to the app-config file path(s)", path="WSGIAUTH.CONFIG")
    if auth_app.verifier is None:
        raise ConfigError("the auth app has no identity verifier", path="WSGIAUTH.CONFIG")
    return auth_app


@functools.lru_cache(maxsize=16)
def gate(auth_app: AuthApp, protected: tuple[str, ...] | None = None) -> IdentityMiddleware:
    """The core's identity check as a gate: on ``protected`` prefixes (None: every path)."""
    assert auth_app.verifier is not None  # noqa: S101 - checked in _build
    paths: Any = (lambda environ: True) if protected is None else protected
    return IdentityMiddleware(_passed, auth_app.verifier, protected=paths)


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
        refusal = refuse(gate(get_auth_app()), request.META)
        if refusal is not None:
            return refusal
        request.wsgiauth_identity = request.META["wsgiauth.identity"]
        return view(request, *args, **kwargs)

    return wrapper


def refuse(gate: IdentityMiddleware, environ: dict[str, Any]) -> HttpResponse | None:
    """Run the gate: None when it lets the request through, else its answer as a response."""
    seen: list[Any] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        seen[:] = [status, headers]
        return seen.append

    body = b"".join(gate(environ, start_response))
    if not seen:
        return None
    code, _, reason = seen[0].partition(" ")
    return HttpResponse(body, status=int(code), reason=reason, headers=seen[1])


def _passed(environ: Any, start_response: Any) -> list[bytes]:
    return []
