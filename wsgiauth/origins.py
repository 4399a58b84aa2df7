"""Which web origins may receive sign-in results (spec §12.1).

An origin is allowed if it equals the origin of ``app.baseUrl`` or matches one
of the ``auth.experimentalExtraAllowedOrigins`` globs (minimatch with
``nocase`` and ``noglobstar``: ``*`` and ``?`` never cross a ``/``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from collections.abc import Sequence
from urllib.parse import urlsplit

__all__ = ["create_origin_filter", "origin_of"]


def origin_of(url: str) -> str:
    """``new URL(url).origin``: scheme, host, non-default port; ``ValueError`` if not absolute."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an absolute http(s) URL: {url!r}")
    port = parts.port  # raises ValueError on a bad port
    host = parts.hostname
    if ":" in host:
        host = f"[{host}]"
    default = {"http": 80, "https": 443}[parts.scheme]
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")


def _glob_to_regex(pattern: str) -> re.Pattern[str]:
    out = []
    for char in pattern:
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        else:
            out.append(re.escape(char))
    return re.compile("".join(out), re.IGNORECASE)


def create_origin_filter(app_url: str, extra_patterns: Sequence[str] = ()) -> Callable[[str], bool]:
    """A predicate telling whether an (already normalised) origin may receive results."""
    app_origin = origin_of(app_url)
    patterns = [_glob_to_regex(pattern) for pattern in extra_patterns]

    def is_origin_allowed(origin: str) -> bool:
        return origin == app_origin or any(p.fullmatch(origin) for p in patterns)

    return is_origin_allowed
