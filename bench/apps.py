"""App factories that ``bench/server.py`` has gunicorn load (``--pythonpath bench``).

``apps:bare()`` is the trivial app; ``apps:wrapped()`` is the same app behind
``AuthMiddleware`` with the no-network ``fake`` provider, the real ``guest``
provider (a real ES256 identity token per ``/refresh``, keys in a
``MemoryKeyStore``) and, when ``wsgiauth/providers/oidc.py`` exists, the real
``oidc`` provider whose IdP answers come from a canned transport. The config is
built in code, so the benchmark needs no file and no network.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from _common import GUEST_REFRESH_PATH
from _common import JWKS_PATH
from _common import REFRESH_HEADERS
from _common import bare_app
from _common import make_auth_app
from _common import oidc_available
from webob import Request

from wsgiauth.middleware import AuthMiddleware

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse
    from _typeshed.wsgi import WSGIApplication
    from _typeshed.wsgi import WSGIEnvironment


#: ``serve_compare.py --switch-interval``: the worker's GIL switch interval, in ms.
SWITCH_INTERVAL_ENV = "BENCH_SWITCH_INTERVAL_MS"


def _switch_interval() -> None:
    """Set the GIL switch interval from the environment (bare and wrapped alike)."""
    value = os.environ.get(SWITCH_INTERVAL_ENV)
    if value:
        sys.setswitchinterval(float(value) / 1000)


def bare() -> WSGIApplication:
    """gunicorn factory: the trivial app alone."""
    _switch_interval()
    return bare_app


def wrapped() -> WSGIApplication:
    """gunicorn factory: the trivial app behind ``AuthMiddleware``: fake, guest (and oidc)."""
    _switch_interval()
    auth_app, _ = make_auth_app(oidc=oidc_available())
    return AuthMiddleware(bare_app, auth_app)


def jwks_shaped() -> WSGIApplication:
    """The trivial app answering exactly what JWKS answers (one key), without wsgiauth.

    The server's own cost of that answer (six headers, a 300-byte body) against the
    two-header ``ok`` of :func:`bare`: JWKS over this is what wsgiauth adds.
    """
    _switch_interval()
    auth_app, _ = make_auth_app()
    stack = AuthMiddleware(bare_app, auth_app)
    Request.blank(GUEST_REFRESH_PATH, headers=REFRESH_HEADERS).get_response(stack)  # a key
    answer = Request.blank(JWKS_PATH).get_response(stack)
    status, headers, body = answer.status, list(answer.headerlist), answer.body

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        start_response(status, list(headers))
        return [body]

    return app
