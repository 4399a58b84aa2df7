"""Who may sign in at the fake IdP (users of a catalog file) and which clients may ask.

Users come from a Backstage catalog YAML (the ``User`` entities; groups and other
kinds are skipped), so the IdP offers exactly the people the app's own catalog knows.
Clients come from command-line flags or a small YAML list::

    - client_id: wsgiauth-demo
      client_secret: change-me            # omit for a public client (PKCE only)
      redirect_uris: [http://127.0.0.1:7007/api/auth/oidc/handler/frame]
      post_logout_redirect_uris: [http://127.0.0.1:7007/]
      id_token_signed_response_alg: ES256 # default RS256
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from .discovery import ALGORITHMS

__all__ = ["FakeClient", "FakeUser", "clients_from_yaml", "users_from_catalog"]


@dataclass(frozen=True, slots=True)
class FakeUser:
    """A user the sign-in page offers; ``ref`` (``user:default/jane``) is the ``sub``."""

    ref: str
    name: str
    display_name: str | None = None
    email: str | None = None

    @classmethod
    def from_ref(cls, ref: str, *, email: str | None = None) -> FakeUser:
        """A user named only by its entity ref (``user:ns/name`` or ``name``)."""
        kind, _, rest = ref.rpartition(":")
        namespace, _, name = rest.rpartition("/")
        if kind not in ("", "user") or not name:
            raise ValueError(f"not a user entity ref: {ref!r}")
        return cls(ref=f"user:{namespace or 'default'}/{name}", name=name, email=email)

    def claims(self, scopes: Iterable[str]) -> dict[str, Any]:
        """The userinfo / ID-token claims ``scopes`` release."""
        scopes = set(scopes)
        claims: dict[str, Any] = {"sub": self.ref}
        if "profile" in scopes:
            claims["preferred_username"] = self.name
            claims["name"] = self.display_name or self.name
        if "email" in scopes and self.email:
            claims["email"] = self.email
            claims["email_verified"] = True
        return claims


@dataclass(frozen=True, slots=True)
class FakeClient:
    """A registered relying party. No secret means a public client."""

    client_id: str
    redirect_uris: tuple[str, ...]
    client_secret: str | None = None
    post_logout_redirect_uris: tuple[str, ...] = ()
    id_token_signed_response_alg: str = "RS256"  # noqa: S105 - an algorithm

    def __post_init__(self) -> None:
        if not self.client_id:
            raise ValueError("a client needs a client_id")
        if not self.redirect_uris:
            raise ValueError(f"client {self.client_id!r} needs at least one redirect URI")
        for uri in (*self.redirect_uris, *self.post_logout_redirect_uris):
            parts = urlsplit(uri)
            if parts.scheme not in ("http", "https") or not parts.netloc or parts.fragment:
                raise ValueError(f"client {self.client_id!r}: not an absolute URL: {uri!r}")
        if self.id_token_signed_response_alg not in ALGORITHMS:
            raise ValueError(
                f"client {self.client_id!r}: id_token_signed_response_alg must be one of "
                f"{', '.join(ALGORITHMS)}"
            )


def users_from_catalog(path: str | Path) -> list[FakeUser]:
    """The ``User`` entities of a Backstage catalog YAML file (several documents)."""
    users = []
    with open(path, encoding="utf-8") as file:
        documents = list(yaml.safe_load_all(file))
    for document in documents:
        if not isinstance(document, Mapping) or document.get("kind") != "User":
            continue
        metadata = document.get("metadata") or {}
        profile = (document.get("spec") or {}).get("profile") or {}
        name = metadata.get("name")
        if not isinstance(name, str) or not name:
            raise ValueError(f"{path}: a User without metadata.name")
        namespace = metadata.get("namespace") or "default"
        users.append(
            FakeUser(
                ref=f"user:{namespace}/{name}",
                name=name,
                display_name=profile.get("displayName"),
                email=profile.get("email"),
            )
        )
    if not users:
        raise ValueError(f"{path}: no User entity")
    return users


def clients_from_yaml(path: str | Path) -> list[FakeClient]:
    """The clients of a YAML list (see the module docstring)."""
    with open(path, encoding="utf-8") as file:
        entries = yaml.safe_load(file)
    if not isinstance(entries, list) or not entries:
        raise ValueError(f"{path}: expected a list of clients")
    clients = []
    for entry in entries:
        if not isinstance(entry, Mapping):
            raise ValueError(f"{path}: each client is a mapping")
        unknown = set(entry) - {
            "client_id",
            "client_secret",
            "redirect_uris",
            "post_logout_redirect_uris",
            "id_token_signed_response_alg",
        }
        if unknown:
            raise ValueError(f"{path}: unknown client keys: {', '.join(sorted(unknown))}")
        clients.append(
            FakeClient(
                client_id=str(entry.get("client_id") or ""),
                client_secret=entry.get("client_secret"),
                redirect_uris=tuple(entry.get("redirect_uris") or ()),
                post_logout_redirect_uris=tuple(entry.get("post_logout_redirect_uris") or ()),
                id_token_signed_response_alg=entry.get("id_token_signed_response_alg", "RS256"),
            )
        )
    return clients
