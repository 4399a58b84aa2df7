"""django_wsgiauth specifics: PROTECTED prefixes, the request.user stand-in, settings checks."""

from __future__ import annotations

from wsgiref.validate import validator

import pytest
import webtest
import yaml
from django.test import override_settings

from tests.adapters.conftest import auth_config
from tests.adapters.conftest import new_auth_app
from wsgiauth import Config
from wsgiauth import ConfigError


def bearer(app: webtest.TestApp) -> dict[str, str]:
    token = app.get("/api/auth/guest/refresh").json["backstageIdentity"]["token"]
    return {"Authorization": f"Bearer {token}"}


def host(build_host, source, **wsgiauth) -> webtest.TestApp:
    return webtest.TestApp(validator(build_host("django", source, **wsgiauth)))


def test_protected_prefixes_need_a_token_in_the_middleware(build_host):
    app = host(build_host, new_auth_app(), PROTECTED=["/api/data"], SET_USER=True)
    refused = app.get("/api/data/user", status=401)
    assert refused.json["error"]["message"] == "Missing credentials"
    assert refused.json["request"] == {"method": "GET", "url": "/api/data/user"}
    assert app.get("/api/data/user", headers=bearer(app)).json == {
        "is_authenticated": True,
        "username": "user:development/guest",
    }
    assert app.get("/open/user").json == {"is_authenticated": False, "username": ""}


@pytest.mark.parametrize(
    ("protected", "path"),
    [
        pytest.param("/api", "/api/caf%C3%A9", id="ascii-prefix-non-ascii-path"),
        pytest.param("/api/café", "/api/caf%C3%A9/x", id="non-ascii-prefix"),
        pytest.param("/データ", "/%E3%83%87%E3%83%BC%E3%82%BF", id="beyond-latin-1"),
    ],
)
def test_non_ascii_paths_are_guarded_and_refused_cleanly(build_host, protected, path):
    """Django decodes PATH_INFO in place: compare and echo it in its WSGI form, no 500."""
    app = host(build_host, new_auth_app(), PROTECTED=[protected])
    refused = app.get(path, status=401)
    assert refused.json["request"] == {"method": "GET", "url": path}
    app.get(path, headers=bearer(app), status=404)  # signed in: on to Django's routing


@pytest.mark.parametrize("kind", ["path", "paths", "config"])
def test_one_config_gives_wrap_and_middleware_one_auth_app(build_host, tmp_path, kind):
    # With keys in memory, a second auth app could not verify the first one's tokens.
    config = auth_config()
    config["auth"]["providers"] = {"guest": {}}
    path = tmp_path / "app-config.yaml"
    path.write_text(yaml.safe_dump(config))
    source = {"path": path, "paths": [str(path)], "config": Config.from_dict(config)}[kind]
    app = host(build_host, source)
    assert app.get("/private", headers=bearer(app)).json["user"] == "user:development/guest"


@pytest.mark.parametrize(
    ("settings", "path"),
    [
        pytest.param({"WSGIAUTH": None}, "WSGIAUTH", id="no-wsgiauth"),
        pytest.param({"WSGIAUTH": {}}, "WSGIAUTH.CONFIG", id="no-config"),
        pytest.param({"WSGIAUTH": {"CONFIG": "  "}}, "WSGIAUTH.CONFIG", id="blank-config"),
        pytest.param(
            {"WSGIAUTH": {"CONFIG": "app", "PROTECTED": "/private"}},
            "WSGIAUTH.PROTECTED",
            id="protected-a-string",
        ),
        pytest.param(
            {"WSGIAUTH": {"CONFIG": "app", "PROTECTED": ["private"]}},
            "WSGIAUTH.PROTECTED",
            id="protected-relative",
        ),
    ],
)
def test_bad_settings_fail_when_django_loads_the_middleware(django_configured, settings, path):
    from django.core.wsgi import get_wsgi_application

    if settings["WSGIAUTH"] and settings["WSGIAUTH"].get("CONFIG") == "app":
        settings["WSGIAUTH"]["CONFIG"] = new_auth_app()
    middleware = ["django_wsgiauth.middleware.WsgiAuthMiddleware"]
    with override_settings(MIDDLEWARE=middleware, **settings), pytest.raises(ConfigError) as caught:
        get_wsgi_application()
    assert caught.value.path == path
