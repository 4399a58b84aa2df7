"""The identity half assembled from config: issuer, key store, user info, verifier, routes.

It also holds the refresh flights (on the user-info store's database), which the
OAuth providers use to share racing refreshes between processes.

:func:`create_identity_service` is what :func:`~wsgiauth.create_auth_app` calls;
apps that embed wsgiauth differently can call it themselves. The verifier it
builds reads keys straight from the token issuer, so the wrapped app checks
tokens in-process, with no HTTP round trip to its own JWKS.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import ServiceUnavailableError
from ..server_store import single_process
from .key_stores import MemoryKeyStore
from .key_stores import SqlKeyStore
from .key_stores import StaticKeyStore
from .key_stores import key_store_from_config
from .refresh_flights import SqlRefreshFlights
from .routes import IdentityRoutes
from .token_factory import StaticTokenIssuer
from .token_factory import TokenFactory
from .token_factory import read_token_expiration
from .user_info import SqlUserInfoStore
from .user_info import user_info_store_from_config
from .verifier import IdentityVerifier

if TYPE_CHECKING:
    from ..config import Config
    from ..types import RefreshFlights
    from .types import KeyStore
    from .types import TokenIssuer
    from .types import UserInfoStore

__all__ = [
    "IdentityService",
    "create_identity_service",
    "publish_signing_key",
    "read_by_other_processes",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class IdentityService:
    """Everything that issues, publishes and checks identity tokens."""

    token_issuer: TokenIssuer
    key_store: KeyStore
    user_info_store: UserInfoStore
    verifier: IdentityVerifier
    routes: IdentityRoutes
    #: Refresh exchanges shared by every process on the same database; ``None`` without one.
    refresh_flights: RefreshFlights | None = None


def create_identity_service(
    config: Config, *, issuer: str, key_store: KeyStore | None = None
) -> IdentityService:
    """Build the identity half from ``auth.keyStore``, ``backend.database`` and friends.

    :param issuer: the auth base URL, the ``iss`` of every token.
    :param key_store: overrides ``auth.keyStore`` (tests, custom stores).
    """
    key_store = key_store or key_store_from_config(config)
    user_info_store = user_info_store_from_config(config, key_store=key_store)
    expiration = read_token_expiration(config)
    omit_ent = bool(config.get_optional_bool("auth.omitIdentityTokenOwnershipClaim"))
    algorithm = config.get_optional_string("auth.identityTokenAlgorithm") or "ES256"
    algorithms: tuple[str, ...] = (algorithm,)
    token_issuer: TokenIssuer
    if isinstance(key_store, StaticKeyStore):
        # Static keys carry their own algorithm; the verifier accepts exactly those.
        algorithms = tuple(dict.fromkeys(pair.public_jwk["alg"] for pair in key_store.key_pairs))
        token_issuer = StaticTokenIssuer(
            issuer,
            key_store,
            expiration,
            user_info_store=user_info_store,
            omit_ownership_claim=omit_ent,
        )
    else:
        token_issuer = TokenFactory(
            issuer,
            key_store,
            expiration,
            algorithm=algorithm,
            user_info_store=user_info_store,
            omit_ownership_claim=omit_ent,
            shared_store=read_by_other_processes(key_store) and not single_process(),
        )
    if isinstance(token_issuer, TokenFactory) and token_issuer.shared_store:
        publish_signing_key(token_issuer)  # by the first sign-in, its wait is mostly over
    verifier = IdentityVerifier(
        issuer=issuer, algorithms=algorithms, key_source=token_issuer.list_public_keys
    )
    routes = IdentityRoutes(
        issuer=issuer,
        token_issuer=token_issuer,
        verifier=verifier,
        user_info_store=user_info_store,
    )
    refresh_flights = (
        SqlRefreshFlights(user_info_store.database)
        if isinstance(user_info_store, SqlUserInfoStore)
        else None
    )
    return IdentityService(
        token_issuer, key_store, user_info_store, verifier, routes, refresh_flights
    )


def read_by_other_processes(key_store: KeyStore) -> bool:
    """Whether other processes may list ``key_store``'s keys: every store but memory.

    A store of its own (a custom one, say) is taken to be shared: then a new key
    waits a few seconds before it signs, where assuming the opposite would sign
    tokens that other processes cannot verify yet.
    """
    if isinstance(key_store, MemoryKeyStore):
        return False
    if isinstance(key_store, SqlKeyStore):
        return key_store.database.shared
    return True


def publish_signing_key(token_issuer: TokenIssuer | None) -> float:
    """Publish this process's signing key now, if it makes its own; the seconds before it
    may sign (:meth:`TokenFactory.publish_first_key`).

    A key store that is down only leaves the key to the first sign-in: 0, and a warning.
    """
    if not isinstance(token_issuer, TokenFactory):
        return 0.0
    try:
        return token_issuer.publish_first_key()
    except ServiceUnavailableError as exc:
        log.warning("Could not publish a signing key yet: %s", exc)
        return 0.0
