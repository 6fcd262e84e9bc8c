"""The crawl's persistent store: SQLite in WAL mode, upserts keyed by IDs.

It holds the brief's registries so that a second run never asks Spotify or ReccoBeats for
what is already known: the seed ledger (where each query stopped and what it paid), the
playlist registry (snapshot IDs), the track registry (with the enrichment state of every
track, so a crash between discovery and enrichment loses nothing), seed-to-track edges,
artists (Spotify genres and genres inferred from ``genre:`` queries), audio features and
ReccoBeats misses; and the quota ledger (requests per bucket per UTC day, parked buckets), so
a restart never calls a locked bucket.

Every write happens inside a transaction: the file is never left half-written.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runclub_spiders.catalog.isrc import isrc_wins

APPLICATION_ID = 0x52434C42        # "RCLB": tells our store from any other SQLite file
SCHEMA_VERSION = 1
FEATURE_FIELDS = ("acousticness", "danceability", "energy", "instrumentalness", "key",
                  "liveness", "loudness", "mode", "speechiness", "tempo", "valence")

SCHEMA = """
CREATE TABLE IF NOT EXISTS tracks (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    isrc TEXT,
    duration_ms INTEGER NOT NULL,
    explicit INTEGER NOT NULL,
    album_id TEXT,
    album_name TEXT NOT NULL,
    album_type TEXT,
    release_date TEXT,
    release_precision TEXT,
    album_image_url TEXT,
    artist_ids TEXT NOT NULL,            -- JSON list, primary artist first
    artist_names TEXT NOT NULL,          -- JSON list, same order
    is_playable INTEGER,                 -- NULL: unknown (no market given)
    available_markets TEXT,              -- JSON list (extended profile) or NULL
    popularity INTEGER,                  -- Spotify popularity (extended) or NULL
    preview_url TEXT,
    track_number INTEGER,
    disc_number INTEGER,
    first_source TEXT NOT NULL,          -- search | playlist | lookup
    first_query TEXT,
    first_playlist_id TEXT,
    first_seen_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    enrich_state TEXT NOT NULL DEFAULT 'pending',  -- pending | done | miss | skipped
    enrich_reason TEXT,                  -- why skipped (duration, playability, duplicate)
    enrich_retry_after TEXT,             -- a miss may be asked again after this time
    enriched_at TEXT,
    recco_popularity INTEGER,
    recco_countries TEXT,
    recco_fetched_at TEXT,               -- when ReccoBeats /track answered for it
    planning_cells TEXT                  -- JSON [[umbrella, decade], ...] counted at discovery
);
CREATE INDEX IF NOT EXISTS tracks_isrc ON tracks (isrc);
CREATE INDEX IF NOT EXISTS tracks_enrich ON tracks (enrich_state);
CREATE TABLE IF NOT EXISTS artists (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    genres TEXT,                         -- JSON list from Spotify, NULL when never fetched
    inferred_genres TEXT NOT NULL DEFAULT '[]',  -- from genre:"..." queries that found them
    popularity INTEGER,
    image_url TEXT,
    fetched_at TEXT,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS features (
    track_id TEXT PRIMARY KEY,
    recco_id TEXT,
    isrc TEXT,
    acousticness REAL, danceability REAL, energy REAL, instrumentalness REAL, key INTEGER,
    liveness REAL, loudness REAL, mode INTEGER, speechiness REAL, tempo REAL, valence REAL,
    fetched_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS seeds (
    q TEXT NOT NULL,
    kind TEXT NOT NULL,
    family TEXT NOT NULL,
    umbrella TEXT,
    decade TEXT,
    next_offset INTEGER NOT NULL DEFAULT 0,
    total INTEGER,
    exhausted TEXT,                      -- NULL while open; else why it stopped
    requests INTEGER NOT NULL DEFAULT 0,
    new_tracks INTEGER NOT NULL DEFAULT 0,
    known_tracks INTEGER NOT NULL DEFAULT 0,
    low_pages INTEGER NOT NULL DEFAULT 0,  -- consecutive pages below the yield threshold
    last_seen_at TEXT,
    PRIMARY KEY (q, kind)
);
CREATE TABLE IF NOT EXISTS seed_tracks (
    q TEXT NOT NULL,
    kind TEXT NOT NULL,
    track_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    PRIMARY KEY (q, kind, track_id)
);
CREATE TABLE IF NOT EXISTS playlists (
    id TEXT PRIMARY KEY,
    owner TEXT,
    name TEXT,
    snapshot_id TEXT,
    items_total INTEGER,
    first_seen_at TEXT NOT NULL,
    last_processed_at TEXT,
    last_snapshot_processed TEXT,
    next_offset INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS playlist_tracks (
    playlist_id TEXT NOT NULL,
    track_id TEXT NOT NULL,
    added_at TEXT,
    PRIMARY KEY (playlist_id, track_id)
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
-- The quota ledger (downloadermiddlewares/quota.py): requests per quota bucket per UTC day,
-- as they went out, and the buckets that must not be called before ``until``.
CREATE TABLE IF NOT EXISTS quota_days (
    day TEXT NOT NULL,                   -- YYYY-MM-DD, UTC
    bucket TEXT NOT NULL,
    requests INTEGER NOT NULL,
    PRIMARY KEY (day, bucket)
);
CREATE TABLE IF NOT EXISTS quota_parks (
    bucket TEXT PRIMARY KEY,
    until REAL NOT NULL,                 -- epoch seconds
    reason TEXT NOT NULL
);
"""


class StoreError(Exception):
    """The store file cannot be used; the message names it and says how to fix it."""


@dataclass(frozen=True, slots=True)
class TrackRecord:
    """A Spotify track as the store keeps it (built by ``spotify_objects.parse_track``)."""

    id: str
    name: str
    isrc: str | None
    duration_ms: int
    explicit: bool
    album_id: str | None
    album_name: str
    album_type: str | None
    release_date: str | None
    release_precision: str | None
    album_image_url: str | None
    artist_ids: tuple[str, ...]
    artist_names: tuple[str, ...]
    is_playable: bool | None
    available_markets: tuple[str, ...] | None
    popularity: int | None
    preview_url: str | None
    track_number: int | None
    disc_number: int | None


class Store:
    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self.db = connection
        self.path = path

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

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with _transaction(self.db):
            yield self.db

    # ---------------------------------------------------------------- tracks and artists
    def has_track(self, track_id: str) -> bool:
        row = self.db.execute("SELECT 1 FROM tracks WHERE id = ?", (track_id,)).fetchone()
        return row is not None

    def upsert_track(self, track: TrackRecord, *, source: str, now: str,
                     query: str | None = None, playlist_id: str | None = None) -> bool:
        """Insert or refresh a track; returns True when it was new."""
        values = {
            "id": track.id, "name": track.name, "isrc": track.isrc,
            "duration_ms": track.duration_ms, "explicit": int(track.explicit),
            "album_id": track.album_id, "album_name": track.album_name,
            "album_type": track.album_type, "release_date": track.release_date,
            "release_precision": track.release_precision,
            "album_image_url": track.album_image_url,
            "artist_ids": json.dumps(track.artist_ids),
            "artist_names": json.dumps(track.artist_names, ensure_ascii=False),
            "is_playable": None if track.is_playable is None else int(track.is_playable),
            "available_markets": (None if track.available_markets is None
                                  else json.dumps(track.available_markets)),
            "popularity": track.popularity, "preview_url": track.preview_url,
            "track_number": track.track_number, "disc_number": track.disc_number,
        }
        new = not self.has_track(track.id)
        if new:
            values.update(first_source=source, first_query=query, first_playlist_id=playlist_id,
                          first_seen_at=now, updated_at=now)
            columns = ", ".join(values)
            marks = ", ".join(f":{k}" for k in values)
            self.db.execute(f"INSERT INTO tracks ({columns}) VALUES ({marks})", values)
        else:
            # Keep what we knew when the new object lacks it (a later object may be thinner).
            sets = ", ".join(f"{k} = COALESCE(:{k}, {k})" for k in values if k != "id")
            values["updated_at"] = now
            self.db.execute(f"UPDATE tracks SET {sets}, updated_at = :updated_at WHERE id = :id",
                            values)
        for artist_id, name in zip(track.artist_ids, track.artist_names, strict=True):
            self.db.execute(
                "INSERT INTO artists (id, name, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET name = excluded.name", (artist_id, name, now))
        return new

    def set_planning_cells(self, track_id: str, cells: list[tuple[str, str]]) -> None:
        self.db.execute("UPDATE tracks SET planning_cells = ? WHERE id = ?",
                        (json.dumps(cells), track_id))

    def track(self, track_id: str) -> sqlite3.Row | None:
        return self.db.execute("SELECT * FROM tracks WHERE id = ?", (track_id,)).fetchone()

    def planning_cells(self) -> Iterator[str | None]:
        """Each track's ``planning_cells`` (JSON), in ID order."""
        for (cells,) in self.db.execute("SELECT planning_cells FROM tracks ORDER BY id"):
            yield cells

    # ---------------------------------------------------------------- one track per ISRC
    def isrc_competitors(self, track_id: str, isrc: str, min_ms: int, max_ms: int
                         ) -> list[sqlite3.Row]:
        """The tracks with this ISRC that ``track_id`` competes with, itself included: those
        stored no later than it (the store's insertion order; all of them when it is not
        stored), whose stored duration is within ``[min_ms, max_ms]``, that are not known
        unplayable (the cheap filters' checks) and not set aside (``skipped``: never
        enriched, so never worth deferring to). ``id`` and ``release_date``, in ID order.

        Only what was stored before it: a verdict on a track then never changes, so a run
        resumed after an interruption judges a pending track as the first run did."""
        return self.db.execute(
            "SELECT id, release_date FROM tracks WHERE isrc = ? "
            "AND duration_ms BETWEEN ? AND ? AND (is_playable IS NULL OR is_playable != 0) "
            "AND enrich_state != 'skipped' AND rowid <= COALESCE("
            "(SELECT rowid FROM tracks WHERE id = ?), (SELECT MAX(rowid) FROM tracks)) "
            "ORDER BY id", (isrc, min_ms, max_ms, track_id)).fetchall()

    def claim_isrc_count(self, track_id: str, isrc: str | None, min_ms: int, max_ms: int,
                         displaced: Callable[[list], None] | None = None) -> bool:
        """Planning's side of the one ISRC rule (``catalog.isrc``), for a track just stored
        that passes the cheap filters' checks: should it count toward the planner's cells?
        Yes without an ISRC, or when it wins against its competitors (as the cheap filter
        will judge it). A winner displaces the track that held the count: the holder's
        ``planning_cells`` are cleared and handed to ``displaced`` (the planner takes them
        off its counts); the caller then counts the winner with its own cells. So the one
        track that counts for an ISRC is always the winner among those stored, with its own
        cells, whatever order they came in; a recount from the store gives the same counts."""
        if not isrc:
            return True
        if not isrc_wins(track_id, self.isrc_competitors(track_id, isrc, min_ms, max_ms)):
            return False
        row = self.db.execute("SELECT id, planning_cells FROM tracks WHERE isrc = ? AND id != ? "
                              "AND planning_cells IS NOT NULL", (isrc, track_id)).fetchone()
        if row is not None:
            with self.transaction():
                self.db.execute("UPDATE tracks SET planning_cells = NULL WHERE id = ?",
                                (row["id"],))
            if displaced is not None:
                displaced([tuple(cell) for cell in json.loads(row["planning_cells"])])
        return True

    # ---------------------------------------------------------------- export reads
    def track_rows(self, columns: Iterable[str]) -> list[sqlite3.Row]:
        """Every track's ``columns``, in store order (insertion order)."""
        return self.db.execute(f"SELECT {', '.join(columns)} FROM tracks "
                               f"ORDER BY rowid").fetchall()

    def first_query_by_track(self) -> dict[str, str]:
        """Per track: the first (in sort order) seed query that returned it."""
        return dict(self.db.execute("SELECT track_id, MIN(q) FROM seed_tracks "
                                    "GROUP BY track_id").fetchall())

    def first_playlist_by_track(self) -> dict[str, str]:
        """Per track: the smallest ID of the playlists that hold it."""
        return dict(self.db.execute("SELECT track_id, MIN(playlist_id) FROM playlist_tracks "
                                    "GROUP BY track_id").fetchall())

    def tempo_known(self) -> dict[str, bool]:
        """Per track with a features row: does the row have a tempo? (rows without one are
        misses kept for their ReccoBeats ID)"""
        return {track_id: bool(known) for track_id, known in self.db.execute(
            "SELECT track_id, tempo IS NOT NULL FROM features")}

    def spotify_genres(self) -> dict[str, list[str]]:
        """Per artist Spotify gave genres for (extended profile): those genres, as given."""
        return {row["id"]: json.loads(row["genres"]) for row in self.db.execute(
            "SELECT id, genres FROM artists WHERE genres IS NOT NULL")}

    def umbrella_edges(self) -> list[sqlite3.Row]:
        """``track_id``, ``umbrella``, ``family`` of every search edge whose seed is tagged
        with an umbrella, by track ID then query."""
        return self.db.execute(
            "SELECT st.track_id, s.umbrella, s.family FROM seed_tracks st JOIN seeds s "
            "ON s.q = st.q AND s.kind = st.kind WHERE s.umbrella IS NOT NULL "
            "ORDER BY st.track_id, s.q").fetchall()

    def playlist_counts(self) -> dict[str, int]:
        """Playlists seen, read (done, or at least one page of items), and their track
        edges."""
        one = self.db.execute
        return {
            "seen": one("SELECT COUNT(*) FROM playlists").fetchone()[0],
            "read": one("SELECT COUNT(*) FROM playlists WHERE last_processed_at IS NOT NULL "
                        "OR next_offset > 0").fetchone()[0],
            "tracks": one("SELECT COUNT(*) FROM playlist_tracks").fetchone()[0],
        }

    def add_inferred_genre(self, artist_id: str, genre: str) -> None:
        row = self.db.execute("SELECT inferred_genres FROM artists WHERE id = ?",
                              (artist_id,)).fetchone()
        if row is None:
            return
        genres = json.loads(row[0])
        if genre not in genres:
            genres.append(genre)
            self.db.execute("UPDATE artists SET inferred_genres = ? WHERE id = ?",
                            (json.dumps(sorted(genres)), artist_id))

    def set_artist_details(self, artist_id: str, *, genres: list[str] | None,
                           popularity: int | None, image_url: str | None, now: str) -> None:
        self.db.execute(
            "UPDATE artists SET genres = ?, popularity = ?, image_url = ?, fetched_at = ?, "
            "updated_at = ? WHERE id = ?",
            (None if genres is None else json.dumps(genres), popularity, image_url, now, now,
             artist_id))

    def artist(self, artist_id: str) -> sqlite3.Row | None:
        return self.db.execute("SELECT * FROM artists WHERE id = ?", (artist_id,)).fetchone()

    def artists_without_details(self, limit: int) -> list[str]:
        rows = self.db.execute("SELECT id FROM artists WHERE fetched_at IS NULL ORDER BY id "
                               "LIMIT ?", (limit,))
        return [r[0] for r in rows]

    def genres_of(self, artist_ids: Iterable[str]) -> dict[str, tuple[str, ...]]:
        """These artists' genres: Spotify's where it has any, plus inferred ones."""
        ids = sorted(set(artist_ids))
        if not ids:
            return {}
        result = {}
        marks = ",".join("?" * len(ids))
        for row in self.db.execute("SELECT id, genres, inferred_genres FROM artists WHERE id "
                                   f"IN ({marks})", ids):
            result[row["id"]] = artist_genres(row)
        return result

    # ---------------------------------------------------------------- enrichment
    def set_enrich_state(self, track_id: str, state: str, *, reason: str | None = None,
                         retry_after: str | None = None, now: str | None = None) -> None:
        self.db.execute("UPDATE tracks SET enrich_state = ?, enrich_reason = ?, "
                        "enrich_retry_after = ?, enriched_at = ? WHERE id = ?",
                        (state, reason, retry_after, now, track_id))

    def pending_enrichment(self, now: str) -> list[str]:
        """Tracks discovered but not enriched yet, and misses whose retry time has come."""
        rows = self.db.execute(
            "SELECT id FROM tracks WHERE enrich_state = 'pending' OR (enrich_state = 'miss' "
            "AND enrich_retry_after <= ?) ORDER BY first_seen_at, id", (now,))
        return [r[0] for r in rows]

    def save_features(self, track_id: str, row: dict[str, Any], now: str) -> None:
        values = {f: row.get(f) for f in FEATURE_FIELDS}
        self.db.execute(
            f"INSERT INTO features (track_id, recco_id, isrc, {', '.join(FEATURE_FIELDS)}, "
            f"fetched_at) VALUES (:track_id, :recco_id, :isrc, "
            f"{', '.join(':' + f for f in FEATURE_FIELDS)}, :fetched_at) "
            f"ON CONFLICT(track_id) DO UPDATE SET "
            + ", ".join(f"{f} = excluded.{f}" for f in
                        ("recco_id", "isrc", *FEATURE_FIELDS, "fetched_at")),
            {"track_id": track_id, "recco_id": row.get("id"), "isrc": row.get("isrc"),
             **values, "fetched_at": now})
        self.set_enrich_state(track_id, "done", now=now)

    def features(self, track_id: str) -> sqlite3.Row | None:
        return self.db.execute("SELECT * FROM features WHERE track_id = ?",
                               (track_id,)).fetchone()

    def set_recco_track(self, track_id: str, popularity: int | None,
                        countries: list[str] | None, now: str | None = None) -> None:
        self.db.execute("UPDATE tracks SET recco_popularity = ?, recco_countries = ?, "
                        "recco_fetched_at = ? WHERE id = ?",
                        (popularity, None if countries is None else json.dumps(countries), now,
                         track_id))

    # ---------------------------------------------------------------- seeds
    def seed(self, q: str, kind: str) -> sqlite3.Row | None:
        return self.db.execute("SELECT * FROM seeds WHERE q = ? AND kind = ?",
                               (q, kind)).fetchone()

    def seeds(self) -> list[sqlite3.Row]:
        return list(self.db.execute("SELECT * FROM seeds ORDER BY family, q, kind"))

    def record_page(self, *, q: str, kind: str, family: str, umbrella: str | None,
                    decade: str | None, next_offset: int, total: int | None,
                    new: int, known: int, low_page: bool, exhausted: str | None,
                    now: str) -> None:
        self.db.execute(
            "INSERT INTO seeds (q, kind, family, umbrella, decade, next_offset, total, "
            "exhausted, requests, new_tracks, known_tracks, low_pages, last_seen_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?) ON CONFLICT(q, kind) DO UPDATE SET "
            "next_offset = excluded.next_offset, total = excluded.total, "
            "exhausted = excluded.exhausted, requests = requests + 1, "
            "new_tracks = new_tracks + excluded.new_tracks, "
            "known_tracks = known_tracks + excluded.known_tracks, "
            "low_pages = CASE WHEN excluded.low_pages = 1 THEN low_pages + 1 ELSE 0 END, "
            "last_seen_at = excluded.last_seen_at",
            (q, kind, family, umbrella, decade, next_offset, total, exhausted, new, known,
             int(low_page), now))

    def add_edges(self, q: str, kind: str, track_ids: Iterable[tuple[str, int]]) -> None:
        self.db.executemany(
            "INSERT OR IGNORE INTO seed_tracks (q, kind, track_id, position) VALUES (?, ?, ?, ?)",
            [(q, kind, track_id, position) for track_id, position in track_ids])

    def edges(self, track_id: str) -> list[sqlite3.Row]:
        return list(self.db.execute("SELECT q, kind, position FROM seed_tracks WHERE "
                                    "track_id = ? ORDER BY q", (track_id,)))

    # ---------------------------------------------------------------- playlists
    def playlist(self, playlist_id: str) -> sqlite3.Row | None:
        return self.db.execute("SELECT * FROM playlists WHERE id = ?",
                               (playlist_id,)).fetchone()

    def see_playlist(self, playlist_id: str, *, owner: str | None, name: str | None,
                     snapshot_id: str | None, items_total: int | None, now: str) -> None:
        self.db.execute(
            "INSERT INTO playlists (id, owner, name, snapshot_id, items_total, first_seen_at) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET owner = excluded.owner, "
            "name = excluded.name, snapshot_id = excluded.snapshot_id, "
            "items_total = excluded.items_total",
            (playlist_id, owner, name, snapshot_id, items_total, now))

    def add_playlist_tracks(self, playlist_id: str, rows: Iterable[tuple[str, str | None]]
                            ) -> None:
        self.db.executemany("INSERT OR IGNORE INTO playlist_tracks (playlist_id, track_id, "
                            "added_at) VALUES (?, ?, ?)",
                            [(playlist_id, t, a) for t, a in rows])

    def playlist_progress(self, playlist_id: str, next_offset: int) -> None:
        # Never backwards: a late duplicate of an earlier page must not rewind the reading.
        self.db.execute("UPDATE playlists SET next_offset = MAX(next_offset, ?) WHERE id = ?",
                        (next_offset, playlist_id))

    def finish_playlist(self, playlist_id: str, snapshot_id: str | None, now: str, *,
                        processed: int) -> None:
        """Mark a snapshot done; ``next_offset`` keeps how many items were read."""
        self.db.execute("UPDATE playlists SET last_processed_at = ?, "
                        "last_snapshot_processed = ?, next_offset = ? WHERE id = ?",
                        (now, snapshot_id, processed, playlist_id))

    # ---------------------------------------------------------------- meta
    def get_meta(self, key: str, default: Any = None) -> Any:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    def set_meta(self, key: str, value: Any) -> None:
        self.db.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO "
                        "UPDATE SET value = excluded.value", (key, json.dumps(value)))

    def add_run_counts(self, day: str, requests: dict[str, int],
                       totals: dict[str, int]) -> None:
        """At the end of a run, for the manifest: per-bucket requests per UTC day, and
        other counters (``run_totals``), each accumulated across runs."""
        with self.transaction():
            self.set_meta("requests_by_day", add_day_counts(
                self.get_meta("requests_by_day", {}), day, requests))
            previous = self.get_meta("run_totals", {})
            self.set_meta("run_totals", {k: previous.get(k, 0) + totals.get(k, 0)
                                         for k in sorted(previous.keys() | totals.keys())})

    # ---------------------------------------------------------------- quota ledger
    def quota_requests(self, day: str) -> dict[str, int]:
        """Requests per bucket on ``day`` (UTC, ``YYYY-MM-DD``)."""
        return dict(self.db.execute("SELECT bucket, requests FROM quota_days WHERE day = ? "
                                    "ORDER BY bucket", (day,)).fetchall())

    def add_quota_requests(self, day: str, bucket: str, n: int) -> None:
        """Add ``n`` (``-1``: one counted but never sent) to ``bucket``'s count on ``day``."""
        updated = self.db.execute("UPDATE quota_days SET requests = MAX(0, requests + ?) "
                                  "WHERE day = ? AND bucket = ?", (n, day, bucket)).rowcount
        if not updated:
            self.db.execute("INSERT INTO quota_days (day, bucket, requests) VALUES (?, ?, ?)",
                            (day, bucket, max(0, n)))

    def quota_parks(self) -> dict[str, tuple[float, str]]:
        """Every recorded park: bucket -> (until, reason)."""
        return {row[0]: (row[1], row[2]) for row in
                self.db.execute("SELECT bucket, until, reason FROM quota_parks ORDER BY bucket")}

    def set_quota_park(self, bucket: str, until: float, reason: str) -> None:
        self.db.execute("INSERT INTO quota_parks (bucket, until, reason) VALUES (?, ?, ?) "
                        "ON CONFLICT(bucket) DO UPDATE SET until = excluded.until, "
                        "reason = excluded.reason", (bucket, until, reason))

    def clear_quota_park(self, bucket: str) -> None:
        self.db.execute("DELETE FROM quota_parks WHERE bucket = ?", (bucket,))

    def has_quota_rows(self) -> bool:
        return self.db.execute("SELECT EXISTS (SELECT 1 FROM quota_days) OR "
                               "EXISTS (SELECT 1 FROM quota_parks)").fetchone()[0] == 1

    def import_quota(self, days: dict[str, dict[str, int]],
                     parks: dict[str, tuple[float, str]]) -> None:
        """Add a ledger from elsewhere (the JSON file of earlier versions), in one transaction."""
        with self.transaction():
            for day, counts in days.items():
                for bucket, n in counts.items():
                    self.add_quota_requests(day, bucket, n)
            for bucket, (until, reason) in parks.items():
                self.set_quota_park(bucket, until, reason)

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
                           ("playlists", "id"), ("playlist_tracks", "playlist_id, track_id")):
            rows = self.db.execute(f"SELECT * FROM {table} ORDER BY {key}").fetchall()
            result[table] = [tuple(v for k, v in zip(r.keys(), r, strict=True)
                                   if k not in volatile) for r in rows]
        return result


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


def add_day_counts(days: dict[str, dict[str, int]], day: str,
                   counts: dict[str, int]) -> dict[str, dict[str, int]]:
    """``days`` (day -> bucket -> requests) with ``counts`` added to ``day``; a new dict."""
    merged = {d: dict(c) for d, c in days.items()}
    if counts:
        today = merged.setdefault(day, {})
        for bucket, n in counts.items():
            today[bucket] = today.get(bucket, 0) + n
    return merged


def artist_genres(row: sqlite3.Row) -> tuple[str, ...]:
    """An artists row's genres: Spotify's (when it gave any), then the inferred ones."""
    genres = json.loads(row["genres"]) if row["genres"] else []
    return tuple(dict.fromkeys([*genres, *json.loads(row["inferred_genres"] or "[]")]))
