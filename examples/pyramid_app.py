"""wsgiauth in a Pyramid app: ``config.include("pyramid_wsgiauth")`` and an ACL.

Run ``python examples/pyramid_app.py`` and open http://127.0.0.1:7007: "Sign in as
guest" gets an identity token from ``/api/auth/guest/refresh`` and calls
``/private`` with it. ``/private`` needs the ``view`` permission, which the root
ACL grants to every signed-in caller; ``/visitors`` needs ``group:default/visitors``
among the caller's ownership refs (the demo catalog puts the guest there).
"""

from __future__ import annotations

import os
from pathlib import Path
from wsgiref.simple_server import make_server

from pyramid.authorization import Allow
from pyramid.authorization import Authenticated
from pyramid.config import Configurator
from pyramid.response import Response

CONFIG = os.environ.get("WSGIAUTH_CONFIG") or str(Path(__file__).with_name("app-config.yaml"))
PORT = int(os.environ.get("PORT", "7007"))
PAGE = """<!doctype html>
<meta charset="utf-8">
<title>wsgiauth: Pyramid</title>
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


class Root:
    """Who may do what: principals are ``Authenticated`` and the caller's entity refs."""

    __acl__ = [(Allow, Authenticated, "view"), (Allow, "group:default/visitors", "visit")]

    def __init__(self, request):
        self.request = request


def home(request):
    return Response(PAGE)


def private(request):
    identity = request.identity  # set by WsgiAuthSecurityPolicy
    return {"user": identity.user_entity_ref, "ownership": list(identity.ownership_entity_refs)}


def make_app(config_path: str = CONFIG):
    """The Pyramid WSGI app, with the auth routes under /api/auth."""
    settings = {"wsgiauth.config": config_path, "wsgiauth.security_policy": "true"}
    with Configurator(settings=settings, root_factory=Root) as config:
        config.include("pyramid_wsgiauth")
        config.add_route("home", "/")
        config.add_view(home, route_name="home")
        config.add_route("private", "/private")
        config.add_view(private, route_name="private", permission="view", renderer="json")
        config.add_route("visitors", "/visitors")
        config.add_view(private, route_name="visitors", permission="visit", renderer="json")
        return config.make_wsgi_app()


if __name__ == "__main__":
    with make_server("127.0.0.1", PORT, make_app()) as server:
        print(f"Serving on http://127.0.0.1:{PORT}")
        server.serve_forever()
