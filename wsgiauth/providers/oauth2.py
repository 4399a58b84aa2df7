"""The generic OAuth 2 provider (Backstage's ``oauth2`` module).

:class:`OAuth2Authenticator` signs users in with any authorization server
that speaks the authorization-code grant: it sends the browser to
``authorizationUrl``, trades the code at ``tokenUrl`` and, if ``profileUrl``
is set, reads the user's profile from there. Unlike Backstage (whose passport
strategy sends no PKCE), PKCE S256 is on by default; ``pkce: false`` turns it
off for the rare server that rejects it.

It is an :class:`~wsgiauth.oauth.OAuthEndpointAuthenticator`, as most built-in
providers are; the token-endpoint mechanics it shares with
:mod:`wsgiauth.providers.oidc` live in :mod:`wsgiauth.oauth.client`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING
from typing import Any

from ..errors import InputError
from ..oauth import ClientCredentials
from ..oauth import OAuthAuthenticatorResult
from ..oauth import OAuthEndpointAuthenticator
from ..oauth import ProfileInfo
from ..oauth import ProviderModule
from ..oauth import create_oauth_provider_factory
from ..oauth import read_absolute_url
from ..sign_in import username_matching_user_entity_name

if TYPE_CHECKING:
    from typing import Self

    from ..oauth import Config
    from ..oauth import HttpClient
    from ..oauth import OAuthRefreshInput
    from ..oauth import OAuthSession
    from ..oauth import OAuthStartInput

__all__ = ["OAuth2Authenticator", "module"]

log = logging.getLogger(__name__)


def _read_prompt(config: Config, default: str) -> str | None:
    """The ``prompt`` parameter to send; the value ``auto`` sends none (as Backstage)."""
    prompt = config.get_optional_string("prompt") or default
    return None if prompt == "auto" else prompt


def _dotted(document: Any, path: str) -> Any:
    """The value at a dotted path (``data.attributes.email``, ``emails.0``) or None."""
    value = document
    for part in path.split("."):
        if isinstance(value, Mapping):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


#: ``profileMapping`` fields and their default paths into the profile response.
PROFILE_FIELDS: Mapping[str, str | None] = {
    "email": "email",
    "displayName": "name",
    "picture": "picture",
    "id": None,
    "username": None,
}


class OAuth2Authenticator(OAuthEndpointAuthenticator):
    """Backstage's generic ``oauth2`` provider: authorization code (with PKCE) and refresh."""

    persist_scopes = True
    keep_requested_scope = True

    def __init__(
        self,
        *,
        credentials: ClientCredentials,
        callback_url: str,
        authorization_url: str,
        token_url: str,
        http: HttpClient,
        profile_url: str | None = None,
        profile_mapping: Mapping[str, str] | None = None,
        disable_refresh: bool = False,
        pkce: bool = True,
        prompt: str | None = "consent",
    ) -> None:
        super().__init__(credentials=credentials, callback_url=callback_url, http=http)
        self.authorize_url = authorization_url
        self.token_url = token_url
        self.profile_url = profile_url
        mapping = {key: path for key, path in PROFILE_FIELDS.items() if path}
        self.profile_mapping: Mapping[str, str] = {**mapping, **(profile_mapping or {})}
        self.disable_refresh = disable_refresh
        self.pkce = pkce
        self.prompt = prompt

    @classmethod
    def from_config(cls, config: Config, *, callback_url: str, http: HttpClient) -> Self:
        """Build from ``auth.providers.oauth2.<env>``; every bad key fails here, at startup."""
        if config.has("scope"):
            raise config.error(
                "scope",
                'The oauth2 provider no longer supports the "scope" configuration option. '
                'Please use the "additionalScopes" option instead.',
            )
        method = config.get_optional_string("tokenEndpointAuthMethod")
        basic = config.get_optional_bool("includeBasicAuth")
        if method and basic is not None and (method == "client_secret_basic") != basic:
            raise config.error(
                "includeBasicAuth", f"contradicts tokenEndpointAuthMethod {method!r}; set one"
            )
        # Backstage's ``includeBasicAuth: false`` puts the credentials in the body.
        default_method = "client_secret_post" if basic is False else "client_secret_basic"
        mapping_config = config.get_optional_config("profileMapping")
        mapping: dict[str, str] = {}
        for key in mapping_config.keys() if mapping_config else ():
            if key not in PROFILE_FIELDS:
                raise mapping_config.error(  # type: ignore[union-attr]
                    key, f"unknown profile field; expected one of {', '.join(PROFILE_FIELDS)}"
                )
            mapping[key] = mapping_config.get_string(key)  # type: ignore[union-attr]
        profile_url = read_absolute_url(config, "profileUrl", required=False)
        if mapping_config is not None and profile_url is None:
            raise config.error("profileMapping", "needs profileUrl to read the profile from")
        return cls(
            credentials=ClientCredentials.from_config(config, auth_method=default_method),
            callback_url=callback_url,
            authorization_url=str(read_absolute_url(config, "authorizationUrl")),
            token_url=str(read_absolute_url(config, "tokenUrl")),
            http=http,
            profile_url=profile_url,
            profile_mapping=mapping,
            disable_refresh=bool(config.get_optional_bool("disableRefresh")),
            pkce=config.get_optional_bool("pkce") is not False,
            prompt=_read_prompt(config, "consent"),
        )

    def authorize_params(self, input: OAuthStartInput) -> Mapping[str, str | None]:  # noqa: A002
        """Backstage's ``access_type=offline``, and the configured ``prompt``."""
        return {"access_type": "offline", "prompt": self.prompt}

    def refresh(self, input: OAuthRefreshInput) -> OAuthAuthenticatorResult:  # noqa: A002
        """Trade the refresh token for a new session, unless ``disableRefresh``."""
        if self.disable_refresh:
            raise InputError("Session refreshes have been disabled")
        return super().refresh(input)

    def fetch_profile(self, session: OAuthSession) -> dict[str, Any]:
        """The ``profileUrl`` document, or nothing without one."""
        if self.profile_url is None:
            return {}
        return self.http.get_json(
            self.profile_url, headers={"Authorization": f"Bearer {session.access_token}"}
        )

    def profile_field(self, result: OAuthAuthenticatorResult, field: str) -> str | None:
        """A ``profileMapping`` field (``email``, ``id``, ``username``...) of a result, as text.

        Sign-in resolvers use it for the fields :class:`ProfileInfo` has no room for.
        """
        path = self.profile_mapping.get(field)
        value = _dotted(result.full_profile, path) if path else None
        if value is None or isinstance(value, Mapping | list):
            return None
        return str(value)

    def default_profile_transform(self, result: OAuthAuthenticatorResult) -> ProfileInfo:
        """Email, display name and picture through ``profileMapping``."""
        return ProfileInfo(
            email=self.profile_field(result, "email"),
            display_name=self.profile_field(result, "displayName"),
            picture=self.profile_field(result, "picture"),
        )


#: The built-in ``oauth2`` provider.
module = ProviderModule(
    provider_id="oauth2",
    factory=create_oauth_provider_factory(OAuth2Authenticator),
    resolvers={"usernameMatchingUserEntityName": username_matching_user_entity_name},
)
