"""wsgiauth in a Flask app: the ``WsgiAuth`` extension.

Run ``python examples/flask_app.py`` and open http://127.0.0.1:7007: "Sign in as
guest" gets an identity token from ``/api/auth/guest/refresh`` and calls
``/private`` with it. ``@login_required`` answers 401 without a valid token;
``current_identity`` is the caller's identity.
"""

from __future__ import annotations

import os
from pathlib import Path

from flask import Flask
from flask_wsgiauth import WsgiAuth
from flask_wsgiauth import current_identity
from flask_wsgiauth import login_required

CONFIG = os.environ.get("WSGIAUTH_CONFIG") or str(Path(__file__).with_name("app-config.yaml"))
PORT = int(os.environ.get("PORT", "7007"))
PAGE = """<!doctype html>
<meta charset="utf-8">
<title>wsgiauth: Flask</title>
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

wsgiauth = WsgiAuth()


def make_app(config_path: str = CONFIG) -> Flask:
    """The Flask app, with the auth routes mounted under /api/auth."""
    app = Flask(__name__)
    app.config["WSGIAUTH_CONFIG"] = config_path
    wsgiauth.init_app(app)

    @app.get("/")
    def home():
        return PAGE

    @app.get("/private")
    @login_required
    def private():
        return {
            "user": current_identity.user_entity_ref,
            "ownership": list(current_identity.ownership_entity_refs),
        }

    @app.get("/whoami")
    def whoami():
        return {"user": current_identity.user_entity_ref if current_identity else None}

    return app


if __name__ == "__main__":
    make_app().run(host="127.0.0.1", port=PORT)
