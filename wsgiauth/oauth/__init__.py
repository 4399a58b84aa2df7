"""The OAuth provider-author API: everything a provider module built on OAuth 2 needs.

A provider is an :class:`OAuthAuthenticator` (it builds the authorization URL and
talks to the token endpoint) made into a :class:`ProviderModule` by
:func:`create_oauth_provider_factory`, which brings the nonce, PKCE, cookies,
environments, scopes, sign-in resolvers and the response shapes. An authenticator
for a server at known endpoints can derive from :class:`OAuthEndpointAuthenticator`,
which does the authorization URL and both grants, and state only what differs. The built-in
``oidc`` and ``oauth2`` providers use only this module (and :mod:`wsgiauth.sign_in`
for resolvers); third-party packages use the same, and register their module under
the ``wsgiauth.providers`` entry-point group. ``docs/writing-a-provider.md`` walks
through one.
"""

from __future__ import annotations

from ..config import Config as Config
from ..errors import AuthenticationError as AuthenticationError
from ..errors import HttpError as HttpError
from ..errors import InputError as InputError
from ..errors import NotAllowedError as NotAllowedError
from ..errors import ServiceUnavailableError as ServiceUnavailableError
from ..http import HttpClient as HttpClient
from ..identity.replay import MemoryReplayStore as MemoryReplayStore
from ..types import AuthProviderFactoryOptions as AuthProviderFactoryOptions
from ..types import ProfileInfo as ProfileInfo
from ..types import ProviderModule as ProviderModule
from ..types import ReplayStore as ReplayStore
from ..types import SignInResolverFactory as SignInResolverFactory
from .client import TOKEN_ENDPOINT_AUTH_METHODS as TOKEN_ENDPOINT_AUTH_METHODS
from .client import ClientCredentials as ClientCredentials
from .client import authorization_url as authorization_url
from .client import callback_code as callback_code
from .client import check_response_issuer as check_response_issuer
from .client import read_absolute_url as read_absolute_url
from .client import request_token as request_token
from .client import session_from_token as session_from_token
from .endpoints import OAuthEndpointAuthenticator as OAuthEndpointAuthenticator
from .profile import transform_profile as transform_profile
from .provider_factory import create_oauth_provider_factory as create_oauth_provider_factory
from .state import callback_state as callback_state
from .state import decode_oauth_state as decode_oauth_state
from .state import encode_oauth_state as encode_oauth_state
from .types import OAuthAuthenticateInput as OAuthAuthenticateInput
from .types import OAuthAuthenticator as OAuthAuthenticator
from .types import OAuthAuthenticatorResult as OAuthAuthenticatorResult
from .types import OAuthLogoutInput as OAuthLogoutInput
from .types import OAuthLogoutResult as OAuthLogoutResult
from .types import OAuthRefreshInput as OAuthRefreshInput
from .types import OAuthSession as OAuthSession
from .types import OAuthStartInput as OAuthStartInput
from .types import OAuthStartResponse as OAuthStartResponse
from .types import ProbeTarget as ProbeTarget
from .types import ProfileTransform as ProfileTransform
from .types import SupportsOAuthLogout as SupportsOAuthLogout
from .types import SupportsOAuthRoutes as SupportsOAuthRoutes
from .types import SupportsProbes as SupportsProbes

__all__ = [
    "TOKEN_ENDPOINT_AUTH_METHODS",
    "AuthProviderFactoryOptions",
    "AuthenticationError",
    "ClientCredentials",
    "Config",
    "HttpClient",
    "HttpError",
    "InputError",
    "MemoryReplayStore",
    "NotAllowedError",
    "OAuthAuthenticateInput",
    "OAuthAuthenticator",
    "OAuthAuthenticatorResult",
    "OAuthEndpointAuthenticator",
    "OAuthLogoutInput",
    "OAuthLogoutResult",
    "OAuthRefreshInput",
    "OAuthSession",
    "OAuthStartInput",
    "OAuthStartResponse",
    "ProbeTarget",
    "ProfileInfo",
    "ProfileTransform",
    "ProviderModule",
    "ReplayStore",
    "ServiceUnavailableError",
    "SignInResolverFactory",
    "SupportsOAuthLogout",
    "SupportsOAuthRoutes",
    "SupportsProbes",
    "authorization_url",
    "callback_code",
    "callback_state",
    "check_response_issuer",
    "create_oauth_provider_factory",
    "decode_oauth_state",
    "encode_oauth_state",
    "read_absolute_url",
    "request_token",
    "session_from_token",
    "transform_profile",
]
