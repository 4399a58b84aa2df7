"""``/userinfo``, ``/revoke`` (RFC 7009) and ``/end-session`` (RP-initiated logout).

Userinfo takes a live access token in the ``Authorization`` header only. Revocation
of a refresh token ends its whole grant; of an access token, that token. End-session
ends the grant named by a valid ``id_token_hint`` (its ``sid``) and returns to
``post_logout_redirect_uri`` only if the client registered it exactly.
"""

from __future__ import annotations

import html
from urllib.parse import urlencode
from urllib.parse import urlsplit

import jwt
from webob import Request
from webob import Response

from .authorize import BANNER
from .context import IdpContext
from .context import OAuthError
from .context import form_of
from .context import json_response
from .token import authenticate_client

__all__ = ["end_session", "revoke", "userinfo"]


def userinfo(request: Request, idp: IdpContext) -> Response:
    """``GET``/``POST /userinfo`` with ``Authorization: Bearer <access token>``."""
    scheme, _, access_token = request.headers.get("Authorization", "").partition(" ")
    grant = idp.store.access_grant(access_token) if scheme.lower() == "bearer" else None
    if grant is None:
        error = OAuthError("invalid_token", "A live access token is required.", 401)
        error.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
        raise error
    return json_response(idp.users[grant.user_ref].claims(grant.scopes))


def revoke(request: Request, idp: IdpContext) -> Response:
    """``POST /revoke``: 200 whatever the token, as RFC 7009 §2.2 asks."""
    client = authenticate_client(request, idp)
    token = form_of(request).get("token", "")
    grant = idp.store.refresh_grant(token) or idp.store.access_grant(token)
    if grant is not None and grant.client_id == client.client_id:
        if idp.store.refresh_grant(token) is not None:
            idp.store.revoke_grant(grant.id)
        else:
            idp.store.revoke_access_token(token)
    return Response(status=200, body=b"")


def end_session(request: Request, idp: IdpContext) -> Response:
    """``GET``/``POST /end-session``: end the hinted grant, then redirect or say so."""
    params = {**request.GET, **form_of(request)} if request.method == "POST" else dict(request.GET)
    hint = params.get("id_token_hint")
    client_id = params.get("client_id")
    if hint:
        try:
            claims = idp.keys.verify(hint, issuer=idp.issuer)
        except jwt.PyJWTError:
            return _signed_out(400, "The id_token_hint is not a token this IdP issued.")
        if client_id and claims["aud"] != client_id:
            return _signed_out(400, "The id_token_hint was issued to another client.")
        client_id = claims["aud"]
        if isinstance(claims.get("sid"), str):
            idp.store.revoke_grant(claims["sid"])
    target = params.get("post_logout_redirect_uri")
    if target:
        client = idp.clients.get(client_id or "")
        if client is None or target not in client.post_logout_redirect_uris:
            return _signed_out(400, "post_logout_redirect_uri is not registered for the client.")
        query = {"state": params["state"]} if "state" in params else {}
        separator = "&" if urlsplit(target).query else "?"
        location = f"{target}{separator}{urlencode(query)}" if query else target
        return Response(status=303, location=location)
    return _signed_out(200, "You are signed out.")


def _signed_out(status: int, message: str) -> Response:
    body = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Signed out - fake IdP'
        f'</title></head><body><p role="alert">{html.escape(BANNER)}</p>'
        f"<h1>{'Signed out' if status == 200 else 'Refused'}</h1>"
        f"<p>{html.escape(message)}</p></body></html>"
    )
    response = Response(body=body, status=status, content_type="text/html", charset="utf-8")
    response.headers["Content-Security-Policy"] = "default-src 'none'; frame-ancestors 'none'"
    response.headers["Cache-Control"] = "no-store"
    return response
