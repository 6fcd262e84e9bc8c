"""The seed ledger (where each query stopped, what it paid), seed-to-track edges and the
playlist registry (snapshot IDs), so a restart asks no page already answered."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from runclub_spiders.store.base import StoreBase


class Ledgers(StoreBase):
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
