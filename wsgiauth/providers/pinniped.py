"""The Pinniped provider (Backstage's ``pinniped`` module): a Pinniped Supervisor
FederationDomain as the OpenID Provider, and cluster-scoped ID tokens by RFC 8693.

Read against ``@backstage/plugin-auth-backend-module-pinniped-provider`` 0.3.18
(``src/authenticator.ts``, ``src/module.ts``, ``src/config.d.ts``) and the
``openid-client`` 5 ``Client``/``Strategy`` it drives:

- discovery at ``<federationDomain>/.well-known/openid-configuration``, cached an
  hour and fetched again after a failure (``PinnipedStrategyCache``), here through
  :class:`~wsgiauth.providers.oidc_tokens.OidcTokenVerifier`;
- authorization code with PKCE S256, no ``nonce`` and no ``prompt`` (openid-client
  sends none for a code flow); the callback's ``iss`` is checked as openid-client does;
- the client authenticates with HTTP Basic (openid-client's default), and the ID token
  must be signed ES256 (``id_token_signed_response_alg``);
- ``/start?audience=<cluster>`` keeps the audience in the OAuth ``state``; the callback
  then trades the access token at the token endpoint (RFC 8693:
  ``grant_type=urn:ietf:params:oauth:grant-type:token-exchange``, ``subject_token_type``
  access token, ``requested_token_type`` JWT) and hands the frontend that cluster-scoped
  JWT as ``providerInfo.idToken``; without an audience it is the Supervisor's ID token;
- required scopes ``openid pinniped:request-audience username offline_access``, not
  persisted; the profile is empty, as Backstage's (resolvers read the ID token).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from ..errors import AuthenticationError
from ..errors import HttpError
from ..errors import InputError
from ..oauth import ClientCredentials
from ..oauth import OAuthAuthenticatorResult
from ..oauth import OAuthStartResponse
from ..oauth import ProbeTarget
from ..oauth import ProfileInfo
from ..oauth import ProviderModule
from ..oauth import authorization_url
from ..oauth import callback_code
from ..oauth import check_response_issuer
from ..oauth import create_oauth_provider_factory
from ..oauth import decode_oauth_state
from ..oauth import encode_oauth_state
from ..oauth import read_absolute_url
from ..oauth import request_token
from ..oauth import session_from_token
from .oidc_tokens import OidcTokenVerifier

if TYPE_CHECKING:
    from typing import Self

    from webob import Request

    from ..oauth import Config
    from ..oauth import HttpClient
    from ..oauth import OAuthAuthenticateInput
    from ..oauth import OAuthRefreshInput
    from ..oauth import OAuthSession
    from ..oauth import OAuthStartInput

__all__ = ["PinnipedAuthenticator", "module"]

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"  # noqa: S105 - a URN
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"  # noqa: S105 - a URN
JWT_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:jwt"  # noqa: S105 - a URN
#: The longest ``audience`` kept in the state (a cluster's audience is a short name).
MAX_AUDIENCE_LENGTH = 256
#: What Backstage's pinniped authenticator returns as the full profile.
EMPTY_PROFILE = {"provider": "", "id": "", "displayName": ""}


def _audience_of(request: Request) -> str | None:
    """The ``audience`` in the callback's state (already decoded and checked by the core)."""
    return decode_oauth_state(request.GET.get("state", "")).get("audience") or None


class PinnipedAuthenticator:
    """Backstage's ``pinnipedAuthenticator``."""

    persist_scopes = False
    required_scopes: tuple[str, ...] = (
        "openid",
        "pinniped:request-audience",
        "username",
        "offline_access",
    )

    def __init__(
        self,
        *,
        credentials: ClientCredentials,
        callback_url: str,
        federation_domain: str,
        http: HttpClient,
    ) -> None:
        self.credentials = credentials
        self.callback_url = callback_url
        self.http = http
        #: Discovery, JWKS and ES256 ID-token checks for the FederationDomain.
        self.tokens = OidcTokenVerifier(
            metadata_url=f"{federation_domain.rstrip('/')}/.well-known/openid-configuration",
            http=http,
            client_id=credentials.client_id,
            algorithm="ES256",
        )

    @classmethod
    def from_config(cls, config: Config, *, callback_url: str, http: HttpClient) -> Self:
        """Build from ``auth.providers.pinniped.<env>``; nothing is fetched yet."""
        if config.has("scope"):
            raise config.error(
                "scope",
                'The pinniped provider no longer supports the "scope" configuration option. '
                'Please use the "additionalScopes" option instead.',
            )
        return cls(
            credentials=ClientCredentials(
                client_id=config.get_string("clientId"),
                client_secret=config.get_string("clientSecret"),
                auth_method="client_secret_basic",
            ),
            callback_url=callback_url,
            federation_domain=str(read_absolute_url(config, "federationDomain")),
            http=http,
        )

    def start(self, input: OAuthStartInput) -> OAuthStartResponse:  # noqa: A002 (protocol name)
        """Send the browser to the Supervisor; ``?audience=`` rides along in the state."""
        state = input.state
        audience = input.request.GET.get("audience")
        if audience:
            if len(audience) > MAX_AUDIENCE_LENGTH:
                raise InputError(
                    f"Query parameter 'audience' is too long, at most {MAX_AUDIENCE_LENGTH} "
                    "characters"
                )
            # As Backstage: encodeOAuthState({...decodeOAuthState(state), audience}).
            state = encode_oauth_state({**decode_oauth_state(state), "audience": audience})
        return OAuthStartResponse(
            authorization_url(
                self.tokens.metadata().authorization_endpoint,
                self.credentials.client_id,
                redirect_uri=self.callback_url,
                scope=input.scope,
                state=state,
                code_challenge=input.code_challenge,
            )
        )

    def authenticate(self, input: OAuthAuthenticateInput) -> OAuthAuthenticatorResult:  # noqa: A002
        """Trade the code, verify the ID token; exchange for the audience's token if asked."""
        failed = "Authentication failed"
        metadata = self.tokens.metadata()
        check_response_issuer(
            input.request,
            metadata.issuer,
            promised=metadata.authorization_response_iss_parameter_supported,
        )
        body = self.credentials.code_grant(
            callback_code(input.request),
            redirect_uri=self.callback_url,
            code_verifier=input.code_verifier,
        )
        token = request_token(
            self.http, metadata.token_endpoint, self.credentials, body, failed=failed
        )
        id_token = token.get("id_token")
        if not isinstance(id_token, str) or not id_token:
            raise AuthenticationError(f"{failed}, the token response has no ID token")
        self.tokens.verify_id_token(id_token, nonce=None)
        session = session_from_token(token)
        audience = _audience_of(input.request)
        if audience:
            session = dataclasses.replace(session, id_token=self._exchange(session, audience))
        return OAuthAuthenticatorResult(full_profile=dict(EMPTY_PROFILE), session=session)

    def _exchange(self, session: OAuthSession, audience: str) -> str:
        """RFC 8693: the access token traded for a JWT whose audience is the cluster."""
        body = urlencode(
            {
                "grant_type": TOKEN_EXCHANGE,
                "subject_token": session.access_token,
                "audience": audience,
                "subject_token_type": ACCESS_TOKEN_TYPE,
                "requested_token_type": JWT_TOKEN_TYPE,
            }
        )
        prefix = f'Failed to get cluster specific ID token for "{audience}"'
        try:
            token = request_token(
                self.http,
                self.tokens.metadata().token_endpoint,
                self.credentials,
                body,
                failed=f"{prefix}: RFC8693 token exchange failed",
            )
        except AuthenticationError:
            raise
        except HttpError as exc:
            raise type(exc)(f"{prefix}: {exc.message}") from exc
        return str(token["access_token"])

    def refresh(self, input: OAuthRefreshInput) -> OAuthAuthenticatorResult:  # noqa: A002
        """Trade the refresh token (no scope, as openid-client); no token exchange."""
        failed = "Refresh failed"
        body = self.credentials.refresh_grant(input.refresh_token)
        token = request_token(
            self.http, self.tokens.metadata().token_endpoint, self.credentials, body, failed=failed
        )
        if token.get("id_token"):
            self.tokens.verify_id_token(str(token["id_token"]), nonce=None, failed=failed)
        session = session_from_token(token, refresh_token=input.refresh_token)
        return OAuthAuthenticatorResult(full_profile=dict(EMPTY_PROFILE), session=session)

    def probe_targets(self) -> list[ProbeTarget]:
        """The FederationDomain's discovery (then its JWKS), for the diagnostics page."""
        return [ProbeTarget("discovery", self.tokens.metadata_url, "openid-discovery")]

    def default_profile_transform(self, result: OAuthAuthenticatorResult) -> ProfileInfo:
        """Empty, as Backstage's: a Pinniped sign-in carries its user in the ID token."""
        return ProfileInfo()


#: The built-in ``pinniped`` provider; the common resolvers only, as in Backstage.
module = ProviderModule(
    provider_id="pinniped",
    factory=create_oauth_provider_factory(
        PinnipedAuthenticator, config_keys=["clientId", "clientSecret", "federationDomain", "scope"]
    ),
)
