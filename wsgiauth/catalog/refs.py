"""Entity references, ``kind:namespace/name``, as ``@backstage/catalog-model`` handles them.

Identity tokens name users by ref (``sub``) and carry refs of what they own
(``ent``), and Backstage compares refs as lowercase strings. Parsing keeps
the case it was given (as ``parseEntityRef`` does); :func:`stringify_entity_ref`
lowercases all three parts (``toLocaleLowerCase('en-US')``), so two spellings
of one user end up with the same ``sub``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from ..errors import InputError

__all__ = [
    "DEFAULT_NAMESPACE",
    "EntityRef",
    "is_entity_ref",
    "normal_entity_ref",
    "parse_entity_ref",
    "stringify_entity_ref",
]

#: The namespace of a ref or entity that names none.
DEFAULT_NAMESPACE = "default"


@dataclass(frozen=True, slots=True)
class EntityRef:
    """The three parts of an entity reference, in the case they were written."""

    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return stringify_entity_ref(self)


def _parse_string(ref: str) -> tuple[str | None, str | None, str]:
    """``[<kind>:][<namespace>/]<name>``, split as Backstage's ``parseRefString`` does."""
    colon = ref.find(":")
    slash = ref.find("/")
    # A slash before the first colon means the colon belongs to the name, not a kind.
    if slash != -1 and slash < colon:
        colon = -1
    kind = None if colon == -1 else ref[:colon]
    namespace = None if slash == -1 else ref[colon + 1 : slash]
    name = ref[max(colon + 1, slash + 1) :]
    if kind == "" or namespace == "" or name == "":
        raise InputError(
            f'Entity reference "{ref}" was not on the form [<kind>:][<namespace>/]<name>'
        )
    return kind, namespace, name


def is_entity_ref(ref: str) -> bool:
    """Whether ``ref`` parses as Backstage's ``parseEntityRef`` does without defaults.

    The form is ``kind:[namespace/]name``: a kind is required, and no part may be empty.
    """
    try:
        kind, _, _ = _parse_string(ref)
    except InputError:
        return False
    return kind is not None


def _optional_text(ref: Mapping[str, Any], key: str) -> str | None:
    value = ref.get(key)
    if value is None or isinstance(value, str):
        return value
    raise InputError(f"Entity reference {key} must be a string, got {type(value).__name__}")


def parse_entity_ref(
    ref: str | Mapping[str, Any] | EntityRef,
    *,
    default_kind: str | None = None,
    default_namespace: str = DEFAULT_NAMESPACE,
) -> EntityRef:
    """Split a ref string, or complete a ``{kind?, namespace?, name}`` mapping, with defaults.

    :raises InputError: the ref is empty, malformed, or lacks a kind and no default is given.
    """
    if isinstance(ref, EntityRef):
        return ref
    if not ref:
        raise InputError("Entity reference must not be empty")
    if isinstance(ref, str):
        kind, namespace, name = _parse_string(ref)
    elif isinstance(ref, Mapping):
        kind, namespace = _optional_text(ref, "kind"), _optional_text(ref, "namespace")
        name = _optional_text(ref, "name") or ""
    else:
        raise InputError(
            f"Entity reference must be a string or an object, got {type(ref).__name__}"
        )
    kind = kind or default_kind
    namespace = namespace or default_namespace
    for part, value in (("kind", kind), ("namespace", namespace), ("name", name)):
        if not value:
            textual = json.dumps(ref) if isinstance(ref, str) else json.dumps(dict(ref))
            hint = ' (e.g. did not start with "component:" or similar)' if part == "kind" else ""
            raise InputError(f"Entity reference {textual} had missing or empty {part}{hint}")
    return EntityRef(kind=kind, namespace=namespace, name=name)  # type: ignore[arg-type]


def stringify_entity_ref(ref: EntityRef | Mapping[str, Any]) -> str:
    """``kind:namespace/name``, all lowercase, from a ref or an entity (``kind`` + ``metadata``).

    A mapping without ``metadata`` is read as ``{kind, namespace?, name}``.
    """
    if isinstance(ref, EntityRef):
        kind, namespace, name = ref.kind, ref.namespace, ref.name
    else:
        metadata = ref.get("metadata")
        source: Mapping[str, Any] = metadata if isinstance(metadata, Mapping) else ref
        kind_value, name_value = ref.get("kind"), source.get("name")
        namespace_value = source.get("namespace") or DEFAULT_NAMESPACE
        if not isinstance(kind_value, str) or not kind_value:
            raise InputError("Entity reference needs a kind")
        if not isinstance(name_value, str) or not name_value:
            raise InputError("Entity reference needs a name")
        if not isinstance(namespace_value, str):
            raise InputError("Entity reference namespace must be a string")
        kind, namespace, name = kind_value, namespace_value, name_value
    return f"{kind.lower()}:{namespace.lower()}/{name.lower()}"


@lru_cache(maxsize=1024)  # the same users sign in again and again; any ref may arrive
def normal_entity_ref(
    ref: str, *, default_kind: str | None = None, default_namespace: str = DEFAULT_NAMESPACE
) -> str:
    """``stringify_entity_ref(parse_entity_ref(ref, ...))`` of a ref string, remembered.

    :raises InputError: as :func:`parse_entity_ref` (a refused ref is not remembered).
    """
    return stringify_entity_ref(
        parse_entity_ref(ref, default_kind=default_kind, default_namespace=default_namespace)
    )
