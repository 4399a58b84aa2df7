"""The demo portal: a small plain-WSGI app that shows sign-in end to end in a browser.

``wsgiauth serve`` wraps it by default (``--app wsgiauth.demo:application``) and
calls :meth:`DemoPortal.configure` with the loaded app-config, so the page offers
one sign-in button per configured provider. It is plain WSGI on purpose: it shows
what any app sees behind :class:`~wsgiauth.middleware.AuthMiddleware` and
:class:`~wsgiauth.identity.middleware.IdentityMiddleware`.

Routes:

- ``GET /``: the page (``static/index.html``), which loads the browser client from
  the auth app and its own script; no inline script, and a Content-Security-Policy
  that allows scripts and requests only from this origin and the auth backend's;
- ``GET /static/portal.js``, ``/static/portal.css``;
- ``GET /api/providers``: the auth base URL, the environment and the configured
  providers (``id``, and ``kind``: ``"proxy"`` or ``"oauth"``), for the page;
- ``GET /api/me``: a protected API. It needs a valid identity token
  (``Authorization: Bearer``) and answers with the verified identity.

Not for production: it is a demonstration, and the guest provider it usually
offers refuses to run outside ``development``.
"""

from __future__ import annotations

import hashlib
import html
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from string import Template
from typing import TYPE_CHECKING
from typing import Any
from urllib.parse import urlsplit

from webob import Request
from webob import Response

from ..app import DEFAULT_BASE_PATH
from ..errors import AuthenticationError
from ..errors import HttpError
from ..errors import MethodNotAllowedError
from ..errors import NotFoundError
from ..identity.verifier import BackstageIdentity
from ..origins import origin_of
from ..responses import error_response
from ..responses import json_response

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse
    from _typeshed.wsgi import WSGIEnvironment

    from ..config import Config

__all__ = ["DemoPortal", "DemoProvider", "application", "make_application"]

#: The portal's own files: the only names ``/static/`` serves (no path from the URL
#: ever reaches the file system).
_STATIC_TYPES = {
    "portal.js": "text/javascript; charset=utf-8",
    "portal.css": "text/css; charset=utf-8",
}
_IDENTITY_KEY = "wsgiauth.identity"


@dataclass(frozen=True, slots=True)
class DemoProvider:
    """A sign-in button of the page."""

    #: The provider id, as under ``auth.providers``.
    id: str
    #: ``"oauth"`` (popup or redirect sign-in) or ``"proxy"`` (refresh only, e.g. guest).
    kind: str

    def to_json(self) -> dict[str, Any]:
        """The wire shape of ``/api/providers``; titles and default scopes are the client's."""
        return {"id": self.id, "kind": self.kind}


@cache
def _resource(name: str) -> bytes:
    return (files(__name__) / "static" / name).read_bytes()


def _etag(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()[:32]


class DemoPortal:
    """The portal as a WSGI app; :func:`make_application` builds one from an app-config.

    :param providers: the sign-in buttons, in order.
    :param auth_base_url: where the browser reaches the auth app: a path when it is on
        the page's origin, else an absolute URL (then allowed by the page's CSP).
    :param environment: the ``env`` the page sends to OAuth providers.
    """

    #: Paths that need a valid identity token; ``wsgiauth serve`` passes them to
    #: :class:`~wsgiauth.identity.middleware.IdentityMiddleware`.
    protected_paths: tuple[str, ...] = ("/api/me",)

    def __init__(
        self,
        providers: Sequence[DemoProvider] = (),
        *,
        auth_base_url: str = DEFAULT_BASE_PATH,
        environment: str = "development",
    ) -> None:
        self.providers = tuple(providers)
        self.auth_base_url = auth_base_url.rstrip("/")
        self.environment = environment
        sources = "'self'"
        if "://" in self.auth_base_url:
            sources += " " + origin_of(self.auth_base_url)
        # The page runs only its own script and the client; nothing inline, no plugins,
        # no framing. Profile pictures may come from the identity provider (https).
        self.content_security_policy = (
            f"default-src 'self'; script-src {sources}; connect-src {sources}; "
            "img-src 'self' https: data:; style-src 'self'; object-src 'none'; "
            "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        )
        self._page = self._render_page()

    def configure(self, config: Config) -> DemoPortal:
        """A portal for this app-config; ``wsgiauth serve`` calls it with the loaded config."""
        return make_application(config)

    def _render_page(self) -> bytes:
        template = Template(_resource("index.html").decode("utf-8"))
        page = template.substitute(auth_base=html.escape(self.auth_base_url, quote=True))
        return page.encode("utf-8")

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        try:
            response = self.handle(request)
        except HttpError as error:
            response = error_response(request, error)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        return response(environ, start_response)

    def handle(self, request: Request) -> Response:
        """Route one request; raises :class:`~wsgiauth.errors.HttpError` on failure."""
        path = request.path_info or "/"
        if path == "/":
            route = self._index
        elif path == "/api/providers":
            route = self._providers
        elif path == "/api/me":
            route = self._me
        elif path.startswith("/static/") and path[len("/static/") :] in _STATIC_TYPES:
            route = self._static
        else:
            raise NotFoundError(f"Not found: {path}")
        if request.method not in ("GET", "HEAD"):
            raise MethodNotAllowedError(
                f"Method {request.method} is not allowed for '{path}'", allow=("GET", "HEAD")
            )
        return route(request)

    def _index(self, request: Request) -> Response:
        response = Response(
            body=self._page,
            content_type="text/html",
            charset="utf-8",
            cache_control="no-cache",
        )
        response.headers["Content-Security-Policy"] = self.content_security_policy
        return response

    def _static(self, request: Request) -> Response:
        name = request.path_info[len("/static/") :]
        body = _resource(name)
        etag = _etag(body)
        if etag in request.if_none_match:
            return Response(status=304, headerlist=[("ETag", f'"{etag}"')])
        return Response(
            body=body,
            headerlist=[
                ("Content-Type", _STATIC_TYPES[name]),
                ("Cache-Control", "no-cache"),
                ("ETag", f'"{etag}"'),
            ],
        )

    def _providers(self, request: Request) -> Response:
        return json_response(
            {
                "authBaseUrl": self.auth_base_url,
                "environment": self.environment,
                "providers": [provider.to_json() for provider in self.providers],
            }
        )

    def _me(self, request: Request) -> Response:
        identity = request.environ.get(_IDENTITY_KEY)
        # IdentityMiddleware already refuses requests without a valid token here; check
        # again so the API stays closed if the portal is ever served without it.
        if not isinstance(identity, BackstageIdentity):
            raise AuthenticationError("Missing credentials")
        return json_response(
            {
                "userEntityRef": identity.user_entity_ref,
                "ownershipEntityRefs": list(identity.ownership_entity_refs),
                "remoteUser": request.environ.get("REMOTE_USER"),
                "claims": dict(identity.claims),
            }
        )


def _provider_kind(config: Config, provider_id: str, environment: str) -> str:
    """OAuth providers are configured per environment (spec §7); proxy providers are not."""
    provider = config.get_optional_config(f"auth.providers.{provider_id}")
    if provider is not None and isinstance(provider.get(environment), dict):
        return "oauth"
    return "proxy"


def make_application(config: Config) -> DemoPortal:
    """The portal for an app-config: one button per ``auth.providers`` entry.

    The auth base URL is a path when ``backend.baseUrl`` shares ``app.baseUrl``'s
    origin (so the page works whatever port it is served on), else absolute.
    """
    environment = config.get_optional_string("auth.environment") or "development"
    base_path = "/" + (config.get_optional_string("auth.basePath") or DEFAULT_BASE_PATH).strip("/")
    backend_url = config.get_string("backend.baseUrl").rstrip("/")
    auth_base_url = backend_url + base_path
    if origin_of(backend_url) == origin_of(config.get_string("app.baseUrl")):
        auth_base_url = urlsplit(backend_url).path + base_path
    providers_config = config.get_optional_config("auth.providers")
    providers = [
        DemoProvider(id=provider_id, kind=_provider_kind(config, provider_id, environment))
        for provider_id in (providers_config.keys() if providers_config is not None else ())
    ]
    return DemoPortal(providers, auth_base_url=auth_base_url, environment=environment)


#: What ``wsgiauth serve`` imports; it calls :meth:`DemoPortal.configure` with the config.
#: Served as is, it shows no sign-in buttons.
application = DemoPortal()
