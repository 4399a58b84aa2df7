"""wsgiauth.types: the wire shapes of the shared values, and the protocols providers meet.

``to_json`` is what the frontend reads (spec §6.1), so each shape is pinned field by
field; the route-handler and resolver-context protocols are held to every shipped
implementation's signatures (see ``tests/protocols.py``).
"""

from __future__ import annotations

import dataclasses

import pytest

from tests.protocols import protocol_mismatches
from wsgiauth.catalog.context import CatalogAuthResolverContext
from wsgiauth.oauth.environment import EnvironmentHandler
from wsgiauth.proxy.route_handlers import ProxyRouteHandlers
from wsgiauth.types import AuthProviderRouteHandlers
from wsgiauth.types import AuthResolverContext
from wsgiauth.types import BackstageIdentityResponse
from wsgiauth.types import ClientAuthResponse
from wsgiauth.types import ProfileInfo
from wsgiauth.types import ProviderModule
from wsgiauth.types import SupportsLogout
from wsgiauth.types import SupportsRefresh

IDENTITY = BackstageIdentityResponse(
    token="t.o.k",
    user_entity_ref="user:default/jane",
    ownership_entity_refs=("user:default/jane", "group:default/team-a"),
    expires_in_seconds=3600,
)


@pytest.mark.parametrize(
    ("profile", "wire"),
    [
        pytest.param(ProfileInfo(), {}, id="empty"),
        pytest.param(
            ProfileInfo(email="j@x.org", display_name="Jane", picture="https://p/j.png"),
            {"email": "j@x.org", "displayName": "Jane", "picture": "https://p/j.png"},
            id="full",
        ),
        pytest.param(ProfileInfo(display_name=""), {"displayName": ""}, id="empty-string-kept"),
    ],
)
def test_profile_on_the_wire_omits_what_is_absent(profile, wire):
    assert profile.to_json() == wire


def test_backstage_identity_on_the_wire():
    assert IDENTITY.to_json() == {
        "token": "t.o.k",
        "identity": {
            "type": "user",
            "userEntityRef": "user:default/jane",
            "ownershipEntityRefs": ["user:default/jane", "group:default/team-a"],
        },
        "expiresInSeconds": 3600,
    }
    without_expiry = dataclasses.replace(IDENTITY, expires_in_seconds=None)
    assert "expiresInSeconds" not in without_expiry.to_json()


@pytest.mark.parametrize(
    ("response", "keys"),
    [
        pytest.param(ClientAuthResponse(profile=ProfileInfo()), ["profile"], id="profile-only"),
        pytest.param(
            ClientAuthResponse(
                profile=ProfileInfo(email="j@x.org"),
                provider_info={"accessToken": "a"},
                backstage_identity=IDENTITY,
            ),
            ["profile", "providerInfo", "backstageIdentity"],
            id="full",
        ),
    ],
)
def test_client_auth_response_on_the_wire(response, keys):
    wire = response.to_json()
    assert list(wire) == keys
    if "backstageIdentity" in wire:
        assert wire["backstageIdentity"] == IDENTITY.to_json()


def test_values_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        IDENTITY.token = "other"  # type: ignore[misc]


def test_a_provider_module_has_no_resolvers_unless_it_brings_them():
    def factory(options):
        raise AssertionError("not built here")

    assert dict(ProviderModule("x", factory).resolvers) == {}


@pytest.mark.parametrize(
    ("implementation", "protocol"),
    [
        pytest.param(EnvironmentHandler, AuthProviderRouteHandlers, id="oauth-routes"),
        pytest.param(EnvironmentHandler, SupportsRefresh, id="oauth-refresh"),
        pytest.param(EnvironmentHandler, SupportsLogout, id="oauth-logout"),
        pytest.param(ProxyRouteHandlers, AuthProviderRouteHandlers, id="proxy-routes"),
        pytest.param(ProxyRouteHandlers, SupportsRefresh, id="proxy-refresh"),
        pytest.param(CatalogAuthResolverContext, AuthResolverContext, id="resolver-context"),
    ],
)
def test_shipped_implementations_meet_the_protocols(implementation, protocol):
    assert protocol_mismatches(implementation, protocol) == []


def test_the_protocol_check_can_fail():
    class Wrong:
        def start(self, req):  # the protocol names it `request`
            raise NotImplementedError

    assert protocol_mismatches(Wrong, AuthProviderRouteHandlers) != []
