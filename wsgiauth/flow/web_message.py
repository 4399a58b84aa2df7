"""The popup callback page that ``postMessage``s the result to the opener (spec §5).

The page carries one inline script, pinned by a CSP ``sha256`` hash, that
posts ``config_info`` to ``*`` (harmless: it only names the expected origin, for
diagnostics) and then the real message to the exact app origin, and closes
after 100 ms (the frontend polls for a closed popup every 100 ms).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from webob import Response

__all__ = ["web_message_response"]

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")

_SCRIPT_TEMPLATE = """
      var authResponse = decodeURIComponent('{data}');
      var origin = decodeURIComponent('{origin}');
      var originInfo = {{'type': 'config_info', 'targetOrigin': origin}};
      (window.opener || window.parent).postMessage(originInfo, '*');
      (window.opener || window.parent).postMessage(JSON.parse(authResponse), origin);
      setTimeout(function() {{
        window.close();
      }}, 100); // same as the popup-closed polling interval of the frontend
    """


def _safe(value: str) -> str:
    """``encodeURIComponent`` plus ``'`` → ``%27``: nothing can end the JS string or the script."""
    return quote(value, safe="-_.!~*()").replace("'", "%27")


def web_message_response(origin: str, payload: Mapping[str, Any]) -> Response:
    """A 200 HTML page that delivers ``payload`` to its opener, at ``origin`` only."""
    data = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    # A lone surrogate (json.loads lets an IdP send "\\ud800") cannot be UTF-8
    # encoded; escape it as JSON.stringify does rather than fail the whole page.
    data = _LONE_SURROGATE.sub(lambda match: f"\\u{ord(match.group()):04x}", data)
    script = _SCRIPT_TEMPLATE.format(data=_safe(data), origin=_safe(origin))
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    response = Response(
        body=f"<html><body><script>{script}</script></body></html>".encode(),
        status=200,
        headerlist=[("Content-Type", "text/html")],
    )
    # The hash lets exactly this script run: injected markup can run nothing.
    response.headers["Content-Security-Policy"] = f"script-src 'sha256-{digest}'"
    # The page must not be framed by another site (clickjacking of the popup).
    response.headers["X-Frame-Options"] = "sameorigin"
    response.cache_control = "no-store"
    return response
