"""Whether a class implements a ``typing.Protocol`` with the protocol's own parameters.

mypy checks this only where an instance meets a protocol-typed name; these
checks cover every implementation we ship, whether or not code assigns it so.
"""

from __future__ import annotations

import inspect
from typing import Any

_EMPTY = inspect.Parameter.empty


def _methods(protocol: type) -> list[str]:
    return sorted(
        name
        for name, member in vars(protocol).items()
        if not name.startswith("_")
        and (inspect.isfunction(member) or isinstance(member, classmethod | staticmethod))
    )


def _binding(member: Any) -> str:
    if isinstance(member, classmethod):
        return "classmethod"
    if isinstance(member, staticmethod):
        return "staticmethod"
    return "method"


def _parameter_problems(name: str, want: inspect.Signature, got: inspect.Signature) -> list[str]:
    wanted, given = list(want.parameters.values()), list(got.parameters.values())
    problems = []
    for index, expected in enumerate(wanted):
        if index >= len(given):
            problems.append(f"{name}: no parameter {expected.name!r}")
            continue
        actual = given[index]
        if actual.kind != expected.kind:
            problems.append(f"{name}: {actual.name!r} is {actual.kind}, expected {expected.kind}")
        elif actual.name != expected.name and expected.kind != expected.POSITIONAL_ONLY:
            problems.append(f"{name}: parameter {actual.name!r}, expected {expected.name!r}")
        if expected.default is not _EMPTY and actual.default is _EMPTY:
            problems.append(f"{name}: {actual.name!r} needs a default, as in the protocol")
    for extra in given[len(wanted) :]:
        if extra.default is _EMPTY and extra.kind not in (extra.VAR_POSITIONAL, extra.VAR_KEYWORD):
            problems.append(f"{name}: extra parameter {extra.name!r} has no default")
    return problems


def protocol_mismatches(implementation: type, protocol: type) -> list[str]:
    """What ``implementation`` lacks, or spells differently, of ``protocol``'s methods.

    Parameter names and kinds must match (callers pass keywords); extra parameters
    must be optional. Annotations are left to mypy.
    """
    problems: list[str] = []
    for name in _methods(protocol):
        static: Any = inspect.getattr_static(implementation, name, None)
        if static is None:
            problems.append(f"{name}: missing")
            continue
        binding, expected = _binding(static), _binding(inspect.getattr_static(protocol, name))
        if binding != expected:
            problems.append(f"{name}: a {binding}, expected a {expected}")
            continue
        problems += _parameter_problems(
            name,
            inspect.signature(getattr(protocol, name)),
            inspect.signature(getattr(implementation, name)),
        )
    return problems
