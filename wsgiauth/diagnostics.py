"""The diagnostics page, ``<auth base>/.diagnostics``: what a sign-in depends on, at a glance.

Most failed deployments are a callback URL the provider does not know, a cookie
the browser drops (``Secure`` over http, ``SameSite`` across sites), a clock
that disagrees with the provider's, or a provider the server cannot reach.
This page shows each of them per provider and environment, as wsgiauth sees
them, plus the key store (keys, their age, the next rotation) and the catalog
(entity count, last reload, last error). It is HTML for a person and JSON
(``?format=json`` or ``Accept: application/json``) for a script.

It is served in ``development``, and elsewhere only when
``auth.diagnostics.enabled`` is set, and then only with ``auth.diagnostics.token``
as a bearer token (compared in constant time). It never shows a secret: no
client secret, session secret, token or private key is ever put in the report,
and the URLs it shows lose their userinfo and query. Providers are probed
concurrently, through the :class:`~wsgiauth.http.HttpClient` with short
timeouts, and the page waits for them at most :data:`PROBE_BUDGET` seconds, so
one slow provider cannot make it slow.
"""

from __future__ import annotations

import hmac
import html
import json
import time
from collections.abc import Callable
from collections.abc import Mapping
from concurrent.futures import Future
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING
from typing import Any
from urllib.parse import urlsplit
from urllib.parse import urlunsplit

from webob import Response

from .catalog.yaml_catalog import YamlCatalog
from .errors import AuthenticationError
from .errors import HttpError
from .errors import MethodNotAllowedError
from .identity.key_stores import StaticKeyStore
from .identity.token_factory import KEY_LISTING_FACTOR
from .identity.token_factory import read_token_expiration
from .identity.types import RotatableKeyStore
from .oauth.cookies import default_cookie_configurer
from .oauth.environment import EnvironmentHandler
from .responses import json_response

if TYPE_CHECKING:
    from webob import Request

    from .catalog.types import Catalog
    from .config import Config
    from .http import HttpClient
    from .identity.types import KeyStore
    from .oauth.route_handlers import OAuthRouteHandlers
    from .types import AuthProviderRouteHandlers

__all__ = [
    "DIAGNOSTICS_PATH",
    "MIN_TOKEN_LENGTH",
    "PROBE_BUDGET",
    "PROBE_CONNECT_TIMEOUT",
    "PROBE_READ_TIMEOUT",
    "SKEW_WARNING_SECONDS",
    "Diagnostics",
    "DiagnosticsAccess",
    "diagnostics_access_from_config",
    "diagnostics_routes",
    "render_html",
]

#: Where the page is, under the auth base path.
DIAGNOSTICS_PATH = "/.diagnostics"
#: The longest the page waits for all probes together (seconds).
PROBE_BUDGET = 4.0
#: Timeouts of one probe: connect, and between bytes of the answer (seconds).
PROBE_CONNECT_TIMEOUT = 1.5
PROBE_READ_TIMEOUT = 2.0
#: A clock further off the provider's than this is flagged (ID tokens allow ~60 s).
SKEW_WARNING_SECONDS = 30.0
#: The least length of ``auth.diagnostics.token``: it guards the page outside development.
MIN_TOKEN_LENGTH = 32
_MAX_PROBE_THREADS = 8

_ENABLED = "auth.diagnostics.enabled"
_TOKEN = "auth.diagnostics.token"  # noqa: S105 - a config key, not a password


@dataclass(frozen=True, slots=True)
class DiagnosticsAccess:
    """Who may see the page: anyone in development without a token, else token holders."""

    #: ``auth.diagnostics.token``; None only in development, where the page is open.
    token: str | None

    def check(self, request: Request) -> None:
        """Raise ``AuthenticationError`` unless the request carries the token (if one is set)."""
        if self.token is None:
            return
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        # compare_digest: how much of a guess matched must not show in the time taken.
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode("utf-8"), self.token.encode("utf-8")
        ):
            raise AuthenticationError("The diagnostics page needs its token")


def diagnostics_access_from_config(config: Config, environment: str) -> DiagnosticsAccess | None:
    """The page's access rule from ``auth.diagnostics``; None when it is not served.

    :raises ConfigError: enabled outside development without a token of at least
        :data:`MIN_TOKEN_LENGTH` characters.
    """
    development = environment == "development"
    enabled = config.get_optional_bool(_ENABLED)
    if enabled is None:
        enabled = development
    if not enabled:
        return None
    token = config.get_optional_string(_TOKEN)
    if token is not None and len(token) < MIN_TOKEN_LENGTH:
        raise config.error(_TOKEN, f"must be at least {MIN_TOKEN_LENGTH} characters long")
    if token is None and not development:
        raise config.error(
            _TOKEN, f"required when {_ENABLED} is set outside development (auth.environment)"
        )
    return DiagnosticsAccess(token)


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


def _shown_url(url: str) -> str:
    """``url`` without userinfo, query or fragment: they may hold credentials."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = f"{host}:{port}" if port is not None else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


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

    # -- the report ---------------------------------------------------------------------

    def report(self) -> dict[str, Any]:
        """Everything the page shows, as JSON-ready data; probes run concurrently."""
        environments: list[tuple[str, str, OAuthRouteHandlers]] = []
        proxies: list[str] = []
        for provider_id, handlers in sorted(self.providers.items()):
            if isinstance(handlers, EnvironmentHandler):
                for env, env_handlers in sorted(handlers.handlers.items()):
                    environments.append((provider_id, env, env_handlers))
            else:
                proxies.append(provider_id)
        probes = self._run_probes(environments)
        providers: list[dict[str, Any]] = [
            {
                "provider": provider_id,
                "environment": env,
                "kind": "oauth",
                "callbackUrl": handlers.callback_url,
                "cookies": self._cookies(provider_id, handlers),
                "probes": probes[(provider_id, env)],
            }
            for provider_id, env, handlers in environments
        ]
        providers += [
            {
                "provider": provider_id,
                "kind": "proxy",
                "note": "Refresh only: the identity comes from the request, there is no callback",
            }
            for provider_id in proxies
        ]
        return {
            "environment": self.environment,
            "authBaseUrl": self.base_url,
            "appUrl": self.app_url,
            "generatedAt": _iso(self._clock()),
            "providers": providers,
            "keyStore": self._keys(),
            "catalog": self._catalog(),
        }

    def _cookies(self, provider_id: str, handlers: OAuthRouteHandlers) -> dict[str, Any]:
        app_origin = handlers.app_origin
        settings = handlers.cookies.settings(app_origin)
        default = default_cookie_configurer(
            provider_id, self.base_url, handlers.callback_url, app_origin
        )
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

    def _run_probes(
        self, environments: list[tuple[str, str, OAuthRouteHandlers]]
    ) -> dict[tuple[str, str], list[dict[str, Any]]]:
        """Each environment's probes, run at once; a probe past the budget is reported so."""
        results: dict[tuple[str, str], list[dict[str, Any]]] = {}
        jobs: dict[tuple[str, str], Future[list[dict[str, Any]]]] = {}
        if not environments:
            return results
        pool = ThreadPoolExecutor(
            max_workers=min(_MAX_PROBE_THREADS, len(environments)),
            thread_name_prefix="wsgiauth-diagnostics",
        )
        try:
            for provider_id, env, handlers in environments:
                jobs[(provider_id, env)] = pool.submit(self._probe_provider, handlers)
            wait(jobs.values(), timeout=PROBE_BUDGET)
        finally:
            # Never wait for a straggler: its own timeouts end it in the background.
            pool.shutdown(wait=False, cancel_futures=True)
        for key, job in jobs.items():
            if job.done() and not job.cancelled() and job.exception() is None:
                results[key] = job.result()
            else:
                results[key] = [
                    {"target": "provider", "ok": False, "error": f"no answer in {PROBE_BUDGET:g} s"}
                ]
        return results

    def _probe_provider(self, handlers: OAuthRouteHandlers) -> list[dict[str, Any]]:
        """Discovery and JWKS for OpenID providers, else whether the token endpoint answers."""
        authenticator = handlers.authenticator
        metadata_url = getattr(authenticator, "metadata_url", None)
        if isinstance(metadata_url, str):
            discovery, document = self._probe("discovery", metadata_url)
            probes = [discovery]
            jwks_uri = document.get("jwks_uri") if isinstance(document, dict) else None
            if isinstance(jwks_uri, str) and jwks_uri.startswith(("https://", "http://")):
                jwks, keys = self._probe("jwks", jwks_uri)
                if isinstance(keys, dict) and isinstance(keys.get("keys"), list):
                    jwks["keys"] = len(keys["keys"])
                probes.append(jwks)
            elif discovery["ok"]:
                probes.append({"target": "jwks", "ok": False, "error": "no jwks_uri in discovery"})
            return probes
        token_url = getattr(authenticator, "token_url", None)
        if isinstance(token_url, str):
            return [self._probe("token endpoint", token_url, json_body=False)[0]]
        return [{"target": "provider", "ok": None, "note": "nothing to probe at a known URL"}]

    def _probe(
        self, target: str, url: str, *, json_body: bool = True
    ) -> tuple[dict[str, Any], Any]:
        """GET ``url`` once: status, time taken, clock skew from ``Date``; the body if JSON."""
        result: dict[str, Any] = {"target": target, "url": _shown_url(url)}
        sent = self._clock()
        started = time.monotonic()
        try:
            response = self.http.request("GET", url, headers={"Accept": "application/json"})
        except HttpError as error:
            result.update(
                ok=False, error=error.message, ms=round((time.monotonic() - started) * 1000)
            )
            return result, None
        received = self._clock()
        result["ms"] = round((time.monotonic() - started) * 1000)
        result["status"] = response.status
        # A token endpoint refuses a GET (400, 405): it still answered, which is the point.
        result["ok"] = response.ok if json_body else response.status < 500
        result["clockSkewSeconds"] = _skew(response.headers.get("Date"), (sent + received) / 2)
        if result["clockSkewSeconds"] is not None and (
            abs(result["clockSkewSeconds"]) > SKEW_WARNING_SECONDS
        ):
            result["warning"] = "this server's clock is off the provider's: ID tokens may fail"
        document = None
        if json_body and response.ok:
            try:
                document = json.loads(response.body)
            except (ValueError, RecursionError):
                result.update(ok=False, error="the answer is not JSON")
        return result, document

    def _keys(self) -> dict[str, Any]:
        store = self.key_store
        now = self._clock()
        kind = type(store).__name__
        try:
            stored = sorted(store.list_keys(), key=lambda s: (s.created_at, str(s.key.get("kid"))))
            mark = store.rotation_requested_at() if isinstance(store, RotatableKeyStore) else None
        except HttpError as error:
            return {"store": kind, "ok": False, "error": error.message}
        static = isinstance(store, StaticKeyStore)
        duration = self.key_duration_seconds
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

    def _catalog(self) -> dict[str, Any]:
        catalog = self.catalog
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


def _skew(date: str | None, local: float) -> float | None:
    """Our clock minus the provider's, in seconds (its ``Date`` is to the second)."""
    if not date:
        return None
    try:
        theirs = parsedate_to_datetime(date).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return round(local - theirs, 1)


# --- HTML ------------------------------------------------------------------------------


_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em;max-width:70em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;
padding:.3em .6em;text-align:left;vertical-align:top}th{background:#f4f4f4}
.bad{color:#b00020;font-weight:600}.ok{color:#1b5e20}code{background:#f4f4f4;padding:0 .2em}
"""


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value))


def _ok(value: object) -> str:
    if value is None:
        return "<span>n/a</span>"
    return '<span class="ok">yes</span>' if value else '<span class="bad">no</span>'


def _probe_row(probe: Mapping[str, Any]) -> str:
    detail = [
        f"HTTP {_e(probe['status'])}" if "status" in probe else "",
        f"{_e(probe['ms'])} ms" if "ms" in probe else "",
        f"{_e(probe['keys'])} keys" if "keys" in probe else "",
        _e(probe.get("error") or probe.get("note") or ""),
    ]
    skew = probe.get("clockSkewSeconds")
    warning = probe.get("warning")
    skew_cell = "n/a" if skew is None else f"{skew:+g} s"
    if warning:
        skew_cell += f' <span class="bad">{_e(warning)}</span>'
    return (
        f"<tr><td>{_e(probe['target'])}</td><td><code>{_e(probe.get('url', ''))}</code></td>"
        f"<td>{_ok(probe.get('ok'))}</td><td>{', '.join(d for d in detail if d)}</td>"
        f"<td>{skew_cell}</td></tr>"
    )


def _provider_section(provider: Mapping[str, Any]) -> str:
    if provider["kind"] == "proxy":
        return f"<h3>{_e(provider['provider'])} (proxy)</h3><p>{_e(provider['note'])}</p>"
    cookies = provider["cookies"]
    why = "".join(f"<li>{_e(reason)}</li>" for reason in cookies["why"])
    probes = "".join(_probe_row(probe) for probe in provider["probes"])
    return (
        f"<h3>{_e(provider['provider'])} — environment {_e(provider['environment'])}</h3>"
        "<p>Callback URL to register at the provider: "
        f'<code class="callback">{_e(provider["callbackUrl"])}</code></p>'
        "<table><tr><th>Cookie attribute</th><th>Value</th></tr>"
        f"<tr><td>SameSite</td><td>{_e(cookies['sameSite'])}</td></tr>"
        f"<tr><td>Secure</td><td>{_e(cookies['secure'])}</td></tr>"
        f"<tr><td>Path</td><td><code>{_e(cookies['path'])}</code> (nonce: "
        f"<code>{_e(cookies['noncePath'])}</code>)</td></tr>"
        f"<tr><td>HttpOnly</td><td>{_e(cookies['httpOnly'])}</td></tr></table>"
        f"<ul>{why}</ul>"
        "<table><tr><th>Probe</th><th>URL</th><th>Answers</th><th>Detail</th>"
        f"<th>Clock skew (ours − theirs)</th></tr>{probes}</table>"
    )


def _keys_section(keys: Mapping[str, Any]) -> str:
    if not keys["ok"]:
        return f'<p class="bad">{_e(keys["store"])}: {_e(keys["error"])}</p>'
    rows = "".join(
        f"<tr><td><code>{_e(k['kid'])}</code></td><td>{_e(k['algorithm'])}</td>"
        f"<td>{_e(k['createdAt'])}</td><td>{_e(k['ageSeconds'])}</td>"
        f"<td>{_e(k['signsUntil'])}</td><td>{_e(k['listedUntil'])}</td></tr>"
        for k in keys["keys"]
    )
    return (
        f"<p>{_e(keys['store'])}: {len(keys['keys'])} keys. Next rotation: "
        f'<span class="next-rotation">{_e(keys["nextRotation"] or "none")}</span>. '
        f"Rotation requested: {_e(keys['rotationRequestedAt'] or 'never')}. {_e(keys['note'])}.</p>"
        "<table><tr><th>kid</th><th>Algorithm</th><th>Created</th><th>Age (s)</th>"
        f"<th>Signs until</th><th>Listed until</th></tr>{rows}</table>"
    )


def _catalog_section(catalog: Mapping[str, Any]) -> str:
    if catalog["kind"] != "YamlCatalog":
        return f"<p>{_e(catalog['kind'])}: {_e(catalog['note'])}</p>"
    error = catalog["lastError"]
    return (
        f'<p><span class="entities">{_e(catalog["entities"])}</span> entities, last reload '
        f"{_e(catalog['lastReload'])}. Last error: "
        + (f'<span class="bad">{_e(error)}</span>' if error else "none")
        + "</p>"
    )


def render_html(report: Mapping[str, Any]) -> str:
    """The report as one self-contained page: no script, every value escaped."""
    providers = "".join(_provider_section(p) for p in report["providers"])
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        "<title>wsgiauth diagnostics</title>"
        f"<style>{_STYLE}</style></head><body>"
        "<h1>wsgiauth diagnostics</h1>"
        f"<p>Environment <strong>{_e(report['environment'])}</strong>, auth base URL "
        f"<code>{_e(report['authBaseUrl'])}</code>, app <code>{_e(report['appUrl'])}</code>, "
        f"generated {_e(report['generatedAt'])}. "
        'JSON: <a href="?format=json">?format=json</a>.</p>'
        f"<h2>Providers</h2>{providers or '<p>No providers configured.</p>'}"
        f"<h2>Key store</h2>{_keys_section(report['keyStore'])}"
        f"<h2>Catalog</h2>{_catalog_section(report['catalog'])}"
        "</body></html>"
    )
