"""The ``Catalog`` protocol: where sign-in resolvers look users up.

Backstage asks its catalog service; wsgiauth asks any object with these two
methods. The embedded default is :class:`~wsgiauth.catalog.yaml_catalog.YamlCatalog`;
an application with its own user table implements the protocol over it
(``examples/sql_catalog.py``). Entities are plain mappings in Backstage's JSON
shape (``kind``, ``metadata``, ``spec``, ``relations``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from typing import Protocol

__all__ = ["Catalog", "Entity"]

#: A Backstage entity as JSON: ``{"kind", "metadata": {...}, "spec": {...}, "relations": [...]}``.
Entity = Mapping[str, Any]


class Catalog(Protocol):
    """Finds User (and Group) entities for sign-in.

    Lookups compare refs, keys and values case-insensitively, as Backstage's
    catalog does (it stores its search values lowercased). Ownership is read
    from each user's ``relations`` (``{"type": "memberOf", "targetRef":
    "group:default/team-a"}``), which the catalog computes from ``spec.memberOf``
    and group ``spec.members``.
    """

    def get_entity_by_ref(self, ref: str) -> Entity | None:
        """The entity named by a full ref (``user:default/jane``), or None."""
        ...

    def find_users(
        self,
        *,
        annotations: Mapping[str, str] | None = None,
        filter: Mapping[str, str | list[str]] | None = None,
    ) -> list[Entity]:
        """Every User entity whose annotations and dotted fields all match.

        :param annotations: ``{"google.com/email": "jane@acme.org"}``.
        :param filter: dotted entity paths, e.g. ``{"spec.profile.email": "jane@acme.org"}``;
            a list value matches any of its items. ``kind`` may be given; only users match.
        """
        ...
