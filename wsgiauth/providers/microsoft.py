"""Microsoft Entra ID sign-in (Backstage's ``microsoft`` module).

Read against ``@backstage/plugin-auth-backend-module-microsoft-provider`` 0.3.19,
``dist/authenticator.cjs.js`` (``microsoftAuthenticator``), ``dist/strategy.cjs.js``
(``ExtendedMicrosoftStrategy``) and ``dist/resolvers.cjs.js``
(``microsoftSignInResolvers``), and ``passport-microsoft`` 1.1.0 ``lib/strategy.js``:

- config ``clientId``, ``clientSecret``, ``tenantId`` (required), ``domainHint``,
  ``skipUserProfile`` (plus the common keys, ``additionalScopes`` among them);
- the v2.0 endpoints of ``login.microsoftonline.com/<tenantId>``, the client
  credentials in the token request's form; ``domain_hint`` when configured;
- required scopes ``email openid offline_access user.read``, not persisted; a request
  for another resource's scope (one containing ``/``, e.g. ``api://x/.default``) asks
  for exactly the requested scopes plus ``offline_access`` (Backstage's scope transform);
- the profile from Graph ``/v1.0/me/`` and the photo from ``/v1.0/me/photos/96x96/$value``
  as a ``data:image/jpeg;base64,`` URL, read only with a Graph token holding
  ``User.Read`` (or when the access token is not a readable JWT); when the token is
  for another resource, the refresh token is traded once more for a Graph token
  (``openid email User.Read offline_access``) to read the profile
  (``withProfileFetchedViaGraph``), unless ``skipUserProfile``;
- resolvers ``emailMatchingUserEntityAnnotation`` (``microsoft.com/email``) and
  ``userIdMatchingUserEntityAnnotation`` (``graph.microsoft.com/user-id``).

The public authenticator protocol has no scope-transform hook, so the transform reads
the requested scopes from the ``/start`` or ``/refresh`` request itself. Unlike
Backstage, PKCE S256 is sent, and a photo request that Graph refuses (no photo: 404)
gives no picture instead of a data URL of the error body.
"""

from __future__ import annotations

import base64
import dataclasses
import re
from typing import TYPE_CHECKING
from typing import Any
from urllib.parse import quote

import jwt

from ..errors import AuthenticationError
from ..errors import HttpError
from ..errors import NotFoundError
from ..oauth import ClientCredentials
from ..oauth import OAuthAuthenticatorResult
from ..oauth import OAuthEndpointAuthenticator
from ..oauth import ProviderModule
from ..oauth import create_oauth_provider_factory
from ..sign_in import boolean
from ..sign_in import create_sign_in_resolver_factory
from ..sign_in import email_matching_user_entity_annotation
from ..sign_in import handle_sign_in_user_not_found
from ..sign_in import options_schema

if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Self

    from webob import Request

    from ..oauth import Config
    from ..oauth import HttpClient
    from ..oauth import OAuthAuthenticateInput
    from ..oauth import OAuthRefreshInput
    from ..oauth import OAuthSession
    from ..oauth import OAuthStartInput
    from ..sign_in import AuthResolverContext
    from ..sign_in import BackstageSignInResult
    from ..sign_in import SignInInfo
    from ..sign_in import SignInResolver

__all__ = ["MicrosoftAuthenticator", "module"]

LOGIN = "https://login.microsoftonline.com"
GRAPH = "https://graph.microsoft.com"
#: What Backstage asks for when it must fetch the profile with another token.
GRAPH_PROFILE_SCOPE = "openid email User.Read offline_access"
#: The ``aud`` of access tokens for Microsoft Graph.
GRAPH_AUDIENCE = "00000003-0000-0000-c000-000000000000"
GRAPH_READ_SCOPES = frozenset(
    {
        "https://graph.microsoft.com/user.read",
        "https://graph.microsoft.com/user.read.all",
        "user.read",
        "user.read.all",
    }
)


def _microsoft_profile(json: Mapping[str, Any]) -> dict[str, Any]:
    """The passport profile of Graph's ``/me`` (passport-microsoft ``userProfile``)."""
    return {
        "provider": "microsoft",
        "id": json.get("id"),
        "displayName": json.get("displayName"),
        "name": {"familyName": json.get("surname"), "givenName": json.get("givenName")},
        "emails": [{"type": "work", "value": json.get("mail") or json.get("userPrincipalName")}],
        "_json": dict(json),
    }


def _has_graph_read_scope(access_token: str) -> bool:
    """Whether the token is for Graph with ``User.Read`` (``hasGraphReadScope``).

    :raises jwt.InvalidTokenError: not a readable JWT.
    :raises AttributeError: a ``scp`` that is not a string.
    """
    claims = jwt.decode(access_token, options={"verify_signature": False})
    scp = claims.get("scp")
    if claims.get("aud") != GRAPH_AUDIENCE or not scp:
        return False
    return any(scope.lower() in GRAPH_READ_SCOPES for scope in scp.split(" "))


class MicrosoftAuthenticator(OAuthEndpointAuthenticator):
    """Backstage's ``microsoftAuthenticator``: Entra ID v2.0 endpoints and Microsoft Graph."""

    required_scopes: tuple[str, ...] = ("email", "openid", "offline_access", "user.read")

    def __init__(
        self,
        *,
        credentials: ClientCredentials,
        callback_url: str,
        http: HttpClient,
        tenant_id: str,
        domain_hint: str | None = None,
        skip_user_profile: bool = False,
    ) -> None:
        super().__init__(credentials=credentials, callback_url=callback_url, http=http)
        self.authorize_url = f"{LOGIN}/{quote(tenant_id, safe='')}/oauth2/v2.0/authorize"
        self.token_url = f"{LOGIN}/{quote(tenant_id, safe='')}/oauth2/v2.0/token"
        self.domain_hint = domain_hint
        self.skip_user_profile = skip_user_profile

    @classmethod
    def from_config(cls, config: Config, *, callback_url: str, http: HttpClient) -> Self:
        """Build from ``auth.providers.microsoft.<env>``."""
        # The passport strategy puts the client credentials in the token request's form.
        credentials = ClientCredentials.from_config(config, auth_method="client_secret_post")
        return cls(
            credentials=credentials,
            callback_url=callback_url,
            http=http,
            tenant_id=config.get_string("tenantId"),
            domain_hint=config.get_optional_string("domainHint"),
            skip_user_profile=bool(config.get_optional_bool("skipUserProfile")),
        )

    @staticmethod
    def _scope(request: Request, scope: str) -> str:
        """Backstage's scope transform: a scope for another resource is asked for alone.

        Entra ID issues a token for one resource at a time, so ``api://x/.default``
        (requested by the frontend) goes with ``offline_access`` only, not with the
        Graph scopes that are otherwise required and configured.
        """
        requested = [s for s in re.split(r"[\s|,]", request.GET.get("scope") or "") if s]
        if any("/" in s for s in requested):
            return " ".join(dict.fromkeys([*requested, "offline_access"]))
        return scope

    def authorize_params(self, input: OAuthStartInput) -> Mapping[str, str | None]:  # noqa: A002
        """``domain_hint`` when configured, and the scope for the requested resource."""
        return {"domain_hint": self.domain_hint, "scope": self._scope(input.request, input.scope)}

    def refresh_scope(self, input: OAuthRefreshInput) -> str | None:  # noqa: A002
        """The scope for the requested resource (maybe not Graph)."""
        return self._scope(input.request, input.scope) or None

    def authenticate(self, input: OAuthAuthenticateInput) -> OAuthAuthenticatorResult:  # noqa: A002
        """Trade the code for tokens and read the profile from Graph."""
        return self._with_profile_fetched_via_graph(super().authenticate(input), None)

    def refresh(self, input: OAuthRefreshInput) -> OAuthAuthenticatorResult:  # noqa: A002
        """Trade the refresh token for the scope asked (maybe another resource's)."""
        return self._with_profile_fetched_via_graph(super().refresh(input), input.refresh_token)

    def _with_profile_fetched_via_graph(
        self, result: OAuthAuthenticatorResult, refresh_token: str | None
    ) -> OAuthAuthenticatorResult:
        """A token for another resource cannot read Graph: get a Graph token for the profile.

        The session (access token and scope) stays the one asked for; only a rotated
        refresh token is taken from the extra exchange.
        """
        refresh_token = result.session.refresh_token or refresh_token
        if result.full_profile or self.skip_user_profile or not refresh_token:
            return result
        graph = self.trade_refresh_token(refresh_token, scope=GRAPH_PROFILE_SCOPE)
        session = dataclasses.replace(
            result.session, refresh_token=graph.refresh_token or refresh_token
        )
        return OAuthAuthenticatorResult(full_profile=self.fetch_profile(graph), session=session)

    def _skip_profile(self, access_token: str) -> bool:
        if self.skip_user_profile:
            return True
        try:
            return not _has_graph_read_scope(access_token)
        except (jwt.InvalidTokenError, AttributeError):
            return False  # not a token we can read: try Graph anyway, as Backstage

    def fetch_profile(self, session: OAuthSession) -> dict[str, Any]:
        """Graph's ``/me`` as a passport profile, with the photo; empty when skipped."""
        if self._skip_profile(session.access_token):
            return {}
        headers = {"Authorization": f"Bearer {session.access_token}"}
        profile = _microsoft_profile(self.http.get_json(f"{GRAPH}/v1.0/me/", headers=headers))
        photo = self._photo(headers, "96x96")
        if photo:
            profile["photos"] = [{"value": photo}]
        return profile

    def _photo(self, headers: Mapping[str, str], size: str) -> str | None:
        """The user's photo as a data URL (``getCurrentUserPhoto``); None if there is none."""
        try:
            response = self.http.request(
                "GET", f"{GRAPH}/v1.0/me/photos/{size}/$value", headers=headers
            )
        except HttpError:
            return None
        if not response.ok:
            return None
        return f"data:image/jpeg;base64,{base64.b64encode(response.body).decode('ascii')}"


_DANGEROUS = "dangerouslyAllowSignInWithoutUserInCatalog"


def _create_user_id_resolver(options: dict[str, Any]) -> SignInResolver:
    dangerous = options.get(_DANGEROUS, False)

    def resolve(info: SignInInfo, context: AuthResolverContext) -> BackstageSignInResult:
        user_id = getattr(info.result, "full_profile", {}).get("id")
        if not isinstance(user_id, str) or not user_id:
            raise AuthenticationError("Microsoft profile contained no id")
        try:
            return context.sign_in_with_catalog_user(
                {"annotations": {"graph.microsoft.com/user-id": user_id}}
            )
        except NotFoundError as error:
            return handle_sign_in_user_not_found(
                context,
                error,
                user_entity_name=user_id,
                dangerously_allow_sign_in_without_user_in_catalog=dangerous,
            )

    return resolve


#: The User whose ``graph.microsoft.com/user-id`` annotation is the Graph user's id.
user_id_matching_user_entity_annotation = create_sign_in_resolver_factory(
    _create_user_id_resolver, options_schema=options_schema({_DANGEROUS: boolean})
)

#: The built-in ``microsoft`` provider.
module = ProviderModule(
    provider_id="microsoft",
    factory=create_oauth_provider_factory(
        MicrosoftAuthenticator,
        config_keys=("clientId", "clientSecret", "tenantId", "domainHint", "skipUserProfile"),
    ),
    resolvers={
        "emailMatchingUserEntityAnnotation": email_matching_user_entity_annotation(
            "microsoft.com/email"
        ),
        "userIdMatchingUserEntityAnnotation": user_id_matching_user_entity_annotation,
    },
)
