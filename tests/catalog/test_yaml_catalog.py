"""The YAML catalog: entities, computed relations, indexed lookups, errors and reloading."""

from __future__ import annotations

import logging
import os
import textwrap

import pytest

from tests.catalog.fakes import CATALOG_DIR
from wsgiauth.catalog import YamlCatalog
from wsgiauth.config import Config
from wsgiauth.errors import ConfigError
from wsgiauth.loader import load_config


def refs(entities):
    return sorted(
        f"{e['kind'].lower()}:{e['metadata']['namespace']}/{e['metadata']['name']}".lower()
        for e in entities
    )


def relations(entity, kind):
    return sorted(r["targetRef"] for r in entity["relations"] if r["type"] == kind)


def test_loads_users_and_groups_and_ignores_other_kinds(catalog):
    assert refs(catalog.entities) == [
        "group:default/engineering",
        "group:default/team-a",
        "group:default/team-b",
        "group:ops/platform",
        "user:default/alice.smith",
        "user:default/carl",
        "user:default/jane",
        "user:default/joe",
        "user:default/shared-1",
        "user:default/shared-2",
        "user:ops/bob",
    ]
    assert catalog.get_entity_by_ref("component:default/portal") is None


@pytest.mark.parametrize(
    ("ref", "relation", "expected"),
    [
        pytest.param(
            "user:default/jane",
            "memberOf",
            ["group:default/team-a", "group:default/team-b"],
            id="spec-memberOf-and-group-members",
        ),
        pytest.param(
            "user:default/joe", "memberOf", ["group:default/team-b"], id="group-members-only"
        ),
        pytest.param(
            "user:default/alice.smith",
            "memberOf",
            ["group:default/team-a", "group:default/team-b"],
            id="lowercased-and-deduplicated",
        ),
        pytest.param(
            "user:ops/bob", "memberOf", ["group:ops/platform"], id="user-namespace-default"
        ),
        pytest.param(
            "group:default/team-b",
            "hasMember",
            ["user:default/alice.smith", "user:default/jane", "user:default/joe"],
            id="hasMember-both-sides",
        ),
        pytest.param(
            "group:default/team-a", "childOf", ["group:default/engineering"], id="childOf"
        ),
        pytest.param(
            "group:default/engineering",
            "parentOf",
            ["group:default/team-a", "group:default/team-b"],
            id="parentOf",
        ),
    ],
)
def test_computed_relations(catalog, ref, relation, expected):
    assert relations(catalog.get_entity_by_ref(ref), relation) == expected


def test_relations_are_not_duplicated(catalog):
    jane = catalog.get_entity_by_ref("user:default/jane")
    pairs = [(r["type"], r["targetRef"]) for r in jane["relations"]]
    assert len(pairs) == len(set(pairs))


@pytest.mark.parametrize(
    "ref",
    [
        pytest.param("user:default/jane", id="exact"),
        pytest.param("User:Default/JANE", id="any-case"),
        pytest.param("user:default/Alice.Smith", id="mixed-case-entity"),
    ],
)
def test_get_entity_by_ref_ignores_case(catalog, ref):
    entity = catalog.get_entity_by_ref(ref)
    assert entity is not None
    assert entity["metadata"]["name"].lower() == ref.rsplit("/", 1)[1].lower()


@pytest.mark.parametrize(
    "ref",
    [
        pytest.param("user:default/nobody", id="unknown"),
        pytest.param("jane", id="no-kind"),
        pytest.param("user:ops/jane", id="other-namespace"),
    ],
)
def test_get_entity_by_ref_misses(catalog, ref):
    assert catalog.get_entity_by_ref(ref) is None


def test_entity_keeps_its_fields_and_gets_a_namespace(catalog):
    jane = catalog.get_entity_by_ref("user:default/jane")
    assert jane["apiVersion"] == "backstage.io/v1alpha1"
    assert jane["metadata"]["namespace"] == "default"
    assert jane["spec"]["profile"]["displayName"] == "Jane Doe"
    assert jane["metadata"]["annotations"]["google.com/user-id"] == "123456789"


def test_lookups_return_copies(catalog):
    jane = catalog.get_entity_by_ref("user:default/jane")
    jane["relations"].clear()
    jane["spec"]["profile"]["email"] = "mallory@evil.example"
    again = catalog.get_entity_by_ref("user:default/jane")
    assert again["spec"]["profile"]["email"] == "jane@acme.org"
    assert again["relations"]
    assert catalog.find_users(filter={"spec.profile.email": "mallory@evil.example"}) == []


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        pytest.param(
            {"filter": {"spec.profile.email": "jane@acme.org"}}, ["user:default/jane"], id="email"
        ),
        pytest.param(
            {"filter": {"spec.profile.email": "ALICE.SMITH@acme.ORG"}},
            ["user:default/alice.smith"],
            id="email-any-case",
        ),
        pytest.param(
            {"filter": {"spec.profile.email": "shared@acme.org"}},
            ["user:default/shared-1", "user:default/shared-2"],
            id="duplicate-email",
        ),
        pytest.param({"filter": {"spec.profile.email": "nobody@acme.org"}}, [], id="no-match"),
        pytest.param(
            {"filter": {"metadata.name": "joe", "kind": "user"}},
            ["user:default/joe"],
            id="name-and-kind",
        ),
        pytest.param({"filter": {"metadata.name": "team-a", "kind": "group"}}, [], id="users-only"),
        pytest.param(
            {"filter": {"metadata.name": ["joe", "carl"]}},
            ["user:default/carl", "user:default/joe"],
            id="list-value-any-of",
        ),
        pytest.param(
            {"filter": {"relations.memberOf": "group:ops/platform"}},
            ["user:ops/bob"],
            id="relation",
        ),
        pytest.param(
            {"filter": {"spec.memberOf": "team-b"}}, ["user:default/alice.smith"], id="list-field"
        ),
        pytest.param(
            {"annotations": {"google.com/email": "jane@acme.org"}},
            ["user:default/jane"],
            id="annotation",
        ),
        pytest.param(
            {"annotations": {"microsoft.com/email": "jane.doe@acme.org"}},
            ["user:default/jane"],
            id="annotation-any-case",
        ),
        pytest.param(
            {
                "annotations": {"okta.com/email": "carl@acme.org"},
                "filter": {"metadata.name": "jane"},
            },
            [],
            id="annotation-and-filter-all-must-match",
        ),
        pytest.param(
            {"filter": {"metadata.annotations.google.com/user-id": "123456789"}},
            ["user:default/jane"],
            id="annotation-as-filter",
        ),
    ],
)
def test_find_users(catalog, query, expected):
    assert refs(catalog.find_users(**query)) == expected


def test_find_users_without_criteria_lists_every_user(catalog):
    assert len(catalog.find_users()) == 7


# -- from_config ----------------------------------------------------------------------------


def test_from_config_resolves_targets_next_to_the_config_file():
    config = load_config(os.path.join(CATALOG_DIR, "app-config.yaml"))
    catalog = YamlCatalog.from_config(config)
    assert catalog.get_entity_by_ref("user:default/jane") is not None
    assert catalog.get_entity_by_ref("group:ops/platform") is not None


def test_from_config_base_dir_wins(tmp_path):
    (tmp_path / "people.yaml").write_text(USER.format(name="zed", extra=""))
    config = Config.from_dict(
        {"catalog": {"locations": [{"type": "file", "target": "people.yaml"}]}}
    )
    catalog = YamlCatalog.from_config(config, base_dir=tmp_path)
    assert catalog.get_entity_by_ref("user:default/zed") is not None


def test_from_config_without_locations_is_empty():
    catalog = YamlCatalog.from_config(Config.from_dict({}))
    assert catalog.entities == []
    assert catalog.find_users() == []


@pytest.mark.parametrize(
    ("location", "message"),
    [
        pytest.param(
            {"type": "url", "target": "https://x/y.yaml"},
            "catalog.locations[0].type: only 'file'",
            id="url",
        ),
        pytest.param({"type": "file"}, "catalog.locations[0].target: missing", id="no-target"),
        pytest.param(
            {"type": "file", "target": "nope.yaml"},
            "nope.yaml: cannot read catalog file",
            id="missing-file",
        ),
    ],
)
def test_from_config_errors(tmp_path, location, message):
    config = Config.from_dict({"catalog": {"locations": [location]}})
    with pytest.raises(ConfigError) as info:
        YamlCatalog.from_config(config, base_dir=tmp_path)
    assert message in str(info.value)


def test_glob_targets(tmp_path):
    (tmp_path / "a.yaml").write_text(USER.format(name="ann", extra=""))
    (tmp_path / "b.yaml").write_text(USER.format(name="ben", extra=""))
    (tmp_path / "c.txt").write_text("not: [yaml")
    catalog = YamlCatalog([tmp_path / "*.yaml"])
    assert [e["metadata"]["name"] for e in catalog.find_users()] == ["ann", "ben"]


# -- malformed files ------------------------------------------------------------------------

USER = """\
apiVersion: backstage.io/v1alpha1
kind: User
metadata:
  name: {name}
spec:
  profile:
    email: {name}@acme.org
{extra}"""


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            USER.format(name="ok", extra="")
            + "---\n"
            + USER.format(name="jane", extra="  memberOf: team-a\n"),
            'catalog.yaml: entity #2 (User "jane"): '
            "spec.memberOf must be a list of strings, got a string",
            id="memberOf-not-a-list",
        ),
        pytest.param(
            "kind: User\nmetadata: {}\n",
            "entity #1 (User): metadata.name must be 1-63 letters",
            id="no-name",
        ),
        pytest.param(
            "metadata: {name: jane}\n",
            'entity #1 ("jane"): kind must be a non-empty string, got null',
            id="no-kind",
        ),
        pytest.param(
            "- just\n- a list\n", "entity #1: must be an object, got a list", id="not-an-object"
        ),
        pytest.param(
            "kind: User\nmetadata: {name: [jane\n",
            "catalog.yaml: invalid YAML at line",
            id="broken-yaml",
        ),
        pytest.param(
            USER.format(name="jane", extra="") + "---\n" + USER.format(name="Jane", extra=""),
            'entity #2 (User "Jane"): duplicate entity user:default/jane (first defined in',
            id="duplicate",
        ),
    ],
)
def test_malformed_files_fail_naming_file_and_entity(tmp_path, text, message):
    """Each field's own message is tested in ``test_entities.py``; here, how files report it."""
    path = tmp_path / "catalog.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        YamlCatalog([path])
    assert message in str(info.value)
    assert str(info.value).startswith(str(path))


def test_empty_documents_and_files_are_fine(tmp_path):
    (tmp_path / "empty.yaml").write_text("")
    (tmp_path / "docs.yaml").write_text("---\n" + USER.format(name="jane", extra="") + "---\n")
    catalog = YamlCatalog([tmp_path / "empty.yaml", tmp_path / "docs.yaml"])
    assert refs(catalog.find_users()) == ["user:default/jane"]


# -- reloading ------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def rewrite(path, text, *, later_by=10):
    """Write ``text`` and move the mtime forward, so the change shows on any filesystem."""
    stat = os.stat(path)
    path.write_text(text)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + later_by * 1_000_000_000))


@pytest.fixture
def live(tmp_path):
    path = tmp_path / "users.yaml"
    path.write_text(USER.format(name="jane", extra=""))
    clock = Clock()
    return path, clock, YamlCatalog([path], clock=clock)


def test_reload_on_change_after_the_check_interval(live):
    path, clock, catalog = live
    rewrite(path, USER.format(name="jane", extra="  memberOf: [team-a]\n"))
    clock.now += 0.5
    assert relations(catalog.get_entity_by_ref("user:default/jane"), "memberOf") == []
    clock.now += 0.6
    assert relations(catalog.get_entity_by_ref("user:default/jane"), "memberOf") == [
        "group:default/team-a"
    ]


def test_no_reload_without_change(live, monkeypatch):
    path, clock, catalog = live
    before = catalog._index
    clock.now += 5
    catalog.find_users()
    assert catalog._index is before
    assert catalog.reload() is False


def test_reload_adds_and_removes_users(live):
    path, clock, catalog = live
    rewrite(path, USER.format(name="max", extra=""))
    clock.now += 2
    assert catalog.get_entity_by_ref("user:default/jane") is None
    assert refs(catalog.find_users(filter={"spec.profile.email": "max@acme.org"})) == [
        "user:default/max"
    ]


def test_broken_reload_keeps_the_last_good_catalog(live, caplog):
    path, clock, catalog = live
    rewrite(path, USER.format(name="jane", extra="  memberOf: team-a\n"))
    clock.now += 2
    with caplog.at_level(logging.ERROR, logger="wsgiauth.catalog.yaml_catalog"):
        assert catalog.get_entity_by_ref("user:default/jane") is not None
        clock.now += 2
        assert catalog.find_users(filter={"metadata.name": "jane"})
    assert catalog.last_error is not None
    assert 'entity #1 (User "jane"): spec.memberOf must be a list of strings' in catalog.last_error
    # Logged once, not at every check while the file stays broken.
    assert len(caplog.records) == 1
    assert "keeping the last good catalog" in caplog.records[0].getMessage()

    rewrite(path, USER.format(name="jane", extra="  memberOf: [team-c]\n"), later_by=20)
    clock.now += 2
    assert relations(catalog.get_entity_by_ref("user:default/jane"), "memberOf") == [
        "group:default/team-c"
    ]
    assert catalog.last_error is None


def test_broken_yaml_on_reload_keeps_serving(live, caplog):
    path, clock, catalog = live
    rewrite(path, "kind: User\nmetadata: {name: [\n")
    clock.now += 2
    with caplog.at_level(logging.ERROR):
        assert catalog.get_entity_by_ref("user:default/jane") is not None
    assert "invalid YAML" in catalog.last_error


def test_deleted_file_keeps_serving(live):
    path, clock, catalog = live
    path.unlink()
    clock.now += 2
    assert catalog.get_entity_by_ref("user:default/jane") is not None
    assert "cannot read catalog file" in catalog.last_error


def test_new_file_matching_a_glob_is_picked_up(tmp_path):
    (tmp_path / "a.yaml").write_text(USER.format(name="ann", extra=""))
    clock = Clock()
    catalog = YamlCatalog([tmp_path / "*.yaml"], clock=clock)
    (tmp_path / "b.yaml").write_text(USER.format(name="ben", extra=""))
    clock.now += 2
    assert refs(catalog.find_users()) == ["user:default/ann", "user:default/ben"]


def test_explicit_reload_ignores_the_interval(live):
    path, clock, catalog = live
    rewrite(path, USER.format(name="max", extra=""))
    assert catalog.reload() is True
    assert catalog.get_entity_by_ref("user:default/max") is not None


def test_malformed_file_at_startup_is_a_config_error_with_source(tmp_path):
    path = tmp_path / "catalog.yaml"
    path.write_text(
        textwrap.dedent("""\
        kind: User
        metadata: {name: jane}
        spec: {memberOf: x}
    """)
    )
    with pytest.raises(ConfigError) as info:
        YamlCatalog([path])
    assert info.value.source == str(path)
