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
from ..oauth import OAuthStartResponse
from ..oauth import ProfileInfo
from ..oauth import ProviderModule
from ..oauth import authorization_url
from ..oauth import callback_code
from ..oauth import create_oauth_provider_factory
from ..oauth import request_token
from ..oauth import session_from_token
from ..oauth import transform_profile

if TYPE_CHECKING:
    from typing import Self

    from ..oauth import Config
    from ..oauth import HttpClient
    from ..oauth import OAuthAuthenticateInput
    from ..oauth import OAuthRefreshInput
    from ..oauth import OAuthSession
    from ..oauth import OAuthStartInput

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


class BitbucketServerAuthenticator:
    """Backstage's ``bitbucketServerAuthenticator``: code grant, refresh, whoami + users API."""

    persist_scopes = False
    required_scopes: tuple[str, ...] = ()

    def __init__(
        self, *, credentials: ClientCredentials, callback_url: str, host: str, http: HttpClient
    ) -> None:
        self.credentials = credentials
        self.callback_url = callback_url
        self.host = host
        self.base_url = f"https://{host}"
        self.http = http

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

    def start(self, input: OAuthStartInput) -> OAuthStartResponse:  # noqa: A002 (protocol name)
        """Send the browser to ``https://<host>/rest/oauth2/latest/authorize``."""
        return OAuthStartResponse(
            authorization_url(
                f"{self.base_url}/rest/oauth2/latest/authorize",
                self.credentials.client_id,
                redirect_uri=self.callback_url,
                scope=input.scope,
                state=input.state,
                code_challenge=input.code_challenge,
            )
        )

    def authenticate(self, input: OAuthAuthenticateInput) -> OAuthAuthenticatorResult:  # noqa: A002
        """Trade the code at ``/rest/oauth2/latest/token``, then find the user."""
        body = self.credentials.code_grant(
            callback_code(input.request),
            redirect_uri=self.callback_url,
            code_verifier=input.code_verifier,
        )
        token = request_token(
            self.http, self._token_url, self.credentials, body, failed="Authentication failed"
        )
        session = session_from_token(token)
        return OAuthAuthenticatorResult(full_profile=self._profile(session), session=session)

    def refresh(self, input: OAuthRefreshInput) -> OAuthAuthenticatorResult:  # noqa: A002
        """Trade the refresh token, sending the scope as Backstage does."""
        body = self.credentials.refresh_grant(input.refresh_token, scope=input.scope or None)
        token = request_token(
            self.http,
            self._token_url,
            self.credentials,
            body,
            failed="Failed to refresh access token",
        )
        session = session_from_token(token, refresh_token=input.refresh_token)
        return OAuthAuthenticatorResult(full_profile=self._profile(session), session=session)

    @property
    def _token_url(self) -> str:
        return f"{self.base_url}/rest/oauth2/latest/token"

    def _profile(self, session: OAuthSession) -> dict[str, Any]:
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
