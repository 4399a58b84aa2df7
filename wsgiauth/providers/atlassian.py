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
from ..oauth import OAuthStartResponse
from ..oauth import ProfileInfo
from ..oauth import ProviderModule
from ..oauth import authorization_url
from ..oauth import callback_code
from ..oauth import create_oauth_provider_factory
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


class AtlassianAuthenticator:
    """Backstage's ``atlassianAuthenticator``: 3LO code grant, rotating refresh tokens."""

    persist_scopes = False
    required_scopes: tuple[str, ...] = (
        "offline_access",
        "read:me",
        "read:jira-work",
        "read:jira-user",
    )

    def __init__(
        self, *, credentials: ClientCredentials, callback_url: str, http: HttpClient
    ) -> None:
        self.credentials = credentials
        self.callback_url = callback_url
        self.http = http

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

    def start(self, input: OAuthStartInput) -> OAuthStartResponse:  # noqa: A002 (protocol name)
        """Send the browser to Atlassian's consent page."""
        return OAuthStartResponse(
            authorization_url(
                AUTHORIZATION_URL,
                self.credentials.client_id,
                audience="api.atlassian.com",
                prompt="consent",
                redirect_uri=self.callback_url,
                scope=input.scope,
                state=input.state,
            )
        )

    def authenticate(self, input: OAuthAuthenticateInput) -> OAuthAuthenticatorResult:  # noqa: A002
        """Trade the code, then read ``/me`` and the accessible resources."""
        body = self.credentials.code_grant(
            callback_code(input.request), redirect_uri=self.callback_url, code_verifier=None
        )
        token = request_token(
            self.http, TOKEN_URL, self.credentials, body, failed="Authentication failed"
        )
        session = session_from_token(token)
        return OAuthAuthenticatorResult(
            full_profile=self._profile(session.access_token), session=session
        )

    def refresh(self, input: OAuthRefreshInput) -> OAuthAuthenticatorResult:  # noqa: A002
        """Trade the refresh token (Atlassian rotates it), with the scope, as passport does."""
        body = self.credentials.refresh_grant(input.refresh_token, scope=input.scope or None)
        token = request_token(
            self.http, TOKEN_URL, self.credentials, body, failed="The refresh token was rejected"
        )
        session = session_from_token(token, refresh_token=input.refresh_token)
        return OAuthAuthenticatorResult(
            full_profile=self._profile(session.access_token), session=session
        )

    def _profile(self, access_token: str) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {access_token}", "Accept": "application/json"}
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
