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
from ..oauth import OAuthEndpointAuthenticator
from ..oauth import ProviderModule
from ..oauth import create_oauth_provider_factory
from ..oauth import read_absolute_url
from ..sign_in import username_matching_user_entity_name

if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Self

    from ..oauth import Config
    from ..oauth import HttpClient
    from ..oauth import OAuthRefreshInput
    from ..oauth import OAuthSession
    from ..oauth import OAuthStartInput

__all__ = ["OneLoginAuthenticator", "module"]

#: Backstage's authenticator replaces the computed scope with this, at start and refresh.
SCOPE = "openid"


class OneLoginAuthenticator(OAuthEndpointAuthenticator):
    """Backstage's ``oneLoginAuthenticator``: OneLogin's OpenID Connect endpoints."""

    pkce = False  # as Backstage: OneLogin ties PKCE to public clients

    def __init__(
        self, *, credentials: ClientCredentials, callback_url: str, issuer: str, http: HttpClient
    ) -> None:
        super().__init__(credentials=credentials, callback_url=callback_url, http=http)
        self.issuer = issuer
        self.authorize_url = f"{issuer}/auth"
        self.token_url = f"{issuer}/token"

    @classmethod
    def from_config(cls, config: Config, *, callback_url: str, http: HttpClient) -> Self:
        """Build from ``auth.providers.onelogin.<env>``; every bad key fails here, at startup."""
        return cls(
            credentials=ClientCredentials.from_config(config, auth_method="client_secret_post"),
            callback_url=callback_url,
            issuer=str(read_absolute_url(config, "issuer")).rstrip("/"),
            http=http,
        )

    def authorize_params(self, input: OAuthStartInput) -> Mapping[str, str | None]:  # noqa: A002
        """Always the ``openid`` scope."""
        return {"scope": SCOPE}

    def refresh_scope(self, input: OAuthRefreshInput) -> str | None:  # noqa: A002
        """Always the ``openid`` scope."""
        return SCOPE

    def fetch_profile(self, session: OAuthSession) -> dict[str, Any]:
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


#: The built-in ``onelogin`` provider.
module = ProviderModule(
    provider_id="onelogin",
    factory=create_oauth_provider_factory(
        OneLoginAuthenticator, config_keys=["clientId", "clientSecret", "issuer"]
    ),
    resolvers={"usernameMatchingUserEntityName": username_matching_user_entity_name},
)
