"""Backstage User and Group entities: validation, and the relations between them.

The catalog keeps only ``kind: User`` and ``kind: Group``. Each document is
checked the way Backstage's validators check it (name and namespace syntax,
string annotations, the shape of ``spec``) so that a mistake is reported with
the field at fault, not found later as a user who cannot sign in. Relations
are then computed as Backstage's processors compute them: ``memberOf`` /
``hasMember`` from user ``spec.memberOf`` and group ``spec.members``, and
``childOf`` / ``parentOf`` from group ``spec.parent`` and ``spec.children``.

Pure functions over entity dicts: reading files, reloading and indexing are
:mod:`wsgiauth.catalog.yaml_catalog`'s job.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import InputError
from ..errors import kind_of
from .refs import DEFAULT_NAMESPACE
from .refs import parse_entity_ref
from .refs import stringify_entity_ref

__all__ = ["EntityError", "ParsedEntity", "compute_relations", "describe", "parse_entity"]

#: Backstage's ``isValidObjectName`` and (case-tolerant) ``isValidNamespace``.
_NAME = re.compile(r"[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?")
_NAMESPACE = re.compile(r"[A-Za-z0-9]+(?:-+[A-Za-z0-9]+)*")
_KINDS = {"user": "User", "group": "Group"}

#: Each relation and the one the other side gets (Backstage's relation pairs).
_INVERSE = {
    "memberOf": "hasMember",
    "hasMember": "memberOf",
    "childOf": "parentOf",
    "parentOf": "childOf",
}


class EntityError(Exception):
    """A problem with one field of one entity; the caller names the file and entity."""


@dataclass(frozen=True, slots=True)
class ParsedEntity:
    """One valid entity and the refs its spec names, before relations are computed."""

    ref: str
    #: ``User`` or ``Group``, spelled so whatever case the document used.
    kind: str
    namespace: str
    #: A deep copy of the document, with ``metadata.namespace`` filled in.
    entity: dict[str, Any]
    #: (relation type on this entity, target ref) pairs from its own spec.
    links: tuple[tuple[str, str], ...] = ()


def _mapping(parent: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    value = parent.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise EntityError(f"{where} must be an object, got {kind_of(value)}")
    return value


def _text(parent: Mapping[str, Any], key: str, where: str) -> str | None:
    value = parent.get(key)
    if value is not None and (not isinstance(value, str) or not value):
        raise EntityError(f"{where} must be a non-empty string, got {kind_of(value)}")
    return value


def _text_list(parent: Mapping[str, Any], key: str, where: str) -> list[str]:
    value = parent.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise EntityError(f"{where} must be a list of strings, got {kind_of(value)}")
    for index, item in enumerate(value):
        if not isinstance(item, str) or not item:
            raise EntityError(f"{where}[{index}] must be a non-empty string, got {kind_of(item)}")
    return value


def _ref(target: str, *, kind: str, namespace: str, where: str) -> str:
    try:
        return stringify_entity_ref(
            parse_entity_ref(target, default_kind=kind, default_namespace=namespace)
        )
    except InputError as exc:
        raise EntityError(f"{where}: {exc}") from None


def _links(kind: str, spec: Mapping[str, Any], namespace: str) -> list[tuple[str, str]]:
    """Check the ``spec`` of a User or Group; the relations it declares."""
    links: list[tuple[str, str]] = []
    if kind == "User":
        profile = _mapping(spec, "profile", "spec.profile")
        for key in ("email", "displayName", "picture"):
            _text(profile, key, f"spec.profile.{key}")
        for index, group in enumerate(_text_list(spec, "memberOf", "spec.memberOf")):
            target = _ref(group, kind="Group", namespace=namespace, where=f"spec.memberOf[{index}]")
            links.append(("memberOf", target))
        return links
    _text(spec, "type", "spec.type")
    parent = _text(spec, "parent", "spec.parent")
    if parent:
        links.append(
            ("childOf", _ref(parent, kind="Group", namespace=namespace, where="spec.parent"))
        )
    for index, child in enumerate(_text_list(spec, "children", "spec.children")):
        target = _ref(child, kind="Group", namespace=namespace, where=f"spec.children[{index}]")
        links.append(("parentOf", target))
    for index, member in enumerate(_text_list(spec, "members", "spec.members")):
        target = _ref(member, kind="User", namespace=namespace, where=f"spec.members[{index}]")
        links.append(("hasMember", target))
    return links


def parse_entity(doc: Any) -> ParsedEntity | None:
    """Check one document; None for kinds the catalog does not keep (not an error).

    :raises EntityError: the document is not an object, or a field of a User or
        Group is malformed; the message names the field.
    """
    if not isinstance(doc, Mapping):
        raise EntityError(f"must be an object, got {kind_of(doc)}")
    kind = doc.get("kind")
    if not isinstance(kind, str) or not kind:
        raise EntityError(f"kind must be a non-empty string, got {kind_of(kind)}")
    if kind.lower() not in _KINDS:
        return None
    metadata = _mapping(doc, "metadata", "metadata")
    name = metadata.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name) or len(name) > 63:
        shown = f"{name!r}" if isinstance(name, str) else kind_of(name)
        raise EntityError(
            f"metadata.name must be 1-63 letters, digits and [-_.], "
            f"starting and ending with a letter or digit, got {shown}"
        )
    namespace = _text(metadata, "namespace", "metadata.namespace") or DEFAULT_NAMESPACE
    if not _NAMESPACE.fullmatch(namespace) or len(namespace) > 63:
        raise EntityError(f"metadata.namespace must be a DNS label, got {namespace!r}")
    for key, value in _mapping(metadata, "annotations", "metadata.annotations").items():
        if not isinstance(value, str):
            raise EntityError(
                f"metadata.annotations[{key!r}] must be a string, got {kind_of(value)}"
                " (quote numbers and dates)"
            )
    spec = _mapping(doc, "spec", "spec")
    entity = copy.deepcopy(dict(doc))
    entity["metadata"] = {**(entity.get("metadata") or {}), "namespace": namespace}
    ref = stringify_entity_ref(entity)
    kind = _KINDS[kind.lower()]
    links = _links(kind, spec, namespace)
    return ParsedEntity(ref=ref, kind=kind, namespace=namespace, entity=entity, links=tuple(links))


def describe(doc: Any) -> str:
    """``(User "jane")`` for an error message, as much as the document tells."""
    if not isinstance(doc, Mapping):
        return ""
    kind = doc.get("kind") if isinstance(doc.get("kind"), str) else None
    metadata = doc.get("metadata")
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    name = name if isinstance(name, str) else None
    parts = [part for part in (kind, f'"{name}"' if name else None) if part]
    return f" ({' '.join(parts)})" if parts else ""


def compute_relations(parsed: Iterable[ParsedEntity]) -> dict[str, list[dict[str, str]]]:
    """Each entity's ``relations``, by ref: its own links and the inverse of others'.

    Refs in ``parsed`` must be unique. A link to an entity not in ``parsed``
    stays on the entity that declares it (as in Backstage) but gives the
    missing side nothing. Order: declaration order, each relation once.
    """
    items = list(parsed)
    relations: dict[str, dict[tuple[str, str], None]] = {item.ref: {} for item in items}
    for item in items:
        for relation, target in item.links:
            relations[item.ref][(relation, target)] = None
            if target in relations:
                relations[target][(_INVERSE[relation], item.ref)] = None
    return {
        ref: [{"type": relation, "targetRef": target} for relation, target in pairs]
        for ref, pairs in relations.items()
    }
