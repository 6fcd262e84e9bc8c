"""ReccoBeats leads (``frontier.leads``): artists' track lists read from ReccoBeats, and the
tracks on them still to confirm with Spotify's ``/tracks/{id}`` (the tracks bucket)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from runclub_spiders.store.base import StoreBase


class Leads(StoreBase):
    def see_recco_artist(self, artist_id: str, umbrella: str) -> bool:
        """An artist whose ReccoBeats track list is worth reading; True when new."""
        return self.db.execute("INSERT OR IGNORE INTO recco_artists (artist_id, umbrella) "
                               "VALUES (?, ?)", (artist_id, umbrella)).rowcount > 0

    def recco_artists(self) -> list[sqlite3.Row]:
        """Artists not yet listed to the end, in the order they were found."""
        return self.db.execute("SELECT * FROM recco_artists WHERE listed IS NULL "
                               "ORDER BY rowid").fetchall()

    def set_recco_ids(self, found: dict[str, str], asked: Iterable[str]) -> None:
        """ReccoBeats' UUID of each artist it knows; '' for the ``asked`` it omitted (an
        unknown artist, never asked again)."""
        for artist_id in asked:
            self.db.execute("UPDATE recco_artists SET recco_id = ?, listed = CASE WHEN ? = '' "
                            "THEN 'unknown' ELSE listed END WHERE artist_id = ?",
                            (found.get(artist_id, ""), found.get(artist_id, ""), artist_id))

    def recco_listing_progress(self, artist_id: str, next_page: int, *,
                               now: str | None) -> None:
        """Where reading an artist's track list stopped; ``now`` set when it ended."""
        self.db.execute("UPDATE recco_artists SET next_page = MAX(next_page, ?), listed = ? "
                        "WHERE artist_id = ?", (next_page, now, artist_id))

    def add_leads(self, rows: Iterable[tuple[str, str, str, str | None, int | None]],
                  now: str) -> set[str]:
        """``(track ID, artist ID, umbrella, ISRC, duration)``; the track IDs that were new
        (a lead already kept, or already ended, is not a lead again)."""
        inserted = set()
        for track_id, artist_id, umbrella, isrc, duration_ms in rows:
            if self.db.execute(
                    "INSERT OR IGNORE INTO leads (track_id, artist_id, umbrella, isrc, "
                    "duration_ms, found_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (track_id, artist_id, umbrella, isrc, duration_ms, now)).rowcount:
                inserted.add(track_id)
        return inserted

    def open_leads(self) -> list[sqlite3.Row]:
        """Leads not yet confirmed or dropped, in the order they were found."""
        return self.db.execute("SELECT * FROM leads WHERE ended IS NULL ORDER BY rowid"
                               ).fetchall()

    def end_lead(self, track_id: str, outcome: str) -> None:
        """``outcome``: confirmed (Spotify answered) | known (stored meanwhile) | gone."""
        self.db.execute("UPDATE leads SET ended = ? WHERE track_id = ? AND ended IS NULL",
                        (outcome, track_id))

    def lead_umbrella(self, track_id: str) -> str | None:
        row = self.db.execute("SELECT umbrella FROM leads WHERE track_id = ?", (track_id,)
                              ).fetchone()
        return row[0] if row else None

    def isrc_stored(self, isrc: str) -> bool:
        return self.db.execute("SELECT 1 FROM tracks WHERE isrc = ? LIMIT 1", (isrc,)
                               ).fetchone() is not None

    def lead_yields(self) -> dict[str, int]:
        """ReccoBeats pages read and the leads they gave; leads confirmed, and of their
        tracks those counted toward a cell."""
        one = self.db.execute
        return {"pages": one("SELECT COALESCE(SUM(next_page), 0) FROM recco_artists"
                             ).fetchone()[0],
                "found": one("SELECT COUNT(*) FROM leads").fetchone()[0],
                "confirmed": one("SELECT COUNT(*) FROM leads WHERE ended = 'confirmed'"
                                 ).fetchone()[0],
                "counted": one("SELECT COUNT(*) FROM tracks WHERE first_source = 'lead' AND "
                               "planning_cells IS NOT NULL").fetchone()[0]}
