"""wsgiauth around a plain WSGI app: no framework, two middlewares.

Run ``python examples/plain_wsgi.py`` and open http://127.0.0.1:7007: "Sign in as
guest" gets an identity token from ``/api/auth/guest/refresh`` (through the
browser client the auth app serves) and calls ``/private`` with it, which shows
the identity. The config is ``examples/app-config.yaml`` (guest provider, YAML
catalog, SQLite key store), or the file named by ``$WSGIAUTH_CONFIG``; ``$PORT``
changes the port.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from wsgiref.simple_server import make_server

from wsgiauth import AuthMiddleware
from wsgiauth import IdentityMiddleware
from wsgiauth import create_auth_app
from wsgiauth import load_config

CONFIG = os.environ.get("WSGIAUTH_CONFIG") or str(Path(__file__).with_name("app-config.yaml"))
PORT = int(os.environ.get("PORT", "7007"))
PAGE = b"""<!doctype html>
<meta charset="utf-8">
<title>wsgiauth: plain WSGI</title>
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


def app(environ, start_response):
    """The application: a page, and ``/private``, which IdentityMiddleware protects."""
    path = environ["PATH_INFO"]
    if path == "/":
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
        return [PAGE]
    if path == "/private":
        identity = environ["wsgiauth.identity"]  # never None here: the path is protected
        body = {
            "user": identity.user_entity_ref,
            "ownership": list(identity.ownership_entity_refs),
            "remote_user": environ.get("REMOTE_USER"),
        }
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(body).encode()]
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"Not found"]


def make_app(config_path: str = CONFIG):
    """The app behind the identity check, with the auth routes mounted in front."""
    auth_app = create_auth_app(load_config(config_path))
    protected = IdentityMiddleware(
        app, auth_app.verifier, protected=["/private"], set_remote_user=True, cors=auth_app.cors
    )
    return AuthMiddleware(protected, auth_app)


if __name__ == "__main__":
    with make_server("127.0.0.1", PORT, make_app()) as server:
        print(f"Serving on http://127.0.0.1:{PORT}")
        server.serve_forever()
