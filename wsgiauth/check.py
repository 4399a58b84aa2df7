"""``wsgiauth check-config``: every problem in a set of app-config files, in one pass.

Three stages, and a problem in one never hides those of the next: loading (files,
syntax, substitution, includes), the global keys Backstage's auth backend reads (each
part on its own: URLs, secret, origins, CORS, identity, catalog, audit), and every
provider, each built on its own by its factory (so each validates its own config)
with stand-ins for whatever a broken global key could not give it. When all of that
is clean, the whole auth app is built once more, as ``serve`` would, to miss nothing.

Each problem names its file, line and dotted key, with a "did you mean" for a
misspelt key or provider id. A port warning (:func:`port_warning`) says when the
server would listen on another port than ``backend.baseUrl``'s. It sits above
:mod:`wsgiauth.app`, which it builds; the loader and the reader know nothing of it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from functools import partial
from importlib.metadata import entry_points
from typing import Any
from urllib.parse import urlsplit

from .app import DEFAULT_BASE_PATH
from .app import create_auth_app
from .audit import audit_settings_from_config
from .catalog.context import CatalogAuthResolverContext
from .catalog.yaml_catalog import YamlCatalog
from .config import Config
from .config import closest
from .cors import cors_policy_from_config
from .errors import ConfigError
from .errors import kind_of
from .http import create_http_client
from .identity.service import create_identity_service
from .loader import load_collecting
from .origins import checked_origin_patterns
from .registry import BUILTIN_PROVIDERS
from .registry import ENTRY_POINT_GROUP
from .registry import resolve_providers
from .sealing import CookieSealer
from .sign_in.common import load_resolver_factories
from .types import AuthProviderFactoryOptions
from .types import ProviderModule

__all__ = ["CheckReport", "check", "check_config", "describe", "port_warning", "render"]

#: What a provider is built with when ``backend.baseUrl`` or ``app.baseUrl`` is broken.
_STAND_IN_BACKEND = "http://localhost:7007"
_STAND_IN_APP = "http://localhost:3000"
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class CheckReport:
    """What :func:`check` found: errors fail the check, warnings do not."""

    errors: list[ConfigError] = field(default_factory=list)
    warnings: list[ConfigError] = field(default_factory=list)


def describe(problem: ConfigError, severity: str = "error") -> dict[str, Any]:
    """One problem as ``check-config --format json`` prints it (None where unknown)."""
    return {
        "file": problem.source or None,
        "line": problem.line,
        "key": problem.path or None,
        "message": problem.reason,
        "severity": severity,
        "suggestion": problem.suggestion or None,
    }


def render(problem: ConfigError, severity: str = "error") -> str:
    """One problem as a line: ``file:line: key: [warning: ]message (did you mean 'x'?)``."""
    where = f"{problem.source}:{problem.line}" if problem.line else problem.source
    message = f"warning: {problem.reason}" if severity == "warning" else problem.reason
    text = ": ".join(part for part in (where, problem.path, message) if part)
    return f"{text} (did you mean {problem.suggestion!r}?)" if problem.suggestion else text


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
            "auth.session.secret", f"expected a string or a list of strings, got {kind_of(value)}"
        )


def _add(errors: list[ConfigError], error: ConfigError) -> None:
    """Record ``error`` unless the same key already has a problem (no echo of one cause)."""
    if not any(str(error) == str(seen) or error.path == seen.path != "" for seen in errors):
        errors.append(error)


def _url_or(config: Config, key: str, stand_in: str) -> str:
    """``key``'s URL when it passes :func:`_check_url`, else ``stand_in``."""
    try:
        _check_url(config, key, http_only=True)
        return config.get_string(key)
    except ConfigError:
        return stand_in


def _base_url(config: Config) -> str:
    """The auth base URL (the token issuer), with stand-ins for broken keys."""
    try:
        base_path = config.get_optional_string("auth.basePath") or DEFAULT_BASE_PATH
    except ConfigError:
        base_path = DEFAULT_BASE_PATH
    backend = _url_or(config, "backend.baseUrl", _STAND_IN_BACKEND)
    return backend.rstrip("/") + "/" + base_path.strip("/")


def _global_checks(config: Config) -> list[Callable[[], object]]:
    extra_origins = "auth.experimentalExtraAllowedOrigins"
    return [
        lambda: _check_url(config, "app.baseUrl", http_only=True),
        lambda: _check_url(config, "backend.baseUrl", http_only=False),
        lambda: config.get_optional_string("auth.basePath"),
        lambda: config.get_optional_string("auth.environment"),
        lambda: _check_secret(config),
        lambda: checked_origin_patterns(
            config, extra_origins, config.get_optional_string_list(extra_origins) or ()
        ),
        lambda: config.get_optional_duration_seconds("auth.backstageTokenExpiration"),
        # It reads app.baseUrl too (and raises ValueError when it is broken).
        lambda: _url_or(config, "app.baseUrl", "") and cors_policy_from_config(config),
        lambda: create_identity_service(config, issuer=_base_url(config)),
        lambda: YamlCatalog.from_config(config),
        lambda: audit_settings_from_config(config),
    ]


def _unknown_provider(config: Config, provider_id: str, error: ConfigError) -> ConfigError:
    """``error`` with the closest known provider id as its suggestion."""
    known = {*BUILTIN_PROVIDERS, *(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))}
    if provider_id in known:
        return error
    return config.error(error.path, error.reason, suggestion=closest(provider_id, known))


def _build_provider(
    config: Config, provider_id: str, module: ProviderModule, block: Config
) -> None:
    """Build one provider from ``block``, as ``create_auth_app`` would, with stand-ins."""
    base_url = _base_url(config)
    identity = create_identity_service(Config.from_dict({}), issuer=base_url)
    try:
        environment = config.get_optional_string("auth.environment") or "development"
    except ConfigError:
        environment = "development"
    options = AuthProviderFactoryOptions(
        provider_id=provider_id,
        config=block,
        base_url=base_url,
        app_url=_url_or(config, "app.baseUrl", _STAND_IN_APP),
        is_origin_allowed=lambda origin: False,
        http=create_http_client(),
        # A stand-in key, on when a secret is set: a provider that needs one (saml) asks.
        sealer=CookieSealer(["check-config"] if config.has("auth.session.secret") else []),
        resolver_context=CatalogAuthResolverContext(YamlCatalog([]), identity.token_issuer),
        environment=environment,
        sign_in_resolver_factories=load_resolver_factories(module.resolvers),
    )
    try:
        module.factory(options)
    except ConfigError:
        raise
    except Exception as error:
        message = f"failed to build: {error}"
        raise config.error(f"auth.providers.{provider_id}", message) from error


def _check_provider(config: Config, provider_id: str, errors: list[ConfigError]) -> None:
    """Every problem of one provider: after one in an object (an environment), build without it.

    A factory stops at its first problem; taking out the object that holds it (an OAuth
    provider's ``development``, say) lets the next build find the others. What only the
    removal caused (an error at or above a removed key) is not reported.
    """
    providers = config.get_config("auth.providers")
    try:
        module = resolve_providers([provider_id])[provider_id]
        providers.get_config(provider_id)  # an object, or a ConfigError naming it
        block = dict(providers.get(provider_id))
    except ConfigError as error:
        _add(errors, _unknown_provider(config, provider_id, error))
        return
    prefix = f"auth.providers.{provider_id}."
    removed: list[str] = []
    while True:
        try:
            _build_provider(
                config,
                provider_id,
                module,
                providers.with_data({provider_id: block}).get_config(provider_id),
            )
            return
        except ConfigError as error:
            if not any(path == error.path or path.startswith(error.path + ".") for path in removed):
                _add(errors, _with_file(config, error))
            part = error.path[len(prefix) :] if error.path.startswith(prefix) else ""
            key = part.split(".")[0].split("[")[0]
            if not isinstance(block.get(key), Mapping):
                return
            removed.append(prefix + key)
            del block[key]


def _provider_checks(config: Config, errors: list[ConfigError]) -> list[Callable[[], object]]:
    try:
        providers = config.get_optional_config("auth.providers")
    except ConfigError as error:
        return [partial(_raise, error)]
    ids = providers.keys() if providers else []
    return [partial(_check_provider, config, provider_id, errors) for provider_id in ids]


def _raise(error: ConfigError) -> None:
    raise error


def port_warning(config: Config, port: int) -> ConfigError | None:
    """A warning when a server on ``port`` is not the one ``backend.baseUrl`` names.

    Tokens name ``backend.baseUrl`` as their issuer, and the frontend calls it. A
    proxy in front (TLS on 443, say) legitimately changes the port, so this is a
    warning, never an error. None for port 0 (picked at random) or an unreadable URL.
    """
    try:
        url = config.get_optional_string("backend.baseUrl")
        parts = urlsplit(url or "")
        expected = parts.port or _DEFAULT_PORTS.get(parts.scheme)
    except (ConfigError, ValueError):
        return None
    if not port or expected is None or expected == port:
        return None
    return config.error(
        "backend.baseUrl",
        f"the server listens on port {port}, but {url} is on port {expected}: the tokens "
        "would name an issuer that is not this server, unless a proxy in front (TLS, say) "
        f"forwards port {expected} to {port}",
    )


def check(
    paths: tuple[str | os.PathLike[str], ...] | list[str],
    *,
    environ: Mapping[str, str] | None = None,
    port: int | None = None,
) -> CheckReport:
    """Every problem found in a set of config files, in the order found.

    :param environ: the variables for ``${VAR}`` and ``$env``; :data:`os.environ` by default.
    :param port: the port the server will listen on, for :func:`port_warning`.
    """
    config, errors = load_collecting(tuple(paths), environ)
    report = CheckReport(errors)
    if config is None:
        return report
    for check_one in [*_global_checks(config), *_provider_checks(config, errors)]:
        try:
            check_one()
        except ConfigError as exc:
            _add(errors, _with_file(config, exc))
    if not errors:
        try:
            create_auth_app(config)
        except ConfigError as exc:
            _add(errors, _with_file(config, exc))
    warning = port_warning(config, port) if port is not None else None
    if warning is not None:
        report.warnings.append(warning)
    return report


def _with_file(config: Config, error: ConfigError) -> ConfigError:
    """An error raised without its file (a registry, say) gets the file and line of its key.

    A missing key whose object holds a close name (``clientSecrett`` for a provider
    that does not check its keys) says so, and points at that key's line.
    """
    if error.reason == "missing" and error.path:
        parent, _, name = error.path.rpartition(".")
        try:
            siblings = config.get(parent) if parent else None
        except ConfigError:
            siblings = None
        if isinstance(siblings, Mapping):
            typo = closest(name, [key for key in siblings if isinstance(key, str) and key != name])
            if typo:
                there = config.error(f"{parent}.{typo}", "")
                message = f"missing; is {typo!r} a misspelling of it?"
                return ConfigError(message, path=error.path, source=there.source, line=there.line)
    if error.path and not error.source:
        return config.error(error.path, error.reason, suggestion=error.suggestion)
    return error


def check_config(
    *paths: str | os.PathLike[str], environ: Mapping[str, str] | None = None
) -> list[ConfigError]:
    """Every error found in a set of config files, in the order found; empty when clean.

    :param environ: the variables for ``${VAR}`` and ``$env``; :data:`os.environ` by default.
    """
    return check(paths, environ=environ).errors
