"""create_proxy_auth_provider_factory: no env level, and a sign-in resolver or no start.

A proxy provider's config is ``auth.providers.<id>`` itself. Its resolver comes
from ``signIn.resolvers``, else from the factory's ``sign_in_resolver``; with
neither, the app does not start (a proxy result alone names no catalog user).
"""

from __future__ import annotations

import pytest

from tests.proxy.conftest import EMAIL_RESOLVER
from tests.proxy.conftest import HeaderAuthenticator
from tests.proxy.conftest import proxy_app
from wsgiauth.errors import ConfigError
from wsgiauth.proxy import create_proxy_auth_provider_factory
from wsgiauth.types import TokenParams


def fixed_resolver(ref):
    def resolve(info, context):
        return context.issue_token(TokenParams(claims={"sub": ref, "ent": [ref]}))

    return resolve


def signed_in_as(testapp, email="jane@acme.org", provider_id="header", header="X-Auth-Email"):
    body = testapp.get(f"/api/auth/{provider_id}/refresh", headers={header: email}).json
    return body["backstageIdentity"]["identity"]["userEntityRef"]


def test_the_authenticator_gets_the_provider_block_itself():
    testapp = proxy_app(
        create_proxy_auth_provider_factory(HeaderAuthenticator),
        {"header": "X-Forwarded-Email", **EMAIL_RESOLVER},
    )
    handlers = testapp.auth_app.providers["header"]
    assert handlers.authenticator.config.get_string("header") == "X-Forwarded-Email"
    assert signed_in_as(testapp, header="X-Forwarded-Email") == "user:default/jane"
    testapp.get("/api/auth/header/refresh", headers={"X-Auth-Email": "jane@acme.org"}, status=401)


@pytest.mark.parametrize(
    "provider_id", [pytest.param("header", id="header"), pytest.param("corp-proxy", id="other-id")]
)
def test_without_a_resolver_the_app_does_not_start(provider_id):
    with pytest.raises(ConfigError) as info:
        proxy_app(create_proxy_auth_provider_factory(HeaderAuthenticator), {}, provider_id)
    assert info.value.path == f"auth.providers.{provider_id}.signIn"
    assert info.value.reason == (
        f"No sign-in resolver configured for proxy auth provider '{provider_id}'"
    )


def test_the_sign_in_resolver_argument_is_built_from_the_options():
    seen = []

    def build(options):
        seen.append(options)
        return fixed_resolver("user:default/given")

    testapp = proxy_app(
        create_proxy_auth_provider_factory(HeaderAuthenticator, sign_in_resolver=build), {}
    )
    [options] = seen
    assert options.provider_id == "header"
    assert options.environment == "development"
    assert signed_in_as(testapp) == "user:default/given"


def test_configured_resolvers_win_over_the_sign_in_resolver_argument():
    def build(options):
        raise AssertionError("not needed: signIn.resolvers is configured")

    factory = create_proxy_auth_provider_factory(HeaderAuthenticator, sign_in_resolver=build)
    assert signed_in_as(proxy_app(factory, EMAIL_RESOLVER)) == "user:default/jane"


def test_the_common_resolvers_are_offered_by_default():
    testapp = proxy_app(create_proxy_auth_provider_factory(HeaderAuthenticator), EMAIL_RESOLVER)
    assert signed_in_as(testapp, "Alice.Smith@Acme.org") == "user:default/alice.smith"


def test_the_resolver_factories_argument_replaces_the_common_ones():
    factory = create_proxy_auth_provider_factory(
        HeaderAuthenticator,
        sign_in_resolver_factories={"always": lambda options: fixed_resolver("user:default/x")},
    )
    testapp = proxy_app(factory, {"signIn": {"resolvers": [{"resolver": "always"}]}})
    assert signed_in_as(testapp) == "user:default/x"
    with pytest.raises(ConfigError) as info:
        proxy_app(factory, EMAIL_RESOLVER)
    assert info.value.path == "auth.providers.header.signIn.resolvers[0].resolver"
    assert info.value.reason == (
        "Sign-in resolver 'emailMatchingUserEntityProfileEmail' is not available"
        " (available: always)"
    )


def test_the_resolver_signs_in_through_the_apps_resolver_context():
    """Tokens issued through the context verify with the app's own JWKS."""
    testapp = proxy_app(create_proxy_auth_provider_factory(HeaderAuthenticator), EMAIL_RESOLVER)
    token = testapp.get("/api/auth/header/refresh", headers={"X-Auth-Email": "jane@acme.org"}).json[
        "backstageIdentity"
    ]["token"]
    assert testapp.auth_app.verifier.verify(token).user_entity_ref == "user:default/jane"


def test_declared_config_keys_name_an_unknown_one_before_anything_else():
    """Even before the resolver is read: a misspelt key is named, not a missing signIn."""
    factory = create_proxy_auth_provider_factory(HeaderAuthenticator, config_keys=["header"])
    with pytest.raises(ConfigError) as info:
        proxy_app(factory, {"headr": "X-Forwarded-Email"})
    assert info.value.path == "auth.providers.header.headr"
    assert info.value.reason == "unknown key (known: header, signIn)"
