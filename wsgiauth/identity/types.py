"""Seams of the identity half: key stores and token issuers (spec §9)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from typing import Protocol
from typing import runtime_checkable

from ..types import TokenParams

__all__ = ["KeyStore", "RotatableKeyStore", "StoredKey", "TokenIssuer", "UserInfoStore"]


@dataclass(frozen=True, slots=True)
class StoredKey:
    """A public signing key as published, and when it was made."""

    #: The public JWK, with ``kid`` and ``alg`` (and ``use: sig`` for static keys).
    key: dict[str, Any]
    #: Epoch seconds.
    created_at: float


class KeyStore(Protocol):
    """Where each process publishes the public half of its signing keys."""

    def add_key(self, key: dict[str, Any]) -> None:
        """Publish a public JWK (it has a ``kid``); raise ``ServiceUnavailableError`` if down."""
        ...

    def list_keys(self) -> list[StoredKey]:
        """Every published key, oldest first."""
        ...

    def remove_keys(self, kids: Sequence[str]) -> None:
        """Forget keys that no token can need any more."""
        ...


@runtime_checkable
class RotatableKeyStore(KeyStore, Protocol):
    """A key store that also carries a rotation mark, read by every process that shares it.

    ``wsgiauth keys rotate`` sets the mark; a :class:`~wsgiauth.identity.token_factory.TokenFactory`
    whose signing key was made before it replaces that key (see its docstring).
    """

    def request_rotation(self, at: float) -> None:
        """Ask every process to stop signing with keys made before ``at`` (epoch seconds)."""
        ...

    def rotation_requested_at(self) -> float | None:
        """The last mark set (epoch seconds), None if none ever was."""
        ...


class UserInfoStore(Protocol):
    """The claims of each issued token, for ``/v1/userinfo`` (Backstage ``user_info``)."""

    def save_user_info(self, sub: str, claims: dict[str, Any]) -> None: ...

    def get_user_info(self, sub: str) -> dict[str, Any] | None: ...


class TokenIssuer(Protocol):
    """Issues identity tokens (Backstage ``TokenIssuer``)."""

    def issue_token(self, params: TokenParams) -> str: ...

    def list_public_keys(self) -> list[dict[str, Any]]:
        """The JWKs a verifier may need now (published for three token lifetimes)."""
        ...
