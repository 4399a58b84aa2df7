"""wsgiauth in a Bottle app: the ``WsgiAuthPlugin``.

Run ``python examples/bottle_app.py`` and open http://127.0.0.1:7007: "Sign in as
guest" gets an identity token from ``/api/auth/guest/refresh`` and calls
``/private`` with it. Routes that take an ``identity`` argument get the caller's
identity; ``require_identity=True`` answers 401 without one.
"""

from __future__ import annotations

import os
from pathlib import Path

import bottle
from bottle_wsgiauth import WsgiAuthPlugin

CONFIG = os.environ.get("WSGIAUTH_CONFIG") or str(Path(__file__).with_name("app-config.yaml"))
PORT = int(os.environ.get("PORT", "7007"))
PAGE = """<!doctype html>
<meta charset="utf-8">
<title>wsgiauth: Bottle</title>
<script src="/api/auth/.client/wsgiauth.js"></script>
<button id="sign-in">Sign in as guest</button>
<pre id="out">Not signed in.</pre>
<script>
  const auth = new WsgiAuth({ baseUrl: '/api/auth' });
  const guest = auth.provider('guest', { proxy: true });
  document.getElementById('sign-in').onclick = async () => {
    await guest.signIn();
    const response = await auth.fetch('/private');
    document.getElementById('out').textContent = await response.text();
  };
</script>
"""


def make_app(config_path: str = CONFIG) -> bottle.Bottle:
    """The Bottle app, with the auth routes mounted under /api/auth."""
    app = bottle.Bottle()
    app.install(WsgiAuthPlugin(config_path))

    @app.get("/")
    def home():
        return PAGE

    @app.get("/private", require_identity=True)
    def private(identity):
        return {"user": identity.user_entity_ref, "ownership": list(identity.ownership_entity_refs)}

    @app.get("/whoami")
    def whoami(identity):  # None when no one is signed in
        return {"user": identity.user_entity_ref if identity else None}

    return app


if __name__ == "__main__":
    bottle.run(make_app(), host="127.0.0.1", port=PORT)
