"""Entity refs parse and stringify as @backstage/catalog-model does."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from wsgiauth.catalog.refs import EntityRef
from wsgiauth.catalog.refs import normal_entity_ref
from wsgiauth.catalog.refs import parse_entity_ref
from wsgiauth.catalog.refs import stringify_entity_ref
from wsgiauth.errors import InputError


@pytest.mark.parametrize(
    ("ref", "defaults", "expected"),
    [
        pytest.param("user:default/jane", {}, ("user", "default", "jane"), id="full"),
        pytest.param("User:Dev/Jane", {}, ("User", "Dev", "Jane"), id="case-kept"),
        pytest.param("jane", {"default_kind": "User"}, ("User", "default", "jane"), id="name-only"),
        pytest.param(
            "ops/bob", {"default_kind": "User"}, ("User", "ops", "bob"), id="namespace-and-name"
        ),
        pytest.param(
            "team-a",
            {"default_kind": "Group", "default_namespace": "ops"},
            ("Group", "ops", "team-a"),
            id="default-namespace",
        ),
        pytest.param(
            "ns/name:with-colon",
            {"default_kind": "User"},
            ("User", "ns", "name:with-colon"),
            id="colon-after-slash-is-name",
        ),
        pytest.param(
            {"name": "jane"}, {"default_kind": "User"}, ("User", "default", "jane"), id="mapping"
        ),
        pytest.param(
            {"kind": "Group", "namespace": "x", "name": "y"},
            {},
            ("Group", "x", "y"),
            id="mapping-full",
        ),
    ],
)
def test_parse_entity_ref(ref, defaults, expected):
    assert parse_entity_ref(ref, **defaults) == EntityRef(*expected)


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        pytest.param("", "must not be empty", id="empty"),
        pytest.param("jane", "had missing or empty kind", id="no-kind-no-default"),
        pytest.param(":default/jane", "was not on the form", id="empty-kind"),
        pytest.param("user:/jane", "was not on the form", id="empty-namespace"),
        pytest.param("user:default/", "was not on the form", id="empty-name"),
        pytest.param({"kind": "User"}, "had missing or empty name", id="mapping-no-name"),
        pytest.param({"kind": "User", "name": 3}, "name must be a string", id="mapping-bad-name"),
        pytest.param(42, "must be a string or an object", id="number"),
    ],
)
def test_parse_entity_ref_errors(ref, message):
    with pytest.raises(InputError, match=message):
        parse_entity_ref(ref)


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        pytest.param(EntityRef("User", "Default", "Jane.Doe"), "user:default/jane.doe", id="ref"),
        pytest.param({"kind": "Group", "name": "Team-A"}, "group:default/team-a", id="mapping"),
        pytest.param(
            {"kind": "User", "metadata": {"name": "Bob", "namespace": "OPS"}},
            "user:ops/bob",
            id="entity",
        ),
        pytest.param(
            {"kind": "User", "metadata": {"name": "bob"}}, "user:default/bob", id="entity-no-ns"
        ),
    ],
)
def test_stringify_entity_ref_lowercases_all_parts(ref, expected):
    assert stringify_entity_ref(ref) == expected


def test_entity_ref_str_is_the_stringified_form():
    assert str(parse_entity_ref("Group:Ops/Platform")) == "group:ops/platform"


@pytest.mark.parametrize(
    "ref",
    [
        pytest.param({"name": "jane"}, id="no-kind"),
        pytest.param({"kind": "User"}, id="no-name"),
        pytest.param({"kind": "User", "name": "x", "namespace": 1}, id="bad-namespace"),
    ],
)
def test_stringify_entity_ref_errors(ref):
    with pytest.raises(InputError):
        stringify_entity_ref(ref)


_REF_TEXT = st.text(alphabet="Uu:sr/ab-.é", max_size=12)


@settings(max_examples=300)
@given(ref=_REF_TEXT, default_kind=st.sampled_from([None, "User", "group"]))
def test_normal_entity_ref_is_stringify_of_parse(ref, default_kind):
    try:
        expected = stringify_entity_ref(parse_entity_ref(ref, default_kind=default_kind))
    except InputError as error:
        with pytest.raises(InputError, match=re.escape(str(error))):
            normal_entity_ref(ref, default_kind=default_kind)
    else:
        assert normal_entity_ref(ref, default_kind=default_kind) == expected


def test_normal_entity_ref_cache_is_bounded():
    for index in range(3000):
        normal_entity_ref(f"user:default/u{index}")
    assert normal_entity_ref.cache_info().currsize <= 1024
