"""Whole-table reads for the export (``catalog/candidates.py``, ``export/manifest.py``)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from runclub_spiders.store.base import StoreBase


class ExportReads(StoreBase):
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

    def umbrella_edges(self) -> list[sqlite3.Row]:
        """``track_id``, ``umbrella``, ``family``, ``q`` of every search edge whose seed is
        tagged with an umbrella, by track ID then query."""
        return self.db.execute(
            "SELECT st.track_id, s.umbrella, s.family, s.q FROM seed_tracks st JOIN seeds s "
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
