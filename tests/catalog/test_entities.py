"""User and Group entities: each field checked as Backstage's validators do, and relations.

The YAML catalog (``test_yaml_catalog.py``) adds the file and the entity's number
to these messages; here each document is checked on its own.
"""

from __future__ import annotations

import pytest

from wsgiauth.catalog.entities import EntityError
from wsgiauth.catalog.entities import ParsedEntity
from wsgiauth.catalog.entities import compute_relations
from wsgiauth.catalog.entities import describe
from wsgiauth.catalog.entities import parse_entity


def user(name="jane", *, namespace=None, **spec):
    metadata = {"name": name} if namespace is None else {"name": name, "namespace": namespace}
    return {
        "apiVersion": "backstage.io/v1alpha1",
        "kind": "User",
        "metadata": metadata,
        "spec": spec,
    }


def group(name="team-a", *, namespace=None, **spec):
    doc = user(name, namespace=namespace, **spec)
    doc["kind"] = "Group"
    return doc


# -- parse_entity: valid documents ----------------------------------------------------------


def test_a_user_gets_its_ref_kind_namespace_and_links():
    parsed = parse_entity(
        user("Jane", profile={"email": "jane@acme.org"}, memberOf=["team-a", "ops/Platform"])
    )
    assert parsed == ParsedEntity(
        ref="user:default/jane",
        kind="User",
        namespace="default",
        entity={
            "apiVersion": "backstage.io/v1alpha1",
            "kind": "User",
            "metadata": {"name": "Jane", "namespace": "default"},
            "spec": {"profile": {"email": "jane@acme.org"}, "memberOf": ["team-a", "ops/Platform"]},
        },
        links=(("memberOf", "group:default/team-a"), ("memberOf", "group:ops/platform")),
    )


def test_a_group_links_parent_children_and_members_in_its_namespace():
    parsed = parse_entity(
        group(
            "team-a",
            namespace="ops",
            type="team",
            parent="engineering",
            children=["team-a1", "group:default/shared"],
            members=["jane", "user:default/joe"],
        )
    )
    assert parsed.ref == "group:ops/team-a"
    assert parsed.links == (
        ("childOf", "group:ops/engineering"),
        ("parentOf", "group:ops/team-a1"),
        ("parentOf", "group:default/shared"),
        ("hasMember", "user:ops/jane"),
        ("hasMember", "user:default/joe"),
    )


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        pytest.param("User", "User", id="User"),
        pytest.param("user", "User", id="lowercase"),
        pytest.param("GROUP", "Group", id="uppercase"),
    ],
)
def test_kind_is_matched_in_any_case_and_spelled_the_catalog_way(kind, expected):
    doc = {"kind": kind, "metadata": {"name": "x"}}
    parsed = parse_entity(doc)
    assert parsed.kind == expected
    assert parsed.ref == f"{expected.lower()}:default/x"
    assert parsed.entity["kind"] == kind  # the document keeps its own spelling


@pytest.mark.parametrize(
    "doc",
    [
        pytest.param({"kind": "Component", "metadata": {"name": "portal"}}, id="component"),
        pytest.param({"kind": "Location", "spec": {"targets": 3}}, id="location-unchecked"),
    ],
)
def test_other_kinds_are_not_kept_and_not_checked(doc):
    assert parse_entity(doc) is None


def test_the_entity_is_a_copy_of_the_document():
    doc = user(memberOf=["team-a"])
    parsed = parse_entity(doc)
    parsed.entity["spec"]["memberOf"].append("admins")
    parsed.entity["metadata"]["name"] = "mallory"
    assert doc == user(memberOf=["team-a"])
    assert "namespace" not in doc["metadata"]


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("a", id="one-character"),
        pytest.param("a" * 63, id="63-characters"),
        pytest.param("Alice.Smith_2-x", id="dots-underscores-dashes"),
    ],
)
def test_valid_names(name):
    assert parse_entity(user(name)).entity["metadata"]["name"] == name


def test_no_spec_and_no_metadata_fields_beyond_the_name_are_fine():
    parsed = parse_entity({"kind": "User", "metadata": {"name": "jane"}})
    assert parsed.links == ()
    assert parsed.entity == {"kind": "User", "metadata": {"name": "jane", "namespace": "default"}}


# -- parse_entity: each malformed field named -----------------------------------------------

NAME_RULE = (
    "metadata.name must be 1-63 letters, digits and [-_.], "
    "starting and ending with a letter or digit, got "
)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        pytest.param([1], "must be an object, got a list", id="not-an-object"),
        pytest.param({"kind": ["User"]}, "kind must be a non-empty string, got a list", id="kind"),
        pytest.param(
            {"kind": ""}, "kind must be a non-empty string, got an empty string", id="empty-kind"
        ),
        pytest.param(
            {"kind": "User", "metadata": [1]},
            "metadata must be an object, got a list",
            id="metadata",
        ),
        pytest.param({"kind": "User", "metadata": {}}, NAME_RULE + "null", id="no-name"),
        pytest.param(user("jane doe"), NAME_RULE + "'jane doe'", id="name-with-a-space"),
        pytest.param(user("-jane"), NAME_RULE + "'-jane'", id="name-starts-with-a-dash"),
        pytest.param(user("jane."), NAME_RULE + "'jane.'", id="name-ends-with-a-dot"),
        pytest.param(user("a" * 64), NAME_RULE + repr("a" * 64), id="name-too-long"),
        pytest.param(user(name=7), NAME_RULE + "a number", id="name-a-number"),
        pytest.param(
            user(namespace="a b"),
            "metadata.namespace must be a DNS label, got 'a b'",
            id="namespace",
        ),
        pytest.param(
            user(namespace="a" * 64),
            f"metadata.namespace must be a DNS label, got {'a' * 64!r}",
            id="namespace-too-long",
        ),
        pytest.param(
            user(namespace=5),
            "metadata.namespace must be a non-empty string, got a number",
            id="namespace-a-number",
        ),
        pytest.param(
            {
                "kind": "User",
                "metadata": {"name": "jane", "annotations": {"google.com/user-id": 123}},
            },
            "metadata.annotations['google.com/user-id'] must be a string, got a number "
            "(quote numbers and dates)",
            id="unquoted-annotation",
        ),
        pytest.param(
            {"kind": "User", "metadata": {"name": "jane", "annotations": ["a"]}},
            "metadata.annotations must be an object, got a list",
            id="annotations-a-list",
        ),
        pytest.param(
            {"kind": "User", "metadata": {"name": "jane"}, "spec": [1]},
            "spec must be an object, got a list",
            id="spec",
        ),
        pytest.param(
            user(profile="jane"), "spec.profile must be an object, got a string", id="profile"
        ),
        pytest.param(
            user(profile={"email": 7}),
            "spec.profile.email must be a non-empty string, got a number",
            id="email",
        ),
        pytest.param(
            user(profile={"displayName": ""}),
            "spec.profile.displayName must be a non-empty string, got an empty string",
            id="empty-display-name",
        ),
        pytest.param(
            user(profile={"picture": True}),
            "spec.profile.picture must be a non-empty string, got a boolean",
            id="picture",
        ),
        pytest.param(
            user(memberOf="team-a"),
            "spec.memberOf must be a list of strings, got a string",
            id="memberOf-not-a-list",
        ),
        pytest.param(
            user(memberOf=["team-a", 3]),
            "spec.memberOf[1] must be a non-empty string, got a number",
            id="memberOf-item",
        ),
        pytest.param(
            user(memberOf=["user:/x"]),
            'spec.memberOf[0]: Entity reference "user:/x" was not on the form '
            "[<kind>:][<namespace>/]<name>",
            id="memberOf-ref",
        ),
        pytest.param(
            group(type=["team"]),
            "spec.type must be a non-empty string, got a list",
            id="group-type",
        ),
        pytest.param(
            group(children="team-b"),
            "spec.children must be a list of strings, got a string",
            id="group-children",
        ),
        pytest.param(
            group(parent=":x"),
            'spec.parent: Entity reference ":x" was not on the form [<kind>:][<namespace>/]<name>',
            id="group-parent-ref",
        ),
        pytest.param(
            group(members=["user:/x"]),
            'spec.members[0]: Entity reference "user:/x" was not on the form '
            "[<kind>:][<namespace>/]<name>",
            id="group-members-ref",
        ),
        pytest.param(
            group(members=[None]),
            "spec.members[0] must be a non-empty string, got null",
            id="group-members-item",
        ),
    ],
)
def test_malformed_fields_are_named(doc, message):
    with pytest.raises(EntityError) as info:
        parse_entity(doc)
    assert str(info.value) == message


# -- describe -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        pytest.param(user("jane"), ' (User "jane")', id="kind-and-name"),
        pytest.param({"kind": "Group"}, " (Group)", id="kind-only"),
        pytest.param({"metadata": {"name": "jane"}}, ' ("jane")', id="name-only"),
        pytest.param({"kind": ["User"], "metadata": {"name": 7}}, "", id="neither-a-string"),
        pytest.param({"kind": "User", "metadata": "jane"}, " (User)", id="metadata-not-an-object"),
        pytest.param({}, "", id="empty"),
        pytest.param(["User"], "", id="not-an-object"),
    ],
)
def test_describe_says_as_much_as_the_document_tells(doc, expected):
    assert describe(doc) == expected


# -- compute_relations ----------------------------------------------------------------------


def parsed(*docs):
    return [parse_entity(doc) for doc in docs]


def test_each_link_gets_its_inverse_on_the_other_side():
    relations = compute_relations(
        parsed(
            user("jane", memberOf=["team-a"]),
            group("team-a", parent="engineering", members=["joe"]),
            group("engineering", children=["team-b"]),
            group("team-b"),
            user("joe"),
        )
    )
    assert relations == {
        "user:default/jane": [{"type": "memberOf", "targetRef": "group:default/team-a"}],
        "group:default/team-a": [
            {"type": "hasMember", "targetRef": "user:default/jane"},
            {"type": "childOf", "targetRef": "group:default/engineering"},
            {"type": "hasMember", "targetRef": "user:default/joe"},
        ],
        "group:default/engineering": [
            {"type": "parentOf", "targetRef": "group:default/team-a"},
            {"type": "parentOf", "targetRef": "group:default/team-b"},
        ],
        "group:default/team-b": [{"type": "childOf", "targetRef": "group:default/engineering"}],
        "user:default/joe": [{"type": "memberOf", "targetRef": "group:default/team-a"}],
    }


def test_a_relation_declared_on_both_sides_is_listed_once():
    relations = compute_relations(
        parsed(user("jane", memberOf=["team-a", "Team-A"]), group("team-a", members=["jane"]))
    )
    assert relations["user:default/jane"] == [
        {"type": "memberOf", "targetRef": "group:default/team-a"}
    ]
    assert relations["group:default/team-a"] == [
        {"type": "hasMember", "targetRef": "user:default/jane"}
    ]


def test_a_link_to_a_missing_entity_stays_on_its_declarer_only():
    relations = compute_relations(parsed(user("jane", memberOf=["ghosts"])))
    assert relations == {
        "user:default/jane": [{"type": "memberOf", "targetRef": "group:default/ghosts"}]
    }


def test_no_entities_no_relations():
    assert compute_relations([]) == {}
