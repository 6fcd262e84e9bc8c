"""What every part of the store shares: the connection and its transactions."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


class StoreBase:
    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self.db = connection
        self.path = path
        # Reads derived from rows that change rarely, kept up to date by the methods that
        # write those rows (this process is the store's only writer: ``store_lock``), and
        # dropped whole when a transaction rolls back.
        self.derived: dict[str, Any] = {}

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        try:
            with _transaction(self.db):
                yield self.db
        except BaseException:
            self.derived.clear()
            raise


@contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    if db.in_transaction:            # nested: the outer transaction commits
        yield
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
