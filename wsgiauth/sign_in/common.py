"""The built-in sign-in resolvers (Backstage ``commonSignInResolvers`` and provider ones, §10.2).

Each is a factory, named as in Backstage's config, that checks its options
and returns a resolver ``(info, context) -> BackstageSignInResult``.
:func:`load_resolver_factories` gives the set a provider offers to
``signIn.resolvers``: the common ones, the provider's own, and those of the
``wsgiauth.resolvers`` entry points.

One deliberate difference: when a user is not in the catalog and
``dangerouslyAllowSignInWithoutUserInCatalog`` is off, Backstage's
``handleSignInUserNotFound`` throws a plain ``Error``, which stops a list of
resolvers at the first one (backstage/backstage#30873). Here it is a
``NotFoundError`` with the same message, so the next resolver is tried, as
spec §10.1 describes the list.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from collections.abc import Mapping
from typing import Any

from ..catalog.refs import DEFAULT_NAMESPACE
from ..catalog.refs import stringify_entity_ref
from ..errors import AuthenticationError
from ..errors import NotAllowedError
from ..errors import NotFoundError
from ..types import AuthResolverContext
from ..types import BackstageSignInResult
from ..types import SignInInfo
from ..types import SignInResolver
from ..types import TokenParams
from .declarative import SIGN_IN_FAILED
from .declarative import entry_point_resolver_factories
from .factory import SignInResolverFactory
from .factory import boolean
from .factory import create_sign_in_resolver_factory
from .factory import options_schema
from .factory import string
from .factory import string_list

__all__ = [
    "COMMON_SIGN_IN_RESOLVERS",
    "email_local_part_matching_user_entity_name",
    "email_matching_user_entity_annotation",
    "email_matching_user_entity_profile_email",
    "handle_sign_in_user_not_found",
    "load_resolver_factories",
    "preferred_username_matching_user_entity_name",
    "profile_field_matching_user_entity_annotation",
    "username_matching_user_entity_name",
]

log = logging.getLogger(__name__)

DANGEROUS = "dangerouslyAllowSignInWithoutUserInCatalog"
NO_EMAIL = "Login failed, user profile does not contain an email"
NO_USERNAME = "Login failed, user profile does not contain a username"
#: ``joe+work@acme.com`` → ``joe``, ``+work``, ``@acme.com`` (Backstage's ``reEmail``).
_PLUS_ADDRESS = re.compile(r"([^@+\n]+)(\+[^@\n]+)?(@.*)")


def handle_sign_in_user_not_found(
    context: AuthResolverContext,
    error: Exception,
    *,
    user_entity_name: str,
    dangerously_allow_sign_in_without_user_in_catalog: bool = False,
) -> BackstageSignInResult:
    """What a resolver does when its catalog lookup failed (``handleSignInUserNotFound``).

    Errors other than ``NotFoundError`` are raised again. Not found raises
    ``NotFoundError`` with the long hint, unless the dangerous option is on: then a
    token is issued for ``user:default/<user_entity_name>`` owning only itself.
    """
    if not isinstance(error, NotFoundError):
        raise error
    if not dangerously_allow_sign_in_without_user_in_catalog:
        raise NotFoundError(SIGN_IN_FAILED) from error
    ref = stringify_entity_ref(
        {"kind": "User", "namespace": DEFAULT_NAMESPACE, "name": user_entity_name}
    )
    log.warning("signing in %s, who is not in the catalog (%s is set)", ref, DANGEROUS)
    return context.issue_token(TokenParams(claims={"sub": ref, "ent": [ref]}))


def _email(info: SignInInfo) -> str:
    if not info.profile.email:
        raise AuthenticationError(NO_EMAIL)
    return info.profile.email


def _full_profile(info: SignInInfo) -> Mapping[str, Any]:
    """The provider's raw profile: ``result.full_profile`` (OAuth) or the result mapping."""
    profile = getattr(info.result, "full_profile", info.result)
    return profile if isinstance(profile, Mapping) else {}


_DANGEROUS_ONLY = options_schema({DANGEROUS: boolean})


def _create_email_matching_user_entity_profile_email(options: dict[str, Any]) -> SignInResolver:
    dangerous = options.get(DANGEROUS, False)

    def resolve(info: SignInInfo, context: AuthResolverContext) -> BackstageSignInResult:
        email = _email(info)
        try:
            return context.sign_in_with_catalog_user({"filter": {"spec.profile.email": email}})
        except NotFoundError as error:
            match = _PLUS_ADDRESS.fullmatch(email)
            if match is None:
                return handle_sign_in_user_not_found(
                    context,
                    error,
                    user_entity_name=email,
                    dangerously_allow_sign_in_without_user_in_catalog=dangerous,
                )
            plain = match[1] + match[3]
            # Backstage retries even when there was no +tag; that would ask the same again.
            if plain != email:
                try:
                    return context.sign_in_with_catalog_user(
                        {"filter": {"spec.profile.email": plain}}
                    )
                except NotFoundError:
                    pass
            return handle_sign_in_user_not_found(
                context,
                error,
                user_entity_name=plain,
                dangerously_allow_sign_in_without_user_in_catalog=dangerous,
            )

    return resolve


#: ``spec.profile.email`` equals the profile email, retried without a ``+tag``.
email_matching_user_entity_profile_email = create_sign_in_resolver_factory(
    _create_email_matching_user_entity_profile_email, options_schema=_DANGEROUS_ONLY
)


def _create_email_local_part_matching_user_entity_name(options: dict[str, Any]) -> SignInResolver:
    allowed = options.get("allowedDomains")
    allowed_domains = None if allowed is None else {domain.lower() for domain in allowed}
    dangerous = options.get(DANGEROUS, False)

    def resolve(info: SignInInfo, context: AuthResolverContext) -> BackstageSignInResult:
        email = _email(info)
        local_part, _, domain = email.partition("@")
        # Only users of the listed domains: jane@evil.example must not become user:default/jane.
        # Compared without case, as domain names are.
        if allowed_domains is not None and domain.lower() not in allowed_domains:
            raise NotAllowedError("Sign-in user email is not from an allowed domain")
        try:
            return context.sign_in_with_catalog_user({"entityRef": {"name": local_part}})
        except NotFoundError as error:
            return handle_sign_in_user_not_found(
                context,
                error,
                user_entity_name=local_part,
                dangerously_allow_sign_in_without_user_in_catalog=dangerous,
            )

    return resolve


#: The User named like the email's local part, in namespace ``default``.
email_local_part_matching_user_entity_name = create_sign_in_resolver_factory(
    _create_email_local_part_matching_user_entity_name,
    options_schema=options_schema({"allowedDomains": string_list, DANGEROUS: boolean}),
)


def email_matching_user_entity_annotation(
    default_annotation: str | None = None,
) -> SignInResolverFactory:
    """The User whose annotation (``google.com/email``...) equals the profile email.

    With no ``default_annotation`` the ``annotation`` option is required; the
    providers that have one (google, microsoft, okta, gcpIap) pass theirs.
    """
    required = () if default_annotation else ("annotation",)

    def create(options: dict[str, Any]) -> SignInResolver:
        annotation = options.get("annotation") or default_annotation
        dangerous = options.get(DANGEROUS, False)

        def resolve(info: SignInInfo, context: AuthResolverContext) -> BackstageSignInResult:
            email = _email(info)
            try:
                return context.sign_in_with_catalog_user({"annotations": {annotation: email}})
            except NotFoundError as error:
                return handle_sign_in_user_not_found(
                    context,
                    error,
                    user_entity_name=email,
                    dangerously_allow_sign_in_without_user_in_catalog=dangerous,
                )

        return resolve

    schema = options_schema({"annotation": string, DANGEROUS: boolean}, required=required)
    return create_sign_in_resolver_factory(create, options_schema=schema)


def profile_field_matching_user_entity_annotation(
    field: str,
    annotation: str | Callable[[Mapping[str, Any]], str],
    *,
    missing: str,
) -> SignInResolverFactory:
    """The User whose ``annotation`` equals the raw profile's ``field``.

    The shape of Backstage's provider resolvers ``userIdMatchingUserEntityAnnotation``
    (bitbucket, gitlab) and ``usernameMatchingUserEntityAnnotation`` (bitbucket):
    ``ctx.signInWithCatalogUser({annotations: {[annotation]: value}},
    {dangerousEntityRefFallback: {entityRef: {name: value}}})``, the fallback only with
    ``dangerouslyAllowSignInWithoutUserInCatalog``, the one option.

    :param field: the key of ``result.full_profile`` (or of a proxy's result mapping).
    :param annotation: the annotation key, or a function of the raw profile that makes
        it (gitlab's ``<host>/user-id``); it may raise to refuse the profile.
    :param missing: the ``AuthenticationError`` message when ``field`` is empty.
    """

    def create(options: dict[str, Any]) -> SignInResolver:
        dangerous = options.get(DANGEROUS, False)

        def resolve(info: SignInInfo, context: AuthResolverContext) -> BackstageSignInResult:
            profile = _full_profile(info)
            value = profile.get(field)
            if not value:
                raise AuthenticationError(missing)
            key = annotation(profile) if callable(annotation) else annotation
            return context.sign_in_with_catalog_user(
                {"annotations": {key: value}},
                dangerous_entity_ref_fallback={"name": value} if dangerous else None,
            )

        return resolve

    return create_sign_in_resolver_factory(create, options_schema=_DANGEROUS_ONLY)


def _name_matching(*fields: str) -> SignInResolverFactory:
    """A resolver matching the User name to the first of ``fields`` in the raw profile."""

    def create(options: dict[str, Any]) -> SignInResolver:
        dangerous = options.get(DANGEROUS, False)

        def resolve(info: SignInInfo, context: AuthResolverContext) -> BackstageSignInResult:
            profile = _full_profile(info)
            values = [profile.get(field) for field in fields]
            username = next((v for v in values if isinstance(v, str) and v), None)
            if username is None:
                raise AuthenticationError(NO_USERNAME)
            try:
                return context.sign_in_with_catalog_user({"entityRef": {"name": username}})
            except NotFoundError as error:
                return handle_sign_in_user_not_found(
                    context,
                    error,
                    user_entity_name=username,
                    dangerously_allow_sign_in_without_user_in_catalog=dangerous,
                )

        return resolve

    return create_sign_in_resolver_factory(create, options_schema=_DANGEROUS_ONLY)


#: The User named like the profile's ``username`` (else ``preferred_username``).
username_matching_user_entity_name = _name_matching("username", "preferred_username")
#: The User named like the OIDC ``preferred_username`` claim.
preferred_username_matching_user_entity_name = _name_matching("preferred_username")

#: Offered to every provider.
COMMON_SIGN_IN_RESOLVERS: Mapping[str, SignInResolverFactory] = {
    "emailMatchingUserEntityProfileEmail": email_matching_user_entity_profile_email,
    "emailLocalPartMatchingUserEntityName": email_local_part_matching_user_entity_name,
    "emailMatchingUserEntityAnnotation": email_matching_user_entity_annotation(),
}

def load_resolver_factories(
    provider_resolvers: Mapping[str, SignInResolverFactory] | None = None,
) -> dict[str, SignInResolverFactory]:
    """The resolvers a provider's ``signIn.resolvers`` may name.

    The common ones, overridden by the provider module's own
    (:attr:`~wsgiauth.types.ProviderModule.resolvers`), plus entry points
    (``wsgiauth.resolvers``) under names not already taken: a plugin cannot
    silently replace a built-in resolver.
    """
    found = {**COMMON_SIGN_IN_RESOLVERS, **(provider_resolvers or {})}
    for name, factory in entry_point_resolver_factories().items():
        if name in found:
            log.warning("entry point resolver %r ignored: a built-in has that name", name)
            continue
        found[name] = factory
    return found
