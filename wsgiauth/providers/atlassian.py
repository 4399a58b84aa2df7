"""The Atlassian provider (Backstage's ``atlassian`` module): Atlassian Cloud OAuth 2.0 (3LO).

Read against ``@backstage/plugin-auth-backend-module-atlassian-provider`` 0.4.19
(``src/authenticator.ts``, ``src/resolvers.ts``, ``config.d.ts``) and the
``passport-atlassian-oauth2`` 2.1.0 strategy it wraps:

- the browser goes to ``https://auth.atlassian.com/authorize`` with
  ``audience=api.atlassian.com`` and ``prompt=consent`` (the strategy's
  ``authorizationParams``); no PKCE, as passport sends none;
- the code and refresh token are traded at ``https://auth.atlassian.com/oauth/token``,
  the client id and secret in the form (passport's ``oauth`` library);
- the user comes from ``https://api.atlassian.com/me`` and, as the strategy does,
  the sites it may reach from ``/oauth/token/accessible-resources``;
- required scopes ``offline_access read:me read:jira-work read:jira-user``; granted
  scopes are not persisted (the token response says what was granted);
- the one provider resolver, ``usernameMatchingUserEntityName``, reads the profile's
  ``username``, which the strategy never sets (Backstage's as well): it is here for
  configs that name it, and the common email resolvers are the ones that match;
- ``scope``/``scopes`` in config are refused; ``audience`` is accepted and, as in
  Backstage, not used (the authorization request always names ``api.atlassian.com``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from typing import Any

from ..errors import ServiceUnavailableError
from ..oauth import ClientCredentials
from ..oauth import OAuthAuthenticatorResult
from ..oauth import OAuthEndpointAuthenticator
from ..oauth import ProfileInfo
from ..oauth import ProviderModule
from ..oauth import create_oauth_provider_factory
from ..oauth import transform_profile
from ..sign_in import username_matching_user_entity_name

if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Self

    from ..oauth import Config
    from ..oauth import HttpClient
    from ..oauth import OAuthSession
    from ..oauth import OAuthStartInput

__all__ = ["AtlassianAuthenticator", "atlassian_profile", "module"]

AUTHORIZATION_URL = "https://auth.atlassian.com/authorize"
TOKEN_URL = "https://auth.atlassian.com/oauth/token"  # noqa: S105 - a URL, not a secret
PROFILE_URL = "https://api.atlassian.com/me"
ACCESSIBLE_RESOURCES_URL = "https://api.atlassian.com/oauth/token/accessible-resources"


def atlassian_profile(me: dict[str, Any], accessible_resources: Any) -> dict[str, Any]:
    """The strategy's profile: ``/me`` fields renamed (``_convertProfileFields``), the raw
    answer under ``_json`` and the reachable sites under ``accessibleResources``."""
    return {
        "provider": "atlassian",
        "id": me.get("account_id"),
        "displayName": me.get("name"),
        "email": me.get("email"),
        "photo": me.get("picture"),
        "_json": me,
        "accessibleResources": accessible_resources,
    }


class AtlassianAuthenticator(OAuthEndpointAuthenticator):
    """Backstage's ``atlassianAuthenticator``: 3LO code grant, rotating refresh tokens."""

    required_scopes: tuple[str, ...] = (
        "offline_access",
        "read:me",
        "read:jira-work",
        "read:jira-user",
    )

    pkce = False  # as passport
    authorize_url = AUTHORIZATION_URL
    token_url = TOKEN_URL

    @classmethod
    def from_config(cls, config: Config, *, callback_url: str, http: HttpClient) -> Self:
        """Build from ``auth.providers.atlassian.<env>``."""
        for key in ("scope", "scopes"):
            if config.has(key):
                raise config.error(
                    key,
                    'The atlassian provider no longer supports the "scope" or "scopes" '
                    'configuration options. Please use the "additionalScopes" option instead.',
                )
        config.get_optional_string("audience")  # in Backstage's schema; unused there too
        credentials = ClientCredentials(
            client_id=config.get_string("clientId"),
            client_secret=config.get_string("clientSecret"),
            auth_method="client_secret_post",
        )
        return cls(credentials=credentials, callback_url=callback_url, http=http)

    def authorize_params(self, input: OAuthStartInput) -> Mapping[str, str | None]:  # noqa: A002
        """Atlassian's consent page, for the API (the strategy's ``authorizationParams``)."""
        return {"audience": "api.atlassian.com", "prompt": "consent"}

    def fetch_profile(self, session: OAuthSession) -> dict[str, Any]:
        """``/me`` and the sites the token may reach (Atlassian rotates refresh tokens)."""
        headers = {"Authorization": f"Bearer {session.access_token}", "Accept": "application/json"}
        me = self.http.get_json(PROFILE_URL, headers=headers)
        response = self.http.request("GET", ACCESSIBLE_RESOURCES_URL, headers=headers)
        if not response.ok:
            raise ServiceUnavailableError(
                f"Identity provider at api.atlassian.com answered {response.status}"
            )
        return atlassian_profile(me, response.json())

    def default_profile_transform(self, result: OAuthAuthenticatorResult) -> ProfileInfo:
        """Backstage's passport transform over the profile's string fields: ``email`` (unless
        ``email_verified`` is false), picture from ``photo``, display name from ``displayName``,
        else ``id``. A field that is not a non-empty string counts as missing (where Backstage
        would show an empty name), and no ID token is read (Atlassian issues none)."""
        profile = result.full_profile
        fields = ("email", "photo", "displayName", "username", "id")
        strings = {
            key: value for key in fields if isinstance(value := profile.get(key), str) and value
        }
        return transform_profile({**strings, "_json": profile.get("_json")}, None)


#: The built-in ``atlassian`` provider.
module = ProviderModule(
    provider_id="atlassian",
    factory=create_oauth_provider_factory(
        AtlassianAuthenticator,
        config_keys=["clientId", "clientSecret", "audience", "scope", "scopes"],
    ),
    resolvers={"usernameMatchingUserEntityName": username_matching_user_entity_name},
)
