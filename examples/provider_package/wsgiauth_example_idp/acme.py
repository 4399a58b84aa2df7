"""Sign in with Acme ID, a (made-up) OAuth 2 identity provider, in the ``acme`` provider.

Acme ID serves the authorization-code grant (with PKCE) at ``<domain>/oauth2/authorize``
and ``<domain>/oauth2/token``, and the signed-in user at ``<domain>/api/v1/me`` as JSON:
``{"id", "login", "email", "name", "avatar_url"}``. Config, per environment, under
``auth.providers.acme.<env>``: ``clientId``, ``clientSecret`` and optionally ``domain``
(default :data:`DEFAULT_DOMAIN`); wsgiauth reads ``signIn``, ``additionalScopes``,
``callbackUrl`` and ``sessionDuration`` itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from typing import Any

from wsgiauth.errors import AuthenticationError
from wsgiauth.oauth import ClientCredentials
from wsgiauth.oauth import OAuthAuthenticatorResult
from wsgiauth.oauth import OAuthStartResponse
from wsgiauth.oauth import ProfileInfo
from wsgiauth.oauth import ProviderModule
from wsgiauth.oauth import authorization_url
from wsgiauth.oauth import callback_code
from wsgiauth.oauth import create_oauth_provider_factory
from wsgiauth.oauth import read_absolute_url
from wsgiauth.oauth import request_token
from wsgiauth.oauth import session_from_token
from wsgiauth.sign_in import create_sign_in_resolver_factory

if TYPE_CHECKING:
    from typing import Self

    from wsgiauth.oauth import Config
    from wsgiauth.oauth import HttpClient
    from wsgiauth.oauth import OAuthAuthenticateInput
    from wsgiauth.oauth import OAuthRefreshInput
    from wsgiauth.oauth import OAuthSession
    from wsgiauth.oauth import OAuthStartInput
    from wsgiauth.sign_in import AuthResolverContext
    from wsgiauth.sign_in import BackstageSignInResult
    from wsgiauth.sign_in import SignInInfo
    from wsgiauth.sign_in import SignInResolver

__all__ = ["DEFAULT_DOMAIN", "AcmeAuthenticator", "acme_login_matching_user_entity_name", "module"]

DEFAULT_DOMAIN = "https://id.acme.example"


class AcmeAuthenticator:
    """Authorization code with PKCE, refresh, and the profile from ``/api/v1/me``."""

    persist_scopes = True  # Acme ID does not echo the granted scope: remember it in a cookie
    required_scopes: tuple[str, ...] = ("profile", "email")

    def __init__(
        self, *, credentials: ClientCredentials, callback_url: str, domain: str, http: HttpClient
    ) -> None:
        self.credentials = credentials
        self.callback_url = callback_url
        self.domain = domain.rstrip("/")
        self.http = http

    @classmethod
    def from_config(cls, config: Config, *, callback_url: str, http: HttpClient) -> Self:
        """Build from ``auth.providers.acme.<env>``; a bad key is a ``ConfigError`` at startup."""
        return cls(
            credentials=ClientCredentials.from_config(config),
            callback_url=callback_url,
            domain=read_absolute_url(config, "domain", required=False) or DEFAULT_DOMAIN,
            http=http,
        )

    def start(self, input: OAuthStartInput) -> OAuthStartResponse:
        """Send the browser to Acme ID's authorization endpoint."""
        return OAuthStartResponse(
            authorization_url(
                f"{self.domain}/oauth2/authorize",
                self.credentials.client_id,
                redirect_uri=self.callback_url,
                scope=input.scope,
                state=input.state,
                code_challenge=input.code_challenge,
            )
        )

    def authenticate(self, input: OAuthAuthenticateInput) -> OAuthAuthenticatorResult:
        """Trade the callback's code (and the PKCE verifier) for tokens, then read the profile."""
        body = self.credentials.code_grant(
            callback_code(input.request),
            redirect_uri=self.callback_url,
            code_verifier=input.code_verifier,
        )
        return self._result(session_from_token(self._token(body, "Authentication failed")))

    def refresh(self, input: OAuthRefreshInput) -> OAuthAuthenticatorResult:
        """Trade the refresh token; Acme ID rotates it only sometimes, so keep the old one."""
        body = self.credentials.refresh_grant(input.refresh_token)
        token = self._token(body, "The refresh token was rejected")
        return self._result(session_from_token(token, refresh_token=input.refresh_token))

    def _token(self, body: str, failed: str) -> dict[str, Any]:
        url = f"{self.domain}/oauth2/token"
        return request_token(self.http, url, self.credentials, body, failed=failed)

    def _result(self, session: OAuthSession) -> OAuthAuthenticatorResult:
        headers = {"Authorization": f"Bearer {session.access_token}"}
        profile = self.http.get_json(f"{self.domain}/api/v1/me", headers=headers)
        return OAuthAuthenticatorResult(full_profile=profile, session=session)

    def default_profile_transform(self, result: OAuthAuthenticatorResult) -> ProfileInfo:
        """What the frontend shows: email, name and avatar."""
        profile = result.full_profile
        return ProfileInfo(
            email=profile.get("email"),
            display_name=profile.get("name"),
            picture=profile.get("avatar_url"),
        )


def _create_login_resolver(options: None) -> SignInResolver:
    def resolve(info: SignInInfo, context: AuthResolverContext) -> BackstageSignInResult:
        login = info.result.full_profile.get("login")
        if not isinstance(login, str) or not login:
            raise AuthenticationError("Login failed, the Acme ID profile has no login")
        # No such user raises NotFoundError: the next resolver in signIn.resolvers is tried.
        return context.sign_in_with_catalog_user({"entityRef": {"name": login}})

    return resolve


#: ``acmeLoginMatchingUserEntityName``: the User named like the Acme ID ``login``.
acme_login_matching_user_entity_name = create_sign_in_resolver_factory(_create_login_resolver)

#: The ``acme`` provider, registered under the ``wsgiauth.providers`` entry point group.
module = ProviderModule(
    provider_id="acme",
    factory=create_oauth_provider_factory(AcmeAuthenticator),
    resolvers={"acmeLoginMatchingUserEntityName": acme_login_matching_user_entity_name},
)
