"""A Catalog over an application's own user table: the pattern to copy.

Many applications already have a ``users`` table and no wish to keep a
Backstage YAML catalog beside it. wsgiauth only needs an object with the two
methods of :class:`wsgiauth.catalog.Catalog`; this one reads::

    CREATE TABLE users (
        username     TEXT PRIMARY KEY,   -- the entity name: user:default/<username>
        email        TEXT,               -- matched by emailMatchingUserEntityProfileEmail
        display_name TEXT,
        groups       TEXT                -- "team-a, admins": the token's ownership refs
    );

and shapes each row as a Backstage User entity, with the ``memberOf``
relations that ownership is read from. Wire it in place of the YAML catalog::

    catalog = SqlCatalog(lambda: sqlite3.connect("app.db"))
    context = CatalogAuthResolverContext(catalog, token_factory)

It uses sqlite3's ``?`` placeholders; for another DB-API driver change
``PLACEHOLDER`` (``%s`` for psycopg). Lookups ignore case, as Backstage's
catalog does.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from collections.abc import Mapping
from contextlib import closing
from typing import Any

from wsgiauth.catalog import parse_entity_ref
from wsgiauth.errors import InputError

__all__ = ["SqlCatalog"]

PLACEHOLDER = "?"
#: Entity fields a filter may name, and the column each one is.
COLUMNS = {
    "metadata.name": "username",
    "spec.profile.email": "email",
    "spec.profile.displayname": "display_name",
}
_TABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class SqlCatalog:
    """A :class:`wsgiauth.catalog.Catalog` over ``users(username, email, display_name, groups)``.

    :param connection_factory: opens a new DB-API connection; it is closed after each lookup.
    :param namespace: the namespace every user and group is in.
    :param table: the table name (an identifier, checked).
    """

    def __init__(
        self,
        connection_factory: Callable[[], sqlite3.Connection],
        *,
        namespace: str = "default",
        table: str = "users",
    ) -> None:
        if not _TABLE.fullmatch(table):
            raise ValueError(f"not a table name: {table!r}")
        self.connection_factory = connection_factory
        self.namespace = namespace.lower()
        self.table = table

    def _select(self, where: str = "", params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        sql = f"SELECT username, email, display_name, groups FROM {self.table}"  # noqa: S608 - checked identifier
        with closing(self.connection_factory()) as connection:
            rows = connection.execute(f"{sql} {where} ORDER BY username", params).fetchall()
        return [self._entity(*row) for row in rows]

    def _entity(
        self, username: str, email: str | None, display_name: str | None, groups: str | None
    ) -> dict[str, Any]:
        """A row as a Backstage User entity, with ``memberOf`` relations to its groups."""
        names = [name for name in re.split(r"[\s,]+", groups or "") if name]
        profile = {"email": email, "displayName": display_name}
        return {
            "apiVersion": "backstage.io/v1alpha1",
            "kind": "User",
            "metadata": {"name": username, "namespace": self.namespace},
            "spec": {
                "profile": {key: value for key, value in profile.items() if value},
                "memberOf": names,
            },
            "relations": [
                {"type": "memberOf", "targetRef": f"group:{self.namespace}/{name.lower()}"}
                for name in dict.fromkeys(names)
            ],
        }

    def get_entity_by_ref(self, ref: str) -> Mapping[str, Any] | None:
        """The user named by ``ref``; groups exist only as refs here, so they give None."""
        try:
            parsed = parse_entity_ref(ref)
        except InputError:
            return None
        if parsed.kind.lower() != "user" or parsed.namespace.lower() != self.namespace:
            return None
        found = self._select(f"WHERE lower(username) = lower({PLACEHOLDER})", (parsed.name,))
        return found[0] if found else None

    def find_users(
        self,
        *,
        annotations: Mapping[str, str] | None = None,
        filter: Mapping[str, str | list[str]] | None = None,
    ) -> list[Mapping[str, Any]]:
        """Users whose columns match ``filter``; the table has no annotations, so those match none.

        A filter on a field the table lacks matches no one, as in Backstage's catalog.
        """
        if annotations:
            return []
        clauses: list[str] = []
        params: list[str] = []
        groups: list[str] | None = None
        for key, value in (filter or {}).items():
            values = [str(item).lower() for item in (value if isinstance(value, list) else [value])]
            field = key.lower()
            if field == "kind":
                if "user" not in values:
                    return []
            elif field == "metadata.namespace":
                if self.namespace not in values:
                    return []
            elif field in ("spec.memberof", "relations.memberof"):
                groups = values
            elif field in COLUMNS:
                marks = ", ".join(PLACEHOLDER for _ in values)
                clauses.append(f"lower({COLUMNS[field]}) IN ({marks})")
                params.extend(values)
            else:
                return []
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        users = self._select(where, tuple(params))
        if groups is not None:
            users = [user for user in users if self._in_any(user, groups)]
        return list(users)

    def _in_any(self, user: Mapping[str, Any], groups: list[str]) -> bool:
        """Whether ``user`` is in one of ``groups`` (names or ``group:ns/name`` refs)."""
        mine = {relation["targetRef"] for relation in user["relations"]}
        mine |= {name.lower() for name in user["spec"]["memberOf"]}
        return any(group in mine for group in groups)
