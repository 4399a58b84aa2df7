"""Sign-in resolver factories: a resolver plus the options it accepts (spec §10.1).

Backstage's ``createSignInResolverFactory`` checks options with zod; here a
schema is any callable that takes the raw options mapping and returns the
checked value, raising ``ValueError``, ``TypeError`` or ``InputError`` with a
message. :func:`options_schema` builds the usual kind from a field table.
Unlike zod's default, unknown option names are rejected: a misspelt
``allowedDomain`` must fail at startup, not silently allow every domain.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from typing import Any
from typing import TypeVar

from ..errors import InputError
from ..errors import kind_of
from ..types import SignInResolver
from ..types import SignInResolverFactory

__all__ = [
    "SignInResolverFactory",
    "boolean",
    "create_sign_in_resolver_factory",
    "options_schema",
    "string",
    "string_list",
]

OptionsT = TypeVar("OptionsT")

#: Marks callables made by :func:`create_sign_in_resolver_factory`, for dotted-path loading.
FACTORY_MARKER = "__wsgiauth_sign_in_resolver_factory__"


def boolean(value: Any) -> bool:
    """A boolean; the strings ``"true"``/``"false"`` count, as ``${VAR}`` yields them."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ValueError(f"expected a boolean, got {kind_of(value)}")


def string(value: Any) -> str:
    """A non-empty string."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"expected a non-empty string, got {kind_of(value)}")
    return value


def string_list(value: Any) -> tuple[str, ...]:
    """A list of strings, as a tuple."""
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError(f"expected a list of strings, got {kind_of(value)}")
    return tuple(value)


def options_schema(
    fields: Mapping[str, Callable[[Any], Any]], *, required: tuple[str, ...] = ()
) -> Callable[[Mapping[str, Any] | None], dict[str, Any]]:
    """A schema for an options object: each field's checker, and which must be present.

    The result maps each given (non-null) option to its checked value.
    """

    def check(options: Mapping[str, Any] | None) -> dict[str, Any]:
        options = options or {}
        unknown = [key for key in options if key not in fields]
        if unknown:
            allowed = ", ".join(fields) or "none"
            raise ValueError(f"unknown option {unknown[0]!r} (allowed: {allowed})")
        out = {}
        for key, checker in fields.items():
            value = options.get(key)
            if value is None:
                if key in required:
                    raise ValueError(f"{key}: required")
                continue
            try:
                out[key] = checker(value)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{key}: {exc}") from None
        return out

    return check


def create_sign_in_resolver_factory(
    create: Callable[[OptionsT], SignInResolver],
    *,
    options_schema: Callable[[Mapping[str, Any] | None], OptionsT] | None = None,
) -> SignInResolverFactory:
    """A factory that checks options with ``options_schema`` and passes them to ``create``.

    Without a schema the resolver takes no options: ``create`` gets None, and any
    option given is an ``InputError`` "sign-in resolver does not accept options".
    A schema failure is an ``InputError`` "Invalid sign-in resolver options, ...".
    """
    schema = options_schema

    def factory(options: Mapping[str, Any] | None = None) -> SignInResolver:
        if schema is None:
            if options:
                raise InputError("sign-in resolver does not accept options")
            return create(None)  # type: ignore[arg-type]
        try:
            parsed = schema(options)
        except (InputError, TypeError, ValueError) as exc:
            raise InputError(f"Invalid sign-in resolver options, {exc}") from None
        return create(parsed)

    setattr(factory, FACTORY_MARKER, True)
    return factory
