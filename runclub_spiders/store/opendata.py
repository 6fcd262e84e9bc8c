"""What the open-data sources answered (``wikidata_artists``, ``musicbrainz_isrcs``), and what
is still to ask: the artists and ISRCs of enriched tracks that neither table holds.

An answer is kept for good, ``none`` included (ISRC and Wikidata coverage change slowly and
MetaBrainz asks clients not to repeat useless lookups), so a later run never asks again what
the store knows. What a run could not ask (a source down, parked, or the run stopped first) is
simply absent from the table: the next run finds it with ``wikidata_to_ask`` /
``musicbrainz_to_ask`` and asks it first.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from runclub_spiders.opendata import musicbrainz, wikidata
from runclub_spiders.store.base import StoreBase

# Tracks worth an open-data question: enriched ones (features known; the export needs them,
# apart from a 1% allowance) with their ISRC, which an album track gets from ReccoBeats.
ASKED_TRACKS = "SELECT isrc, artist_ids FROM tracks WHERE enrich_state = 'done'"


class OpenData(StoreBase):
    # ---------------------------------------------------------------- Wikidata
    def wikidata_known(self, artist_ids: Iterable[str]) -> set[str]:
        """Of ``artist_ids``, those Wikidata already answered for."""
        return self._known("wikidata_artists", "artist_id", artist_ids)

    def save_wikidata(self, artist_id: str, *, state: str, qid: str | None,
                      labels: list[str], genres: list[str], now: str) -> None:
        self.db.execute(
            "INSERT INTO wikidata_artists (artist_id, state, qid, labels, genres, asked_at) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(artist_id) DO UPDATE SET "
            "state = excluded.state, qid = excluded.qid, labels = excluded.labels, "
            "genres = excluded.genres, asked_at = excluded.asked_at",
            (artist_id, state, qid, json.dumps(labels, ensure_ascii=False),
             json.dumps(genres), now))

    def wikidata_to_ask(self) -> list[str]:
        """Every credited artist of an enriched track that Wikidata has not answered for,
        in ID order. An ID no query can carry (not 22 base-62 characters) is never asked,
        so it is not "to ask" either: else ``toAsk`` could never reach 0."""
        artists: set[str] = set()
        for _, artist_ids in self.db.execute(ASKED_TRACKS):
            artists.update(wikidata.askable(json.loads(artist_ids)))
        known = {r[0] for r in self.db.execute("SELECT artist_id FROM wikidata_artists")}
        return sorted(artists - known)

    def wikidata_counts(self) -> dict[str, int]:
        rows = self.db.execute("SELECT state, COUNT(*) FROM wikidata_artists GROUP BY state")
        return dict(rows.fetchall())

    # ---------------------------------------------------------------- MusicBrainz
    def musicbrainz_known(self, isrcs: Iterable[str]) -> set[str]:
        return self._known("musicbrainz_isrcs", "isrc", isrcs)

    def save_musicbrainz(self, isrc: str, *, state: str, date: str | None, year: int | None,
                         recording_id: str | None, now: str) -> None:
        self.db.execute(
            "INSERT INTO musicbrainz_isrcs (isrc, state, first_release_date, year, "
            "recording_id, asked_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(isrc) DO UPDATE "
            "SET state = excluded.state, first_release_date = excluded.first_release_date, "
            "year = excluded.year, recording_id = excluded.recording_id, "
            "asked_at = excluded.asked_at", (isrc, state, date, year, recording_id, now))

    def musicbrainz_to_ask(self) -> list[str]:
        """Every ISRC of an enriched track that MusicBrainz has not answered for, sorted; as
        asked (upper case), malformed ones left out (never asked, so never answered)."""
        isrcs = set(musicbrainz.askable(isrc for isrc, _ in self.db.execute(ASKED_TRACKS)))
        known = {r[0] for r in self.db.execute("SELECT isrc FROM musicbrainz_isrcs")}
        return sorted(isrcs - known)

    def musicbrainz_years(self) -> dict[str, int]:
        """Per ISRC with a trusted MusicBrainz year: that year (for ``catalog.years``)."""
        return dict(self.db.execute("SELECT isrc, year FROM musicbrainz_isrcs "
                                    "WHERE year IS NOT NULL").fetchall())

    def musicbrainz_counts(self) -> dict[str, int]:
        counts = dict(self.db.execute("SELECT state, COUNT(*) FROM musicbrainz_isrcs "
                                      "GROUP BY state").fetchall())
        counts["dated"] = self.db.execute("SELECT COUNT(*) FROM musicbrainz_isrcs "
                                          "WHERE year IS NOT NULL").fetchone()[0]
        return counts

    # ---------------------------------------------------------------- shared
    def _known(self, table: str, key: str, values: Iterable[str]) -> set[str]:
        values = sorted(set(values))
        known: set[str] = set()
        for start in range(0, len(values), 500):       # SQLite's bound-parameter limit
            part = values[start:start + 500]
            marks = ",".join("?" * len(part))
            known.update(r[0] for r in self.db.execute(
                f"SELECT {key} FROM {table} WHERE {key} IN ({marks})", part))
        return known
