"""Provider probes: can this server reach each provider, how fast, and do the clocks agree.

Each OAuth environment is probed on its own thread (the endpoints its authenticator
names, :class:`~wsgiauth.oauth.SupportsProbes`: discovery and JWKS for OpenID
providers, the token endpoint for the others, SAML metadata), through the
:class:`~wsgiauth.http.HttpClient` with short timeouts; the page waits for all of
them at most :data:`PROBE_BUDGET` seconds, so one slow provider cannot make it slow.
URLs are shown without their userinfo and query, which may hold credentials.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING
from typing import Any
from typing import Literal
from urllib.parse import urlsplit
from urllib.parse import urlunsplit

from ..errors import HttpError
from ..oauth.types import SupportsProbes

if TYPE_CHECKING:
    from ..http import HttpClient
    from ..oauth.route_handlers import OAuthRouteHandlers

__all__ = [
    "PROBE_BUDGET",
    "PROBE_CONNECT_TIMEOUT",
    "PROBE_READ_TIMEOUT",
    "SKEW_WARNING_SECONDS",
    "run_probes",
]

#: The longest the page waits for all probes together (seconds).
PROBE_BUDGET = 4.0
#: Timeouts of one probe: connect, and between bytes of the answer (seconds).
PROBE_CONNECT_TIMEOUT = 1.5
PROBE_READ_TIMEOUT = 2.0
#: A clock further off the provider's than this is flagged (ID tokens allow ~60 s).
SKEW_WARNING_SECONDS = 30.0
_MAX_PROBE_THREADS = 8


def run_probes(
    http: HttpClient,
    environments: list[tuple[str, str, OAuthRouteHandlers]],
    clock: Callable[[], float],
) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Each ``(provider, environment)``'s probes, run at once; one past the budget says so.

    :param http: the client to probe with, already on the probes' short timeouts.
    """
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
            jobs[(provider_id, env)] = pool.submit(_probe_provider, http, handlers, clock)
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


def _probe_provider(
    http: HttpClient, handlers: OAuthRouteHandlers, clock: Callable[[], float]
) -> list[dict[str, Any]]:
    """The endpoints the authenticator names (:class:`~wsgiauth.oauth.SupportsProbes`),
    each as it asks; OpenID discovery leads to its JWKS."""
    authenticator = handlers.authenticator
    targets = authenticator.probe_targets() if isinstance(authenticator, SupportsProbes) else ()
    if not targets:
        return [{"target": "provider", "ok": None, "note": "nothing to probe at a known URL"}]
    probes: list[dict[str, Any]] = []
    for target in targets:
        if target.expect != "openid-discovery":
            probes.append(_probe(http, clock, target.name, target.url, expect=target.expect)[0])
            continue
        discovery, document = _probe(http, clock, target.name, target.url)
        probes.append(discovery)
        jwks_uri = document.get("jwks_uri") if isinstance(document, dict) else None
        if isinstance(jwks_uri, str) and jwks_uri.startswith(("https://", "http://")):
            jwks, keys = _probe(http, clock, "jwks", jwks_uri)
            if isinstance(keys, dict) and isinstance(keys.get("keys"), list):
                jwks["keys"] = len(keys["keys"])
            probes.append(jwks)
        elif discovery["ok"]:
            probes.append({"target": "jwks", "ok": False, "error": "no jwks_uri in discovery"})
    return probes


def _probe(
    http: HttpClient,
    clock: Callable[[], float],
    target: str,
    url: str,
    *,
    expect: Literal["json", "document", "answer"] = "json",
) -> tuple[dict[str, Any], Any]:
    """GET ``url`` once: status, time taken, clock skew from ``Date``; the body if JSON.

    :param expect: what makes it ok: a 2xx JSON document, any 2xx document, or any
        answer short of a 5xx (a token endpoint refuses a GET, and still answered).
    """
    json_body = expect == "json"
    result: dict[str, Any] = {"target": target, "url": _shown_url(url)}
    sent = clock()
    started = time.monotonic()
    try:
        response = http.request("GET", url, headers={"Accept": "application/json"})
    except HttpError as error:
        result.update(ok=False, error=error.message, ms=round((time.monotonic() - started) * 1000))
        return result, None
    received = clock()
    result["ms"] = round((time.monotonic() - started) * 1000)
    result["status"] = response.status
    result["ok"] = response.status < 500 if expect == "answer" else response.ok
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


def _skew(date: str | None, local: float) -> float | None:
    """Our clock minus the provider's, in seconds (its ``Date`` is to the second)."""
    if not date:
        return None
    try:
        theirs = parsedate_to_datetime(date).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return round(local - theirs, 1)
