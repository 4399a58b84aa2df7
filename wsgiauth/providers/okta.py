"""Okta sign-in (Backstage's ``okta`` module).

Read against ``@backstage/plugin-auth-backend-module-okta-provider`` 0.2.19,
``dist/authenticator.cjs.js`` (``oktaAuthenticator``) and ``dist/resolvers.cjs.js``
(``oktaSignInResolvers``), and the passport strategy it wraps,
``@davidzemon/passport-okta-oauth`` 0.0.7 ``lib/passport-okta-oauth/oauth2.js``:

- config ``clientId``, ``clientSecret``, ``audience`` (the Okta domain, default
  ``https://okta.com``, must start with ``http(s)://``), ``authServerId``, ``idp``;
- fixed paths, no discovery: ``<audience>/oauth2[/<authServerId>]/v1/authorize``,
  ``.../token`` and ``.../userinfo`` (a ``POST`` with the bearer token);
- required scopes ``openid email profile offline_access``; granted scopes are not
  persisted, ``providerInfo.scope`` is what Okta answers;
- the authorization URL carries ``idp`` when configured (the strategy drops the
  ``accessType``/``prompt`` Backstage passes);
- the ``emailMatchingUserEntityAnnotation`` resolver on ``okta.com/email``.

Like Backstage, the ID token is not verified: it comes straight from Okta's token
endpoint over TLS (OIDC Core §3.1.3.7) and only fills profile fields userinfo lacks.
Unlike Backstage, PKCE S256 is sent (Okta accepts it from web apps and can require
it), and both grants authenticate with HTTP Basic (Backstage sends a malformed
``Basic:`` header for the code and the form for refresh; Okta takes either).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from typing import Any

from ..errors import ServiceUnavailableError
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
    from ..oauth import OAuthSession
    from ..oauth import OAuthStartInput

__all__ = ["OktaAuthenticator", "module"]

DEFAULT_AUDIENCE = "https://okta.com"


class OktaAuthenticator(OAuthEndpointAuthenticator):
    """Backstage's ``oktaAuthenticator``: an Okta org or custom authorization server."""

    required_scopes: tuple[str, ...] = ("openid", "email", "profile", "offline_access")

    def __init__(
        self,
        *,
        credentials: ClientCredentials,
        callback_url: str,
        base_url: str,
        http: HttpClient,
        idp: str | None = None,
    ) -> None:
        super().__init__(credentials=credentials, callback_url=callback_url, http=http)
        #: ``<audience>/oauth2[/<authServerId>]/v1``, the prefix of every endpoint.
        self.base_url = base_url
        self.authorize_url = f"{base_url}/authorize"
        self.token_url = f"{base_url}/token"
        self.idp = idp

    @classmethod
    def from_config(cls, config: Config, *, callback_url: str, http: HttpClient) -> Self:
        """Build from ``auth.providers.okta.<env>``; every bad key fails here, at startup."""
        audience = config.get_optional_string("audience") or DEFAULT_AUDIENCE
        if not re.match(r"https?://", audience):
            raise config.error(
                "audience",
                f'The provided audience "{audience}" is not a valid URL. '
                'It must start with "https://" or "http://".',
            )
        auth_server_id = config.get_optional_string("authServerId")
        server = f"/{auth_server_id}" if auth_server_id else ""
        return cls(
            credentials=ClientCredentials.from_config(config),
            callback_url=callback_url,
            base_url=f"{audience}/oauth2{server}/v1",
            http=http,
            idp=config.get_optional_string("idp"),
        )

    def authorize_params(self, input: OAuthStartInput) -> Mapping[str, str | None]:  # noqa: A002
        """``idp`` when one is configured."""
        return {"idp": self.idp}

    def fetch_profile(self, session: OAuthSession) -> dict[str, Any]:
        """The passport profile of Okta's userinfo (``Strategy.userProfile``), fetched by POST."""
        url = f"{self.base_url}/userinfo"
        response = self.http.request(
            "POST",
            url,
            headers={
                "Authorization": f"Bearer {session.access_token}",
                "Accept": "application/json",
            },
        )
        if not response.ok:
            raise ServiceUnavailableError(
                f"Authentication failed, failed to fetch user profile: {response.status}"
            )
        json = response.json()
        if not isinstance(json, dict):
            raise ServiceUnavailableError("Authentication failed, Okta's userinfo is not an object")
        return {
            "provider": "okta",
            "id": json.get("sub"),
            "displayName": json.get("name"),
            "username": json.get("preferred_username"),
            "name": {
                "fullName": json.get("name"),
                "familyName": json.get("family_name"),
                "givenName": json.get("given_name"),
            },
            "emails": [{"value": json.get("email")}],
            "_json": json,
        }


#: The built-in ``okta`` provider.
module = ProviderModule(
    provider_id="okta",
    factory=create_oauth_provider_factory(
        OktaAuthenticator,
        config_keys=["clientId", "clientSecret", "audience", "authServerId", "idp"],
    ),
    resolvers={
        "emailMatchingUserEntityAnnotation": email_matching_user_entity_annotation("okta.com/email")
    },
)
