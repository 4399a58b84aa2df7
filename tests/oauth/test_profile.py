"""Backstage's default profile transform (``PassportHelpers.transformProfile``), by branch."""

from __future__ import annotations

from typing import Any

import jwt
import pytest

from wsgiauth.errors import AuthenticationError
from wsgiauth.oauth import ProfileInfo
from wsgiauth.oauth import transform_profile


def unsigned(**claims: Any) -> str:
    return jwt.encode(claims, "not-checked-000000000000000000000", algorithm="HS256")


#: A profile with every field set: the ID token is not needed, nor read.
FULL = {"emails": [{"value": "jane@acme.org"}], "avatarUrl": "https://pic", "displayName": "Jane"}


# -- email -----------------------------------------------------------------------------------


@pytest.mark.parametrize("verified", [True, None])
def test_the_email_is_the_first_of_emails(verified: bool | None) -> None:
    profile = {"emails": [{"value": "jane@acme.org", "verified": verified}, {"value": "j@x.org"}]}
    assert transform_profile(profile, None).email == "jane@acme.org"


def test_a_first_email_marked_unverified_is_dropped_and_not_taken_from_the_id_token() -> None:
    profile = {"emails": [{"value": "jane@acme.org", "verified": False}], "email": "j@x.org"}
    token = unsigned(email="token@acme.org")
    assert transform_profile(profile, token).email is None


@pytest.mark.parametrize("emails", [None, []])
def test_without_emails_the_email_field_is_used(emails: list[Any] | None) -> None:
    assert transform_profile({"emails": emails, "email": "jane@acme.org"}, None).email == (
        "jane@acme.org"
    )


def test_an_email_the_raw_profile_marks_unverified_is_dropped() -> None:
    raw = {"email": "jane@acme.org", "email_verified": False}
    profile = {"emails": [{"value": "jane@acme.org"}], "_json": raw}
    assert transform_profile(profile, unsigned(email="token@acme.org")).email is None
    assert transform_profile({"email": "jane@acme.org", "_json": raw}, None).email is None


def test_the_raw_profile_rejects_only_the_same_email() -> None:
    raw = {"email": "other@acme.org", "email_verified": False}
    profile = {"emails": [{"value": "jane@acme.org"}], "_json": raw}
    assert transform_profile(profile, None).email == "jane@acme.org"
    assert transform_profile({**profile, "_json": ["not", "an", "object"]}, None).email == (
        "jane@acme.org"
    )


@pytest.mark.parametrize("profile", [{"emails": [{"value": ""}]}, {"email": ""}])
def test_an_empty_email_is_no_email(profile: dict[str, Any]) -> None:
    assert transform_profile(profile, None).email is None


# -- picture ---------------------------------------------------------------------------------


def test_the_picture_is_avatar_url_then_the_first_photo_then_photo() -> None:
    photos = [{"value": "https://photo0"}, {"value": "https://photo1"}]
    profile = {"avatarUrl": "https://avatar", "photos": photos, "photo": "https://photo"}
    assert transform_profile(profile, None).picture == "https://avatar"
    assert transform_profile({**profile, "avatarUrl": None}, None).picture == "https://photo0"
    assert transform_profile({**profile, "avatarUrl": "", "photos": []}, None).picture == (
        "https://photo"
    )
    assert transform_profile({}, None).picture is None


# -- display name ----------------------------------------------------------------------------


def test_the_display_name_is_the_first_of_display_name_username_id_that_is_set() -> None:
    profile = {"displayName": "Jane Doe", "username": "jane", "id": "1057"}
    assert transform_profile(profile, None).display_name == "Jane Doe"
    assert transform_profile({**profile, "displayName": None}, None).display_name == "jane"
    assert transform_profile({"id": "1057"}, None).display_name == "1057"
    assert transform_profile({}, None).display_name is None


# -- the ID token ----------------------------------------------------------------------------


def test_what_is_missing_comes_from_the_id_token() -> None:
    token = unsigned(email="jane@acme.org", picture="https://pic", name="Jane From Token")
    assert transform_profile({}, token) == ProfileInfo(
        email="jane@acme.org", display_name="Jane From Token", picture="https://pic"
    )


@pytest.mark.parametrize(
    ("missing", "field", "expected"),
    [
        ("emails", "email", "token@acme.org"),
        ("avatarUrl", "picture", "https://token-pic"),
        ("displayName", "display_name", "Token Name"),
    ],
)
def test_each_missing_field_alone_comes_from_the_id_token(
    missing: str, field: str, expected: str
) -> None:
    token = unsigned(email="token@acme.org", picture="https://token-pic", name="Token Name")
    info = transform_profile({key: v for key, v in FULL.items() if key != missing}, token)
    assert getattr(info, field) == expected
    others = {"email": "jane@acme.org", "picture": "https://pic", "display_name": "Jane"}
    for other, value in others.items():
        if other != field:
            assert getattr(info, other) == value


def test_an_id_token_email_marked_unverified_is_not_used() -> None:
    token = unsigned(email="jane@acme.org", email_verified=False, name="Jane")
    info = transform_profile({}, token)
    assert info.email is None
    assert info.display_name == "Jane"


def test_the_profile_wins_over_the_id_token() -> None:
    token = unsigned(email="token@acme.org", picture="https://token-pic", name="Token Name")
    assert transform_profile(FULL, token) == ProfileInfo(
        email="jane@acme.org", display_name="Jane", picture="https://pic"
    )


def test_an_id_token_without_the_fields_leaves_them_empty() -> None:
    assert transform_profile({}, unsigned(sub="1057")) == ProfileInfo()


def test_an_undecodable_id_token_fails_when_it_is_needed() -> None:
    with pytest.raises(AuthenticationError, match="Failed to parse id token and get profile info"):
        transform_profile({}, "not-a-jwt")


def test_an_undecodable_id_token_is_not_read_when_nothing_is_missing() -> None:
    assert transform_profile(FULL, "not-a-jwt").display_name == "Jane"
