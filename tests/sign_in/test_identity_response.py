"""prepare_backstage_identity_response: the backstageIdentity of a sign-in (spec §6.1)."""

from __future__ import annotations

import jwt
import pytest

from wsgiauth.errors import InputError
from wsgiauth.sign_in import prepare_backstage_identity_response
from wsgiauth.types import BackstageSignInResult

NOW = 1_700_000_000.0


def token(**claims):
    return jwt.encode(claims, "k" * 32, algorithm="HS256")


def prepare(tok):
    return prepare_backstage_identity_response(BackstageSignInResult(token=tok), clock=lambda: NOW)


def test_identity_from_the_token_claims():
    tok = token(
        sub="user:default/jane", ent=["user:default/jane", "group:default/a"], exp=NOW + 3600
    )
    response = prepare(tok)
    assert response.to_json() == {
        "token": tok,
        "identity": {
            "type": "user",
            "userEntityRef": "user:default/jane",
            "ownershipEntityRefs": ["user:default/jane", "group:default/a"],
        },
        "expiresInSeconds": 3600,
    }


@pytest.mark.parametrize(
    ("exp", "expected"),
    [
        pytest.param(NOW + 3599.4, 3599, id="rounds-down"),
        pytest.param(NOW + 3599.6, 3600, id="rounds-up"),
        pytest.param(NOW + 0.2, 0, id="about-now"),
        pytest.param(None, None, id="no-exp"),
        pytest.param(0, None, id="zero-exp-is-none"),
    ],
)
def test_expires_in_seconds(exp, expected):
    claims = (
        {"sub": "user:default/jane"} if exp is None else {"sub": "user:default/jane", "exp": exp}
    )
    assert prepare(token(**claims)).expires_in_seconds == expected


def test_the_signature_is_not_checked_and_expired_is_judged_by_the_clock():
    # Signed with a key nobody here knows: the response does not verify, the services do.
    tok = jwt.encode({"sub": "user:default/x", "exp": NOW + 10}, "other" * 8, algorithm="HS256")
    assert prepare(tok).user_entity_ref == "user:default/x"


def test_missing_ent_is_empty():
    assert prepare(token(sub="user:default/jane")).ownership_entity_refs == ()


@pytest.mark.parametrize(
    ("tok", "message"),
    [
        pytest.param("", "Identity response must return a token", id="no-token"),
        pytest.param(
            token(ent=[]), "Identity response must return a token with subject claim", id="no-sub"
        ),
        pytest.param(
            token(sub=""),
            "Identity response must return a token with subject claim",
            id="empty-sub",
        ),
        pytest.param(
            token(sub="user:default/jane", exp=NOW - 1),
            "Identity response must not return an expired token",
            id="expired",
        ),
        pytest.param("not-a-jwt", "Identity response must return a JWT", id="garbage"),
        pytest.param(
            "e30." + "W1tb" * 20_000 + ".sig",  # a payload of 60,000 '[': too deep for json
            "Identity response must return a JWT",
            id="nested-payload",
        ),
        pytest.param(
            token(sub="u", ent="group:default/a"), "list of ownership refs", id="ent-not-a-list"
        ),
    ],
)
def test_errors(tok, message):
    with pytest.raises(InputError) as info:
        prepare(tok)
    assert message in info.value.message
