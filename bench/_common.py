"""Shared pieces of the benchmarks: the bare app, a no-network provider, configs, timing.

Every benchmark compares wsgiauth with a trivial WSGI app measured in the
same run, so the figures are ratios that survive a change of machine. The
provider is stubbed (:class:`BenchAuthenticator`) so that no figure contains
network time; the real ``oidc`` provider, when it exists, gets its discovery
document from :class:`CannedAdapter` instead of the network.

The wrapped app also has the real ``guest`` provider, which signs a real ES256
identity token on every ``/refresh``; its signing keys go to a
:class:`~wsgiauth.identity.key_stores.MemoryKeyStore`, so nothing is written to
disk and no database is involved.

The scripts put ``bench/`` on ``sys.path`` (Python does it for
``python bench/x.py``; gunicorn gets ``--pythonpath bench``) and import this
module as ``_common``.
"""

from __future__ import annotations

import importlib.util
import io
import json
import statistics
import time
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from typing import TYPE_CHECKING
from typing import Any
from urllib.parse import quote

import requests
from requests.adapters import BaseAdapter

from wsgiauth.app import AuthApp
from wsgiauth.app import create_auth_app
from wsgiauth.config import Config
from wsgiauth.http import HttpClient
from wsgiauth.identity.key_stores import MemoryKeyStore
from wsgiauth.oauth.provider_factory import create_oauth_provider_factory
from wsgiauth.oauth.types import OAuthAuthenticateInput
from wsgiauth.oauth.types import OAuthAuthenticatorResult
from wsgiauth.oauth.types import OAuthRefreshInput
from wsgiauth.oauth.types import OAuthSession
from wsgiauth.oauth.types import OAuthStartInput
from wsgiauth.oauth.types import OAuthStartResponse
from wsgiauth.sealing import CookieSealer
from wsgiauth.types import ProfileInfo
from wsgiauth.types import ProviderModule

if TYPE_CHECKING:
    from typing import Self

    from _typeshed.wsgi import StartResponse
    from _typeshed.wsgi import WSGIApplication
    from _typeshed.wsgi import WSGIEnvironment

APP_ORIGIN = "http://localhost:3000"
BACKEND = "http://localhost:7007"
#: A session secret, so refresh tokens are sealed as a production config would have them.
SESSION_SECRET = "bench-session-secret-0123456789abcdef"  # noqa: S105 - a fixed bench value
REFRESH_TOKEN = "bench-refresh-token"  # noqa: S105 - a fake token
IDP = "https://idp.bench.invalid"

START_PATH = "/api/auth/{id}/start?env=development&origin=" + quote(APP_ORIGIN, safe="")
REFRESH_PATH = "/api/auth/{id}/refresh?env=development"
OUTSIDE_PATH = "/app/dashboard?tab=1"
#: ``/refresh`` of the guest provider: a real identity token per request.
GUEST_REFRESH_PATH = "/api/auth/guest/refresh?env=development"
JWKS_PATH = "/api/auth/.well-known/jwks.json"


# -- the bare app -------------------------------------------------------------------------


def _no_write(data: bytes) -> None:
    """The ``write`` callable a no-op ``start_response`` hands back."""


def noop_start_response(status: str, headers: Any, exc_info: Any = None) -> Callable[[bytes], None]:
    """A ``start_response`` that does nothing, so timings contain only the app."""
    return _no_write


def bare_app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    """The trivial app every figure is compared with."""
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]


def call(app: WSGIApplication, environ: WSGIEnvironment) -> tuple[str, list[tuple[str, str]]]:
    """Call ``app`` once as a server would (iterate, close); return status and headers."""
    seen: list[Any] = []

    def start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
        seen[:] = [status, list(headers)]
        return _no_write

    result = app(environ, start_response)
    try:
        for _ in result:
            pass
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return seen[0], seen[1]


# -- a provider that does no network ------------------------------------------------------


class BenchAuthenticator:
    """A tiny OAuth authenticator: ``start`` builds a URL, ``refresh`` returns fixed tokens.

    No network and almost no work, so the figures measure wsgiauth's own route
    handling (state, nonce, PKCE, cookies, sealing, JSON), not a provider.
    """

    persist_scopes: bool = False
    required_scopes: tuple[str, ...] = ("openid", "profile", "email")

    def __init__(self, client_id: str) -> None:
        self.client_id = client_id

    @classmethod
    def from_config(cls, config: Config, *, callback_url: str, http: HttpClient) -> Self:
        """Read only ``clientId``."""
        return cls(config.get_string("clientId"))

    def start(self, input: OAuthStartInput) -> OAuthStartResponse:
        """The authorization URL with the usual parameters."""
        query = (
            f"client_id={self.client_id}&response_type=code&state={input.state}"
            f"&code_challenge={input.code_challenge}&code_challenge_method=S256"
            f"&scope={quote(input.scope)}"
        )
        return OAuthStartResponse(url=f"{IDP}/authorize?{query}")

    def authenticate(self, input: OAuthAuthenticateInput) -> OAuthAuthenticatorResult:
        """Not exercised by the benchmarks."""
        raise NotImplementedError

    def refresh(self, input: OAuthRefreshInput) -> OAuthAuthenticatorResult:
        """Fixed tokens; the refresh token is not rotated (no Set-Cookie on the answer)."""
        return OAuthAuthenticatorResult(
            full_profile={"email": "jane@example.com", "name": "Jane Bench"},
            session=OAuthSession(
                access_token="bench-access-token",  # noqa: S106 - a fake token
                scope=input.scope,
                id_token="bench-id-token",  # noqa: S106 - a fake token
                expires_in_seconds=3600,
                refresh_token=input.refresh_token,
            ),
        )

    def default_profile_transform(self, result: OAuthAuthenticatorResult) -> ProfileInfo:
        """Email and name from the fixed profile."""
        return ProfileInfo(
            email=result.full_profile.get("email"), display_name=result.full_profile.get("name")
        )


FAKE_MODULE = ProviderModule(
    provider_id="fake", factory=create_oauth_provider_factory(BenchAuthenticator)
)


# -- the real oidc provider, its HTTP canned ----------------------------------------------


def oidc_available() -> bool:
    """Whether ``wsgiauth.providers.oidc`` exists yet (it is being written)."""
    return importlib.util.find_spec("wsgiauth.providers.oidc") is not None


DISCOVERY = {
    "issuer": IDP,
    "authorization_endpoint": f"{IDP}/authorize",
    "token_endpoint": f"{IDP}/token",
    "userinfo_endpoint": f"{IDP}/userinfo",
    "jwks_uri": f"{IDP}/jwks",
    "end_session_endpoint": f"{IDP}/logout",
    "revocation_endpoint": f"{IDP}/revoke",
    "response_types_supported": ["code"],
    "subject_types_supported": ["public"],
    "id_token_signing_alg_values_supported": ["RS256", "ES256"],
    "code_challenge_methods_supported": ["S256"],
    "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
    "scopes_supported": ["openid", "profile", "email", "offline_access"],
}
CANNED: dict[str, dict[str, Any]] = {
    f"{IDP}/.well-known/openid-configuration": DISCOVERY,
    f"{IDP}/jwks": {"keys": []},
}


class CannedAdapter(BaseAdapter):
    """A ``requests`` transport answering GETs from :data:`CANNED`; counts what it is asked.

    The whole :class:`~wsgiauth.http.HttpClient` path runs (timeouts, size
    cap, JSON parsing); only the socket is missing. ``calls`` shows whether a
    route goes to the network per request (it should not, once discovery is cached).
    """

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def send(
        self, request: requests.PreparedRequest, *args: Any, **kwargs: Any
    ) -> requests.Response:
        """Answer from :data:`CANNED`, 404 for anything else."""
        url = str(request.url)
        self.calls.append(f"{request.method} {url}")
        document = CANNED.get(url.split("?", 1)[0])
        response = requests.Response()
        response.status_code = 200 if document is not None else 404
        response.headers["Content-Type"] = "application/json"
        response.raw = io.BytesIO(json.dumps(document or {"error": "not_found"}).encode())
        response.url = url
        response.request = request
        return response

    def close(self) -> None:
        """Nothing to close."""


def canned_http() -> tuple[HttpClient, CannedAdapter]:
    """An :class:`HttpClient` whose every request is answered by a :class:`CannedAdapter`."""
    adapter = CannedAdapter()
    session = requests.Session()
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return HttpClient(session=session), adapter


# -- configs and apps ---------------------------------------------------------------------


def bench_config(*, oidc: bool = False, secret: bool = True) -> dict[str, Any]:
    """An app-config with the ``fake`` and ``guest`` providers (and ``oidc`` on the canned IdP).

    The key store is ``memory`` (``make_auth_app`` passes one explicitly as well).
    """
    providers: dict[str, Any] = {
        "fake": {"development": {"clientId": "bench-client"}},
        "guest": {},
    }
    if oidc:
        providers["oidc"] = {
            "development": {
                "clientId": "bench-client",
                "clientSecret": "bench-client-secret",
                "metadataUrl": f"{IDP}/.well-known/openid-configuration",
            }
        }
    auth: dict[str, Any] = {
        "environment": "development",
        "providers": providers,
        "keyStore": {"provider": "memory"},
    }
    if secret:
        auth["session"] = {"secret": SESSION_SECRET}
    return {"app": {"baseUrl": APP_ORIGIN}, "backend": {"baseUrl": BACKEND}, "auth": auth}


def make_auth_app(*, oidc: bool = False, secret: bool = True) -> tuple[AuthApp, CannedAdapter]:
    """The auth app with the stubbed provider(s) and guest; outbound HTTP goes to the canned IdP.

    Signing keys live in a :class:`MemoryKeyStore` of this process.
    """
    http, adapter = canned_http()
    providers: Mapping[str, ProviderModule] = {"fake": FAKE_MODULE}
    app = create_auth_app(
        Config.from_dict(bench_config(oidc=oidc, secret=secret)),
        providers=providers,
        http=http,
        key_store=MemoryKeyStore(),
    )
    return app, adapter


def refresh_cookie(provider_id: str = "fake", *, secret: bool = True) -> str:
    """The ``Cookie`` header a signed-in browser sends to ``/refresh``."""
    sealer = CookieSealer([SESSION_SECRET] if secret else [])
    return f"{provider_id}-refresh-token={quote(sealer.seal(REFRESH_TOKEN), safe='')}"


REFRESH_HEADERS = {"X-Requested-With": "XMLHttpRequest", "Origin": APP_ORIGIN}


# -- timing -------------------------------------------------------------------------------


def fmt_int(value: float) -> str:
    """``21,000`` style."""
    return f"{value:,.0f}"


def median(values: Iterable[float]) -> float:
    """The median (re-exported so scripts need one import)."""
    return statistics.median(list(values))


def time_loop(fn: Callable[[], object], iterations: int) -> float:
    """Nanoseconds per call of ``fn`` over ``iterations`` calls."""
    start = time.perf_counter_ns()
    for _ in range(iterations):
        fn()
    return (time.perf_counter_ns() - start) / iterations


def calibrate(fn: Callable[[], object], target_seconds: float) -> int:
    """How many calls of ``fn`` take about ``target_seconds``."""
    iterations = 1
    while True:
        start = time.perf_counter()
        for _ in range(iterations):
            fn()
        elapsed = time.perf_counter() - start
        if elapsed >= 0.02:
            return max(1, int(iterations * target_seconds / elapsed))
        iterations *= 4
