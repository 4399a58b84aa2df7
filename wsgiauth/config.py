"""Configuration in Backstage's ``app-config.yaml`` schema, read through a typed reader.

:func:`load_config` reads one or more YAML files and merges them as Backstage
does: later files win, mappings merge deeply, lists and scalars replace, and
``null`` removes a value. String values get ``${VAR}`` substitution (``$${``
escapes a literal ``${``; values are trimmed, and there is no ``${VAR:-x}``
default form), and an object whose only key is ``$env``, ``$file`` or
``$include`` is replaced by what it names, paths being relative to the file
that holds them. :class:`Config` is the read-only accessor modelled on
Backstage's ``ConfigReader``: every error it raises names the file a key came
from and the full dotted key, so a bad deployment fails at startup with a
message that says where to look.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from .errors import ConfigError

__all__ = ["Config", "check_config", "load_config"]

_SUBSTITUTION = re.compile(r"\$?\$\{([^{}]*)\}")
_DIRECTIVES = ("$env", "$file", "$include")
_DAY = 86400.0
#: Seconds per unit, with the ``ms``-style aliases. Years and months use Luxon's casual
#: conversion (365 and 30 days) everywhere (``ms`` itself counts 365.25 days a year).
_UNITS = {
    "years": (365 * _DAY, "year yrs yr y"),
    "months": (30 * _DAY, "month mo"),
    "weeks": (7 * _DAY, "week w"),
    "days": (_DAY, "day d"),
    "hours": (3600.0, "hour hrs hr h"),
    "minutes": (60.0, "minute mins min m"),
    "seconds": (1.0, "second secs sec s"),
    "milliseconds": (0.001, "millisecond msecs msec ms"),
}
_ALIASES = {a: unit for unit, (_, aliases) in _UNITS.items() for a in (unit, *aliases.split())}
_NUM = r"(\d+(?:\.\d+)?|\.\d+)"
_HUMAN = re.compile(rf"{_NUM}\s*([a-z]+)", re.IGNORECASE)
_ISO = re.compile(
    rf"P(?:{_NUM}Y)?(?:{_NUM}M)?(?:{_NUM}W)?(?:{_NUM}D)?(?:T(?:{_NUM}H)?(?:{_NUM}M)?(?:{_NUM}S)?)?",
    re.IGNORECASE,
)
_ISO_UNITS = ("years", "months", "weeks", "days", "hours", "minutes", "seconds")
_DURATION_HINT = "expected a duration such as '1h', '30 days', 'PT1H' or {hours: 1}"


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


def _join(prefix: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{prefix}[{key}]"
    return f"{prefix}.{key}" if prefix else key


def _kind(value: object) -> str:
    """How a value's type is named in errors: 'a string', 'a number', ..."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string" if value else "an empty string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return "null" if value is None else type(value).__name__


def _parse_duration(value: object) -> float:
    """Seconds for a Backstage ``HumanDuration`` (object), a duration string or a number.

    A plain number is taken as seconds (``ms`` would read it as milliseconds, which no
    one writing ``sessionDuration: 3600`` means). Raises :class:`ValueError` with a message.
    """
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip()
        iso = _ISO.fullmatch(text) if text[:1] in "pP" else None
        human = _HUMAN.fullmatch(text)
        if iso and any(iso.groups()) and not text.upper().endswith("T"):
            pairs = zip(iso.groups(), _ISO_UNITS, strict=True)
            seconds = sum(float(n) * _UNITS[u][0] for n, u in pairs if n)
        elif human and human.group(2).lower() in _ALIASES:
            seconds = float(human.group(1)) * _UNITS[_ALIASES[human.group(2).lower()]][0]
        else:
            raise ValueError(f"{_DURATION_HINT}, got {value!r}")
    elif isinstance(value, Mapping) and value:
        seconds = 0.0
        for unit, amount in value.items():
            if unit not in _UNITS:
                raise ValueError(f"unknown duration unit {unit!r}; use {', '.join(_UNITS)}")
            if isinstance(amount, bool) or not isinstance(amount, int | float):
                raise ValueError(f"duration {unit} must be a number, got {_kind(amount)}")
            seconds += float(amount) * _UNITS[unit][0]
    else:
        raise ValueError(f"{_DURATION_HINT}, got {_kind(value)}")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"a duration must be finite and not negative, got {value!r}")
    return seconds


class Config:
    """Typed read-only reader over a (merged) config mapping, modelled on Backstage's ConfigReader.

    Keys may be dotted (``get_string("auth.environment")``). A ``null`` value counts as
    missing. Objects receive the subtree they own through :meth:`get_config`; its errors
    still name the full dotted key and the file it came from.
    """

    __slots__ = ("_data", "_path", "_sources", "_source")

    def __init__(
        self, data: Mapping[str, Any], *, path: str, sources: Mapping[str, str], source: str
    ) -> None:
        self._data = data
        self._path = path
        self._sources = sources
        self._source = source

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "<dict>") -> Config:
        """A reader over an in-memory mapping (tests, framework settings); no substitution."""
        return cls(data, path="", sources={}, source=source)

    @property
    def path(self) -> str:
        """The dotted prefix of this subtree ("" at the root)."""
        return self._path

    def __repr__(self) -> str:
        return f"<Config {self._path or '<root>'} keys={self.keys()!r}>"

    def error(self, key: str, message: str) -> ConfigError:
        """A :class:`ConfigError` naming the source file and full dotted key of ``key``."""
        path = _join(self._path, key) if key else self._path
        probe = path
        while probe and probe not in self._sources:
            probe = probe[: max(probe.rfind("."), probe.rfind("["), 0)]
        return ConfigError(message, path=path, source=self._sources.get(probe, self._source))

    def source_dir(self, key: str) -> Path | None:
        """The folder of the file ``key`` came from: relative paths in it are relative to it.

        ``None`` for a config built from a dict.
        """
        source = self.error(key, "").source
        return Path(source).parent if source and not source.startswith("<") else None

    def _lookup(self, key: str) -> Any:
        value: Any = self._data
        parts = key.split(".")
        for index, part in enumerate(parts):
            if value is None:
                return None
            if not isinstance(value, Mapping):
                raise self.error(".".join(parts[:index]), f"expected an object, got {_kind(value)}")
            value = value.get(part)
        return value

    def has(self, key: str) -> bool:
        """Whether ``key`` holds a value (``null`` counts as absent)."""
        return self._lookup(key) is not None

    def keys(self) -> list[str]:
        """The keys of this object that hold a value, in file order."""
        return [key for key, value in self._data.items() if value is not None]

    def get(self, key: str) -> Any:
        """The raw value at ``key``, or None."""
        return self._lookup(key)

    def _require(self, key: str, value: Any) -> Any:
        if value is None:
            raise self.error(key, "missing")
        return value

    def get_optional_config(self, key: str) -> Config | None:
        """The object at ``key`` as a :class:`Config`, or None when absent."""
        value = self._lookup(key)
        if value is None:
            return None
        if not isinstance(value, Mapping):
            raise self.error(key, f"expected an object, got {_kind(value)}")
        path = _join(self._path, key)
        return Config(value, path=path, sources=self._sources, source=self._source)

    def get_config(self, key: str) -> Config:
        """The object at ``key``; it must be present."""
        return self._require(key, self.get_optional_config(key))  # type: ignore[no-any-return]

    def get_optional_config_list(self, key: str) -> list[Config] | None:
        """The list of objects at ``key``; elements are named ``key[0]``, ``key[1]``..."""
        value = self._lookup(key)
        if value is None:
            return None
        if not isinstance(value, list):
            raise self.error(key, f"expected a list of objects, got {_kind(value)}")
        out = []
        for index, item in enumerate(value):
            if not isinstance(item, Mapping):
                raise self.error(_join(key, index), f"expected an object, got {_kind(item)}")
            path = _join(_join(self._path, key), index)
            out.append(Config(item, path=path, sources=self._sources, source=self._source))
        return out

    def get_config_list(self, key: str) -> list[Config]:
        """The list of objects at ``key``; it must be present."""
        return self._require(key, self.get_optional_config_list(key))  # type: ignore[no-any-return]

    def _string(self, key: str, value: Any) -> str:
        if not isinstance(value, str) or not value:
            raise self.error(key, f"expected a string, got {_kind(value)}")
        return value

    def get_optional_string(self, key: str) -> str | None:
        """The non-empty string at ``key``, or None."""
        value = self._lookup(key)
        return None if value is None else self._string(key, value)

    def get_string(self, key: str) -> str:
        """The non-empty string at ``key``; it must be present."""
        return self._string(key, self._require(key, self._lookup(key)))

    def get_optional_bool(self, key: str) -> bool | None:
        """The boolean at ``key``; the strings ``"true"``/``"false"`` count (from ``${VAR}``)."""
        value = self._lookup(key)
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise self.error(key, f"expected a boolean, got {_kind(value)}")

    def get_bool(self, key: str) -> bool:
        """The boolean at ``key``; it must be present."""
        return self._require(key, self.get_optional_bool(key))  # type: ignore[no-any-return]

    def get_optional_number(self, key: str) -> float | int | None:
        """The number at ``key``; numeric strings count (``port: ${PORT}``)."""
        value = self._lookup(key)
        if value is None or (isinstance(value, int | float) and not isinstance(value, bool)):
            return value
        if isinstance(value, str) and re.fullmatch(r"\s*-?(\d+\.?\d*|\.\d+)\s*", value):
            return float(value) if "." in value else int(value)
        raise self.error(key, f"expected a number, got {_kind(value)}")

    def get_number(self, key: str) -> float | int:
        """The number at ``key``; it must be present."""
        return self._require(key, self.get_optional_number(key))  # type: ignore[no-any-return]

    def get_optional_string_list(self, key: str) -> list[str] | None:
        """The list of non-empty strings at ``key``, or None."""
        value = self._lookup(key)
        if value is None:
            return None
        if not isinstance(value, list):
            raise self.error(key, f"expected a list of strings, got {_kind(value)}")
        return [self._string(_join(key, index), item) for index, item in enumerate(value)]

    def get_string_list(self, key: str) -> list[str]:
        """The list of strings at ``key``; it must be present."""
        return self._require(key, self.get_optional_string_list(key))  # type: ignore[no-any-return]

    def get_optional_string_or_list(self, key: str) -> list[str] | None:
        """Words from a string (split on whitespace, ``,`` and ``|``) or a list of strings.

        Backstage accepts both forms for e.g. ``additionalScopes``.
        """
        value = self._lookup(key)
        if value is None:
            return None
        if isinstance(value, str):
            items = [value]
        elif isinstance(value, list) and all(isinstance(item, str) for item in value):
            items = value
        else:
            raise self.error(key, f"expected a string or a list of strings, got {_kind(value)}")
        return [word for item in items for word in re.split(r"[\s,|]+", item) if word]

    def get_optional_duration_seconds(self, key: str) -> float | None:
        """A duration in seconds: ``{hours: 1}``, ``"1h"``, ``"30 days"``, ``"PT1H"`` or seconds."""
        value = self._lookup(key)
        if value is None:
            return None
        try:
            return _parse_duration(value)
        except ValueError as exc:
            raise self.error(key, str(exc)) from None


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
    """Reads one top-level file with its includes, recording the file of every value."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ
        self.sources: dict[str, str] = {}
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
            data = json.loads(text) if filename.endswith(".json") else yaml.load(text, _Loader)  # noqa: S506
        except (ValueError, yaml.YAMLError) as exc:
            raise ConfigError(_syntax_message(exc), path=path, source=filename) from None
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
            return [self.resolve(item, _join(path, i), source) for i, item in enumerate(value)]
        if not isinstance(value, dict):
            return value
        directives = [key for key in value if isinstance(key, str) and key.startswith("$")]
        if not directives:
            return {str(k): self.resolve(v, _join(path, str(k)), source) for k, v in value.items()}
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
            raise fail(f"{key} needs a non-empty string, got {_kind(value[key])}")
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
        return included


def _subtree(sources: Mapping[str, str], path: str) -> Iterator[str]:
    for key in sources:
        if not path or key == path or key.startswith((f"{path}.", f"{path}[")):
            yield key


def _merge(base: Any, over: Any, path: str, sources: dict[str, str], new: Mapping[str, str]) -> Any:
    """Deep-merge ``over`` into ``base``; ``sources`` follows whichever file wins each value."""
    if isinstance(base, dict) and isinstance(over, dict):
        sources[path] = new.get(path, sources.get(path, ""))
        out = dict(base)
        for key, value in over.items():
            out[key] = _merge(base.get(key), value, _join(path, key), sources, new)
        return out
    for key in list(_subtree(sources, path)):
        del sources[key]
    sources.update((key, new[key]) for key in _subtree(new, path))
    return over


def _load(
    paths: tuple[str | os.PathLike[str], ...], environ: Mapping[str, str] | None
) -> tuple[Config | None, list[ConfigError]]:
    """Load and merge ``paths``; the merged config (None if no file loaded) and every problem."""
    environ = os.environ if environ is None else environ
    errors: list[ConfigError] = []
    merged: dict[str, Any] | None = None
    sources: dict[str, str] = {}
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
            message = f"expected an object at the top, got {_kind(data)}"
            errors.append(ConfigError(message, source=filename))
            continue
        merged = _merge(merged or {}, data, "", sources, loader.sources)
    if merged is None:
        return None, errors or [ConfigError("no config file given")]
    config = Config(merged, path="", sources=sources, source=os.fspath(paths[-1]))

    def unset(value: Any, path: str) -> Any:
        if isinstance(value, _Missing):
            errors.append(config.error(path, value.message))
            return None
        if isinstance(value, dict):
            return {key: unset(item, _join(path, key)) for key, item in value.items()}
        if isinstance(value, list):
            return [unset(item, _join(path, index)) for index, item in enumerate(value)]
        return value

    config._data = unset(merged, "")
    return config, errors


def load_config(*paths: str | os.PathLike[str], environ: Mapping[str, str] | None = None) -> Config:
    """Load, substitute and merge config files (later files win), as Backstage's loader does.

    :param environ: the variables for ``${VAR}`` and ``$env``; :data:`os.environ` by default.
    :raises ConfigError: the first problem found; :func:`check_config` lists all of them.
    """
    config, errors = _load(paths, environ)
    if errors or config is None:
        raise errors[0]
    return config


def _check_url(config: Config, key: str, *, http_only: bool) -> None:
    parts = urlsplit(config.get_string(key))
    schemes = ("http", "https") if http_only else (parts.scheme,)
    if not parts.scheme or parts.scheme not in schemes or not parts.netloc:
        kind = "http(s) URL" if http_only else "URL"
        raise config.error(key, f"expected an absolute {kind}, got {config.get(key)!r}")


def _check_secret(config: Config) -> None:
    value = config.get("auth.session.secret")
    items = value if isinstance(value, list) else [value]
    if value is not None and (not items or not all(isinstance(i, str) and i for i in items)):
        raise config.error(
            "auth.session.secret", f"expected a string or a list of strings, got {_kind(value)}"
        )


def _add(errors: list[ConfigError], error: ConfigError) -> None:
    """Record ``error`` unless the same key already has a problem (no echo of one cause)."""
    if not any(str(error) == str(seen) or error.path == seen.path != "" for seen in errors):
        errors.append(error)


def _check_providers(config: Config, errors: list[ConfigError]) -> None:
    providers = config.get_optional_config("auth.providers")
    for provider_id in providers.keys() if providers else ():
        try:
            providers.get_config(provider_id)  # type: ignore[union-attr]
        except ConfigError as exc:
            _add(errors, exc)


def check_config(
    *paths: str | os.PathLike[str], environ: Mapping[str, str] | None = None
) -> list[ConfigError]:
    """Every problem found in a set of config files, for ``wsgiauth check-config``.

    Checks loading (files, syntax, substitution, includes), the global keys Backstage's
    auth backend reads, and, when :mod:`wsgiauth.app` is available, builds the auth app
    so provider factories validate their own config. Returns an empty list when clean.
    """
    config, errors = _load(paths, environ)
    if config is None:
        return errors
    checks: list[Callable[[], object]] = [
        lambda: _check_url(config, "app.baseUrl", http_only=True),
        lambda: _check_url(config, "backend.baseUrl", http_only=False),
        lambda: config.get_optional_string("auth.environment"),
        lambda: _check_secret(config),
        lambda: config.get_optional_string_list("auth.experimentalExtraAllowedOrigins"),
        lambda: config.get_optional_duration_seconds("auth.backstageTokenExpiration"),
    ]
    checks.append(lambda: _check_providers(config, errors))
    try:
        from .app import create_auth_app
    except ImportError:
        pass
    else:
        checks.append(lambda: create_auth_app(config))
    for check in checks:
        try:
            check()
        except ConfigError as exc:
            # An error raised without its file (a registry, say) gets the file of its key.
            _add(errors, config.error(exc.path, exc.reason) if exc.path and not exc.source else exc)
    return errors
