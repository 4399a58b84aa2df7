"""The diagnostics page's HTML: every value it shows is escaped."""

from __future__ import annotations

from wsgiauth.diagnostics import render_html


def test_html_escapes_everything_it_shows():
    report = {
        "environment": "<b>dev</b>",
        "authBaseUrl": "http://x/api/auth",
        "appUrl": "http://x",
        "generatedAt": "now",
        "providers": [],
        "keyStore": {"store": "S", "ok": False, "error": "<script>alert(1)</script>"},
        "catalog": {"kind": "YamlCatalog", "entities": 1, "lastReload": "t", "lastError": "<img>"},
    }
    page = render_html(report)
    assert "<script>" not in page and "<img>" not in page and "<b>dev" not in page
    assert "&lt;script&gt;" in page
