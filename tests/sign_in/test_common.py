"""The built-in resolvers over the YAML catalog of tests/files/catalog (spec §10.2)."""

from __future__ import annotations

import pytest

from tests.catalog.fakes import claims_of
from tests.sign_in.conftest import provider_resolvers
from wsgiauth.errors import AuthenticationError
from wsgiauth.errors import ConflictError
from wsgiauth.errors import InputError
from wsgiauth.errors import NotAllowedError
from wsgiauth.errors import NotFoundError
from wsgiauth.oauth.types import OAuthAuthenticatorResult
from wsgiauth.oauth.types import OAuthSession
from wsgiauth.sign_in import COMMON_SIGN_IN_RESOLVERS
from wsgiauth.sign_in import SIGN_IN_FAILED
from wsgiauth.sign_in import profile_field_matching_user_entity_annotation
from wsgiauth.types import ProfileInfo
from wsgiauth.types import SignInInfo

DANGEROUS = {"dangerouslyAllowSignInWithoutUserInCatalog": True}
JANE_ENT = ["user:default/jane", "group:default/team-a", "group:default/team-b"]


def info(email=None, **full_profile):
    result = OAuthAuthenticatorResult(
        full_profile=full_profile, session=OAuthSession(access_token="at")
    )
    return SignInInfo(profile=ProfileInfo(email=email), result=result)


def sign_in(name, options, sign_in_info, context, provider="oidc"):
    resolver = provider_resolvers(provider)[name](options)
    return claims_of(resolver(sign_in_info, context).token)


# -- emailMatchingUserEntityProfileEmail ----------------------------------------------------

PROFILE_EMAIL = "emailMatchingUserEntityProfileEmail"


@pytest.mark.parametrize(
    ("email", "options", "sub", "ent"),
    [
        pytest.param("jane@acme.org", None, "user:default/jane", JANE_ENT, id="exact"),
        pytest.param("JANE@Acme.org", None, "user:default/jane", JANE_ENT, id="any-case"),
        pytest.param(
            "joe+work@acme.org",
            None,
            "user:default/joe",
            ["user:default/joe", "group:default/team-b"],
            id="plus-tag",
        ),
        pytest.param(
            "joe+work@acme.org",
            DANGEROUS,
            "user:default/joe",
            ["user:default/joe", "group:default/team-b"],
            id="plus-tag-real-user-beats-fallback",
        ),
        pytest.param(
            "ghost+x@acme.org",
            DANGEROUS,
            "user:default/ghost@acme.org",
            ["user:default/ghost@acme.org"],
            id="fallback-after-retry-uses-plain-email",
        ),
        pytest.param(
            "Ghost@acme.org",
            DANGEROUS,
            "user:default/ghost@acme.org",
            ["user:default/ghost@acme.org"],
            id="fallback",
        ),
    ],
)
def test_email_matching_user_entity_profile_email(context, email, options, sub, ent):
    claims = sign_in(PROFILE_EMAIL, options, info(email), context)
    assert (claims["sub"], claims["ent"]) == (sub, ent)


@pytest.mark.parametrize(
    ("email", "options", "error", "message"),
    [
        pytest.param(
            None,
            None,
            AuthenticationError,
            "Login failed, user profile does not contain an email",
            id="no-email",
        ),
        pytest.param("ghost@acme.org", None, NotFoundError, SIGN_IN_FAILED, id="not-found"),
        pytest.param(
            "ghost+x@acme.org", None, NotFoundError, SIGN_IN_FAILED, id="not-found-after-retry"
        ),
        pytest.param(
            "shared@acme.org",
            DANGEROUS,
            ConflictError,
            "User lookup resulted in multiple matches",
            id="conflict",
        ),
        pytest.param(
            "shared+x@acme.org",
            DANGEROUS,
            ConflictError,
            "User lookup resulted in multiple matches",
            id="conflict-on-retry-is-not-a-fallback",
        ),
    ],
)
def test_email_matching_user_entity_profile_email_errors(
    context, issuer, email, options, error, message
):
    with pytest.raises(error) as caught:
        sign_in(PROFILE_EMAIL, options, info(email), context)
    assert caught.value.message == message
    assert issuer.issued == []


def test_email_matching_skips_a_retry_that_would_ask_the_same(catalog, issuer):
    from wsgiauth.catalog import CatalogAuthResolverContext

    queries = []

    class Counting(CatalogAuthResolverContext):
        def find_catalog_user(self, query):
            queries.append(query)
            return super().find_catalog_user(query)

    with pytest.raises(NotFoundError):
        sign_in(PROFILE_EMAIL, None, info("ghost@acme.org"), Counting(catalog, issuer))
    assert queries == [{"filter": {"spec.profile.email": "ghost@acme.org"}}]
    queries.clear()
    with pytest.raises(NotFoundError):
        sign_in(PROFILE_EMAIL, None, info("ghost+x@acme.org"), Counting(catalog, issuer))
    assert queries == [
        {"filter": {"spec.profile.email": "ghost+x@acme.org"}},
        {"filter": {"spec.profile.email": "ghost@acme.org"}},
    ]


# -- emailLocalPartMatchingUserEntityName ---------------------------------------------------

LOCAL_PART = "emailLocalPartMatchingUserEntityName"


@pytest.mark.parametrize(
    ("email", "options", "sub"),
    [
        pytest.param("jane@anywhere.example", None, "user:default/jane", id="any-domain"),
        pytest.param("Alice.Smith@acme.org", None, "user:default/alice.smith", id="case"),
        pytest.param(
            "jane@acme.org", {"allowedDomains": ["acme.org"]}, "user:default/jane", id="allowed"
        ),
        pytest.param(
            "jane@ACME.org",
            {"allowedDomains": ["acme.org"]},
            "user:default/jane",
            id="domain-any-case",
        ),
        pytest.param("ghost@acme.org", DANGEROUS, "user:default/ghost", id="fallback"),
    ],
)
def test_email_local_part_matching_user_entity_name(context, email, options, sub):
    assert sign_in(LOCAL_PART, options, info(email), context)["sub"] == sub


@pytest.mark.parametrize(
    ("email", "options", "error", "message"),
    [
        pytest.param(
            "jane@evil.example",
            {"allowedDomains": ["acme.org"]},
            NotAllowedError,
            "Sign-in user email is not from an allowed domain",
            id="domain-not-allowed",
        ),
        pytest.param(
            "jane@evil.example",
            {"allowedDomains": ["acme.org"], **DANGEROUS},
            NotAllowedError,
            "Sign-in user email is not from an allowed domain",
            id="domain-check-beats-fallback",
        ),
        pytest.param(
            "jane@sub.acme.org",
            {"allowedDomains": ["acme.org"]},
            NotAllowedError,
            "Sign-in user email is not from an allowed domain",
            id="subdomain-is-another-domain",
        ),
        pytest.param(
            "jane",
            {"allowedDomains": ["acme.org"]},
            NotAllowedError,
            "Sign-in user email is not from an allowed domain",
            id="no-domain",
        ),
        pytest.param(
            "bob@ops.acme.org", None, NotFoundError, SIGN_IN_FAILED, id="default-namespace-only"
        ),
        pytest.param(
            None,
            None,
            AuthenticationError,
            "Login failed, user profile does not contain an email",
            id="no-email",
        ),
    ],
)
def test_email_local_part_errors(context, issuer, email, options, error, message):
    with pytest.raises(error) as caught:
        sign_in(LOCAL_PART, options, info(email), context)
    assert caught.value.message == message
    assert issuer.issued == []


# -- annotations and usernames --------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "options", "email", "sub"),
    [
        pytest.param(
            "oidc",
            {"annotation": "okta.com/email"},
            "carl@acme.org",
            "user:default/carl",
            id="generic",
        ),
        pytest.param("google", None, "jane@acme.org", "user:default/jane", id="google-default"),
        pytest.param(
            "microsoft", None, "jane.doe@acme.org", "user:default/jane", id="microsoft-any-case"
        ),
        pytest.param("okta", None, "alice@acme.org", "user:default/alice.smith", id="okta"),
        pytest.param(
            "google",
            {"annotation": "okta.com/email"},
            "carl@acme.org",
            "user:default/carl",
            id="override",
        ),
        pytest.param(
            "google", DANGEROUS, "ghost@acme.org", "user:default/ghost@acme.org", id="fallback"
        ),
    ],
)
def test_email_matching_user_entity_annotation(context, provider, options, email, sub):
    claims = sign_in("emailMatchingUserEntityAnnotation", options, info(email), context, provider)
    assert claims["sub"] == sub


def test_generic_annotation_resolver_needs_the_annotation_option():
    with pytest.raises(InputError, match="annotation: required"):
        COMMON_SIGN_IN_RESOLVERS["emailMatchingUserEntityAnnotation"](None)


def test_annotation_not_found(context):
    resolver = provider_resolvers("google")["emailMatchingUserEntityAnnotation"](None)
    with pytest.raises(NotFoundError) as caught:
        resolver(info("carl@acme.org"), context)
    assert caught.value.message == SIGN_IN_FAILED


# -- profile_field_matching_user_entity_annotation -------------------------------------------

USER_ID = profile_field_matching_user_entity_annotation(
    "id", "google.com/user-id", missing="The profile has no id"
)


def test_profile_field_annotation_finds_the_user(context):
    claims = claims_of(USER_ID(None)(info(id="123456789"), context).token)
    assert claims["sub"] == "user:default/jane"
    assert claims["ent"] == JANE_ENT


def test_profile_field_annotation_not_found_and_the_dangerous_fallback(context):
    with pytest.raises(NotFoundError, match="User not found"):
        USER_ID(None)(info(id="999"), context)
    claims = claims_of(USER_ID(DANGEROUS)(info(id="999"), context).token)
    assert (claims["sub"], claims["ent"]) == ("user:default/999", ["user:default/999"])


@pytest.mark.parametrize("full_profile", [{}, {"id": ""}, {"id": None}])
def test_profile_field_annotation_needs_the_field(context, full_profile):
    with pytest.raises(AuthenticationError, match="The profile has no id"):
        USER_ID(None)(info(**full_profile), context)


def test_profile_field_annotation_made_from_the_profile(context):
    def annotation(profile):
        if not profile.get("host"):
            raise AuthenticationError("no host")
        return f"{profile['host']}/user-id"

    resolver = profile_field_matching_user_entity_annotation("id", annotation, missing="no id")
    claims = claims_of(resolver(None)(info(id="123456789", host="google.com"), context).token)
    assert claims["sub"] == "user:default/jane"
    with pytest.raises(AuthenticationError, match="no host"):
        resolver(None)(info(id="123456789"), context)
    with pytest.raises(AuthenticationError, match="no id"):
        resolver(None)(info(host="google.com"), context)


def test_profile_field_annotation_takes_only_the_dangerous_option():
    with pytest.raises(InputError, match="annotation"):
        USER_ID({"annotation": "x"})


@pytest.mark.parametrize(
    ("full_profile", "options", "sub"),
    [
        pytest.param({"username": "joe"}, None, "user:default/joe", id="username"),
        pytest.param(
            {"preferred_username": "Carl"}, None, "user:default/carl", id="preferred_username"
        ),
        pytest.param(
            {"username": "joe", "preferred_username": "carl"},
            None,
            "user:default/joe",
            id="username-first",
        ),
        pytest.param({"username": "ghost"}, DANGEROUS, "user:default/ghost", id="fallback"),
    ],
)
def test_username_matching_user_entity_name(context, full_profile, options, sub):
    claims = sign_in(
        "usernameMatchingUserEntityName", options, info(**full_profile), context, "oauth2"
    )
    assert claims["sub"] == sub


def test_username_from_a_proxy_result_mapping(context):
    resolver = provider_resolvers("oauth2")["usernameMatchingUserEntityName"](None)
    sign_in_info = SignInInfo(profile=ProfileInfo(), result={"username": "joe"})
    assert claims_of(resolver(sign_in_info, context).token)["sub"] == "user:default/joe"


@pytest.mark.parametrize(
    "full_profile",
    [
        pytest.param({}, id="absent"),
        pytest.param({"username": ""}, id="empty"),
        pytest.param({"username": 7}, id="number"),
    ],
)
def test_username_missing(context, full_profile):
    with pytest.raises(AuthenticationError, match="does not contain a username"):
        sign_in("usernameMatchingUserEntityName", None, info(**full_profile), context, "oauth2")


def test_oidc_preferred_username(context):
    claims = sign_in(
        "preferredUsernameMatchingUserEntityName", None, info(preferred_username="jane"), context
    )
    assert claims["ent"] == JANE_ENT
    with pytest.raises(AuthenticationError):
        sign_in("preferredUsernameMatchingUserEntityName", None, info(username="jane"), context)


# -- what each provider offers --------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "names"),
    [
        pytest.param(
            "oidc",
            {
                "emailMatchingUserEntityProfileEmail",
                "emailLocalPartMatchingUserEntityName",
                "emailMatchingUserEntityAnnotation",
                "preferredUsernameMatchingUserEntityName",
            },
            id="oidc",
        ),
        pytest.param(
            "oauth2",
            {
                "emailMatchingUserEntityProfileEmail",
                "emailLocalPartMatchingUserEntityName",
                "emailMatchingUserEntityAnnotation",
                "usernameMatchingUserEntityName",
            },
            id="oauth2",
        ),
        pytest.param("someone-else", set(COMMON_SIGN_IN_RESOLVERS), id="common-only"),
    ],
)
def test_provider_resolvers_add_to_the_common_ones(provider, names):
    assert set(provider_resolvers(provider)) == names


def test_oidc_aliases_are_the_common_resolvers():
    oidc = provider_resolvers("oidc")
    for name in ("emailMatchingUserEntityProfileEmail", "emailLocalPartMatchingUserEntityName"):
        assert oidc[name] is COMMON_SIGN_IN_RESOLVERS[name]
