"""The pages the browser tests drive, as a tiny WSGI app; and the gunicorn app serving them.

The tests own this frontend, so they do not depend on the demo portal's markup:
``/`` loads ``wsgiauth.js`` from the auth backend, signs in silently on load
(``auth.restore``) and exposes ``window.t``, whose helpers the tests call with
``page.evaluate``. Outcomes of the client's promises are recorded in
``t.outcomes[key]`` as plain JSON, errors are also shown as text in ``#error``.

``/hostile`` and ``/hostile-frame`` play an attacker on another origin that
posts forged ``authorization_response`` messages to the frontend.

Query parameters of ``/``: ``flow`` (``popup``, ``redirect``, ``auto``; default
``auto``) and ``restore`` (comma-separated provider ids tried on load; default
``oidc``; empty for none), ``margin`` (the client's ``refreshMarginSeconds``),
``tokenOrigins`` (comma-separated: the client's ``tokenOrigins``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse
    from _typeshed.wsgi import WSGIApplication
    from _typeshed.wsgi import WSGIEnvironment

    from wsgiauth.identity.verifier import IdentityVerifier

#: What a forged sign-in would look like if the client accepted it.
FORGED_USER = "user:default/mallory"
FORGED_MESSAGES = [
    {
        "type": "authorization_response",
        "error": {"name": "NotAllowedError", "message": "forged error"},
    },
    {
        "type": "authorization_response",
        "response": {
            "profile": {"email": "mallory@evil.example", "displayName": "Mallory"},
            "providerInfo": {"accessToken": "forged", "scope": "openid profile email"},
            "backstageIdentity": {
                "token": "forged.forged.forged",
                "expiresInSeconds": 3600,
                "identity": {
                    "type": "user",
                    "userEntityRef": FORGED_USER,
                    "ownershipEntityRefs": [FORGED_USER],
                },
            },
        },
    },
]

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>wsgiauth browser test page</title>
<script src="__CLIENT_URL__"></script>
</head>
<body>
<h1>wsgiauth browser test page</h1>
<p>Signed in as: <span id="user"></span></p>
<p>Error: <span id="error"></span></p>
<script>
(function () {
  'use strict';
  const params = new URLSearchParams(location.search);
  const restoreList = (params.has('restore') ? params.get('restore') : 'oidc')
    .split(',').filter(Boolean);
  const margin = params.get('margin');
  const auth = new WsgiAuth({
    baseUrl: __BASE_URL__,
    refreshMarginSeconds: margin === null ? undefined : Number(margin),
    tokenOrigins: (params.get('tokenOrigins') || '').split(',').filter(Boolean),
  });
  const providers = {
    oidc: auth.provider('oidc', {
      title: 'OIDC',
      defaultScopes: ['openid', 'profile', 'email'],
      flow: params.get('flow') || 'auto',
    }),
    guest: auth.provider('guest', { proxy: true }),
  };
  const userOf = (s) =>
    (s && s.backstageIdentity ? s.backstageIdentity.identity.userEntityRef : null);
  const t = {
    auth,
    providers,
    changes: [],
    messages: [],
    outcomes: {},
    forged: __FORGED__,
  };
  window.t = t;
  // Every message the window receives, so a test knows a forged one has arrived
  // (this listener runs in the same task as the client's own).
  window.addEventListener('message', (event) => {
    t.messages.push({ origin: event.origin, fromSelf: event.source === window, data: event.data });
  });
  auth.onChange((session) => {
    t.changes.push(session ? `${session.provider}:${userOf(session)}` : null);
    document.getElementById('user').textContent = userOf(session) || '';
  });
  t.settle = (key, promise) => {
    t.outcomes[key] = { state: 'pending' };
    return promise.then(
      (value) => {
        t.outcomes[key] = { state: 'resolved', value: value === undefined ? null : value };
      },
      (error) => {
        document.getElementById('error').textContent = `${error.name}: ${error.message}`;
        t.outcomes[key] = {
          state: 'rejected',
          name: error.name,
          message: error.message,
          status: error.status === undefined ? null : error.status,
          isWsgiAuthError: error instanceof WsgiAuth.Error,
        };
      },
    );
  };
  // Start a provider call without waiting for it: t.run('signin', 'oidc', 'signIn', {...}).
  t.run = (key, provider, method, arg) => {
    t.settle(key, Promise.resolve().then(() => providers[provider][method](arg)));
  };
  // The same, but calling synchronously, inside the caller's user activation.
  t.runNow = (key, provider, method, arg) => {
    t.settle(key, providers[provider][method](arg));
  };
  t.whoami = () => auth.fetch('/api/whoami').then((r) => r.json());
  t.postToSelf = () => t.forged.forEach((m) => window.postMessage(m, '*'));
  t.embed = (url) => {
    const frame = document.createElement('iframe');
    frame.src = url;
    document.body.appendChild(frame);
  };
  t.settle('restore', auth.restore(restoreList));
})();
</script>
</body>
</html>
"""

_HOSTILE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>hostile page</title></head>
<body>
<h1>Nothing to see here</h1>
<script>
(function () {
  'use strict';
  const forged = __FORGED__;
  window.hostile = {
    victim: null,
    open(url) { this.victim = window.open(url, 'victim'); },
    blast() { forged.forEach((m) => this.victim.postMessage(m, '*')); },
  };
  // Framed by the victim: post to it at once.
  if (window.parent !== window) forged.forEach((m) => window.parent.postMessage(m, '*'));
})();
</script>
</body>
</html>
"""


def _html(body: str) -> tuple[str, list[tuple[str, str]], bytes]:
    return "200 OK", [("Content-Type", "text/html; charset=utf-8")], body.encode()


def frontend_app(
    auth_base_url: str | None = None, verifier: IdentityVerifier | None = None
) -> WSGIApplication:
    """The test frontend; ``auth_base_url`` None means ``/api/auth`` on the page's own origin.

    :param verifier: checks the bearer token of ``/api/whoami`` (served only with one).
    """
    client_url = f"{auth_base_url or '/api/auth'}/.client/wsgiauth.js"
    forged = json.dumps(FORGED_MESSAGES)
    page = (
        _PAGE.replace("__CLIENT_URL__", client_url)
        .replace("__BASE_URL__", json.dumps(auth_base_url))
        .replace("__FORGED__", forged)
    )
    hostile = _HOSTILE.replace("__FORGED__", forged)

    def whoami(environ: WSGIEnvironment) -> tuple[str, list[tuple[str, str]], bytes]:
        from wsgiauth.errors import HttpError

        assert verifier is not None
        try:
            identity = verifier.identity_from_environ(environ)
        except HttpError as error:
            body = {"error": {"name": error.name, "message": error.message}}
            status = f"{error.status_code} Unauthorized"
        else:
            body = {"user": identity.user_entity_ref if identity else None}
            status = "200 OK"
        headers = [("Content-Type", "application/json"), ("Cache-Control", "no-store")]
        return status, headers, json.dumps(body).encode()

    routes: dict[str, Callable[[WSGIEnvironment], tuple[str, list[tuple[str, str]], bytes]]] = {
        "/": lambda environ: _html(page),
        "/hostile": lambda environ: _html(hostile),
        "/hostile-frame": lambda environ: _html(hostile),
    }
    if verifier is not None:
        routes["/api/whoami"] = whoami

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        route = routes.get(environ.get("PATH_INFO") or "/")
        if route is None:
            status, headers, body = "404 Not Found", [("Content-Type", "text/plain")], b"no\n"
        else:
            status, headers, body = route(environ)
        start_response(status, [*headers, ("Content-Length", str(len(body)))])
        return [body]

    return app


def make_app() -> WSGIApplication:
    """gunicorn app factory: wsgiauth (config from ``WSGIAUTH_CONFIG``) in front of the pages."""
    from wsgiauth.app import create_auth_app
    from wsgiauth.loader import load_config
    from wsgiauth.middleware import AuthMiddleware

    auth_app = create_auth_app(load_config(os.environ["WSGIAUTH_CONFIG"]))
    return AuthMiddleware(frontend_app(verifier=auth_app.verifier), auth_app)
