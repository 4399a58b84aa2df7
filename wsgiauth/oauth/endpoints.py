"""The skeleton of an authenticator for an OAuth 2 server at known endpoints.

Most providers differ only in a few places: where the authorize and token endpoints
are, what else the authorization URL carries, what scope a refresh sends, and how the
profile is read. :class:`OAuthEndpointAuthenticator` is the rest (Backstage's
``PassportOAuthAuthenticatorHelper``): the authorization URL, the code grant and the
refresh grant, with the same URLs, forms and error messages wherever it is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from typing import Any

from .client import authorization_url
from .client import callback_code
from .client import request_token
from .client import session_from_token
from .profile import transform_profile
from .types import OAuthAuthenticatorResult
from .types import OAuthStartResponse
from .types import ProbeTarget

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ..http import HttpClient
    from ..types import ProfileInfo
    from .client import ClientCredentials
    from .types import OAuthAuthenticateInput
    from .types import OAuthRefreshInput
    from .types import OAuthSession
    from .types import OAuthStartInput

__all__ = ["OAuthEndpointAuthenticator"]


class OAuthEndpointAuthenticator:
    """``start``, ``authenticate`` and ``refresh`` of an :class:`OAuthAuthenticator`.

    Derive from it and state what differs; add ``from_config`` (the protocol's), which
    reads the config and calls the constructor:

    - ``authorize_url`` and ``token_url``: class attributes, or set in ``__init__``;
    - :meth:`fetch_profile`: the profile of a fresh session (required);
    - :meth:`authorize_params`: more authorization parameters;
    - :meth:`refresh_scope`: the scope a refresh asks for;
    - the class attributes below.

    :meth:`trade_code` and :meth:`trade_refresh_token` are the two grants alone, for an
    ``authenticate`` or ``refresh`` that does more (checks an ID token, say).
    """

    #: Whether granted scopes live in the ``<id>-granted-scope`` cookie.
    persist_scopes: bool = False
    #: Scopes always requested.
    required_scopes: tuple[str, ...] = ()
    #: Send the PKCE S256 challenge, and the verifier with the code.
    pkce: bool = True
    #: How a refused refresh grant's message starts.
    refresh_failed: str = "The refresh token was rejected"
    #: A refresh whose answer names no scope was granted the scope asked for.
    keep_requested_scope: bool = False

    #: Where the browser is sent, e.g. ``https://idp.example/oauth/authorize``.
    authorize_url: str
    #: Where codes and refresh tokens are traded.
    token_url: str

    def __init__(
        self, *, credentials: ClientCredentials, callback_url: str, http: HttpClient
    ) -> None:
        self.credentials = credentials
        self.callback_url = callback_url
        self.http = http

    def fetch_profile(self, session: OAuthSession) -> dict[str, Any]:
        """The ``full_profile`` of a session, read from the IdP with its access token."""
        raise NotImplementedError(f"{type(self).__name__} must define fetch_profile")

    def authorize_params(self, input: OAuthStartInput) -> Mapping[str, str | None]:  # noqa: A002
        """Parameters the authorization URL carries besides the standard ones; None drops one.

        They follow ``state`` in the URL, in this order. A ``scope`` or ``state`` here
        replaces the computed one in its place (an IdP that takes one fixed scope, say).
        """
        return {}

    def refresh_scope(self, input: OAuthRefreshInput) -> str | None:  # noqa: A002
        """The scope a refresh grant sends, or None for none; the requested one by default,
        as Backstage's passport helper does."""
        return input.scope or None

    def start(self, input: OAuthStartInput) -> OAuthStartResponse:  # noqa: A002 (protocol name)
        """Send the browser to ``authorize_url`` with this flow's scope, state and challenge."""
        params: dict[str, str | None] = {
            "redirect_uri": self.callback_url,
            "scope": input.scope,
            "state": input.state,
            **self.authorize_params(input),
        }
        params["code_challenge"] = input.code_challenge if self.pkce else None
        return OAuthStartResponse(
            authorization_url(self.authorize_url, self.credentials.client_id, **params)
        )

    def authenticate(self, input: OAuthAuthenticateInput) -> OAuthAuthenticatorResult:  # noqa: A002
        """Trade the callback's code, then read the profile."""
        session = self.trade_code(input)
        return OAuthAuthenticatorResult(full_profile=self.fetch_profile(session), session=session)

    def refresh(self, input: OAuthRefreshInput) -> OAuthAuthenticatorResult:  # noqa: A002
        """Trade the refresh token, then read the profile again."""
        session = self.trade_refresh_token(
            input.refresh_token,
            scope=self.refresh_scope(input),
            granted=input.scope if self.keep_requested_scope else "",
        )
        return OAuthAuthenticatorResult(full_profile=self.fetch_profile(session), session=session)

    def trade_code(self, input: OAuthAuthenticateInput) -> OAuthSession:  # noqa: A002
        """The session of the callback's code (an IdP ``error`` is "Authentication rejected").

        :raises AuthenticationError: the IdP refused the code ("Authentication failed, ...").
        :raises ServiceUnavailableError: the token endpoint is down or answered nonsense.
        """
        body = self.credentials.code_grant(
            callback_code(input.request),
            redirect_uri=self.callback_url,
            code_verifier=input.code_verifier if self.pkce else None,
        )
        token = request_token(
            self.http, self.token_url, self.credentials, body, failed="Authentication failed"
        )
        return session_from_token(token)

    def trade_refresh_token(
        self, refresh_token: str, *, scope: str | None, granted: str = ""
    ) -> OAuthSession:
        """The session of a refresh grant; the old refresh token stays unless the IdP rotates it.

        :param scope: sent with the grant, unless None.
        :param granted: the session's scope when the answer names none.
        :raises AuthenticationError: the IdP refused it (:attr:`refresh_failed`, ...).
        :raises ServiceUnavailableError: the token endpoint is down or answered nonsense.
        """
        body = self.credentials.refresh_grant(refresh_token, scope=scope)
        token = request_token(
            self.http, self.token_url, self.credentials, body, failed=self.refresh_failed
        )
        return session_from_token(token, scope=granted, refresh_token=refresh_token)

    def probe_targets(self) -> list[ProbeTarget]:
        """The token endpoint, for the diagnostics page: it must answer (a ``GET`` is refused)."""
        return [ProbeTarget("token endpoint", self.token_url, "answer")]

    def default_profile_transform(self, result: OAuthAuthenticatorResult) -> ProfileInfo:
        """Backstage's passport transform; what the profile lacks is read from the ID token."""
        return transform_profile(result.full_profile, result.session.id_token)
