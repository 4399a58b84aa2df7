"""examples/provider_package: a third-party provider, installed by pip and found by entry point.

The package is built from its own ``pyproject.toml`` and installed with pip into a
temporary directory (never into the venv, never leaving files in the repo), which is
then put on ``sys.path`` as a site directory would be. pip builds it in an isolated
environment, getting setuptools from the configured index as ``scripts/setup`` does
for wsgiauth itself. The auth app gets no
``providers=`` argument: ``auth.providers.acme`` must be found through the
``wsgiauth.providers`` entry point. Acme ID's token and profile endpoints are stubbed
with ``responses``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs
from urllib.parse import urlsplit
from wsgiref.validate import validator

import pytest
import responses
import webtest

from tests.conftest import APP_ORIGIN
from tests.conftest import base_config
from tests.conftest import parse_web_message
from tests.conftest import state_of
from wsgiauth import AuthMiddleware
from wsgiauth import Config
from wsgiauth import ConfigError
from wsgiauth import IdentityMiddleware
from wsgiauth import ProviderModule
from wsgiauth import create_auth_app
from wsgiauth import registry

REPO_ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = REPO_ROOT / "examples" / "provider_package"
CATALOG = REPO_ROOT / "tests" / "files" / "catalog"
ACME = "https://id.acme.example"
CALLBACK = "http://localhost:7007/api/auth/acme/handler/frame"
TOKEN = {
    "access_token": "at-1",
    "token_type": "Bearer",
    "expires_in": 3600,
    "refresh_token": "rt-1",
}
JANE = {
    "id": 4711,
    "login": "jane",
    "email": "jane.doe@acme.example",  # not the catalog's email: only the login matches
    "name": "Jane Doe",
    "avatar_url": f"{ACME}/avatars/4711.png",
}


@pytest.fixture(scope="module")
def site_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example package, built and installed by pip into a directory of its own."""
    tmp = tmp_path_factory.mktemp("provider_package")
    source = tmp / "src"  # a copy, so the build leaves no build/ or *.egg-info in the repo
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    site = tmp / "site"
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    done = subprocess.run(
        [*pip, "--no-deps", "--target", str(site), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return site


@pytest.fixture
def installed(site_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The installed package on ``sys.path``, and entry points discovered afresh."""
    monkeypatch.syspath_prepend(str(site_dir))
    registry._entry_points.cache_clear()
    yield site_dir
    registry._entry_points.cache_clear()
    for name in [m for m in sys.modules if m.partition(".")[0] == "wsgiauth_example_idp"]:
        del sys.modules[name]


def protected_app(environ, start_response):
    """The app behind the auth routes: answers with the identity it was handed."""
    identity = environ["wsgiauth.identity"]
    body = {"user": identity.user_entity_ref, "ownership": list(identity.ownership_entity_refs)}
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(body).encode()]


def make_app(*resolvers: str, **settings: Any) -> webtest.TestApp:
    """``auth.providers.acme`` configured, with these ``signIn.resolvers``; no ``providers=``."""
    acme = {"clientId": "wsgiauth-test", "clientSecret": "s3cret"}
    acme["signIn"] = {"resolvers": [{"resolver": name} for name in resolvers]}
    acme = {key: value for key, value in {**acme, **settings}.items() if value is not None}
    config = base_config(providers={"acme": {"development": acme}}, keyStore={"provider": "memory"})
    config["catalog"] = {
        "locations": [
            {"type": "file", "target": str(CATALOG / name)}
            for name in ("users.yaml", "groups.yaml")
        ]
    }
    auth_app = create_auth_app(Config.from_dict(config))
    app = IdentityMiddleware(protected_app, auth_app.verifier, protected=["/api/me"])
    return webtest.TestApp(validator(AuthMiddleware(app, auth_app)))


def sign_in(app: webtest.TestApp, profile: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """Start, then come back from Acme ID with a code: the popup message and the IdP's calls."""
    start = app.get(f"/api/auth/acme/start?env=development&origin={APP_ORIGIN}", status=302)
    with responses.RequestsMock() as idp:
        idp.post(f"{ACME}/oauth2/token", json=TOKEN)
        idp.get(f"{ACME}/api/v1/me", json=profile)
        page = app.get(f"/api/auth/acme/handler/frame?code=c-1&state={state_of(start.location)}")
        calls = list(idp.calls)  # the mock forgets them on exit
    return parse_web_message(page.text), calls


def query_of(url: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


def test_the_entry_point_names_the_installed_module(installed: Path) -> None:
    (point,) = [ep for ep in entry_points(group="wsgiauth.providers") if ep.name == "acme"]
    assert point.value == "wsgiauth_example_idp.acme:module"
    module = point.load()
    assert isinstance(module, ProviderModule)
    assert module.provider_id == "acme"
    assert set(module.resolvers) == {"acmeLoginMatchingUserEntityName"}
    # Loaded from the pip install, not from the example's source tree.
    assert Path(sys.modules["wsgiauth_example_idp.acme"].__file__).is_relative_to(installed)


def test_start_sends_the_browser_to_acme_id_with_pkce(installed: Path) -> None:
    start = make_app("acmeLoginMatchingUserEntityName").get(
        f"/api/auth/acme/start?env=development&origin={APP_ORIGIN}", status=302
    )
    assert start.location.startswith(f"{ACME}/oauth2/authorize?")
    query = query_of(start.location)
    assert query.pop("state") == state_of(start.location)
    assert len(query.pop("code_challenge")) == 43
    assert query == {
        "response_type": "code",
        "client_id": "wsgiauth-test",
        "redirect_uri": CALLBACK,
        "scope": "profile email",
        "code_challenge_method": "S256",
    }


def test_sign_in_end_to_end_gives_a_token_for_the_catalog_user(installed: Path) -> None:
    app = make_app("acmeLoginMatchingUserEntityName")
    message, calls = sign_in(app, JANE)

    token_call, profile_call = calls
    form = {key: values[0] for key, values in parse_qs(token_call.request.body).items()}
    assert form.pop("code_verifier")
    assert form == {"grant_type": "authorization_code", "code": "c-1", "redirect_uri": CALLBACK}
    assert token_call.request.headers["Authorization"].startswith("Basic ")
    assert profile_call.request.headers["Authorization"] == "Bearer at-1"

    assert message["type"] == "authorization_response"
    response = message["response"]
    assert response["profile"] == {
        "email": "jane.doe@acme.example",
        "displayName": "Jane Doe",
        "picture": f"{ACME}/avatars/4711.png",
    }
    assert response["providerInfo"]["accessToken"] == "at-1"
    identity = response["backstageIdentity"]
    assert identity["identity"]["userEntityRef"] == "user:default/jane"
    assert "group:default/team-a" in identity["identity"]["ownershipEntityRefs"]

    # The identity token opens the app's protected path; without it, 401.
    app.get("/api/me", status=401)
    me = app.get("/api/me", headers={"Authorization": f"Bearer {identity['token']}"}).json
    assert me["user"] == "user:default/jane"


def test_refresh_goes_through_acme_id_too(installed: Path) -> None:
    app = make_app("acmeLoginMatchingUserEntityName")
    sign_in(app, JANE)
    with responses.RequestsMock() as idp:
        idp.post(f"{ACME}/oauth2/token", json={"access_token": "at-2", "token_type": "Bearer"})
        idp.get(f"{ACME}/api/v1/me", json=JANE)
        body = app.get(
            "/api/auth/acme/refresh?env=development",
            headers={"X-Requested-With": "XMLHttpRequest"},
        ).json
        assert parse_qs(idp.calls[0].request.body)["refresh_token"] == ["rt-1"]
    assert body["providerInfo"]["accessToken"] == "at-2"
    assert body["backstageIdentity"]["identity"]["userEntityRef"] == "user:default/jane"


@pytest.mark.parametrize(
    ("profile", "outcome"),
    [
        pytest.param(
            {"login": "joe", "email": "x@nowhere.example"}, "user:default/joe", id="login"
        ),
        pytest.param(
            {"login": "jane", "email": "joe@acme.org"}, "user:default/joe", id="email-first"
        ),
        pytest.param(
            {"login": "nobody", "email": "x@nowhere.example"},
            "NotFoundError: Failed to sign-in, unable to resolve user identity.",
            id="unknown-login",
        ),
        pytest.param(
            {"email": "x@nowhere.example"},
            "AuthenticationError: Login failed, the Acme ID profile has no login",
            id="no-login",
        ),
    ],
)
def test_acme_login_resolver_after_the_email_resolver(
    installed: Path, profile: dict[str, Any], outcome: str
) -> None:
    app = make_app("emailMatchingUserEntityProfileEmail", "acmeLoginMatchingUserEntityName")
    message, _ = sign_in(app, profile)
    if "response" in message:
        assert message["response"]["backstageIdentity"]["identity"]["userEntityRef"] == outcome
    else:
        error = message["error"]
        assert f"{error['name']}: {error['message']}".startswith(outcome)


@pytest.mark.parametrize(
    ("settings", "key", "message"),
    [
        pytest.param({"clientSecret": None}, "clientSecret", "missing", id="no-secret"),
        pytest.param({"domain": "id.acme.example"}, "domain", "absolute", id="relative-domain"),
    ],
)
def test_bad_provider_config_fails_at_startup_naming_the_key(
    installed: Path, settings: dict[str, Any], key: str, message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        make_app("acmeLoginMatchingUserEntityName", **settings)
    assert info.value.path == f"auth.providers.acme.development.{key}"
    assert message in info.value.reason


def test_unknown_resolver_option_fails_at_startup(installed: Path) -> None:
    with pytest.raises(ConfigError, match="does not accept options"):
        make_app(signIn={"resolvers": [{"resolver": "acmeLoginMatchingUserEntityName", "x": 1}]})
