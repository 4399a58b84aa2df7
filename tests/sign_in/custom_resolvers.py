"""Custom resolvers that tests name by dotted path and entry point."""

from __future__ import annotations

from wsgiauth.errors import ConflictError
from wsgiauth.errors import NotFoundError
from wsgiauth.sign_in import create_sign_in_resolver_factory
from wsgiauth.sign_in import options_schema
from wsgiauth.sign_in.factory import string
from wsgiauth.types import TokenParams

calls: list[str] = []


def by_display_name(info, context):
    """A plain resolver: the user named like the profile's display name."""
    calls.append("by_display_name")
    return context.sign_in_with_catalog_user({"entityRef": {"name": info.profile.display_name}})


def never_found(info, context):
    calls.append("never_found")
    raise NotFoundError("not here")


def conflicted(info, context):
    calls.append("conflicted")
    raise ConflictError("two of them")


def fixed_user(options):
    """A hand-written factory (no schema): signs everyone in as ``options['ref']``."""
    ref = (options or {}).get("ref", "user:default/fixed")

    def resolve(info, context):
        calls.append("fixed_user")
        return context.issue_token(TokenParams(claims={"sub": ref}))

    return resolve


class Namespace:
    tenant_user = create_sign_in_resolver_factory(
        lambda options: (
            lambda info, context: context.issue_token(
                TokenParams(claims={"sub": f"user:{options['tenant']}/someone"})
            )
        ),
        options_schema=options_schema({"tenant": string}, required=("tenant",)),
    )


not_callable = 42
