"""Bitbucket Server / Data Center (Backstage's ``bitbucketServer`` module).

Held against ``@backstage/plugin-auth-backend-module-bitbucket-server-provider``
0.2.19 (``src/authenticator.ts``, ``src/helpers.ts``, ``src/resolvers.ts``,
``src/module.ts``): ``host`` is the server's host name (https is implied), the
browser goes to ``https://<host>/rest/oauth2/latest/authorize``, the code is traded
at ``https://<host>/rest/oauth2/latest/token`` (credentials in the form body, as
passport-oauth2 sends them), and the user is found in two steps: the
``X-AUSERNAME`` header of ``/plugins/servlet/applinks/whoami``, then
``/rest/api/latest/users/<name>?avatarSize=256``. No scope is required and granted
scopes are not persisted.

``full_profile`` is the passport-shaped profile Backstage builds (``id``,
``username``, ``displayName``, ``emails``, ``photos``).

Deliberate differences: PKCE S256 is sent (Bitbucket Data Center documents it);
the user name is URL-encoded in the users path; an absolute ``avatarUrl`` (an
external avatar service) is kept as it is instead of being prefixed with the host.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from typing import Any
from urllib.parse import quote
from urllib.parse import urljoin

from ..errors import AuthenticationError
from ..oauth import ClientCredentials
from ..oauth import OAuthAuthenticatorResult
from ..oauth import OAuthEndpointAuthenticator
from ..oauth import ProfileInfo
from ..oauth import ProviderModule
from ..oauth import create_oauth_provider_factory
from ..oauth import transform_profile

if TYPE_CHECKING:
    from typing import Self

    from ..oauth import Config
    from ..oauth import HttpClient
    from ..oauth import OAuthSession

__all__ = ["BitbucketServerAuthenticator", "bitbucket_server_profile", "module"]

NO_USERNAME = "Failed to retrieve the username of the logged in user"


def bitbucket_server_profile(user: dict[str, Any], *, host: str) -> dict[str, Any]:
    """The passport profile Backstage's ``fetchProfile`` makes of a ``/users/<name>`` answer."""
    profile: dict[str, Any] = {
        "provider": "bitbucketServer",
        "id": None if user.get("id") is None else str(user["id"]),
        "displayName": user.get("displayName"),
        "username": user.get("name"),
        "emails": [{"value": user.get("emailAddress")}],
    }
    avatar = user.get("avatarUrl")
    if isinstance(avatar, str) and avatar:
        profile["photos"] = [{"value": urljoin(f"https://{host}/", avatar)}]
    return profile


class BitbucketServerAuthenticator(OAuthEndpointAuthenticator):
    """Backstage's ``bitbucketServerAuthenticator``: code grant, refresh, whoami + users API."""

    refresh_failed = "Failed to refresh access token"

    def __init__(
        self, *, credentials: ClientCredentials, callback_url: str, host: str, http: HttpClient
    ) -> None:
        super().__init__(credentials=credentials, callback_url=callback_url, http=http)
        self.host = host
        self.base_url = f"https://{host}"
        self.authorize_url = f"{self.base_url}/rest/oauth2/latest/authorize"
        self.token_url = f"{self.base_url}/rest/oauth2/latest/token"

    @classmethod
    def from_config(cls, config: Config, *, callback_url: str, http: HttpClient) -> Self:
        """Read ``clientId``, ``clientSecret`` and ``host`` (``bitbucket.example.com``)."""
        host = config.get_string("host")
        if "://" in host or not host.strip("/"):
            raise config.error("host", f"expected a host name without a scheme, got {host!r}")
        return cls(
            credentials=ClientCredentials.from_config(config, auth_method="client_secret_post"),
            callback_url=callback_url,
            host=host.strip("/"),
            http=http,
        )

    def fetch_profile(self, session: OAuthSession) -> dict[str, Any]:
        """The user named by whoami's ``X-AUSERNAME``, from the users API."""
        headers = {"Authorization": f"Bearer {session.access_token}"}
        whoami = self.http.request(
            "GET", f"{self.base_url}/plugins/servlet/applinks/whoami", headers=headers
        )
        username = whoami.headers.get("X-Ausername") if whoami.ok else None
        if not username:
            raise AuthenticationError(NO_USERNAME)
        user = self.http.request(
            "GET",
            f"{self.base_url}/rest/api/latest/users/{quote(username, safe='')}?avatarSize=256",
            headers={"Accept": "application/json", **headers},
        )
        if not user.ok:
            raise AuthenticationError(f"Failed to retrieve the user '{username}'")
        document = user.json()
        if not isinstance(document, dict):
            raise AuthenticationError(f"Failed to retrieve the user '{username}'")
        return bitbucket_server_profile(document, host=self.host)

    def default_profile_transform(self, result: OAuthAuthenticatorResult) -> ProfileInfo:
        """Backstage's passport transform: first email, first photo, display name or username.

        Bitbucket Data Center issues no ID token, so none is read.
        """
        return transform_profile(result.full_profile, None)


#: The built-in ``bitbucketServer`` provider. Backstage's module also defines an
#: ``emailMatchingUserEntityProfileEmail``, but spreads the common resolvers after it,
#: so the common one of that name is what config gets; so here.
module = ProviderModule(
    provider_id="bitbucketServer",
    factory=create_oauth_provider_factory(
        BitbucketServerAuthenticator, config_keys=["clientId", "clientSecret", "host"]
    ),
)
