"""bottle_wsgiauth specifics: zero overhead, require_identity, the keyword, other plugins."""

from __future__ import annotations

from wsgiref.validate import validator

import bottle
import pytest
import webtest
from bottle_wsgiauth import WsgiAuthPlugin

from tests.adapters.conftest import new_auth_app
from wsgiauth import ConfigError


def bearer(app: webtest.TestApp) -> dict[str, str]:
    token = app.get("/api/auth/guest/refresh").json["backstageIdentity"]["token"]
    return {"Authorization": f"Bearer {token}"}


def test_routes_that_do_not_ask_get_their_callback_back_unchanged():
    app = bottle.Bottle()
    plugin = WsgiAuthPlugin(new_auth_app())
    app.install(plugin)

    def plain():
        return "x"

    def wants(identity):
        return "x"

    def route(path, callback, **config):
        app.route(path, callback=callback, **config)
        return app.routes[-1]

    assert plugin.apply(plain, route("/plain", plain)) is plain
    assert plugin.apply(wants, route("/wants", wants)) is not wants
    assert plugin.apply(plain, route("/gated", plain, require_identity=True)) is not plain


def test_require_identity_gates_a_callback_that_does_not_take_it():
    app = bottle.Bottle()
    app.install(WsgiAuthPlugin(new_auth_app()))
    app.route("/gated", callback=lambda: "in", require_identity=True)
    client = webtest.TestApp(validator(app))
    response = client.get("/gated", status=401)
    assert response.json["error"] == {
        "name": "AuthenticationError",
        "message": "Missing credentials",
    }
    assert client.get("/gated", headers=bearer(client)).text == "in"


def test_the_keyword_can_be_renamed():
    app = bottle.Bottle()
    app.install(WsgiAuthPlugin(new_auth_app(), keyword="who"))
    app.route("/who", callback=lambda who=None: who.user_entity_ref if who else "nobody")
    client = webtest.TestApp(validator(app))
    assert client.get("/who").text == "nobody"
    assert client.get("/who", headers=bearer(client)).text == "user:development/guest"


def test_other_plugins_never_touch_the_auth_answers():
    def stamp(callback):
        def wrapper(*args, **kwargs):
            bottle.response.set_header("X-Stamped", "yes")
            return callback(*args, **kwargs)

        return wrapper

    app = bottle.Bottle()
    app.install(stamp)
    app.install(WsgiAuthPlugin(new_auth_app()))
    app.route("/own", callback=lambda: "own")
    client = webtest.TestApp(validator(app))
    assert client.get("/own").headers["X-Stamped"] == "yes"
    assert "X-Stamped" not in client.get("/api/auth/guest/refresh").headers


def test_a_route_added_later_under_the_base_path_fails_when_bottle_applies_plugins(monkeypatch):
    monkeypatch.setattr(bottle, "DEBUG", True)  # debug mode applies plugins as routes are added
    app = bottle.Bottle()
    app.install(WsgiAuthPlugin(new_auth_app()))
    with pytest.raises(ConfigError, match="auth.basePath: route /api/auth/<x> clashes"):
        app.route("/api/auth/<x>", callback=lambda x: x)


@pytest.mark.parametrize(
    "source",
    [
        pytest.param("", id="empty-path"),
        pytest.param([], id="no-paths"),
        pytest.param(None, id="none"),
    ],
)
def test_a_missing_config_fails_naming_the_plugin_argument(source):
    with pytest.raises(ConfigError) as caught:
        WsgiAuthPlugin(source)
    assert caught.value.path == "WsgiAuthPlugin"


def test_another_mount_under_the_base_path_clashes():
    app = bottle.Bottle()
    app.mount("/api/auth/other", lambda environ, start_response: [])
    with pytest.raises(ConfigError, match="auth.basePath"):
        app.install(WsgiAuthPlugin(new_auth_app()))
