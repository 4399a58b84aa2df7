"""The legacy portal's own database: a ``users`` table in SQLite, and its setup.

This is the table the portal always had. wsgiauth reads it too, through
``examples/sql_catalog.py``'s :class:`SqlCatalog`, whose schema it matches:
``groups`` is a comma-separated list, and membership of ``admins`` is what the
portal's admin page checks.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing

__all__ = ["USERS", "setup_database"]

#: (username, email, display_name, groups): the portal's users.
USERS = (
    ("alice", "alice@example.com", "Alice Admin", "admins, staff"),
    ("bob", "bob@example.com", "Bob Builder", "staff"),
    ("carol", "carol@example.com", "Carol Contractor", ""),
)


def setup_database(path: str) -> None:
    """Create the ``users`` table in the SQLite file ``path`` and add the users once."""
    with closing(sqlite3.connect(path)) as connection, connection:
        connection.execute(
            "CREATE TABLE IF NOT EXISTS users ("
            " username TEXT PRIMARY KEY, email TEXT, display_name TEXT, groups TEXT)"
        )
        connection.executemany("INSERT OR IGNORE INTO users VALUES (?, ?, ?, ?)", USERS)
