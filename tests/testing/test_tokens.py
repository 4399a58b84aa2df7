"""Test tokens signed by the app's own auth app, and finding that auth app."""

from __future__ import annotations

import pytest
import webtest
from flask import Flask
from flask_wsgiauth import WsgiAuth

from wsgiauth import AuthenticationError
from wsgiauth import AuthMiddleware
from wsgiauth import IdentityMiddleware
from wsgiauth import create_auth_app
from wsgiauth.app import AuthApp
from wsgiauth.config import Config
from wsgiauth.testing import find_auth_app
from wsgiauth.testing import issue_identity_token

CONFIG = {
    "app": {"baseUrl": "http://localhost"},
    "backend": {"baseUrl": "http://localhost"},
    "auth": {"keyStore": {"provider": "memory"}},
}


def make_auth_app() -> AuthApp:
    return create_auth_app(Config.from_dict(CONFIG))


def inner(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [environ["wsgiauth.identity"].user_entity_ref.encode()]


def test_the_token_passes_the_apps_own_check():
    auth_app = make_auth_app()
    token = issue_identity_token(auth_app, "user:default/jane", ["group:default/team-a"])
    identity = auth_app.verifier.verify(token)
    assert identity.user_entity_ref == "user:default/jane"
    assert identity.ownership_entity_refs == ("user:default/jane", "group:default/team-a")
    app = AuthMiddleware(IdentityMiddleware(inner, auth_app.verifier, protected=["/"]), auth_app)
    headers = {"Authorization": f"Bearer {token}"}
    assert webtest.TestApp(app).get("/", headers=headers).text == "user:default/jane"


def test_extra_claims_and_no_duplicate_refs():
    auth_app = make_auth_app()
    token = issue_identity_token(
        auth_app, "user:default/jane", ["user:default/jane", "group:default/a"], amr=["test"]
    )
    identity = auth_app.verifier.verify(token)
    assert identity.ownership_entity_refs == ("user:default/jane", "group:default/a")
    assert identity.claims["amr"] == ["test"]


def test_a_token_of_another_auth_app_is_refused():
    """The fixture opens no back door: only the app's own key signs tokens it accepts."""
    mine, other = make_auth_app(), make_auth_app()
    token = issue_identity_token(other, "user:default/jane")
    with pytest.raises(AuthenticationError):
        mine.verifier.verify(token)


def test_a_bad_user_ref_is_refused():
    with pytest.raises(Exception, match="entity ref|sub"):
        issue_identity_token(make_auth_app(), "not a ref")


def test_an_auth_app_without_a_token_issuer():
    with pytest.raises(LookupError, match="no token issuer"):
        issue_identity_token(AuthApp({}), "user:default/jane")


def test_find_in_an_auth_app_and_a_middleware_stack():
    auth_app = make_auth_app()
    assert find_auth_app(auth_app) is auth_app
    stack = AuthMiddleware(IdentityMiddleware(inner, auth_app.verifier), auth_app)
    assert find_auth_app(stack) is auth_app

    class Outer:
        def __init__(self, app):
            self.app = app

    assert find_auth_app(Outer(Outer(stack))) is auth_app


def test_find_in_a_flask_app():
    auth_app = make_auth_app()
    app = Flask(__name__)
    WsgiAuth(app, config=auth_app)
    assert find_auth_app(app) is auth_app


@pytest.mark.parametrize(
    "app",
    [pytest.param(inner, id="plain"), pytest.param(None, id="none")],
)
def test_not_found(app):
    with pytest.raises(LookupError, match="return the AuthApp itself"):
        find_auth_app(app)


def test_a_cycle_ends():
    class Loop:
        pass

    loop = Loop()
    loop.app = loop
    with pytest.raises(LookupError):
        find_auth_app(loop)
