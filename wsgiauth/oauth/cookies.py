"""The OAuth cookies of one provider: nonce, flow, refresh token, granted scope (spec §3).

One manager owns every cookie name, path and flag, so they cannot drift apart.
Values are percent-encoded as Express's ``res.cookie`` does; values past 4000
characters are split into ``<name>-0``, ``<name>-1`` ... chunks. Parsing the
``Cookie`` header is WebOb's job.

Beyond Backstage: each login in flight gets its own small *flow cookie*
(``<id>-flow-<flow id>``, the flow id derived from the state nonce) holding
a digest of the nonce and the PKCE verifier, sealed when ``auth.session.secret``
is set.
Two tabs can sign in at once without clobbering each other, no server-side
store is needed, and at most :data:`MAX_FLOWS` flows are kept per browser.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from dataclasses import dataclass
from dataclasses import replace
from functools import lru_cache
from typing import TYPE_CHECKING
from urllib.parse import quote
from urllib.parse import unquote
from urllib.parse import urlsplit

from webob.cookies import make_cookie

from ..types import CookieSettings

if TYPE_CHECKING:
    from webob import Request
    from webob import Response

    from ..sealing import CookieSealer
    from ..types import CookieConfigurer

__all__ = [
    "FlowCookie",
    "OAuthCookieManager",
    "default_cookie_configurer",
    "flow_id",
    "started_now",
]

NONCE_MAX_AGE = 600
#: Backstage's default refresh-token lifetime when ``sessionDuration`` is unset: 1000 days.
DEFAULT_SESSION_MAX_AGE = 1000 * 24 * 60 * 60
CHUNK_SIZE = 4000
#: How many logins may be in flight at once in one browser for one provider.
MAX_FLOWS = 4
#: Far past any real cookie count; a request claiming more chunks is hostile.
MAX_CHUNKS = 32


def default_cookie_configurer(
    provider_id: str, base_url: str, callback_url: str, app_origin: str
) -> CookieSettings:
    """Backstage's ``defaultCookieConfigurer``: path and flags from the callback URL.

    ``Secure`` only over https; ``SameSite=None`` only when the app's host
    differs from the callback's and the cookie is secure, else ``Lax``.
    """
    callback = urlsplit(callback_url)
    secure = callback.scheme == "https"
    cross_site = urlsplit(app_origin).hostname != callback.hostname
    suffix = f"{provider_id}/handler/frame"
    path = callback.path
    if path.endswith(suffix):
        path = path[: -len("/handler/frame")]
    else:
        path = f"{path.rstrip('/')}/{provider_id}"
    return CookieSettings(
        path=path, secure=secure, same_site="none" if cross_site and secure else "lax"
    )


@dataclass(frozen=True, slots=True)
class FlowCookie:
    """What one login in flight keeps in the browser between ``start`` and the callback."""

    #: SHA-256 hex of the flow nonce: binds the cookie to one ``state``.
    nonce_digest: str
    code_verifier: str
    #: When the flow started (epoch seconds), to evict the oldest first.
    started_at: int

    @classmethod
    def for_nonce(cls, nonce: str, code_verifier: str, started_at: int) -> FlowCookie:
        """The flow cookie of a flow whose ``state`` carries ``nonce``."""
        return cls(_digest(nonce), code_verifier, started_at)

    def matches(self, nonce: str) -> bool:
        """Whether this flow is the one ``nonce`` names (constant time)."""
        return hmac.compare_digest(self.nonce_digest, _digest(nonce))


def _digest(nonce: str) -> str:
    return hashlib.sha256(nonce.encode("utf-8")).hexdigest()


def flow_id(nonce: str) -> str:
    """A short, cookie-name-safe id for the flow that ``nonce`` belongs to."""
    return _flow_id_of(_digest(nonce))


def _flow_id_of(nonce_digest: str) -> str:
    """The flow id from the nonce's digest: ``set_flow`` holds only the digest."""
    return nonce_digest[:12]


class OAuthCookieManager:
    """Reads and writes one provider's OAuth cookies."""

    def __init__(
        self,
        *,
        provider_id: str,
        base_url: str,
        callback_url: str,
        default_app_origin: str,
        sealer: CookieSealer,
        session_duration: int | None = None,
        cookie_configurer: CookieConfigurer | None = None,
        session_cookie: bool = False,
        posts_callback: bool = False,
    ) -> None:
        """:param session_cookie: the refresh token is a session wsgiauth made (SAML): it
            is refused once older than the session duration, whatever the browser keeps.
        :param posts_callback: the identity provider POSTs the callback from its own
            site: over https the nonce and flow cookies are ``SameSite=None``.
        """
        self._session_cookie = session_cookie
        self._posts_callback = posts_callback
        self.provider_id = provider_id
        self._base_url = base_url
        self._callback_url = callback_url
        self._default_app_origin = default_app_origin
        self._sealer = sealer
        self._session_max_age = session_duration or DEFAULT_SESSION_MAX_AGE
        self._configure = cookie_configurer or default_cookie_configurer
        # Settings depend only on the app origin: compute them once per origin.
        self._settings = lru_cache(maxsize=64)(self._compute_settings)
        self._flow_settings_of = lru_cache(maxsize=64)(self._compute_flow_settings)
        self._nonce_settings_of = lru_cache(maxsize=64)(self._compute_nonce_settings)
        make_cookie(
            f"{provider_id}-nonce", ""
        )  # a provider id that no cookie name can carry fails here
        self.nonce_name = f"{provider_id}-nonce"
        self.refresh_token_name = f"{provider_id}-refresh-token"
        self.granted_scope_name = f"{provider_id}-granted-scope"
        self._flow_prefix = f"{provider_id}-flow-"

    def settings(self, app_origin: str | None) -> CookieSettings:
        """Cookie attributes for a response to a page at ``app_origin``."""
        return self._settings(app_origin or self._default_app_origin)

    def _compute_settings(self, app_origin: str) -> CookieSettings:
        return self._configure(self.provider_id, self._base_url, self._callback_url, app_origin)

    # -- nonce and flow ---------------------------------------------------------------

    def _flow_settings(self, origin: str | None) -> CookieSettings:
        """The nonce and flow cookies' settings: sent with a cross-site POST when it must be."""
        return self._flow_settings_of(origin or self._default_app_origin)

    def _compute_flow_settings(self, app_origin: str) -> CookieSettings:
        settings = self.settings(app_origin)
        if self._posts_callback and settings.secure:
            return replace(settings, same_site="none")
        return settings

    def _compute_nonce_settings(self, app_origin: str) -> CookieSettings:
        settings = self._flow_settings(app_origin)
        return replace(settings, path=f"{settings.path}/handler")

    def set_nonce(self, response: Response, nonce: str, origin: str | None) -> None:
        """The Backstage nonce cookie: ``<id>-nonce`` on ``<path>/handler`` for 10 minutes."""
        handler = self._nonce_settings_of(origin or self._default_app_origin)
        self._write(response, self.nonce_name, nonce, handler, NONCE_MAX_AGE)

    def get_nonce(self, request: Request) -> str | None:
        """The last nonce set by ``start`` in this browser."""
        return self._read(request, self.nonce_name)

    def set_flow(
        self, response: Response, request: Request, flow: FlowCookie, origin: str | None
    ) -> None:
        """Keep a new flow's nonce and verifier, evicting the oldest past :data:`MAX_FLOWS`."""
        settings = self._flow_settings(origin)
        live = sorted(self._flows(request), key=lambda item: item[1].started_at)
        for name, _ in live[: max(0, len(live) - MAX_FLOWS + 1)]:
            self._write(response, name, "", settings, 0)
        value = f"{flow.started_at}.{flow.code_verifier}.{flow.nonce_digest}"
        name = self._flow_name(flow.nonce_digest)
        self._write(response, name, self._sealer.seal(value), settings, NONCE_MAX_AGE)

    def get_flow(self, request: Request, nonce: str) -> FlowCookie | None:
        """The flow that ``nonce`` started in this browser, if its cookie is still there."""
        raw = self._read(request, self._flow_name(_digest(nonce)))
        return self._parse_flow(raw) if raw is not None else None

    def remove_flow(self, response: Response, nonce: str, origin: str | None) -> None:
        """Forget a finished flow (Backstage lets its nonce cookie expire instead)."""
        self._write(response, self._flow_name(_digest(nonce)), "", self._flow_settings(origin), 0)

    def _flow_name(self, nonce_digest: str) -> str:
        """``<id>-flow-<flow id>``: the one place a flow cookie's name is made."""
        return self._flow_prefix + _flow_id_of(nonce_digest)

    def _flows(self, request: Request) -> list[tuple[str, FlowCookie]]:
        unreadable = FlowCookie("", "", 0)  # sorts first, so it is evicted first
        return [
            (name, self._parse_flow(unquote(raw)) or unreadable)
            for name, raw in request.cookies.items()
            if name.startswith(self._flow_prefix)
        ]

    def _parse_flow(self, raw: str) -> FlowCookie | None:
        value = self._sealer.unseal(raw, max_age=NONCE_MAX_AGE)
        if value is None:
            return None
        started_at, _, rest = value.partition(".")
        code_verifier, _, digest = rest.partition(".")
        # isdigit() alone admits "²" and other digits int() refuses.
        if not (started_at.isascii() and started_at.isdigit()) or not code_verifier or not digest:
            return None
        return FlowCookie(
            nonce_digest=digest, code_verifier=code_verifier, started_at=int(started_at)
        )

    # -- refresh token and granted scope ------------------------------------------------

    def set_refresh_token(
        self, response: Response, request: Request, token: str, origin: str | None
    ) -> None:
        """Store the provider's refresh token, sealed when a session secret is set."""
        self._write_chunked(
            response,
            request,
            self.refresh_token_name,
            self._sealer.seal(token),
            self.settings(origin),
            self._session_max_age,
        )

    def get_refresh_token(self, request: Request) -> str | None:
        """The stored refresh token; ``None`` if absent, tampered with or sealed by a lost key."""
        raw = self._read_chunked(request, self.refresh_token_name)
        if not raw:
            return None
        if self._session_cookie:
            # A session cookie outlives nothing: not its max-age, not a browser that keeps it.
            return self._sealer.unseal(raw, max_age=self._session_max_age)
        return self._sealer.unseal(raw)

    def remove_refresh_token(
        self, response: Response, request: Request, origin: str | None
    ) -> None:
        """Clear the refresh token, chunks included."""
        self._remove_chunked(response, request, self.refresh_token_name, self.settings(origin))

    def set_granted_scopes(
        self, response: Response, request: Request, scope: str, origin: str | None
    ) -> None:
        """Remember the scopes granted so far (providers that persist scopes)."""
        self._write_chunked(
            response,
            request,
            self.granted_scope_name,
            scope,
            self.settings(origin),
            self._session_max_age,
        )

    def get_granted_scopes(self, request: Request) -> str | None:
        """The space-joined scopes granted so far."""
        return self._read_chunked(request, self.granted_scope_name)

    def remove_granted_scopes(
        self, response: Response, request: Request, origin: str | None
    ) -> None:
        """Clear the granted scopes, chunks included."""
        self._remove_chunked(response, request, self.granted_scope_name, self.settings(origin))

    # -- mechanics ------------------------------------------------------------------------

    def _write(
        self, response: Response, name: str, value: str, settings: CookieSettings, max_age: int
    ) -> None:
        attributes = _cookie_attributes(settings, max_age, int(time.time()))
        response.headerlist.append(("Set-Cookie", f"{name}={_quote(value)}{attributes}"))

    @staticmethod
    def _read(request: Request, name: str) -> str | None:
        raw = request.cookies.get(name)
        return unquote(raw) if raw is not None else None

    def _chunk_names(self, request: Request, name: str) -> list[str]:
        cookies = request.cookies  # a new view per access: made once here
        names = []
        for index in range(MAX_CHUNKS):
            chunk = f"{name}-{index}"
            if chunk not in cookies:
                break
            names.append(chunk)
        return names

    def _read_chunked(self, request: Request, name: str) -> str | None:
        chunks = self._chunk_names(request, name)
        if chunks:
            return "".join(self._read(request, chunk) or "" for chunk in chunks)
        return self._read(request, name)

    def _write_chunked(
        self,
        response: Response,
        request: Request,
        name: str,
        value: str,
        settings: CookieSettings,
        max_age: int,
    ) -> None:
        stale = self._chunk_names(request, name)
        if len(value) > CHUNK_SIZE:
            if name in request.cookies:
                self._write(response, name, "", settings, 0)
            parts = [value[i : i + CHUNK_SIZE] for i in range(0, len(value), CHUNK_SIZE)]
            for index, part in enumerate(parts):
                self._write(response, f"{name}-{index}", part, settings, max_age)
            stale = stale[len(parts) :]
        else:
            self._write(response, name, value, settings, max_age)
        for chunk in stale:
            self._write(response, chunk, "", settings, 0)

    def _remove_chunked(
        self, response: Response, request: Request, name: str, settings: CookieSettings
    ) -> None:
        names = self._chunk_names(request, name)
        if name in request.cookies or not names:
            names.append(name)
        for each in names:
            self._write(response, each, "", settings, 0)


#: What ``quote(value, safe="")`` never encodes (a sealed value is all of these); with
#: them, the three characters of standard base64 (the nonce) it escapes.
_PLAIN = re.compile(r"[A-Za-z0-9_.~-]*")
_BASE64 = re.compile(r"[A-Za-z0-9_.~+/=-]*")


def _quote(value: str) -> str:
    """``quote(value, safe="")``, without its trip through bytes for base64 values."""
    if _PLAIN.fullmatch(value):
        return value
    if _BASE64.fullmatch(value):
        return value.replace("+", "%2B").replace("/", "%2F").replace("=", "%3D")
    return quote(value, safe="")


@lru_cache(maxsize=64)
def _cookie_attributes(settings: CookieSettings, max_age: int, now: int) -> str:
    """WebOb's serialisation of everything after ``name=value``, made once a second.

    The attributes of a provider's cookies repeat on every response; only
    ``expires`` moves, so keying on the current second keeps it exact.
    """
    # HttpOnly always: no script on any page may read a nonce or a token.
    cookie = make_cookie(
        "_",
        "",
        max_age=max_age,
        path=settings.path,
        domain=settings.domain,
        secure=settings.secure,
        httponly=True,
        samesite=settings.same_site,
    )
    return cookie.removeprefix("_=")


def started_now() -> int:
    """The current time as a flow's start stamp."""
    return int(time.time())
