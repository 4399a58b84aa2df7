"""The resolver context over a catalog (Backstage ``CatalogAuthResolverContext``, spec §10.3).

Sign-in resolvers get this object as their second argument: it is how a
resolver finds the catalog user that an identity provider's answer names,
works out what that user owns, and issues the identity token. It is public
API for custom resolvers, so its methods and messages are Backstage's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from collections.abc import Mapping
from typing import TYPE_CHECKING
from typing import Any

from ..errors import ConflictError
from ..errors import InputError
from ..errors import NotFoundError
from ..types import BackstageSignInResult
from ..types import TokenParams
from .refs import DEFAULT_NAMESPACE
from .refs import normal_entity_ref
from .refs import parse_entity_ref
from .refs import stringify_entity_ref

if TYPE_CHECKING:
    from ..identity.types import TokenIssuer
    from ..identity.types import UserInfoStore
    from .types import Catalog
    from .types import Entity

__all__ = ["CatalogAuthResolverContext", "default_ownership_entity_refs"]

log = logging.getLogger(__name__)


def default_ownership_entity_refs(entity: Mapping[str, Any]) -> list[str]:
    """The user's own ref, then every group it is directly a ``memberOf``.

    Not transitive: membership of a parent group does not make its children
    members (Backstage ``getDefaultOwnershipEntityRefs``).
    """
    refs = [stringify_entity_ref(entity)]
    for relation in entity.get("relations") or ():
        if not isinstance(relation, Mapping) or relation.get("type") != "memberOf":
            continue
        target = relation.get("targetRef")
        # Lowercased here too: a custom catalog may not normalise its refs.
        if isinstance(target, str) and target.lower().startswith("group:"):
            refs.append(target.lower())
    return list(dict.fromkeys(refs))


def _filters(query: Any) -> list[dict[str, Any]]:
    """``{filter}`` as a list of filters (any matches), each restricted to users by default."""
    filters = query if isinstance(query, list) else [query]
    out = []
    for item in filters:
        if not isinstance(item, Mapping):
            raise InputError("Invalid user lookup query, filter must be an object")
        item = dict(item)
        if not any(key.lower() == "kind" for key in item):
            item["kind"] = "user"
        out.append(item)
    return out


class CatalogAuthResolverContext:
    """An :class:`~wsgiauth.types.AuthResolverContext` over a :class:`Catalog`.

    :param ownership_resolver: replaces :func:`default_ownership_entity_refs`
        (Backstage's ``AuthOwnershipResolver``), e.g. to add parent groups.
    :param user_info_store: where the claims of each issued token are kept for
        ``/v1/userinfo``, when the token issuer does not keep them itself.
    """

    def __init__(
        self,
        catalog: Catalog,
        token_issuer: TokenIssuer,
        *,
        ownership_resolver: Callable[[Mapping[str, Any]], list[str]] | None = None,
        user_info_store: UserInfoStore | None = None,
    ) -> None:
        self.catalog = catalog
        self.token_issuer = token_issuer
        self.ownership_resolver = ownership_resolver or default_ownership_entity_refs
        self.user_info_store = user_info_store

    def issue_token(self, params: TokenParams) -> BackstageSignInResult:
        """Issue a token for ``params.claims``; ``ent`` defaults to ``[sub]``."""
        claims = dict(params.claims)
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub:
            raise InputError("Token claims must include a subject (sub)")
        claims = {"sub": sub, "ent": claims.get("ent", [sub]), **claims}
        if claims["ent"] is None:
            claims["ent"] = [sub]
        token = self.token_issuer.issue_token(TokenParams(claims=claims))
        if self.user_info_store is not None:
            self.user_info_store.save_user_info(sub, claims)
        return BackstageSignInResult(token=token)

    def find_catalog_user(self, query: Mapping[str, Any]) -> Entity:
        """The one entity matching ``{"entityRef"}``, ``{"annotations"}`` or ``{"filter"}``.

        ``entityRef`` is a string or ``{kind?, namespace?, name}``, kind ``User`` and
        namespace ``default`` by default.

        :raises NotFoundError: "User not found".
        :raises ConflictError: "User lookup resulted in multiple matches".
        """
        found: list[Entity]
        if "annotations" in query:
            annotations = query["annotations"]
            if not isinstance(annotations, Mapping):
                raise InputError("Invalid user lookup query, annotations must be an object")
            found = self.catalog.find_users(annotations=annotations)
        elif "entityRef" in query:
            wanted = query["entityRef"]
            key = (
                normal_entity_ref(wanted, default_kind="User")
                if isinstance(wanted, str)
                else stringify_entity_ref(parse_entity_ref(wanted, default_kind="User"))
            )
            entity = self.catalog.get_entity_by_ref(key)
            found = [entity] if entity is not None else []
        elif "filter" in query:
            found = []
            seen: set[str] = set()
            for item in _filters(query["filter"]):
                for entity in self.catalog.find_users(filter=item):
                    key = stringify_entity_ref(entity)
                    if key not in seen:
                        seen.add(key)
                        found.append(entity)
        else:
            raise InputError("Invalid user lookup query")
        if len(found) > 1:
            raise ConflictError("User lookup resulted in multiple matches")
        if not found:
            raise NotFoundError("User not found")
        return found[0]

    def sign_in_with_catalog_user(
        self,
        query: Mapping[str, Any],
        *,
        dangerous_entity_ref_fallback: str | Mapping[str, str] | None = None,
    ) -> BackstageSignInResult:
        """Find the user, resolve ownership and issue a token with ``sub`` = the user's ref.

        :param dangerous_entity_ref_fallback: a ref (or ``{kind?, namespace?, name}``,
            or ``{"entityRef": ...}``) to sign in as, with ``ent`` = that ref alone, when
            the catalog has no such user. Any other lookup error still fails.
        """
        try:
            entity = self.find_catalog_user(query)
        except NotFoundError:
            if not dangerous_entity_ref_fallback:
                raise
            fallback: Any = dangerous_entity_ref_fallback
            if isinstance(fallback, Mapping) and "entityRef" in fallback:
                fallback = fallback["entityRef"]
            ref = stringify_entity_ref(
                parse_entity_ref(fallback, default_kind="User", default_namespace=DEFAULT_NAMESPACE)
            )
            log.warning("signing in %s without a catalog user (dangerous fallback)", ref)
            return self.issue_token(TokenParams(claims={"sub": ref, "ent": [ref]}))
        ownership = self.resolve_ownership_entity_refs(entity)
        return self.issue_token(
            TokenParams(claims={"sub": stringify_entity_ref(entity), "ent": ownership})
        )

    def resolve_ownership_entity_refs(self, entity: Mapping[str, Any]) -> list[str]:
        """The refs a token for ``entity`` carries in ``ent``."""
        return list(self.ownership_resolver(entity))
