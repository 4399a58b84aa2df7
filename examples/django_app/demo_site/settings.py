"""Settings of the example project: the least Django needs, plus ``WSGIAUTH``."""

from __future__ import annotations

import os
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent.parent

SECRET_KEY = "example-only-not-a-secret"  # noqa: S105
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS: list[str] = []
MIDDLEWARE = ["django_wsgiauth.middleware.WsgiAuthMiddleware"]
ROOT_URLCONF = "demo_site.urls"
WSGI_APPLICATION = "demo_site.wsgi.application"
USE_TZ = True

WSGIAUTH = {
    # The demo config: guest provider, YAML catalog, SQLite key store.
    "CONFIG": os.environ.get("WSGIAUTH_CONFIG") or str(EXAMPLES / "app-config.yaml"),
    # Every view under /api/ needs a valid identity token (answered 401 otherwise).
    "PROTECTED": ["/api/"],
    # request.user is then a stand-in with is_authenticated and username.
    "SET_USER": True,
}
