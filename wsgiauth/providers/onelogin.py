"""OneLogin sign-in (Backstage's ``onelogin`` module).

Read against ``@backstage/plugin-auth-backend-module-onelogin-provider`` 0.3.19,
``dist/authenticator.cjs.js`` (``oneLoginAuthenticator``) and ``dist/resolvers.cjs.js``
(``oneLoginSignInResolvers``), and the passport strategy it wraps,
``passport-onelogin-oauth`` 0.0.1 ``lib/passport-onelogin-oauth/oauth2.js``:

- config ``clientId``, ``clientSecret``, ``issuer`` (``https://<company>.onelogin.com/oidc/2``);
- fixed paths under the issuer, no discovery: ``/auth``, ``/token`` (client credentials in
  the form: Backstage's docs set the app's token endpoint method to ``POST``) and ``/me``
  (a ``GET`` with the bearer token);
- the scope is always ``openid``, at sign-in and at refresh, whatever was requested;
  granted scopes are not persisted, ``providerInfo.scope`` is what OneLogin answers;
- the ``usernameMatchingUserEntityName`` resolver on the profile's ``username``
  (``preferred_username``).

Like Backstage, the ID token is not verified: it comes straight from OneLogin's token
endpoint over TLS (OIDC Core §3.1.3.7) and only fills profile fields ``/me`` lacks; and
like Backstage, no PKCE is sent (OneLogin ties PKCE to public clients).
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from typing import Any

from ..oauth import ClientCredentials
from ..oauth import OAuthAuthenticatorResult
from ..oauth import OAuthStartResponse
from ..oauth import ProfileInfo
from ..oauth import ProviderModule
from ..oauth import authorization_url
from ..oauth import callback_code
from ..oauth import create_oauth_provider_factory
from ..oauth import read_absolute_url
from ..oauth import request_token
from ..oauth import session_from_token
from ..oauth import transform_profile
from ..sign_in import username_matching_user_entity_name

if TYPE_CHECKING:
    from typing import Self

    from ..oauth import Config
    from ..oauth import HttpClient
    from ..oauth import OAuthAuthenticateInput
    from ..oauth import OAuthRefreshInput
    from ..oauth import OAuthSession
    from ..oauth import OAuthStartInput

__all__ = ["OneLoginAuthenticator", "module"]

#: Backstage's authenticator replaces the computed scope with this, at start and refresh.
SCOPE = "openid"


class OneLoginAuthenticator:
    """Backstage's ``oneLoginAuthenticator``: OneLogin's OpenID Connect endpoints."""

    persist_scopes = False
    required_scopes: tuple[str, ...] = ()

    def __init__(
        self, *, credentials: ClientCredentials, callback_url: str, issuer: str, http: HttpClient
    ) -> None:
        self.credentials = credentials
        self.callback_url = callback_url
        self.issuer = issuer
        self.http = http

    @classmethod
    def from_config(cls, config: Config, *, callback_url: str, http: HttpClient) -> Self:
        """Build from ``auth.providers.onelogin.<env>``; every bad key fails here, at startup."""
        return cls(
            credentials=ClientCredentials.from_config(config, auth_method="client_secret_post"),
            callback_url=callback_url,
            issuer=str(read_absolute_url(config, "issuer")).rstrip("/"),
            http=http,
        )

    def start(self, input: OAuthStartInput) -> OAuthStartResponse:  # noqa: A002 (protocol name)
        """OneLogin's ``/auth``, always for the ``openid`` scope."""
        return OAuthStartResponse(
            authorization_url(
                f"{self.issuer}/auth",
                self.credentials.client_id,
                redirect_uri=self.callback_url,
                scope=SCOPE,
                state=input.state,
            )
        )

    def authenticate(self, input: OAuthAuthenticateInput) -> OAuthAuthenticatorResult:  # noqa: A002
        """Trade the callback's code for tokens, then read ``/me``."""
        body = self.credentials.code_grant(
            callback_code(input.request), redirect_uri=self.callback_url, code_verifier=None
        )
        token = request_token(
            self.http,
            f"{self.issuer}/token",
            self.credentials,
            body,
            failed="Authentication failed",
        )
        session = session_from_token(token)
        return OAuthAuthenticatorResult(full_profile=self._profile(session), session=session)

    def refresh(self, input: OAuthRefreshInput) -> OAuthAuthenticatorResult:  # noqa: A002
        """Trade the refresh token for ``openid``; keep it unless OneLogin rotated it."""
        body = self.credentials.refresh_grant(input.refresh_token, scope=SCOPE)
        token = request_token(
            self.http,
            f"{self.issuer}/token",
            self.credentials,
            body,
            failed="The refresh token was rejected",
        )
        session = session_from_token(token, refresh_token=input.refresh_token)
        return OAuthAuthenticatorResult(full_profile=self._profile(session), session=session)

    def _profile(self, session: OAuthSession) -> dict[str, Any]:
        """The passport profile of ``/me`` (``Strategy.prototype.userProfile``)."""
        json = self.http.get_json(
            f"{self.issuer}/me", headers={"Authorization": f"Bearer {session.access_token}"}
        )
        return {
            "id": str(json.get("sub")),
            "username": json.get("preferred_username"),
            "displayName": json.get("name"),
            "emails": [{"value": json.get("email")}],
            "name": {
                "fullName": json.get("name"),
                "familyName": json.get("family_name"),
                "givenName": json.get("given_name"),
            },
            "_json": json,
        }

    def default_profile_transform(self, result: OAuthAuthenticatorResult) -> ProfileInfo:
        """Backstage's passport transform: email unless unverified, name; the picture
        (``/me`` has none passport reads) and what is missing from the ID token."""
        return transform_profile(result.full_profile, result.session.id_token)


#: The built-in ``onelogin`` provider.
module = ProviderModule(
    provider_id="onelogin",
    factory=create_oauth_provider_factory(
        OneLoginAuthenticator, config_keys=["clientId", "clientSecret", "issuer"]
    ),
    resolvers={"usernameMatchingUserEntityName": username_matching_user_entity_name},
)
