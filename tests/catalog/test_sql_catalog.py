"""examples/sql_catalog.py: a Catalog over an app's own users table, signed in through."""

from __future__ import annotations

import importlib.util
import os
import sqlite3

import pytest

from tests.catalog.fakes import FakeTokenIssuer
from tests.catalog.fakes import claims_of
from tests.sign_in.conftest import provider_resolvers
from wsgiauth.catalog import CatalogAuthResolverContext
from wsgiauth.errors import ConflictError
from wsgiauth.errors import NotFoundError
from wsgiauth.types import ProfileInfo
from wsgiauth.types import SignInInfo

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
_spec = importlib.util.spec_from_file_location(
    "sql_catalog", os.path.join(_ROOT, "examples", "sql_catalog.py")
)
sql_catalog = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sql_catalog)

ROWS = [
    ("jane", "jane@acme.org", "Jane Doe", "team-a, Admins"),
    ("Joe", "joe@acme.org", None, ""),
    ("shared1", "shared@acme.org", None, None),
    ("shared2", "shared@acme.org", None, "team-a"),
]


@pytest.fixture
def catalog(tmp_path):
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as connection:
        connection.execute(
            "CREATE TABLE users"
            " (username TEXT PRIMARY KEY, email TEXT, display_name TEXT, groups TEXT)"
        )
        connection.executemany("INSERT INTO users VALUES (?, ?, ?, ?)", ROWS)
    connection.close()
    return sql_catalog.SqlCatalog(lambda: sqlite3.connect(path))


def names(entities):
    return [entity["metadata"]["name"] for entity in entities]


def test_row_as_user_entity(catalog):
    assert catalog.get_entity_by_ref("User:default/JANE") == {
        "apiVersion": "backstage.io/v1alpha1",
        "kind": "User",
        "metadata": {"name": "jane", "namespace": "default"},
        "spec": {
            "profile": {"email": "jane@acme.org", "displayName": "Jane Doe"},
            "memberOf": ["team-a", "Admins"],
        },
        "relations": [
            {"type": "memberOf", "targetRef": "group:default/team-a"},
            {"type": "memberOf", "targetRef": "group:default/admins"},
        ],
    }


@pytest.mark.parametrize(
    "ref",
    [
        pytest.param("user:default/nobody", id="unknown"),
        pytest.param("group:default/team-a", id="group"),
        pytest.param("user:other/jane", id="other-namespace"),
        pytest.param("user:/x", id="malformed"),
    ],
)
def test_get_entity_by_ref_misses(catalog, ref):
    assert catalog.get_entity_by_ref(ref) is None


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        pytest.param(
            {"filter": {"spec.profile.email": "JANE@acme.org", "kind": "user"}},
            ["jane"],
            id="email",
        ),
        pytest.param(
            {"filter": {"spec.profile.email": "shared@acme.org"}},
            ["shared1", "shared2"],
            id="duplicates",
        ),
        pytest.param({"filter": {"metadata.name": ["joe", "jane"]}}, ["Joe", "jane"], id="any-of"),
        pytest.param(
            {"filter": {"relations.memberOf": "group:default/team-a"}},
            ["jane", "shared2"],
            id="group",
        ),
        pytest.param({"filter": {"kind": "group"}}, [], id="kind-group"),
        pytest.param({"filter": {"spec.unknown": "x"}}, [], id="unknown-field"),
        pytest.param({"annotations": {"google.com/email": "jane@acme.org"}}, [], id="annotations"),
        pytest.param(
            {"filter": {"spec.profile.email": "x' OR '1'='1"}}, [], id="values-are-parameters"
        ),
    ],
)
def test_find_users(catalog, query, expected):
    assert names(catalog.find_users(**query)) == expected


def test_table_name_is_checked():
    with pytest.raises(ValueError, match="not a table name"):
        sql_catalog.SqlCatalog(lambda: None, table="users; DROP TABLE users")


def test_sign_in_through_the_sql_catalog(catalog):
    context = CatalogAuthResolverContext(catalog, FakeTokenIssuer())
    resolver = provider_resolvers("oidc")["emailMatchingUserEntityProfileEmail"](None)
    claims = claims_of(
        resolver(SignInInfo(profile=ProfileInfo(email="jane+x@acme.org"), result={}), context).token
    )
    assert claims["sub"] == "user:default/jane"
    assert claims["ent"] == ["user:default/jane", "group:default/team-a", "group:default/admins"]
    with pytest.raises(ConflictError):
        resolver(SignInInfo(profile=ProfileInfo(email="shared@acme.org"), result={}), context)
    with pytest.raises(NotFoundError):
        resolver(SignInInfo(profile=ProfileInfo(email="ghost@acme.org"), result={}), context)
