"""pyramid_wsgiauth specifics: the security policy and ACL principals, settings, route checks."""

from __future__ import annotations

from wsgiref.validate import validator

import pytest
import webtest
import yaml
from pyramid.config import Configurator
from pyramid.exceptions import ConfigurationExecutionError
from pyramid.response import Response
from pyramid_wsgiauth import WsgiAuthSecurityPolicy

from tests.adapters.conftest import auth_config
from tests.adapters.conftest import new_auth_app
from tests.adapters.hosts import build_pyramid
from wsgiauth import ConfigError

XRW = {"X-Requested-With": "XMLHttpRequest"}


def bearer(app: webtest.TestApp) -> dict[str, str]:
    token = app.get("/api/auth/guest/refresh").json["backstageIdentity"]["token"]
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize(
    ("guest", "status"),
    [
        pytest.param({"ownershipEntityRefs": ["group:default/admins"]}, 200, id="in-the-group"),
        pytest.param({}, 403, id="signed-in-elsewhere"),
    ],
)
def test_acl_principals_are_the_ownership_refs(guest, status):
    app = webtest.TestApp(validator(build_pyramid(new_auth_app(**guest))))
    response = app.get("/admin", headers=bearer(app), status=status)
    if status == 403:
        assert "application/json" not in response.content_type  # Pyramid's own 403 page
    assert app.get("/admin", status=401).json["error"]["message"] == "Missing credentials"


def test_policy_answers_from_the_request_identity():
    auth_app = new_auth_app(ownershipEntityRefs=["group:default/admins"])
    token = webtest.TestApp(auth_app).get("/guest/refresh").json["backstageIdentity"]["token"]
    identity = auth_app.verifier.verify(token)
    policy = WsgiAuthSecurityPolicy()

    class Request:
        auth_identity = identity

    assert policy.identity(Request) is identity
    assert policy.authenticated_userid(Request) == "user:development/guest"
    assert policy.effective_principals(Request) == [
        "system.Everyone",
        "system.Authenticated",
        "user:development/guest",
        "group:default/admins",
    ]
    assert policy.remember(Request, "someone") == []
    assert policy.forget(Request) == []
    Request.auth_identity = None
    assert policy.authenticated_userid(Request) is None
    assert policy.effective_principals(Request) == ["system.Everyone"]


def make_app(settings: dict, setup=None, before=None):
    with Configurator(settings=settings) as config:
        if before:
            before(config)
        config.include("pyramid_wsgiauth")
        config.add_route("me", "/me")
        config.add_view(
            lambda request: Response(
                str(request.auth_identity and request.auth_identity.user_entity_ref)
            ),
            route_name="me",
        )
        if setup:
            setup(config)
        return webtest.TestApp(validator(config.make_wsgi_app()))


def test_a_default_permission_and_csrf_checks_do_not_lock_out_the_auth_routes():
    def setup(config):
        config.set_default_permission("view")  # no ACL grants it: every app view is locked
        config.set_default_csrf_options(require_csrf=True)

    app = make_app({"wsgiauth.config": new_auth_app(), "wsgiauth.security_policy": "true"}, setup)
    app.get("/me", status=401)
    assert app.get("/api/auth/guest/refresh").json["backstageIdentity"]["token"]
    app.post("/api/auth/fake/logout?env=development", headers=XRW, status=200)


def test_without_the_security_policy_request_auth_identity_still_works():
    app = make_app({"wsgiauth.config": new_auth_app(), "wsgiauth.security_policy": "false"})
    assert app.get("/me").text == "None"
    assert app.get("/me", headers=bearer(app)).text == "user:development/guest"
    assert app.get("/me", headers={"Authorization": "Bearer bad"}).text == "None"


def test_the_apps_own_forbidden_view_wins_over_the_adapters():
    def setup(config):
        config.add_forbidden_view(lambda request: Response("mine", status=418))
        config.add_route("locked", "/locked")
        config.add_view(lambda request: Response("in"), route_name="locked", permission="x")

    app = make_app({"wsgiauth.config": new_auth_app(), "wsgiauth.security_policy": "true"}, setup)
    assert app.get("/locked", status=418).text == "mine"


def test_config_setting_takes_whitespace_separated_files_later_ones_winning(tmp_path):
    config = auth_config()
    config["auth"]["providers"] = {"guest": {}}
    base = tmp_path / "app-config.yaml"
    base.write_text(yaml.safe_dump(config))
    local = tmp_path / "app-config.local.yaml"
    local.write_text(
        yaml.safe_dump({"auth": {"providers": {"guest": {"userEntityRef": "user:default/x"}}}})
    )
    app = make_app({"wsgiauth.config": f"\n  {base}\n  {local}\n"})
    assert app.get("/me", headers=bearer(app)).text == "user:default/x"


@pytest.mark.parametrize(
    ("before", "after"),
    [
        pytest.param(None, ("late", "/api/auth/extra"), id="under-the-base-path-after"),
        pytest.param(("early", "/api/auth"), None, id="the-base-path-itself"),
        pytest.param(("catch-all", "/{path:.*}"), None, id="catch-all-before-shadows"),
    ],
)
def test_routes_clashing_with_the_base_path_fail_at_startup(before, after):
    def add(route):
        return lambda config: config.add_route(*route) if route else None

    with pytest.raises(ConfigurationExecutionError) as caught:
        make_app({"wsgiauth.config": new_auth_app()}, add(after), add(before))
    error = caught.value.__cause__ or caught.value.__context__
    assert isinstance(error, ConfigError)
    assert error.path == "auth.basePath"
    assert (before or after)[1] in str(error)


def test_a_catch_all_after_the_auth_route_is_fine():
    app = make_app(
        {"wsgiauth.config": new_auth_app()},
        lambda config: config.add_route("catch-all", "/{path:.*}"),
    )
    assert app.get("/api/auth/guest/refresh").json["backstageIdentity"]["token"]
