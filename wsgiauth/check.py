"""``wsgiauth check-config``: every problem in a set of app-config files, in one pass.

Loading problems (files, syntax, substitution, includes), the global keys Backstage's
auth backend reads, and then the auth app itself is built, so each provider factory
validates its own config. It sits above :mod:`wsgiauth.app`, which it builds; the
loader and the reader below know nothing of it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from collections.abc import Mapping
from urllib.parse import urlsplit

from .app import create_auth_app
from .config import Config
from .errors import ConfigError
from .errors import kind_of
from .loader import load_collecting

__all__ = ["check_config"]


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
    """Every problem found in a set of config files, in the order found; empty when clean.

    :param environ: the variables for ``${VAR}`` and ``$env``; :data:`os.environ` by default.
    """
    config, errors = load_collecting(paths, environ)
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
    checks.append(lambda: create_auth_app(config))
    for check in checks:
        try:
            check()
        except ConfigError as exc:
            # An error raised without its file (a registry, say) gets the file of its key.
            _add(errors, config.error(exc.path, exc.reason) if exc.path and not exc.source else exc)
    return errors
