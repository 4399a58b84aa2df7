"""flask_wsgiauth specifics: the app factory pattern, ``current_identity``, ``config=``."""

from __future__ import annotations

from wsgiref.validate import validator

import flask
import pytest
import webtest
from flask_wsgiauth import WsgiAuth
from flask_wsgiauth import current_identity
from flask_wsgiauth import get_identity
from flask_wsgiauth import login_required

from tests.adapters.conftest import new_auth_app
from wsgiauth import ConfigError


def make_app(extension: WsgiAuth, config=None) -> webtest.TestApp:
    app = flask.Flask("test_flask")
    if config is not None:
        app.config["WSGIAUTH_CONFIG"] = config

    @app.get("/me")
    def me():
        return {"truthy": bool(current_identity), "identity": get_identity() is not None}

    @app.get("/private")
    @login_required
    def private():
        return {"user": current_identity.user_entity_ref}

    extension.init_app(app)
    return webtest.TestApp(validator(app))


def bearer(app: webtest.TestApp) -> dict[str, str]:
    token = app.get("/api/auth/guest/refresh").json["backstageIdentity"]["token"]
    return {"Authorization": f"Bearer {token}"}


def test_one_extension_serves_apps_with_their_own_configs():
    extension = WsgiAuth()
    first = make_app(extension, new_auth_app())
    second = make_app(extension, new_auth_app())
    assert first.get("/private", headers=bearer(first)).json == {"user": "user:development/guest"}
    # Each app verifies with its own keys: the first app's token means nothing here.
    second.get("/private", headers=bearer(first), status=401)


def test_current_identity_is_falsy_without_a_valid_token():
    app = make_app(WsgiAuth(), new_auth_app())
    assert app.get("/me").json == {"truthy": False, "identity": False}
    assert app.get("/me", headers={"Authorization": "Bearer bad"}).json == {
        "truthy": False,
        "identity": False,
    }
    assert app.get("/me", headers=bearer(app)).json == {"truthy": True, "identity": True}


def test_the_config_argument_beats_the_app_config():
    app = make_app(WsgiAuth(config=new_auth_app()), config="/nonexistent/app-config.yaml")
    assert app.get("/api/auth/guest/refresh").status_int == 200


def test_a_missing_config_fails_naming_the_flask_setting():
    with pytest.raises(ConfigError) as caught:
        WsgiAuth(flask.Flask("test_flask"))
    assert caught.value.path == "WSGIAUTH_CONFIG"
    assert str(caught.value).startswith("WSGIAUTH_CONFIG: missing")


def test_a_non_ascii_protected_prefix_guards_the_flask_view():
    """Flask routes on the decoded path; the prefix must match PATH_INFO's PEP 3333 form."""
    from wsgiauth import IdentityMiddleware

    auth_app = new_auth_app()
    app = flask.Flask("nonascii")
    WsgiAuth(app, config=auth_app)

    @app.get("/privé/data")
    def data():
        return {"secret": True}

    app.wsgi_app = IdentityMiddleware(app.wsgi_app, auth_app.verifier, protected=["/privé"])
    client = webtest.TestApp(validator(app))
    refused = client.get("/priv%C3%A9/data", status=401)
    assert refused.json["request"]["url"] == "/priv%C3%A9/data"
    token = client.get("/api/auth/guest/refresh").json["backstageIdentity"]["token"]
    signed_in = client.get("/priv%C3%A9/data", headers={"Authorization": f"Bearer {token}"})
    assert signed_in.json == {"secret": True}
