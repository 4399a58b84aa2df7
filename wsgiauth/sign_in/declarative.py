"""``signIn.resolvers`` from config (Backstage ``readDeclarativeSignInResolver``, spec §10.1).

A provider's config lists resolvers by name, with options, and they are tried
in order: a ``NotFoundError`` moves on to the next, any other error stops
sign-in. Everything is read and built at startup, so an unknown name or a bad
option is a :class:`ConfigError` naming its key, not a failed login later.

Besides the names a provider offers, an entry may name a custom resolver by
dotted path (``resolver: mypkg.auth:by_employee_id``) or by an entry point
of the group ``wsgiauth.resolvers``; either may be a resolver
``(info, context) -> result`` or a factory ``(options) -> resolver``.
"""

from __future__ import annotations

import inspect
import logging
import pkgutil
from collections.abc import Mapping
from functools import cache
from importlib.metadata import entry_points
from typing import TYPE_CHECKING
from typing import Any

from ..audit import audit_note
from ..config import closest
from ..errors import InputError
from ..errors import NotFoundError
from .factory import FACTORY_MARKER
from .factory import SignInResolverFactory
from .factory import create_sign_in_resolver_factory

if TYPE_CHECKING:
    from ..config import Config
    from ..types import AuthResolverContext
    from ..types import BackstageSignInResult
    from ..types import SignInInfo
    from ..types import SignInResolver

__all__ = [
    "ENTRY_POINT_GROUP",
    "SIGN_IN_FAILED",
    "as_sign_in_resolver_factory",
    "entry_point_resolver_factories",
    "load_dotted_resolver_factory",
    "read_declarative_sign_in_resolver",
]

log = logging.getLogger(__name__)

#: Entry-point group where packages register resolvers (or factories) by name.
ENTRY_POINT_GROUP = "wsgiauth.resolvers"

#: Raised when every configured resolver found no user (Backstage's message plus
#: the hint of its ``handleSignInUserNotFound``).
SIGN_IN_FAILED = (
    "Failed to sign-in, unable to resolve user identity. Please verify that your catalog "
    "contains the expected User entities that would match your configured sign-in resolver. "
    "For non-production environments, manually provision the user or disable the user "
    "provisioning requirement by setting the `dangerouslyAllowSignInWithoutUserInCatalog` "
    "option."
)


def _required_positional(obj: Any) -> int | None:
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        return None
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    params = signature.parameters.values()
    return sum(1 for p in params if p.kind in kinds and p.default is inspect.Parameter.empty)


def as_sign_in_resolver_factory(obj: Any, *, name: str) -> SignInResolverFactory:
    """A factory for ``obj``: a factory as it is, a plain resolver as one taking no options.

    A callable with two required positional parameters is a resolver ``(info,
    context)``; one with at most one is a factory ``(options)``.

    :raises TypeError: ``obj`` is neither.
    """
    if getattr(obj, FACTORY_MARKER, False):
        return obj  # type: ignore[no-any-return]
    required = _required_positional(obj) if callable(obj) else None
    if required == 2:
        return create_sign_in_resolver_factory(lambda _options: obj)
    if required is not None and required <= 1:
        return obj  # type: ignore[no-any-return]
    raise TypeError(f"{name} is not a sign-in resolver (info, context) or a factory (options)")


def load_dotted_resolver_factory(path: str) -> SignInResolverFactory:
    """The resolver or factory at ``package.module:attribute`` (``attribute`` may be dotted).

    :raises ImportError, AttributeError, TypeError: it cannot be loaded or is neither.
    """
    module_name, _, attribute = path.partition(":")
    if not module_name or not attribute:
        raise ImportError(f"expected 'package.module:attribute', got {path!r}")
    return as_sign_in_resolver_factory(pkgutil.resolve_name(path), name=path)


@cache
def entry_point_resolver_factories() -> dict[str, SignInResolverFactory]:
    """Resolvers registered under ``wsgiauth.resolvers``; a broken one is logged and skipped."""
    found: dict[str, SignInResolverFactory] = {}
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        try:
            found[entry_point.name] = as_sign_in_resolver_factory(
                entry_point.load(), name=entry_point.value
            )
        except Exception:  # noqa: BLE001 - one broken plugin must not stop the others
            log.exception("cannot load sign-in resolver entry point %r", entry_point.value)
    return found


def _factory_for(
    name: str, resolvers: Mapping[str, SignInResolverFactory], entry: Config
) -> SignInResolverFactory:
    if name in resolvers:
        return resolvers[name]
    if ":" in name:
        try:
            return load_dotted_resolver_factory(name)
        except (ImportError, AttributeError, TypeError) as exc:
            raise entry.error(
                "resolver", f"Sign-in resolver '{name}' cannot be loaded: {exc}"
            ) from exc
    from_entry_points = entry_point_resolver_factories().get(name)
    if from_entry_points is not None:
        return from_entry_points
    available = ", ".join(sorted(resolvers)) or "none"
    raise entry.error(
        "resolver",
        f"Sign-in resolver '{name}' is not available (available: {available})",
        suggestion=closest(name, resolvers),
    )


def _chain(resolvers: list[tuple[str, SignInResolver]]) -> SignInResolver:
    def resolve(info: SignInInfo, context: AuthResolverContext) -> BackstageSignInResult:
        for name, resolver in resolvers:
            try:
                result = resolver(info, context)
                audit_note(resolver=name)
                return result
            except NotFoundError as exc:
                log.info("sign-in resolver %s found no user: %s", name, exc.message)
        # NotFoundError rather than Backstage's plain Error: every cause was "not found",
        # it keeps a 4xx with a readable message, and a chain nested in another moves on.
        raise NotFoundError(SIGN_IN_FAILED)

    return resolve


def read_declarative_sign_in_resolver(
    config: Config, resolvers: Mapping[str, SignInResolverFactory]
) -> SignInResolver | None:
    """The resolver that ``signIn.resolvers`` of ``config`` describes, or None if it lists none.

    :param config: a provider's environment block, or a proxy provider's block.
    :param resolvers: the names this provider offers (see ``load_resolver_factories``).
    :raises ConfigError: an unknown resolver, or options it rejects, naming the key.
    """
    built: list[tuple[str, SignInResolver]] = []
    for entry in config.get_optional_config_list("signIn.resolvers") or []:
        name = entry.get_string("resolver")
        factory = _factory_for(name, resolvers, entry)
        options = {key: entry.get(key) for key in entry.keys() if key != "resolver"}
        try:
            resolver = factory(options or None)
        except InputError as exc:
            raise entry.error("", exc.message) from None
        if not callable(resolver):
            raise entry.error("resolver", f"Sign-in resolver '{name}' did not build a resolver")
        built.append((name, resolver))
    return _chain(built) if built else None
