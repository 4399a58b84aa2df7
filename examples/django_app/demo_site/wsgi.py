"""The WSGI application: Django, with the auth routes mounted in front by ``wrap``."""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application
from django_wsgiauth.wsgi import wrap

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo_site.settings")

application = wrap(get_wsgi_application())
