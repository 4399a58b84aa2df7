"""``/token``: client authentication, the code grant with PKCE, refresh with rotation.

A confidential client authenticates with ``client_secret_basic`` or
``client_secret_post`` (one of them, never both); a public client sends its
``client_id`` only. A code is redeemed once, by the client it was issued to, with
the same ``redirect_uri`` and the PKCE verifier whose S256 hash is the challenge.
The answer carries an access token, a refresh token and an ID token (``nonce``
echoed, ``sid`` naming the grant) signed with the client's algorithm.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from typing import Any
from urllib.parse import unquote_plus

from webob import Request
from webob import Response

from .context import IdpContext
from .context import OAuthError
from .context import form_of
from .context import json_response
from .grants import ACCESS_TOKEN_TTL
from .grants import Grant
from .registry import FakeClient

__all__ = ["authenticate_client", "id_token", "token"]

#: RFC 7636 §4.1: 43 to 128 unreserved characters.
_VERIFIER = re.compile(r"[A-Za-z0-9._~-]{43,128}")


def token(request: Request, idp: IdpContext) -> Response:
    """``POST /token``: ``authorization_code`` or ``refresh_token``."""
    form = form_of(request)
    client = authenticate_client(request, idp)
    grant_type = form.get("grant_type")
    if grant_type == "authorization_code":
        return _code_grant(request, client, idp)
    if grant_type == "refresh_token":
        return _refresh_grant(request, client, idp)
    raise OAuthError("unsupported_grant_type", "Use authorization_code or refresh_token.")


def authenticate_client(request: Request, idp: IdpContext) -> FakeClient:
    """The client making the request; ``invalid_client`` (401) unless it proves who it is."""
    form = form_of(request)
    header = request.headers.get("Authorization", "")
    client_id: str | None
    secret: str | None
    if header:
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() != "basic" or "client_secret" in form:
            raise _invalid_client("Use one client authentication method.", basic=True)
        try:
            decoded = base64.b64decode(credentials, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise _invalid_client("Malformed Basic credentials.", basic=True) from None
        raw_id, sep, raw_secret = decoded.partition(":")
        if not sep:
            raise _invalid_client("Malformed Basic credentials.", basic=True)
        # RFC 6749 §2.3.1: both parts are form-urlencoded before base64.
        client_id, secret = unquote_plus(raw_id), unquote_plus(raw_secret)
        if form.get("client_id", client_id) != client_id:
            raise _invalid_client("client_id differs from the Basic credentials.", basic=True)
    else:
        client_id, secret = form.get("client_id"), form.get("client_secret")
    client = idp.clients.get(client_id or "")
    if client is None:
        raise _invalid_client("Unknown client.", basic=bool(header))
    if client.client_secret is None:
        if secret:
            raise _invalid_client("This is a public client: send no secret.", basic=bool(header))
        return client
    if not secret or not hmac.compare_digest(secret.encode(), client.client_secret.encode()):
        raise _invalid_client("Wrong client secret.", basic=bool(header))
    return client


def _invalid_client(description: str, *, basic: bool) -> OAuthError:
    error = OAuthError("invalid_client", description, 401)
    if basic:
        error.headers["WWW-Authenticate"] = 'Basic realm="fake-idp"'
    return error


def _code_grant(request: Request, client: FakeClient, idp: IdpContext) -> Response:
    form = form_of(request)
    issued = idp.store.redeem_code(form.get("code", ""))
    if issued is None:
        raise OAuthError("invalid_grant", "The code is unknown, expired or already used.")
    if issued.grant.client_id != client.client_id:
        idp.store.revoke_grant(issued.grant.id)
        raise OAuthError("invalid_grant", "The code was issued to another client.")
    if form.get("redirect_uri") != issued.redirect_uri:
        idp.store.revoke_grant(issued.grant.id)
        raise OAuthError("invalid_grant", "redirect_uri differs from the authorization request.")
    verifier = form.get("code_verifier", "")
    if not _VERIFIER.fullmatch(verifier):
        idp.store.revoke_grant(issued.grant.id)
        raise OAuthError("invalid_grant", "A PKCE code_verifier (RFC 7636) is required.")
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    computed = base64.urlsafe_b64encode(digest).rstrip(b"=")
    if not hmac.compare_digest(computed, issued.code_challenge.encode("ascii")):
        idp.store.revoke_grant(issued.grant.id)
        raise OAuthError("invalid_grant", "The code_verifier does not match the challenge.")
    return _tokens(issued.grant, client, idp, nonce=issued.nonce)


def _refresh_grant(request: Request, client: FakeClient, idp: IdpContext) -> Response:
    form = form_of(request)
    refresh_token = form.get("refresh_token", "")
    grant = idp.store.refresh_grant(refresh_token)
    if grant is not None and grant.client_id != client.client_id:
        raise OAuthError("invalid_grant", "The refresh token was issued to another client.")
    grant = idp.store.rotate_refresh(refresh_token)
    if grant is None:
        raise OAuthError("invalid_grant", "The refresh token is unknown, expired or was rotated.")
    if "scope" in form:
        asked = tuple(dict.fromkeys(form["scope"].split()))
        if not set(asked) <= set(grant.scopes) or "openid" not in asked:
            idp.store.revoke_grant(grant.id)
            raise OAuthError("invalid_scope", "A refresh cannot add scopes.")
        grant = Grant(
            client_id=grant.client_id,
            user_ref=grant.user_ref,
            scopes=asked,
            auth_time=grant.auth_time,
            id=grant.id,
        )
    return _tokens(grant, client, idp, nonce=None)


def _tokens(grant: Grant, client: FakeClient, idp: IdpContext, *, nonce: str | None) -> Response:
    access, refresh = idp.store.issue_tokens(grant)
    return json_response(
        {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": int(ACCESS_TOKEN_TTL),
            "refresh_token": refresh,
            "scope": " ".join(grant.scopes),
            "id_token": id_token(grant, client, idp, nonce=nonce),
        }
    )


def id_token(grant: Grant, client: FakeClient, idp: IdpContext, *, nonce: str | None) -> str:
    """The ID token of ``grant`` for ``client``, signed with its algorithm."""
    now = int(idp.store.now())
    claims: dict[str, Any] = {
        **idp.users[grant.user_ref].claims(grant.scopes),
        "iss": idp.issuer,
        "aud": client.client_id,
        "azp": client.client_id,
        "iat": now,
        "exp": now + int(ACCESS_TOKEN_TTL),
        "auth_time": grant.auth_time,
        "sid": grant.id,
    }
    if nonce is not None:
        claims["nonce"] = nonce
    return idp.keys.sign(claims, client.id_token_signed_response_alg)
