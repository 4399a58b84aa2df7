"""A fake identity provider on 127.0.0.1, for the full popup flow of each provider.

It speaks OAuth 2 as providers document it, over real HTTP:

- an authorize endpoint that consents at once for :attr:`LoopbackIdp.user` (or
  denies, when told to), redirecting to the ``redirect_uri`` with a code and the state;
- a token endpoint for the code and refresh grants that checks the client
  (Basic or form), the redirect URI and the PKCE verifier, and rotates refresh tokens;
- JSON APIs (``/user``, ``/user/emails`` ...) answered for the access token it issued,
  each provider test saying what they return;
- for OpenID providers: discovery, a JWKS and RS256 ID tokens carrying the nonce.

Faults on demand (:attr:`LoopbackIdp.fault`): ``access_denied`` at authorize,
``expired_code`` (``invalid_grant``), ``server_error`` (a 502 from every endpoint) and
``malformed`` (a 200 whose body is not JSON). Fixed hosts reach it through
:meth:`wsgiauth.http.HttpClient.reroute`; :meth:`LoopbackIdp.consent` plays the browser.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from urllib.parse import parse_qs
from urllib.parse import unquote_plus
from urllib.parse import urlencode
from urllib.parse import urlsplit
from wsgiref.simple_server import WSGIRequestHandler
from wsgiref.simple_server import WSGIServer
from wsgiref.simple_server import make_server

import jwt
import requests
from cryptography.hazmat.primitives.asymmetric import rsa
from webob import Request
from webob import Response

__all__ = ["Grant", "LoopbackIdp", "query_of"]

#: What an API handler gets (the grant behind the access token) and returns (JSON).
Api = Callable[["Grant", Request], Any]


@dataclass
class Grant:
    """One consent: who, for which client and scope; the tokens issued for it point here."""

    user: dict[str, Any]
    client_id: str
    redirect_uri: str
    scope: str
    code_challenge: str | None = None
    nonce: str | None = None
    params: dict[str, str] = field(default_factory=dict)


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


class LoopbackIdp:
    """A fake provider; configure the paths and APIs of the one it stands for.

    :param apis: path → handler giving the JSON for the grant of the bearer token.
    :param oidc_issuer_path: serve discovery, JWKS and ID tokens under this path.
    :param token_extra: added to every token response (``token_type`` is set).
    """

    def __init__(
        self,
        *,
        client_id: str = "client-id",
        client_secret: str = "client-secret",
        authorize_path: str = "/authorize",
        token_path: str = "/token",
        apis: Mapping[str, Api] | None = None,
        oidc_issuer_path: str | None = None,
        refresh_tokens: bool = True,
        expires_in: int | None = 3600,
        token_extra: Mapping[str, Any] | None = None,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.authorize_path = authorize_path
        self.token_path = token_path
        self.apis = dict(apis or {})
        if oidc_issuer_path is not None:  # userinfo: the ID token's user claims by default
            self.apis.setdefault("/userinfo", lambda grant, request: grant.user.get("id_token", {}))
        self.oidc_issuer_path = oidc_issuer_path
        self.refresh_tokens = refresh_tokens
        self.expires_in = expires_in
        self.token_extra = dict(token_extra or {})
        #: Who consents at authorize; tests change it between sign-ins.
        self.user: dict[str, Any] = {}
        #: A fault to answer with: access_denied, expired_code, server_error, malformed.
        self.fault: str | None = None
        #: Every request seen: (method, path, form or query, headers).
        self.requests: list[tuple[str, str, dict[str, str], dict[str, str]]] = []
        self.base_url = ""
        self._codes: dict[str, Grant] = {}
        self._access: dict[str, Grant] = {}
        self._refresh: dict[str, Grant] = {}
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._kid = secrets.token_hex(4)

    # -- serving ---------------------------------------------------------------------------

    @contextmanager
    def serving(self) -> Iterator[LoopbackIdp]:
        """Serve on a free loopback port for the ``with`` block."""
        server: WSGIServer = make_server("127.0.0.1", 0, self, handler_class=_Quiet)
        self.base_url = f"http://127.0.0.1:{server.server_port}"
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()

    @property
    def issuer(self) -> str:
        return self.base_url + (self.oidc_issuer_path or "")

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        form = dict(request.POST.items()) if request.method == "POST" else dict(request.GET)
        self.requests.append((request.method, request.path, form, dict(request.headers)))
        return self._route(request, form)(environ, start_response)

    def _route(self, request: Request, form: dict[str, str]) -> Response:
        path = request.path
        if self.fault == "server_error":
            return Response(status=502, body=b"<html>Bad gateway</html>", content_type="text/html")
        if path == self.authorize_path:
            return self._authorize(form)
        if path == self.token_path and request.method == "POST":
            return self._token(request, form)
        if self.oidc_issuer_path is not None:
            if path == self.oidc_issuer_path + "/.well-known/openid-configuration":
                return _json(self.discovery())
            if path == self.oidc_issuer_path + "/jwks":
                return _json({"keys": [self._public_jwk()]})
        if path in self.apis:
            grant = self._bearer(request)
            if grant is None:
                return _json({"message": "Bad credentials"}, status=401)
            if self.fault == "malformed":
                return Response(body=b"{not json", content_type="application/json")
            return _json(self.apis[path](grant, request))
        return _json({"error": "not_found"}, status=404)

    # -- endpoints -------------------------------------------------------------------------

    def discovery(self) -> dict[str, Any]:
        """The OpenID discovery document."""
        return {
            "issuer": self.issuer,
            "authorization_endpoint": self.base_url + self.authorize_path,
            "token_endpoint": self.base_url + self.token_path,
            "jwks_uri": self.issuer + "/jwks",
            "userinfo_endpoint": self.base_url + "/userinfo",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
        }

    def _authorize(self, query: dict[str, str]) -> Response:
        redirect_uri = query.get("redirect_uri", "")
        if query.get("client_id") != self.client_id or not redirect_uri:
            return _json({"error": "invalid_client"}, status=400)
        if query.get("response_type") != "code":
            return _json({"error": "unsupported_response_type"}, status=400)
        answer: dict[str, str] = {"state": query.get("state", "")}
        if self.fault == "access_denied":
            answer.update(error="access_denied", error_description="The user denied access")
        else:
            code = secrets.token_urlsafe(16)
            self._codes[code] = Grant(
                user=dict(self.user),
                client_id=self.client_id,
                redirect_uri=redirect_uri,
                scope=query.get("scope", ""),
                code_challenge=query.get("code_challenge"),
                nonce=query.get("nonce"),
                params=dict(query),
            )
            answer["code"] = code
        if self.oidc_issuer_path is not None:
            answer["iss"] = self.issuer  # RFC 9207, as OpenID providers send it
        response = Response(status=302)
        response.location = f"{redirect_uri}?{urlencode(answer)}"
        return response

    def _token(self, request: Request, form: dict[str, str]) -> Response:
        if not self._client_ok(request, form):
            return _json({"error": "invalid_client"}, status=401)
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            grant = self._codes.pop(form.get("code", ""), None)
            if grant is None or self.fault == "expired_code":
                return _json({"error": "invalid_grant", "error_description": "expired"}, 400)
            if form.get("redirect_uri") != grant.redirect_uri:
                return _json({"error": "invalid_grant", "error_description": "redirect"}, 400)
            if grant.code_challenge is not None and grant.code_challenge != _s256(
                form.get("code_verifier", "")
            ):
                return _json({"error": "invalid_grant", "error_description": "PKCE"}, 400)
        elif grant_type == "refresh_token":
            grant = self._refresh.pop(form.get("refresh_token", ""), None)
            if grant is None:
                return _json({"error": "invalid_grant"}, status=400)
        else:
            return _json({"error": "unsupported_grant_type"}, status=400)
        if self.fault == "malformed":
            return Response(body=b"<html>oops</html>", content_type="application/json")
        return _json(self._issue(grant))

    def _issue(self, grant: Grant) -> dict[str, Any]:
        access = secrets.token_urlsafe(16)
        self._access[access] = grant
        token: dict[str, Any] = {
            "access_token": access,
            "token_type": "bearer",
            "scope": grant.scope,
        }
        if self.expires_in is not None:
            token["expires_in"] = self.expires_in
        if self.refresh_tokens:
            refresh = secrets.token_urlsafe(16)
            self._refresh[refresh] = grant
            token["refresh_token"] = refresh
        if self.oidc_issuer_path is not None:
            token["id_token"] = self.id_token(grant)
        return {**token, **self.token_extra}

    def id_token(self, grant: Grant, **claims: Any) -> str:
        """An RS256 ID token for ``grant``: the user's claims, ``aud``, ``nonce``, times."""
        now = int(time.time())
        payload = {
            "iss": self.issuer,
            "aud": grant.client_id,
            "iat": now,
            "exp": now + 3600,
            **({"nonce": grant.nonce} if grant.nonce else {}),
            **grant.user.get("id_token", {}),
            **claims,
        }
        return jwt.encode(payload, self._key, algorithm="RS256", headers={"kid": self._kid})

    def _public_jwk(self) -> dict[str, Any]:
        jwk: dict[str, Any] = jwt.algorithms.RSAAlgorithm.to_jwk(
            self._key.public_key(), as_dict=True
        )
        return {**jwk, "kid": self._kid, "use": "sig", "alg": "RS256"}

    def _client_ok(self, request: Request, form: dict[str, str]) -> bool:
        authorization = request.headers.get("Authorization", "")
        if authorization.startswith("Basic "):
            decoded = base64.b64decode(authorization[6:]).decode()
            client_id, _, secret = decoded.partition(":")
            return (unquote_plus(client_id), unquote_plus(secret)) == (
                self.client_id,
                self.client_secret,
            )
        return (form.get("client_id"), form.get("client_secret")) == (
            self.client_id,
            self.client_secret,
        )

    def _bearer(self, request: Request) -> Grant | None:
        authorization = request.headers.get("Authorization", "")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() not in ("bearer", "token"):
            return None
        return self._access.get(token)

    # -- the browser -----------------------------------------------------------------------

    def consent(self, authorize_url: str) -> str:
        """Follow the app's redirect to authorize as a browser would; the callback URL.

        The authorize URL may name the real host (``github.com``): its path and query
        are sent here.
        """
        parts = urlsplit(authorize_url)
        answer = requests.get(
            f"{self.base_url}{parts.path}?{parts.query}", allow_redirects=False, timeout=10
        )
        assert answer.status_code == 302, answer.text
        return str(answer.headers["Location"])

    def authorize_query(self) -> dict[str, str]:
        """The query of the last authorize request."""
        for method, path, form, _ in reversed(self.requests):
            if method == "GET" and path == self.authorize_path:
                return form
        raise AssertionError("no authorize request")


def _json(body: Any, status: int = 200) -> Response:
    return Response(
        body=json.dumps(body).encode(), status=status, content_type="application/json"
    )


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def query_of(url: str) -> dict[str, str]:
    """A URL's query as a flat dict (last value wins)."""
    return {key: values[-1] for key, values in parse_qs(urlsplit(url).query).items()}
