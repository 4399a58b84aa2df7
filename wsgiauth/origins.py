"""Which web origins may receive sign-in results (spec §12.1).

An origin is allowed if it equals the origin of ``app.baseUrl`` or matches one
of the ``auth.experimentalExtraAllowedOrigins`` globs (minimatch with
``nocase`` and ``noglobstar``: ``*`` and ``?`` never cross a ``/``).

Stricter than Backstage in two ways:

- Every pattern must start with ``http://`` or ``https://``, checked when the
  config is loaded. A bare ``*`` would also match ``null``, the one origin that
  every sandboxed iframe, ``file:`` and ``data:`` page shares, and hand any
  site's sandboxed iframe our credentialed answers. And an origin that is not a
  serialised http(s) origin (``null`` first of all) matches no filter, whatever
  its patterns.
- Non-ASCII hosts are compared the way browsers serialise them: UTS #46 with
  non-transitional processing (WHATWG URL's *domain to ASCII*), through the
  ``idna`` package. Python's own ``"idna"`` codec is IDNA2003, which folds
  ``graß`` to ``grass``; a browser keeps ``graß`` (``xn--gra-7ka``) apart, so
  with the codec an allow-list for ``grass.example`` would admit the origin of
  whoever owns ``graß.example``. The same mapping applies wherever a host is
  read (``app.baseUrl``, ``?origin=``, the patterns' hosts). Where ``idna`` refuses
  a host that a browser would take (an emoji label, say), the URL or pattern is
  refused: stricter than a browser, never looser.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import idna

if TYPE_CHECKING:
    from .config import Config

__all__ = ["checked_origin_patterns", "create_origin_filter", "origin_of"]

#: WHATWG forbidden domain code points (C0 controls are checked apart).
_FORBIDDEN_HOST_CHARS = frozenset(" #%/:<>?@[\\]^|\x7f")


def _domain_to_ascii(host: str) -> str:
    """A non-ASCII host as a browser sends it: UTS #46 mapping, non-transitional, punycode.

    ``idna`` maps non-transitionally by default (its ``transitional`` flag is deprecated,
    as in UTS #46 itself), so ``ß`` stays ``ß`` instead of becoming ``ss``. Its
    ``IDNAError`` is a ``ValueError``. It refuses a label past 1,024 characters before
    mapping it, which matters as hosts come from query strings (``origin`` is also
    capped at 256 characters before it gets here).
    """
    return idna.encode(host, uts46=True).decode("ascii")


@lru_cache(maxsize=256)  # the same few origins arrive on every request
def origin_of(url: str) -> str:
    """``new URL(url).origin``: scheme, host, non-default port; ``ValueError`` if not absolute.

    Like the WHATWG parser, ``\\`` counts as ``/`` (so ``http://evil\\@good`` is
    evil's origin, not good's), IPv6 hosts are compressed, non-ASCII hosts become
    punycode as a browser makes them (UTS #46, non-transitional: see the module
    docstring), and hosts holding characters a browser refuses are rejected.
    """
    parts = urlsplit(url.replace("\\", "/"))
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an absolute http(s) URL: {url!r}")
    port = parts.port  # raises ValueError on a bad port
    host = parts.hostname
    netloc_host = parts.netloc.rpartition("@")[2]
    if netloc_host.startswith("["):
        if "%" in host:
            raise ValueError(f"zone id in host: {url!r}")
        host = f"[{ipaddress.IPv6Address(host).compressed}]"  # rejects IPvFuture too
    else:
        raw_host = netloc_host.partition(":")[0]
        if not raw_host.isascii():
            # UTS #46 as a browser, not IDNA2003 (which folds graß into grass): stops
            # the owner of a look-alike domain passing for an allowed one. Mapped from
            # the host as written, not urlsplit's str.lower(), which makes a final Σ
            # into ς where UTS #46 (and a browser) makes σ.
            host = _domain_to_ascii(raw_host)
        if any(char in _FORBIDDEN_HOST_CHARS or char < " " for char in host):
            raise ValueError(f"forbidden character in host: {url!r}")
    default = {"http": 80, "https": 443}[parts.scheme]
    return f"{parts.scheme}://{host}" + (f":{port}" if port is not None and port != default else "")


def _origin_pattern(pattern: str) -> str:
    """``pattern`` with a non-ASCII host in punycode; ``ValueError`` if it names no http(s) origin.

    Its host is mapped as :func:`origin_of` maps hosts, or a pattern written with
    ``graß`` would never match the origin a browser sends for it.
    """
    scheme, separator, rest = pattern.partition("://")
    # A pattern without its scheme (``*``, ``*.example.com``, ``example.com``) is refused:
    # stops ``*`` matching ``null`` (any site's sandboxed iframe) or any scheme's origin.
    if not separator or scheme.lower() not in ("http", "https") or not rest:
        raise ValueError(
            f"{pattern!r} is not an origin pattern: it must start with http:// or https://"
            " and name a host, as in https://*.example.com"
        )
    if rest.isascii():
        return pattern
    host, colon, port = rest.partition(":")
    labels = []
    for label in idna.uts46_remap(host, std3_rules=False).split("."):  # 。 counts as a dot
        if not label.isascii():
            if "*" in label or "?" in label:
                raise ValueError(
                    f"{pattern!r}: a wildcard cannot share a label with non-ASCII characters"
                    " (the punycode of a glob is no glob)"
                )
            label = _domain_to_ascii(label)
        labels.append(label)
    return f"{scheme}://{'.'.join(labels)}{colon}{port}"


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


def _serialised_origin(origin: str) -> str | None:
    """``origin`` in normal form if it is one as a browser sends it (ASCII, scheme://host[:port])."""
    if not origin.isascii():
        # Browsers send hosts in punycode; str.lower() would turn a Kelvin sign (U+212A)
        # into "k" and let a header no browser sends pass for an allowed origin.
        return None
    try:
        normal = origin_of(origin)
    except ValueError:
        return None
    return normal if normal == origin.lower() else None


def create_origin_filter(app_url: str, extra_patterns: Sequence[str] = ()) -> Callable[[str], bool]:
    """A predicate telling whether an origin (as a browser sends it) may receive results.

    :raises ValueError: ``app_url`` is not an absolute http(s) URL, or a pattern is no
        http(s) origin glob (it must start with ``http://`` or ``https://``).
    """
    app_origin = origin_of(app_url)
    patterns = [_glob_to_regex(_origin_pattern(pattern)) for pattern in extra_patterns]

    def is_origin_allowed(origin: str) -> bool:
        normal = _serialised_origin(origin)
        # `null` (sandboxed iframes, file: and data: pages, shared by all of them) and
        # anything else that is no http(s) origin never match: stops a loose glob
        # letting any site's sandboxed iframe read a credentialed answer.
        if normal is None:
            return False
        return normal == app_origin or any(p.fullmatch(normal) for p in patterns)

    return is_origin_allowed


def checked_origin_patterns(config: Config, key: str, patterns: Sequence[str]) -> list[str]:
    """``patterns``, read from ``key``, checked when the config is loaded.

    A bad pattern fails the deployment at startup with a :class:`ConfigError` naming
    ``key`` (with the list index when the config holds the list as read), rather
    than admitting ``null`` or never matching at request time.

    :raises ConfigError: a pattern that is no http(s) origin glob (it must start with
        ``http://`` or ``https://``).
    """
    indexed = config.get(key) == list(patterns)  # words split from one string have no index
    for index, pattern in enumerate(patterns):
        try:
            _origin_pattern(pattern)
        except ValueError as error:
            raise config.error(f"{key}[{index}]" if indexed else key, str(error)) from None
    return list(patterns)
