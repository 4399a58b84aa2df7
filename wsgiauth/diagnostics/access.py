"""Who may see the diagnostics page: anyone in development, elsewhere only a token holder.

It is served in ``development``, and elsewhere only when ``auth.diagnostics.enabled``
is set, and then only with ``auth.diagnostics.token`` as a bearer token, compared in
constant time so that how much of a guess matched never shows in the time taken.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import AuthenticationError

if TYPE_CHECKING:
    from webob import Request

    from ..config import Config

__all__ = ["MIN_TOKEN_LENGTH", "DiagnosticsAccess", "diagnostics_access_from_config"]

#: The least length of ``auth.diagnostics.token``: it guards the page outside development.
MIN_TOKEN_LENGTH = 32

_ENABLED = "auth.diagnostics.enabled"
_TOKEN = "auth.diagnostics.token"  # noqa: S105 - a config key, not a password


@dataclass(frozen=True, slots=True)
class DiagnosticsAccess:
    """Who may see the page: anyone in development without a token, else token holders."""

    #: ``auth.diagnostics.token``; None only in development, where the page is open.
    token: str | None

    def check(self, request: Request) -> None:
        """Raise ``AuthenticationError`` unless the request carries the token (if one is set)."""
        if self.token is None:
            return
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        # compare_digest: how much of a guess matched must not show in the time taken.
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode("utf-8"), self.token.encode("utf-8")
        ):
            raise AuthenticationError("The diagnostics page needs its token")


def diagnostics_access_from_config(config: Config, environment: str) -> DiagnosticsAccess | None:
    """The page's access rule from ``auth.diagnostics``; None when it is not served.

    :raises ConfigError: enabled outside development without a token of at least
        :data:`MIN_TOKEN_LENGTH` characters.
    """
    development = environment == "development"
    enabled = config.get_optional_bool(_ENABLED)
    if enabled is None:
        enabled = development
    if not enabled:
        return None
    token = config.get_optional_string(_TOKEN)
    if token is not None and len(token) < MIN_TOKEN_LENGTH:
        raise config.error(_TOKEN, f"must be at least {MIN_TOKEN_LENGTH} characters long")
    if token is None and not development:
        raise config.error(
            _TOKEN, f"required when {_ENABLED} is set outside development (auth.environment)"
        )
    return DiagnosticsAccess(token)
