"""The crawl's persistent store: SQLite in WAL mode, upserts keyed by IDs.

It holds the brief's registries so that a second run never asks Spotify or ReccoBeats for
what is already known: the seed ledger (where each query stopped and what it paid), the
playlist registry (snapshot IDs), the track registry (with the enrichment state of every
track, so a crash between discovery and enrichment loses nothing), seed-to-track edges,
artists and the evidence of their genres (``genre_evidence``), audio features and
ReccoBeats misses; and the quota ledger (requests per bucket per UTC day and per hour,
parked buckets), so
a restart never calls a locked bucket.

Every write happens inside a transaction: the file is never left half-written.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from runclub_spiders.store.base import _transaction
from runclub_spiders.store.leads import Leads
from runclub_spiders.store.ledgers import Ledgers
from runclub_spiders.store.opendata import OpenData
from runclub_spiders.store.quota import QuotaLedger, add_day_counts
from runclub_spiders.store.reads import ExportReads
from runclub_spiders.store.schema import (
    APPLICATION_ID,
    FEATURE_FIELDS,
    SCHEMA,
    SCHEMA_VERSION,
    StoreError,
    TrackRecord,
)
from runclub_spiders.store.tracks import Tracks, artist_genres

__all__ = ["FEATURE_FIELDS", "SCHEMA_VERSION", "Store", "StoreError", "TrackRecord",
           "add_day_counts", "artist_genres"]


class Store(Tracks, Ledgers, Leads, QuotaLedger, ExportReads, OpenData):
    """The crawl store: one SQLite connection; each concern's methods in its own part."""

    # ---------------------------------------------------------------- opening
    @classmethod
    def open(cls, path: str | Path) -> Store:
        path = Path(path)
        existed = path.exists() and path.stat().st_size > 0
        if existed:
            cls.check(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA foreign_keys=ON")
            # Idempotent DDL: an interrupted first open is completed by the next one.
            db.executescript(SCHEMA)
            # Stamped once: reopening an unchanged store leaves its bytes unchanged.
            stamped = (db.execute("PRAGMA application_id").fetchone()[0],
                       db.execute("PRAGMA user_version").fetchone()[0])
            if stamped != (APPLICATION_ID, SCHEMA_VERSION):
                with _transaction(db):
                    db.execute(f"PRAGMA application_id={APPLICATION_ID}")
                    db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{path} cannot be opened as the crawl store ({exc}); move it "
                             f"aside and run again") from None
        return cls(db, path)

    @staticmethod
    def check(path: str | Path) -> None:
        """Refuse a corrupted or foreign SQLite file without writing to it."""
        path = Path(path)
        try:
            db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            try:
                app_id = db.execute("PRAGMA application_id").fetchone()[0]
                version = db.execute("PRAGMA user_version").fetchone()[0]
                integrity = db.execute("PRAGMA quick_check").fetchall()
            finally:
                db.close()
        except sqlite3.DatabaseError:
            raise StoreError(f"{path} is not a readable SQLite file (corrupted?); move it aside "
                             f"to start a new store, or restore it from a backup") from None
        if [tuple(row) for row in integrity] != [("ok",)]:
            raise StoreError(f"{path} failed SQLite's integrity check (corrupted); move it aside "
                             f"to start a new store, or restore it from a backup")
        if app_id != APPLICATION_ID:
            raise StoreError(f"{path} is an SQLite file of another application; point "
                             f"CATALOG_STORE_PATH elsewhere or move the file aside")
        if version > SCHEMA_VERSION:
            raise StoreError(f"{path} was written by a newer runclub-spiders (schema {version}); "
                             f"upgrade, or point CATALOG_STORE_PATH elsewhere")

    def close(self) -> None:
        self.db.close()

    # ---------------------------------------------------------------- summaries
    def counts(self) -> dict[str, int]:
        one = self.db.execute
        return {
            "tracks": one("SELECT COUNT(*) FROM tracks").fetchone()[0],
            "artists": one("SELECT COUNT(*) FROM artists").fetchone()[0],
            "features": one("SELECT COUNT(*) FROM features").fetchone()[0],
            "pending": one("SELECT COUNT(*) FROM tracks WHERE enrich_state = 'pending'"
                           ).fetchone()[0],
            "misses": one("SELECT COUNT(*) FROM tracks WHERE enrich_state = 'miss'"
                          ).fetchone()[0],
            "seeds": one("SELECT COUNT(*) FROM seeds").fetchone()[0],
            "playlists": one("SELECT COUNT(*) FROM playlists").fetchone()[0],
        }

    def dump(self) -> dict[str, list[tuple]]:
        """Every table's rows in key order, without timestamps: equal dumps, equal stores."""
        volatile = {"first_seen_at", "updated_at", "enriched_at", "fetched_at", "last_seen_at",
                    "last_processed_at", "enrich_retry_after", "recco_fetched_at"}
        result = {}
        for table, key in (("tracks", "id"), ("artists", "id"), ("features", "track_id"),
                           ("seeds", "q, kind"), ("seed_tracks", "q, kind, track_id"),
                           ("seed_artists", "q, kind, artist_id"),
                           ("playlists", "id"), ("playlist_tracks", "playlist_id, track_id")):
            rows = self.db.execute(f"SELECT * FROM {table} ORDER BY {key}").fetchall()
            result[table] = [tuple(v for k, v in zip(r.keys(), r, strict=True)
                                   if k not in volatile) for r in rows]
        return result
