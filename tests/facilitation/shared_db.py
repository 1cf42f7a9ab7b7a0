"""A database that other threads and processes can really share, for the race tests.

SQLite's shared-cache in-memory test database answers a second writer with "database table
is locked" at once instead of waiting, unlike the file database Leakseal runs on (IMMEDIATE
transactions and a busy timeout make writers queue there). So on SQLite the races run on a
file copy of the test database; PostgreSQL's test database is shared as it is.
"""

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.backends.sqlite3.base import DatabaseWrapper as SQLiteWrapper


def on_memory_sqlite() -> bool:
    default = connections[DEFAULT_DB_ALIAS]
    return isinstance(default, SQLiteWrapper) and default.is_in_memory_db()


@contextmanager
def shareable_database(folder: Path) -> Iterator[Path | None]:
    """Within the block, the default database is one every thread and process can open.

    On in-memory SQLite the test database (schema and rows so far) is copied to
    `folder`/leakseal.sqlite3, which is yielded; elsewhere nothing changes and None is
    yielded. Use in `django_db(transaction=True)` tests, whose rows are committed.
    """
    if not on_memory_sqlite():
        yield None
        return
    connection.ensure_connection()
    memory = connection.connection
    path = folder / "leakseal.sqlite3"
    with sqlite3.connect(path) as copy:
        memory.backup(copy)
    copy.close()
    name = connection.settings_dict["NAME"]
    # Closing an in-memory connection would drop the database: set it aside instead.
    connection.connection = None
    connection.settings_dict["NAME"] = str(path)
    try:
        yield path
    finally:
        connection.close()
        connection.settings_dict["NAME"] = name
        connection.connection = memory
