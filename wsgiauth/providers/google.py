"""Google sign-in (Backstage's ``google`` module).

Read against ``@backstage/plugin-auth-backend-module-google-provider`` 0.3.19,
``dist/authenticator.cjs.js`` (``googleAuthenticator``) and ``dist/resolvers.cjs.js``
(``googleSignInResolvers``), and the passport strategy it wraps,
``passport-google-oauth20`` 2.0.0 ``lib/strategy.js`` and ``lib/profile/openid.js``:

- config ``clientId``, ``clientSecret`` (plus the common keys);
- required scopes ``openid``, ``.../auth/userinfo.email``, ``.../auth/userinfo.profile``;
  granted scopes are not persisted, ``providerInfo.scope`` is what Google answers;
- ``access_type=offline``, ``prompt=consent``, ``include_granted_scopes=true``;
- the code and refresh grants at ``www.googleapis.com/oauth2/v4/token`` with the client
  credentials in the form; the profile from ``www.googleapis.com/oauth2/v3/userinfo``;
- logout revokes the refresh token at ``oauth2.googleapis.com/revoke``
  (``google-auth-library``'s ``OAuth2Client.revokeToken``);
- the ``emailMatchingUserEntityAnnotation`` resolver on ``google.com/email``.

Like Backstage, the ID token is not verified: it comes straight from Google's token
endpoint over TLS (OIDC Core §3.1.3.7) and only fills profile fields userinfo lacks.
Unlike Backstage, the userinfo call carries the token in the ``Authorization`` header
rather than the query string, PKCE S256 is sent, and a failed revocation is logged
instead of failing the logout (the local session ends either way).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING
from typing import Any
from urllib.parse import urlencode

from ..errors import HttpError
from ..oauth import ClientCredentials
from ..oauth import OAuthEndpointAuthenticator
from ..oauth import ProviderModule
from ..oauth import create_oauth_provider_factory
from ..sign_in import email_matching_user_entity_annotation

if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Self

    from ..oauth import Config
    from ..oauth import HttpClient
    from ..oauth import OAuthLogoutInput
    from ..oauth import OAuthSession
    from ..oauth import OAuthStartInput

__all__ = ["GoogleAuthenticator", "module"]

log = logging.getLogger(__name__)

AUTHORIZATION_URL = "https://accounts.google.com/o/oauth2/v2/auth"
TOKEN_URL = "https://www.googleapis.com/oauth2/v4/token"  # noqa: S105 (a URL)
USERINFO_URL = "https://www.googleapis.com/oauth2/v3/userinfo"
REVOKE_URL = "https://oauth2.googleapis.com/revoke"


def _google_profile(json: Mapping[str, Any]) -> dict[str, Any]:
    """The passport profile of a userinfo answer (passport-google-oauth20 ``openid.parse``)."""
    profile: dict[str, Any] = {"provider": "google", "id": json.get("sub")}
    profile["displayName"] = json.get("name")
    if json.get("family_name") or json.get("given_name"):
        profile["name"] = {
            "familyName": json.get("family_name"),
            "givenName": json.get("given_name"),
        }
    if json.get("email"):
        profile["emails"] = [{"value": json["email"], "verified": json.get("email_verified")}]
    if json.get("picture"):
        profile["photos"] = [{"value": json["picture"]}]
    profile["_json"] = dict(json)
    return profile


class GoogleAuthenticator(OAuthEndpointAuthenticator):
    """Backstage's ``googleAuthenticator``: Google's OAuth 2 endpoints and userinfo."""

    required_scopes: tuple[str, ...] = (
        "openid",
        "https://www.googleapis.com/auth/userinfo.email",
        "https://www.googleapis.com/auth/userinfo.profile",
    )

    authorize_url = AUTHORIZATION_URL
    token_url = TOKEN_URL

    @classmethod
    def from_config(cls, config: Config, *, callback_url: str, http: HttpClient) -> Self:
        """Build from ``auth.providers.google.<env>``: ``clientId`` and ``clientSecret``."""
        # The passport strategy puts the client credentials in the token request's form.
        credentials = ClientCredentials.from_config(config, auth_method="client_secret_post")
        return cls(credentials=credentials, callback_url=callback_url, http=http)

    def authorize_params(self, input: OAuthStartInput) -> Mapping[str, str | None]:  # noqa: A002
        """Google's consent page, asking for a refresh token and incremental consent."""
        return {"access_type": "offline", "prompt": "consent", "include_granted_scopes": "true"}

    def logout(self, input: OAuthLogoutInput) -> None:  # noqa: A002
        """Revoke the refresh token at Google; a failure there is only logged."""
        if not input.refresh_token:
            return
        try:
            response = self.http.request(
                "POST", f"{REVOKE_URL}?{urlencode({'token': input.refresh_token})}"
            )
        except HttpError as error:
            log.warning("Revoking the Google refresh token failed: %s", error.message)
            return
        if not response.ok:
            log.warning("Revoking the Google refresh token failed: %d", response.status)

    def fetch_profile(self, session: OAuthSession) -> dict[str, Any]:
        """The passport profile of Google's userinfo."""
        userinfo = self.http.get_json(
            USERINFO_URL, headers={"Authorization": f"Bearer {session.access_token}"}
        )
        return _google_profile(userinfo)


#: The built-in ``google`` provider.
module = ProviderModule(
    provider_id="google",
    factory=create_oauth_provider_factory(
        GoogleAuthenticator, config_keys=("clientId", "clientSecret")
    ),
    resolvers={
        "emailMatchingUserEntityAnnotation": email_matching_user_entity_annotation(
            "google.com/email"
        )
    },
)
