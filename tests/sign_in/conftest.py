"""Fixtures: the same catalog, token issuer and resolver context as the catalog tests."""

from __future__ import annotations

from tests.catalog.conftest import catalog  # noqa: F401
from tests.catalog.conftest import context  # noqa: F401
from tests.catalog.conftest import issuer  # noqa: F401


def provider_resolvers(provider: str):
    """What ``signIn.resolvers`` may name for a provider: its module's resolvers and the rest."""
    from wsgiauth.providers import oauth2
    from wsgiauth.providers import oidc
    from wsgiauth.sign_in import email_matching_user_entity_annotation
    from wsgiauth.sign_in import load_resolver_factories

    own = {
        "oidc": oidc.module.resolvers,
        "oauth2": oauth2.module.resolvers,
        # As the Google, Microsoft and Okta modules declare it (issue 10 brings them).
        **{
            provider: {
                "emailMatchingUserEntityAnnotation": email_matching_user_entity_annotation(
                    f"{provider}.com/email"
                )
            }
            for provider in ("google", "microsoft", "okta")
        },
    }
    return load_resolver_factories(own.get(provider))
