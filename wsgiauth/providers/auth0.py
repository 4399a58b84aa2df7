"""Auth0 sign-in (Backstage's ``auth0`` module).

Read against ``@backstage/plugin-auth-backend-module-auth0-provider`` 0.4.5,
``dist/authenticator.cjs.js`` (``createAuth0Authenticator``) and ``dist/strategy.cjs.js``
(``Auth0Strategy``), and the passport strategy it wraps, ``passport-auth0`` 1.4.5
``lib/index.js``, ``lib/Profile.js``, ``lib/verifyWrapper.js`` and ``lib/jwt.js``:

- config ``clientId``, ``clientSecret``, ``domain`` (a host name: every endpoint is
  ``https://<domain>/...``), ``audience``, ``connection``, ``connectionScope``,
  ``prompt`` (default ``consent``; ``auto`` sends none), ``organization``,
  ``federatedLogout``;
- ``/authorize`` with ``audience``, ``connection`` (and ``connection_scope`` only with it),
  ``prompt``, ``organization`` and a ``nonce``; ``organization``, ``invitation``,
  ``screen_hint`` and ``login_hint`` on ``/start`` are passed on, and an ``organization``
  other than the configured one is refused;
- ``/oauth/token`` with the client credentials in the form, ``/userinfo`` as the profile;
- no required scopes, granted scopes not persisted (``providerInfo.scope`` is Auth0's);
- an ID token (scope ``openid``) is checked as passport-auth0 does: ``RS256``/``HS256``,
  ``iss`` ``https://<domain>/``, ``aud``, ``azp``, ``exp``, ``iat`` and the ``nonce``,
  not the signature (it comes straight from the token endpoint over TLS);
- logout answers ``https://<domain>/v2/logout`` (``federated``, ``client_id``, ``returnTo``);
- the common resolvers only.

Unlike Backstage, no server session is needed (``auth.session.secret``): the ``nonce`` is
derived from the flow's own nonce. PKCE S256 is sent, the ``accessType=offline`` that
passport-auth0 copies into the URL is not (it means nothing to Auth0), userinfo is read
with the ``Authorization`` header, and refresh reads userinfo again instead of keeping
it in Backstage's one-minute profile cache.
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING
from typing import Any
from urllib.parse import urlencode

import jwt

from ..errors import AuthenticationError
from ..errors import InputError
from ..oauth import ClientCredentials
from ..oauth import OAuthAuthenticatorResult
from ..oauth import OAuthEndpointAuthenticator
from ..oauth import OAuthLogoutResult
from ..oauth import ProviderModule
from ..oauth import create_oauth_provider_factory
from .oidc_tokens import derive_id_token_nonce

if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Self

    from ..oauth import Config
    from ..oauth import HttpClient
    from ..oauth import OAuthAuthenticateInput
    from ..oauth import OAuthLogoutInput
    from ..oauth import OAuthSession
    from ..oauth import OAuthStartInput

__all__ = ["Auth0Authenticator", "auth0_profile", "module"]

#: ``/start`` query parameters Backstage's ``Auth0Strategy`` passes on to ``/authorize``.
START_PARAMETERS = ("organization", "invitation", "screen_hint", "login_hint")
#: The longest value of each of them (an organization id, an invitation ticket, an email).
MAX_START_PARAMETER_LENGTH = 256
ORGANIZATION_MISMATCH = (
    "Organization mismatch. The organization provided in the request does not match "
    "the organization configured in the strategy."
)


def auth0_profile(data: Mapping[str, Any]) -> dict[str, Any]:
    """The passport profile of a userinfo answer (passport-auth0 ``Profile``)."""
    profile: dict[str, Any] = {"displayName": data.get("name")}
    profile["id"] = profile["user_id"] = data.get("user_id") or data.get("sub")
    identities = data.get("identities")
    if isinstance(identities, list) and identities and isinstance(identities[0], dict):
        profile["provider"] = identities[0].get("provider")
    elif isinstance(profile["id"], str) and "|" in profile["id"]:
        profile["provider"] = profile["id"].split("|")[0]
    profile["name"] = {"familyName": data.get("family_name"), "givenName": data.get("given_name")}
    if isinstance(data.get("emails"), list):
        profile["emails"] = [{"value": email} for email in data["emails"]]
    elif data.get("email"):
        profile["emails"] = [{"value": data["email"]}]
    for key in ("picture", "locale", "nickname", "gender", "identities"):
        if key in data:
            profile[key] = data[key]
    profile["_json"] = dict(data)
    return profile


class Auth0Authenticator(OAuthEndpointAuthenticator):
    """Backstage's ``auth0Authenticator``: one Auth0 tenant (or custom domain)."""

    def __init__(
        self,
        *,
        credentials: ClientCredentials,
        callback_url: str,
        domain: str,
        http: HttpClient,
        audience: str | None = None,
        connection: str | None = None,
        connection_scope: str | None = None,
        prompt: str | None = "consent",
        organization: str | None = None,
        federated_logout: bool = False,
    ) -> None:
        super().__init__(credentials=credentials, callback_url=callback_url, http=http)
        self.domain = domain
        self.authorize_url = f"https://{domain}/authorize"
        self.token_url = f"https://{domain}/oauth/token"
        self.audience = audience
        self.connection = connection
        self.connection_scope = connection_scope
        self.prompt = prompt
        self.organization = organization
        self.federated_logout = federated_logout

    @classmethod
    def from_config(cls, config: Config, *, callback_url: str, http: HttpClient) -> Self:
        """Build from ``auth.providers.auth0.<env>``; every bad key fails here, at startup."""
        domain = config.get_string("domain")
        if not domain or "/" in domain:  # Backstage builds https://<domain>/...
            raise config.error(
                "domain", f"expected a host name such as tenant.eu.auth0.com, got {domain!r}"
            )
        prompt = config.get_optional_string("prompt") or "consent"
        return cls(
            # passport-oauth2 sends the client credentials in the token request's form.
            credentials=ClientCredentials.from_config(config, auth_method="client_secret_post"),
            callback_url=callback_url,
            domain=domain,
            http=http,
            audience=config.get_optional_string("audience"),
            connection=config.get_optional_string("connection"),
            connection_scope=config.get_optional_string("connectionScope"),
            prompt=None if prompt == "auto" else prompt,
            organization=config.get_optional_string("organization"),
            federated_logout=bool(config.get_optional_bool("federatedLogout")),
        )

    @property
    def issuer(self) -> str:
        """The ID tokens' ``iss`` (passport-auth0's ``expectedIssuer``)."""
        return f"https://{self.domain}/"

    def authorize_params(self, input: OAuthStartInput) -> Mapping[str, str | None]:  # noqa: A002
        """The configured and the requested parameters, and the ID token's ``nonce``."""
        query = input.request.GET
        extra = {name: query.get(name) or None for name in START_PARAMETERS}
        for name, value in extra.items():
            # They reach the Location header: bounded, as the core's own parameters are.
            if value is not None and len(value) > MAX_START_PARAMETER_LENGTH:
                raise InputError(
                    f"Query parameter '{name}' is too long, "
                    f"at most {MAX_START_PARAMETER_LENGTH} characters"
                )
        if (
            extra["organization"]
            and self.organization
            and extra["organization"] != self.organization
        ):
            raise InputError(ORGANIZATION_MISMATCH)
        return {
            "connection": self.connection,
            "connection_scope": self.connection_scope if self.connection else None,
            "audience": self.audience,
            "prompt": self.prompt,
            "organization": extra["organization"] or self.organization,
            "invitation": extra["invitation"],
            "screen_hint": extra["screen_hint"],
            "login_hint": extra["login_hint"],
            "nonce": derive_id_token_nonce(input.nonce),
        }

    def authenticate(self, input: OAuthAuthenticateInput) -> OAuthAuthenticatorResult:  # noqa: A002
        """Trade the code, check the ID token (if any) and read userinfo."""
        session = self.trade_code(input)
        if session.id_token:
            self.check_id_token(session.id_token, nonce=derive_id_token_nonce(input.nonce))
        return OAuthAuthenticatorResult(full_profile=self.fetch_profile(session), session=session)

    def logout(self, input: OAuthLogoutInput) -> OAuthLogoutResult:  # noqa: A002
        """Auth0's logout URL, returning to the app's origin."""
        params = [("federated", "")] if self.federated_logout else []
        params.append(("client_id", self.credentials.client_id))
        origin = input.request.headers.get("Origin")
        if origin:
            params.append(("returnTo", origin))
        return OAuthLogoutResult(logout_url=f"https://{self.domain}/v2/logout?{urlencode(params)}")

    def check_id_token(self, id_token: str, *, nonce: str) -> dict[str, Any]:
        """passport-auth0's ID-token checks (``lib/jwt.js``); the claims."""

        def invalid(reason: object) -> AuthenticationError:
            return AuthenticationError(f"Authentication failed, invalid ID token: {reason}")

        try:
            if jwt.get_unverified_header(id_token).get("alg") not in ("RS256", "HS256"):
                raise invalid("the algorithm is not RS256 or HS256")
            claims: dict[str, Any] = jwt.decode(
                id_token,
                options={
                    "verify_signature": False,  # from the token endpoint, over TLS
                    "verify_exp": True,
                    "verify_aud": True,
                    "verify_iss": True,
                    "require": ["iss", "sub", "aud", "exp", "iat"],
                },
                audience=self.credentials.client_id,
                issuer=self.issuer,
                leeway=60,
            )
        except jwt.PyJWTError as error:
            raise invalid(error) from error
        audience = claims["aud"]
        if isinstance(audience, list) and len(audience) > 1:
            if claims.get("azp") != self.credentials.client_id:
                raise invalid("the authorized party (azp) is not this client")
        claim = claims.get("nonce")
        if not isinstance(claim, str) or not hmac.compare_digest(claim, nonce):
            raise invalid("the nonce does not match this sign-in")
        return claims

    def fetch_profile(self, session: OAuthSession) -> dict[str, Any]:
        """The passport profile of ``/userinfo``, read at sign-in and at every refresh."""
        userinfo = self.http.get_json(
            f"https://{self.domain}/userinfo",
            headers={"Authorization": f"Bearer {session.access_token}"},
        )
        return auth0_profile(userinfo)


#: The built-in ``auth0`` provider.
module = ProviderModule(
    provider_id="auth0",
    factory=create_oauth_provider_factory(
        Auth0Authenticator,
        config_keys=[
            "clientId",
            "clientSecret",
            "domain",
            "audience",
            "connection",
            "connectionScope",
            "prompt",
            "organization",
            "federatedLogout",
        ],
    ),
)
