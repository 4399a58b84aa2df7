"""Bitbucket Cloud (Backstage's ``bitbucket`` module).

Held against ``@backstage/plugin-auth-backend-module-bitbucket-provider`` 0.3.19
(``src/authenticator.ts``, ``src/resolvers.ts``, ``src/module.ts``) and the
``passport-bitbucket-oauth2`` 0.1.2 strategy it wraps: the browser goes to
``https://bitbucket.org/site/oauth2/authorize``, the code is traded at
``https://bitbucket.org/site/oauth2/access_token`` (client credentials in Basic
auth, as the strategy's header does) and the user is read from
``https://api.bitbucket.org/2.0/user``. The required scope is ``account``, and
granted scopes are persisted in the ``bitbucket-granted-scope`` cookie.

``full_profile`` is the profile passport-bitbucket-oauth2 builds (``id`` = the
``uuid``, ``username``, ``displayName``, ``profileUrl``, ``_json``).

One deliberate difference: Bitbucket's ``/2.0/user`` has no email, so Backstage's
profile never has one and its email resolvers cannot match a Bitbucket user. Here
the addresses of ``/2.0/user/emails`` (readable with the ``account`` scope) are
added as passport ``emails``, primary first, with ``verified`` from
``is_confirmed``: the profile's email is the primary address when it is confirmed.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING
from typing import Any

from ..oauth import ClientCredentials
from ..oauth import OAuthAuthenticatorResult
from ..oauth import OAuthEndpointAuthenticator
from ..oauth import ProfileInfo
from ..oauth import ProviderModule
from ..oauth import create_oauth_provider_factory
from ..oauth import transform_profile
from ..sign_in import profile_field_matching_user_entity_annotation

if TYPE_CHECKING:
    from typing import Self

    from ..oauth import Config
    from ..oauth import HttpClient
    from ..oauth import OAuthSession

__all__ = ["BitbucketAuthenticator", "bitbucket_profile", "module"]

log = logging.getLogger(__name__)

OAUTH_URL = "https://bitbucket.org/site/oauth2"
API_URL = "https://api.bitbucket.org/2.0"


def bitbucket_profile(user: dict[str, Any], emails: list[dict[str, Any]]) -> dict[str, Any]:
    """The passport-bitbucket-oauth2 profile of ``/2.0/user``, plus ``/2.0/user/emails``."""
    links = user.get("links")
    html = links.get("html") if isinstance(links, dict) else None
    ordered = sorted(emails, key=lambda email: not email.get("is_primary"))
    return {
        "provider": "bitbucket",
        "id": user.get("uuid"),
        "displayName": user.get("display_name"),
        "username": user.get("username"),
        "profileUrl": html.get("href") if isinstance(html, dict) else None,
        "emails": [
            {"value": email.get("email"), "verified": email.get("is_confirmed")}
            for email in ordered
            if email.get("email")
        ],
        "_json": user,
    }


class BitbucketAuthenticator(OAuthEndpointAuthenticator):
    """Backstage's ``bitbucketAuthenticator``: code grant, refresh, the ``/2.0/user`` profile."""

    persist_scopes = True
    required_scopes: tuple[str, ...] = ("account",)
    pkce = False  # as Backstage
    refresh_failed = "Failed to refresh access token"
    keep_requested_scope = True
    authorize_url = f"{OAUTH_URL}/authorize"
    token_url = f"{OAUTH_URL}/access_token"

    @classmethod
    def from_config(cls, config: Config, *, callback_url: str, http: HttpClient) -> Self:
        """Read ``clientId`` and ``clientSecret``; the hosts are Bitbucket Cloud's."""
        return cls(
            credentials=ClientCredentials.from_config(config, auth_method="client_secret_basic"),
            callback_url=callback_url,
            http=http,
        )

    def fetch_profile(self, session: OAuthSession) -> dict[str, Any]:
        """The user of ``/2.0/user``, with the addresses of ``/2.0/user/emails``."""
        headers = {"Authorization": f"Bearer {session.access_token}"}
        user = self.http.get_json(f"{API_URL}/user", headers=headers)
        # Backstage reads no emails; a consumer without the permission still signs in.
        answer = self.http.request("GET", f"{API_URL}/user/emails", headers=headers)
        emails: list[dict[str, Any]] = []
        if answer.ok:
            page = answer.json()
            values = page.get("values") if isinstance(page, dict) else None
            emails = [email for email in values or () if isinstance(email, dict)]
        else:
            log.warning("Bitbucket /2.0/user/emails answered %d; no email", answer.status)
        return bitbucket_profile(user, emails)

    def default_profile_transform(self, result: OAuthAuthenticatorResult) -> ProfileInfo:
        """Backstage's passport transform: the first (primary) email unless unverified.

        passport-bitbucket-oauth2 sets no ``avatarUrl``, so there is no picture; Bitbucket
        issues no ID token, so none is read.
        """
        return transform_profile(result.full_profile, None)


#: The User annotated ``bitbucket.org/user-id: <uuid>``.
user_id_matching_user_entity_annotation = profile_field_matching_user_entity_annotation(
    "id", "bitbucket.org/user-id", missing="Bitbucket user profile does not contain an ID"
)
#: The User annotated ``bitbucket.org/username: <username>``.
username_matching_user_entity_annotation = profile_field_matching_user_entity_annotation(
    "username",
    "bitbucket.org/username",
    missing="Bitbucket user profile does not contain a Username",
)

#: The built-in ``bitbucket`` provider (Bitbucket Cloud).
module = ProviderModule(
    provider_id="bitbucket",
    factory=create_oauth_provider_factory(
        BitbucketAuthenticator, config_keys=["clientId", "clientSecret"]
    ),
    resolvers={
        "userIdMatchingUserEntityAnnotation": user_id_matching_user_entity_annotation,
        "usernameMatchingUserEntityAnnotation": username_matching_user_entity_annotation,
    },
)
