"""The proxy provider-author API: providers whose identity comes with the request itself.

An authenticating proxy or load balancer in front of the app (or nothing at all, for
``guest``) says who the caller is; a :class:`ProxyAuthenticator` reads and checks
that from the request, and :func:`create_proxy_auth_provider_factory` makes it a
provider with only a ``refresh`` route (and ``logout``), resolved to a catalog user
by a mandatory sign-in resolver. Headers signed by the proxy are checked against its
keys through :class:`JwksKeys`, the one key cache (bounded, rate-limited refetch). The
built-in ``guest`` provider uses only this module; third-party packages use the same.
"""

from __future__ import annotations

from ..config import Config as Config
from ..errors import AuthenticationError as AuthenticationError
from ..errors import HttpError as HttpError
from ..errors import InputError as InputError
from ..errors import NotAllowedError as NotAllowedError
from ..errors import ServiceUnavailableError as ServiceUnavailableError
from ..http import HttpClient as HttpClient
from ..identity.jwks import JwksKeys as JwksKeys
from ..types import AuthProviderFactoryOptions as AuthProviderFactoryOptions
from ..types import ProfileInfo as ProfileInfo
from ..types import ProviderModule as ProviderModule
from ..types import SignInResolverFactory as SignInResolverFactory
from .provider_factory import (
    create_proxy_auth_provider_factory as create_proxy_auth_provider_factory,
)
from .route_handlers import ProxyAuthenticator as ProxyAuthenticator
from .route_handlers import ProxyAuthenticatorResult as ProxyAuthenticatorResult

__all__ = [
    "AuthProviderFactoryOptions",
    "AuthenticationError",
    "Config",
    "HttpClient",
    "HttpError",
    "InputError",
    "JwksKeys",
    "NotAllowedError",
    "ProfileInfo",
    "ProviderModule",
    "ProxyAuthenticator",
    "ProxyAuthenticatorResult",
    "ServiceUnavailableError",
    "SignInResolverFactory",
    "create_proxy_auth_provider_factory",
]
