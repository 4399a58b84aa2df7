"""The diagnostics page's route, ``<auth base>/.diagnostics``: access, then HTML or JSON.

Most failed deployments are a callback URL the provider does not know, a cookie
the browser drops (``Secure`` over http, ``SameSite`` across sites), a clock
that disagrees with the provider's, or a provider the server cannot reach.
The page shows each of them per provider and environment (:mod:`.report`), as
HTML for a person (:mod:`.page`) and JSON (``?format=json`` or
``Accept: application/json``) for a script, to whoever :mod:`.access` lets in.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from collections.abc import Mapping
from typing import TYPE_CHECKING
from typing import Any

from webob import Response

from ..errors import MethodNotAllowedError
from ..identity.token_factory import read_token_expiration
from ..responses import json_response
from .access import DiagnosticsAccess
from .access import diagnostics_access_from_config
from .page import render_html
from .probes import PROBE_CONNECT_TIMEOUT
from .probes import PROBE_READ_TIMEOUT
from .report import build_report

if TYPE_CHECKING:
    from webob import Request

    from ..catalog.types import Catalog
    from ..config import Config
    from ..http import HttpClient
    from ..identity.types import KeyStore
    from ..types import AuthProviderRouteHandlers

__all__ = ["DIAGNOSTICS_PATH", "Diagnostics", "diagnostics_routes"]

#: Where the page is, under the auth base path.
DIAGNOSTICS_PATH = "/.diagnostics"


def diagnostics_routes(
    config: Config,
    *,
    environment: str,
    base_url: str,
    app_url: str,
    providers: Mapping[str, AuthProviderRouteHandlers],
    key_store: KeyStore,
    catalog: Catalog,
    http: HttpClient,
) -> dict[str, Callable[[Request], Response]]:
    """``{DIAGNOSTICS_PATH: handler}`` for the auth app's routes, or ``{}`` when not served."""
    access = diagnostics_access_from_config(config, environment)
    if access is None:
        return {}
    return {
        DIAGNOSTICS_PATH: Diagnostics(
            access,
            environment=environment,
            base_url=base_url,
            app_url=app_url,
            providers=providers,
            key_store=key_store,
            key_duration_seconds=read_token_expiration(config),
            catalog=catalog,
            http=http,
        )
    }


class Diagnostics:
    """The page's handler: checks access, builds the report, renders HTML or JSON.

    :param providers: the auth app's providers (provider id → route handlers).
    :param http: the outbound client; probes use it with short timeouts.
    :param key_duration_seconds: the token lifetime, which is each generated key's.
    """

    def __init__(
        self,
        access: DiagnosticsAccess,
        *,
        environment: str,
        base_url: str,
        app_url: str,
        providers: Mapping[str, AuthProviderRouteHandlers],
        key_store: KeyStore,
        key_duration_seconds: int,
        catalog: Catalog,
        http: HttpClient,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.access = access
        self.environment = environment
        self.base_url = base_url
        self.app_url = app_url
        self.providers = dict(providers)
        self.key_store = key_store
        self.key_duration_seconds = key_duration_seconds
        self.catalog = catalog
        self.http = http.with_timeouts(PROBE_CONNECT_TIMEOUT, PROBE_READ_TIMEOUT)
        self._clock = clock

    def __call__(self, request: Request) -> Response:
        """``GET <auth base>/.diagnostics``: the report, as HTML or JSON."""
        if request.method not in ("GET", "HEAD"):
            raise MethodNotAllowedError(
                f"Method {request.method} is not allowed for '.diagnostics'", allow=("GET",)
            )
        self.access.check(request)
        report = self.report()
        offers = request.accept.acceptable_offers(["text/html", "application/json"])
        wants_json = request.GET.get("format") == "json" or (
            request.GET.get("format") is None
            and bool(offers)
            and offers[0][0] == "application/json"
        )
        if wants_json:
            return json_response(report)
        response = Response(
            body=render_html(report).encode("utf-8"),
            content_type="text/html",
            charset="utf-8",
        )
        response.cache_control = "no-store"
        # No script at all; the one inline style block is the page's only resource.
        response.headers["Content-Security-Policy"] = (
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"
        )
        return response

    def report(self) -> dict[str, Any]:
        """Everything the page shows, as JSON-ready data; probes run concurrently."""
        return build_report(
            environment=self.environment,
            base_url=self.base_url,
            app_url=self.app_url,
            providers=self.providers,
            key_store=self.key_store,
            key_duration_seconds=self.key_duration_seconds,
            catalog=self.catalog,
            http=self.http,
            clock=self._clock,
        )
