"""Identity tokens for tests, signed by the app's own auth app: no catalog, no provider.

The app's :class:`~wsgiauth.identity.middleware.IdentityMiddleware` (or adapter)
verifies tokens against its auth app's signing keys, in process. A test token signed
by that same auth app's token issuer is therefore accepted exactly as a real sign-in's
would be, and nothing is weakened to let it through. :func:`find_auth_app` digs the
auth app out of the WSGI app under test.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..app import AuthApp
from ..types import TokenParams

__all__ = ["MAX_DEPTH", "find_auth_app", "issue_identity_token"]

#: How many wrappers :func:`find_auth_app` looks through.
MAX_DEPTH = 16
#: Attributes through which WSGI middleware and frameworks reach the app they wrap.
_WRAPPED = ("wsgi_app", "app", "application", "wrapped", "_app")


def find_auth_app(app: Any) -> AuthApp:
    """The :class:`~wsgiauth.AuthApp` of ``app``.

    ``app`` may be the auth app itself, an :class:`~wsgiauth.AuthMiddleware` (its
    ``auth_app``), a Flask app with the ``WsgiAuth`` extension
    (``app.extensions["wsgiauth"]``), or middleware wrapping one of these under a
    usual attribute (``wsgi_app``, ``app``, ``application``).

    :raises LookupError: none found; pass the auth app itself.
    """
    seen: set[int] = set()
    current = app
    for _ in range(MAX_DEPTH):
        if current is None or id(current) in seen:
            break
        seen.add(id(current))
        if isinstance(current, AuthApp):
            return current
        found = getattr(current, "auth_app", None)
        if isinstance(found, AuthApp):
            return found
        extensions = getattr(current, "extensions", None)
        found = extensions.get("wsgiauth") if isinstance(extensions, dict) else None
        if isinstance(found, AuthApp):
            return found
        current = next(
            (getattr(current, name) for name in _WRAPPED if getattr(current, name, None)), None
        )
    raise LookupError(
        f"no wsgiauth AuthApp found in {type(app).__name__}: make the wsgiauth_app fixture "
        "return the AuthApp itself (e.g. django_wsgiauth.get_auth_app())"
    )


def issue_identity_token(
    auth_app: AuthApp, user_entity_ref: str, groups: Iterable[str] = (), **claims: Any
) -> str:
    """An identity token for ``user_entity_ref`` owning ``groups``, signed by ``auth_app``.

    ``ent`` is the user and its groups, as a catalog sign-in makes it; ``claims`` adds
    any others. The user and groups are entity refs (``user:default/jane``,
    ``group:default/team-a``).
    """
    if auth_app.token_issuer is None:
        raise LookupError("this AuthApp has no token issuer (build it with create_auth_app)")
    ownership = list(dict.fromkeys([user_entity_ref, *groups]))
    params = TokenParams(claims={**claims, "sub": user_entity_ref, "ent": ownership})
    return auth_app.token_issuer.issue_token(params)
