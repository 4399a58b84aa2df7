"""OpenID Connect discovery and ID-token verification, for the ``oidc`` provider.

:class:`OidcTokenVerifier` reads the IdP's discovery document (``metadataUrl``)
and its JWKS, and verifies ID tokens against them (OIDC Core §3.1.3.7). It is
kept apart from :mod:`wsgiauth.providers.oidc`, the authenticator, because it
is the security-critical part and is reasoned about on its own.

Where Backstage leans on ``openid-client``, the checks are spelled out here
and each carries a comment saying what it stops: only the configured
asymmetric algorithm is accepted, issuer, audience, ``azp``, expiry and
``nonce`` are checked, and an unknown key id refetches the JWKS at most once
every 30 seconds. The ID-token ``nonce`` is derived from the flow nonce
(:func:`derive_id_token_nonce`), so no server-side state is kept between
``start`` and the callback.

Discovery and JWKS documents are fetched lazily, on first use, and cached for
an hour; a failed fetch is not cached and answers 503. The JWKS is held by the
same cache as our own identity keys, :class:`~wsgiauth.identity.jwks.JwksKeys`,
set up for an identity provider: every key read for the configured algorithm,
a fixed hour instead of ``Cache-Control``, and failures raised at once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
import time
from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Any
from urllib.parse import urlsplit

import jwt

from ..errors import AuthenticationError
from ..errors import ServiceUnavailableError
from ..identity.jwks import JwksKeys

if TYPE_CHECKING:
    from ..oauth import HttpClient

__all__ = [
    "ID_TOKEN_ALGORITHMS",
    "JWKS_REFETCH_INTERVAL_SECONDS",
    "METADATA_TTL_SECONDS",
    "OidcMetadata",
    "OidcTokenVerifier",
    "derive_id_token_nonce",
]

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
    #: RFC 9207 §3: the provider promises ``iss`` in every authorization response.
    authorization_response_iss_parameter_supported: bool = False

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
        # Only JSON true is the promise (RFC 8414 metadata values are typed), not "true".
        iss_supported = document.get("authorization_response_iss_parameter_supported") is True
        return cls(
            **values,  # type: ignore[arg-type]
            authorization_response_iss_parameter_supported=iss_supported,
        )


class OidcTokenVerifier:
    """One IdP's discovery document and signing keys, and the ID-token checks against them.

    Thread-safe: one fetch at a time refreshes each cache, the others reuse its result.

    :param client_id: this client, the expected ``aud`` (and ``azp``, when present).
    :param algorithm: the one algorithm ID tokens may be signed with.
    :param leeway: seconds of clock skew allowed on ``exp`` and ``iat``.
    :param clock: a monotonic clock for the caches (tests move it by hand).
    """

    def __init__(
        self,
        *,
        metadata_url: str,
        http: HttpClient,
        client_id: str,
        algorithm: str = "RS256",
        leeway: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.metadata_url = metadata_url
        self.http = http
        self.client_id = client_id
        self.algorithm = algorithm
        self.id_token_leeway = leeway
        self._clock = clock
        self._metadata: tuple[OidcMetadata, float] | None = None
        self._metadata_lock = threading.Lock()
        #: The JWKS cache, and the ``jwks_uri`` it fetches (discovery may move it).
        self._keys: tuple[str, JwksKeys] | None = None
        self._keys_lock = threading.Lock()

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

    def _jwks(self, uri: str) -> JwksKeys:
        """The key cache for the JWKS at ``uri``: a new one when discovery names another."""
        cached = self._keys
        if cached is not None and cached[0] == uri:
            return cached[1]
        with self._keys_lock:
            cached = self._keys
            if cached is None or cached[0] != uri:
                keys = JwksKeys(
                    key_source=lambda: self._fetch_jwks(uri),
                    algorithms=(self.algorithm,),
                    # A key with no alg may serve the configured algorithm.
                    key_algorithm=self.algorithm,
                    # An unknown kid may mean the IdP rotated its keys, so fetch once
                    # more. But only every 30 s: tokens with made-up kids must not make
                    # us hammer the IdP.
                    refetch_interval=JWKS_REFETCH_INTERVAL_SECONDS,
                    max_age=METADATA_TTL_SECONDS,
                    tolerate_failures=False,
                    clock=self._clock,
                )
                cached = (uri, keys)
                self._keys = cached
            return cached[1]

    def _fetch_jwks(self, uri: str) -> list[Any]:
        keys = self.http.get_json(uri).get("keys")
        if not isinstance(keys, list):
            raise ServiceUnavailableError(f"The JWKS at {urlsplit(uri).netloc} has no list of keys")
        return keys

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
        key = self._jwks(metadata.jwks_uri).key(kid)
        if key is None:
            raise invalid(f"no signing key {kid!r} in the identity provider's JWKS")
        client_id = self.client_id
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
