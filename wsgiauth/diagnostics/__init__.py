"""The diagnostics page, ``<auth base>/.diagnostics``: what a sign-in depends on, at a glance.

Callback URLs, cookies, provider probes, keys and the catalog, per provider and
environment, as HTML or JSON. One idea per module: :mod:`.access` (who may see
it), :mod:`.probes` (concurrent provider probes within a time budget),
:mod:`.report` (what it shows, never a secret), :mod:`.page` (the HTML) and
:mod:`.routes` (the route the auth app mounts).
"""

from __future__ import annotations

from .access import MIN_TOKEN_LENGTH
from .access import DiagnosticsAccess
from .access import diagnostics_access_from_config
from .page import render_html
from .probes import PROBE_BUDGET
from .probes import PROBE_CONNECT_TIMEOUT
from .probes import PROBE_READ_TIMEOUT
from .probes import SKEW_WARNING_SECONDS
from .routes import DIAGNOSTICS_PATH
from .routes import Diagnostics
from .routes import diagnostics_routes

__all__ = [
    "DIAGNOSTICS_PATH",
    "MIN_TOKEN_LENGTH",
    "PROBE_BUDGET",
    "PROBE_CONNECT_TIMEOUT",
    "PROBE_READ_TIMEOUT",
    "SKEW_WARNING_SECONDS",
    "Diagnostics",
    "DiagnosticsAccess",
    "diagnostics_access_from_config",
    "diagnostics_routes",
    "render_html",
]
