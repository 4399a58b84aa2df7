"""``/authorize`` and its sign-in page: who signs in, and the code that says so.

The request is checked in RFC 6749 §4.1.2.1's order. An unknown client or a
redirect URI that is not registered exactly gets an error page, never a redirect
(that would make the IdP an open redirector). Everything else wrong goes back to
the client as ``error=`` with ``state`` and ``iss`` (RFC 9207). PKCE with S256 is
required of every client, public or confidential.

The page lists the users; picking one posts the request's id, which must match
the cookie set with the page (the page was shown to this browser) and is taken
once. With ``auto_consent`` the code is issued at once, with no page.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import re
from urllib.parse import urlencode
from urllib.parse import urlsplit

from webob import Request
from webob import Response

from .context import IdpContext
from .context import form_of
from .grants import AuthorizationRequest
from .grants import Grant
from .grants import IssuedCode

__all__ = ["BANNER", "REQUEST_COOKIE", "authorize", "sign_in"]

#: The warning every page carries.
BANNER = "wsgiauth fake-idp: for development and tests only. Never use it to protect anything."
#: Prefix of the cookie that binds a sign-in page to the browser it was shown to.
REQUEST_COOKIE = "fake_idp_request"
#: RFC 7636 §4.2: BASE64URL(SHA256(verifier)), 43 characters.
_S256_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")
_MAX_PARAM = 2048


class _Refused(Exception):
    """An error for the client, sent back to its (checked) redirect URI."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


def authorize(request: Request, idp: IdpContext) -> Response:
    """``GET /authorize``: check the request, then show the page (or issue the code)."""
    params = request.GET
    for name, value in params.items():
        if len(value) > _MAX_PARAM:
            return _error_page(400, f"The {name} parameter is too long.")
    if any(len(params.getall(name)) > 1 for name in params):
        return _error_page(400, "A parameter is repeated.")
    client = idp.clients.get(params.get("client_id", ""))
    if client is None:
        return _error_page(400, "Unknown client_id.")
    redirect_uri = params.get("redirect_uri", "")
    if redirect_uri not in client.redirect_uris:
        return _error_page(400, "redirect_uri is not registered for this client.")
    state = params.get("state")
    try:
        auth_request = _checked(request, idp)
    except _Refused as refused:
        return _redirect(
            redirect_uri,
            {"error": refused.error, "error_description": refused.description},
            state,
            idp,
        )
    if idp.auto_consent is not None:
        return _issue(auth_request, idp.auto_consent, idp)
    idp.store.add_request(auth_request)
    return _page(auth_request, idp)


def _checked(request: Request, idp: IdpContext) -> AuthorizationRequest:
    params = request.GET
    if "request" in params or "request_uri" in params:
        raise _Refused("request_not_supported", "Request objects are not supported.")
    if params.get("response_type") != "code":
        raise _Refused("unsupported_response_type", "Only response_type=code is supported.")
    mode = params.get("response_mode", "query")
    if mode != "query":
        raise _Refused("invalid_request", "Only response_mode=query is supported.")
    scopes = tuple(dict.fromkeys(params.get("scope", "").split()))
    if "openid" not in scopes:
        raise _Refused("invalid_scope", "The openid scope is required.")
    challenge = params.get("code_challenge", "")
    if params.get("code_challenge_method") != "S256" or not _S256_CHALLENGE.fullmatch(challenge):
        raise _Refused("invalid_request", "PKCE is required: code_challenge_method=S256.")
    prompts = set(params.get("prompt", "").split())
    if "none" in prompts and (len(prompts) > 1 or idp.auto_consent is None):
        raise _Refused("login_required", "This IdP keeps no session: prompt=none cannot succeed.")
    return AuthorizationRequest(
        client_id=params["client_id"],
        redirect_uri=params["redirect_uri"],
        scopes=scopes,
        state=params.get("state"),
        nonce=params.get("nonce"),
        code_challenge=challenge,
    )


def sign_in(request: Request, idp: IdpContext) -> Response:
    """``POST /sign-in``: the user picked on the page (or denied) for a pending request."""
    request_id = form_of(request).get("request", "")
    bound = request.cookies.get(_cookie_name(request_id), "")
    if not request_id or not hmac.compare_digest(request_id, bound):
        return _error_page(400, "This sign-in page was not shown to this browser.")
    auth_request = idp.store.take_request(request_id)
    if auth_request is None:
        return _error_page(400, "This sign-in request has expired or was already used.")
    if form_of(request).get("deny"):
        response = _redirect(
            auth_request.redirect_uri,
            {"error": "access_denied", "error_description": "The user denied the request."},
            auth_request.state,
            idp,
        )
    else:
        user = form_of(request).get("user", "")
        if user not in idp.users:
            return _error_page(400, "Unknown user.")
        response = _issue(auth_request, user, idp)
    response.delete_cookie(_cookie_name(request_id), path="/")
    return response


def _cookie_name(request_id: str) -> str:
    """One cookie per pending request, so two tabs can sign in at once."""
    return f"{REQUEST_COOKIE}-{hashlib.sha256(request_id.encode()).hexdigest()[:16]}"


def _issue(auth_request: AuthorizationRequest, user_ref: str, idp: IdpContext) -> Response:
    grant = Grant(
        client_id=auth_request.client_id,
        user_ref=user_ref,
        scopes=auth_request.scopes,
        auth_time=int(idp.store.now()),
    )
    code = idp.store.issue_code(
        IssuedCode(
            grant=grant,
            redirect_uri=auth_request.redirect_uri,
            code_challenge=auth_request.code_challenge,
            nonce=auth_request.nonce,
        )
    )
    return _redirect(auth_request.redirect_uri, {"code": code}, auth_request.state, idp)


def _redirect(uri: str, params: dict[str, str], state: str | None, idp: IdpContext) -> Response:
    if state is not None:
        params["state"] = state
    params["iss"] = idp.issuer
    separator = "&" if urlsplit(uri).query else "?"
    response = Response(status=303, location=f"{uri}{separator}{urlencode(params)}")
    response.headers["Cache-Control"] = "no-store"
    return response


_STYLE = """
body{font:16px system-ui,sans-serif;margin:0;background:#f4f5f7;color:#1d1d1f}
.warn{background:#b3261e;color:#fff;padding:.6em 1em;font-weight:600}
main{max-width:28em;margin:2em auto;background:#fff;padding:1.5em;border-radius:8px;
box-shadow:0 1px 4px rgba(0,0,0,.15)}
h1{font-size:1.3em;margin:0 0 .3em}p{color:#555;margin:.2em 0 1em}
button{display:block;width:100%;text-align:left;padding:.7em 1em;margin:.4em 0;font:inherit;
border:1px solid #ccd;border-radius:6px;background:#fff;cursor:pointer}
button:hover{background:#eef2ff}small{display:block;color:#666}
button.deny{text-align:center;background:#f4f5f7}
"""


def _page(auth_request: AuthorizationRequest, idp: IdpContext) -> Response:
    users = "".join(
        f'<button type="submit" name="user" value="{html.escape(user.ref)}">'
        f"{html.escape(user.display_name or user.name)}"
        f"<small>{html.escape(user.email or user.ref)}</small></button>"
        for user in idp.users.values()
    )
    body = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>Sign in - fake IdP</title><style>{_STYLE}</style></head><body>"
        f'<div class="warn" role="alert">{html.escape(BANNER)}</div><main>'
        f"<h1>Sign in to {html.escape(auth_request.client_id)}</h1>"
        "<p>Choose who you are:</p>"
        f'<form method="post" action="sign-in">'
        f'<input type="hidden" name="request" value="{html.escape(auth_request.id)}">'
        f'{users}<button type="submit" class="deny" name="deny" value="1">Cancel</button>'
        "</form></main></body></html>"
    )
    target = urlsplit(auth_request.redirect_uri)
    response = Response(body=body, content_type="text/html", charset="utf-8")
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; "
        f"form-action 'self' {target.scheme}://{target.netloc}; base-uri 'none'"
    )
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.set_cookie(
        _cookie_name(auth_request.id),
        auth_request.id,
        path="/",
        httponly=True,
        samesite="lax",
        max_age=600,
    )
    return response


def _error_page(status: int, message: str) -> Response:
    body = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Error - fake IdP'
        f'</title></head><body><p role="alert">{html.escape(BANNER)}</p>'
        f"<h1>Sign-in refused</h1><p>{html.escape(message)}</p></body></html>"
    )
    response = Response(body=body, status=status, content_type="text/html", charset="utf-8")
    response.headers["Content-Security-Policy"] = "default-src 'none'; frame-ancestors 'none'"
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
