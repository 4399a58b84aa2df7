"""The generic OAuth 2 provider (Backstage's ``oauth2`` module) and the token-endpoint client.

:class:`OAuth2Authenticator` signs users in with any authorization server
that speaks the authorization-code grant: it sends the browser to
``authorizationUrl``, trades the code at ``tokenUrl`` and, if ``profileUrl``
is set, reads the user's profile from there. Unlike Backstage (whose passport
strategy sends no PKCE), PKCE S256 is on by default; ``pkce: false`` turns it
off for the rare server that rejects it.

The back-channel pieces shared with :mod:`wsgiauth.providers.oidc` live here
too: client authentication at the token endpoint (RFC 6749 §2.3.1), building
the authorization URL, reading the callback, and turning a token response
into an :class:`~wsgiauth.oauth.types.OAuthSession`. All of them use oauthlib
for the OAuth encoding and :class:`~wsgiauth._http.HttpClient` for the wire.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING
from typing import Any
from urllib.parse import quote_plus
from urllib.parse import urlencode
from urllib.parse import urlsplit

from oauthlib.oauth2 import OAuth2Error
from oauthlib.oauth2 import WebApplicationClient
from requests.auth import HTTPBasicAuth

from ..errors import AuthenticationError
from ..errors import InputError
from ..errors import ServiceUnavailableError
from ..oauth.provider_factory import create_oauth_provider_factory
from ..oauth.types import OAuthAuthenticatorResult
from ..oauth.types import OAuthSession
from ..oauth.types import OAuthStartResponse
from ..registry import ProviderModule
from ..types import ProfileInfo

if TYPE_CHECKING:
    from typing import Self

    from webob import Request

    from .._http import HttpClient
    from ..config import Config
    from ..oauth.types import OAuthAuthenticateInput
    from ..oauth.types import OAuthRefreshInput
    from ..oauth.types import OAuthStartInput

__all__ = [
    "TOKEN_ENDPOINT_AUTH_METHODS",
    "ClientCredentials",
    "OAuth2Authenticator",
    "authorization_url",
    "callback_code",
    "module",
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


def _read_prompt(config: Config, default: str) -> str | None:
    """The ``prompt`` parameter to send; the value ``auto`` sends none (as Backstage)."""
    prompt = config.get_optional_string("prompt") or default
    return None if prompt == "auto" else prompt


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
    return f"{fixed_url}{'&' if '?' in fixed_url else '?'}{urlencode(per_flow)}"


#: Parameters that differ in every flow; the rest of the URL is built once per endpoint.
_PER_FLOW = frozenset({"state", "scope", "code_challenge", "nonce"})


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


def _dotted(document: Any, path: str) -> Any:
    """The value at a dotted path (``data.attributes.email``, ``emails.0``) or None."""
    value = document
    for part in path.split("."):
        if isinstance(value, Mapping):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


#: ``profileMapping`` fields and their default paths into the profile response.
PROFILE_FIELDS: Mapping[str, str | None] = {
    "email": "email",
    "displayName": "name",
    "picture": "picture",
    "id": None,
    "username": None,
}


class OAuth2Authenticator:
    """Backstage's generic ``oauth2`` provider: authorization code (with PKCE) and refresh."""

    persist_scopes = True
    required_scopes: tuple[str, ...] = ()

    def __init__(
        self,
        *,
        credentials: ClientCredentials,
        callback_url: str,
        authorization_url: str,
        token_url: str,
        http: HttpClient,
        profile_url: str | None = None,
        profile_mapping: Mapping[str, str] | None = None,
        disable_refresh: bool = False,
        pkce: bool = True,
        prompt: str | None = "consent",
    ) -> None:
        self.credentials = credentials
        self.callback_url = callback_url
        self.authorization_url = authorization_url
        self.token_url = token_url
        self.http = http
        self.profile_url = profile_url
        mapping = {key: path for key, path in PROFILE_FIELDS.items() if path}
        self.profile_mapping: Mapping[str, str] = {**mapping, **(profile_mapping or {})}
        self.disable_refresh = disable_refresh
        self.pkce = pkce
        self.prompt = prompt

    @classmethod
    def from_config(cls, config: Config, *, callback_url: str, http: HttpClient) -> Self:
        """Build from ``auth.providers.oauth2.<env>``; every bad key fails here, at startup."""
        if config.has("scope"):
            raise config.error(
                "scope",
                'The oauth2 provider no longer supports the "scope" configuration option. '
                'Please use the "additionalScopes" option instead.',
            )
        method = config.get_optional_string("tokenEndpointAuthMethod")
        basic = config.get_optional_bool("includeBasicAuth")
        if method and basic is not None and (method == "client_secret_basic") != basic:
            raise config.error(
                "includeBasicAuth", f"contradicts tokenEndpointAuthMethod {method!r}; set one"
            )
        # Backstage's ``includeBasicAuth: false`` puts the credentials in the body.
        default_method = "client_secret_post" if basic is False else "client_secret_basic"
        mapping_config = config.get_optional_config("profileMapping")
        mapping: dict[str, str] = {}
        for key in mapping_config.keys() if mapping_config else ():
            if key not in PROFILE_FIELDS:
                raise mapping_config.error(  # type: ignore[union-attr]
                    key, f"unknown profile field; expected one of {', '.join(PROFILE_FIELDS)}"
                )
            mapping[key] = mapping_config.get_string(key)  # type: ignore[union-attr]
        profile_url = read_absolute_url(config, "profileUrl", required=False)
        if mapping_config is not None and profile_url is None:
            raise config.error("profileMapping", "needs profileUrl to read the profile from")
        return cls(
            credentials=ClientCredentials.from_config(config, auth_method=default_method),
            callback_url=callback_url,
            authorization_url=str(read_absolute_url(config, "authorizationUrl")),
            token_url=str(read_absolute_url(config, "tokenUrl")),
            http=http,
            profile_url=profile_url,
            profile_mapping=mapping,
            disable_refresh=bool(config.get_optional_bool("disableRefresh")),
            pkce=config.get_optional_bool("pkce") is not False,
            prompt=_read_prompt(config, "consent"),
        )

    def start(self, input: OAuthStartInput) -> OAuthStartResponse:  # noqa: A002 (protocol name)
        """Send the browser to ``authorizationUrl`` (with Backstage's ``access_type=offline``)."""
        return OAuthStartResponse(
            authorization_url(
                self.authorization_url,
                self.credentials.client_id,
                redirect_uri=self.callback_url,
                scope=input.scope,
                state=input.state,
                code_challenge=input.code_challenge if self.pkce else None,
                access_type="offline",
                prompt=self.prompt,
            )
        )

    def authenticate(self, input: OAuthAuthenticateInput) -> OAuthAuthenticatorResult:  # noqa: A002
        """Trade the callback's code for tokens, then read the profile."""
        code = callback_code(input.request)
        body = WebApplicationClient(self.credentials.client_id).prepare_request_body(
            code=code,
            redirect_uri=self.callback_url,
            code_verifier=input.code_verifier if self.pkce else None,
            **self.credentials.body_params(),
        )
        token = request_token(
            self.http, self.token_url, self.credentials, body, failed="Authentication failed"
        )
        session = session_from_token(token)
        return OAuthAuthenticatorResult(full_profile=self._profile(session), session=session)

    def refresh(self, input: OAuthRefreshInput) -> OAuthAuthenticatorResult:  # noqa: A002
        """Trade the refresh token for a new session (Backstage passes the scope along)."""
        if self.disable_refresh:
            raise InputError("Session refreshes have been disabled")
        body = WebApplicationClient(self.credentials.client_id).prepare_refresh_body(
            refresh_token=input.refresh_token,
            scope=input.scope or None,
            **self.credentials.body_params(refresh=True),
        )
        token = request_token(
            self.http,
            self.token_url,
            self.credentials,
            body,
            failed="The refresh token was rejected",
        )
        session = session_from_token(token, scope=input.scope, refresh_token=input.refresh_token)
        return OAuthAuthenticatorResult(full_profile=self._profile(session), session=session)

    def _profile(self, session: OAuthSession) -> dict[str, Any]:
        if self.profile_url is None:
            return {}
        return self.http.get_json(
            self.profile_url, headers={"Authorization": f"Bearer {session.access_token}"}
        )

    def profile_field(self, result: OAuthAuthenticatorResult, field: str) -> str | None:
        """A ``profileMapping`` field (``email``, ``id``, ``username``...) of a result, as text.

        Sign-in resolvers use it for the fields :class:`ProfileInfo` has no room for.
        """
        path = self.profile_mapping.get(field)
        value = _dotted(result.full_profile, path) if path else None
        if value is None or isinstance(value, Mapping | list):
            return None
        return str(value)

    def default_profile_transform(self, result: OAuthAuthenticatorResult) -> ProfileInfo:
        """Email, display name and picture through ``profileMapping``."""
        return ProfileInfo(
            email=self.profile_field(result, "email"),
            display_name=self.profile_field(result, "displayName"),
            picture=self.profile_field(result, "picture"),
        )


#: The built-in ``oauth2`` provider.
module = ProviderModule(
    provider_id="oauth2", factory=create_oauth_provider_factory(OAuth2Authenticator)
)
