"""The OAuth ``state`` parameter: hex of URL-encoded form data (spec §2).

Backstage encodes the flow's state as lowercase hex of the UTF-8 bytes of an
``application/x-www-form-urlencoded`` string. It is not base64 or JSON; we keep
the exact shape so a state made by either side decodes on the other.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl
from urllib.parse import quote_plus

from ..audit import refused
from ..errors import InputError
from ..errors import NotAllowedError

if TYPE_CHECKING:
    from webob import Request

__all__ = [
    "MAX_PARAM_LENGTHS",
    "callback_state",
    "decode_oauth_state",
    "encode_oauth_state",
    "query_param",
]

#: A state is a handful of short fields; anything far larger is hostile. The callback
#: query (state, code and the provider's extras) must stay under the auth app's 8 KB.
MAX_STATE_LENGTH = 8192

#: The longest value (in characters) of each query parameter that reaches the ``state``,
#: the provider's authorization URL or a cookie. Past it, 400: nothing a request sends
#: may grow a ``Location`` or ``Set-Cookie`` header without bound.
MAX_PARAM_LENGTHS: Mapping[str, int] = {
    "env": 64,
    "flow": 16,
    "origin": 256,
    "redirectUrl": 1024,
    "scope": 1024,
}


def query_param(query: Mapping[str, str], name: str) -> str | None:
    """The parameter ``name`` of ``query`` (``request.GET``), refused (400) past its
    :data:`MAX_PARAM_LENGTHS`."""
    value = query.get(name)
    if value is not None and len(value) > MAX_PARAM_LENGTHS[name]:
        raise InputError(
            f"Query parameter '{name}' is too long, at most {MAX_PARAM_LENGTHS[name]} characters"
        )
    return value


def callback_state(request: Request) -> str:
    """The encoded ``state`` a callback carries; ``""`` when it has none.

    Most providers send it in the query. A POSTed callback carries it in the form:
    as ``state`` (OpenID Connect ``form_post``) or as ``RelayState`` (SAML's
    HTTP-POST binding, which names the same round-tripped value so).
    """
    state: object = request.GET.get("state")
    if state is None and request.method == "POST":
        try:
            form = request.POST
        except ValueError:  # a body WebOb cannot parse: a multipart without its boundary
            return ""
        state = form.get("state") or form.get("RelayState")
    return state if isinstance(state, str) else ""


def encode_oauth_state(state: Mapping[str, str | None]) -> str:
    """Encode ``state`` (fields with value ``None`` dropped) as Backstage does.

    A state past :data:`MAX_STATE_LENGTH` is refused here (400), at ``start``: the
    callback would refuse it after the user signed in at the provider.
    """
    pairs = [(key, value) for key, value in state.items() if value is not None]
    encoded = "&".join(f"{_quote(key)}={_quote(value)}" for key, value in pairs).encode().hex()
    if len(encoded) > MAX_STATE_LENGTH:
        raise InputError("Request parameters are too long to fit the OAuth state")
    return encoded


def _quote(value: str) -> str:
    """``URLSearchParams`` leaves ``*`` alone and encodes ``~``; ``quote_plus`` does the reverse.

    The nonce (standard base64, new in every flow) is translated without ``quote_plus``
    and kept out of the cache, where it would push out the values that do repeat.
    """
    if _PLAIN.fullmatch(value):
        return value
    if _BASE64.fullmatch(value):
        return value.replace("+", "%2B").replace("/", "%2F").replace("=", "%3D")
    return _quote_repeating(value)


#: Characters ``_quote`` keeps as they are; with them, the three of standard base64 it escapes.
_PLAIN = re.compile(r"[A-Za-z0-9_.*-]*")
_BASE64 = re.compile(r"[A-Za-z0-9_.*+/=-]*")


@lru_cache(maxsize=256)  # env, origin, flow and scope repeat from flow to flow
def _quote_repeating(value: str) -> str:
    return quote_plus(value, safe="*").replace("~", "%7E")


def decode_oauth_state(encoded: str) -> dict[str, str]:
    """Decode a state made by :func:`encode_oauth_state` and check its required fields.

    Anything that is not hex of UTF-8 form data fails like Backstage's
    truncated decode does: ``NotAllowedError`` "OAuth state is invalid, missing env".
    """
    try:
        if len(encoded) > MAX_STATE_LENGTH:
            raise ValueError("state too long")
        text = binascii.unhexlify(encoded).decode("utf-8")
        state = dict(parse_qsl(text, keep_blank_values=True, max_num_fields=64))
    except ValueError:
        state = {}
    if not state.get("env"):
        raise refused(NotAllowedError("OAuth state is invalid, missing env"))
    if not state.get("nonce"):
        raise refused(NotAllowedError("OAuth state is invalid, missing nonce"))
    return state
