"""The OpenID Connect provider (Backstage's ``oidc`` module), on oauthlib and PyJWT.

:class:`OidcAuthenticator` signs users in with any OpenID Provider that
publishes a discovery document (``metadataUrl``): authorization code with
PKCE S256, the code traded at the token endpoint, the ID token verified
against the provider's JWKS, and the userinfo claims merged in. Refresh and
logout (RFC 7009 revocation, optionally the provider's end-session URL)
follow Backstage's ``oidc`` authenticator.

Where Backstage leans on ``openid-client``, the checks are spelled out here
and each carries a comment saying what it stops: only the configured
asymmetric algorithm is accepted, issuer, audience, ``azp``, expiry and
``nonce`` are checked, and an unknown key id refetches the JWKS at most once
every 30 seconds. The ID-token ``nonce`` is derived from the flow nonce, so
no server-side state is kept between ``start`` and the callback.

Discovery and JWKS documents are fetched lazily, on the first login, and
cached for an hour; a failed fetch is not cached and answers 503.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import threading
import time
from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Any
from urllib.parse import urlsplit

import jwt
from oauthlib.common import add_params_to_uri
from oauthlib.oauth2 import WebApplicationClient

from ..errors import AuthenticationError
from ..errors import HttpError
from ..errors import ServiceUnavailableError
from ..oauth.client import ClientCredentials
from ..oauth.client import authorization_url
from ..oauth.client import callback_code
from ..oauth.client import read_absolute_url
from ..oauth.client import request_token
from ..oauth.client import session_from_token
from ..oauth.provider_factory import create_oauth_provider_factory
from ..oauth.types import OAuthAuthenticatorResult
from ..oauth.types import OAuthLogoutResult
from ..oauth.types import OAuthStartResponse
from ..registry import ProviderModule
from ..types import ProfileInfo

if TYPE_CHECKING:
    from typing import Self

    from .._http import HttpClient
    from ..config import Config
    from ..oauth.types import OAuthAuthenticateInput
    from ..oauth.types import OAuthLogoutInput
    from ..oauth.types import OAuthRefreshInput
    from ..oauth.types import OAuthStartInput

__all__ = ["OidcAuthenticator", "OidcMetadata", "derive_id_token_nonce", "module"]

log = logging.getLogger(__name__)

#: How long discovery and JWKS documents are trusted before they are fetched again.
METADATA_TTL_SECONDS = 3600.0
#: The least time between two JWKS fetches caused by an unknown ``kid``.
JWKS_REFETCH_INTERVAL_SECONDS = 30.0
#: Signature algorithms an ID token may use: asymmetric only, verified with the JWKS.
ID_TOKEN_ALGORITHMS = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
)
_REQUIRED_CLAIMS = ["iss", "sub", "aud", "exp", "iat"]


def derive_id_token_nonce(flow_nonce: str) -> str:
    """The ID-token ``nonce`` for a flow: unpadded base64url of SHA-256 of the flow nonce.

    Deriving it (instead of storing a random one, as Backstage does) keeps the flow
    stateless: the callback recomputes it from the nonce in the verified ``state``.
    Only the hash travels through the IdP, never the flow nonce itself.
    """
    digest = hashlib.sha256(flow_nonce.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass(frozen=True, slots=True)
class OidcMetadata:
    """The parts of a discovery document (OpenID Connect Discovery §3) this provider uses."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None = None
    revocation_endpoint: str | None = None
    end_session_endpoint: str | None = None

    @classmethod
    def from_document(cls, document: Mapping[str, Any], url: str) -> OidcMetadata:
        """Check and read a discovery document; ``ServiceUnavailableError`` if it is unusable."""
        values: dict[str, str | None] = {}
        for name in (
            "issuer",
            "authorization_endpoint",
            "token_endpoint",
            "jwks_uri",
            "userinfo_endpoint",
            "revocation_endpoint",
            "end_session_endpoint",
        ):
            value = document.get(name)
            required = name in ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri")
            if value is None and not required:
                values[name] = None
                continue
            parts = urlsplit(value) if isinstance(value, str) else None
            if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
                problem = "has no" if value is None else "has an invalid"
                raise ServiceUnavailableError(
                    f"The OIDC discovery document at {urlsplit(url).netloc} {problem} {name}"
                )
            values[name] = value
        return cls(**values)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class _KeySet:
    """The usable signing keys of one JWKS fetch."""

    uri: str
    fetched_at: float
    by_kid: Mapping[str, jwt.PyJWK]
    #: Keys that carry no ``kid``.
    anonymous: tuple[jwt.PyJWK, ...]

    def find(self, kid: str | None) -> jwt.PyJWK | None:
        if kid is not None:
            return self.by_kid.get(kid)
        # No kid in the token: unambiguous only when the set holds a single key.
        keys = [*self.by_kid.values(), *self.anonymous]
        return keys[0] if len(keys) == 1 else None


class OidcAuthenticator:
    """Backstage's ``oidc`` provider: discovery, code + PKCE, verified ID token, userinfo.

    :param algorithm: the one algorithm ID tokens may be signed with (``tokenSignedResponseAlg``).
    :param prompt: the ``prompt`` sent to the IdP; None sends none (config value ``auto``).
    :param id_token_leeway: seconds of clock skew allowed on ``exp`` and ``iat``.
    :param clock: a monotonic clock for the caches (tests move it by hand).
    """

    persist_scopes = True
    required_scopes: tuple[str, ...] = ("openid", "profile", "email")

    def __init__(
        self,
        *,
        credentials: ClientCredentials,
        callback_url: str,
        metadata_url: str,
        http: HttpClient,
        algorithm: str = "RS256",
        prompt: str | None = "none",
        federated_logout: bool = False,
        id_token_leeway: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.credentials = credentials
        self.callback_url = callback_url
        self.metadata_url = metadata_url
        self.http = http
        self.algorithm = algorithm
        self.prompt = prompt
        self.federated_logout = federated_logout
        self.id_token_leeway = id_token_leeway
        self._clock = clock
        self._metadata: tuple[OidcMetadata, float] | None = None
        self._metadata_lock = threading.Lock()
        self._keys: _KeySet | None = None
        self._keys_lock = threading.Lock()

    @classmethod
    def from_config(
        cls,
        config: Config,
        *,
        callback_url: str,
        http: HttpClient,
        clock: Callable[[], float] = time.monotonic,
    ) -> Self:
        """Build from ``auth.providers.oidc.<env>``; every bad key fails here, at startup.

        Nothing is fetched yet: the discovery document is read on the first login, so an
        IdP that is down at boot does not keep the app from starting.
        """
        if config.has("scope"):
            raise config.error(
                "scope",
                'The oidc provider no longer supports the "scope" configuration option. '
                'Please use the "additionalScopes" option instead.',
            )
        credentials = ClientCredentials.from_config(config)
        algorithm = config.get_optional_string("tokenSignedResponseAlg") or "RS256"
        if algorithm not in ID_TOKEN_ALGORITHMS:
            raise config.error(
                "tokenSignedResponseAlg",
                f"expected an asymmetric algorithm ({', '.join(ID_TOKEN_ALGORITHMS)}), "
                f"got {algorithm!r}",
            )
        timeout_ms = config.get_optional_number("timeout")
        if timeout_ms is not None:
            if timeout_ms <= 0:
                raise config.error("timeout", f"expected milliseconds above 0, got {timeout_ms}")
            http = http.with_read_timeout(timeout_ms / 1000)
        else:
            http = http.with_read_timeout(10.0)  # Backstage's default of 10000 ms
        leeway = config.get_optional_duration_seconds("idTokenLeeway")
        prompt = config.get_optional_string("prompt") or "none"
        return cls(
            credentials=credentials,
            callback_url=callback_url,
            metadata_url=str(read_absolute_url(config, "metadataUrl")),
            http=http,
            algorithm=algorithm,
            prompt=None if prompt == "auto" else prompt,
            federated_logout=bool(config.get_optional_bool("federatedLogout")),
            id_token_leeway=60.0 if leeway is None else leeway,
            clock=clock,
        )

    # -- discovery and keys ---------------------------------------------------------------

    def metadata(self) -> OidcMetadata:
        """The discovery document, fetched on first use and cached for an hour."""
        cached = self._metadata
        if cached is not None and self._clock() - cached[1] < METADATA_TTL_SECONDS:
            return cached[0]
        with self._metadata_lock:  # one fetch at a time; the others reuse its result
            cached = self._metadata
            now = self._clock()
            if cached is not None and now - cached[1] < METADATA_TTL_SECONDS:
                return cached[0]
            document = self.http.get_json(self.metadata_url)
            metadata = OidcMetadata.from_document(document, self.metadata_url)
            self._metadata = (metadata, now)
            return metadata

    def _load_keys(self, uri: str, now: float) -> _KeySet:
        document = self.http.get_json(uri)
        keys = document.get("keys")
        if not isinstance(keys, list):
            raise ServiceUnavailableError(f"The JWKS at {urlsplit(uri).netloc} has no list of keys")
        by_kid: dict[str, jwt.PyJWK] = {}
        anonymous: list[jwt.PyJWK] = []
        for jwk in keys:
            if not isinstance(jwk, dict) or jwk.get("use") not in (None, "sig"):
                continue
            if jwk.get("alg") not in (None, self.algorithm):
                continue  # a key published for another algorithm must not verify this one
            try:
                key = jwt.PyJWK(jwk, algorithm=self.algorithm)
            except jwt.PyJWTError:
                continue  # another key type, or a key PyJWT cannot use
            kid = jwk.get("kid")
            if isinstance(kid, str):
                by_kid[kid] = key
            else:
                anonymous.append(key)
        key_set = _KeySet(uri=uri, fetched_at=now, by_kid=by_kid, anonymous=tuple(anonymous))
        self._keys = key_set
        return key_set

    def _signing_key(self, jwks_uri: str, kid: str | None) -> jwt.PyJWK | None:
        with self._keys_lock:
            now = self._clock()
            keys = self._keys
            if (
                keys is None
                or keys.uri != jwks_uri
                or now - keys.fetched_at >= METADATA_TTL_SECONDS
            ):
                keys = self._load_keys(jwks_uri, now)
            key = keys.find(kid)
            if key is None and now - keys.fetched_at >= JWKS_REFETCH_INTERVAL_SECONDS:
                # An unknown kid may mean the IdP rotated its keys, so fetch once more. But
                # only every 30 s: tokens with made-up kids must not make us hammer the IdP.
                key = self._load_keys(jwks_uri, now).find(kid)
            return key

    # -- ID tokens ------------------------------------------------------------------------

    def verify_id_token(
        self, id_token: str, *, nonce: str | None, failed: str = "Authentication failed"
    ) -> dict[str, Any]:
        """Verify an ID token (OIDC Core §3.1.3.7) and return its claims.

        :param nonce: the expected ``nonce`` claim; None skips the check (refresh).
        :raises AuthenticationError: "<failed>, invalid ID token: <reason>".
        """

        def invalid(reason: str) -> AuthenticationError:
            return AuthenticationError(f"{failed}, invalid ID token: {reason}")

        try:
            header = jwt.get_unverified_header(id_token)
        except jwt.PyJWTError as exc:
            raise invalid(str(exc)) from exc
        algorithm = header.get("alg")
        if algorithm != self.algorithm:
            # Only the configured asymmetric algorithm: this stops "alg": "none" and
            # HS256 tokens "signed" with the IdP's public key as an HMAC secret.
            raise invalid(f"algorithm {algorithm!r} is not the expected {self.algorithm}")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise invalid("the key id (kid) is not a string")
        metadata = self.metadata()
        key = self._signing_key(metadata.jwks_uri, kid)
        if key is None:
            raise invalid(f"no signing key {kid!r} in the identity provider's JWKS")
        client_id = self.credentials.client_id
        try:
            claims: dict[str, Any] = jwt.decode(
                id_token,
                key,
                algorithms=[self.algorithm],
                # iss stops tokens from another IdP, aud tokens minted for another client,
                # exp/iat replays of old tokens (within the configured leeway).
                issuer=metadata.issuer,
                audience=client_id,
                leeway=self.id_token_leeway,
                options={"require": _REQUIRED_CLAIMS},
            )
        except jwt.PyJWTError as exc:
            raise invalid(str(exc)) from exc
        audience = claims["aud"]
        authorized_party = claims.get("azp")
        if isinstance(audience, list) and len(audience) > 1 and authorized_party is None:
            # A token for several audiences must name the party it was issued to.
            raise invalid("several audiences and no authorized party (azp)")
        if authorized_party is not None and authorized_party != client_id:
            # Stops a token issued to another client that merely lists us as an audience.
            raise invalid("the authorized party (azp) is another client")
        if nonce is not None:
            claim = claims.get("nonce")
            # The nonce binds the token to this browser's flow: it stops replayed and
            # injected ID tokens. Compared in constant time.
            if not isinstance(claim, str) or not hmac.compare_digest(claim, nonce):
                raise invalid("the nonce does not match this sign-in")
        return claims

    def _with_userinfo(
        self, metadata: OidcMetadata, claims: dict[str, Any], access_token: str, failed: str
    ) -> dict[str, Any]:
        """ID-token claims merged with userinfo (userinfo wins), as one profile."""
        if metadata.userinfo_endpoint is None:
            return dict(claims)
        userinfo = self.http.get_json(
            metadata.userinfo_endpoint, headers={"Authorization": f"Bearer {access_token}"}
        )
        if "sub" in claims and userinfo.get("sub") != claims["sub"]:
            # OIDC Core §5.3.2: a userinfo answer for another subject is a substitution attack.
            raise AuthenticationError(f"{failed}, the userinfo subject differs from the ID token")
        return {**claims, **userinfo}

    # -- the OAuthAuthenticator protocol --------------------------------------------------

    def start(self, input: OAuthStartInput) -> OAuthStartResponse:  # noqa: A002 (protocol name)
        """Send the browser to the provider's authorization endpoint."""
        metadata = self.metadata()
        return OAuthStartResponse(
            authorization_url(
                metadata.authorization_endpoint,
                self.credentials.client_id,
                redirect_uri=self.callback_url,
                scope=input.scope,
                state=input.state,
                code_challenge=input.code_challenge,
                nonce=derive_id_token_nonce(input.nonce),
                prompt=self.prompt,
            )
        )

    def authenticate(self, input: OAuthAuthenticateInput) -> OAuthAuthenticatorResult:  # noqa: A002
        """Trade the code for tokens, verify the ID token and merge the userinfo claims."""
        failed = "Authentication failed"
        code = callback_code(input.request)
        metadata = self.metadata()
        body = WebApplicationClient(self.credentials.client_id).prepare_request_body(
            code=code,
            redirect_uri=self.callback_url,
            code_verifier=input.code_verifier,
            **self.credentials.body_params(),
        )
        token = request_token(
            self.http, metadata.token_endpoint, self.credentials, body, failed=failed
        )
        id_token = token.get("id_token")
        if not isinstance(id_token, str) or not id_token:
            raise AuthenticationError(f"{failed}, the token response has no ID token")
        claims = self.verify_id_token(id_token, nonce=derive_id_token_nonce(input.nonce))
        session = session_from_token(token)
        profile = self._with_userinfo(metadata, claims, session.access_token, failed)
        return OAuthAuthenticatorResult(full_profile=profile, session=session)

    def refresh(self, input: OAuthRefreshInput) -> OAuthAuthenticatorResult:  # noqa: A002
        """Trade the refresh token; keep it unless the provider rotated it."""
        failed = "The refresh token was rejected"
        metadata = self.metadata()
        # No scope, as Backstage: asking for one not granted makes some IdPs refuse.
        body = WebApplicationClient(self.credentials.client_id).prepare_refresh_body(
            refresh_token=input.refresh_token, **self.credentials.body_params(refresh=True)
        )
        token = request_token(
            self.http, metadata.token_endpoint, self.credentials, body, failed=failed
        )
        session = session_from_token(token, scope=input.scope, refresh_token=input.refresh_token)
        claims: dict[str, Any] = {}
        if token.get("id_token"):
            claims = self.verify_id_token(
                str(token["id_token"]), nonce=None, failed="Refresh failed"
            )
        profile = self._with_userinfo(metadata, claims, session.access_token, failed)
        return OAuthAuthenticatorResult(full_profile=profile, session=session)

    def logout(self, input: OAuthLogoutInput) -> OAuthLogoutResult | None:  # noqa: A002
        """Revoke the refresh token where the IdP allows; maybe return its end-session URL.

        A failure at the IdP is logged and does not fail the logout: the local cookies
        are cleared either way.
        """
        try:
            metadata = self.metadata()
        except HttpError as exc:
            log.warning("Logout could not read the OIDC discovery document: %s", exc.message)
            return None
        if input.refresh_token and metadata.revocation_endpoint:
            self._revoke(metadata.revocation_endpoint, input.refresh_token)
        if self.federated_logout and metadata.end_session_endpoint:
            url = add_params_to_uri(
                metadata.end_session_endpoint, [("client_id", self.credentials.client_id)]
            )
            return OAuthLogoutResult(logout_url=url)
        return None

    def _revoke(self, endpoint: str, refresh_token: str) -> None:
        host = urlsplit(endpoint).netloc
        try:
            response = self.http.request(
                "POST",
                endpoint,
                data=self.credentials.revocation_data(refresh_token, "refresh_token"),
                auth=self.credentials.http_auth(),
            )
        except HttpError as exc:
            log.warning("Revoking the refresh token at %s failed: %s", host, exc.message)
            return
        if not response.ok:
            log.warning(
                "Revoking the refresh token at %s failed: it answered %d", host, response.status
            )

    def default_profile_transform(self, result: OAuthAuthenticatorResult) -> ProfileInfo:
        """Email, display name (``name``, else ``preferred_username``, else ``sub``), picture."""
        claims = result.full_profile

        def text(name: str) -> str | None:
            value = claims.get(name)
            return value if isinstance(value, str) and value else None

        return ProfileInfo(
            email=text("email"),
            display_name=text("name") or text("preferred_username") or text("sub"),
            picture=text("picture"),
        )


#: The built-in ``oidc`` provider.
module = ProviderModule(
    provider_id="oidc", factory=create_oauth_provider_factory(OidcAuthenticator)
)
