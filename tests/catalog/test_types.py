"""The Catalog protocol: what every catalog offers, and all that sign-in asks of one.

``Catalog`` has no code of its own; these tests hold the shipped catalogs to its
method signatures and show that an object with just its two methods is enough
for the resolver context, as an application's own user table would be.
"""

from __future__ import annotations

import pytest

from tests.catalog.fakes import FakeTokenIssuer
from tests.catalog.fakes import claims_of
from tests.catalog.test_sql_catalog import sql_catalog as sql_catalog_example
from tests.protocols import protocol_mismatches
from wsgiauth.catalog import CatalogAuthResolverContext
from wsgiauth.catalog import YamlCatalog
from wsgiauth.catalog.types import Catalog
from wsgiauth.errors import NotFoundError


@pytest.mark.parametrize(
    "implementation",
    [
        pytest.param(YamlCatalog, id="YamlCatalog"),
        pytest.param(sql_catalog_example.SqlCatalog, id="examples-SqlCatalog"),
    ],
)
def test_shipped_catalogs_implement_the_protocol(implementation):
    assert protocol_mismatches(implementation, Catalog) == []


class PositionalFilters:
    """``find_users`` must take ``annotations`` and ``filter`` by keyword: callers name them."""

    def get_entity_by_ref(self, ref):
        return None

    def find_users(self, annotations=None, filters=None):
        return []


class NoLookupByRef:
    def find_users(self, *, annotations=None, filter=None):  # noqa: A002 - the protocol's name
        return []


@pytest.mark.parametrize(
    ("implementation", "problem"),
    [
        pytest.param(PositionalFilters, "find_users: 'annotations' is", id="positional"),
        pytest.param(NoLookupByRef, "get_entity_by_ref: missing", id="missing-method"),
    ],
)
def test_a_catalog_that_differs_is_reported(implementation, problem):
    assert any(line.startswith(problem) for line in protocol_mismatches(implementation, Catalog))


JANE = {
    "kind": "User",
    "metadata": {"name": "jane", "namespace": "default"},
    "spec": {"profile": {"email": "jane@acme.org"}},
    "relations": [{"type": "memberOf", "targetRef": "group:default/team-a"}],
}


class DictCatalog:
    """A catalog of one dict: the two protocol methods and nothing else."""

    def __init__(self, *entities):
        self.by_ref = {
            f"{e['kind']}:{e['metadata']['namespace']}/{e['metadata']['name']}".lower(): e
            for e in entities
        }
        self.queries = []

    def get_entity_by_ref(self, ref):
        return self.by_ref.get(ref)

    def find_users(self, *, annotations=None, filter=None):  # noqa: A002 - the protocol's name
        self.queries.append((annotations, filter))
        email = (filter or {}).get("spec.profile.email")
        return [e for e in self.by_ref.values() if e["spec"]["profile"].get("email") == email]


@pytest.mark.parametrize(
    "query",
    [
        pytest.param({"entityRef": "jane"}, id="by-ref"),
        pytest.param({"filter": {"spec.profile.email": "jane@acme.org"}}, id="by-filter"),
    ],
)
def test_the_two_methods_are_all_sign_in_needs(query):
    issuer = FakeTokenIssuer()
    context = CatalogAuthResolverContext(DictCatalog(JANE), issuer)
    claims = claims_of(context.sign_in_with_catalog_user(query).token)
    assert claims["sub"] == "user:default/jane"
    assert claims["ent"] == ["user:default/jane", "group:default/team-a"]


def test_filters_reach_find_users_by_keyword_with_the_user_kind():
    catalog = DictCatalog(JANE)
    context = CatalogAuthResolverContext(catalog, FakeTokenIssuer())
    with pytest.raises(NotFoundError):
        context.find_catalog_user({"filter": {"spec.profile.email": "nobody@acme.org"}})
    assert catalog.queries == [(None, {"spec.profile.email": "nobody@acme.org", "kind": "user"})]
