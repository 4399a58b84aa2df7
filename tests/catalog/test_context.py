"""CatalogAuthResolverContext over the YAML catalog: lookups, ownership and tokens (spec §10.3)."""

from __future__ import annotations

import pytest

from tests.catalog.fakes import claims_of
from wsgiauth.catalog import CatalogAuthResolverContext
from wsgiauth.catalog import default_ownership_entity_refs
from wsgiauth.errors import ConflictError
from wsgiauth.errors import InputError
from wsgiauth.errors import NotFoundError
from wsgiauth.types import TokenParams


def name_of(entity):
    return entity["metadata"]["name"]


# -- issue_token ----------------------------------------------------------------------------


def test_issue_token_defaults_ent_to_sub(context, issuer):
    result = context.issue_token(TokenParams(claims={"sub": "user:default/jane"}))
    claims = claims_of(result.token)
    assert claims["sub"] == "user:default/jane"
    assert claims["ent"] == ["user:default/jane"]
    assert issuer.issued == [{"sub": "user:default/jane", "ent": ["user:default/jane"]}]


def test_issue_token_keeps_ent_and_extra_claims(context):
    params = TokenParams(
        claims={"sub": "user:default/jane", "ent": ["group:default/x"], "x-tenant": "acme"}
    )
    claims = claims_of(context.issue_token(params).token)
    assert claims["ent"] == ["group:default/x"]
    assert claims["x-tenant"] == "acme"


def test_issue_token_without_sub_fails(context):
    with pytest.raises(InputError):
        context.issue_token(TokenParams(claims={"ent": []}))


def test_issue_token_saves_user_info(catalog, issuer):
    saved = []

    class Store:
        def save_user_info(self, sub, claims):
            saved.append((sub, claims))

        def get_user_info(self, sub):
            return None

    context = CatalogAuthResolverContext(catalog, issuer, user_info_store=Store())
    context.issue_token(TokenParams(claims={"sub": "user:default/joe"}))
    assert saved == [("user:default/joe", {"sub": "user:default/joe", "ent": ["user:default/joe"]})]


# -- find_catalog_user ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        pytest.param({"entityRef": "jane"}, "jane", id="ref-name-only"),
        pytest.param({"entityRef": "user:default/JANE"}, "jane", id="ref-full-any-case"),
        pytest.param({"entityRef": {"name": "joe"}}, "joe", id="ref-mapping"),
        pytest.param({"entityRef": {"namespace": "ops", "name": "bob"}}, "bob", id="ref-namespace"),
        pytest.param({"entityRef": "ops/bob"}, "bob", id="ref-string-namespace"),
        pytest.param(
            {"annotations": {"okta.com/email": "carl@acme.org"}}, "carl", id="annotations"
        ),
        pytest.param({"filter": {"spec.profile.email": "joe@acme.org"}}, "joe", id="filter"),
        pytest.param(
            {"filter": [{"spec.profile.email": "joe@acme.org"}, {"metadata.name": "joe"}]},
            "joe",
            id="filter-list-deduplicated",
        ),
    ],
)
def test_find_catalog_user(context, query, expected):
    assert name_of(context.find_catalog_user(query)) == expected


@pytest.mark.parametrize(
    ("query", "error", "message"),
    [
        pytest.param({"entityRef": "nobody"}, NotFoundError, "User not found", id="ref-unknown"),
        pytest.param(
            {"entityRef": "bob"}, NotFoundError, "User not found", id="ref-default-namespace"
        ),
        pytest.param(
            {"annotations": {"google.com/email": "x@acme.org"}},
            NotFoundError,
            "User not found",
            id="annotation",
        ),
        pytest.param(
            {"filter": {"spec.profile.email": "shared@acme.org"}},
            ConflictError,
            "User lookup resulted in multiple matches",
            id="conflict",
        ),
        pytest.param(
            {"filter": [{"metadata.name": "joe"}, {"metadata.name": "carl"}]},
            ConflictError,
            "User lookup resulted in multiple matches",
            id="conflict-across-filters",
        ),
        pytest.param(
            {"filter": {"metadata.name": "team-a", "kind": "group"}},
            NotFoundError,
            "User not found",
            id="groups-are-not-users",
        ),
        pytest.param(
            {"email": "jane@acme.org"}, InputError, "Invalid user lookup query", id="bad-query"
        ),
        pytest.param({"entityRef": "user:/x"}, InputError, "was not on the form", id="bad-ref"),
        pytest.param(
            {"annotations": "x"}, InputError, "annotations must be an object", id="bad-annotations"
        ),
    ],
)
def test_find_catalog_user_errors(context, query, error, message):
    with pytest.raises(error) as info:
        context.find_catalog_user(query)
    assert message in info.value.message


# -- sign_in_with_catalog_user and ownership --------------------------------------------------


@pytest.mark.parametrize(
    ("query", "sub", "ent"),
    [
        pytest.param(
            {"entityRef": "jane"},
            "user:default/jane",
            ["user:default/jane", "group:default/team-a", "group:default/team-b"],
            id="direct-groups-only-not-engineering",
        ),
        pytest.param(
            {"filter": {"spec.profile.email": "alice.smith@acme.org"}},
            "user:default/alice.smith",
            ["user:default/alice.smith", "group:default/team-b", "group:default/team-a"],
            id="lowercased",
        ),
        pytest.param(
            {"entityRef": "ops/bob"},
            "user:ops/bob",
            ["user:ops/bob", "group:ops/platform"],
            id="namespace",
        ),
        pytest.param(
            {"entityRef": "carl"}, "user:default/carl", ["user:default/carl"], id="no-groups"
        ),
    ],
)
def test_sign_in_with_catalog_user(context, query, sub, ent):
    claims = claims_of(context.sign_in_with_catalog_user(query).token)
    assert claims["sub"] == sub
    assert claims["ent"] == ent


@pytest.mark.parametrize(
    "fallback",
    [
        pytest.param("user:default/Ghost", id="string"),
        pytest.param("ghost", id="name-only"),
        pytest.param({"name": "ghost"}, id="mapping"),
        pytest.param({"entityRef": "ghost"}, id="backstage-shape"),
    ],
)
def test_dangerous_fallback_on_not_found(context, fallback):
    result = context.sign_in_with_catalog_user(
        {"entityRef": "ghost"}, dangerous_entity_ref_fallback=fallback
    )
    claims = claims_of(result.token)
    assert claims["sub"] == "user:default/ghost"
    assert claims["ent"] == ["user:default/ghost"]


def test_dangerous_fallback_is_not_used_when_the_user_exists(context):
    result = context.sign_in_with_catalog_user(
        {"entityRef": "joe"}, dangerous_entity_ref_fallback="ghost"
    )
    assert claims_of(result.token)["sub"] == "user:default/joe"


def test_dangerous_fallback_does_not_hide_a_conflict(context, issuer):
    with pytest.raises(ConflictError):
        context.sign_in_with_catalog_user(
            {"filter": {"spec.profile.email": "shared@acme.org"}},
            dangerous_entity_ref_fallback="ghost",
        )
    assert issuer.issued == []


def test_not_found_without_fallback(context, issuer):
    with pytest.raises(NotFoundError, match="User not found"):
        context.sign_in_with_catalog_user({"entityRef": "ghost"})
    assert issuer.issued == []


def test_custom_ownership_resolver(catalog, issuer):
    def with_parents(entity):
        return [*default_ownership_entity_refs(entity), "group:default/engineering"]

    context = CatalogAuthResolverContext(catalog, issuer, ownership_resolver=with_parents)
    claims = claims_of(context.sign_in_with_catalog_user({"entityRef": "joe"}).token)
    assert claims["ent"] == [
        "user:default/joe",
        "group:default/team-b",
        "group:default/engineering",
    ]


def test_default_ownership_from_relations_only():
    entity = {
        "kind": "User",
        "metadata": {"name": "Jane", "namespace": "Default"},
        "spec": {"memberOf": ["not-used"]},
        "relations": [
            {"type": "memberOf", "targetRef": "Group:Default/Team-A"},
            {"type": "memberOf", "targetRef": "group:default/team-a"},
            {"type": "memberOf", "targetRef": "user:default/odd"},
            {"type": "ownerOf", "targetRef": "group:default/owned"},
            {"type": "memberOf"},
        ],
    }
    assert default_ownership_entity_refs(entity) == ["user:default/jane", "group:default/team-a"]
