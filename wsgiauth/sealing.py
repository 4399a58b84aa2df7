"""Sealing cookie values with ``auth.session.secret``, with rotation.

When secrets are configured, values wsgiauth keeps in the browser (refresh
tokens, PKCE verifiers) are sealed with Fernet (AES-CBC + HMAC, from
``cryptography``): the first secret seals, every secret unseals, so a new
secret can be put first without logging anyone out. Without a secret, values
are stored as Backstage stores them (HttpOnly, path-scoped, unsealed).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence

from cryptography.fernet import Fernet
from cryptography.fernet import InvalidToken
from cryptography.fernet import MultiFernet

__all__ = ["CookieSealer"]


def _fernet_key(secret: str) -> bytes:
    """A Fernet key from a secret of any length (domain-separated SHA-256)."""
    digest = hashlib.sha256(b"wsgiauth.cookie-seal\x00" + secret.encode("utf-8")).digest()
    return base64.urlsafe_b64encode(digest)


class CookieSealer:
    """Seals and unseals cookie values; a no-op when no secret is configured.

    :param secrets: newest first; the first seals, all of them unseal.
    """

    def __init__(self, secrets: Sequence[str] = ()) -> None:
        self._fernet = (
            MultiFernet([Fernet(_fernet_key(secret)) for secret in secrets]) if secrets else None
        )

    @property
    def enabled(self) -> bool:
        """Whether values are sealed."""
        return self._fernet is not None

    def seal(self, value: str) -> str:
        """Seal ``value`` (or return it unchanged when sealing is off)."""
        if self._fernet is None:
            return value
        # Without its "=" padding a token is all URL-safe characters: no percent-encoding.
        return self._fernet.encrypt(value.encode("utf-8")).decode("ascii").rstrip("=")

    def unseal(self, sealed: str, *, max_age: int | None = None) -> str | None:
        """Open a sealed value; ``None`` if tampered with, expired or sealed by an unknown key."""
        if self._fernet is None:
            return sealed
        try:
            token = sealed + "=" * (-len(sealed) % 4)
            return self._fernet.decrypt(token.encode("ascii"), ttl=max_age).decode("utf-8")
        except (InvalidToken, UnicodeError):
            return None
