"""SAML sign-in in Chromium through the popup, against a real SAML IdP (npm ``samlify``).

The IdP (``tests/e2e/saml_idp/server.mjs``) reads wsgiauth's SP metadata, parses the
``AuthnRequest`` and signs the ``Response`` (assertion and message) with xml-crypto;
wsgiauth fetches the IdP's metadata from ``metadataUrl`` and verifies with xmlsec1.
wsgiauth runs in this process behind a threaded server, with an SQLite database (the
replay store) and ``wsgiauth.js`` driving the popup from a page of the app.
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from tests.certificates import key_and_cert
from tests.e2e.browser.conftest import serve_in_thread
from tests.e2e.browser.conftest import wait_closed
from tests.e2e.conftest import _stop
from tests.e2e.conftest import free_port
from tests.e2e.conftest import wait_for_http
from wsgiauth import AuthMiddleware
from wsgiauth import Config
from wsgiauth import create_auth_app

pytestmark = pytest.mark.e2e

IDP_DIR = Path(__file__).resolve().parents[1] / "saml_idp"

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>SAML sign-in</title>
<script src="/api/auth/.client/wsgiauth.js"></script></head>
<body><p>Signed in as: <span id="user"></span></p>
<script>
  const auth = new WsgiAuth({});
  const saml = auth.provider('saml', { flow: 'popup' });
  window.samlTitle = saml.title;
  window.outcome = null;
  window.signIn = () => saml.signIn().then(
    (session) => { window.outcome = { session }; },
    (error) => { window.outcome = { error: `${error.name}: ${error.message}` }; },
  );
  window.refresh = () => saml.getSession({ optional: true, instantPopup: false });
</script></body></html>
"""

CATALOG = [
    {
        "apiVersion": "backstage.io/v1alpha1",
        "kind": "User",
        "metadata": {"name": "jane"},
        "spec": {"profile": {"email": "jane@example.com"}, "memberOf": ["platform"]},
    },
    {
        "apiVersion": "backstage.io/v1alpha1",
        "kind": "Group",
        "metadata": {"name": "platform"},
        "spec": {"type": "team", "children": []},
    },
]


@dataclass(frozen=True, slots=True)
class SamlEnv:
    backend: str
    idp: str
    idp_log: Path

    def idp_log_tail(self) -> str:
        return "\n".join(self.idp_log.read_text(errors="replace").splitlines()[-40:])


def _key_and_cert(directory: Path) -> tuple[Path, Path]:
    key_path, cert_path = directory / "idp-key.pem", directory / "idp-cert.pem"
    key_pem, cert_pem = key_and_cert("e2e-saml-idp")
    key_path.write_text(key_pem)
    cert_path.write_text(cert_pem)
    return key_path, cert_path


def _page_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    body = PAGE.encode()
    start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
    return [body]


@contextlib.contextmanager
def _run_idp(port: int, workdir: Path, sp_metadata_url: str) -> Iterator[Path]:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed (scripts/test installs it)")
    if not (IDP_DIR / "node_modules" / "samlify").is_dir():
        pytest.fail(f"samlify is not installed: run `npm ci --prefix {IDP_DIR}`")
    key, cert = _key_and_cert(workdir)
    log_path = workdir / "saml-idp.log"
    args = [node, str(IDP_DIR / "server.mjs"), str(port), str(key), str(cert), sp_metadata_url]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(args, cwd=IDP_DIR, stdout=log, stderr=log)
    try:
        wait_for_http(proc, f"http://127.0.0.1:{port}/metadata", log_path, what="the SAML IdP")
        yield log_path
    finally:
        _stop(proc)


@pytest.fixture(scope="module")
def saml_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SamlEnv]:
    port, idp_port = free_port(), free_port()
    backend, idp = f"http://localhost:{port}", f"http://localhost:{idp_port}"
    workdir = tmp_path_factory.mktemp("saml-e2e")
    catalog = workdir / "catalog.yaml"
    catalog.write_text(yaml.safe_dump_all(CATALOG, sort_keys=False))
    config = {
        "app": {"baseUrl": backend},
        "backend": {
            "baseUrl": backend,
            "database": {
                "client": "better-sqlite3",
                "connection": {"filename": str(workdir / "auth.sqlite")},
            },
        },
        "catalog": {"locations": [{"type": "file", "target": str(catalog)}]},
        "auth": {
            "environment": "development",
            "session": {"secret": secrets.token_urlsafe(32)},
            "keyStore": {"provider": "database"},
            "providers": {
                "saml": {
                    "entryPoint": f"{idp}/sso",
                    "metadataUrl": f"{idp}/metadata",
                    "issuer": f"{backend}/api/auth/saml/metadata",
                    "acceptedClockSkewMs": 5000,
                    "signIn": {"resolvers": [{"resolver": "nameIdMatchingUserEntityName"}]},
                }
            },
        },
    }
    auth_app = create_auth_app(Config.from_dict(config))
    with (
        serve_in_thread(port, AuthMiddleware(_page_app, auth_app)),
        _run_idp(idp_port, workdir, f"{backend}/api/auth/saml/metadata") as idp_log,
    ):
        yield SamlEnv(backend=backend, idp=idp, idp_log=idp_log)


def _sign_in(context: Any, saml_env: SamlEnv, user: str) -> tuple[Any, dict[str, Any]]:
    page = context.new_page()
    page.goto(saml_env.backend + "/")
    with page.expect_popup() as popup_info:
        page.evaluate("() => { window.signIn(); }")
    popup = popup_info.value
    popup.wait_for_load_state()
    assert popup.url.startswith(f"{saml_env.idp}/sso?SAMLRequest="), popup.url
    popup.fill("input[name=username]", user)
    popup.click("button[type=submit]")
    page.wait_for_function("window.outcome !== null")
    wait_closed(popup)
    return page, page.evaluate("window.outcome")


def test_popup_sign_in_through_a_real_saml_idp(context, saml_env) -> None:
    page, outcome = _sign_in(context, saml_env, "jane")
    assert page.evaluate("window.samlTitle") == "SAML"  # wsgiauth.js knows it, as Backstage's did
    assert "session" in outcome, f"{outcome}\n{saml_env.idp_log_tail()}"
    session = outcome["session"]
    identity = session["backstageIdentity"]["identity"]
    assert identity["userEntityRef"] == "user:default/jane"
    assert identity["ownershipEntityRefs"] == ["user:default/jane", "group:default/platform"]
    names = {cookie["name"] for cookie in context.cookies()}
    assert "saml-refresh-token" in names
    assert not any(name.startswith("saml-flow-") for name in names)  # the flow is over

    # A new page restores the session from the sealed cookie (/refresh), no popup.
    restored = context.new_page()
    restored.goto(saml_env.backend + "/")
    again = restored.evaluate("window.refresh()")
    assert again["backstageIdentity"]["identity"]["userEntityRef"] == "user:default/jane"


def test_unknown_user_is_refused_in_the_popup(context, saml_env) -> None:
    _, outcome = _sign_in(context, saml_env, "mallory")
    assert "error" in outcome, outcome
    assert "resolve user identity" in outcome["error"] or "not found" in outcome["error"]


def test_the_idp_reads_the_sp_metadata(saml_env) -> None:
    metadata = requests.get(f"{saml_env.backend}/api/auth/saml/metadata", timeout=5)
    assert metadata.ok
    assert f"{saml_env.backend}/api/auth/saml/handler/frame" in metadata.text
