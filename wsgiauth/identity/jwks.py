"""``JwksKeys``: the public keys an identity verifier checks signatures with.

Keys come either over HTTP from the auth service's ``/.well-known/jwks.json`` (a
separate service) or straight from a callable such as the token factory's
``list_public_keys`` (the same process as the issuing app, so no HTTP round trip
to itself). Kept apart from :mod:`wsgiauth.identity.verifier` because holding
and refreshing keys is its own problem: which keys are usable, when an unknown
``kid`` may cause a fetch, and what a failed fetch means.

Keys are parsed once and kept by ``kid``. An unknown ``kid`` triggers a refetch,
rate-limited (see :class:`JwksKeys`), so a flood of tokens with made-up key ids
cannot hammer the JWKS endpoint.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import jwt

from .._http import HttpClient
from .._http import create_http_client
from ..errors import HttpError
from ..errors import ServiceUnavailableError

__all__ = ["JwksKeys"]

log = logging.getLogger(__name__)

#: Clock skew allowed between the issuing host and us when judging whether a
#: token could carry a key published after our last fetch.
_ISSUE_MARGIN_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class _KeySet:
    """The usable keys of one fetch, replaced whole (never mutated) on refetch."""

    by_kid: Mapping[str, jwt.PyJWK]
    #: When the fetch was tried (``clock()``), successful or not.
    fetched_at: float
    #: Whether that fetch failed (``by_kid`` then holds the keys from before).
    failed: bool = False


class JwksKeys:
    """The signing keys of one issuer, fetched on first use; thread-safe.

    :param jwks_url: where to fetch ``{"keys": [...]}`` (a separate service).
    :param key_source: instead of ``jwks_url``, a callable returning public JWKs.
    :param algorithms: only keys usable with these algorithms are kept.
    :param http: the client for ``jwks_url``; created on the first fetch if None.
    :param refetch_interval: the least time between two fetches caused by an
        unknown ``kid`` on a token that claims to be older than our last fetch.
        A token issued *after* our last fetch may carry a key that another process
        published since (several processes share one key store and rotate on their
        own schedules), so for such tokens the floor is ``min_refetch_interval``.
        The claimed issue time is not verified yet when it is read, so a forger can
        claim any; the floor bounds the fetches to one per ``min_refetch_interval``
        whatever the tokens say.
    :param clock: epoch seconds, when :meth:`key` is not given ``now``.
    """

    def __init__(
        self,
        jwks_url: str | None = None,
        *,
        key_source: Callable[[], list[dict[str, Any]]] | None = None,
        algorithms: Sequence[str] = ("ES256",),
        http: HttpClient | None = None,
        refetch_interval: float = 30.0,
        min_refetch_interval: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if (jwks_url is None) == (key_source is None):
            raise ValueError("give exactly one of jwks_url and key_source")
        self.jwks_url = jwks_url
        self.algorithms = tuple(algorithms)
        self.refetch_interval = refetch_interval
        self.min_refetch_interval = min(min_refetch_interval, refetch_interval)
        self._key_source = key_source
        self._http = http
        self._clock = clock
        self._keys: _KeySet | None = None
        self._lock = threading.Lock()

    def key(
        self,
        kid: str,
        issued_at_hint: Callable[[], float | None],
        now: float | None = None,
    ) -> jwt.PyJWK | None:
        """The key with this ``kid``, fetching the keys when allowed; None if unknown.

        ``issued_at_hint`` returns the (unverified) issue time the token claims, or
        None; it is only called when it decides whether an unknown kid may refetch.

        :raises ServiceUnavailableError: no keys could be loaded at all (503).
        :raises HttpError: the first fetch failed otherwise.
        """
        if now is None:
            now = self._clock()
        keys = self._keys
        if keys is not None:
            key = keys.by_kid.get(kid)
            if key is not None:
                return key  # the common case: no lock
        with self._lock:  # one fetch at a time; the others reuse its result
            keys = self._keys
            if keys is None:
                return self._load(now).by_kid.get(kid)
            key = keys.by_kid.get(kid)
            if key is not None:
                return key
            if keys.failed and not keys.by_kid:
                # No key at all to check with: the service is down for everyone (503),
                # asked again at most once per min_refetch_interval.
                if now - keys.fetched_at < self.min_refetch_interval:
                    raise ServiceUnavailableError("The identity signing keys are unavailable")
                return self._load(now).by_kid.get(kid)
            if not self._may_refetch(keys, issued_at_hint, now):
                return None
            try:
                keys = self._load(now)
            except HttpError as exc:
                # Keys are cached, so the service is not down for tokens we know; a kid
                # we cannot check is the token's problem: 401, not 503.
                log.warning("Could not refetch identity keys for an unknown kid: %s", exc)
                return None
            return keys.by_kid.get(kid)

    def _may_refetch(
        self, keys: _KeySet, issued_at_hint: Callable[[], float | None], now: float
    ) -> bool:
        """Whether an unknown kid may cause a fetch now (see ``refetch_interval``)."""
        elapsed = now - keys.fetched_at
        if elapsed >= self.refetch_interval:
            return True
        if elapsed < self.min_refetch_interval:
            return False
        issued_at = issued_at_hint()
        # Keys are published before first use, so only a token issued after our last
        # fetch can carry a key we have not seen yet.
        return issued_at is not None and issued_at > keys.fetched_at - _ISSUE_MARGIN_SECONDS

    def _load(self, now: float) -> _KeySet:
        """Fetch and parse the keys; a failed fetch still counts for the rate limits."""
        previous = self._keys
        try:
            jwks = self._fetch()
        except HttpError as exc:
            # Remember the attempt so that a down key source is not asked on every
            # request; keep whatever keys we had.
            self._keys = _KeySet(
                by_kid=previous.by_kid if previous else {}, fetched_at=now, failed=True
            )
            if isinstance(exc, ServiceUnavailableError):
                raise ServiceUnavailableError("Could not load the identity signing keys") from exc
            raise
        by_kid: dict[str, jwt.PyJWK] = {}
        for jwk in jwks:
            parsed = self._parse_key(jwk)
            if parsed is not None:
                by_kid[parsed[0]] = parsed[1]
        self._keys = _KeySet(by_kid=MappingProxyType(by_kid), fetched_at=now)
        log.debug("Loaded %d identity keys", len(by_kid))
        return self._keys

    def _fetch(self) -> list[Any]:
        if self._key_source is not None:
            try:
                keys: object = self._key_source()
            except HttpError:
                raise
            except Exception as exc:
                log.exception("The identity key source failed")
                raise ServiceUnavailableError("Could not load the identity signing keys") from exc
        else:
            assert self.jwks_url is not None  # noqa: S101 - checked in __init__
            if self._http is None:
                self._http = create_http_client()
            keys = self._http.get_json(self.jwks_url).get("keys")
        if not isinstance(keys, list):
            raise ServiceUnavailableError("The identity JWKS has no list of keys")
        return keys

    def _parse_key(self, jwk: object) -> tuple[str, jwt.PyJWK] | None:
        if not isinstance(jwk, dict) or not isinstance(jwk.get("kid"), str):
            return None
        if jwk.get("use") not in (None, "sig") or jwk.get("alg") not in (None, *self.algorithms):
            return None  # a key published for something else must not verify tokens
        if "d" in jwk:
            log.warning("Ignoring identity key %r: it is a private key", jwk["kid"])
            return None
        try:
            key = jwt.PyJWK(jwk)
        except (jwt.PyJWTError, ValueError, TypeError, KeyError):
            log.warning("Ignoring identity key %r: PyJWT cannot read it", jwk["kid"])
            return None
        if key.algorithm_name not in self.algorithms:
            return None  # e.g. an RSA key without "alg" when only ES256 is allowed
        return jwk["kid"], key
