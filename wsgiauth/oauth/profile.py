"""Backstage's default profile transform, for providers whose profile has passport's shape.

Read against ``@backstage/plugin-auth-node`` 0.7.8, ``dist/passport/PassportHelpers.cjs.js``
(``PassportHelpers.transformProfile(profile, idToken)``), which the passport-based
provider modules' ``defaultProfileTransform`` calls with ``fullProfile`` and
``session.idToken``. A provider that builds a passport profile (``emails``, ``photos``,
``avatarUrl``, ``displayName``, ``username``, ``id``, ``_json``) gets Backstage's
``ProfileInfo`` from :func:`transform_profile`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jwt

from ..errors import AuthenticationError
from ..types import ProfileInfo

__all__ = ["transform_profile"]


def transform_profile(profile: Mapping[str, Any], id_token: str | None) -> ProfileInfo:
    """The ``ProfileInfo`` of a passport profile and the session's ID token, as Backstage.

    - ``email``: ``emails[0].value``, dropped when ``emails[0].verified`` is false; without
      ``emails``, ``email``; dropped too when ``_json`` has the same ``email`` with
      ``email_verified`` false. An empty email is no email (``None``).
    - ``picture``: ``avatarUrl``, else ``photos[0].value``, else ``photo``.
    - ``display_name``: the first of ``displayName``, ``username``, ``id`` that is set.

    When a field is missing (an email only if none was rejected) and there is an ID
    token, it comes from the token's ``email`` (unless its ``email_verified`` is false),
    ``picture`` and ``name``. The token is read without verification, as Backstage does:
    it comes straight from the token endpoint over TLS (OIDC Core §3.1.3.7).

    :raises AuthenticationError: the ID token is needed and cannot be decoded
        ("Failed to parse id token and get profile info").
    """
    email = picture = None
    rejected = False
    emails = profile.get("emails")
    if isinstance(emails, list) and emails:
        email = emails[0].get("value")
        rejected = emails[0].get("verified") is False
    else:
        email = profile.get("email")
    raw = profile.get("_json")
    if email and isinstance(raw, dict) and raw.get("email") == email:
        rejected = rejected or raw.get("email_verified") is False
    if rejected:
        email = None
    photos = profile.get("photos")
    picture = profile.get("avatarUrl") or (
        photos[0].get("value") if isinstance(photos, list) and photos else profile.get("photo")
    )
    display_name = next(
        (profile[key] for key in ("displayName", "username", "id") if profile.get(key) is not None),
        None,
    )
    if ((not email and not rejected) or not picture or not display_name) and id_token:
        try:
            claims = jwt.decode(id_token, options={"verify_signature": False})
        except jwt.InvalidTokenError as error:
            raise AuthenticationError("Failed to parse id token and get profile info") from error
        if not email and not rejected and claims.get("email_verified") is not False:
            email = claims.get("email") or None
        picture = picture or claims.get("picture") or None
        display_name = display_name or claims.get("name") or None
    return ProfileInfo(email=email or None, display_name=display_name, picture=picture)
