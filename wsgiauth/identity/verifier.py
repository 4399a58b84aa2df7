"""``IdentityVerifier``: check Backstage identity tokens for the wrapped app and other services.

Backstage's ``DefaultIdentityClient`` plays this part in a Backstage backend. A
verifier gets its public keys from a :class:`~wsgiauth.identity.jwks.JwksKeys`:
either over HTTP from the auth service's ``/.well-known/jwks.json`` (a separate
service) or straight from a callable such as the token factory's
``list_public_keys`` (the same process as the issuing app, so no HTTP round trip
to itself).

What it accepts, and why:

- only the configured algorithms (``ES256``), whatever the token header says,
  and only with a key made for that algorithm: this stops ``alg: none`` and the
  HS256-signed-with-the-public-key forgery;
- ``typ`` ``vnd.backstage.user`` in the header, or no header ``typ`` at all
  (older tokens, spec §9.1); a ``vnd.backstage.limited-user`` token only proves
  a user signed in somewhere, it is not a full identity and is refused;
- ``aud`` containing ``backstage``, ``iss`` equal to the configured issuer,
  ``exp``, ``iat`` and ``sub`` present, ``exp`` checked with a small leeway;
- exactly three segments, each no longer than its cap (:data:`MAX_HEADER_LENGTH`,
  :data:`MAX_SIGNATURE_LENGTH`, and :data:`~wsgiauth.identity.tokens.MAX_TOKEN_LENGTH`
  for the whole token and so for the payload, which holds the ownership refs),
  checked before anything is decoded. Every failure to decode (base64, UTF-8,
  JSON, JSON nested past the recursion limit, a header that is not an object) is
  an invalid token, a 401: never an exception that would answer 500 on every
  path, public ones included.

Keys are parsed once and kept by ``kid``; an unknown ``kid`` triggers a
rate-limited refetch, and the keys are fetched again after their max-age (see
:mod:`wsgiauth.identity.jwks`). Verified tokens are cached until they expire or
their key leaves the key set, so a token seen again costs two dictionary lookups.

Time checks (``exp``, ``iat``, ``nbf``) use the verifier's own clock rather than
PyJWT's, so that the cache and the checks can never disagree about when a token
has expired.
"""

from __future__ import annotations

import binascii
import json
import re
import threading
import time
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from types import MappingProxyType
from typing import TYPE_CHECKING
from typing import Any
from typing import TypeGuard

import jwt
from jwt.utils import base64url_decode

from ..errors import AuthenticationError
from .jwks import JwksKeys
from .tokens import AUDIENCE
from .tokens import MAX_TOKEN_LENGTH
from .tokens import TYP_USER

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

    from ..http import HttpClient

__all__ = ["BackstageIdentity", "IdentityVerifier", "parse_bearer_token"]

#: The longest header segment read, in base64url characters. Backstage's header
#: (``typ``, ``alg`` and a uuid ``kid``) takes about 100; 1024 leaves room for long
#: key ids and keeps JSON nesting far below Python's recursion limit.
MAX_HEADER_LENGTH = 1024
#: The longest signature segment read: ES256 takes 86 characters, an RSA-8192
#: signature 1366.
MAX_SIGNATURE_LENGTH = 2048
#: Claims PyJWT must find; their values are checked below.
_REQUIRED_CLAIMS = ["exp", "iat", "sub", "aud", "iss"]

# Backstage's own pattern (spec §9.3): one scheme, spaces, one token, nothing else.
_BEARER = re.compile(r"^Bearer[ ]+(\S+)$", re.IGNORECASE)


def parse_bearer_token(header: str) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header value, None if not that shape."""
    match = _BEARER.match(header)
    return match.group(1) if match else None


@dataclass(frozen=True, slots=True)
class BackstageIdentity:
    """The verified identity of a caller, as the wrapped app receives it."""

    #: The ``sub`` claim, e.g. ``user:default/jane``.
    user_entity_ref: str
    #: The ``ent`` claim (the user and their groups), or ``(sub,)`` when absent.
    ownership_entity_refs: tuple[str, ...]
    #: The token itself, to call other Backstage-style services on the user's behalf.
    token: str
    #: Every claim of the token, read-only.
    claims: Mapping[str, Any]
    #: The ``exp`` claim, in epoch seconds.
    expires_at: float


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


class IdentityVerifier:
    """Verify Backstage identity tokens; thread-safe, share one per process.

    :param jwks_url: where to fetch ``{"keys": [...]}`` (a separate service).
    :param key_source: instead of ``jwks_url``, a callable returning public JWKs,
        e.g. the token factory's ``list_public_keys`` (same process as the issuer).
    :param issuer: the expected ``iss``: the auth base URL, e.g.
        ``http://localhost:7007/api/auth``.
    :param audience: the ``aud`` the token must contain.
    :param algorithms: the only signature algorithms accepted.
    :param leeway: seconds of clock skew allowed on ``exp``, ``iat`` and ``nbf``.
    :param refetch_interval: the least time between two key fetches caused by an
        unknown ``kid`` on a token that claims to be older than our last fetch.
        A token issued *after* our last fetch may carry a key that another process
        published since (several processes share one key store and rotate on their
        own schedules), so for such tokens the floor is ``min_refetch_interval``.
        ``iat`` is not yet verified at that point, so a forger can claim any; the
        floor bounds the fetches to one per ``min_refetch_interval`` whatever the
        tokens say.
    :param cache_size: how many verified tokens are remembered.
    :param clock: epoch seconds; used for the claims and both caches.
    """

    def __init__(
        self,
        jwks_url: str | None = None,
        *,
        issuer: str,
        audience: str = AUDIENCE,
        algorithms: Sequence[str] = ("ES256",),
        leeway: float = 30,
        key_source: Callable[[], list[dict[str, Any]]] | None = None,
        http: HttpClient | None = None,
        refetch_interval: float = 30.0,
        min_refetch_interval: float = 1.0,
        cache_size: int = 10_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if (jwks_url is None) == (key_source is None):
            raise ValueError("give exactly one of jwks_url and key_source")
        if isinstance(algorithms, str):
            raise TypeError("algorithms must be a sequence of names, not a string")
        if not algorithms:
            raise ValueError("algorithms must not be empty")
        for algorithm in algorithms:
            if algorithm == "none" or algorithm.startswith("HS"):
                # A symmetric algorithm would let anyone holding the published key sign.
                raise ValueError(f"algorithm {algorithm!r} cannot verify identity tokens")
        if cache_size < 0:
            raise ValueError("cache_size must not be negative")
        self.jwks_url = jwks_url
        self.issuer = issuer
        self.audience = audience
        self.algorithms = tuple(algorithms)
        self.leeway = leeway
        self.refetch_interval = refetch_interval
        self.min_refetch_interval = min(min_refetch_interval, refetch_interval)
        self.cache_size = cache_size
        self._clock = clock
        self._keys = JwksKeys(
            jwks_url,
            key_source=key_source,
            algorithms=self.algorithms,
            http=http,
            refetch_interval=refetch_interval,
            min_refetch_interval=min_refetch_interval,
            clock=clock,
        )
        # token -> (identity, kid, the key that verified it). Insertion-ordered, so the
        # first entry is the oldest; guarded by _cache_lock.
        self._cache: dict[str, tuple[BackstageIdentity, str, jwt.PyJWK]] = {}
        self._cache_lock = threading.Lock()

    # -- public API ----------------------------------------------------------------------

    def identity_from_environ(self, environ: WSGIEnvironment) -> BackstageIdentity | None:
        """The caller's identity from the ``Authorization`` header.

        Returns None when there is no such header; raises ``AuthenticationError``
        when there is one but it is not a valid bearer identity token.
        """
        header = environ.get("HTTP_AUTHORIZATION")
        if header is None:
            return None
        token = parse_bearer_token(header)
        if token is None:
            raise AuthenticationError("Invalid Authorization header, expected 'Bearer <token>'")
        return self.verify(token)

    def verify(self, token: str) -> BackstageIdentity:
        """Verify a token and return who it names.

        :raises AuthenticationError: the token is not a valid identity token (401).
        :raises ServiceUnavailableError: no keys could be loaded at all (503).
        """
        if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
            raise _invalid("not a token of acceptable size")
        now = self._clock()
        cached = self._cached(token, now)
        if cached is not None:
            return cached
        header_segment, payload_segment, _ = _segments(token)
        header = _header(header_segment)
        algorithm = header.get("alg")
        if algorithm not in self.algorithms:
            # Only the configured asymmetric algorithms: this stops "alg": "none" and
            # HS256 tokens "signed" with our public key as the HMAC secret.
            raise _invalid(f"algorithm {_short(algorithm)} is not allowed")
        token_type = header.get("typ")
        if token_type is not None and token_type != TYP_USER:
            # A limited-user token (or anything else) must not pass as a full identity.
            raise _invalid(f"token type {_short(token_type)} is not a user identity")
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise _invalid("the token has no key id (kid)")
        key = self._keys.key(kid, lambda: _claimed_issued_at(payload_segment), now)
        if key is None:
            raise _invalid("unknown signing key")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                # iss stops tokens from another Backstage or IdP, aud tokens minted for
                # something else. Time claims are checked below, on our clock.
                issuer=self.issuer,
                audience=self.audience,
                options={
                    "require": _REQUIRED_CLAIMS,
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
        except jwt.InvalidSignatureError as exc:
            raise _invalid("signature verification failed") from exc
        except jwt.PyJWTError as exc:
            raise _invalid(_reason(exc)) from exc
        except RecursionError as exc:
            # Older PyJWT releases (we allow >=2.8) let a deeply nested payload escape as
            # RecursionError, a 500; only a signed payload gets here, still a bad token.
            raise _invalid("malformed token") from exc
        identity = self._identity(token, claims, now)
        self._remember(identity, kid, key, now)
        return identity

    # -- claims --------------------------------------------------------------------------

    def _identity(self, token: str, claims: dict[str, Any], now: float) -> BackstageIdentity:
        expires_at = claims["exp"]
        issued_at = claims["iat"]
        if not _is_number(expires_at):
            raise _invalid("the exp claim is not a number")
        if not _is_number(issued_at):
            raise _invalid("the iat claim is not a number")
        # Replays of old tokens: the same rule as PyJWT, but on our clock.
        if expires_at <= now - self.leeway:
            raise _invalid("token expired")
        if issued_at > now + self.leeway:
            raise _invalid("token issued in the future")
        not_before = claims.get("nbf")
        if not_before is not None and (
            not _is_number(not_before) or not_before > now + self.leeway
        ):
            raise _invalid("token not valid yet (nbf)")
        payload_type = claims.get("typ")
        if payload_type is not None and payload_type != TYP_USER:
            # Tokens of about 2024 carry typ as a claim: refuse limited ones there too.
            raise _invalid(f"token type {_short(payload_type)} is not a user identity")
        subject = claims["sub"]
        if not isinstance(subject, str) or not subject:
            raise _invalid("the sub claim is not an entity ref")
        ownership = claims.get("ent")
        if ownership is None:
            refs: tuple[str, ...] = (subject,)
        elif isinstance(ownership, list) and all(isinstance(ref, str) for ref in ownership):
            refs = tuple(ownership)
        else:
            raise _invalid("the ent claim is not a list of entity refs")
        return BackstageIdentity(
            user_entity_ref=subject,
            ownership_entity_refs=refs,
            token=token,
            claims=MappingProxyType(claims),
            expires_at=float(expires_at),
        )

    # -- verified-token cache ------------------------------------------------------------

    def _cached(self, token: str, now: float) -> BackstageIdentity | None:
        with self._cache_lock:
            entry = self._cache.get(token)
            if entry is None:
                return None
            identity, kid, key = entry
            if identity.expires_at <= now:
                # Past exp: verify again, which applies the leeway or refuses.
                del self._cache[token]
                return None
        if self._keys.known(kid, now) is key:
            return identity
        # The key was withdrawn from the key set (or replaced under its kid) since this
        # token was verified: a leaked key must stop vouching for the tokens it signed,
        # cached ones included. Verify again, which refuses it.
        with self._cache_lock:
            self._cache.pop(token, None)
        return None

    def _remember(self, identity: BackstageIdentity, kid: str, key: jwt.PyJWK, now: float) -> None:
        if self.cache_size == 0 or identity.expires_at <= now:
            return  # an entry must never outlive the token's exp
        with self._cache_lock:
            cache = self._cache
            # Tokens live about as long as each other, so the oldest entry is about the
            # next to expire; expired ones met on lookup are dropped there.
            while identity.token not in cache and len(cache) >= self.cache_size:
                del cache[next(iter(cache))]
            cache[identity.token] = (identity, kid, key)


def _claimed_issued_at(payload_segment: str) -> float | None:
    """The ``iat`` a token claims, unverified: only a hint for refetching keys."""
    try:
        claims = _segment_object(payload_segment)
    except AuthenticationError:
        return None
    issued_at = claims.get("iat")
    return issued_at if _is_number(issued_at) else None


def _segments(token: str) -> tuple[str, str, str]:
    """The header, payload and signature segments of a compact JWS, each within its cap."""
    segments = token.split(".")
    if len(segments) != 3:
        raise _invalid("malformed token")
    header, payload, signature = segments
    # Caps before any decoding: a header of a few thousand "[" would make the JSON
    # parser recurse into RecursionError, and an oversized segment costs decoding
    # work before any signature is checked. (The payload is capped by the token's.)
    if len(header) > MAX_HEADER_LENGTH:
        raise _invalid("the header segment is too long")
    if len(signature) > MAX_SIGNATURE_LENGTH:
        raise _invalid("the signature segment is too long")
    return header, payload, signature


def _segment_object(segment: str) -> dict[str, Any]:
    """A base64url JSON object segment, decoded; any failure is an invalid token (401)."""
    try:
        value = json.loads(base64url_decode(segment))
    except (ValueError, binascii.Error, RecursionError) as exc:
        # ValueError covers bad JSON, invalid UTF-8 and non-ASCII base64 input;
        # RecursionError is JSON nested deeper than the parser's stack: a crafted
        # token must be a 401, never an exception that answers 500 on every path.
        raise _invalid("malformed token") from exc
    if not isinstance(value, dict):
        raise _invalid("malformed token")  # e.g. a list: .get() on it would raise
    return value


def _invalid(reason: str) -> AuthenticationError:
    return AuthenticationError(f"Invalid identity token: {reason}")


def _short(value: object) -> str:
    """A token-supplied value, quoted and cut short, for an error message."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _reason(exc: jwt.PyJWTError) -> str:
    """A short reason for a PyJWT failure; its own words where they are clear."""
    if isinstance(exc, jwt.InvalidAudienceError):
        return "wrong audience (aud)"
    if isinstance(exc, jwt.InvalidIssuerError):
        return "wrong issuer (iss)"
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return f"missing claim {exc.claim}"
    if isinstance(exc, jwt.DecodeError):
        return "malformed token"
    return str(exc) or type(exc).__name__


@lru_cache(maxsize=64)
def _header(segment: str) -> Mapping[str, Any]:
    """The decoded JOSE header; every token of one key shares it, hence the cache.

    ``jwt.get_unverified_header`` would decode the whole token just to read it.
    """
    return MappingProxyType(_segment_object(segment))
