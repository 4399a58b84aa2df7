"""Identity tokens: issuing them, publishing their keys, and checking them.

A sign-in ends with an ES256 identity token signed by the :class:`TokenFactory`,
whose public keys sit in a :class:`KeyStore` and are served as the JWKS. Any
service checks the tokens with an :class:`IdentityVerifier`, in process or over
HTTP; :class:`IdentityMiddleware` (or :func:`authenticate` in a framework's own
hook) puts the caller's :class:`BackstageIdentity` in the WSGI environ.
"""

from __future__ import annotations

from .key_stores import MemoryKeyStore as MemoryKeyStore
from .key_stores import SqlKeyStore as SqlKeyStore
from .key_stores import StaticKeyStore as StaticKeyStore
from .key_stores import key_store_from_config as key_store_from_config
from .middleware import IDENTITY_ENVIRON_KEY as IDENTITY_ENVIRON_KEY
from .middleware import IdentityMiddleware as IdentityMiddleware
from .middleware import authenticate as authenticate
from .middleware import path_prefixes as path_prefixes
from .middleware import refusal_response as refusal_response
from .token_factory import StaticTokenIssuer as StaticTokenIssuer
from .token_factory import TokenFactory as TokenFactory
from .types import KeyStore as KeyStore
from .types import StoredKey as StoredKey
from .types import TokenIssuer as TokenIssuer
from .types import UserInfoStore as UserInfoStore
from .verifier import BackstageIdentity as BackstageIdentity
from .verifier import IdentityVerifier as IdentityVerifier

__all__ = [
    "IDENTITY_ENVIRON_KEY",
    "BackstageIdentity",
    "IdentityMiddleware",
    "IdentityVerifier",
    "KeyStore",
    "MemoryKeyStore",
    "SqlKeyStore",
    "StaticKeyStore",
    "StaticTokenIssuer",
    "StoredKey",
    "TokenFactory",
    "TokenIssuer",
    "UserInfoStore",
    "authenticate",
    "key_store_from_config",
    "path_prefixes",
    "refusal_response",
]
