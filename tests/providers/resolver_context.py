"""Stand-ins for the resolver context: the catalog look-ups a sign-in resolver makes, recorded."""

from __future__ import annotations

from typing import Any

from wsgiauth.errors import NotFoundError
from wsgiauth.sign_in import BackstageSignInResult
from wsgiauth.sign_in import TokenParams


class CatalogContext:
    """Records the catalog queries; finds the user only when ``found``.

    Not found, a ``dangerous_entity_ref_fallback`` still signs in (``"signed-in"``).
    """

    def __init__(self, *, found: bool = True) -> None:
        self.found = found
        self.queries: list[Any] = []
        self.fallbacks: list[Any] = []

    def sign_in_with_catalog_user(self, query, *, dangerous_entity_ref_fallback=None):
        self.queries.append(query)
        self.fallbacks.append(dangerous_entity_ref_fallback)
        if not self.found and not dangerous_entity_ref_fallback:
            raise NotFoundError("User not found")
        return "signed-in"

    def issue_token(self, params: TokenParams) -> str:
        return "issued"


class AnnotatedUserContext:
    """A resolver context whose catalog holds one user, found by annotation."""

    def __init__(self, annotations: dict[str, str]) -> None:
        self.annotations = annotations
        self.queries: list[Any] = []
        self.issued: list[TokenParams] = []

    def sign_in_with_catalog_user(self, query, *, dangerous_entity_ref_fallback=None):
        self.queries.append(query)
        wanted = query.get("annotations", {})
        if wanted and all(self.annotations.get(k) == v for k, v in wanted.items()):
            return BackstageSignInResult(token="user:default/jane")
        raise NotFoundError("User not found")

    def issue_token(self, params: TokenParams) -> BackstageSignInResult:
        self.issued.append(params)
        return BackstageSignInResult(token=params.claims["sub"])
