"""What every endpoint of the fake IdP shares: its issuer, keys, users, clients and memory.

Also the two answer shapes of the protocol: JSON (``Cache-Control: no-store``) and
the RFC 6749 §5.2 error object (``{"error": ..., "error_description": ...}``), which
OAuth clients parse; Backstage's error shape would mean nothing to them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from webob import Request
from webob import Response

from .discovery import SigningKeys
from .grants import GrantStore
from .registry import FakeClient
from .registry import FakeUser

__all__ = ["IdpContext", "OAuthError", "form_of", "json_response"]

_FORM_KEY = "wsgiauth.fake_idp.form"


@dataclass(frozen=True, slots=True)
class IdpContext:
    """The IdP's configuration and state; one per running IdP."""

    issuer: str
    keys: SigningKeys
    users: Mapping[str, FakeUser]
    clients: Mapping[str, FakeClient]
    store: GrantStore
    #: Sign in as this user at once, with no page (``--auto-consent``).
    auto_consent: str | None = None

    @classmethod
    def create(
        cls,
        issuer: str,
        users: Sequence[FakeUser],
        clients: Sequence[FakeClient],
        *,
        auto_consent: str | None = None,
        store: GrantStore | None = None,
    ) -> IdpContext:
        """Check and index users and clients; ``auto_consent`` must be one of the users."""
        by_ref = {user.ref: user for user in users}
        by_id = {client.client_id: client for client in clients}
        if len(by_ref) != len(users):
            raise ValueError("two users have the same entity ref")
        if len(by_id) != len(clients):
            raise ValueError("two clients have the same client_id")
        if not clients:
            raise ValueError("register at least one client")
        if auto_consent is not None and auto_consent not in by_ref:
            raise ValueError(f"--auto-consent {auto_consent!r} is not one of the users")
        return cls(
            issuer=issuer.rstrip("/"),
            keys=SigningKeys(),
            users=by_ref,
            clients=by_id,
            store=store or GrantStore(),
            auto_consent=auto_consent,
        )


def json_response(body: Mapping[str, Any], status: int = 200) -> Response:
    """A JSON answer nobody may cache (tokens, userinfo)."""
    response = Response(body=json.dumps(body).encode(), status=status)
    response.content_type = "application/json"
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


class OAuthError(Exception):
    """An RFC 6749 error answer: ``error`` code, description, HTTP status."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status
        #: Extra response headers (``WWW-Authenticate``).
        self.headers: dict[str, str] = {}

    def response(self) -> Response:
        response = json_response(
            {"error": self.error, "error_description": self.description}, self.status
        )
        for name, value in self.headers.items():
            response.headers[name] = value
        return response


def form_of(request: Request) -> dict[str, str]:
    """The form body as one value per name; a repeated name or non-UTF-8 is refused."""
    form: dict[str, str] | None = request.environ.get(_FORM_KEY)
    if form is None:
        try:
            pairs = parse_qsl(request.body.decode("utf-8"), keep_blank_values=True)
        except UnicodeDecodeError:
            raise OAuthError("invalid_request", "The form is not UTF-8.") from None
        form = dict(pairs)
        if len(form) != len(pairs):
            raise OAuthError("invalid_request", "A parameter is repeated.")
        request.environ[_FORM_KEY] = form
    return form
