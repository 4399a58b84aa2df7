"""wsgiauth.wsgi: the gunicorn entry point, bare or in front of an app named by WSGIAUTH_APP."""

from __future__ import annotations

import os
from wsgiref.validate import validator

import jwt
import pytest
import webtest
import yaml

import wsgiauth.wsgi
from wsgiauth.errors import ConfigError
from wsgiauth.errors import ServiceUnavailableError
from wsgiauth.identity.token_factory import TokenFactory
from wsgiauth.server_store import ServerStore
from wsgiauth.wsgi import application_from_environ
from wsgiauth.wsgi import make_application

BACKEND = "http://localhost:7007"


def whoami(environ, start_response):
    """A downstream app: echoes REMOTE_USER and whether an identity was offered."""
    identity = environ.get("wsgiauth.identity")
    body = f"{environ.get('REMOTE_USER', '-')} {identity is not None}".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


class Configurable:
    """An app with ``configure(config)``, as the demo portal has; what it returns is served."""

    def __call__(self, environ, start_response):  # pragma: no cover - never served itself
        raise AssertionError("configure() was not called")

    def configure(self, config):
        app = Protected()
        app.base_url = config.get_string("backend.baseUrl")
        return app


class Protected:
    """An app declaring ``protected_paths``: those need a valid identity token."""

    protected_paths = ("/private",)
    base_url = ""

    def __call__(self, environ, start_response):
        body = f"{self.base_url} {environ.get('REMOTE_USER', '-')}".encode()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [body]


configurable = Configurable()
not_callable = 42


def write_config(tmp_path, name="app-config.yaml", **overrides):
    config = {
        "app": {"baseUrl": BACKEND},
        "backend": {"baseUrl": BACKEND},
        "auth": {
            "environment": "development",
            "keyStore": {"provider": "memory"},
            "providers": {"guest": {}},
        },
    }
    config.update(overrides)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(config))
    return str(path)


@pytest.fixture(autouse=True)
def sleeps(monkeypatch):
    """The waits of the server entry point, recorded instead of slept."""
    waited: list[float] = []
    monkeypatch.setattr(wsgiauth.wsgi, "sleep", waited.append)
    return waited


@pytest.fixture
def one_process(monkeypatch):
    """The server says it runs the app in one process: memory is fine."""
    monkeypatch.delenv("WSGIAUTH_SERVER_STORE", raising=False)
    monkeypatch.setenv("WSGIAUTH_SINGLE_PROCESS", "1")


def client(app):
    return webtest.TestApp(validator(app))


def guest_token(testapp, base="/api/auth"):
    return testapp.get(f"{base}/guest/refresh").json["backstageIdentity"]["token"]


def test_bare_serves_auth_routes_and_json_404_elsewhere(tmp_path):
    testapp = client(make_application(write_config(tmp_path)))

    assert guest_token(testapp).count(".") == 2
    response = testapp.get("/somewhere?x=1", status=404)
    assert response.content_type == "application/json"
    assert response.json == {
        "error": {"name": "NotFoundError", "message": "Not found: /somewhere"},
        "request": {"method": "GET", "url": "/somewhere?x=1"},
        "response": {"statusCode": 404},
    }
    assert testapp.get("/api/auth/.well-known/jwks.json").json["keys"]


def test_bare_404_of_a_path_that_is_not_utf8_is_still_a_404(tmp_path):
    testapp = client(make_application(write_config(tmp_path)))
    response = testapp.get("/caf%E9/%ff?q=%ff", status=404)
    assert response.json["error"]["message"] == "Not found: /caf%E9/%FF"
    assert response.json["request"]["url"] == "/caf%E9/%FF?q=%ff"


def test_wrapped_app_gets_remote_user_from_a_valid_token_only(tmp_path):
    testapp = client(make_application(write_config(tmp_path), app=whoami))
    token = guest_token(testapp)

    assert testapp.get("/").text == "- False"
    signed_in = testapp.get("/", headers={"Authorization": f"Bearer {token}"})
    assert signed_in.text == "user:development/guest True"
    forged = testapp.get("/", headers={"Authorization": f"Bearer {token[:-4]}AAAA"})
    assert forged.text == "- False"


def test_app_by_dotted_name_is_configured_and_its_protected_paths_need_a_token(tmp_path):
    app = make_application(write_config(tmp_path), app=f"{__name__}:configurable")
    testapp = client(app)
    token = guest_token(testapp)

    refused = testapp.get("/private", status=401)
    assert refused.json["error"] == {
        "name": "AuthenticationError",
        "message": "Missing credentials",
    }
    allowed = testapp.get("/private", headers={"Authorization": f"Bearer {token}"})
    assert allowed.text == f"{BACKEND} user:development/guest"
    assert testapp.get("/public").text == f"{BACKEND} -"


@pytest.mark.parametrize(
    ("dotted", "message"),
    [
        pytest.param(__name__, "expected package.module:attribute", id="no-colon"),
        pytest.param("tests.no_such_module:app", "cannot load", id="no-module"),
        pytest.param(f"{__name__}:missing", "cannot load", id="no-attribute"),
        pytest.param(f"{__name__}:not_callable", "not a WSGI callable", id="not-callable"),
    ],
)
def test_an_app_that_cannot_be_loaded_fails_naming_the_variable(tmp_path, dotted, message):
    with pytest.raises(ConfigError) as caught:
        make_application(write_config(tmp_path), app=dotted)

    assert str(caught.value).startswith("WSGIAUTH_APP: ")
    assert message in str(caught.value)


@pytest.mark.parametrize(
    "environ",
    [
        pytest.param({}, id="unset"),
        pytest.param({"WSGIAUTH_CONFIG": ""}, id="empty"),
        pytest.param({"WSGIAUTH_CONFIG": os.pathsep}, id="only-separators"),
    ],
)
def test_missing_config_variable_fails_naming_it(environ):
    with pytest.raises(ConfigError, match=r"^WSGIAUTH_CONFIG is not set"):
        application_from_environ(environ)


def test_no_config_file_is_a_config_error():
    with pytest.raises(ConfigError, match="no config file"):
        make_application()


def test_config_paths_from_the_environment_merge_later_files_winning(tmp_path, one_process):
    first = write_config(tmp_path)
    second = tmp_path / "override.yaml"
    second.write_text(yaml.safe_dump({"auth": {"basePath": "/auth"}}))
    environ = {"WSGIAUTH_CONFIG": os.pathsep.join([first, "", str(second)])}

    testapp = client(application_from_environ(environ))

    assert guest_token(testapp, base="/auth")
    assert testapp.get("/api/auth/guest/refresh", status=404).json["error"]["name"] == (
        "NotFoundError"
    )


def test_wsgiauth_app_variable_selects_the_wrapped_app(tmp_path, one_process):
    environ = {"WSGIAUTH_CONFIG": write_config(tmp_path), "WSGIAUTH_APP": f"{__name__}:whoami"}

    testapp = client(application_from_environ(environ))

    assert testapp.get("/").text == "- False"


def test_a_bad_config_file_fails_at_build_naming_the_key(tmp_path):
    path = write_config(tmp_path, app={"baseUrl": "not a url"})

    with pytest.raises(ConfigError, match=r"app\.baseUrl"):
        make_application(path)


@pytest.fixture
def fresh_module():
    """``wsgiauth.wsgi`` with no ``application`` built yet, and none left behind."""
    module = wsgiauth.wsgi
    vars(module).pop("application", None)
    yield module
    vars(module).pop("application", None)


def test_module_attribute_is_built_on_first_access_and_kept(
    tmp_path, monkeypatch, fresh_module, one_process
):
    module = fresh_module
    monkeypatch.setenv("WSGIAUTH_CONFIG", write_config(tmp_path))
    monkeypatch.delenv("WSGIAUTH_APP", raising=False)
    assert "application" not in vars(module)

    first = module.application
    assert module.application is first
    assert guest_token(client(first))


def test_module_attribute_without_config_variable_raises(monkeypatch, fresh_module):
    monkeypatch.delenv("WSGIAUTH_CONFIG", raising=False)

    with pytest.raises(ConfigError, match="WSGIAUTH_CONFIG"):
        _ = fresh_module.application
    assert "application" not in vars(fresh_module)
    with pytest.raises(AttributeError):
        _ = fresh_module.something_else


# --- state kept in memory, and the workers of one server ---------------------------------

#: Backstage's development database (its templates' app-config.yaml).
BACKSTAGE_DEV_DATABASE = {"client": "better-sqlite3", "connection": ":memory:"}


def dev_config(tmp_path, **database):
    """Backstage's development config: ``:memory:`` database, the default key store."""
    return write_config(
        tmp_path,
        backend={"baseUrl": BACKEND, "database": {**BACKSTAGE_DEV_DATABASE, **database}},
        auth={"environment": "development", "providers": {"guest": {}}},
    )


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        pytest.param({}, "backend.database.connection", id="backstage-dev"),
        pytest.param(
            {"connection": {"filename": ":memory:"}}, "backend.database.connection", id="filename"
        ),
        pytest.param(
            {"connection": "auth.sqlite3", "plugin": {"auth": {"connection": ":memory:"}}},
            "backend.database.plugin.auth.connection",
            id="plugin-override",
        ),
    ],
)
def test_a_memory_database_is_refused_by_a_server_that_shares_nothing(
    tmp_path, no_server_word, overrides, key
):
    environ = {"WSGIAUTH_CONFIG": dev_config(tmp_path, **overrides)}

    with pytest.raises(ConfigError) as refused:
        application_from_environ(environ)

    assert refused.value.path == key
    message = str(refused.value)
    assert message.startswith(f"{environ['WSGIAUTH_CONFIG']}: {key}: keeps keys in the memory")
    for fix in ("wsgiauth serve", "wsgiauth.gunicorn_hooks", "{filename: <path>}", "client: pg"):
        assert fix in message


def test_a_memory_key_store_is_refused_naming_its_key(tmp_path, no_server_word):
    with pytest.raises(ConfigError) as refused:
        application_from_environ({"WSGIAUTH_CONFIG": write_config(tmp_path)})

    assert refused.value.path == "auth.keyStore.provider"
    assert "'database' with a SQLite file or PostgreSQL" in str(refused.value)


def test_a_sqlite_file_needs_no_server_store(tmp_path, no_server_word):
    path = dev_config(tmp_path, connection={"filename": str(tmp_path / "auth.sqlite3")})

    assert guest_token(client(application_from_environ({"WSGIAUTH_CONFIG": path})))


def test_make_application_keeps_memory_in_this_process(tmp_path, no_server_word):
    # Programs (and tests) building the app themselves run it in their own process.
    assert guest_token(client(make_application(dev_config(tmp_path))))


def test_single_process_declared_allows_memory(tmp_path, one_process):
    environ = {"WSGIAUTH_CONFIG": dev_config(tmp_path)}

    assert guest_token(client(application_from_environ(environ)))


def two_workers(config_path):
    """Two apps built from one config in this process, as two workers would build them."""
    environ = {"WSGIAUTH_CONFIG": config_path}
    return client(application_from_environ(environ)), client(application_from_environ(environ))


def keys_of(testapp):
    return {key["kid"] for key in testapp.get("/api/auth/.well-known/jwks.json").json["keys"]}


@pytest.mark.parametrize("config", [dev_config, write_config], ids=["database", "key-store"])
def test_workers_given_a_server_store_share_keys_and_user_info(tmp_path, monkeypatch, config):
    monkeypatch.delenv("WSGIAUTH_SINGLE_PROCESS", raising=False)
    with ServerStore.create() as store:
        store.export()
        first, second = two_workers(config(tmp_path))
        token = guest_token(first)

        assert store.path.exists()
        assert keys_of(first) == keys_of(second) != set()
        bearer = {"Authorization": f"Bearer {token}"}
        info = second.get("/api/auth/v1/userinfo", headers=bearer).json
        assert info["claims"]["sub"] == "user:development/guest"


def test_workers_without_a_server_store_each_have_their_own_memory(tmp_path, one_process):
    # The control for the test above: what the server store changes.
    first, second = two_workers(dev_config(tmp_path))
    guest_token(first)
    token = guest_token(second)

    assert keys_of(first).isdisjoint(keys_of(second))
    bearer = {"Authorization": f"Bearer {token}"}
    first.get("/api/auth/v1/userinfo", headers=bearer, status=401)


def test_a_server_store_others_may_write_is_refused(tmp_path, monkeypatch, no_server_word):
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)
    monkeypatch.setenv("WSGIAUTH_SERVER_STORE", str(shared / "store.sqlite3"))

    with pytest.raises(ConfigError, match=r"^WSGIAUTH_SERVER_STORE: .* must be a directory"):
        application_from_environ({"WSGIAUTH_CONFIG": dev_config(tmp_path)})


def test_a_worker_publishes_its_key_and_waits_before_it_serves(tmp_path, monkeypatch, sleeps):
    monkeypatch.delenv("WSGIAUTH_SINGLE_PROCESS", raising=False)
    with ServerStore.create() as store:
        store.export()
        first = client(application_from_environ({"WSGIAUTH_CONFIG": dev_config(tmp_path)}))
        (published,) = keys_of(first)  # before any sign-in
        assert len(sleeps) == 1
        assert sleeps[0] >= 2 * 1.0  # two list-cache periods: every worker's list has it

        second = client(application_from_environ({"WSGIAUTH_CONFIG": dev_config(tmp_path)}))

        assert len(keys_of(second)) == 2
        assert jwt.get_unverified_header(guest_token(first))["kid"] == published


def test_one_process_never_waits_for_its_key(tmp_path, one_process, sleeps):
    stack = application_from_environ({"WSGIAUTH_CONFIG": dev_config(tmp_path)})
    testapp = client(stack)

    (published,) = keys_of(testapp)  # published at startup, signing at once
    assert sleeps == []
    assert stack.auth_app.token_issuer.shared_store is False
    assert jwt.get_unverified_header(guest_token(testapp))["kid"] == published


def test_a_key_store_down_at_startup_only_delays_the_key(tmp_path, monkeypatch, sleeps):
    monkeypatch.delenv("WSGIAUTH_SINGLE_PROCESS", raising=False)

    def down(self):
        raise ServiceUnavailableError("The database is unavailable")

    monkeypatch.setattr(TokenFactory, "publish_first_key", down)
    path = dev_config(tmp_path, connection={"filename": str(tmp_path / "auth.sqlite3")})

    testapp = client(application_from_environ({"WSGIAUTH_CONFIG": path}))

    assert sleeps == []
    assert guest_token(testapp)  # the key is made at the first sign-in instead
