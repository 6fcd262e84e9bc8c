"""The seed ledger (where each query stopped, what it paid), seed-to-track edges and the
playlist registry (snapshot IDs), so a restart asks no page already answered."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from typing import TYPE_CHECKING

from runclub_spiders.seeds import CELL_FAMILY
from runclub_spiders.store.base import StoreBase
from runclub_spiders.store.tracks import GENRE_LEDGER, add_genre_query

if TYPE_CHECKING:
    from runclub_spiders.spotify_objects import AlbumRef


class Ledgers(StoreBase):
    # ---------------------------------------------------------------- seeds
    def seed(self, q: str, kind: str) -> sqlite3.Row | None:
        return self.db.execute("SELECT * FROM seeds WHERE q = ? AND kind = ?",
                               (q, kind)).fetchone()

    def seeds(self, *, answered_order: bool = False) -> list[sqlite3.Row]:
        """Every query's ledger row, by family and query, or in the order the queries were
        first answered."""
        order = "rowid" if answered_order else "family, q, kind"
        return list(self.db.execute(f"SELECT * FROM seeds ORDER BY {order}"))

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
        if (ledger := self.derived.get(GENRE_LEDGER)) is not None:
            add_genre_query(ledger, q, kind)

    def add_edges(self, q: str, kind: str, track_ids: Iterable[tuple[str, int]]) -> None:
        self.db.executemany(
            "INSERT OR IGNORE INTO seed_tracks (q, kind, track_id, position) VALUES (?, ?, ?, ?)",
            [(q, kind, track_id, position) for track_id, position in track_ids])

    def add_artist_hits(self, q: str, kind: str, artist_ids: Iterable[tuple[str, int]]
                        ) -> list[str]:
        """Artists a search returned, with their positions; the IDs new to this query."""
        return [artist_id for artist_id, position in artist_ids if self.db.execute(
            "INSERT OR IGNORE INTO seed_artists (q, kind, artist_id, position) "
            "VALUES (?, ?, ?, ?)", (q, kind, artist_id, position)).rowcount]

    def artist_hits(self) -> list[tuple[str, str]]:
        """``(artist ID, umbrella of the first query that returned it)`` of the artists
        cell queries returned, not yet queued to be listed, in the order first returned."""
        # SQLite takes a bare column (the umbrella) from the row MIN() picked: the first.
        return [(row[0], row[1]) for row in self.db.execute(
            "SELECT sa.artist_id, s.umbrella, MIN(sa.rowid) FROM seed_artists sa JOIN seeds s "
            "ON s.q = sa.q AND s.kind = sa.kind WHERE s.umbrella IS NOT NULL AND s.family = ? "
            "AND NOT EXISTS (SELECT 1 FROM artist_albums aa WHERE aa.artist_id = sa.artist_id) "
            "GROUP BY sa.artist_id ORDER BY 3", (CELL_FAMILY,))]

    def edges(self, track_id: str) -> list[sqlite3.Row]:
        return list(self.db.execute("SELECT q, kind, position FROM seed_tracks WHERE "
                                    "track_id = ? ORDER BY q", (track_id,)))

    def searched_before(self, track_id: str) -> bool:
        """Has any search returned this track before?"""
        return self.db.execute("SELECT 1 FROM seed_tracks WHERE track_id = ? LIMIT 1",
                               (track_id,)).fetchone() is not None

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

    # ---------------------------------------------------------------- cells
    def set_discovery_cell(self, umbrella: str, decade: str, *, found: int,
                           reachable: float | None, stopped: str | None, now: str) -> None:
        """What discovery concluded about a cell (``Frontier``): read by the coverage report
        and ``scrapy catalog-status``."""
        self.db.execute(
            "INSERT INTO discovery_cells (umbrella, decade, found, reachable, stopped, "
            "updated_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (umbrella, decade) DO UPDATE "
            "SET found = excluded.found, reachable = excluded.reachable, "
            "stopped = excluded.stopped, updated_at = excluded.updated_at",
            (umbrella, decade, found, reachable, stopped, now))

    def discovery_cells(self) -> dict[tuple[str, str], sqlite3.Row]:
        """``(umbrella, decade)`` -> row with ``found``, ``reachable`` (estimated reachable
        candidates, NULL while unknown) and ``stopped`` (NULL while discovery spends there,
        else why it stopped: ``exhausted``, ``low_yield``, ``target``)."""
        rows = self.db.execute("SELECT * FROM discovery_cells").fetchall()
        return {(r["umbrella"], r["decade"]): r for r in rows}

    # ---------------------------------------------------------------- album expansion
    def see_album(self, ref: AlbumRef, *, umbrella: str | None, decade: str | None,
                  found_by: str, now: str) -> bool:
        """Register an album found on a track or an artist's list; True when it is new."""
        cursor = self.db.execute(
            "INSERT OR IGNORE INTO albums (id, name, artist_id, album_type, release_date, "
            "release_precision, image_url, total_tracks, umbrella, decade, found_by, "
            "first_seen_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (ref.id, ref.name, ref.artist_id, ref.album_type, ref.release_date,
             ref.release_precision, ref.image_url, ref.total_tracks, umbrella, decade,
             found_by, now))
        return cursor.rowcount > 0

    def discovery_yields(self) -> dict[str, float]:
        """What discovery's requests brought so far, as ``frontier.expansion.Learnt`` reads
        it: new and counted tracks per source, listings answered and what they revealed,
        and ReccoBeats' answers (features, misses)."""
        one = self.db.execute
        result: dict[str, float] = {}
        for source, new, counted in one(
                "SELECT first_source, COUNT(*), SUM(planning_cells IS NOT NULL) FROM tracks "
                "GROUP BY first_source"):
            result[f"{source}_new"], result[f"{source}_counted"] = new, counted or 0
        result["listings"] = one("SELECT COUNT(*) FROM artist_albums WHERE listed IS NOT NULL "
                                 "OR next_offset > 0").fetchone()[0]
        result["listing_album_calls"] = one(
            "SELECT COUNT(*) FROM albums WHERE found_by = 'listing' AND (next_offset > 0 OR "
            "expanded IS NOT NULL)").fetchone()[0]
        result["listing_counted"] = one(
            "SELECT COUNT(*) FROM tracks t JOIN albums a ON a.id = t.album_id WHERE "
            "a.found_by = 'listing' AND t.first_source = 'album' AND t.planning_cells IS NOT "
            "NULL").fetchone()[0]
        result["features"] = one("SELECT COUNT(*) FROM features").fetchone()[0]
        result["misses"] = one("SELECT COUNT(*) FROM tracks WHERE enrich_state = 'miss'"
                               ).fetchone()[0]
        return result

    def albums(self) -> list[sqlite3.Row]:
        """Albums not yet read to the end."""
        return self.db.execute("SELECT * FROM albums WHERE expanded IS NULL ORDER BY id"
                               ).fetchall()

    def album_progress(self, album_id: str, next_offset: int, *, now: str | None) -> None:
        """Where reading an album stopped; ``now`` set when it was read to the end."""
        self.db.execute("UPDATE albums SET next_offset = MAX(next_offset, ?), expanded = ? "
                        "WHERE id = ?", (next_offset, now, album_id))

    def tracks_per_album(self) -> dict[str, int]:
        rows = self.db.execute("SELECT album_id, COUNT(*) FROM tracks WHERE album_id IS NOT "
                               "NULL GROUP BY album_id").fetchall()
        return {album_id: n for album_id, n in rows}

    def albums_per_artist(self) -> dict[str, int]:
        """Albums the store knows per primary album artist, read or not."""
        rows = self.db.execute("SELECT artist_id, COUNT(*) FROM albums WHERE artist_id IS "
                               "NOT NULL GROUP BY artist_id").fetchall()
        return {artist_id: n for artist_id, n in rows}

    def see_artist_listing(self, artist_id: str, umbrella: str | None) -> bool:
        """An artist whose albums are worth listing; True when new."""
        return self.db.execute("INSERT OR IGNORE INTO artist_albums (artist_id, umbrella) "
                               "VALUES (?, ?)", (artist_id, umbrella)).rowcount > 0

    def album(self, album_id: str) -> sqlite3.Row | None:
        return self.db.execute("SELECT * FROM albums WHERE id = ?", (album_id,)).fetchone()

    def artist_listings(self) -> list[sqlite3.Row]:
        """Artists to list, in the order they were found (as a running crawl queues them)."""
        return self.db.execute("SELECT * FROM artist_albums ORDER BY rowid").fetchall()

    def listing_progress(self, artist_id: str, next_offset: int, total: int | None, *,
                         now: str | None) -> None:
        """Where listing an artist's albums stopped; ``now`` set when it was listed fully."""
        self.db.execute("UPDATE artist_albums SET next_offset = MAX(next_offset, ?), "
                        "total = ?, listed = ? WHERE artist_id = ?",
                        (next_offset, total, now, artist_id))

    def solo_cell_votes(self) -> list[tuple[str, str, str]]:
        """``(artist ID, query, umbrella)`` for every cell-query hit (``seeds.CELL_FAMILY``)
        on a track with one artist, then for every artist a cell query returned: the
        umbrella votes album expansion weighs."""
        rows = self.db.execute(
            "SELECT t.artist_ids, s.q, s.umbrella FROM seed_tracks st JOIN seeds s ON "
            "s.q = st.q AND s.kind = st.kind JOIN tracks t ON t.id = st.track_id WHERE "
            "s.umbrella IS NOT NULL AND s.family = ? ORDER BY st.rowid",
            (CELL_FAMILY,)).fetchall()
        votes = []
        for artist_ids, q, umbrella in rows:
            artists = json.loads(artist_ids)
            if len(artists) == 1:
                votes.append((artists[0], q, umbrella))
        return votes + self.cell_artist_hits()

    def cell_artist_hits(self) -> list[tuple[str, str, str]]:
        """``(artist ID, query, umbrella)`` for every artist a cell query returned (its
        genre filter matched the artist itself), in the order they were found."""
        return [tuple(row) for row in self.db.execute(
            "SELECT sa.artist_id, s.q, s.umbrella FROM seed_artists sa JOIN seeds s ON "
            "s.q = sa.q AND s.kind = sa.kind WHERE s.umbrella IS NOT NULL AND s.family = ? "
            "ORDER BY sa.rowid", (CELL_FAMILY,))]

    # ---------------------------------------------------------------- the capability probe
    def probe_results(self) -> list[sqlite3.Row]:
        """The latest probe's findings: ``name``, ``value``, ``detail``, ``probed_at``."""
        return self.db.execute("SELECT name, value, detail, probed_at FROM probe_results "
                               "ORDER BY name").fetchall()

    def save_probe_results(self, rows: list[tuple[str, str, str | None, str | None]]) -> None:
        """Replace the probe's findings with ``rows`` (name, value, detail, probed_at)."""
        with self.transaction():
            self.db.execute("DELETE FROM probe_results")
            self.db.executemany("INSERT INTO probe_results (name, value, detail, probed_at) "
                                "VALUES (?, ?, ?, ?)", rows)
