"""signIn.resolvers from config: order, errors, options, custom resolvers (spec §10.1)."""

from __future__ import annotations

from importlib.metadata import EntryPoint

import pytest

from tests.catalog.fakes import claims_of
from tests.sign_in import custom_resolvers
from tests.sign_in.conftest import provider_resolvers
from wsgiauth.config import Config
from wsgiauth.errors import ConfigError
from wsgiauth.errors import ConflictError
from wsgiauth.errors import NotAllowedError
from wsgiauth.errors import NotFoundError
from wsgiauth.sign_in import SIGN_IN_FAILED
from wsgiauth.sign_in import declarative
from wsgiauth.sign_in import read_declarative_sign_in_resolver
from wsgiauth.types import ProfileInfo
from wsgiauth.types import SignInInfo

PREFIX = "auth.providers.oidc.development"
CUSTOM = "tests.sign_in.custom_resolvers"


def env_config(*resolvers, source="app-config.yaml"):
    root = {
        "auth": {
            "providers": {
                "oidc": {"development": {"clientId": "x", "signIn": {"resolvers": list(resolvers)}}}
            }
        }
    }
    return Config.from_dict(root, source=source).get_config(PREFIX)


def read(*resolvers, provider="oidc"):
    return read_declarative_sign_in_resolver(
        env_config(*resolvers), provider_resolvers(provider)
    )


def who(email=None, display_name=None):
    return SignInInfo(profile=ProfileInfo(email=email, display_name=display_name), result={})


@pytest.fixture(autouse=True)
def _reset():
    custom_resolvers.calls.clear()
    declarative.entry_point_resolver_factories.cache_clear()
    yield
    declarative.entry_point_resolver_factories.cache_clear()


@pytest.mark.parametrize(
    "config",
    [
        pytest.param({"clientId": "x"}, id="no-signIn"),
        pytest.param({"signIn": {}}, id="no-resolvers"),
        pytest.param({"signIn": {"resolvers": []}}, id="empty-list"),
    ],
)
def test_nothing_configured_is_none(config):
    assert (
        read_declarative_sign_in_resolver(Config.from_dict(config), provider_resolvers("oidc"))
        is None
    )


def test_the_first_resolver_that_finds_the_user_wins(context):
    resolver = read(
        {"resolver": "emailMatchingUserEntityProfileEmail"},
        {"resolver": "emailLocalPartMatchingUserEntityName"},
    )
    # carl has no profile email: the first says not found, the second finds him by name.
    assert (
        claims_of(resolver(who("carl@elsewhere.example"), context).token)["sub"]
        == "user:default/carl"
    )
    # jane is found by the first.
    assert claims_of(resolver(who("jane@acme.org"), context).token)["sub"] == "user:default/jane"


def test_not_found_moves_on_in_order(context):
    resolver = read(
        {"resolver": f"{CUSTOM}:never_found"},
        {"resolver": f"{CUSTOM}:by_display_name"},
        {"resolver": f"{CUSTOM}:fixed_user"},
    )
    assert claims_of(resolver(who(display_name="joe"), context).token)["sub"] == "user:default/joe"
    assert custom_resolvers.calls == ["never_found", "by_display_name"]


@pytest.mark.parametrize(
    ("first", "error"),
    [
        pytest.param({"resolver": f"{CUSTOM}:conflicted"}, ConflictError, id="conflict"),
        pytest.param(
            {"resolver": "emailLocalPartMatchingUserEntityName", "allowedDomains": ["acme.org"]},
            NotAllowedError,
            id="not-allowed",
        ),
    ],
)
def test_any_other_error_stops(context, issuer, first, error):
    resolver = read(first, {"resolver": f"{CUSTOM}:fixed_user"})
    with pytest.raises(error):
        resolver(who("jane@evil.example"), context)
    assert "fixed_user" not in custom_resolvers.calls
    assert issuer.issued == []


def test_all_not_found(context):
    resolver = read(
        {"resolver": "emailMatchingUserEntityProfileEmail"},
        {"resolver": f"{CUSTOM}:never_found"},
    )
    with pytest.raises(NotFoundError) as caught:
        resolver(who("ghost@acme.org"), context)
    assert caught.value.message == SIGN_IN_FAILED
    assert caught.value.message.startswith("Failed to sign-in, unable to resolve user identity")
    assert custom_resolvers.calls == ["never_found"]


def test_dangerous_option_from_config(context):
    resolver = read(
        {
            "resolver": "emailLocalPartMatchingUserEntityName",
            "dangerouslyAllowSignInWithoutUserInCatalog": "true",
        }
    )
    assert claims_of(resolver(who("ghost@acme.org"), context).token)["ent"] == [
        "user:default/ghost"
    ]


# -- startup errors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resolvers", "path", "message"),
    [
        pytest.param(
            [{"resolver": "emailMatchingUserEntityProfileEmail"}, {"resolver": "nope"}],
            f"{PREFIX}.signIn.resolvers[1].resolver",
            "Sign-in resolver 'nope' is not available",
            id="unknown",
        ),
        pytest.param(
            [{"resolver": "usernameMatchingUserEntityName"}],
            f"{PREFIX}.signIn.resolvers[0].resolver",
            "Sign-in resolver 'usernameMatchingUserEntityName' is not available",
            id="other-providers-resolver",
        ),
        pytest.param(
            [{"allowedDomains": ["a.org"]}],
            f"{PREFIX}.signIn.resolvers[0].resolver",
            "missing",
            id="no-name",
        ),
        pytest.param(
            [{"resolver": "emailLocalPartMatchingUserEntityName", "allowedDomains": "acme.org"}],
            f"{PREFIX}.signIn.resolvers[0]",
            "Invalid sign-in resolver options, "
            "allowedDomains: expected a list of strings, got a string",
            id="bad-option",
        ),
        pytest.param(
            [{"resolver": "emailLocalPartMatchingUserEntityName", "allowedDomain": ["acme.org"]}],
            f"{PREFIX}.signIn.resolvers[0]",
            "Invalid sign-in resolver options, unknown option 'allowedDomain'",
            id="misspelt-option",
        ),
        pytest.param(
            [{"resolver": f"{CUSTOM}:never_found", "x": 1}],
            f"{PREFIX}.signIn.resolvers[0]",
            "sign-in resolver does not accept options",
            id="options-to-plain-resolver",
        ),
        pytest.param(
            [{"resolver": f"{CUSTOM}:Namespace.tenant_user"}],
            f"{PREFIX}.signIn.resolvers[0]",
            "Invalid sign-in resolver options, tenant: required",
            id="custom-factory-required-option",
        ),
        pytest.param(
            [{"resolver": "tests.sign_in.nowhere:x"}],
            f"{PREFIX}.signIn.resolvers[0].resolver",
            "Sign-in resolver 'tests.sign_in.nowhere:x' cannot be loaded: No module named",
            id="no-module",
        ),
        pytest.param(
            [{"resolver": f"{CUSTOM}:missing"}],
            f"{PREFIX}.signIn.resolvers[0].resolver",
            "cannot be loaded",
            id="no-attribute",
        ),
        pytest.param(
            [{"resolver": f"{CUSTOM}:not_callable"}],
            f"{PREFIX}.signIn.resolvers[0].resolver",
            "is not a sign-in resolver (info, context) or a factory (options)",
            id="not-callable",
        ),
        pytest.param(
            [{"resolver": f"{CUSTOM}:"}],
            f"{PREFIX}.signIn.resolvers[0].resolver",
            "expected 'package.module:attribute'",
            id="no-attribute-name",
        ),
    ],
)
def test_startup_errors_name_the_key(resolvers, path, message):
    with pytest.raises(ConfigError) as caught:
        read(*resolvers)
    assert caught.value.path == path
    assert caught.value.source == "app-config.yaml"
    assert message in caught.value.reason


def test_unknown_resolver_lists_what_is_available():
    with pytest.raises(ConfigError) as caught:
        read({"resolver": "nope"})
    assert "available: emailLocalPartMatchingUserEntityName, " in caught.value.reason


# -- custom resolvers -----------------------------------------------------------------------


def test_dotted_factory_with_options(context):
    resolver = read({"resolver": f"{CUSTOM}:Namespace.tenant_user", "tenant": "acme"})
    assert claims_of(resolver(who(), context).token)["sub"] == "user:acme/someone"


def test_dotted_hand_written_factory_gets_options(context):
    resolver = read({"resolver": f"{CUSTOM}:fixed_user", "ref": "user:default/robot"})
    assert claims_of(resolver(who(), context).token)["sub"] == "user:default/robot"


def test_entry_point_resolvers(monkeypatch, context):
    found = [
        EntryPoint(
            name="byDisplayName", value=f"{CUSTOM}:by_display_name", group="wsgiauth.resolvers"
        ),
        EntryPoint(name="broken", value="tests.sign_in.nowhere:x", group="wsgiauth.resolvers"),
        EntryPoint(
            name="emailMatchingUserEntityProfileEmail",
            value=f"{CUSTOM}:fixed_user",
            group="wsgiauth.resolvers",
        ),
    ]
    monkeypatch.setattr(
        declarative, "entry_points", lambda group: [ep for ep in found if ep.group == group]
    )
    factories = provider_resolvers("oidc")
    assert "byDisplayName" in factories
    assert "broken" not in factories
    # A plugin cannot take a built-in's name.
    assert (
        factories["emailMatchingUserEntityProfileEmail"]
        is not declarative.entry_point_resolver_factories()["emailMatchingUserEntityProfileEmail"]
    )
    # And a provider that was given a fixed mapping still finds entry points by name.
    resolver = read_declarative_sign_in_resolver(env_config({"resolver": "byDisplayName"}), {})
    assert (
        claims_of(resolver(who(display_name="carl"), context).token)["sub"] == "user:default/carl"
    )
