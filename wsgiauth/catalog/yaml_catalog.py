"""The embedded catalog: Backstage User and Group entities read from YAML files.

Backstage keeps its users in a catalog service; a small deployment of
wsgiauth keeps them in the same YAML that Backstage reads (``kind: User`` /
``kind: Group`` documents separated by ``---``), named under
``catalog.locations`` in app-config. The catalog computes what Backstage's
processors compute for sign-in: ``memberOf`` relations from user
``spec.memberOf`` and group ``spec.members``, and ``childOf``/``parentOf``
between groups. Lookups by ref, email, annotation or any field go through
indexes built once per load.

The files are re-read when they change, without a restart: a lookup checks
their modification times at most once per ``check_interval`` (no background
thread) and swaps the whole index in one assignment, so a request sees either
the old catalog or the new one. A broken file is a :class:`ConfigError` at
startup; on a reload it is logged and the last good catalog keeps serving.
"""

from __future__ import annotations

import copy
import glob
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from typing import TYPE_CHECKING
from typing import Any

import yaml

from ..errors import ConfigError
from ..errors import InputError
from .refs import DEFAULT_NAMESPACE
from .refs import parse_entity_ref
from .refs import stringify_entity_ref
from .types import Entity

if TYPE_CHECKING:
    from ..config import Config

__all__ = ["YamlCatalog"]

log = logging.getLogger(__name__)

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
#: Backstage's ``isValidObjectName`` and (case-tolerant) ``isValidNamespace``.
_NAME = re.compile(r"[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?")
_NAMESPACE = re.compile(r"[A-Za-z0-9]+(?:-+[A-Za-z0-9]+)*")
_GLOB = re.compile(r"[*?\[]")
_KINDS = {"user": "User", "group": "Group"}


class _EntityError(Exception):
    """A problem with one field of one entity; becomes a message naming file and entity."""


def _kind_of(value: object) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string"}.get(
        type(value), "a list" if isinstance(value, list) else "an object"
    )


def _mapping(parent: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    value = parent.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _EntityError(f"{where} must be an object, got {_kind_of(value)}")
    return value


def _text(parent: Mapping[str, Any], key: str, where: str) -> str | None:
    value = parent.get(key)
    if value is not None and (not isinstance(value, str) or not value):
        raise _EntityError(f"{where} must be a non-empty string, got {_kind_of(value)}")
    return value


def _text_list(parent: Mapping[str, Any], key: str, where: str) -> list[str]:
    value = parent.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise _EntityError(f"{where} must be a list of strings, got {_kind_of(value)}")
    for index, item in enumerate(value):
        if not isinstance(item, str) or not item:
            raise _EntityError(f"{where}[{index}] must be a non-empty string, got {_kind_of(item)}")
    return value


def _ref(target: str, *, kind: str, namespace: str, where: str) -> str:
    try:
        return stringify_entity_ref(
            parse_entity_ref(target, default_kind=kind, default_namespace=namespace)
        )
    except InputError as exc:
        raise _EntityError(f"{where}: {exc}") from None


@dataclass(slots=True)
class _Parsed:
    """One valid entity and the refs its spec names, before relations are computed."""

    ref: str
    kind: str
    namespace: str
    entity: dict[str, Any]
    #: ``entity #3 (User "jane")``, for messages.
    label: str = ""
    path: str = ""
    #: (relation type on this entity, target ref) pairs from its own spec.
    links: list[tuple[str, str]] = field(default_factory=list)


def _parse_entity(doc: Any) -> _Parsed | None:
    """Check one document; None for kinds the catalog does not keep (not an error)."""
    if not isinstance(doc, Mapping):
        raise _EntityError(f"must be an object, got {_kind_of(doc)}")
    kind = doc.get("kind")
    if not isinstance(kind, str) or not kind:
        raise _EntityError(f"kind must be a non-empty string, got {_kind_of(kind)}")
    if kind.lower() not in _KINDS:
        return None
    metadata = _mapping(doc, "metadata", "metadata")
    name = metadata.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name) or len(name) > 63:
        shown = f"{name!r}" if isinstance(name, str) else _kind_of(name)
        raise _EntityError(
            f"metadata.name must be 1-63 letters, digits and [-_.], "
            f"starting and ending with a letter or digit, got {shown}"
        )
    namespace = _text(metadata, "namespace", "metadata.namespace") or DEFAULT_NAMESPACE
    if not _NAMESPACE.fullmatch(namespace) or len(namespace) > 63:
        raise _EntityError(f"metadata.namespace must be a DNS label, got {namespace!r}")
    for key, value in _mapping(metadata, "annotations", "metadata.annotations").items():
        if not isinstance(value, str):
            raise _EntityError(
                f"metadata.annotations[{key!r}] must be a string, got {_kind_of(value)}"
                " (quote numbers and dates)"
            )
    spec = _mapping(doc, "spec", "spec")
    entity = copy.deepcopy(dict(doc))
    entity["metadata"] = {**(entity.get("metadata") or {}), "namespace": namespace}
    ref = stringify_entity_ref(entity)
    parsed = _Parsed(ref=ref, kind=_KINDS[kind.lower()], namespace=namespace, entity=entity)
    if parsed.kind == "User":
        profile = _mapping(spec, "profile", "spec.profile")
        for key in ("email", "displayName", "picture"):
            _text(profile, key, f"spec.profile.{key}")
        for index, group in enumerate(_text_list(spec, "memberOf", "spec.memberOf")):
            target = _ref(group, kind="Group", namespace=namespace, where=f"spec.memberOf[{index}]")
            parsed.links.append(("memberOf", target))
    else:
        _text(spec, "type", "spec.type")
        parent = _text(spec, "parent", "spec.parent")
        if parent:
            parsed.links.append(
                ("childOf", _ref(parent, kind="Group", namespace=namespace, where="spec.parent"))
            )
        for index, child in enumerate(_text_list(spec, "children", "spec.children")):
            target = _ref(child, kind="Group", namespace=namespace, where=f"spec.children[{index}]")
            parsed.links.append(("parentOf", target))
        for index, member in enumerate(_text_list(spec, "members", "spec.members")):
            target = _ref(member, kind="User", namespace=namespace, where=f"spec.members[{index}]")
            parsed.links.append(("hasMember", target))
    return parsed


#: Each relation and the one the other side gets (Backstage's relation pairs).
_INVERSE = {
    "memberOf": "hasMember",
    "hasMember": "memberOf",
    "childOf": "parentOf",
    "parentOf": "childOf",
}


def _describe(doc: Any) -> str:
    """``(User "jane")`` for an error message, as much as the document tells."""
    if not isinstance(doc, Mapping):
        return ""
    kind = doc.get("kind") if isinstance(doc.get("kind"), str) else None
    metadata = doc.get("metadata")
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    name = name if isinstance(name, str) else None
    parts = [part for part in (kind, f'"{name}"' if name else None) if part]
    return f" ({' '.join(parts)})" if parts else ""


def _syntax_error(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        return f"invalid YAML at line {exc.problem_mark.line + 1}: {exc.problem}"
    return f"invalid YAML: {exc}"


def _read_file(path: str) -> list[_Parsed]:
    """The User and Group entities of one file; ``ConfigError`` naming file and entity."""
    try:
        with open(path, encoding="utf-8") as fh:
            docs = list(yaml.load_all(fh, Loader=_Loader))  # noqa: S506 - a safe loader
    except OSError as exc:
        raise ConfigError(f"cannot read catalog file: {exc.strerror}", source=path) from None
    except yaml.YAMLError as exc:
        raise ConfigError(_syntax_error(exc), source=path) from None
    out = []
    for number, doc in enumerate(docs, start=1):
        if doc is None:
            continue
        try:
            parsed = _parse_entity(doc)
        except _EntityError as exc:
            raise ConfigError(f"entity #{number}{_describe(doc)}: {exc}", source=path) from None
        if parsed is not None:
            parsed.label, parsed.path = f"entity #{number}{_describe(doc)}", path
            out.append(parsed)
    return out


def _search_pairs(entity: Mapping[str, Any]) -> set[tuple[str, str]]:
    """Lowercased ``(dotted.key, value)`` pairs, as Backstage's ``buildEntitySearch`` makes them."""
    pairs: set[tuple[str, str]] = set()

    def walk(value: Any, path: str) -> None:
        if value is None:
            return
        if isinstance(value, bool):
            pairs.add((path, "true" if value else "false"))
        elif isinstance(value, str | int | float):
            pairs.add((path, str(value).lower()))
        elif isinstance(value, list):
            for item in value:
                walk(item, path)
        elif isinstance(value, Mapping):
            for key, item in value.items():
                walk(item, f"{path}.{str(key).lower()}" if path else str(key).lower())

    walk({key: value for key, value in entity.items() if key != "relations"}, "")
    for relation in entity.get("relations", ()):
        pairs.add((f"relations.{relation['type'].lower()}", relation["targetRef"]))
    return pairs


@dataclass(frozen=True, slots=True)
class _Index:
    """One loaded catalog; replaced whole on reload, never changed in place."""

    by_ref: dict[str, dict[str, Any]]
    #: Users only: ``(dotted.key, value)`` → user refs, in file order.
    search: dict[tuple[str, str], list[str]]
    users: list[str]


def _build(files: Iterable[str]) -> _Index:
    parsed: dict[str, _Parsed] = {}
    for path in files:
        for item in _read_file(path):
            first = parsed.get(item.ref)
            if first is not None:
                raise ConfigError(
                    f"{item.label}: duplicate entity {item.ref} "
                    f"(first defined in {first.path}: {first.label})",
                    source=path,
                )
            parsed[item.ref] = item
    relations: dict[str, dict[tuple[str, str], None]] = {ref: {} for ref in parsed}
    for item in parsed.values():
        for relation, target in item.links:
            relations[item.ref][(relation, target)] = None
            if target in relations:
                relations[target][(_INVERSE[relation], item.ref)] = None
    by_ref = {}
    search: dict[tuple[str, str], list[str]] = {}
    users = []
    for ref, item in parsed.items():
        entity = item.entity
        entity["relations"] = [{"type": t, "targetRef": target} for t, target in relations[ref]]
        by_ref[ref] = entity
        if item.kind == "User":
            users.append(ref)
            for pair in _search_pairs(entity):
                search.setdefault(pair, []).append(ref)
    return _Index(by_ref=by_ref, search=search, users=users)


class YamlCatalog:
    """A :class:`~wsgiauth.catalog.types.Catalog` over Backstage entity YAML files.

    :param paths: files, or glob patterns (``teams/*.yaml``), of ``---``-separated entities.
    :param check_interval: the least time, in seconds, between two checks for changed files.
    :param clock: a monotonic clock (tests pass a fake one).
    :raises ConfigError: a file is missing, not YAML, or holds a malformed User or Group.
    """

    def __init__(
        self,
        paths: Sequence[str | os.PathLike[str]],
        *,
        check_interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._patterns = [os.fspath(path) for path in paths]
        self._check_interval = check_interval
        self._clock = clock
        self._lock = threading.Lock()
        files = self._files()
        signature = self._signature(files)
        self._index = _build(files)
        self._signature_loaded = signature
        self._signature_failed: tuple[tuple[str, int, int], ...] | None = None
        self._next_check = clock() + check_interval
        #: The message of the last failed reload, or None once a reload succeeds.
        self.last_error: str | None = None

    @classmethod
    def from_config(
        cls, config: Config, *, base_dir: str | os.PathLike[str] | None = None, **kwargs: Any
    ) -> YamlCatalog:
        """The catalog named by ``catalog.locations`` of the root ``config``.

        Each location is ``{type: file, target: ./users.yaml}``; a relative target is
        taken from ``base_dir``, else from the directory of the config file that names
        it. No ``catalog.locations`` gives an empty catalog.
        """
        paths = []
        for location in config.get_optional_config_list("catalog.locations") or []:
            kind = location.get_string("type")
            if kind != "file":
                raise location.error("type", f"only 'file' locations are supported, got {kind!r}")
            target = location.get_string("target")
            base = os.fspath(base_dir) if base_dir is not None else None
            if base is None:
                source = location.error("target", "").source
                base = os.path.dirname(os.path.abspath(source)) if os.path.isfile(source) else "."
            paths.append(os.path.normpath(os.path.join(base, target)))
        return cls(paths, **kwargs)

    # -- lookups ----------------------------------------------------------------------

    def get_entity_by_ref(self, ref: str) -> Entity | None:
        """The User or Group named by ``ref`` (any case), as a copy; None if unknown."""
        self._maybe_reload()
        try:
            key = stringify_entity_ref(parse_entity_ref(ref))
        except InputError:
            return None
        entity = self._index.by_ref.get(key)
        return copy.deepcopy(entity) if entity is not None else None

    def find_users(
        self,
        *,
        annotations: Mapping[str, str] | None = None,
        filter: Mapping[str, str | list[str]] | None = None,
    ) -> list[Entity]:
        """Users matching every annotation and filter entry, case-insensitively (copies)."""
        self._maybe_reload()
        index = self._index
        criteria: list[tuple[str, list[str]]] = [
            (f"metadata.annotations.{key}", [value]) for key, value in (annotations or {}).items()
        ]
        for key, value in (filter or {}).items():
            criteria.append((key, value if isinstance(value, list) else [value]))
        found: list[str] | None = None
        for key, values in criteria:
            refs = {
                ref: None
                for value in values
                for ref in index.search.get((key.lower(), str(value).lower()), ())
            }
            found = list(refs) if found is None else [ref for ref in found if ref in refs]
        refs_found = index.users if found is None else found
        return [copy.deepcopy(index.by_ref[ref]) for ref in refs_found]

    @property
    def entities(self) -> list[Entity]:
        """Every User and Group, with computed relations (copies)."""
        self._maybe_reload()
        return [copy.deepcopy(entity) for entity in self._index.by_ref.values()]

    # -- reloading --------------------------------------------------------------------

    def _files(self) -> list[str]:
        files: list[str] = []
        for pattern in self._patterns:
            if _GLOB.search(pattern):
                files.extend(sorted(glob.glob(pattern, recursive=True)))
            else:
                files.append(pattern)
        return list(dict.fromkeys(files))

    @staticmethod
    def _signature(files: Sequence[str]) -> tuple[tuple[str, int, int], ...]:
        out = []
        for path in files:
            try:
                stat = os.stat(path)
            except OSError as exc:
                message = f"cannot read catalog file: {exc.strerror}"
                raise ConfigError(message, source=path) from None
            out.append((path, stat.st_mtime_ns, stat.st_size))
        return tuple(out)

    def _maybe_reload(self) -> None:
        if self._clock() < self._next_check:
            return
        # One thread checks; the others go on with the current index instead of waiting.
        if not self._lock.acquire(blocking=False):
            return
        try:
            if self._clock() >= self._next_check:
                self._reload_locked()
                self._next_check = self._clock() + self._check_interval
        finally:
            self._lock.release()

    def reload(self) -> bool:
        """Re-read the files now if any changed; True if a new catalog is serving.

        Never raises for a bad file: the error is logged, kept in :attr:`last_error`,
        and the last good catalog stays.
        """
        with self._lock:
            return self._reload_locked()

    def _reload_locked(self) -> bool:
        signature = None
        try:
            files = self._files()
            signature = self._signature(files)
            if signature in (self._signature_loaded, self._signature_failed):
                return False
            index = _build(files)
        except ConfigError as exc:
            # Log each new failure once, not at every check while the file stays broken.
            if str(exc) != self.last_error or signature != self._signature_failed:
                log.error("catalog reload failed, keeping the last good catalog: %s", exc)
            self._signature_failed = signature
            self.last_error = str(exc)
            return False
        self._index = index
        self._signature_loaded = signature
        self._signature_failed = None
        self.last_error = None
        log.info("catalog reloaded: %d users, %d entities", len(index.users), len(index.by_ref))
        return True
