"""The embedded catalog: Backstage User and Group entities read from YAML files.

Backstage keeps its users in a catalog service; a small deployment of
wsgiauth keeps them in the same YAML that Backstage reads (``kind: User`` /
``kind: Group`` documents separated by ``---``), named under
``catalog.locations`` in app-config. Each entity is checked, and its
``memberOf``/``childOf``/... relations computed, by
:mod:`wsgiauth.catalog.entities`; this module reads the files, rejects an
entity defined twice, and builds the indexes that lookups by ref, email,
annotation or any field go through, once per load.

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
from typing import TYPE_CHECKING
from typing import Any

import yaml

from ..errors import ConfigError
from ..errors import InputError
from .entities import EntityError
from .entities import ParsedEntity
from .entities import compute_relations
from .entities import describe
from .entities import parse_entity
from .refs import normal_entity_ref
from .refs import parse_entity_ref
from .types import Entity

if TYPE_CHECKING:
    from ..config import Config

__all__ = ["YamlCatalog"]

log = logging.getLogger(__name__)

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_GLOB = re.compile(r"[*?\[]")


def _syntax_error(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        return f"invalid YAML at line {exc.problem_mark.line + 1}: {exc.problem}"
    return f"invalid YAML: {exc}"


@dataclass(frozen=True, slots=True)
class _Found:
    """A parsed entity and where it was read, for duplicate-entity messages."""

    parsed: ParsedEntity
    #: ``entity #3 (User "jane")``.
    label: str
    path: str


def _read_file(path: str) -> list[_Found]:
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
        label = f"entity #{number}{describe(doc)}"
        try:
            parsed = parse_entity(doc)
        except EntityError as exc:
            raise ConfigError(f"{label}: {exc}", source=path) from None
        if parsed is not None:
            out.append(_Found(parsed=parsed, label=label, path=path))
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
    found: dict[str, _Found] = {}
    for path in files:
        for item in _read_file(path):
            first = found.get(item.parsed.ref)
            if first is not None:
                raise ConfigError(
                    f"{item.label}: duplicate entity {item.parsed.ref} "
                    f"(first defined in {first.path}: {first.label})",
                    source=path,
                )
            found[item.parsed.ref] = item
    relations = compute_relations(item.parsed for item in found.values())
    by_ref = {}
    search: dict[tuple[str, str], list[str]] = {}
    users = []
    for ref, item in found.items():
        entity = item.parsed.entity
        entity["relations"] = relations[ref]
        by_ref[ref] = entity
        if item.parsed.kind == "User":
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
        #: When the catalog now serving was read (epoch seconds), for the diagnostics page.
        self.loaded_at = time.time()

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
            key = normal_entity_ref(ref) if isinstance(ref, str) else str(parse_entity_ref(ref))
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
        self.loaded_at = time.time()
        log.info("catalog reloaded: %d users, %d entities", len(index.users), len(index.by_ref))
        return True
