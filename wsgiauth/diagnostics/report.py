"""What the diagnostics page shows, as JSON-ready data: providers, cookies, keys, catalog.

Per provider and environment: the callback URL to register, the cookies' attributes
and why they get them, and the probes' results; then the key store (keys, their age,
the next rotation) and the catalog (entity count, last reload, last error). No
secret ever goes in: no client secret, session secret, token or private key, and
the probes' URLs lose their userinfo and query.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from collections.abc import Mapping
from typing import TYPE_CHECKING
from typing import Any
from urllib.parse import urlsplit

from ..catalog.yaml_catalog import YamlCatalog
from ..errors import HttpError
from ..identity.key_stores import StaticKeyStore
from ..identity.token_factory import KEY_LISTING_FACTOR
from ..identity.types import RotatableKeyStore
from ..oauth.cookies import default_cookie_configurer
from ..oauth.environment import EnvironmentHandler
from .probes import run_probes

if TYPE_CHECKING:
    from ..catalog.types import Catalog
    from ..http import HttpClient
    from ..identity.types import KeyStore
    from ..oauth.route_handlers import OAuthRouteHandlers
    from ..types import AuthProviderRouteHandlers

__all__ = ["build_report"]


def build_report(
    *,
    environment: str,
    base_url: str,
    app_url: str,
    providers: Mapping[str, AuthProviderRouteHandlers],
    key_store: KeyStore,
    key_duration_seconds: int,
    catalog: Catalog,
    http: HttpClient,
    clock: Callable[[], float],
) -> dict[str, Any]:
    """Everything the page shows; the providers' probes run concurrently.

    :param http: the client to probe with, already on the probes' short timeouts.
    :param key_duration_seconds: the token lifetime, which is each generated key's.
    """
    environments: list[tuple[str, str, OAuthRouteHandlers]] = []
    proxies: list[str] = []
    for provider_id, handlers in sorted(providers.items()):
        if isinstance(handlers, EnvironmentHandler):
            for env, env_handlers in sorted(handlers.handlers.items()):
                environments.append((provider_id, env, env_handlers))
        else:
            proxies.append(provider_id)
    probes = run_probes(http, environments, clock)
    shown: list[dict[str, Any]] = [
        {
            "provider": provider_id,
            "environment": env,
            "kind": "oauth",
            "callbackUrl": handlers.callback_url,
            "cookies": _cookies(provider_id, base_url, handlers),
            "probes": probes[(provider_id, env)],
        }
        for provider_id, env, handlers in environments
    ]
    shown += [
        {
            "provider": provider_id,
            "kind": "proxy",
            "note": "Refresh only: the identity comes from the request, there is no callback",
        }
        for provider_id in proxies
    ]
    return {
        "environment": environment,
        "authBaseUrl": base_url,
        "appUrl": app_url,
        "generatedAt": _iso(clock()),
        "providers": shown,
        "keyStore": _keys(key_store, key_duration_seconds, clock()),
        "catalog": _catalog(catalog),
    }


def _cookies(provider_id: str, base_url: str, handlers: OAuthRouteHandlers) -> dict[str, Any]:
    app_origin = handlers.app_origin
    settings = handlers.cookies.settings(app_origin)
    default = default_cookie_configurer(provider_id, base_url, handlers.callback_url, app_origin)
    reasons = (
        _cookie_reasons(handlers.callback_url, app_origin, settings.same_site, settings.secure)
        if settings == default
        else ["set by the cookie_configurer passed to create_auth_app"]
    )
    return {
        "forAppOrigin": app_origin,
        "sameSite": settings.same_site.capitalize(),
        "secure": settings.secure,
        "path": settings.path,
        "domain": settings.domain,
        "httpOnly": True,
        "noncePath": f"{settings.path}/handler",
        "why": reasons,
    }


def _cookie_reasons(callback_url: str, app_origin: str, same_site: str, secure: bool) -> list[str]:
    """Why the cookies get the attributes they get (Backstage's default configurer)."""
    callback = urlsplit(callback_url)
    reasons = [
        "Secure: the callback URL is https"
        if secure
        else "not Secure: the callback URL is http (browsers drop Secure cookies over http)"
    ]
    if same_site == "none":
        reasons.append(
            f"SameSite=None: the app ({app_origin}) is on another host than the callback "
            f"({callback.hostname}), so the cookies must travel with cross-site requests"
        )
    elif urlsplit(app_origin).hostname != callback.hostname:
        reasons.append(
            f"SameSite={same_site.capitalize()}: the app is on another host than the callback, "
            "but SameSite=None needs Secure (https); cross-site refreshes will lack the cookie"
        )
    else:
        reasons.append(f"SameSite={same_site.capitalize()}: the app and the callback share a host")
    reasons.append("Path: the provider's routes under the callback URL, so no other path gets them")
    return reasons


def _keys(store: KeyStore, duration: int, now: float) -> dict[str, Any]:
    """The store's public keys with their age and dates; never a private key."""
    kind = type(store).__name__
    try:
        stored = sorted(store.list_keys(), key=lambda s: (s.created_at, str(s.key.get("kid"))))
        mark = store.rotation_requested_at() if isinstance(store, RotatableKeyStore) else None
    except HttpError as error:
        return {"store": kind, "ok": False, "error": error.message}
    static = isinstance(store, StaticKeyStore)
    keys = [
        {
            "kid": str(s.key.get("kid")),
            "algorithm": str(s.key.get("alg", "?")),
            "createdAt": _iso(s.created_at) if not static else None,
            "ageSeconds": round(now - s.created_at) if not static else None,
            "signsUntil": _iso(s.created_at + duration) if not static else None,
            "listedUntil": _iso(s.created_at + KEY_LISTING_FACTOR * duration)
            if not static
            else None,
        }
        for s in stored
    ]
    upcoming = [s.created_at + duration for s in stored if s.created_at + duration > now]
    return {
        "store": kind,
        "ok": True,
        "keyLifetimeSeconds": duration,
        "keys": keys,
        "nextRotation": None if static or not upcoming else _iso(min(upcoming)),
        "rotationRequestedAt": _iso(mark) if mark is not None else None,
        "note": "static keys never rotate by themselves"
        if static
        else "each process signs with its own key for one token lifetime, then makes another",
    }


def _catalog(catalog: Catalog) -> dict[str, Any]:
    if not isinstance(catalog, YamlCatalog):
        return {"kind": type(catalog).__name__, "note": "a catalog of the app's own"}
    return {
        "kind": "YamlCatalog",
        "entities": len(catalog.entities),
        "lastReload": _iso(catalog.loaded_at),
        "lastError": catalog.last_error,
    }


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
