"""create_oauth_provider_factory: one set of route handlers per environment, read at startup.

Each environment block gives its authenticator, callback URL, cookie settings,
additional scopes and sign-in resolver; the identity then joins the popup message
and refresh (the sign-in tests over the catalog, at the end).
"""

from __future__ import annotations

from pathlib import Path
from wsgiref.validate import validator

import jwt
import pytest
import webtest

from tests.conftest import APP_ORIGIN
from tests.conftest import FakeAuthenticator
from tests.conftest import base_config
from tests.conftest import inner_app
from tests.conftest import make_testapp
from tests.conftest import parse_web_message
from tests.conftest import set_cookies
from tests.conftest import state_of
from wsgiauth.app import create_auth_app
from wsgiauth.config import Config
from wsgiauth.errors import ConfigError
from wsgiauth.middleware import AuthMiddleware
from wsgiauth.oauth import ProfileInfo
from wsgiauth.oauth import ProviderModule
from wsgiauth.oauth import create_oauth_provider_factory
from wsgiauth.types import BackstageSignInResult
from wsgiauth.types import TokenParams

CATALOG = Path(__file__).parent.parent / "files" / "catalog"
XRW = {"X-Requested-With": "XMLHttpRequest"}
BASE_URL = "http://localhost:7007/api/auth"


def app_with(factory, providers, provider_id="fake", **auth) -> webtest.TestApp:
    """An app whose one provider is ``factory``, mounted as ``provider_id``."""
    config = base_config(
        providers={provider_id: providers}, keyStore={"provider": "memory"}, **auth
    )
    module = ProviderModule(provider_id=provider_id, factory=factory)
    auth_app = create_auth_app(Config.from_dict(config), providers={provider_id: module})
    testapp = webtest.TestApp(validator(AuthMiddleware(validator(inner_app), auth_app)))
    testapp.auth_app = auth_app  # type: ignore[attr-defined]
    return testapp


def popup_sign_in(testapp, provider_id="fake", code="jane@example.com", query="") -> dict:
    start = testapp.get(f"/api/auth/{provider_id}/start?env=development&origin={APP_ORIGIN}{query}")
    page = testapp.get(
        f"/api/auth/{provider_id}/handler/frame?state={state_of(start.location)}&code={code}"
    )
    return parse_web_message(page.text)


def authenticator(testapp, env="development", provider_id="fake") -> FakeAuthenticator:
    return testapp.auth_app.providers[provider_id].handlers[env].authenticator


# -- one set of handlers per environment -----------------------------------------------------


def test_each_configured_environment_gets_its_own_authenticator():
    testapp = app_with(
        create_oauth_provider_factory(FakeAuthenticator),
        {"development": {"clientId": "dev"}, "production": {"clientId": "prod"}},
    )
    handlers = testapp.auth_app.providers["fake"].handlers
    assert sorted(handlers) == ["development", "production"]
    assert authenticator(testapp).config.get_string("clientId") == "dev"
    assert authenticator(testapp, "production").config.get_string("clientId") == "prod"


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        pytest.param({}, f"{BASE_URL}/fake/handler/frame", id="default"),
        pytest.param(
            {"callbackUrl": "https://auth.example/cb"}, "https://auth.example/cb", id="configured"
        ),
    ],
)
def test_the_callback_url(environment, expected):
    testapp = app_with(
        create_oauth_provider_factory(FakeAuthenticator), {"development": environment}
    )
    assert authenticator(testapp).callback_url == expected


def test_custom_callback_url_moves_the_cookie_path():
    config = base_config(
        providers={"fake": {"development": {"callbackUrl": "http://localhost:7007/custom/cb"}}}
    )
    testapp = make_testapp(config)
    response = testapp.get(f"/api/auth/fake/start?env=development&origin={APP_ORIGIN}")
    assert "Path=/custom/cb/fake/handler;" in set_cookies(response)["fake-nonce"]


def test_mounted_under_another_id_everything_follows_the_id():
    testapp = app_with(
        create_oauth_provider_factory(FakeAuthenticator), {"development": {}}, "corp"
    )
    start = testapp.get(f"/api/auth/corp/start?env=development&origin={APP_ORIGIN}")
    assert "corp-nonce" in set_cookies(start)
    assert all(name.startswith("corp-") for name in set_cookies(start))
    assert authenticator(testapp, provider_id="corp").callback_url == (
        f"{BASE_URL}/corp/handler/frame"
    )
    page = testapp.get(
        f"/api/auth/corp/handler/frame?state={state_of(start.location)}&code=jane@example.com"
    )
    assert "corp-refresh-token" in set_cookies(page)


@pytest.mark.parametrize(
    ("environment", "max_age"),
    [
        pytest.param({}, "Max-Age=86400000", id="default-1000-days"),
        pytest.param({"sessionDuration": {"hours": 2}}, "Max-Age=7200", id="configured"),
    ],
)
def test_session_duration_sets_the_refresh_cookie_lifetime(environment, max_age):
    testapp = app_with(
        create_oauth_provider_factory(FakeAuthenticator), {"development": environment}
    )
    start = testapp.get(f"/api/auth/fake/start?env=development&origin={APP_ORIGIN}")
    page = testapp.get(
        f"/api/auth/fake/handler/frame?state={state_of(start.location)}&code=jane@example.com"
    )
    assert f"{max_age};" in set_cookies(page)["fake-refresh-token"] + ";"


@pytest.mark.parametrize(
    ("additional", "expected"),
    [
        pytest.param(None, "email openid", id="none"),
        pytest.param("repo", "email openid repo", id="string"),
        pytest.param(["repo", "user"], "email openid repo user", id="list"),
    ],
)
def test_additional_scopes_are_requested(additional, expected):
    environment = {} if additional is None else {"additionalScopes": additional}
    testapp = app_with(
        create_oauth_provider_factory(FakeAuthenticator), {"development": environment}
    )
    testapp.get(f"/api/auth/fake/start?env=development&origin={APP_ORIGIN}&scope=email")
    [(_, start)] = authenticator(testapp).calls
    assert start.scope == expected


@pytest.mark.parametrize(
    ("environment", "path", "reason"),
    [
        pytest.param(
            {"signIn": {"resolvers": [{"resolver": "nope"}]}},
            "auth.providers.fake.development.signIn.resolvers[0].resolver",
            "Sign-in resolver 'nope' is not available",
            id="unknown-resolver",
        ),
        pytest.param(
            {"sessionDuration": "soon"},
            "auth.providers.fake.development.sessionDuration",
            "expected a duration such as",
            id="session-duration",
        ),
        pytest.param(
            {"additionalScopes": 5},
            "auth.providers.fake.development.additionalScopes",
            "expected a string or a list of strings, got a number",
            id="additional-scopes",
        ),
    ],
)
def test_bad_environment_config_fails_at_startup(environment, path, reason):
    with pytest.raises(ConfigError) as info:
        app_with(create_oauth_provider_factory(FakeAuthenticator), {"development": environment})
    assert info.value.path == path
    assert info.value.reason.startswith(reason)


# -- the factory's own arguments -------------------------------------------------------------


def fixed_resolver(ref):
    def resolve(info, context):
        return context.issue_token(TokenParams(claims={"sub": ref, "ent": [ref]}))

    return resolve


def user_ref_of(message) -> str:
    return message["response"]["backstageIdentity"]["identity"]["userEntityRef"]


def test_without_a_resolver_there_is_no_backstage_identity():
    testapp = app_with(create_oauth_provider_factory(FakeAuthenticator), {"development": {}})
    response = popup_sign_in(testapp)["response"]
    assert response["profile"] == {"email": "jane@example.com", "displayName": "Fake User"}
    assert "backstageIdentity" not in response


def test_the_sign_in_resolver_argument_serves_environments_that_configure_none():
    factory = create_oauth_provider_factory(
        FakeAuthenticator, sign_in_resolver=fixed_resolver("user:default/given")
    )
    testapp = app_with(factory, {"development": {}})
    assert user_ref_of(popup_sign_in(testapp)) == "user:default/given"


def test_configured_resolvers_win_over_the_sign_in_resolver_argument():
    factory = create_oauth_provider_factory(
        FakeAuthenticator,
        sign_in_resolver=fixed_resolver("user:default/given"),
        sign_in_resolver_factories={"always": lambda options: fixed_resolver("user:default/cfg")},
    )
    testapp = app_with(
        factory, {"development": {"signIn": {"resolvers": [{"resolver": "always"}]}}}
    )
    assert user_ref_of(popup_sign_in(testapp)) == "user:default/cfg"


def test_the_resolver_factories_argument_replaces_the_common_ones():
    factory = create_oauth_provider_factory(
        FakeAuthenticator,
        sign_in_resolver_factories={"always": lambda options: fixed_resolver("user:default/x")},
    )
    common = {"signIn": {"resolvers": [{"resolver": "emailMatchingUserEntityProfileEmail"}]}}
    with pytest.raises(ConfigError) as info:
        app_with(factory, {"development": common})
    assert info.value.reason == (
        "Sign-in resolver 'emailMatchingUserEntityProfileEmail' is not available"
        " (available: always)"
    )


def test_the_profile_transform_argument_replaces_the_authenticators():
    def transform(result):
        return ProfileInfo(email=result.full_profile["email"].upper(), display_name="Shown")

    factory = create_oauth_provider_factory(FakeAuthenticator, profile_transform=transform)
    testapp = app_with(factory, {"development": {}})
    assert popup_sign_in(testapp)["response"]["profile"] == {
        "email": "JANE@EXAMPLE.COM",
        "displayName": "Shown",
    }


def test_the_resolver_gets_the_profile_and_the_provider_result():
    seen = []

    def record(info, context):
        seen.append(info)
        return BackstageSignInResult(token="t")  # noqa: S106 - not a secret

    factory = create_oauth_provider_factory(FakeAuthenticator, sign_in_resolver=record)
    popup_sign_in(app_with(factory, {"development": {}}))
    [info] = seen
    assert info.profile == ProfileInfo(email="jane@example.com", display_name="Fake User")
    assert info.result.full_profile == {"email": "jane@example.com", "name": "Fake User"}
    assert info.result.session.access_token == "access-1"


# -- signing in through the catalog ----------------------------------------------------------


@pytest.fixture
def testapp():
    resolvers = [{"resolver": "emailMatchingUserEntityProfileEmail"}]
    config = base_config(
        providers={"fake": {"development": {"signIn": {"resolvers": resolvers}}}},
        keyStore={"provider": "memory"},
    )
    config["catalog"] = {
        "locations": [
            {"type": "file", "target": str(CATALOG / "users.yaml")},
            {"type": "file", "target": str(CATALOG / "groups.yaml")},
        ]
    }
    return make_testapp(config)


def sign_in(testapp, email: str) -> dict:
    start = testapp.get("/api/auth/fake/start?env=development&origin=http://localhost:3000")
    page = testapp.get(
        f"/api/auth/fake/handler/frame?state={state_of(start.location)}&code={email}"
    )
    return parse_web_message(page.text)


def test_catalog_user_gets_a_token_with_their_groups(testapp):
    message = sign_in(testapp, "jane@acme.org")
    identity = message["response"]["backstageIdentity"]
    assert identity["identity"] == {
        "type": "user",
        "userEntityRef": "user:default/jane",
        "ownershipEntityRefs": [
            "user:default/jane",
            "group:default/team-a",
            "group:default/team-b",
        ],
    }
    claims = jwt.decode(identity["token"], options={"verify_signature": False})
    assert claims["sub"] == "user:default/jane"
    assert claims["ent"] == identity["identity"]["ownershipEntityRefs"]


def test_refresh_carries_the_identity_too(testapp):
    sign_in(testapp, "jane@acme.org")
    url = "/api/auth/fake/refresh?env=development&email=jane@acme.org"
    body = testapp.get(url, headers=XRW).json
    assert body["backstageIdentity"]["identity"]["userEntityRef"] == "user:default/jane"


def test_refresh_of_a_user_gone_from_the_catalog_is_401(testapp):
    sign_in(testapp, "jane@acme.org")
    url = "/api/auth/fake/refresh?env=development&email=gone@acme.org"
    error = testapp.get(url, headers=XRW, status=401).json["error"]
    assert error["cause"]["name"] == "NotFoundError"


def test_unknown_user_sees_the_resolver_error_in_the_popup(testapp):
    message = sign_in(testapp, "stranger@nowhere.example")
    assert "response" not in message
    assert message["error"]["name"] == "NotFoundError"
    assert message["error"]["message"].startswith(
        "Failed to sign-in, unable to resolve user identity"
    )


def test_declared_config_keys_name_an_unknown_one_at_startup():
    from wsgiauth.oauth import create_oauth_provider_factory

    module = ProviderModule(
        "strict", create_oauth_provider_factory(FakeAuthenticator, config_keys=["clientId"])
    )
    env = {"clientId": "id", "callbackUrl": "http://localhost:7007/cb", "clientSecrett": "s"}
    config = Config.from_dict(base_config(providers={"strict": {"development": env}}))
    with pytest.raises(ConfigError) as raised:
        create_auth_app(config, providers={"strict": module})
    assert raised.value.path == "auth.providers.strict.development.clientSecrett"
    assert "unknown key" in raised.value.reason
    del env["clientSecrett"]  # the common keys (callbackUrl ...) are always known
    config = Config.from_dict(base_config(providers={"strict": {"development": env}}))
    assert "strict" in create_auth_app(config, providers={"strict": module}).providers
