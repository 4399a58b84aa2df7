"""The OpenID Connect provider (Backstage's ``oidc`` module), on oauthlib and PyJWT.

:class:`OidcAuthenticator` signs users in with any OpenID Provider that
publishes a discovery document (``metadataUrl``): authorization code with
PKCE S256, the callback's ``iss`` checked against the provider's issuer
(RFC 9207, against mix-up attacks), the code traded at the token endpoint,
the ID token verified against the provider's JWKS, and the userinfo claims
merged in. Refresh and logout (RFC 7009 revocation, optionally the provider's
end-session URL) follow Backstage's ``oidc`` authenticator.

Discovery, the JWKS cache and the ID-token checks (signature with the one
configured asymmetric algorithm, ``iss``, ``aud``, ``azp``, ``exp``, ``iat``,
``nonce``) live in :mod:`wsgiauth.providers.oidc_tokens`; this module is the
authenticator around them. The discovery document is fetched lazily, on the
first login, so an IdP that is down at boot does not stop the app.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from collections.abc import Mapping
from typing import TYPE_CHECKING
from typing import Any
from urllib.parse import urlsplit

from oauthlib.common import add_params_to_uri

from ..errors import AuthenticationError
from ..errors import HttpError
from ..oauth import ClientCredentials
from ..oauth import OAuthAuthenticatorResult
from ..oauth import OAuthLogoutResult
from ..oauth import OAuthStartResponse
from ..oauth import ProbeTarget
from ..oauth import ProfileInfo
from ..oauth import ProviderModule
from ..oauth import authorization_url
from ..oauth import callback_code
from ..oauth import check_response_issuer
from ..oauth import create_oauth_provider_factory
from ..oauth import read_absolute_url
from ..oauth import request_token
from ..oauth import session_from_token
from ..sign_in import preferred_username_matching_user_entity_name
from .oidc_tokens import ID_TOKEN_ALGORITHMS
from .oidc_tokens import OidcMetadata
from .oidc_tokens import OidcTokenVerifier
from .oidc_tokens import derive_id_token_nonce

if TYPE_CHECKING:
    from typing import Self

    from ..oauth import Config
    from ..oauth import HttpClient
    from ..oauth import OAuthAuthenticateInput
    from ..oauth import OAuthLogoutInput
    from ..oauth import OAuthRefreshInput
    from ..oauth import OAuthStartInput

__all__ = ["OidcAuthenticator", "module"]

log = logging.getLogger(__name__)


class OidcAuthenticator:
    """Backstage's ``oidc`` provider: discovery, code + PKCE, verified ID token, userinfo.

    :param algorithm: the one algorithm ID tokens may be signed with (``tokenSignedResponseAlg``).
    :param prompt: the ``prompt`` sent to the IdP; None sends none (config value ``auto``).
    :param id_token_leeway: seconds of clock skew allowed on ``exp`` and ``iat``.
    :param clock: a monotonic clock for the caches (tests move it by hand).
    """

    persist_scopes = True
    required_scopes: tuple[str, ...] = ("openid", "profile", "email")

    def __init__(
        self,
        *,
        credentials: ClientCredentials,
        callback_url: str,
        metadata_url: str,
        http: HttpClient,
        algorithm: str = "RS256",
        prompt: str | None = "none",
        federated_logout: bool = False,
        id_token_leeway: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        start_params: Mapping[str, str] | None = None,
    ) -> None:
        self.credentials = credentials
        # startUrlSearchParams: its prompt stands in only for prompt "auto" (None).
        extra = dict(start_params or {})
        self._start_prompt = extra.pop("prompt", None)
        self._extra_params = extra
        self.callback_url = callback_url
        self.metadata_url = metadata_url
        self.http = http
        self.algorithm = algorithm
        self.prompt = prompt
        self.federated_logout = federated_logout
        self.id_token_leeway = id_token_leeway
        #: Discovery, JWKS and ID-token checks for this IdP and client.
        self.tokens = OidcTokenVerifier(
            metadata_url=metadata_url,
            http=http,
            client_id=credentials.client_id,
            algorithm=algorithm,
            leeway=id_token_leeway,
            clock=clock,
        )

    @classmethod
    def from_config(
        cls,
        config: Config,
        *,
        callback_url: str,
        http: HttpClient,
        clock: Callable[[], float] = time.monotonic,
    ) -> Self:
        """Build from ``auth.providers.oidc.<env>``; every bad key fails here, at startup.

        Nothing is fetched yet: the discovery document is read on the first login, so an
        IdP that is down at boot does not keep the app from starting.
        """
        if config.has("scope"):
            raise config.error(
                "scope",
                'The oidc provider no longer supports the "scope" configuration option. '
                'Please use the "additionalScopes" option instead.',
            )
        credentials = ClientCredentials.from_config(config)
        algorithm = config.get_optional_string("tokenSignedResponseAlg") or "RS256"
        if algorithm not in ID_TOKEN_ALGORITHMS:
            raise config.error(
                "tokenSignedResponseAlg",
                f"expected an asymmetric algorithm ({', '.join(ID_TOKEN_ALGORITHMS)}), "
                f"got {algorithm!r}",
            )
        http = http.with_read_timeout(_read_timeout(config))
        leeway = config.get_optional_duration_seconds("idTokenLeeway")
        prompt = config.get_optional_string("prompt") or "none"
        return cls(
            credentials=credentials,
            callback_url=callback_url,
            metadata_url=str(read_absolute_url(config, "metadataUrl")),
            http=http,
            algorithm=algorithm,
            prompt=None if prompt == "auto" else prompt,
            federated_logout=bool(config.get_optional_bool("federatedLogout")),
            id_token_leeway=60.0 if leeway is None else leeway,
            clock=clock,
            start_params=_read_start_params(config),
        )

    # -- discovery and ID tokens (see oidc_tokens) -----------------------------------------

    def metadata(self) -> OidcMetadata:
        """The discovery document, fetched on first use and cached for an hour."""
        return self.tokens.metadata()

    def verify_id_token(
        self, id_token: str, *, nonce: str | None, failed: str = "Authentication failed"
    ) -> dict[str, Any]:
        """The claims of a verified ID token (see :meth:`OidcTokenVerifier.verify_id_token`)."""
        return self.tokens.verify_id_token(id_token, nonce=nonce, failed=failed)

    def _with_userinfo(
        self, metadata: OidcMetadata, claims: dict[str, Any], access_token: str, failed: str
    ) -> dict[str, Any]:
        """ID-token claims merged with userinfo (userinfo wins), as one profile."""
        if metadata.userinfo_endpoint is None:
            return dict(claims)
        userinfo = self.http.get_json(
            metadata.userinfo_endpoint, headers={"Authorization": f"Bearer {access_token}"}
        )
        if "sub" in claims and userinfo.get("sub") != claims["sub"]:
            # OIDC Core §5.3.2: a userinfo answer for another subject is a substitution attack.
            raise AuthenticationError(f"{failed}, the userinfo subject differs from the ID token")
        return {**claims, **userinfo}

    # -- the OAuthAuthenticator protocol --------------------------------------------------

    def start(self, input: OAuthStartInput) -> OAuthStartResponse:  # noqa: A002 (protocol name)
        """Send the browser to the provider's authorization endpoint."""
        metadata = self.metadata()
        return OAuthStartResponse(
            authorization_url(
                metadata.authorization_endpoint,
                self.credentials.client_id,
                redirect_uri=self.callback_url,
                **self._extra_params,
                scope=input.scope,
                state=input.state,
                code_challenge=input.code_challenge,
                nonce=derive_id_token_nonce(input.nonce),
                # As Backstage: the configured prompt wins, unless it is "auto".
                prompt=self.prompt or self._start_prompt,
            )
        )

    def authenticate(self, input: OAuthAuthenticateInput) -> OAuthAuthenticatorResult:  # noqa: A002
        """Check the response's issuer, trade the code for tokens, verify the ID token
        and merge the userinfo claims.
        """
        failed = "Authentication failed"
        metadata = self.metadata()
        # Before the code (and before an IdP error is believed): a mixed-up response's
        # code must never reach this provider's token endpoint.
        check_response_issuer(
            input.request,
            metadata.issuer,
            promised=metadata.authorization_response_iss_parameter_supported,
        )
        code = callback_code(input.request)
        body = self.credentials.code_grant(
            code, redirect_uri=self.callback_url, code_verifier=input.code_verifier
        )
        token = request_token(
            self.http, metadata.token_endpoint, self.credentials, body, failed=failed
        )
        id_token = token.get("id_token")
        if not isinstance(id_token, str) or not id_token:
            raise AuthenticationError(f"{failed}, the token response has no ID token")
        claims = self.verify_id_token(id_token, nonce=derive_id_token_nonce(input.nonce))
        session = session_from_token(token)
        profile = self._with_userinfo(metadata, claims, session.access_token, failed)
        return OAuthAuthenticatorResult(full_profile=profile, session=session)

    def refresh(self, input: OAuthRefreshInput) -> OAuthAuthenticatorResult:  # noqa: A002
        """Trade the refresh token; keep it unless the provider rotated it."""
        failed = "The refresh token was rejected"
        metadata = self.metadata()
        # No scope, as Backstage: asking for one not granted makes some IdPs refuse.
        body = self.credentials.refresh_grant(input.refresh_token)
        token = request_token(
            self.http, metadata.token_endpoint, self.credentials, body, failed=failed
        )
        session = session_from_token(token, scope=input.scope, refresh_token=input.refresh_token)
        claims: dict[str, Any] = {}
        if token.get("id_token"):
            claims = self.verify_id_token(
                str(token["id_token"]), nonce=None, failed="Refresh failed"
            )
        profile = self._with_userinfo(metadata, claims, session.access_token, failed)
        return OAuthAuthenticatorResult(full_profile=profile, session=session)

    def logout(self, input: OAuthLogoutInput) -> OAuthLogoutResult | None:  # noqa: A002
        """Revoke the refresh token where the IdP allows; maybe return its end-session URL.

        A failure at the IdP is logged and does not fail the logout: the local cookies
        are cleared either way.
        """
        try:
            metadata = self.metadata()
        except HttpError as exc:
            log.warning("Logout could not read the OIDC discovery document: %s", exc.message)
            return None
        if input.refresh_token and metadata.revocation_endpoint:
            self._revoke(metadata.revocation_endpoint, input.refresh_token)
        if self.federated_logout and metadata.end_session_endpoint:
            url = add_params_to_uri(
                metadata.end_session_endpoint, [("client_id", self.credentials.client_id)]
            )
            return OAuthLogoutResult(logout_url=url)
        return None

    def _revoke(self, endpoint: str, refresh_token: str) -> None:
        host = urlsplit(endpoint).netloc
        try:
            response = self.http.request(
                "POST",
                endpoint,
                data=self.credentials.revocation_data(refresh_token, "refresh_token"),
                auth=self.credentials.http_auth(),
            )
        except HttpError as exc:
            log.warning("Revoking the refresh token at %s failed: %s", host, exc.message)
            return
        if not response.ok:
            log.warning(
                "Revoking the refresh token at %s failed: it answered %d", host, response.status
            )

    def probe_targets(self) -> list[ProbeTarget]:
        """Discovery (then its JWKS), for the diagnostics page."""
        return [ProbeTarget("discovery", self.metadata_url, "openid-discovery")]

    def default_profile_transform(self, result: OAuthAuthenticatorResult) -> ProfileInfo:
        """Email, display name (``name``, else ``preferred_username``, else ``sub``), picture."""
        claims = result.full_profile

        def text(name: str) -> str | None:
            value = claims.get(name)
            return value if isinstance(value, str) and value else None

        return ProfileInfo(
            email=text("email"),
            display_name=text("name") or text("preferred_username") or text("sub"),
            picture=text("picture"),
        )


#: Authorization parameters wsgiauth sets for every flow: ``startUrlSearchParams`` may not.
_FLOW_PARAMS = frozenset(
    {
        "client_id",
        "response_type",
        "redirect_uri",
        "scope",
        "state",
        "nonce",
        "code_challenge",
        "code_challenge_method",
    }
)


def _read_timeout(config: Config) -> float:
    """``timeout`` in seconds: Backstage's duration (``{seconds: 30}``, ``"30s"``), or a
    number of milliseconds (the older form); 10 s by default, as Backstage's."""
    raw = config.get("timeout")
    if raw is None:
        return 10.0
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        seconds = raw / 1000
    else:
        seconds = config.get_optional_duration_seconds("timeout") or 0.0
    if seconds <= 0:
        raise config.error("timeout", f"expected a duration above 0, got {raw!r}")
    return seconds


def _read_start_params(config: Config) -> dict[str, str]:
    """``startUrlSearchParams``: string parameters added to the authorization URL
    (Backstage 0.4.11), none of those wsgiauth sets for each flow."""
    block = config.get_optional_config("startUrlSearchParams")
    if block is None:
        return {}
    params: dict[str, str] = {}
    for name in block.keys():
        if name in _FLOW_PARAMS:
            raise block.error(name, "wsgiauth sets it for every flow; it cannot be configured")
        params[name] = block.get_string(name)
    return params


#: The built-in ``oidc`` provider.
module = ProviderModule(
    provider_id="oidc",
    factory=create_oauth_provider_factory(OidcAuthenticator),
    resolvers={
        "preferredUsernameMatchingUserEntityName": preferred_username_matching_user_entity_name
    },
)
