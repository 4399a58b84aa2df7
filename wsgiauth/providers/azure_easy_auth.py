"""Sign-in behind Azure App Service authentication, "Easy Auth" (Backstage's ``azureEasyAuth``).

Read against ``@backstage/plugin-auth-backend-module-azure-easyauth-provider`` 0.2.24,
``dist/authenticator.cjs.js`` (``azureEasyAuthAuthenticator``), ``dist/resolvers.cjs.js``
(``azureEasyAuthSignInResolvers``) and ``dist/module.cjs.js``
(``validateAppServiceConfiguration``), over ``@backstage/plugin-auth-node`` 0.7.8
``createProxyAuthRouteHandlers``:

- at startup, refuse unless the process runs on App Service with Easy Auth, Entra ID and
  the token store: ``WEBSITE_SKU`` set, ``WEBSITE_AUTH_ENABLED=true``,
  ``WEBSITE_AUTH_DEFAULT_PROVIDER=AzureActiveDirectory``, ``WEBSITE_AUTH_TOKEN_STORE=true``
  (case-insensitive), checked in that order with Backstage's messages;
- no config keys but ``signIn`` (``auth.providers.azureEasyAuth`` is the config, no env
  level); a resolver is required;
- the ID token of ``x-ms-token-aad-id-token`` (refused when missing) is **decoded
  without verification**: App Service validated it and, by Microsoft's documentation,
  does not let external requests set its ``x-ms-*`` headers. Its ``ver`` must be
  ``2.0``. The profile is passport-shaped: ``id`` from ``oid``, ``displayName`` from
  ``name``, ``emails`` from ``email``, ``username`` from ``preferred_username``,
  ``provider: "easyauth"``;
- ``providerInfo`` is ``{"accessToken": <x-ms-token-aad-access-token>}``, ``{}`` without;
- the ``idMatchingUserEntityAnnotation`` resolver on ``graph.microsoft.com/user-id``
  (the object id ``oid``), plus the common ones.

Like Backstage, the ``x-ms-client-principal-*`` headers are not read: the ID token has
the same claims. Unlike Backstage, an ID token that does not decode, or is not version
2.0, is a 401 (``AuthenticationError``) rather than a 500, and so is a profile with no
id in the resolver.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Any

import jwt

from ..errors import AuthenticationError
from ..proxy import ProfileInfo
from ..proxy import ProviderModule
from ..proxy import ProxyAuthenticatorResult
from ..proxy import create_proxy_auth_provider_factory
from ..sign_in import profile_field_matching_user_entity_annotation

if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Self

    from webob import Request

    from ..proxy import Config
    from ..proxy import HttpClient

__all__ = [
    "ACCESS_TOKEN_HEADER",
    "ID_TOKEN_HEADER",
    "AzureEasyAuthAuthenticator",
    "AzureEasyAuthResult",
    "module",
    "validate_app_service_configuration",
]

ID_TOKEN_HEADER = "x-ms-token-aad-id-token"  # noqa: S105 (a header name)
ACCESS_TOKEN_HEADER = "x-ms-token-aad-access-token"  # noqa: S105 (a header name)
#: The only key of ``auth.providers.azureEasyAuth``.
USER_ID_ANNOTATION = "graph.microsoft.com/user-id"
NOT_ON_APP_SERVICE = (
    "{problem}. The azureEasyAuth provider trusts headers that only Azure App Service "
    "authentication (Easy Auth) sets: it runs only on App Service with authentication on, "
    "Entra ID as its provider and the token store enabled (WEBSITE_SKU set, "
    "WEBSITE_AUTH_ENABLED=true, WEBSITE_AUTH_DEFAULT_PROVIDER=AzureActiveDirectory, "
    "WEBSITE_AUTH_TOKEN_STORE=true)"
)


def validate_app_service_configuration(environ: Mapping[str, str]) -> str | None:
    """Why ``environ`` is not App Service with Easy Auth (Backstage's message), or None."""
    if environ.get("WEBSITE_SKU") is None:
        return "Backstage is not running on Azure App Services"
    if environ.get("WEBSITE_AUTH_ENABLED", "").lower() != "true":
        return "Azure App Services does not have authentication enabled"
    if environ.get("WEBSITE_AUTH_DEFAULT_PROVIDER", "").lower() != "azureactivedirectory":
        return "Authentication provider is not Entra ID"
    if environ.get("WEBSITE_AUTH_TOKEN_STORE", "").lower() != "true":
        return "Token Store is not enabled"
    return None


@dataclass(frozen=True, slots=True)
class AzureEasyAuthResult:
    """What Easy Auth passed (Backstage ``AzureEasyAuthResult``)."""

    #: The passport-shaped profile of the ID token (decoded, not verified).
    full_profile: dict[str, Any]
    #: ``x-ms-token-aad-access-token``, when App Service passes one.
    access_token: str | None = None


def _id_token_to_profile(id_token: str) -> dict[str, Any]:
    """Backstage's ``idTokenToProfile``: the claims of a v2.0 Entra ID token, as a profile."""
    try:
        # As Backstage's jose.decodeJwt: App Service checked the token, it is only parsed.
        claims = jwt.decode(id_token, options={"verify_signature": False})
    except jwt.PyJWTError as error:
        raise AuthenticationError(f"Authentication failed, malformed {ID_TOKEN_HEADER}") from error
    if claims.get("ver") != "2.0":
        raise AuthenticationError("id_token is not version 2.0")
    return {
        "id": claims.get("oid"),
        "displayName": claims.get("name"),
        "provider": "easyauth",
        "emails": [{"value": claims.get("email")}],
        "username": claims.get("preferred_username"),
    }


class AzureEasyAuthAuthenticator:
    """Backstage's ``azureEasyAuthAuthenticator``: the tokens App Service passes."""

    @classmethod
    def from_config(cls, config: Config, *, http: HttpClient) -> Self:
        """Refuse to start outside App Service; the config holds only ``signIn``."""
        problem = validate_app_service_configuration(os.environ)
        if problem is not None:
            raise config.error("", NOT_ON_APP_SERVICE.format(problem=problem))
        return cls()

    def authenticate(self, request: Request) -> ProxyAuthenticatorResult:
        """The ID token's profile; the access token for ``providerInfo``."""
        id_token = request.headers.get(ID_TOKEN_HEADER)
        if not id_token:
            raise AuthenticationError(f"Missing {ID_TOKEN_HEADER} header")
        access_token = request.headers.get(ACCESS_TOKEN_HEADER)
        result = AzureEasyAuthResult(
            full_profile=_id_token_to_profile(id_token), access_token=access_token
        )
        # Backstage's {accessToken: undefined} is serialized as {}.
        info = {"accessToken": access_token} if access_token is not None else {}
        return ProxyAuthenticatorResult(result=result, provider_info=info)

    def default_profile_transform(self, result: ProxyAuthenticatorResult) -> ProfileInfo:
        """Name and email of the ID token (Entra ID tokens carry no picture)."""
        profile = result.result.full_profile
        emails = profile.get("emails") or [{}]
        return ProfileInfo(email=emails[0].get("value"), display_name=profile.get("displayName"))


#: The built-in ``azureEasyAuth`` provider.
module = ProviderModule(
    provider_id="azureEasyAuth",
    factory=create_proxy_auth_provider_factory(AzureEasyAuthAuthenticator, config_keys=()),
    resolvers={
        "idMatchingUserEntityAnnotation": profile_field_matching_user_entity_annotation(
            "id", USER_ID_ANNOTATION, missing="User profile contained no id"
        )
    },
)
