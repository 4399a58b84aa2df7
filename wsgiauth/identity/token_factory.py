"""Backstage identity token signing keys: lifecycle, rotation and listing (spec §9.1, §9.2).

:class:`TokenFactory` is Backstage's ``TokenFactory``: each process lazily makes
its own signing key, publishes the public half in a
:class:`~wsgiauth.identity.types.KeyStore` *before* signing anything with it, and
rotates it after one token lifetime; keys stay listed for three lifetimes, so every
unexpired token keeps a key to verify it. :class:`StaticTokenIssuer` signs with the
first key of a :class:`~wsgiauth.identity.key_stores.StaticKeyStore` instead.

Four things go beyond Backstage, none visible on the wire:

- the next key is published ``publish_ahead_seconds`` before it starts signing, so a
  verifier (or another process's key-list cache) that refreshed in that window
  already knows it when the first token signed by it arrives;
- in a store other processes read (``shared_store``), no key signs sooner than
  ``rotation_delay_seconds`` after it was published, the first one included: its
  first caller waits (or the server, at boot: :meth:`TokenFactory.publish_first_key`);
- :meth:`TokenFactory.list_public_keys` serves a list cached for
  ``list_cache_seconds`` (the JWKS endpoint is hot), prunes expired keys at most once
  a minute, and falls back to the last good list while the key store is down;
- rotation on demand: when the key store carries a rotation mark
  (:class:`~wsgiauth.identity.types.RotatableKeyStore`, set by ``wsgiauth keys
  rotate``), a process that signs reads it every ``list_cache_seconds``, and one whose key
  was made before the mark makes a new key, publishes it, and signs with it only
  ``rotation_delay_seconds`` later, once every process's list (and the verifiers
  that ask it for an unknown kid) can have seen it. Old keys stay listed for their
  three lifetimes, so the tokens they signed go on verifying. A process acts on a
  given mark once, so a clock behind the operator's cannot make it rotate in a loop.

The token format itself (claims and a key in, a signed token out) lives in
:mod:`wsgiauth.identity.tokens`.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.asymmetric import rsa

from ..audit import AuditEvent
from ..audit import audit
from ..config import Config
from ..errors import ConfigError
from ..errors import ServiceUnavailableError
from ..types import TokenParams
from .key_stores import StaticKeyStore
from .key_stores import public_jwk_of
from .tokens import SigningKey
from .tokens import issue_user_token
from .types import KeyStore
from .types import RotatableKeyStore
from .types import StoredKey
from .types import UserInfoStore

__all__ = ["StaticTokenIssuer", "TokenFactory", "read_token_expiration"]

log = logging.getLogger(__name__)

#: ``auth.backstageTokenExpiration``: default and clamp bounds, in seconds (spec §8).
TOKEN_EXPIRATION_DEFAULT = 3600
TOKEN_EXPIRATION_MIN = 600
TOKEN_EXPIRATION_MAX = 86400
#: Keys stay listed for this many key durations after they were made.
KEY_LISTING_FACTOR = 3
#: Expired keys are deleted from the store at most this often (seconds).
PRUNE_INTERVAL = 60.0
#: After the key store failed to take a new key, callers fail fast for this long.
RETRY_INTERVAL = 1.0
#: Added to two list-cache periods to make the wait between publishing a key made on
#: a rotation request and signing with it: it covers the verifiers' one-second floor
#: between fetches for an unknown kid, with room for a slow request.
ROTATION_MARGIN = 2.0

_EC_CURVES: dict[str, Callable[[], ec.EllipticCurve]] = {
    "ES256": ec.SECP256R1,
    "ES384": ec.SECP384R1,
    "ES512": ec.SECP521R1,
}
_RSA = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")
_SUPPORTED = (*_EC_CURVES, *_RSA, "EdDSA")


@dataclass(frozen=True, slots=True)
class _KeyList:
    """The cached answer of ``list_public_keys``; replaced whole, never mutated."""

    fresh_until: float
    stored: tuple[StoredKey, ...]
    jwks: tuple[dict[str, Any], ...]
    #: The last refresh failed: this is the last good list, served while the store is down.
    degraded: bool = False


@dataclass(frozen=True, slots=True)
class _Upcoming:
    """The published key that signs next, and from when (replaced whole, never mutated)."""

    key: SigningKey
    #: It signs once the clock is past this (epoch seconds).
    signs_after: float


def _new_key(algorithm: str, created_at: float) -> SigningKey:
    private_key: Any
    if algorithm in _EC_CURVES:
        private_key = ec.generate_private_key(_EC_CURVES[algorithm]())
    elif algorithm in _RSA:
        private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        private_key = ed25519.Ed25519PrivateKey.generate()
    kid = str(uuid.uuid4())
    public = public_jwk_of(jwt.get_algorithm_by_name(algorithm), private_key.public_key())
    jwk = {**public, "kid": kid, "alg": algorithm}
    return SigningKey(kid, algorithm, private_key, jwk, created_at)


class TokenFactory:
    """Issues identity tokens with a rotating per-process signing key (Backstage ``TokenFactory``).

    :param issuer: the ``iss`` claim, the auth base URL (``http://host/api/auth``).
    :param key_duration_seconds: token lifetime and signing-key lifetime
        (:func:`read_token_expiration`).
    :param user_info_store: where each token's claims are saved for ``/v1/userinfo``.
    :param omit_ownership_claim: leave ``ent`` out of tokens
        (``auth.omitIdentityTokenOwnershipClaim``); it is still saved as user info.
    :param publish_ahead_seconds: how long before it starts signing the next key is
        published; default a tenth of the key duration, at most 300 s.
    :param list_cache_seconds: how long :meth:`list_public_keys` serves a list from
        memory; a key published by another process appears within this time.
    :param rotation_delay_seconds: after a rotation request, how long a new key is
        published before it signs; default two list-cache periods plus
        :data:`ROTATION_MARGIN`. Until then the old key signs, a few seconds past its
        lifetime if need be (it stays listed for three).
    :param shared_store: other processes read ``key_store`` (a database file or
        server). Every key then signs only ``rotation_delay_seconds`` after it was
        published, never at once: a key that expired unreplaced (an idle process)
        goes on signing meanwhile, and the first key, with none to stand in, makes its
        first caller wait (:meth:`publish_first_key` at boot spares them).
    :param sleep: how that caller waits (tests record it instead).
    """

    def __init__(
        self,
        issuer: str,
        key_store: KeyStore,
        key_duration_seconds: int,
        *,
        algorithm: str = "ES256",
        user_info_store: UserInfoStore | None = None,
        omit_ownership_claim: bool = False,
        clock: Callable[[], float] = time.time,
        publish_ahead_seconds: float | None = None,
        list_cache_seconds: float = 1.0,
        rotation_delay_seconds: float | None = None,
        shared_store: bool = False,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if algorithm not in _SUPPORTED:
            raise ConfigError(
                f"unsupported algorithm '{algorithm}' (expected one of {', '.join(_SUPPORTED)})",
                path="auth.identityTokenAlgorithm",
            )
        if key_duration_seconds <= 0:
            raise ValueError("key_duration_seconds must be positive")
        self.issuer = issuer
        self.algorithm = algorithm
        self.key_duration_seconds = key_duration_seconds
        self.publish_ahead_seconds = (
            min(300.0, key_duration_seconds / 10)
            if publish_ahead_seconds is None
            else publish_ahead_seconds
        )
        self.list_cache_seconds = list_cache_seconds
        self.rotation_delay_seconds = (
            2 * list_cache_seconds + ROTATION_MARGIN
            if rotation_delay_seconds is None
            else rotation_delay_seconds
        )
        self.shared_store = shared_store
        self._sleep = sleep
        self._key_store = key_store
        self._marks = key_store if isinstance(key_store, RotatableKeyStore) else None
        self._user_info_store = user_info_store
        self._omit_ownership_claim = omit_ownership_claim
        self._clock = clock
        # Guards making keys: two threads must never both make (and publish) one.
        self._key_lock = threading.Lock()
        self._current: SigningKey | None = None
        # The clock's time before which the current key must not sign: set for a key made
        # in a shared store with no key to stand in for it meanwhile (the first one, or one
        # replacing a key too old to sign), None once that wait is over (the fast path's test).
        self._current_signs_at: float | None = None
        self._next: _Upcoming | None = None
        self._retry_at = 0.0  # time.monotonic() before which no new key is attempted
        self._rotation_mark: float | None = None  # as last read, with the key list
        self._handled_mark: float | None = None  # the mark a new key was made for
        self._mark_read_at = -math.inf
        self._list_lock = threading.Lock()
        self._cache: _KeyList | None = None
        self._last_prune = -math.inf

    # --- issuing ----------------------------------------------------------------------

    def issue_token(self, params: TokenParams) -> str:
        """Sign a user token for ``params.claims`` (``sub``, optional ``ent``, extra claims).

        Raises :class:`InputError` for a ``sub`` that is not an entity ref and
        :class:`ServiceUnavailableError` when a new key cannot be published or the
        user info cannot be saved.
        """
        key = self._signing_key(self._clock())
        now = self._clock()  # after a first key's wait, if there was one
        token, user_info = issue_user_token(
            key,
            params,
            issuer=self.issuer,
            duration=self.key_duration_seconds,
            now=now,
            omit_ownership_claim=self._omit_ownership_claim,
        )
        if self._user_info_store is not None:
            self._user_info_store.save_user_info(user_info["sub"], user_info)
        return token

    def publish_first_key(self) -> float:
        """Make and publish this process's signing key now, before any token needs it.

        A server calls it while a worker boots. In a shared store it returns the
        seconds left before the key may sign (``rotation_delay_seconds`` when just
        made): waiting them before serving spares the first sign-in that wait, which
        keeps a token's key from being missing in another worker's cached key list (or
        at a verifier that fetched the JWKS a moment before). 0 otherwise.

        :raises ServiceUnavailableError: the key store is unavailable.
        """
        with self._key_lock:
            if self._current is None:
                self._switch_to_new(self._make_key(self._clock()))
            signs_at = self._current_signs_at
        return self._wait_before(signs_at)

    def _signing_key(self, now: float) -> SigningKey:
        if self._marks is not None:
            self._read_rotation_mark(now)
        current, upcoming = self._current, self._next
        if (
            current is not None
            and self._current_signs_at is None
            and not self._rotation_requested(current)
        ):
            if upcoming is None:
                if now <= self._prepublish_at(current):  # not expired either
                    return current  # the fast path: no lock
            elif now <= upcoming.signs_after:
                return current  # the next key is published but not due yet
        with self._key_lock:
            key = self._rotate(self._clock())
            self._await_new_key()  # the lock holds the other callers, who need it too
            return key

    def _switch_to_new(self, key: SigningKey) -> SigningKey:
        """Under the key lock: sign with a key just made, in a shared store after the delay.

        The wait is set before the key: the fast path reads them in the other order, so
        it never sees the new key without its wait.
        """
        if self.shared_store:
            self._current_signs_at = self._clock() + self.rotation_delay_seconds
        return self._switch_to(key)

    def _await_new_key(self) -> None:
        """Under the key lock: sleep until a new key may sign (see ``shared_store``)."""
        remaining = self._wait_before(self._current_signs_at)
        if remaining > 0:
            log.info("Waiting %.1f s until every process can list the new key", remaining)
            self._sleep(remaining)
        self._current_signs_at = None

    def _read_rotation_mark(self, now: float) -> None:
        """Read the rotation mark again when the last read is ``list_cache_seconds`` old."""
        if now < self._mark_read_at + self.list_cache_seconds:
            return
        self._mark_read_at = now  # claimed: the other threads go on with the last mark
        assert self._marks is not None  # noqa: S101 - only called with a mark store
        try:
            self._rotation_mark = self._marks.rotation_requested_at()
        except Exception as exc:  # read again next time; issuing goes on
            log.warning("Could not read the key rotation mark: %s", exc)

    def _rotation_requested(self, key: SigningKey) -> bool:
        mark = self._rotation_mark
        return mark is not None and mark != self._handled_mark and key.created_at < mark

    def _prepublish_at(self, key: SigningKey) -> float:
        return key.created_at + self.key_duration_seconds - self.publish_ahead_seconds

    def _rotate(self, now: float) -> SigningKey:
        """Under the key lock: switch to or make the key to sign with, and maybe the next one."""
        current = self._current
        if current is not None and self._rotation_requested(current):
            self._publish_for_rotation(now, current)
        upcoming = self._next
        if upcoming is not None and now > upcoming.signs_after:
            self._next = None
            if now <= upcoming.key.created_at + self.key_duration_seconds:
                current = self._switch_to(upcoming.key)
        if current is None or not self._may_sign(current, now):
            current = self._switch_to_new(self._make_key(now))  # raises when the store is down
        elif now > current.created_at + self.key_duration_seconds and self._next is None:
            # Expired, and no next key was published ahead (an idle process, or a store
            # that was down): a shared store's new key signs only after the delay, the
            # expired one (still listed) until then.
            key = self._make_key(now)  # raises when the store is down
            if self.shared_store:
                self._next = _Upcoming(key, now + self.rotation_delay_seconds)
            else:
                current = self._switch_to(key)
        if self._next is None and now > self._prepublish_at(current):
            if time.monotonic() >= self._retry_at:
                try:
                    key = self._make_key(now)
                except ServiceUnavailableError:
                    log.warning("Could not publish the next signing key; keeping %s", current.kid)
                else:
                    expiry = current.created_at + self.key_duration_seconds
                    self._next = _Upcoming(key, expiry)
        return current

    def _wait_before(self, signs_at: float | None) -> float:
        """Seconds until ``signs_at``, at most the delay whatever the clock did meanwhile."""
        if signs_at is None:
            return 0.0
        return min(max(0.0, signs_at - self._clock()), self.rotation_delay_seconds)

    def _may_sign(self, key: SigningKey, now: float) -> bool:
        """Whether a token ``key`` signs now (or after the delay) expires while it is listed."""
        latest = now + self.rotation_delay_seconds + self.key_duration_seconds
        return latest <= key.created_at + KEY_LISTING_FACTOR * self.key_duration_seconds

    def _switch_to(self, key: SigningKey) -> SigningKey:
        self._current = key
        log.info("Signing identity tokens with key %s", key.kid)
        return key

    def _publish_for_rotation(self, now: float, current: SigningKey) -> None:
        """Publish a key to replace ``current`` (made before the rotation mark) soon."""
        mark = self._rotation_mark
        if time.monotonic() < self._retry_at:
            return
        try:
            key = self._make_key(now)
        except ServiceUnavailableError:
            log.warning("Could not publish a key for the rotation; keeping %s", current.kid)
            return
        self._handled_mark = mark
        self._next = _Upcoming(key, now + self.rotation_delay_seconds)
        log.info(
            "Rotation requested: key %s replaces %s in %.1f s",
            key.kid,
            current.kid,
            self.rotation_delay_seconds,
        )

    def _make_key(self, now: float) -> SigningKey:
        """Make a key and publish its public half; it may be used only after that."""
        if time.monotonic() < self._retry_at:
            raise ServiceUnavailableError(
                "Unable to issue an identity token: the key store is unavailable"
            )
        key = _new_key(self.algorithm, now)
        try:
            self._key_store.add_key(key.public_jwk)
        except Exception as exc:
            self._retry_at = time.monotonic() + RETRY_INTERVAL
            log.warning("Failed to publish a new signing key: %s", exc)
            raise ServiceUnavailableError(
                "Unable to issue an identity token: the key store is unavailable"
            ) from exc
        log.info("Published new signing key %s", key.kid)
        audit(AuditEvent.KEY_ROTATED, kid=key.kid, alg=self.algorithm)
        self._remember_own_key(key)
        return key

    # --- listing ----------------------------------------------------------------------

    def list_public_keys(self) -> list[dict[str, Any]]:
        """The public JWKs a verifier may need now: every key made less than three key
        durations ago, by this process or any other sharing the key store.

        Served from memory for ``list_cache_seconds``; a key made by this process is
        listed at once. While the store is down the last good list is served (minus
        keys that expired meanwhile); with none, :class:`ServiceUnavailableError`.
        """
        now = self._clock()
        cache = self._cache
        if cache is not None and now < cache.fresh_until:
            return list(cache.jwks)
        # While another thread refreshes, the others serve the last list, unless it is
        # older than two cache periods (it could then miss a key published ahead of use).
        # While the store is down they never wait: one thread at a time retries.
        blocking = cache is None or (
            not cache.degraded and now >= cache.fresh_until + self.list_cache_seconds
        )
        if not self._list_lock.acquire(blocking=blocking):
            assert cache is not None  # noqa: S101 - only a non-blocking acquire can fail
            return [s.key for s in cache.stored if self._listed_until(s) > now]
        try:
            cache = self._cache
            if cache is not None and now < cache.fresh_until:
                return list(cache.jwks)  # refreshed while this thread waited
            return list(self._refresh(now).jwks)
        finally:
            self._list_lock.release()

    def _listed_until(self, stored: StoredKey) -> float:
        return stored.created_at + KEY_LISTING_FACTOR * self.key_duration_seconds

    def _refresh(self, now: float) -> _KeyList:
        """Under the list lock: read the store, prune, and cache the valid keys."""
        try:
            stored = self._key_store.list_keys()
        except Exception as exc:
            previous = self._cache
            if previous is None:
                if isinstance(exc, ServiceUnavailableError):
                    raise ServiceUnavailableError(
                        "Unable to list the public keys: the key store is unavailable"
                    ) from exc
                raise
            log.warning("Key store unavailable, serving the last key list: %s", exc)
            kept = tuple(s for s in previous.stored if self._listed_until(s) > now)
            return self._store_cache(kept, now, degraded=True)
        valid = tuple(s for s in stored if self._listed_until(s) > now)
        expired = [s.key["kid"] for s in stored if self._listed_until(s) <= now]
        if expired and now - self._last_prune >= PRUNE_INTERVAL:
            self._last_prune = now
            log.info("Removing expired signing keys %s", ", ".join(expired))
            try:
                self._key_store.remove_keys(expired)
            except Exception as exc:  # pruning is housekeeping; listing goes on
                log.warning("Failed to remove expired signing keys: %s", exc)
        return self._store_cache(valid, now)

    def _store_cache(
        self, stored: tuple[StoredKey, ...], now: float, *, degraded: bool = False
    ) -> _KeyList:
        expiry = min((self._listed_until(s) for s in stored), default=math.inf)
        fresh_until = min(now + self.list_cache_seconds, expiry)
        cache = _KeyList(fresh_until, stored, tuple(s.key for s in stored), degraded)
        self._cache = cache
        return cache

    def _remember_own_key(self, key: SigningKey) -> None:
        """List a key this process just published at once, without waiting for the cache.

        Taken under the list lock, so a refresh that read the store before the key was
        published cannot overwrite the list afterwards.
        """
        with self._list_lock:
            cache = self._cache
            entry = StoredKey(key=key.public_jwk, created_at=key.created_at)
            if cache is None:
                # Only our key is known: list it, but read the store on the next call.
                self._cache = _KeyList(-math.inf, (entry,), (entry.key,))
            else:
                stored = (*cache.stored, entry)
                jwks = tuple(s.key for s in stored)
                self._cache = _KeyList(cache.fresh_until, stored, jwks, cache.degraded)


class StaticTokenIssuer:
    """Issues tokens with the first key of a :class:`StaticKeyStore`; never rotates.

    For deployments that share no database: every process signs with the same
    configured key, and the JWKS lists every configured key.
    """

    def __init__(
        self,
        issuer: str,
        key_store: StaticKeyStore,
        key_duration_seconds: int,
        *,
        user_info_store: UserInfoStore | None = None,
        omit_ownership_claim: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        pair = key_store.key_pairs[0]
        jwk = pair.public_jwk
        self.issuer = issuer
        self.key_duration_seconds = key_duration_seconds
        self._key_store = key_store
        self._key = SigningKey(jwk["kid"], jwk["alg"], pair.private_key, jwk, 0.0)
        self._user_info_store = user_info_store
        self._omit_ownership_claim = omit_ownership_claim
        self._clock = clock

    def issue_token(self, params: TokenParams) -> str:
        """Sign a user token exactly as :meth:`TokenFactory.issue_token` does."""
        token, user_info = issue_user_token(
            self._key,
            params,
            issuer=self.issuer,
            duration=self.key_duration_seconds,
            now=self._clock(),
            omit_ownership_claim=self._omit_ownership_claim,
        )
        if self._user_info_store is not None:
            self._user_info_store.save_user_info(user_info["sub"], user_info)
        return token

    def list_public_keys(self) -> list[dict[str, Any]]:
        """Every configured public key (with ``use: sig``)."""
        return [stored.key for stored in self._key_store.list_keys()]


def read_token_expiration(config: Config) -> int:
    """``auth.backstageTokenExpiration`` in whole seconds: default 3600, clamped to [600, 86400].

    :param config: the root config.
    """
    seconds = config.get_optional_duration_seconds("auth.backstageTokenExpiration")
    if seconds is None:
        return TOKEN_EXPIRATION_DEFAULT
    rounded = math.floor(seconds + 0.5)  # Math.round
    clamped = min(max(rounded, TOKEN_EXPIRATION_MIN), TOKEN_EXPIRATION_MAX)
    if clamped != rounded:
        log.warning(
            "auth.backstageTokenExpiration of %d s is outside [%d, %d]; using %d s",
            rounded,
            TOKEN_EXPIRATION_MIN,
            TOKEN_EXPIRATION_MAX,
            clamped,
        )
    return clamped
