"""Which web origins may receive sign-in results (spec §12.1).

An origin is allowed if it equals the origin of ``app.baseUrl`` or matches one
of the ``auth.experimentalExtraAllowedOrigins`` globs (minimatch with
``nocase`` and ``noglobstar``: ``*`` and ``?`` never cross a ``/``).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from collections.abc import Sequence
from functools import lru_cache
from urllib.parse import urlsplit

__all__ = ["create_origin_filter", "origin_of"]

#: WHATWG forbidden domain code points (C0 controls are checked apart).
_FORBIDDEN_HOST_CHARS = frozenset(" #%/:<>?@[\\]^|\x7f")


@lru_cache(maxsize=256)  # the same few origins arrive on every request
def origin_of(url: str) -> str:
    """``new URL(url).origin``: scheme, host, non-default port; ``ValueError`` if not absolute.

    Like the WHATWG parser, ``\\`` counts as ``/`` (so ``http://evil\\@good`` is
    evil's origin, not good's), IPv6 hosts are compressed, non-ASCII hosts become
    punycode, and hosts holding characters a browser refuses are rejected.
    """
    parts = urlsplit(url.replace("\\", "/"))
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an absolute http(s) URL: {url!r}")
    port = parts.port  # raises ValueError on a bad port
    host = parts.hostname
    if parts.netloc.rpartition("@")[2].startswith("["):
        if "%" in host:
            raise ValueError(f"zone id in host: {url!r}")
        host = f"[{ipaddress.IPv6Address(host).compressed}]"  # rejects IPvFuture too
    else:
        if not host.isascii():
            host = host.encode("idna").decode("ascii")  # UnicodeError is a ValueError
        if any(char in _FORBIDDEN_HOST_CHARS or char < " " for char in host):
            raise ValueError(f"forbidden character in host: {url!r}")
    default = {"http": 80, "https": 443}[parts.scheme]
    return f"{parts.scheme}://{host}" + (f":{port}" if port is not None and port != default else "")


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
