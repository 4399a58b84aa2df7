"""Users and groups for sign-in: the ``Catalog`` protocol, a YAML catalog, the resolver context.

Sign-in resolvers map an identity provider's answer to a User entity of the
catalog; :class:`CatalogAuthResolverContext` is the object they do it through.
"""

from __future__ import annotations

from .context import CatalogAuthResolverContext as CatalogAuthResolverContext
from .context import default_ownership_entity_refs as default_ownership_entity_refs
from .refs import DEFAULT_NAMESPACE as DEFAULT_NAMESPACE
from .refs import EntityRef as EntityRef
from .refs import parse_entity_ref as parse_entity_ref
from .refs import stringify_entity_ref as stringify_entity_ref
from .types import Catalog as Catalog
from .types import Entity as Entity
from .yaml_catalog import YamlCatalog as YamlCatalog

__all__ = [
    "DEFAULT_NAMESPACE",
    "Catalog",
    "CatalogAuthResolverContext",
    "Entity",
    "EntityRef",
    "YamlCatalog",
    "default_ownership_entity_refs",
    "parse_entity_ref",
    "stringify_entity_ref",
]
