"""Small response builders shared by the auth routes.

JSON bodies are sent as Express sends them (``application/json; charset=utf-8``),
never cached, since every one of them carries a session or an error about one.
"""

from __future__ import annotations

import json
from typing import Any

from webob import Response

__all__ = ["json_response"]


def json_response(body: Any, *, status: int = 200) -> Response:
    """A non-cacheable JSON response."""
    return Response(
        body=json.dumps(body, separators=(",", ":")).encode("utf-8"),
        status=status,
        headerlist=[
            ("Content-Type", "application/json; charset=utf-8"),
            ("Cache-Control", "no-store"),
        ],
    )
