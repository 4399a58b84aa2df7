"""Configuration in Backstage's ``app-config.yaml`` schema, read through a typed reader.

:class:`Config` is the read-only accessor modelled on Backstage's ``ConfigReader``:
every error it raises names the file a key came from and the full dotted key, so a
bad deployment fails at startup with a message that says where to look. Durations
read as Backstage's ``HumanDuration`` objects, ``ms``-style strings or ISO 8601.

The reader knows nothing of files: :func:`wsgiauth.loader.load_config` loads and
merges them into a :class:`Config`, and :func:`wsgiauth.check.check_config` lists
every problem instead of the first.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Collection
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .errors import kind_of

__all__ = ["Config", "closest", "join_key"]

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


def join_key(prefix: str, key: str | int) -> str:
    """The dotted path of ``key`` (a name, or a list index) under ``prefix``."""
    if isinstance(key, int):
        return f"{prefix}[{key}]"
    return f"{prefix}.{key}" if prefix else key


def closest(name: str, known: Collection[str]) -> str:
    """The known name ``name`` is most likely a misspelling of, or "" when none is close."""
    matches = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.75)
    if not matches:
        folded = {item.lower(): item for item in known}
        matches = difflib.get_close_matches(name.lower(), sorted(folded), n=1, cutoff=0.75)
        matches = [folded[match] for match in matches]
    return matches[0] if matches else ""


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
                raise ValueError(f"duration {unit} must be a number, got {kind_of(amount)}")
            seconds += float(amount) * _UNITS[unit][0]
    else:
        raise ValueError(f"{_DURATION_HINT}, got {kind_of(value)}")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"a duration must be finite and not negative, got {value!r}")
    return seconds


class Config:
    """Typed read-only reader over a (merged) config mapping, modelled on Backstage's ConfigReader.

    Keys may be dotted (``get_string("auth.environment")``). A ``null`` value counts as
    missing. Objects receive the subtree they own through :meth:`get_config`; its errors
    still name the full dotted key and the file it came from.
    """

    __slots__ = ("_data", "_lines", "_path", "_source", "_sources")

    def __init__(
        self,
        data: Mapping[str, Any],
        *,
        path: str,
        sources: Mapping[str, str],
        source: str,
        lines: Mapping[str, int] | None = None,
    ) -> None:
        self._data = data
        self._path = path
        self._sources = sources
        self._source = source
        #: Dotted key → its line in the file ``sources`` names, for ``check-config``.
        self._lines: Mapping[str, int] = lines or {}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "<dict>") -> Config:
        """A reader over an in-memory mapping (tests, framework settings); no substitution."""
        return cls(data, path="", sources={}, source=source)

    def with_data(self, data: Mapping[str, Any]) -> Config:
        """This reader (path, files, lines) over other data: a part checked on its own."""
        return self._child(data, self._path)

    @property
    def path(self) -> str:
        """The dotted prefix of this subtree ("" at the root)."""
        return self._path

    def __repr__(self) -> str:
        return f"<Config {self._path or '<root>'} keys={self.keys()!r}>"

    def error(self, key: str, message: str, *, suggestion: str = "") -> ConfigError:
        """A :class:`ConfigError` naming the source file, line and full dotted key of ``key``.

        A key that is not there (a missing one) gets the file and line of its nearest parent.
        """
        path = join_key(self._path, key) if key else self._path
        probe = path
        while probe and probe not in self._sources:
            probe = probe[: max(probe.rfind("."), probe.rfind("["), 0)]
        source = self._sources.get(probe, self._source)
        return ConfigError(
            message, path=path, source=source, line=self._lines.get(probe), suggestion=suggestion
        )

    def _child(self, value: Mapping[str, Any], path: str) -> Config:
        return Config(
            value, path=path, sources=self._sources, source=self._source, lines=self._lines
        )

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
                raise self.error(
                    ".".join(parts[:index]), f"expected an object, got {kind_of(value)}"
                )
            value = value.get(part)
        return value

    def has(self, key: str) -> bool:
        """Whether ``key`` holds a value (``null`` counts as absent)."""
        return self._lookup(key) is not None

    def keys(self) -> list[str]:
        """The keys of this object that hold a value, in file order."""
        return [key for key, value in self._data.items() if value is not None]

    def check_keys(self, known: Collection[str]) -> None:
        """Refuse a key of this object that is not ``known``, naming it.

        A misspelt ``clientSecrett`` must fail at startup, not pass for an unset key.

        :raises ConfigError: ``<path>.<key>: unknown key (known: ...)``, with the closest
            known key as its ``suggestion``.
        """
        for key in self.keys():
            if key not in known:
                message = f"unknown key (known: {', '.join(sorted(known))})"
                raise self.error(key, message, suggestion=closest(key, known))

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
            raise self.error(key, f"expected an object, got {kind_of(value)}")
        return self._child(value, join_key(self._path, key))

    def get_config(self, key: str) -> Config:
        """The object at ``key``; it must be present."""
        return self._require(key, self.get_optional_config(key))  # type: ignore[no-any-return]

    def get_optional_config_list(self, key: str) -> list[Config] | None:
        """The list of objects at ``key``; elements are named ``key[0]``, ``key[1]``..."""
        value = self._lookup(key)
        if value is None:
            return None
        if not isinstance(value, list):
            raise self.error(key, f"expected a list of objects, got {kind_of(value)}")
        out = []
        for index, item in enumerate(value):
            if not isinstance(item, Mapping):
                raise self.error(join_key(key, index), f"expected an object, got {kind_of(item)}")
            path = join_key(join_key(self._path, key), index)
            out.append(self._child(item, path))
        return out

    def get_config_list(self, key: str) -> list[Config]:
        """The list of objects at ``key``; it must be present."""
        return self._require(key, self.get_optional_config_list(key))  # type: ignore[no-any-return]

    def _string(self, key: str, value: Any) -> str:
        if not isinstance(value, str) or not value:
            raise self.error(key, f"expected a string, got {kind_of(value)}")
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
        raise self.error(key, f"expected a boolean, got {kind_of(value)}")

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
        raise self.error(key, f"expected a number, got {kind_of(value)}")

    def get_number(self, key: str) -> float | int:
        """The number at ``key``; it must be present."""
        return self._require(key, self.get_optional_number(key))  # type: ignore[no-any-return]

    def get_optional_string_list(self, key: str) -> list[str] | None:
        """The list of non-empty strings at ``key``, or None."""
        value = self._lookup(key)
        if value is None:
            return None
        if not isinstance(value, list):
            raise self.error(key, f"expected a list of strings, got {kind_of(value)}")
        return [self._string(join_key(key, index), item) for index, item in enumerate(value)]

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
            raise self.error(key, f"expected a string or a list of strings, got {kind_of(value)}")
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
