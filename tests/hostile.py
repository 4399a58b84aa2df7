"""Hostile requests for the whole served stack, and the stack they are thrown at.

The stack is what a user deploys: ``AuthMiddleware`` (the ``fake`` OAuth provider and
``guest``) in front of ``IdentityMiddleware`` in front of an app with protected views.
:func:`requests` generates requests as a client on the wire may send them: any
method; paths of percent-encoded bytes, ``;``, ``..`` and encoded slashes; queries of
arbitrary bytes; odd ``Origin``, ``Cookie`` (chunk suffixes included) and
``Authorization`` headers, some huge; bodies by length, chunked or oversized.
``test_hostile_requests.py`` runs them in process, ``e2e/test_hostile_gunicorn.py``
over a socket to gunicorn.
"""

from __future__ import annotations

import json
import logging
import posixpath
import re
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from urllib.parse import quote
from urllib.parse import unquote_to_bytes

from hypothesis import strategies as st

from tests.conftest import APP_ORIGIN
from tests.conftest import FAKE_MODULE
from tests.conftest import base_config
from wsgiauth import AuthMiddleware
from wsgiauth import Config
from wsgiauth import IdentityMiddleware
from wsgiauth import create_auth_app
from wsgiauth.providers import guest

#: Protected prefixes, as configured (plain text).
PROTECTED = ("/private", "/privé")
AUTH_BASE = "/api/auth"
#: Set on a view's answer when it ran without an identity on a protected path.
BREACH_HEADER = "X-Unauthenticated-View"
#: A marker the crafted-token strategy replaces with a currently valid token.
VALID_TOKEN = "<valid>"

log = logging.getLogger(__name__)


def stack_config() -> dict[str, Any]:
    """The app-config of the stack: ``fake`` in development and ``guest``."""
    return base_config(
        providers={"fake": {"development": {"clientId": "id"}}, "guest": {}},
        keyStore={"provider": "memory"},
    )


def build_stack(config: Config) -> Any:
    """The served stack over ``config``, with the ``fake`` provider (tests only) mounted."""
    auth_app = create_auth_app(config, providers={"fake": FAKE_MODULE, "guest": guest.module})
    assert auth_app.verifier is not None
    guarded = IdentityMiddleware(
        protected_app, auth_app.verifier, protected=list(PROTECTED), cors=auth_app.cors
    )
    return AuthMiddleware(guarded, auth_app)


def routed_path(path_info: str) -> str:
    """The path a router would serve: PATH_INFO as UTF-8, slashes and dots resolved.

    An oracle of its own, not the middleware's matcher: if the two disagree, a
    protected view can be reached.
    """
    text = path_info.encode("latin-1").decode("utf-8", "replace")
    resolved = posixpath.normpath(re.sub("/{2,}", "/", text)) if text else "/"
    return resolved if resolved.startswith("/") else "/" + resolved


def is_protected(path_info: str) -> bool:
    path = routed_path(path_info)
    return any(path == prefix or path.startswith(prefix + "/") for prefix in PROTECTED)


def protected_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """The user's app: protected views report (and log) being run without an identity."""
    identity = environ.get("wsgiauth.identity")
    headers = [("Content-Type", "application/json")]
    if is_protected(environ["PATH_INFO"]) and identity is None:
        log.error("protected view ran without an identity: %r", environ["PATH_INFO"])
        headers.append((BREACH_HEADER, "1"))
    body = json.dumps({"user": identity.user_entity_ref if identity else None}).encode()
    start_response("200 OK", headers)
    return [body]


# -- requests ----------------------------------------------------------------------------


@dataclass(frozen=True)
class HostileRequest:
    """One request as it goes on the wire (``target`` is path and query, as sent)."""

    method: str
    path: str  # percent-encoded, as sent
    query: bytes
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    #: "length" (Content-Length), "chunked", or "none" (no body framing at all).
    framing: str = "none"
    #: Extra body bytes past ``body`` that are never materialised in memory here.
    oversize: int = 0

    @property
    def path_info(self) -> str:
        """PATH_INFO as a server hands it on: percent-decoded bytes, read as latin-1."""
        return unquote_to_bytes(self.path).decode("latin-1")

    def with_token(self, token: str) -> HostileRequest:
        auth = self.headers.get("Authorization")
        if auth is None or VALID_TOKEN not in auth:
            return self
        headers = {**self.headers, "Authorization": auth.replace(VALID_TOKEN, token)}
        return HostileRequest(
            self.method, self.path, self.query, headers, self.body, self.framing, self.oversize
        )


_SEGMENTS = [
    "fake", "guest", "start", "handler", "frame", "refresh", "logout", ".well-known",
    "jwks.json", "openid-configuration", "v1", "userinfo", ".client", "wsgiauth.js",
    "private", "priv%C3%A9", "privé", "..", ".", "", ";", ";x=1", "%2F", "%2e%2e", "%2e",
    "%ff", "%00", "%c3", "%e9", "auth", "api", ".diagnostics",
]  # fmt: skip
_ROOTS = [
    "/api/auth/fake/start", "/api/auth/fake/handler/frame", "/api/auth/fake/refresh",
    "/api/auth/fake/logout", "/api/auth/guest/refresh", "/api/auth/guest/logout",
    "/api/auth/.well-known/jwks.json", "/api/auth/v1/userinfo", "/api/auth/.client/wsgiauth.js",
    "/api/auth", "/private", "/priv%C3%A9", "/privé", "/", "//api//auth/fake", "/x/../private",
    "/api/auth/;", "/PRIVATE", "/public", "/private%2Fx", "/api%2Fauth/fake/start",
    "/api/auth/.diagnostics",
]  # fmt: skip


def _quoted(data: bytes) -> str:
    return quote(data, safe="")


segments = st.one_of(st.sampled_from(_SEGMENTS), st.binary(max_size=6).map(_quoted))
paths = st.builds(
    lambda root, parts: root + "".join("/" + part for part in parts),
    st.sampled_from(_ROOTS),
    st.lists(segments, max_size=3) | st.just([]),
)

_VALUES = [
    "development", "production", APP_ORIGIN, APP_ORIGIN + "/back", "null", "http://[",
    "https://evil.example", "popup", "redirect", "00", "zz", "openid email", "²",
    APP_ORIGIN + "/x\r\nSet-Cookie: a=b", "x" * 3000,
]  # fmt: skip
_KEYS = [
    "env", "origin", "scope", "flow", "redirectUrl", "state", "code", "error", "iss", "x", "format",
]  # fmt: skip
values = st.one_of(
    st.sampled_from(_VALUES).map(lambda v: _quoted(v.encode())),
    st.binary(max_size=24).map(_quoted),
    st.binary(max_size=24).map(lambda b: b.hex()),  # hex, as a state is
)
queries = st.one_of(
    st.binary(max_size=40),  # raw bytes, as a client may put them in the request line
    st.builds(
        lambda env, pairs: (env + "&".join(f"{k}={v}" for k, v in pairs)).encode(),
        st.sampled_from(["", "env=development&"]),
        st.lists(st.tuples(st.sampled_from(_KEYS), values), max_size=5),
    ),
)

# Header values a server passes on: latin-1 text without CR, LF or NUL.
header_text = st.text(
    alphabet=st.characters(max_codepoint=255, exclude_characters="\r\n\x00"), max_size=60
)
_COOKIE_NAMES = [
    "fake-refresh-token", "fake-refresh-token-0", "fake-refresh-token-1",
    "fake-refresh-token-31", "fake-refresh-token-32", "fake-flow-0123456789ab",
    "fake-nonce", "fake-granted-scope", "fake-granted-scope-0", "guest-refresh-token",
]  # fmt: skip
cookies = st.lists(
    st.tuples(
        st.sampled_from(_COOKIE_NAMES),
        st.one_of(
            header_text.map(lambda v: v.replace(";", "")),
            st.sampled_from(["\u00b2.v.n1", "%D9%A3.v.n1", "1.v.", "x" * 5000, '"q"']),
        ),
    ),
    max_size=4,
).map(lambda pairs: "; ".join(f"{k}={v}" for k, v in pairs))
authorizations = st.one_of(
    st.sampled_from(
        [
            f"Bearer {VALID_TOKEN}",
            f"bearer {VALID_TOKEN}",
            "Bearer " + "W1tb" * 2000 + ".e30.AAAA",  # base64 of "[[[" ... nested JSON
            "Bearer a.b.c",
            "Bearer",
            "Basic dXNlcjpwYXNz",
            "Bearer " + "x" * 40_000,
            f"Bearer {VALID_TOKEN}x",
        ]
    ),
    header_text,
)
origins = st.one_of(
    st.sampled_from(
        [APP_ORIGIN, "null", "http://[", "https://evil.example", "http://localhost:99999",
         "http://xn--", "http://gra\u00df.example", " "]
    ),  # fmt: skip
    header_text,
)
headers = st.fixed_dictionaries(
    {},
    optional={
        "Origin": origins,
        "Cookie": cookies,
        "Authorization": authorizations,
        "X-Requested-With": st.sampled_from(["XMLHttpRequest", "fetch"]),
        "Access-Control-Request-Method": st.sampled_from(["GET", "POST", "DELETE"]),
        "Content-Type": st.sampled_from(
            ["application/x-www-form-urlencoded", "application/json", "multipart/form-data"]
        ),
        "X-Huge": st.just("h" * 20_000),
    },
)
methods = st.sampled_from(["GET", "POST", "OPTIONS", "HEAD", "PUT", "DELETE", "PATCH"])


@st.composite
def requests(draw: st.DrawFn, *, max_oversize: int = 200_000) -> HostileRequest:
    """A hostile request; ``max_oversize`` bounds the bytes streamed past the body."""
    framing = draw(st.sampled_from(["none", "length", "chunked"]))
    body = b"" if framing == "none" else draw(st.binary(max_size=64))
    oversize = draw(st.sampled_from([0, 0, 0, 70_000, max_oversize])) if framing != "none" else 0
    method = draw(methods)
    drawn = draw(headers)
    if method == "OPTIONS" and draw(st.booleans()):  # make preflights common, forged or not
        drawn["Access-Control-Request-Method"] = draw(st.sampled_from(["GET", "POST"]))
    return HostileRequest(
        method=method,
        path=draw(paths),
        query=draw(queries),
        headers=drawn,
        body=body,
        framing=framing,
        oversize=oversize,
    )
