"""Where providers come from: built-ins, entry points, or an explicit mapping.

Built-ins are a static map of import paths, loaded only when configured.
Third-party packages register a :class:`ProviderModule` under the entry-point
group ``wsgiauth.providers``::

    [project.entry-points."wsgiauth.providers"]
    github = "wsgiauth_github:module"

An explicit ``providers={...}`` argument beats entry points, which beat
built-ins; an entry point that silently takes a built-in's name is a
:class:`~wsgiauth.errors.ConfigError`.
"""

from __future__ import annotations

import pkgutil
from collections.abc import Iterable
from collections.abc import Mapping
from functools import cache
from importlib.metadata import EntryPoint
from importlib.metadata import entry_points

from .errors import ConfigError
from .types import ProviderModule

__all__ = ["BUILTIN_PROVIDERS", "ENTRY_POINT_GROUP", "resolve_providers"]

ENTRY_POINT_GROUP = "wsgiauth.providers"

#: Provider id → ``module:attribute`` of its :class:`ProviderModule`.
BUILTIN_PROVIDERS: Mapping[str, str] = {
    "atlassian": "wsgiauth.providers.atlassian:module",
    "auth0": "wsgiauth.providers.auth0:module",
    "awsalb": "wsgiauth.providers.awsalb:module",
    "azureEasyAuth": "wsgiauth.providers.azure_easy_auth:module",
    "bitbucket": "wsgiauth.providers.bitbucket:module",
    "bitbucketServer": "wsgiauth.providers.bitbucket_server:module",
    "cfaccess": "wsgiauth.providers.cfaccess:module",
    "gcpIap": "wsgiauth.providers.gcp_iap:module",
    "github": "wsgiauth.providers.github:module",
    "gitlab": "wsgiauth.providers.gitlab:module",
    "google": "wsgiauth.providers.google:module",
    "guest": "wsgiauth.providers.guest:module",
    "microsoft": "wsgiauth.providers.microsoft:module",
    "oauth2": "wsgiauth.providers.oauth2:module",
    "oauth2Proxy": "wsgiauth.providers.oauth2_proxy:module",
    "oidc": "wsgiauth.providers.oidc:module",
    "okta": "wsgiauth.providers.okta:module",
    "onelogin": "wsgiauth.providers.onelogin:module",
    "openshift": "wsgiauth.providers.openshift:module",
    "pinniped": "wsgiauth.providers.pinniped:module",
    "saml": "wsgiauth.providers.saml:module",
}


@cache
def _entry_points() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def _load(path: str) -> ProviderModule:
    loaded = pkgutil.resolve_name(path)
    if not isinstance(loaded, ProviderModule):
        raise TypeError(f"{path} is not a wsgiauth ProviderModule")
    return loaded


def resolve_providers(
    provider_ids: Iterable[str], explicit: Mapping[str, ProviderModule] | None = None
) -> dict[str, ProviderModule]:
    """The module of every configured provider id; ``ConfigError`` naming any that is unknown."""
    explicit = explicit or {}
    found: dict[str, ProviderModule] = {}
    for provider_id in provider_ids:
        path = f"auth.providers.{provider_id}"
        if provider_id in explicit:
            found[provider_id] = explicit[provider_id]
            continue
        entry_point = _entry_points().get(provider_id)
        if entry_point is not None and provider_id in BUILTIN_PROVIDERS:
            raise ConfigError(
                f"entry point {entry_point.value!r} ({ENTRY_POINT_GROUP}) clashes with the "
                f"built-in provider {BUILTIN_PROVIDERS[provider_id]!r}; pass providers= to choose",
                path=path,
            )
        try:
            if entry_point is not None:
                module = entry_point.load()
                if not isinstance(module, ProviderModule):
                    raise TypeError(f"{entry_point.value} is not a wsgiauth ProviderModule")
            elif provider_id in BUILTIN_PROVIDERS:
                module = _load(BUILTIN_PROVIDERS[provider_id])
            else:
                known = ", ".join(sorted({*BUILTIN_PROVIDERS, *_entry_points()}))
                raise ConfigError(f"unknown provider (known: {known})", path=path)
        except (ImportError, AttributeError, TypeError) as error:
            raise ConfigError(f"cannot load provider: {error}", path=path) from error
        found[provider_id] = module
    return found
