"""The OpenShift provider (Backstage's ``openshift`` module): the cluster's OAuth server.

Read against ``@backstage/plugin-auth-backend-module-openshift-provider`` 0.1.11
(``src/authenticator.ts``, ``src/resolvers.ts``, ``src/module.ts``, ``config.d.ts``),
a plain ``passport-oauth2`` strategy with its own ``userProfile``:

- the browser goes to ``authorizationUrl`` (no PKCE, no extra parameters); the code
  is traded at ``tokenUrl``, client id and secret in the form;
- the user is ``GET <openshiftApiServerUrl>/apis/user.openshift.io/v1/users/~``, and
  the profile is just ``displayName`` = its ``metadata.name``;
- required scope ``user:full``; granted scopes are not persisted;
- OpenShift issues no refresh token, so the access token is kept as the refresh
  token: ``/refresh`` checks it against the user API and hands it back unchanged;
- logout deletes the token on the API server
  (``/apis/oauth.openshift.io/v1/oauthaccesstokens/sha256~<name>``).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
from typing import TYPE_CHECKING
from typing import Any

from ..errors import AuthenticationError
from ..errors import NotFoundError
from ..errors import ServiceUnavailableError
from ..oauth import ClientCredentials
from ..oauth import OAuthAuthenticatorResult
from ..oauth import OAuthEndpointAuthenticator
from ..oauth import OAuthSession
from ..oauth import ProfileInfo
from ..oauth import ProviderModule
from ..oauth import create_oauth_provider_factory
from ..oauth import read_absolute_url
from ..sign_in import boolean
from ..sign_in import create_sign_in_resolver_factory
from ..sign_in import handle_sign_in_user_not_found
from ..sign_in import options_schema

if TYPE_CHECKING:
    from typing import Self

    from ..oauth import Config
    from ..oauth import HttpClient
    from ..oauth import OAuthAuthenticateInput
    from ..oauth import OAuthLogoutInput
    from ..oauth import OAuthLogoutResult
    from ..oauth import OAuthRefreshInput
    from ..sign_in import AuthResolverContext
    from ..sign_in import BackstageSignInResult
    from ..sign_in import SignInInfo
    from ..sign_in import SignInResolver

__all__ = ["OpenShiftAuthenticator", "access_token_name", "module"]

USER_PATH = "/apis/user.openshift.io/v1/users/~"
ACCESS_TOKENS_PATH = "/apis/oauth.openshift.io/v1/oauthaccesstokens/"


def access_token_name(access_token: str) -> str:
    """The ``OAuthAccessToken`` object's name: ``sha256~`` + base64url(SHA-256(token body))."""
    digest = hashlib.sha256(access_token[len("sha256~") :].encode()).digest()
    return "sha256~" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class OpenShiftAuthenticator(OAuthEndpointAuthenticator):
    """Backstage's ``openshiftAuthenticator``."""

    required_scopes: tuple[str, ...] = ("user:full",)
    pkce = False  # a plain passport-oauth2 strategy

    def __init__(
        self,
        *,
        credentials: ClientCredentials,
        callback_url: str,
        authorization_url: str,
        token_url: str,
        api_server_url: str,
        http: HttpClient,
    ) -> None:
        super().__init__(credentials=credentials, callback_url=callback_url, http=http)
        self.authorize_url = authorization_url
        self.token_url = token_url
        self.api_server_url = api_server_url.rstrip("/")

    @classmethod
    def from_config(cls, config: Config, *, callback_url: str, http: HttpClient) -> Self:
        """Build from ``auth.providers.openshift.<env>``; all five keys are required."""
        return cls(
            credentials=ClientCredentials(
                client_id=config.get_string("clientId"),
                client_secret=config.get_string("clientSecret"),
                auth_method="client_secret_post",
            ),
            callback_url=callback_url,
            authorization_url=str(read_absolute_url(config, "authorizationUrl")),
            token_url=str(read_absolute_url(config, "tokenUrl")),
            api_server_url=str(read_absolute_url(config, "openshiftApiServerUrl")),
            http=http,
        )

    def authenticate(self, input: OAuthAuthenticateInput) -> OAuthAuthenticatorResult:  # noqa: A002
        """Trade the code, read the user; the access token doubles as the refresh token."""
        session = self.trade_code(input)
        session = dataclasses.replace(
            session,
            refresh_token=session.access_token,
            refresh_token_expires_in_seconds=session.expires_in_seconds,
        )
        return OAuthAuthenticatorResult(full_profile=self.fetch_profile(session), session=session)

    def refresh(self, input: OAuthRefreshInput) -> OAuthAuthenticatorResult:  # noqa: A002
        """The kept access token, if the API server still takes it."""
        session = OAuthSession(
            access_token=input.refresh_token,
            token_type="bearer",  # noqa: S106 - a token type, not a secret
            scope=input.scope,
            refresh_token=input.refresh_token,
        )
        return OAuthAuthenticatorResult(full_profile=self.fetch_profile(session), session=session)

    def logout(self, input: OAuthLogoutInput) -> OAuthLogoutResult | None:  # noqa: A002
        """Delete the access token on the API server, unless it is already invalid."""
        access_token = input.refresh_token
        if not access_token:
            return None  # no session cookie: nothing to delete (Backstage throws here)
        try:
            self.fetch_profile(OAuthSession(access_token=access_token))
        except (AuthenticationError, ServiceUnavailableError):
            return None
        url = f"{self.api_server_url}{ACCESS_TOKENS_PATH}{access_token_name(access_token)}"
        response = self.http.request(
            "DELETE", url, headers={"Authorization": f"Bearer {access_token}"}
        )
        if response.status == 401:
            raise AuthenticationError("unauthorized")
        return None

    def fetch_profile(self, session: OAuthSession) -> dict[str, Any]:
        """``{"displayName": metadata.name}`` of the token's user (Backstage's ``userProfile``)."""
        response = self.http.request(
            "GET",
            self.api_server_url + USER_PATH,
            headers={
                "Authorization": f"Bearer {session.access_token}",
                "Accept": "application/json",
            },
        )
        if response.status == 401:
            raise AuthenticationError("Invalid access token")
        if not response.ok:
            raise ServiceUnavailableError(f"OpenShift user API answered {response.status}")
        user = response.json()
        metadata = user.get("metadata") if isinstance(user, dict) else None
        name = metadata.get("name") if isinstance(metadata, dict) else None
        if not isinstance(name, str):
            raise ServiceUnavailableError("OpenShift user API returned a user without a name")
        return {"displayName": name}

    def default_profile_transform(self, result: OAuthAuthenticatorResult) -> ProfileInfo:
        """The display name only: OpenShift's user has no email or picture."""
        name = result.full_profile.get("displayName")
        return ProfileInfo(display_name=name if isinstance(name, str) and name else None)


DANGEROUS = "dangerouslyAllowSignInWithoutUserInCatalog"


def _create_display_name_matching_user_entity_name(options: dict[str, Any]) -> SignInResolver:
    dangerous = options.get(DANGEROUS, False)

    def resolve(info: SignInInfo, context: AuthResolverContext) -> BackstageSignInResult:
        display_name = info.profile.display_name
        if not display_name:
            raise AuthenticationError("OpenShift user profile does not contain a displayName")
        try:
            return context.sign_in_with_catalog_user({"entityRef": f"user:default/{display_name}"})
        except NotFoundError as error:
            return handle_sign_in_user_not_found(
                context,
                error,
                user_entity_name=display_name,
                dangerously_allow_sign_in_without_user_in_catalog=dangerous,
            )

    return resolve


#: ``openshiftSignInResolvers.displayNameMatchingUserEntityName``: the User in namespace
#: ``default`` named like the profile's display name (the OpenShift user name).
display_name_matching_user_entity_name = create_sign_in_resolver_factory(
    _create_display_name_matching_user_entity_name,
    options_schema=options_schema({DANGEROUS: boolean}),
)

#: The built-in ``openshift`` provider.
module = ProviderModule(
    provider_id="openshift",
    factory=create_oauth_provider_factory(
        OpenShiftAuthenticator,
        config_keys=[
            "clientId",
            "clientSecret",
            "authorizationUrl",
            "tokenUrl",
            "openshiftApiServerUrl",
        ],
    ),
    resolvers={"displayNameMatchingUserEntityName": display_name_matching_user_entity_name},
)
