"""The diagnostics page as HTML for a person: one self-contained page, every value escaped.

No script at all (the response's Content-Security-Policy allows none); the one
inline style block is the page's only resource. The same report is JSON for a
script (``?format=json``), rendered by :func:`~wsgiauth.responses.json_response`.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

__all__ = ["render_html"]

_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em;max-width:70em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;
padding:.3em .6em;text-align:left;vertical-align:top}th{background:#f4f4f4}
.bad{color:#b00020;font-weight:600}.ok{color:#1b5e20}code{background:#f4f4f4;padding:0 .2em}
"""


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value))


def _ok(value: object) -> str:
    if value is None:
        return "<span>n/a</span>"
    return '<span class="ok">yes</span>' if value else '<span class="bad">no</span>'


def _probe_row(probe: Mapping[str, Any]) -> str:
    detail = [
        f"HTTP {_e(probe['status'])}" if "status" in probe else "",
        f"{_e(probe['ms'])} ms" if "ms" in probe else "",
        f"{_e(probe['keys'])} keys" if "keys" in probe else "",
        _e(probe.get("error") or probe.get("note") or ""),
    ]
    skew = probe.get("clockSkewSeconds")
    warning = probe.get("warning")
    skew_cell = "n/a" if skew is None else f"{skew:+g} s"
    if warning:
        skew_cell += f' <span class="bad">{_e(warning)}</span>'
    return (
        f"<tr><td>{_e(probe['target'])}</td><td><code>{_e(probe.get('url', ''))}</code></td>"
        f"<td>{_ok(probe.get('ok'))}</td><td>{', '.join(d for d in detail if d)}</td>"
        f"<td>{skew_cell}</td></tr>"
    )


def _provider_section(provider: Mapping[str, Any]) -> str:
    if provider["kind"] == "proxy":
        return f"<h3>{_e(provider['provider'])} (proxy)</h3><p>{_e(provider['note'])}</p>"
    cookies = provider["cookies"]
    why = "".join(f"<li>{_e(reason)}</li>" for reason in cookies["why"])
    probes = "".join(_probe_row(probe) for probe in provider["probes"])
    return (
        f"<h3>{_e(provider['provider'])} — environment {_e(provider['environment'])}</h3>"
        "<p>Callback URL to register at the provider: "
        f'<code class="callback">{_e(provider["callbackUrl"])}</code></p>'
        "<table><tr><th>Cookie attribute</th><th>Value</th></tr>"
        f"<tr><td>SameSite</td><td>{_e(cookies['sameSite'])}</td></tr>"
        f"<tr><td>Secure</td><td>{_e(cookies['secure'])}</td></tr>"
        f"<tr><td>Path</td><td><code>{_e(cookies['path'])}</code> (nonce: "
        f"<code>{_e(cookies['noncePath'])}</code>)</td></tr>"
        f"<tr><td>HttpOnly</td><td>{_e(cookies['httpOnly'])}</td></tr></table>"
        f"<ul>{why}</ul>"
        "<table><tr><th>Probe</th><th>URL</th><th>Answers</th><th>Detail</th>"
        f"<th>Clock skew (ours − theirs)</th></tr>{probes}</table>"
    )


def _keys_section(keys: Mapping[str, Any]) -> str:
    if not keys["ok"]:
        return f'<p class="bad">{_e(keys["store"])}: {_e(keys["error"])}</p>'
    rows = "".join(
        f"<tr><td><code>{_e(k['kid'])}</code></td><td>{_e(k['algorithm'])}</td>"
        f"<td>{_e(k['createdAt'])}</td><td>{_e(k['ageSeconds'])}</td>"
        f"<td>{_e(k['signsUntil'])}</td><td>{_e(k['listedUntil'])}</td></tr>"
        for k in keys["keys"]
    )
    return (
        f"<p>{_e(keys['store'])}: {len(keys['keys'])} keys. Next rotation: "
        f'<span class="next-rotation">{_e(keys["nextRotation"] or "none")}</span>. '
        f"Rotation requested: {_e(keys['rotationRequestedAt'] or 'never')}. {_e(keys['note'])}.</p>"
        "<table><tr><th>kid</th><th>Algorithm</th><th>Created</th><th>Age (s)</th>"
        f"<th>Signs until</th><th>Listed until</th></tr>{rows}</table>"
    )


def _catalog_section(catalog: Mapping[str, Any]) -> str:
    if catalog["kind"] != "YamlCatalog":
        return f"<p>{_e(catalog['kind'])}: {_e(catalog['note'])}</p>"
    error = catalog["lastError"]
    return (
        f'<p><span class="entities">{_e(catalog["entities"])}</span> entities, last reload '
        f"{_e(catalog['lastReload'])}. Last error: "
        + (f'<span class="bad">{_e(error)}</span>' if error else "none")
        + "</p>"
    )


def render_html(report: Mapping[str, Any]) -> str:
    """The report as one self-contained page: no script, every value escaped."""
    providers = "".join(_provider_section(p) for p in report["providers"])
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        "<title>wsgiauth diagnostics</title>"
        f"<style>{_STYLE}</style></head><body>"
        "<h1>wsgiauth diagnostics</h1>"
        f"<p>Environment <strong>{_e(report['environment'])}</strong>, auth base URL "
        f"<code>{_e(report['authBaseUrl'])}</code>, app <code>{_e(report['appUrl'])}</code>, "
        f"generated {_e(report['generatedAt'])}. "
        'JSON: <a href="?format=json">?format=json</a>.</p>'
        f"<h2>Providers</h2>{providers or '<p>No providers configured.</p>'}"
        f"<h2>Key store</h2>{_keys_section(report['keyStore'])}"
        f"<h2>Catalog</h2>{_catalog_section(report['catalog'])}"
        "</body></html>"
    )
