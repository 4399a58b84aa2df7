"""GitLab, on gitlab.com or self-managed (Backstage's ``gitlab`` module).

Held against ``@backstage/plugin-auth-backend-module-gitlab-provider`` 0.4.7
(``src/authenticator.ts``, ``src/resolvers.ts``, ``src/module.ts``) and the
``passport-gitlab2`` 5.0.0 strategy it wraps: ``audience`` is the GitLab base URL
(default ``https://gitlab.com``), the browser goes to ``<audience>/oauth/authorize``,
the code is traded at ``<audience>/oauth/token`` (credentials in the form body,
as passport-oauth2 sends them) and the user is read from ``<audience>/api/v4/user``.
The required scope is ``read_user``; granted scopes are not persisted, so
``providerInfo.scope`` is what the token endpoint answered.

``full_profile`` is the profile passport-gitlab2 builds (``id``, ``username``,
``displayName``, ``emails``, ``avatarUrl``, ``profileUrl``, ``_json``), which is
what Backstage's resolvers and custom resolvers read.

One deliberate difference: PKCE S256 is sent (GitLab documents it for every
application); Backstage's passport strategy sends none.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from typing import Any
from urllib.parse import urlsplit

from ..errors import AuthenticationError
from ..oauth import ClientCredentials
from ..oauth import OAuthEndpointAuthenticator
from ..oauth import ProviderModule
from ..oauth import create_oauth_provider_factory
from ..oauth import read_absolute_url
from ..sign_in import profile_field_matching_user_entity_annotation
from ..sign_in import username_matching_user_entity_name

if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Self

    from ..oauth import Config
    from ..oauth import HttpClient
    from ..oauth import OAuthSession

__all__ = [
    "GitlabAuthenticator",
    "gitlab_profile",
    "module",
    "user_id_matching_user_entity_annotation",
]

DEFAULT_BASE_URL = "https://gitlab.com"


def gitlab_profile(user: dict[str, Any]) -> dict[str, Any]:
    """The passport-gitlab2 profile of a ``/api/v4/user`` answer."""
    return {
        "provider": "gitlab",
        "id": None if user.get("id") is None else str(user["id"]),
        "username": user.get("username"),
        "displayName": user.get("name"),
        "emails": [{"value": user.get("email")}],
        "avatarUrl": user.get("avatar_url"),
        "profileUrl": user.get("web_url"),
        "_json": user,
    }


class GitlabAuthenticator(OAuthEndpointAuthenticator):
    """Backstage's ``gitlabAuthenticator``: code grant, refresh (GitLab rotates refresh
    tokens; a refresh sends the scope, as Backstage does), the ``/api/v4/user`` profile."""

    required_scopes: tuple[str, ...] = ("read_user",)
    refresh_failed = "Failed to refresh access token"

    def __init__(
        self, *, credentials: ClientCredentials, callback_url: str, base_url: str, http: HttpClient
    ) -> None:
        super().__init__(credentials=credentials, callback_url=callback_url, http=http)
        self.base_url = base_url.rstrip("/")
        self.authorize_url = f"{self.base_url}/oauth/authorize"
        self.token_url = f"{self.base_url}/oauth/token"

    @classmethod
    def from_config(cls, config: Config, *, callback_url: str, http: HttpClient) -> Self:
        """Read ``clientId``, ``clientSecret`` and ``audience`` (the GitLab base URL)."""
        return cls(
            credentials=ClientCredentials.from_config(config, auth_method="client_secret_post"),
            callback_url=callback_url,
            base_url=read_absolute_url(config, "audience", required=False) or DEFAULT_BASE_URL,
            http=http,
        )

    def fetch_profile(self, session: OAuthSession) -> dict[str, Any]:
        """The passport-gitlab2 profile of ``<audience>/api/v4/user``."""
        user = self.http.get_json(
            f"{self.base_url}/api/v4/user",
            headers={"Authorization": f"Bearer {session.access_token}"},
        )
        return gitlab_profile(user)


def _user_id_annotation(profile: Mapping[str, Any]) -> str:
    """``<host of profileUrl>/user-id``: the GitLab instance's own annotation."""
    if not profile.get("profileUrl"):
        raise AuthenticationError("GitLab user profile does not contain a profile URL")
    return f"{urlsplit(profile['profileUrl']).hostname}/user-id"


#: The User annotated ``<gitlab host>/user-id: <GitLab user id>`` (e.g. ``gitlab.com/user-id``).
user_id_matching_user_entity_annotation = profile_field_matching_user_entity_annotation(
    "id", _user_id_annotation, missing="GitLab user profile does not contain a user ID"
)

#: The built-in ``gitlab`` provider.
module = ProviderModule(
    provider_id="gitlab",
    factory=create_oauth_provider_factory(
        GitlabAuthenticator, config_keys=["clientId", "clientSecret", "audience"]
    ),
    resolvers={
        "usernameMatchingUserEntityName": username_matching_user_entity_name,
        "userIdMatchingUserEntityAnnotation": user_id_matching_user_entity_annotation,
    },
)
