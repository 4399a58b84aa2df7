"""The legacy portal itself: an old-style WSGI app that knows nothing of wsgiauth.

Hand-written routing on ``PATH_INFO``, HTML built from strings, and an
authorization rule that trusts ``REMOTE_USER`` as set by the server in front
(once Apache with basic auth, now wsgiauth): the admin page is for members of
the ``admins`` group in the portal's own ``users`` table. This module is the
"existing code" of ``__init__.py``: the only addition for wsgiauth is the
sign-in bar in :data:`LAYOUT` (a button and two scripts), because a browser
sends the identity token only from a script. The bar signs in through one
provider: ``guest`` by default, ``oauth2Proxy`` when the portal runs behind
oauth2-proxy (``app-config.oauth2-proxy.yaml``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from contextlib import closing
from html import escape
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse
    from _typeshed.wsgi import WSGIEnvironment

__all__ = ["LegacyPortal"]

LAYOUT = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>%(title)s - Legacy Portal</title>
<link rel="icon" href="data:,">
<style>body{font-family:sans-serif;max-width:40em;margin:2em auto}nav a{margin-right:1em}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .6em}</style></head>
<body>
<nav><a href="/" data-page>Home</a><a href="/profile" data-page>My profile</a>
<a href="/admin" data-page>Admin</a>
<button id="sign-in" type="button">%(sign_in_label)s</button></nav>
<main>
<h1>%(title)s</h1>
%(body)s
</main>
<script src="/api/auth/.client/wsgiauth.js"></script>
<script src="/static/sign-in.js"></script>
</body>
</html>
"""

#: The sign-in bar per provider: the button's label and the script's provider.
SIGN_IN_PROVIDERS = {
    "guest": ("Sign in as guest", "auth.provider('guest', { proxy: true, title: 'Guest' })"),
    # Behind oauth2-proxy the user signed in at the proxy already: /refresh turns the
    # headers it sets into an identity token (wsgiauth.js knows it as a proxy provider).
    "oauth2Proxy": ("Sign in", "auth.provider('oauth2Proxy')"),
}

#: Signs in with the provider, then loads pages with the identity token.
SIGN_IN_SCRIPT = """'use strict';
const auth = new WsgiAuth({ baseUrl: '/api/auth' });
const provider = %(provider)s;
async function show(path) {
  const response = await auth.fetch(path);
  const page = new DOMParser().parseFromString(await response.text(), 'text/html');
  document.querySelector('main').replaceWith(page.querySelector('main'));
  history.replaceState(null, '', path);
}
document.addEventListener('click', (event) => {
  const link = event.target.closest('a[data-page]');
  if (!link) return;
  event.preventDefault();
  show(link.getAttribute('href'));
});
document.getElementById('sign-in').addEventListener('click', async () => {
  await provider.signIn();
  show(location.pathname);
});
"""


class LegacyPortal:
    """The portal as a WSGI app over the SQLite file ``database``.

    :param sign_in_provider: the provider of the sign-in bar, a key of
        :data:`SIGN_IN_PROVIDERS`.
    """

    def __init__(self, database: str, sign_in_provider: str = "guest") -> None:
        self.database = database
        self.sign_in_label, provider = SIGN_IN_PROVIDERS[sign_in_provider]
        self.sign_in_script = (SIGN_IN_SCRIPT % {"provider": provider}).encode()
        self.routes = {"/": self.home, "/profile": self.profile, "/admin": self.admin}

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or "/"
        if path == "/static/sign-in.js":
            return self.respond(start_response, "200 OK", self.sign_in_script, "text/javascript")
        handler = self.routes.get(path)
        if handler is None:
            return self.page(start_response, "404 Not Found", "Not found", "<p>No such page.</p>")
        if environ.get("REQUEST_METHOD", "GET") not in ("GET", "HEAD"):
            return self.page(start_response, "405 Method Not Allowed", "Not allowed", "")
        return handler(environ, start_response)

    # --- the database -------------------------------------------------------

    def find_user(self, username: str) -> tuple[str, str, str, list[str]] | None:
        """(username, email, display name, groups) of one user, or None."""
        with closing(sqlite3.connect(self.database)) as connection:
            row = connection.execute(
                "SELECT username, email, display_name, groups FROM users WHERE username = ?",
                (username,),
            ).fetchone()
        if row is None:
            return None
        groups = [group.strip() for group in (row[3] or "").split(",") if group.strip()]
        return row[0], row[1] or "", row[2] or "", groups

    def all_users(self) -> list[tuple[str, str]]:
        """(username, groups) of every user."""
        with closing(sqlite3.connect(self.database)) as connection:
            rows = connection.execute("SELECT username, groups FROM users ORDER BY username")
            return [(name, groups or "") for name, groups in rows]

    # --- pages --------------------------------------------------------------

    def home(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        user = environ.get("REMOTE_USER")
        greeting = f"Hello, {escape(user)}." if user else "Hello, stranger. Please sign in."
        return self.page(start_response, "200 OK", "Home", f"<p>{greeting}</p>")

    def profile(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        found = self.find_user(environ.get("REMOTE_USER", ""))
        if found is None:
            return self.page(start_response, "401 Unauthorized", "Sign in", "<p>Sign in first.</p>")
        name, email, display_name, groups = found
        body = (
            f"<p>{escape(display_name)} ({escape(name)}), {escape(email)}</p>"
            f"<p>Groups: {escape(', '.join(groups)) or 'none'}</p>"
        )
        return self.page(start_response, "200 OK", "My profile", body)

    def admin(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        # The portal's authorization rule, unchanged since the Apache days.
        user = environ.get("REMOTE_USER")
        if not user:
            return self.page(start_response, "401 Unauthorized", "Sign in", "<p>Sign in first.</p>")
        found = self.find_user(user)
        if found is None or "admins" not in found[3]:
            body = f"<p>{escape(user)} is not an administrator.</p>"
            return self.page(start_response, "403 Forbidden", "Forbidden", body)
        rows = "".join(
            f"<tr><td>{escape(name)}</td><td>{escape(groups)}</td></tr>"
            for name, groups in self.all_users()
        )
        body = f"<table><tr><th>User</th><th>Groups</th></tr>{rows}</table>"
        return self.page(start_response, "200 OK", "Administration", body)

    # --- responses ----------------------------------------------------------

    def page(
        self, start_response: StartResponse, status: str, title: str, body: str
    ) -> Iterable[bytes]:
        html = LAYOUT % {
            "title": escape(title),
            "body": body,
            "sign_in_label": escape(self.sign_in_label),
        }
        return self.respond(start_response, status, html.encode("utf-8"), "text/html")

    @staticmethod
    def respond(
        start_response: StartResponse, status: str, body: bytes, content_type: str
    ) -> Iterable[bytes]:
        start_response(
            status,
            [
                ("Content-Type", f"{content_type}; charset=utf-8"),
                ("Content-Length", str(len(body))),
            ],
        )
        return [body]
