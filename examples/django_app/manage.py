#!/usr/bin/env python
"""Django's command line for the example project.

Run ``python examples/django_app/manage.py runserver 127.0.0.1:7007`` and open
http://127.0.0.1:7007: "Sign in as guest" gets an identity token from
``/api/auth/guest/refresh`` and calls ``/private`` with it. ``runserver`` serves
``WSGI_APPLICATION``, the Django app wrapped by ``django_wsgiauth.wsgi.wrap``.
"""

from __future__ import annotations

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo_site.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
