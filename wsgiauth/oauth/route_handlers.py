"""The generic OAuth routes: start, handler/frame, refresh, logout (spec §1.3-§1.6).

Backstage's ``createOAuthRouteHandlers``. It owns everything an identity
provider does not: the nonce, the per-flow cookie with the PKCE verifier, the
allowed origins, scopes, cookies and the response shapes. The provider's
:class:`~wsgiauth.oauth.types.OAuthAuthenticator` only builds URLs and talks
to the back channel. Handlers raise :class:`~wsgiauth.errors.HttpError`;
only the callback turns errors into a postMessage page (or a redirect).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl
from urllib.parse import urlencode
from urllib.parse import urlsplit
from urllib.parse import urlunsplit

from webob import Response

from ..audit import AuditEvent
from ..audit import audit
from ..audit import audit_failure
from ..audit import refused
from ..audit import user_ref_of
from ..errors import AuthenticationError
from ..errors import HttpError
from ..errors import InputError
from ..errors import NotAllowedError
from ..errors import ServiceUnavailableError
from ..flow.web_message import web_message_response
from ..origins import origin_of
from ..responses import json_response
from ..responses import redirect_response
from ..types import ClientAuthResponse
from .cookies import FlowCookie
from .cookies import OAuthCookieManager
from .cookies import started_now
from .environment import query_of
from .scopes import join_scopes
from .scopes import split_scopes
from .shared_refresh import SharedRefresh
from .state import callback_state
from .state import decode_oauth_state
from .state import encode_oauth_state
from .state import query_param
from .types import OAuthAuthenticateInput
from .types import OAuthLogoutInput
from .types import OAuthRefreshInput
from .types import OAuthStartInput
from .types import SupportsOAuthLogout

if TYPE_CHECKING:
    from webob import Request

    from ..types import BackstageIdentityResponse
    from ..types import ProfileInfo
    from .types import OAuthAuthenticator
    from .types import OAuthAuthenticatorResult
    from .types import ProfileTransform

__all__ = ["OAuthRouteHandlers", "SignIn"]

log = logging.getLogger(__name__)

#: Turns a provider result into an identity token; ``None`` when the provider has no resolver.
SignIn = Callable[["OAuthAuthenticatorResult", "ProfileInfo"], "BackstageIdentityResponse"]


def _s256_challenge(verifier: str) -> str:
    """RFC 7636's S256 challenge: what oauthlib's ``create_code_challenge`` returns, inline."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


class OAuthRouteHandlers:
    """Route handlers for one OAuth provider in one environment."""

    def __init__(
        self,
        authenticator: OAuthAuthenticator,
        *,
        provider_id: str,
        callback_url: str,
        app_url: str,
        environment: str | None = None,
        is_origin_allowed: Callable[[str], bool],
        cookies: OAuthCookieManager,
        additional_scopes: tuple[str, ...] = (),
        profile_transform: ProfileTransform | None = None,
        sign_in: SignIn | None = None,
        refreshes: SharedRefresh | None = None,
    ) -> None:
        self.authenticator = authenticator
        self.provider_id = provider_id
        #: The ``env`` a flow's ``state`` names when ``start`` was given none.
        self.environment = environment
        self.callback_url = callback_url
        self.app_origin = origin_of(app_url)
        self.is_origin_allowed = is_origin_allowed
        self.cookies = cookies
        self.additional_scopes = additional_scopes
        self.profile_transform = profile_transform or authenticator.default_profile_transform
        self.sign_in = sign_in
        # Tabs racing with one rotating refresh token share one exchange.
        self._refreshes = refreshes or SharedRefresh(namespace=provider_id)

    # -- start ----------------------------------------------------------------------------

    def start(self, request: Request) -> Response:
        """Redirect to the provider with a fresh nonce in a cookie and in ``state``."""
        query = query_of(request)
        origin = self._checked_origin(query_param(query, "origin"), InputError)
        flow = query_param(query, "flow")
        redirect_url = query_param(query, "redirectUrl")
        if redirect_url is not None:
            # Refused here, not at the callback after the user has signed in.
            self._check_redirect_url(redirect_url)
        nonce = base64.b64encode(secrets.token_bytes(16)).decode("ascii")
        scope = self._scope(split_scopes(query_param(query, "scope")), self._granted(request))
        state = encode_oauth_state(
            {
                "nonce": nonce,
                "env": query_param(query, "env") or self.environment,
                "origin": origin,
                "redirectUrl": redirect_url,
                "flow": flow,
                "scope": scope if self.authenticator.persist_scopes else None,
            }
        )
        # PKCE S256 on every code flow: an intercepted code is useless without the
        # verifier, which stays in this browser's HttpOnly flow cookie.
        verifier = secrets.token_urlsafe(48)  # 64 chars of RFC 7636's unreserved set
        challenge = _s256_challenge(verifier)
        started = self.authenticator.start(
            OAuthStartInput(
                request=request, scope=scope, state=state, nonce=nonce, code_challenge=challenge
            )
        )
        # Backstage sends no body.
        response = redirect_response(started.status, started.url)
        self.cookies.set_nonce(response, nonce, origin)
        flow_cookie = FlowCookie.for_nonce(nonce, verifier, started_now())
        self.cookies.set_flow(response, request, flow_cookie, origin)
        return response

    # -- handler/frame --------------------------------------------------------------------

    def frame_handler(self, request: Request) -> Response:
        """Finish the login and deliver the result by postMessage (or redirect)."""
        origin = self.app_origin
        state: dict[str, str] = {}
        try:
            state = decode_oauth_state(callback_state(request))
            if state.get("origin"):
                origin = self._checked_origin(state["origin"], NotAllowedError) or origin
            if state.get("redirectUrl"):
                self._check_redirect_url(state["redirectUrl"])
            flow = self._checked_flow(request, state["nonce"])
            result = self.authenticator.authenticate(
                OAuthAuthenticateInput(
                    request=request, nonce=state["nonce"], code_verifier=flow.code_verifier
                )
            )
            client_response, scope = self._client_response(result, state.get("scope"))
            if state.get("flow") == "redirect":
                if not state.get("redirectUrl"):
                    raise InputError("No redirectUrl provided in request query parameters")
                response = _found(state["redirectUrl"])
            else:
                response = web_message_response(
                    origin, {"type": "authorization_response", "response": client_response}
                )
            if self.authenticator.persist_scopes:
                self.cookies.set_granted_scopes(response, request, scope, origin)
            if result.session.refresh_token:
                self.cookies.set_refresh_token(
                    response, request, result.session.refresh_token, origin
                )
            self.cookies.remove_flow(response, state["nonce"], origin)
            audit(AuditEvent.SIGN_IN_SUCCEEDED, env=state["env"], user=user_ref_of(client_response))
            return response
        except HttpError as error:
            audit_failure(AuditEvent.SIGN_IN_FAILED, error, env=state.get("env"))
            return self._frame_error(error, state, origin)

    def _frame_error(self, error: HttpError, state: dict[str, str], origin: str) -> Response:
        redirect_url = state.get("redirectUrl")
        if (
            state.get("flow") == "redirect"
            and redirect_url
            and self._redirect_allowed(redirect_url)
        ):
            return _found(_with_query(redirect_url, error=error.full_message()))
        payload = {
            "type": "authorization_response",
            "error": {"name": error.name, "message": error.full_message()},
        }
        return web_message_response(origin, payload)

    def _checked_flow(self, request: Request, nonce: str) -> FlowCookie:
        """Login CSRF: the callback must come to the browser that started this flow."""
        flow = self.cookies.get_flow(request, nonce)
        if flow is None:
            if self.cookies.get_nonce(request) is None:
                raise refused(NotAllowedError("Auth response is missing cookie nonce"))
            raise refused(NotAllowedError("Invalid nonce"))
        if not flow.matches(nonce):
            raise refused(NotAllowedError("Invalid nonce"))
        return flow

    # -- refresh --------------------------------------------------------------------------

    def refresh(self, request: Request) -> Response:
        """Renew the provider session from the refresh-token cookie."""
        self._check_requested_with(request)
        # Checked before the exchange: a rotated refresh token must never be lost
        # because the answer could not be built for a malformed Origin.
        origin = _request_origin(request)
        requested = split_scopes(query_param(request.GET, "scope"))
        try:
            refresh_token = self.cookies.get_refresh_token(request)
            if not refresh_token:
                raise InputError("Missing session cookie")
            granted = self._granted(request)
            already_granted = set(requested) <= set(granted)
            if self.authenticator.persist_scopes and not already_granted:
                # A refresh grant can narrow scopes, never widen them (RFC 6749 §6): new
                # scopes need consent at the provider, so the client must sign in again
                # rather than be told it holds scopes nobody granted.
                raise InputError("Session has not been granted the requested scope")
            scope = self._scope(requested, granted)
            refresh_input = OAuthRefreshInput(
                request=request,
                scope=scope,
                scope_already_granted=already_granted,
                refresh_token=refresh_token,
            )
            # Tabs racing with one rotating refresh token share one exchange, in any worker.
            result = self._refreshes.run(
                refresh_token, lambda: self.authenticator.refresh(refresh_input)
            )
            client_response, scope = self._client_response(result, scope)
        except ServiceUnavailableError as error:
            audit_failure(AuditEvent.REFRESH_FAILED, error, env=request.GET.get("env"))
            raise  # the provider is down, not the session: 503 lets clients retry
        except HttpError as error:
            audit_failure(AuditEvent.REFRESH_FAILED, error, env=request.GET.get("env"))
            raise AuthenticationError("Refresh failed") from error
        response = json_response(client_response)
        if self.authenticator.persist_scopes:
            self.cookies.set_granted_scopes(response, request, scope, origin)
        new_token = result.session.refresh_token
        if new_token and new_token != refresh_token:
            self.cookies.set_refresh_token(response, request, new_token, origin)
        audit(
            AuditEvent.REFRESH_SUCCEEDED,
            env=request.GET.get("env"),
            user=user_ref_of(client_response),
        )
        return response

    # -- logout ---------------------------------------------------------------------------

    def logout(self, request: Request) -> Response:
        """Clear the session cookies; revoke at the provider where it can."""
        self._check_requested_with(request)
        origin = _request_origin(request)
        if origin is not None and not self.is_origin_allowed(origin):
            raise refused(NotAllowedError(f"Origin '{origin}' is not allowed"))
        logout_url = None
        refresh_token = self.cookies.get_refresh_token(request)
        if refresh_token:
            # A shared refresh result must not outlive the session it belonged to.
            self._refreshes.forget(refresh_token)
        if isinstance(self.authenticator, SupportsOAuthLogout):
            outcome = self.authenticator.logout(
                OAuthLogoutInput(request=request, refresh_token=refresh_token)
            )
            logout_url = outcome.logout_url if outcome else None
        if logout_url and _is_safe_logout_url(logout_url):
            response = json_response({"logoutUrl": logout_url})
        else:
            response = Response(status=200, headerlist=[("Content-Type", "text/plain")])
            response.cache_control = "no-store"
        self.cookies.remove_refresh_token(response, request, origin)
        if self.authenticator.persist_scopes:
            self.cookies.remove_granted_scopes(response, request, origin)
        audit(AuditEvent.LOGOUT, env=request.GET.get("env"))
        return response

    # -- shared ---------------------------------------------------------------------------

    def _client_response(
        self, result: OAuthAuthenticatorResult, persisted_scope: str | None
    ) -> tuple[dict[str, object], str]:
        session = result.session
        if self.authenticator.persist_scopes:
            if not persisted_scope:
                raise AuthenticationError("No scope found in OAuth state")
            scope = persisted_scope
        else:
            scope = join_scopes(split_scopes(session.scope))
        provider_info: dict[str, object] = {"accessToken": session.access_token, "scope": scope}
        if getattr(self.authenticator, "session_cookie", False):
            provider_info = {}  # no provider tokens to hand out (Backstage's SAML sends {})
        if session.id_token:
            provider_info["idToken"] = session.id_token
        if session.expires_in_seconds is not None:
            provider_info["expiresInSeconds"] = session.expires_in_seconds
        profile = self.profile_transform(result)
        identity = self.sign_in(result, profile) if self.sign_in else None
        body = ClientAuthResponse(
            profile=profile, provider_info=provider_info, backstage_identity=identity
        ).to_json()
        return body, scope

    def _granted(self, request: Request) -> list[str]:
        """Scopes granted so far (kept only by providers that persist scopes)."""
        if not self.authenticator.persist_scopes:
            return []
        return split_scopes(self.cookies.get_granted_scopes(request))

    def _scope(self, requested: list[str], granted: list[str]) -> str:
        """What to ask the provider for: requested, granted, required and additional scopes."""
        return join_scopes(
            requested, granted, self.authenticator.required_scopes, self.additional_scopes
        )

    def _checked_origin(self, raw: str | None, invalid: type[HttpError]) -> str | None:
        """Results go only to an allowed origin: stops a phishing page receiving them."""
        if raw is None:
            return None
        try:
            origin = origin_of(raw)
        except ValueError:
            raise invalid("App origin is invalid, failed to parse") from None
        if not self.is_origin_allowed(origin):
            raise refused(NotAllowedError(f"Origin '{origin}' is not allowed"))
        return origin

    def _redirect_allowed(self, url: str) -> bool:
        try:
            return self.is_origin_allowed(origin_of(url))
        except ValueError:
            return False

    def _check_redirect_url(self, url: str) -> None:
        """Stricter than Backstage (spec §12.4): no open redirect after login.

        Only visible ASCII: a CR or LF would split the ``Location`` header, and a
        parser that drops tabs, newlines or NULs would judge another URL than the
        one the browser follows.
        """
        if not all("!" <= char <= "~" for char in url):
            raise InputError("Redirect URL is invalid, it must be printable ASCII")
        if not self._redirect_allowed(url):
            raise refused(NotAllowedError(f"Redirect URL '{url}' is not allowed"))

    @staticmethod
    def _check_requested_with(request: Request) -> None:
        """Lightweight CSRF protection: a cross-site form or image cannot set this header."""
        if request.headers.get("X-Requested-With") != "XMLHttpRequest":
            raise refused(AuthenticationError("Invalid X-Requested-With header"))


def _request_origin(request: Request) -> str | None:
    """The ``Origin`` header, normalised; a malformed one is refused (400)."""
    raw = request.headers.get("Origin")
    if raw is None:
        return None
    try:
        return origin_of(raw)
    except ValueError:
        raise InputError("Origin header is invalid, failed to parse") from None


def _found(location: str) -> Response:
    """A 302 as Express's ``res.redirect`` sends it."""
    response = Response(status=302, content_type="text/plain", charset="utf-8")
    response.location = location
    response.text = f"Found. Redirecting to {location}"
    response.cache_control = "no-store"
    return response


def _with_query(url: str, **params: str) -> str:
    """``url`` with ``params`` set in its query, as ``URLSearchParams.set`` does."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    query.extend(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


def _is_safe_logout_url(url: str) -> bool:
    """Backstage follows only https logout URLs, or any URL on localhost."""
    parts = urlsplit(url)
    return parts.scheme == "https" or (parts.scheme == "http" and parts.hostname == "localhost")
