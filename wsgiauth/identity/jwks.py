"""``JwksKeys``: the public keys that signatures are checked with, cached by ``kid``.

The one JWKS cache of wsgiauth, used by two verifiers:

- the identity verifier (:mod:`wsgiauth.identity.verifier`), whose keys come
  either over HTTP from the auth service's ``/.well-known/jwks.json`` (a separate
  service) or straight from a callable such as the token factory's
  ``list_public_keys`` (the same process as the issuing app, so no HTTP round
  trip to itself);
- the ``oidc`` provider's ID-token checks (:mod:`wsgiauth.providers.oidc_tokens`),
  whose keys are the identity provider's JWKS.

Kept apart from both because holding and refreshing keys is its own problem:
which keys are usable, when an unknown ``kid`` may cause a fetch, and what a
failed fetch means.

Keys are parsed once and kept by ``kid``. An unknown ``kid`` triggers a refetch,
rate-limited (see :class:`JwksKeys`), so a flood of tokens with made-up key ids
cannot hammer the JWKS endpoint.

Keys also expire, so that a key withdrawn from the JWKS (after a leak, say) stops
verifying without a restart: a JWKS fetched over HTTP is used for its
``Cache-Control: max-age``, held within :data:`JWKS_MIN_MAX_AGE` and
:data:`JWKS_MAX_MAX_AGE` (:data:`JWKS_DEFAULT_MAX_AGE` without one), keys from a
``key_source`` for :data:`KEY_SOURCE_MAX_AGE`, and either for a fixed ``max_age``
when one is given; then the next verification fetches them again. If that fetch
fails, the last good keys go on verifying for :data:`JWKS_STALE_GRACE` more (a
warning is logged on each failed attempt, one per ``refetch_interval``), and
after that nothing verifies (503) until a fetch succeeds: an outage of the auth
service should not log everyone out at once, but neither may it keep a withdrawn
key alive for ever. With ``tolerate_failures=False`` (the ``oidc`` provider,
whose logins need the identity provider up anyway) a failed fetch raises its own
error at once and is tried again on the next use.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import replace
from types import MappingProxyType
from typing import Any

import jwt

from ..errors import HttpError
from ..errors import ServiceUnavailableError
from ..http import HttpClient
from ..http import create_http_client

__all__ = ["JwksKeys"]

log = logging.getLogger(__name__)

#: Clock skew allowed between the issuing host and us when judging whether a
#: token could carry a key published after our last fetch.
_ISSUE_MARGIN_SECONDS = 10.0
#: Seconds a JWKS fetched over HTTP is used without a ``Cache-Control: max-age``.
JWKS_DEFAULT_MAX_AGE = 300.0
#: The least time a JWKS is used, whatever it says (``max-age=0``, ``no-store``):
#: a JWKS endpoint must not make us fetch on every request. It is also the
#: ``max-age`` wsgiauth's own JWKS route sends.
JWKS_MIN_MAX_AGE = 30.0
#: The longest time a JWKS is used, whatever it says: a withdrawn key stops
#: verifying within this time even if the JWKS asked to be cached for a year.
JWKS_MAX_MAX_AGE = 3600.0
#: Seconds keys from a ``key_source`` are used: it has no Cache-Control, and it is
#: cheap (the token factory's list is cached in memory).
KEY_SOURCE_MAX_AGE = JWKS_MIN_MAX_AGE
#: How long past their max-age the last good keys still verify while fetching them
#: again fails.
JWKS_STALE_GRACE = 600.0


@dataclass(frozen=True, slots=True)
class _KeySet:
    """The usable keys of one fetch, replaced whole (never mutated) on refetch."""

    by_kid: Mapping[str, jwt.PyJWK]
    #: The JWK each key was parsed from: an unchanged key keeps its PyJWK object.
    jwks: Mapping[str, Mapping[str, Any]]
    #: Usable keys published without a ``kid`` (an identity provider may do that).
    anonymous: tuple[jwt.PyJWK, ...]
    #: When the fetch was tried (``clock()``), successful or not.
    fetched_at: float
    #: When the next fetch is due: max-age after a success, later after a failure.
    refresh_at: float
    #: ``by_kid`` verifies until then: max-age plus the grace after the last success.
    usable_until: float

    def find(self, kid: str | None) -> jwt.PyJWK | None:
        """The key with this ``kid``; for a token without one, the set's only key."""
        if kid is not None:
            return self.by_kid.get(kid)
        # No kid in the token: unambiguous only when the set holds a single key.
        keys = [*self.by_kid.values(), *self.anonymous]
        return keys[0] if len(keys) == 1 else None


def _max_age(cache_control: str | None) -> float:
    """How long a fetched JWKS is used: its ``Cache-Control`` max-age, within bounds."""
    seconds = JWKS_DEFAULT_MAX_AGE
    for directive in (cache_control or "").split(","):
        name, _, value = directive.partition("=")
        name = name.strip().lower()
        if name in ("no-cache", "no-store"):
            return JWKS_MIN_MAX_AGE
        value = value.strip().strip('"')
        if name == "max-age" and value.isascii() and value.isdigit():
            # int() refuses more than 4300 digits; any long number is "too long" anyway.
            seconds = int(value) if len(value) <= 12 else JWKS_MAX_MAX_AGE
    # Bounds either way: a max-age of 0 must not make us fetch per request, and one
    # of a year must not keep a withdrawn key verifying for a year.
    return min(max(seconds, JWKS_MIN_MAX_AGE), JWKS_MAX_MAX_AGE)


class JwksKeys:
    """The signing keys of one issuer, fetched on first use; thread-safe.

    :param jwks_url: where to fetch ``{"keys": [...]}`` (a separate service).
    :param key_source: instead of ``jwks_url``, a callable returning public JWKs.
    :param algorithms: only keys usable with these algorithms are kept.
    :param key_algorithm: read every key for this one algorithm (one of
        ``algorithms``), even a key whose JWK names none: an identity provider's
        RSA keys often carry no ``alg``, and its tokens may be PS256. None reads each
        key for its own ``alg``, or the default of its type, which must be allowed.
    :param http: the client for ``jwks_url``; created on the first fetch if None.
    :param refetch_interval: the least time between two fetches caused by an
        unknown ``kid`` on a token that claims to be older than our last fetch.
        A token issued *after* our last fetch may carry a key that another process
        published since (several processes share one key store and rotate on their
        own schedules), so for such tokens the floor is ``min_refetch_interval``.
        The claimed issue time is not verified yet when it is read, so a forger can
        claim any; the floor bounds the fetches to one per ``min_refetch_interval``
        whatever the tokens say. After a failed fetch, keys still in use are tried
        again once per ``refetch_interval``.
    :param max_age: seconds the keys of a fetch are used, whatever the JWKS's
        ``Cache-Control`` says; None follows it (see the module docstring).
    :param tolerate_failures: whether a failed fetch goes on with the last good
        keys (see the module docstring) and says only that the keys could not be
        loaded; False raises the fetch's own error and keeps nothing of the attempt.
    :param clock: seconds (epoch seconds when tokens give ``issued_at_hint``), when
        :meth:`key` is not given ``now``.

    Keys expire after their max-age (see the module docstring); the first
    request after that fetches them again while the other requests go on with
    the keys in hand.
    """

    def __init__(
        self,
        jwks_url: str | None = None,
        *,
        key_source: Callable[[], list[dict[str, Any]]] | None = None,
        algorithms: Sequence[str] = ("ES256",),
        key_algorithm: str | None = None,
        http: HttpClient | None = None,
        refetch_interval: float = 30.0,
        min_refetch_interval: float = 1.0,
        max_age: float | None = None,
        tolerate_failures: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if (jwks_url is None) == (key_source is None):
            raise ValueError("give exactly one of jwks_url and key_source")
        if key_algorithm is not None and key_algorithm not in algorithms:
            raise ValueError("key_algorithm must be one of algorithms")
        self.jwks_url = jwks_url
        self.algorithms = tuple(algorithms)
        self.key_algorithm = key_algorithm
        self.refetch_interval = refetch_interval
        self.min_refetch_interval = min(min_refetch_interval, refetch_interval)
        self.max_age = max_age
        self.tolerate_failures = tolerate_failures
        self._key_source = key_source
        self._http = http
        self._clock = clock
        self._keys: _KeySet | None = None
        self._lock = threading.Lock()

    def key(
        self,
        kid: str | None,
        issued_at_hint: Callable[[], float | None] | None = None,
        now: float | None = None,
    ) -> jwt.PyJWK | None:
        """The key with this ``kid``, fetching the keys when allowed; None if unknown.

        A ``kid`` of None (a token that names no key) finds the set's only key.
        ``issued_at_hint`` returns the (unverified) issue time the token claims, or
        None; it is only called when it decides whether an unknown kid may refetch.

        :raises ServiceUnavailableError: no keys could be loaded at all (503).
        :raises HttpError: the first fetch failed otherwise.
        """
        if now is None:
            now = self._clock()
        key = self._current(now).find(kid)
        if key is not None:
            return key  # the common case: no lock
        with self._lock:  # one fetch at a time; the others reuse its result
            keys = self._keys
            assert keys is not None  # noqa: S101 - _current loaded them
            key = keys.find(kid)
            if key is not None:
                return key
            if not self._may_refetch(keys, issued_at_hint, now):
                return None
            # A failed fetch keeps the keys we have, so the service is not down for
            # tokens we know; a kid we cannot check is the token's problem: 401.
            return self._refresh(now).find(kid)

    def known(self, kid: str, now: float) -> jwt.PyJWK | None:
        """The key with this ``kid`` in the keys in force now; never fetches for the kid.

        The verifier asks this of a token it verified before: a key that has left the
        JWKS since (or was replaced under its kid) must not go on vouching for it.

        :raises ServiceUnavailableError: no keys are usable (503).
        """
        return self._current(now).by_kid.get(kid)

    def _current(self, now: float) -> _KeySet:
        """The keys in force, fetched again when their max-age has passed."""
        keys = self._keys
        # Fetch again after max-age: a key withdrawn from the JWKS (leaked, say) must
        # stop verifying then, not at the next restart.
        if keys is None or now >= keys.refresh_at:
            keys = self._refresh_due(now)
        if now >= keys.usable_until:
            # No usable key: none could be loaded, or the last good ones are past
            # their grace (an outage must not keep a withdrawn key verifying). The
            # service is down for everyone (503), asked again at most once per
            # min_refetch_interval.
            raise ServiceUnavailableError("The identity signing keys are unavailable")
        return keys

    def _refresh_due(self, now: float) -> _KeySet:
        keys = self._keys
        if keys is not None and now < keys.usable_until:
            # Keys in hand: one thread fetches, the others go on with these meanwhile
            # rather than queue behind a slow JWKS endpoint.
            if not self._lock.acquire(blocking=False):
                return keys
        else:
            self._lock.acquire()  # nothing to verify with: wait for the one fetch
        try:
            keys = self._keys
            if keys is None or now >= keys.refresh_at:  # not fetched while we waited
                keys = self._refresh(now)
            return keys
        finally:
            self._lock.release()

    def _may_refetch(
        self, keys: _KeySet, issued_at_hint: Callable[[], float | None] | None, now: float
    ) -> bool:
        """Whether an unknown kid may cause a fetch now (see ``refetch_interval``)."""
        elapsed = now - keys.fetched_at
        if elapsed >= self.refetch_interval:
            return True
        if elapsed < self.min_refetch_interval or issued_at_hint is None:
            return False
        issued_at = issued_at_hint()
        # Keys are published before first use, so only a token issued after our last
        # fetch can carry a key we have not seen yet.
        return issued_at is not None and issued_at > keys.fetched_at - _ISSUE_MARGIN_SECONDS

    def _refresh(self, now: float) -> _KeySet:
        """Under the lock: fetch and parse the keys. A failed fetch, when failures are
        tolerated, still counts for the rate limits and keeps the last good keys while
        they are usable; otherwise it raises and changes nothing."""
        previous = self._keys
        try:
            jwks, max_age = self._fetch()
        except HttpError as exc:
            if not self.tolerate_failures:
                raise  # the attempt is not remembered: the next use tries again
            return self._failed(exc, previous, now)
        by_kid: dict[str, jwt.PyJWK] = {}
        sources: dict[str, Mapping[str, Any]] = {}
        anonymous: list[jwt.PyJWK] = []
        for jwk in jwks:
            parsed = self._parse_key(jwk, previous)
            if parsed is None:
                continue
            kid, key = parsed
            if kid is None:
                anonymous.append(key)
            else:
                by_kid[kid] = key
                sources[kid] = jwk
        grace = JWKS_STALE_GRACE if self.tolerate_failures else 0.0
        self._keys = _KeySet(
            by_kid=MappingProxyType(by_kid),
            jwks=MappingProxyType(sources),
            anonymous=tuple(anonymous),
            fetched_at=now,
            refresh_at=now + max_age,
            usable_until=now + max_age + grace,
        )
        log.debug("Loaded %d JWKS keys, kept for %.0f s", len(by_kid) + len(anonymous), max_age)
        return self._keys

    def _failed(self, exc: HttpError, previous: _KeySet | None, now: float) -> _KeySet:
        """What a failed fetch leaves, when failures are tolerated; raises with no keys."""
        if previous is not None and now < previous.usable_until:
            # Go on with the last good keys (only until usable_until, so that an
            # outage cannot keep a withdrawn key alive), trying again later.
            log.warning(
                "Could not refetch the identity keys, using the last ones for %.0f s more: %s",
                previous.usable_until - now,
                exc,
            )
            self._keys = replace(
                previous,
                fetched_at=now,
                refresh_at=max(previous.refresh_at, now + self.refetch_interval),
            )
            return self._keys
        # Remember the attempt so that a down key source is not asked on every request.
        self._keys = _KeySet(
            by_kid={},
            jwks={},
            anonymous=(),
            fetched_at=now,
            refresh_at=now + self.min_refetch_interval,
            usable_until=-math.inf,
        )
        if isinstance(exc, ServiceUnavailableError):
            raise ServiceUnavailableError("Could not load the identity signing keys") from exc
        raise exc

    def _fetch(self) -> tuple[list[Any], float]:
        """The JWKs, and how many seconds they may be used."""
        if self._key_source is not None:
            try:
                keys: object = self._key_source()
            except HttpError:
                raise
            except Exception as exc:
                log.exception("The identity key source failed")
                raise ServiceUnavailableError("Could not load the identity signing keys") from exc
            max_age = KEY_SOURCE_MAX_AGE
        else:
            assert self.jwks_url is not None  # noqa: S101 - checked in __init__
            if self._http is None:
                self._http = create_http_client()
            response = self._http.request(
                "GET", self.jwks_url, headers={"Accept": "application/json"}
            )
            if not response.ok:
                raise ServiceUnavailableError(f"The identity JWKS answered {response.status}")
            document = response.json()
            keys = document.get("keys") if isinstance(document, dict) else None
            max_age = _max_age(response.headers.get("Cache-Control"))
        if not isinstance(keys, list):
            raise ServiceUnavailableError("The identity JWKS has no list of keys")
        return keys, max_age if self.max_age is None else self.max_age

    def _parse_key(
        self, jwk: object, previous: _KeySet | None
    ) -> tuple[str | None, jwt.PyJWK] | None:
        """A usable key and its ``kid`` (None when it has none); None for anything else."""
        if not isinstance(jwk, dict):
            return None
        kid = jwk.get("kid") if isinstance(jwk.get("kid"), str) else None
        if kid is not None and previous is not None and previous.jwks.get(kid) == jwk:
            return kid, previous.by_kid[kid]  # unchanged: the same object
        if jwk.get("use") not in (None, "sig") or jwk.get("alg") not in (None, *self.algorithms):
            return None  # a key published for something else must not verify tokens
        if "d" in jwk:
            log.warning("Ignoring JWKS key %r: it is a private key", kid)
            return None
        try:
            key = jwt.PyJWK(jwk, algorithm=self.key_algorithm)
        except (jwt.PyJWTError, ValueError, TypeError, KeyError):
            if self.key_algorithm is None:
                log.warning("Ignoring JWKS key %r: PyJWT cannot read it", kid)
            # Read for key_algorithm, a key of another type fails here: an identity
            # provider's JWKS often mixes RSA and EC keys, and that is no fault.
            return None
        if key.algorithm_name not in self.algorithms:
            return None  # e.g. an RSA key without "alg" when only ES256 is allowed
        return kid, key
