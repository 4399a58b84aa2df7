"""Scope arithmetic for start, callback and refresh (spec §3.4).

Scopes arrive split by whitespace, ``,`` or ``|``; the scope asked of the
provider is the union of requested, already granted, required and configured
additional scopes, de-duplicated in order and joined by single spaces.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["join_scopes", "split_scopes"]

_SEPARATORS = re.compile(r"[\s|,]+")


def split_scopes(scope: str | None) -> list[str]:
    """Split a scope string on whitespace, ``,`` and ``|``."""
    return [part for part in _SEPARATORS.split(scope or "") if part]


def join_scopes(*groups: Iterable[str]) -> str:
    """The union of ``groups`` in first-seen order, joined by spaces."""
    return " ".join(dict.fromkeys(scope for group in groups for scope in group))
