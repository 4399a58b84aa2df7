"""SAML 2.0 sign-in (Backstage's first ``saml`` provider), on pysaml2 and ``xmlsec1``.

Read against ``@backstage/plugin-auth-backend`` 0.19.4 (``SamlAuthProvider`` over
passport-saml): config at ``auth.providers.saml`` with no environment level;
``entryPoint``, ``issuer`` (our SP entity id), ``cert`` of the IdP, ``audience``,
``privateKey``, ``signatureAlgorithm``, ``digestAlgorithm``, ``acceptedClockSkewMs``,
``identifierFormat`` and, from its successor, ``wantAuthnResponseSigned`` and
``wantAssertionsSigned`` (both default ``true``); the profile's ``email`` and
``displayName``; the result ``{fullProfile: {nameID, ...}}``; the resolver
``nameIdMatchingUserEntityName``. Beyond Backstage: ``metadataUrl`` instead of
``cert``, ``idpIssuer`` (the IdP entity id, optional as passport-saml's: set, the
signed Issuer must be it; unset, any Issuer is read and the signature must verify with
``cert``), ``publicCert`` (the SP certificate for the metadata), attribute names, and
the popup wire of the OAuth providers (flow cookie, allowed origins, ``/refresh`` from
a sealed session cookie, ``/logout``).

One idea per module: :mod:`.config` reads the keys, :mod:`.verification` holds our
own refusals of a response, :mod:`.authenticator` runs the flow on pysaml2; here are
the provider module and its resolver. pysaml2 is imported only when a ``saml``
provider is configured (``wsgiauth[saml]``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING
from typing import Any

from ...oauth import AuthenticationError
from ...oauth import MemoryReplayStore
from ...oauth import OAuthAuthenticatorResult
from ...oauth import ProviderModule
from ...oauth import create_oauth_provider_factory
from ...sign_in import create_sign_in_resolver_factory
from .authenticator import SamlAuthenticator
from .config import CONFIG_KEYS
from .verification import request_id

if TYPE_CHECKING:
    from ...oauth import AuthProviderFactoryOptions
    from ...sign_in import AuthResolverContext
    from ...sign_in import BackstageSignInResult
    from ...sign_in import SignInInfo
    from ...sign_in import SignInResolver

__all__ = [
    "CONFIG_KEYS",
    "SamlAuthenticator",
    "module",
    "name_id_matching_user_entity_name",
    "request_id",
]


def _name_id_resolver(options: Mapping[str, Any] | None) -> SignInResolver:
    def resolve(info: SignInInfo, context: AuthResolverContext) -> BackstageSignInResult:
        result = info.result
        profile = result.full_profile if isinstance(result, OAuthAuthenticatorResult) else {}
        name_id = profile.get("nameID")
        if not isinstance(name_id, str) or not name_id:
            raise AuthenticationError("No nameID found in SAML response")
        return context.sign_in_with_catalog_user({"entityRef": {"name": name_id}})

    return resolve


#: Backstage's ``nameIdMatchingUserEntityName``: the NameID is the User entity's name.
name_id_matching_user_entity_name = create_sign_in_resolver_factory(_name_id_resolver)


def _factory(options: AuthProviderFactoryOptions) -> Any:
    """Bind the app's replay store (the configured database) to this provider's authenticator."""
    store = options.replay_store or MemoryReplayStore()

    class BoundSamlAuthenticator(SamlAuthenticator):
        replay_store = store

    factory = create_oauth_provider_factory(
        BoundSamlAuthenticator, config_keys=CONFIG_KEYS, environments=False
    )
    return factory(options)


module = ProviderModule(
    provider_id="saml",
    factory=_factory,
    resolvers={"nameIdMatchingUserEntityName": name_id_matching_user_entity_name},
)
