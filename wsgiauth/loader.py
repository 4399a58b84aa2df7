"""Loading ``app-config.yaml`` files into a :class:`~wsgiauth.config.Config`.

Backstage's loader, file side: YAML 1.2-ish parsing, and several files merged as
Backstage merges them: later files win, mappings merge deeply, lists and scalars
replace, and ``null`` removes a value, while remembering which file each value came
from, so the reader's errors can name it. String values get ``${VAR}`` substitution
(``$${`` escapes a literal ``${``; values are trimmed, and there is no ``${VAR:-x}``
default form), and an object whose only key is ``$env``, ``$file`` or ``$include``
is replaced by what it names, paths being relative to the file that holds them.
The reader (:mod:`wsgiauth.config`) knows nothing of files; ``wsgiauth
check-config`` (:mod:`wsgiauth.check`) collects every problem this module finds.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from collections.abc import Mapping
from typing import Any

import yaml

from .config import Config
from .config import join_key
from .errors import ConfigError
from .errors import kind_of

__all__ = ["load_collecting", "load_config"]

_SUBSTITUTION = re.compile(r"\$?\$\{([^{}]*)\}")
_DIRECTIVES = ("$env", "$file", "$include")


class _Loader(yaml.SafeLoader):
    """YAML 1.2-ish loading, as Backstage's ``yaml`` package does it.

    Dates stay strings, only ``true``/``false`` are booleans (not ``yes``/``on``),
    and a duplicate key is an error instead of silently keeping the last one.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if not tag.endswith((":timestamp", ":bool"))]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _syntax_line(exc: ValueError | yaml.YAMLError) -> int | None:
    if isinstance(exc, json.JSONDecodeError):
        return exc.lineno
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        return exc.problem_mark.line + 1
    return None


def _parse_yaml(text: str) -> tuple[Any, yaml.Node | None]:
    """The data of one YAML document and its node tree, whose marks give each key's line."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        return (None if node is None else loader.construct_document(node)), node
    finally:
        loader.dispose()


def _record_lines(node: yaml.Node, path: str, lines: dict[str, int]) -> None:
    """Note the line (1-based) of every key and list item under ``node``, by dotted key."""
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = join_key(path, str(key_node.value))
            lines[key] = key_node.start_mark.line + 1
            _record_lines(value_node, key, lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            key = join_key(path, index)
            lines[key] = item.start_mark.line + 1
            _record_lines(item, key, lines)


def _syntax_message(exc: ValueError | yaml.YAMLError) -> str:
    """'invalid YAML at line 5: ...' from a PyYAML or json error, with the context's line."""
    if isinstance(exc, json.JSONDecodeError):
        return f"invalid JSON at line {exc.lineno}: {exc.msg}"
    if not isinstance(exc, yaml.MarkedYAMLError) or exc.problem_mark is None:
        return f"invalid YAML: {exc}"
    message = f"invalid YAML at line {exc.problem_mark.line + 1}: {exc.problem}"
    if exc.context and exc.context_mark is not None:
        message += f" ({exc.context} at line {exc.context_mark.line + 1})"
    return message


class _Missing:
    """Stands for a value whose ``${VAR}`` or ``$env`` is unset; an error if it survives merging."""

    __slots__ = ("message",)

    def __init__(self, message: str) -> None:
        self.message = message


class _FileLoader:
    """Reads one top-level file with its includes, recording the file and line of every value.

    Lines come from YAML's node marks; a JSON file's values have none.
    """

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ
        self.sources: dict[str, str] = {}
        self.lines: dict[str, int] = {}
        self.errors: list[ConfigError] = []
        self.stack: list[str] = []

    def load(self, filename: str, path: str = "") -> Any:
        real = os.path.realpath(filename)
        if real in self.stack:
            raise ConfigError("include cycle", path=path, source=filename)
        try:
            with open(filename, encoding="utf-8") as fh:
                text = fh.read()
        except OSError as exc:
            message = f"cannot read file: {exc.strerror}"
            raise ConfigError(message, path=path, source=filename) from None
        try:
            data, node = (
                (json.loads(text), None) if filename.endswith(".json") else _parse_yaml(text)
            )
        except (ValueError, yaml.YAMLError) as exc:
            message, line = _syntax_message(exc), _syntax_line(exc)
            raise ConfigError(message, path=path, source=filename, line=line) from None
        if node is not None:
            # Where the value starts: a key missing at the top is named at the first line.
            self.lines[path] = node.start_mark.line + 1
            _record_lines(node, path, self.lines)
        self.stack.append(real)
        try:
            return self.resolve(data, path, filename)
        finally:
            self.stack.pop()

    def substitute(self, text: str) -> str | _Missing:
        missing: list[str] = []

        def replace(match: re.Match[str]) -> str:
            if match.group(0).startswith("$$"):
                return match.group(0)[1:]
            name = match.group(1).strip()
            if not name or name not in self.environ:
                missing.append(name)
            return self.environ.get(name, "").strip()

        out = _SUBSTITUTION.sub(replace, text)
        if "" in missing:
            return _Missing("${} names no variable (write $${} for a literal ${)")
        if missing:
            return _Missing(f"environment variable {missing[0]} is not set")
        return out

    def resolve(self, value: Any, path: str, source: str) -> Any:
        self.sources[path] = source
        if isinstance(value, str):
            return self.substitute(value)
        if isinstance(value, list):
            return [self.resolve(item, join_key(path, i), source) for i, item in enumerate(value)]
        if not isinstance(value, dict):
            return value
        directives = [key for key in value if isinstance(key, str) and key.startswith("$")]
        if not directives:
            return {
                str(k): self.resolve(v, join_key(path, str(k)), source) for k, v in value.items()
            }
        try:
            return self.directive(value, directives[0], path, source)
        except ConfigError as exc:
            self.errors.append(exc)
            return None

    def directive(self, value: dict[str, Any], key: str, path: str, source: str) -> Any:
        def fail(message: str) -> ConfigError:
            return ConfigError(message, path=path, source=source)

        if key not in _DIRECTIVES:
            raise fail(f"unknown directive {key}; expected one of {', '.join(_DIRECTIVES)}")
        if len(value) != 1:
            raise fail(f"{key} must be the only key in its object")
        arg = self.substitute(value[key]) if isinstance(value[key], str) else None
        if isinstance(arg, _Missing):
            return arg
        if not arg:
            raise fail(f"{key} needs a non-empty string, got {kind_of(value[key])}")
        if key == "$env":
            name = arg.strip()
            return (
                self.environ[name].strip()
                if name in self.environ
                else _Missing(f"environment variable {name} is not set")
            )
        target, _, fragment = arg.partition("#") if key == "$include" else (arg, "", "")
        target = os.path.normpath(os.path.join(os.path.dirname(source), target))
        if key == "$file":
            try:
                with open(target, encoding="utf-8") as fh:
                    text = fh.read()
            except OSError as exc:
                raise fail(f"$file {target}: {exc.strerror}") from None
            return text[:-2] if text.endswith("\r\n") else text.removesuffix("\n")
        if not target.endswith((".yaml", ".yml", ".json")):
            raise fail(f"$include {target}: expected a .yaml, .yml or .json file")
        included = self.load(target, path)
        for part in fragment.split(".") if fragment else ():
            if not isinstance(included, dict):
                raise fail(f"$include {arg}: {part!r} is not inside an object")
            included = included.get(part)
        if fragment:  # the fragment's keys now sit at ``path``
            self.lift(join_key(path, fragment), path)
        return included

    def lift(self, old: str, new: str) -> None:
        for where in (self.sources, self.lines):
            for key in list(_subtree(where, old)):
                where[new + key[len(old) :]] = where[key]  # type: ignore[assignment]


def _subtree(sources: Mapping[str, object], path: str) -> Iterator[str]:
    for key in sources:
        if not path or key == path or key.startswith((f"{path}.", f"{path}[")):
            yield key


_Where = tuple[str, int | None]


def _merge(
    base: Any, over: Any, path: str, sources: dict[str, _Where], new: Mapping[str, _Where]
) -> Any:
    """Deep-merge ``over`` into ``base``; ``sources`` (file, line) follows the file that wins."""
    if isinstance(base, dict) and isinstance(over, dict):
        sources[path] = new.get(path, sources.get(path, ("", None)))
        out = dict(base)
        for key, value in over.items():
            out[key] = _merge(base.get(key), value, join_key(path, key), sources, new)
        return out
    for key in list(_subtree(sources, path)):
        del sources[key]
    sources.update((key, new[key]) for key in _subtree(new, path))
    return over


def load_collecting(
    paths: tuple[str | os.PathLike[str], ...], environ: Mapping[str, str] | None
) -> tuple[Config | None, list[ConfigError]]:
    """Load and merge ``paths``; the merged config (None if no file loaded) and every problem."""
    environ = os.environ if environ is None else environ
    errors: list[ConfigError] = []
    merged: dict[str, Any] | None = None
    where: dict[str, _Where] = {}
    for filename in [os.fspath(path) for path in paths]:
        loader = _FileLoader(environ)
        try:
            data = loader.load(filename)
        except ConfigError as exc:
            errors.append(exc)
            continue
        errors.extend(loader.errors)
        if data is None:
            data = {}
        if not isinstance(data, dict):
            message = f"expected an object at the top, got {kind_of(data)}"
            errors.append(ConfigError(message, source=filename))
            continue
        new = {key: (source, loader.lines.get(key)) for key, source in loader.sources.items()}
        merged = _merge(merged or {}, data, "", where, new)
    if merged is None:
        return None, errors or [ConfigError("no config file given")]
    source = os.fspath(paths[-1])
    sources = {key: file for key, (file, _) in where.items()}
    lines = {key: line for key, (_, line) in where.items() if line is not None}
    # A reader over the raw merge names the file of each unset value.
    namer = Config(merged, path="", sources=sources, source=source, lines=lines)

    def unset(value: Any, path: str) -> Any:
        if isinstance(value, _Missing):
            errors.append(namer.error(path, value.message))
            return None
        if isinstance(value, dict):
            return {key: unset(item, join_key(path, key)) for key, item in value.items()}
        if isinstance(value, list):
            return [unset(item, join_key(path, index)) for index, item in enumerate(value)]
        return value

    config = Config(unset(merged, ""), path="", sources=sources, source=source, lines=lines)
    return config, errors


def load_config(*paths: str | os.PathLike[str], environ: Mapping[str, str] | None = None) -> Config:
    """Load, substitute and merge config files (later files win), as Backstage's loader does.

    :param environ: the variables for ``${VAR}`` and ``$env``; :data:`os.environ` by default.
    :raises ConfigError: the first problem found; :func:`wsgiauth.check.check_config`
        lists all of them.
    """
    config, errors = load_collecting(paths, environ)
    if errors or config is None:
        raise errors[0]
    return config
