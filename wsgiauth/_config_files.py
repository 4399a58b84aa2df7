"""Loading of ``app-config.yaml`` files into a :class:`~wsgiauth.config.Config`.

Backstage's loader, file side: YAML 1.2-ish parsing, ``${VAR}`` substitution, the
``$env``/``$file``/``$include`` directives, deep merging of several files while
remembering which file each value came from (so the reader's errors can name it),
and the startup checks behind ``wsgiauth check-config``. Kept apart from the reader
so each module holds one idea; :mod:`wsgiauth.config` is the public entry point
(:func:`~wsgiauth.config.load_config`, :func:`~wsgiauth.config.check_config`).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import yaml

from .config import Config
from .config import _join
from .config import _kind
from .errors import ConfigError

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
    source = os.fspath(paths[-1])
    # A reader over the raw merge names the file of each unset value.
    namer = Config(merged, path="", sources=sources, source=source)

    def unset(value: Any, path: str) -> Any:
        if isinstance(value, _Missing):
            errors.append(namer.error(path, value.message))
            return None
        if isinstance(value, dict):
            return {key: unset(item, _join(path, key)) for key, item in value.items()}
        if isinstance(value, list):
            return [unset(item, _join(path, index)) for index, item in enumerate(value)]
        return value

    return Config(unset(merged, ""), path="", sources=sources, source=source), errors


def load_files(
    paths: tuple[str | os.PathLike[str], ...], environ: Mapping[str, str] | None
) -> Config:
    """What :func:`wsgiauth.config.load_config` does: the merged config or the first problem."""
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


def check_files(
    paths: tuple[str | os.PathLike[str], ...], environ: Mapping[str, str] | None
) -> list[ConfigError]:
    """What :func:`wsgiauth.config.check_config` does: every problem, in the order found."""
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
