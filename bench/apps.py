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

from _common import bare_app
from _common import make_auth_app
from _common import oidc_available

from wsgiauth.middleware import AuthMiddleware

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication


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
