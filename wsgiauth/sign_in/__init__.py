"""Sign-in resolvers: from an identity provider's answer to a catalog user's token (spec §10).

Providers read ``signIn.resolvers`` with :func:`read_declarative_sign_in_resolver`
over the names :func:`load_resolver_factories` offers; custom resolvers are
written against :class:`~wsgiauth.types.AuthResolverContext` and made
configurable with :func:`create_sign_in_resolver_factory`.
"""

from __future__ import annotations

from ..types import AuthResolverContext as AuthResolverContext
from ..types import BackstageSignInResult as BackstageSignInResult
from ..types import SignInInfo as SignInInfo
from ..types import SignInResolver as SignInResolver
from ..types import SignInResolverFactory as SignInResolverFactory
from ..types import TokenParams as TokenParams
from .common import COMMON_SIGN_IN_RESOLVERS as COMMON_SIGN_IN_RESOLVERS
from .common import (
    email_local_part_matching_user_entity_name as email_local_part_matching_user_entity_name,
)
from .common import email_matching_user_entity_annotation as email_matching_user_entity_annotation
from .common import (
    email_matching_user_entity_profile_email as email_matching_user_entity_profile_email,
)
from .common import handle_sign_in_user_not_found as handle_sign_in_user_not_found
from .common import load_resolver_factories as load_resolver_factories
from .common import (
    preferred_username_matching_user_entity_name as preferred_username_matching_user_entity_name,
)
from .common import (
    profile_field_matching_user_entity_annotation as profile_field_matching_user_entity_annotation,
)
from .common import username_matching_user_entity_name as username_matching_user_entity_name
from .declarative import ENTRY_POINT_GROUP as ENTRY_POINT_GROUP
from .declarative import SIGN_IN_FAILED as SIGN_IN_FAILED
from .declarative import read_declarative_sign_in_resolver as read_declarative_sign_in_resolver
from .factory import boolean as boolean
from .factory import create_sign_in_resolver_factory as create_sign_in_resolver_factory
from .factory import options_schema as options_schema
from .factory import string as string
from .factory import string_list as string_list
from .identity_response import (
    prepare_backstage_identity_response as prepare_backstage_identity_response,
)

__all__ = [
    "COMMON_SIGN_IN_RESOLVERS",
    "ENTRY_POINT_GROUP",
    "SIGN_IN_FAILED",
    "AuthResolverContext",
    "BackstageSignInResult",
    "SignInInfo",
    "SignInResolver",
    "SignInResolverFactory",
    "TokenParams",
    "boolean",
    "create_sign_in_resolver_factory",
    "email_local_part_matching_user_entity_name",
    "email_matching_user_entity_annotation",
    "email_matching_user_entity_profile_email",
    "handle_sign_in_user_not_found",
    "load_resolver_factories",
    "options_schema",
    "preferred_username_matching_user_entity_name",
    "prepare_backstage_identity_response",
    "profile_field_matching_user_entity_annotation",
    "read_declarative_sign_in_resolver",
    "string",
    "string_list",
    "username_matching_user_entity_name",
]
