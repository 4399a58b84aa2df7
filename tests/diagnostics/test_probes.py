"""Provider probes: answers, failures, clock skew, and a budget no stuck provider can hold up.

Providers are faked with ``responses`` (probes run on the page's own threads, which
``responses`` reaches too); waits are bounded by events, never by sleeps.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import responses

from tests.diagnostics.conftest import CLIENT_SECRET
from tests.diagnostics.conftest import METADATA
from tests.diagnostics.conftest import WAIT
from tests.diagnostics.conftest import discovery_document
from tests.diagnostics.conftest import json_report
from tests.diagnostics.conftest import make_client
from tests.diagnostics.conftest import make_config
from tests.diagnostics.conftest import oidc_settings
from wsgiauth.app import create_auth_app
from wsgiauth.diagnostics import probes as probes_module


def test_a_clock_off_the_providers_is_flagged(idp):
    app = create_auth_app(make_config())
    page = app._extra_routes["/.diagnostics"]
    page._clock = lambda: time.time() + 120  # this server two minutes ahead
    report = page.report()
    discovery = report["providers"][0]["probes"][0]
    assert 100 < discovery["clockSkewSeconds"] < 140
    assert "clock is off" in discovery["warning"]


def test_a_provider_that_is_down_is_shown_down(idp):
    idp.replace(responses.GET, METADATA, status=502)
    discovery = json_report(make_client(make_config()))["providers"][0]["probes"][0]
    assert discovery["ok"] is False
    assert "answered 502" in discovery["error"]


def test_a_token_endpoint_is_probed_for_providers_without_discovery(idp):
    idp.get("https://idp.example/token", status=405)
    oauth2 = {
        "clientId": "id",
        "clientSecret": CLIENT_SECRET,
        "authorizationUrl": "https://idp.example/authorize",
        "tokenUrl": "https://idp.example/token",
    }
    report = json_report(make_client(make_config(providers={"oauth2": {"development": oauth2}})))
    (probe,) = report["providers"][0]["probes"]
    assert (probe["target"], probe["status"], probe["ok"]) == ("token endpoint", 405, True)


def test_probes_run_concurrently_and_a_stuck_one_does_not_hold_the_page(idp, monkeypatch):
    # Two providers whose discovery answers only once both were asked: run one after
    # the other, neither would answer. A third never answers at all.
    both_asked = threading.Barrier(2, timeout=WAIT)
    stuck = threading.Event()

    def meeting(request: Any) -> tuple[int, dict[str, str], str]:
        both_asked.wait()
        return 200, {}, json.dumps(discovery_document())

    def never(request: Any) -> tuple[int, dict[str, str], str]:
        stuck.wait(WAIT)
        return 504, {}, ""

    for host in ("a", "b"):
        idp.add_callback(
            responses.GET,
            f"https://{host}.example/.well-known/openid-configuration",
            callback=meeting,
        )
    idp.add_callback(
        responses.GET, "https://c.example/.well-known/openid-configuration", callback=never
    )
    monkeypatch.setattr(probes_module, "PROBE_BUDGET", 2.0)
    providers = {
        "oidc": {
            "development": oidc_settings("https://a.example/.well-known/openid-configuration"),
            "production": oidc_settings("https://b.example/.well-known/openid-configuration"),
            "staging": oidc_settings("https://c.example/.well-known/openid-configuration"),
        }
    }
    try:
        report = json_report(make_client(make_config(providers=providers)))
    finally:
        stuck.set()
    probes = {p["environment"]: p["probes"][0] for p in report["providers"]}
    assert probes["development"]["ok"] and probes["production"]["ok"]
    assert probes["staging"] == {"target": "provider", "ok": False, "error": "no answer in 2 s"}


def _handlers(authenticator: Any) -> Any:
    from types import SimpleNamespace

    return SimpleNamespace(authenticator=authenticator)


def test_saml_metadata_is_probed_as_an_xml_document_not_as_discovery(idp):
    from wsgiauth.http import create_http_client
    from wsgiauth.providers.saml.authenticator import SamlAuthenticator

    url = "https://idp.example/saml/metadata"
    idp.get(url, body="<EntityDescriptor/>", content_type="application/samlmetadata+xml")
    saml = object.__new__(SamlAuthenticator)  # only its metadata URL matters here
    saml.metadata_url = url
    (probe,) = probes_module._probe_provider(create_http_client(), _handlers(saml), time.time)
    assert (probe["target"], probe["status"], probe["ok"]) == ("SAML metadata", 200, True)
    idp.replace(responses.GET, url, status=404)
    (probe,) = probes_module._probe_provider(create_http_client(), _handlers(saml), time.time)
    assert probe["ok"] is False


def test_pinniped_names_its_federation_domains_discovery(idp):
    from wsgiauth.http import create_http_client
    from wsgiauth.oauth import ClientCredentials
    from wsgiauth.providers.pinniped import PinnipedAuthenticator

    pinniped = PinnipedAuthenticator(
        credentials=ClientCredentials("id", "secret"),
        callback_url="http://localhost/cb",
        federation_domain="https://idp.example",
        http=create_http_client(),
    )
    probes = probes_module._probe_provider(create_http_client(), _handlers(pinniped), time.time)
    assert [(p["target"], p["ok"]) for p in probes] == [("discovery", True), ("jwks", True)]
    assert probes[1]["keys"] == 2


def test_a_third_party_authenticator_names_what_to_probe_or_nothing_is(idp):
    from wsgiauth.http import create_http_client
    from wsgiauth.oauth import ProbeTarget

    class Named:
        def probe_targets(self) -> list[ProbeTarget]:
            return [ProbeTarget("status page", "https://idp.example/status", "document")]

    idp.get("https://idp.example/status", body="up")
    http = create_http_client()
    (probe,) = probes_module._probe_provider(http, _handlers(Named()), time.time)
    assert (probe["target"], probe["ok"]) == ("status page", True)
    # An attribute that looks like an endpoint is not a declaration.
    quiet = type("Quiet", (), {"token_url": "https://idp.example/token"})()
    (probe,) = probes_module._probe_provider(http, _handlers(quiet), time.time)
    assert probe == {"target": "provider", "ok": None, "note": "nothing to probe at a known URL"}

