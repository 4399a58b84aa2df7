"""Talking to an OAuth 2 authorization server as a client, with oauthlib.

The back-channel mechanics the OAuth providers share
(:mod:`wsgiauth.providers.oauth2`, :mod:`wsgiauth.providers.oidc`): client
authentication at the token endpoint (RFC 6749 §2.3.1), building the
authorization URL (with the PKCE S256 challenge), reading the callback and checking
its issuer (RFC 9207), and turning a token response into an
:class:`~wsgiauth.oauth.types.OAuthSession`.
oauthlib does the OAuth encoding and :class:`~wsgiauth.http.HttpClient` the
wire; nothing here knows which provider it serves.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING
from typing import Any
from urllib.parse import quote_plus
from urllib.parse import urlsplit

from oauthlib.oauth2 import OAuth2Error
from oauthlib.oauth2 import WebApplicationClient
from requests.auth import HTTPBasicAuth

from ..errors import AuthenticationError
from ..errors import InputError
from ..errors import ServiceUnavailableError
from .types import OAuthSession

if TYPE_CHECKING:
    from webob import Request

    from ..config import Config
    from ..http import HttpClient

__all__ = [
    "TOKEN_ENDPOINT_AUTH_METHODS",
    "ClientCredentials",
    "authorization_url",
    "callback_code",
    "check_response_issuer",
    "read_absolute_url",
    "request_token",
    "session_from_token",
]

log = logging.getLogger(__name__)

#: How a client authenticates at the token endpoint (OIDC Core §9 names).
TOKEN_ENDPOINT_AUTH_METHODS = ("client_secret_basic", "client_secret_post", "none")

_FORM_HEADERS = {
    "Content-Type": "application/x-www-form-urlencoded",
    "Accept": "application/json",
}


def read_absolute_url(config: Config, key: str, *, required: bool = True) -> str | None:
    """An absolute http(s) URL from config, or a ``ConfigError`` naming the key."""
    value = config.get_string(key) if required else config.get_optional_string(key)
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise config.error(key, f"expected an absolute http(s) URL, got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class ClientCredentials:
    """A client's id, secret and how it proves them at the token endpoint."""

    client_id: str
    client_secret: str | None
    #: One of :data:`TOKEN_ENDPOINT_AUTH_METHODS`.
    auth_method: str = "client_secret_basic"

    @classmethod
    def from_config(cls, config: Config, *, auth_method: str | None = None) -> ClientCredentials:
        """Read ``clientId``, ``clientSecret`` and ``tokenEndpointAuthMethod``.

        :param auth_method: the method when ``tokenEndpointAuthMethod`` is absent.
        """
        client_id = config.get_string("clientId")
        method = config.get_optional_string("tokenEndpointAuthMethod") or auth_method
        method = method or "client_secret_basic"
        if method not in TOKEN_ENDPOINT_AUTH_METHODS:
            raise config.error(
                "tokenEndpointAuthMethod",
                f"expected one of {', '.join(TOKEN_ENDPOINT_AUTH_METHODS)}, got {method!r}",
            )
        if method == "none":
            secret = config.get_optional_string("clientSecret")
        else:
            secret = config.get_string("clientSecret")
        return cls(client_id=client_id, client_secret=secret, auth_method=method)

    def body_params(self, *, refresh: bool = False) -> dict[str, Any]:
        """Keyword arguments for oauthlib's ``prepare_request_body`` / ``prepare_refresh_body``.

        ``client_secret_basic`` sends the credentials in the header only; the other
        methods send ``client_id`` (and the secret, for ``client_secret_post``) in the body.
        """
        in_body = self.auth_method != "client_secret_basic"
        params: dict[str, Any] = {"include_client_id": in_body}
        if refresh and in_body:
            # prepare_refresh_body has no configured client_id of its own to include.
            params["client_id"] = self.client_id
        if self.auth_method == "client_secret_post":
            params["client_secret"] = self.client_secret
        return params

    def code_grant(self, code: str, *, redirect_uri: str, code_verifier: str | None) -> str:
        """The token request form of an authorization-code grant (RFC 6749 §4.1.3, RFC 7636)."""
        return WebApplicationClient(self.client_id).prepare_request_body(
            code=code, redirect_uri=redirect_uri, code_verifier=code_verifier, **self.body_params()
        )

    def refresh_grant(self, refresh_token: str, *, scope: str | None = None) -> str:
        """The token request form of a refresh grant (RFC 6749 §6); no scope unless given."""
        return WebApplicationClient(self.client_id).prepare_refresh_body(
            refresh_token=refresh_token, scope=scope, **self.body_params(refresh=True)
        )

    def http_auth(self) -> HTTPBasicAuth | None:
        """HTTP Basic credentials for ``client_secret_basic``, else None.

        RFC 6749 §2.3.1: id and secret are form-urlencoded before Basic encoding, so
        a secret holding ``:`` or non-ASCII survives (openid-client does the same).
        """
        if self.auth_method != "client_secret_basic" or self.client_secret is None:
            return None
        return HTTPBasicAuth(quote_plus(self.client_id), quote_plus(self.client_secret))

    def revocation_data(self, token: str, token_type_hint: str) -> dict[str, str]:
        """The form of an RFC 7009 revocation request, with client credentials in the body."""
        data = {"token": token, "token_type_hint": token_type_hint}
        if self.auth_method != "client_secret_basic":
            data["client_id"] = self.client_id
        if self.auth_method == "client_secret_post" and self.client_secret is not None:
            data["client_secret"] = self.client_secret
        return data


def authorization_url(endpoint: str, client_id: str, **params: str | None) -> str:
    """The authorization URL with ``response_type=code`` and ``params`` (None values dropped).

    oauthlib refuses ``http://`` unless the process-wide ``OAUTHLIB_INSECURE_TRANSPORT``
    is set, and a library must not flip a global. Which scheme the IdP uses is the
    operator's choice (Backstage allows plain http for local IdPs), so the URL is
    built on ``https`` and its own scheme is put back; oauthlib touches only the query.
    """
    fixed = tuple((key, value) for key, value in params.items() if value and key not in _PER_FLOW)
    per_flow = [(key, value) for key, value in params.items() if value and key in _PER_FLOW]
    if params.get("code_challenge"):
        per_flow.append(("code_challenge_method", "S256"))
    # oauthlib builds the fixed part (it knows the parameters); the four that change per
    # flow are appended with urllib, instead of having oauthlib re-parse the whole URL.
    fixed_url = _fixed_authorization_url(endpoint, client_id, fixed)
    return f"{fixed_url}{'&' if '?' in fixed_url else '?'}{_form_encode(per_flow)}"


#: Parameters that differ in every flow; the rest of the URL is built once per endpoint.
_PER_FLOW = frozenset({"state", "scope", "code_challenge", "nonce"})

#: What ``quote_plus`` never encodes: a value made only of these is its own encoding.
_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]*")


def _form_encode(pairs: list[tuple[str, str]]) -> str:
    """``urllib.parse.urlencode(pairs)`` for string pairs, byte for byte, in less time.

    The per-flow values are hex (``state``) or base64url (``code_challenge``,
    ``nonce``): the check that they need no quoting costs a fraction of
    ``quote_plus``, which goes through bytes whatever the value.
    """
    return "&".join(f"{_form_quote(key)}={_form_quote(value)}" for key, value in pairs)


def _form_quote(value: str) -> str:
    return value if _UNRESERVED.fullmatch(value) else _quote_plus(value)


#: Scopes repeat from flow to flow; a request may send any, so the cache is bounded.
_quote_plus = lru_cache(maxsize=256)(quote_plus)


@lru_cache(maxsize=32)
def _fixed_authorization_url(
    endpoint: str, client_id: str, params: tuple[tuple[str, str], ...]
) -> str:
    scheme, sep, rest = endpoint.partition(":")
    url = WebApplicationClient(client_id).prepare_request_uri(
        "https:" + rest if sep else endpoint, **dict(params)
    )
    return scheme + url.removeprefix("https") if sep else url


def callback_code(request: Request) -> str:
    """The authorization code from the callback (query, or form for ``form_post``).

    The IdP's own ``error`` is reported as Backstage does: "Authentication rejected, ...".
    """
    params = request.params
    error = params.get("error")
    if error:
        description = params.get("error_description")
        raise AuthenticationError(f"Authentication rejected, {description or error}")
    code = params.get("code")
    if not code:
        raise InputError("Authentication failed, the callback has no authorization code")
    return str(code)


def check_response_issuer(request: Request, issuer: str, *, promised: bool) -> None:
    """RFC 9207: the authorization response's ``iss`` must be this provider's ``issuer``.

    Call it first in ``authenticate``, before :func:`callback_code`: a mixed-up
    response's code must never reach this provider's token endpoint, and another
    server's error must not be reported as this IdP's.

    Mix-up attack: with several identity providers behind one callback URL (one per
    environment, say), a malicious one can send the user on to an honest one and then
    receive the honest code at its own token endpoint. ``iss`` names who really
    answered. It is read from the query and, for ``form_post``, the form.

    :param issuer: the issuer this flow went to (the discovery document's ``issuer``).
    :param promised: the provider's metadata has
        ``authorization_response_iss_parameter_supported: true``, so a response
        without ``iss`` is refused.
    :raises AuthenticationError: several issuers, none when promised, or another one.
    """
    failed = "Authentication failed, the authorization response"
    values = request.params.getall("iss")
    if len(values) > 1:
        # RFC 6749 §3.1 forbids repeated parameters; with two issuers, the check could
        # read the honest one while the response comes from the other.
        raise AuthenticationError(f"{failed} names several issuers")
    if not values:
        if promised:
            # This IdP promises iss in every response (RFC 9207 §2.4), so a response
            # without it comes from another server, one that does not send iss.
            raise AuthenticationError(f"{failed} has no issuer")
        return
    if values[0] != issuer:
        # The mix-up itself: another issuer answered than the one this flow went to.
        # Simple string comparison (RFC 9207 §2.4): no case folding, no trailing slash.
        log.warning("Authorization response from issuer %r, not %r", values[0], issuer)
        raise AuthenticationError(f"{failed} is from another issuer")


def request_token(
    http: HttpClient, url: str, credentials: ClientCredentials, body: str, *, failed: str
) -> dict[str, Any]:
    """POST a token request and parse the answer with oauthlib.

    :param body: the form from oauthlib's ``prepare_request_body`` / ``prepare_refresh_body``.
    :param failed: how a rejection starts, e.g. "Authentication failed".
    :raises AuthenticationError: the server refused (``invalid_grant``, bad client, ...).
    :raises ServiceUnavailableError: the server is down, slow, or answered nonsense.
    """
    response = http.request(
        "POST", url, headers=_FORM_HEADERS, data=body, auth=credentials.http_auth()
    )
    host = urlsplit(url).netloc
    if 300 <= response.status < 400:
        raise ServiceUnavailableError(f"Token endpoint at {host} answered {response.status}")
    content_type = response.headers.get("Content-Type", "")
    if response.ok and "x-www-form-urlencoded" not in content_type:
        response.json()  # a 2xx answer must be JSON: ServiceUnavailableError otherwise
    text = response.body.decode("utf-8", "replace")
    try:
        # A fresh client per call: oauthlib clients keep the last token on themselves.
        token = WebApplicationClient(credentials.client_id).parse_request_body_response(text)
    except OAuth2Error as exc:
        if not response.ok and exc.error == "missing_token":
            # A 4xx that is not an OAuth error body (an HTML error page, say).
            raise AuthenticationError(
                f"{failed}, the token endpoint at {host} answered {response.status}"
            ) from exc
        reason = f"{exc.error}: {exc.description}" if exc.description else exc.error
        raise AuthenticationError(f"{failed}, {reason}") from exc
    except ValueError as exc:  # e.g. a non-numeric expires_in
        raise ServiceUnavailableError(
            f"Token endpoint at {host} returned a malformed token response"
        ) from exc
    return dict(token)


def session_from_token(
    token: Mapping[str, Any], *, scope: str = "", refresh_token: str | None = None
) -> OAuthSession:
    """An :class:`OAuthSession` from a parsed token response.

    :param scope: used when the server does not echo the granted scope.
    :param refresh_token: kept when the server issues no new one (no rotation).
    """
    granted = token.get("scope")
    if isinstance(granted, list | tuple):
        granted = " ".join(str(item) for item in granted)
    expires_in = token.get("expires_in")
    refresh_expires_in = token.get("refresh_expires_in")
    return OAuthSession(
        access_token=str(token["access_token"]),
        token_type=str(token.get("token_type") or "Bearer"),
        scope=str(granted or scope),
        id_token=token.get("id_token") or None,
        expires_in_seconds=int(expires_in) if expires_in is not None else None,
        refresh_token=token.get("refresh_token") or refresh_token,
        refresh_token_expires_in_seconds=(
            int(refresh_expires_in) if isinstance(refresh_expires_in, int | float) else None
        ),
    )
