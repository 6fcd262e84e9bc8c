"""Tracks, artists and their enrichment state; the planning side of the one ISRC rule."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from runclub_spiders.catalog.isrc import isrc_wins
from runclub_spiders.store.base import StoreBase
from runclub_spiders.store.schema import FEATURE_FIELDS, TrackRecord
from runclub_spiders.umbrellas import normalize_genre

ISRC_FORMAT = re.compile(r"[A-Z]{2}[A-Z0-9]{3}\d{7}")
# Where an artist's genre can come from (table genre_evidence), in the order an artist's
# genres are listed: what Spotify says of the artist, then Wikidata's curated P136, then a
# genre query's hit whose sole artist it is, then the artist common to several such hits.
GENRE_SOURCES = ("spotify", "wikidata", "search_sole", "search_common")


class Tracks(StoreBase):
    # ---------------------------------------------------------------- tracks and artists
    def track_source(self, track_id: str) -> str | None:
        """How the track was first found (``first_source``), None when not stored."""
        row = self.db.execute("SELECT first_source FROM tracks WHERE id = ?",
                              (track_id,)).fetchone()
        return row[0] if row is not None else None

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

    def planning_rows(self) -> Iterator[tuple[str, str, str | None]]:
        """Each track's primary artist, first source and ``planning_cells`` (JSON), in ID
        order."""
        for artist_ids, source, cells in self.db.execute(
                "SELECT artist_ids, first_source, planning_cells FROM tracks ORDER BY id"):
            yield json.loads(artist_ids)[0], source, cells

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
                         displaced: Callable[[list, str, str], None] | None = None
                         ) -> bool:
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
        row = self.db.execute("SELECT id, artist_ids, first_source, planning_cells FROM tracks "
                              "WHERE isrc = ? "
                              "AND id != ? AND planning_cells IS NOT NULL",
                              (isrc, track_id)).fetchone()
        if row is not None:
            with self.transaction():
                self.db.execute("UPDATE tracks SET planning_cells = NULL WHERE id = ?",
                                (row["id"],))
            if displaced is not None:
                displaced([tuple(cell) for cell in json.loads(row["planning_cells"])],
                          json.loads(row["artist_ids"])[0], row["first_source"])
        return True

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

    # ---------------------------------------------------------------- genre evidence
    def add_genre_evidence(self, artist_id: str, genre: str, source: str,
                           detail: str | None = None) -> None:
        """Record why ``artist_id`` has ``genre`` (normalised here): one row per artist,
        genre and source; a second report of the same evidence is ignored (the first
        ``detail`` stays), so a page or an answer processed twice changes nothing."""
        if source not in GENRE_SOURCES:
            raise ValueError(f"genre evidence source {source!r}: use one of "
                             f"{', '.join(GENRE_SOURCES)}")
        normalised = normalize_genre(genre)
        if not normalised:
            return
        self.db.execute("INSERT OR IGNORE INTO genre_evidence (artist_id, genre, source, detail) "
                        "VALUES (?, ?, ?, ?)", (artist_id, normalised, source, detail))

    def genre_evidence_of(self, artist_ids: Iterable[str]
                          ) -> dict[str, list[tuple[str, str, str | None]]]:
        """Per artist with any: its evidence as ``(genre, source, detail)``, sources in
        ``GENRE_SOURCES`` order, genres sorted within a source. The genres Spotify gave on
        the artist object (``artists.genres``, extended profile) are the ``spotify`` source,
        first and in Spotify's order: that column stays their one home, so a refetch that
        changes them leaves no stale evidence behind."""
        ids = sorted(set(artist_ids))
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        result: dict[str, list[tuple[str, str, str | None]]] = {}
        seen: set[tuple[str, str, str]] = set()

        def add(artist_id: str, genre: str, source: str, detail: str | None) -> None:
            if (artist_id, genre, source) not in seen:
                seen.add((artist_id, genre, source))
                result.setdefault(artist_id, []).append((genre, source, detail))

        for row in self.db.execute(f"SELECT id, genres FROM artists WHERE id IN ({marks}) "
                                   "AND genres IS NOT NULL ORDER BY id", ids):
            for given in json.loads(row["genres"]):
                if isinstance(given, str) and normalize_genre(given):
                    add(row["id"], normalize_genre(given), "spotify", None)
        rank = " ".join(f"WHEN '{s}' THEN {i}" for i, s in enumerate(GENRE_SOURCES))
        for row in self.db.execute(
                f"SELECT artist_id, genre, source, detail FROM genre_evidence "
                f"WHERE artist_id IN ({marks}) "
                f"ORDER BY artist_id, CASE source {rank} ELSE {len(GENRE_SOURCES)} END, "
                f"source, genre", ids):
            add(row["artist_id"], row["genre"], row["source"], row["detail"])
        return {artist_id: result[artist_id] for artist_id in sorted(result)}

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
        isrc = row.get("isrc")
        if isinstance(isrc, str) and ISRC_FORMAT.fullmatch(isrc):
            # A track read from an album's track list (simplified: no external_ids) gets its
            # ISRC from ReccoBeats' row, so the ISRC dedupe and the year rules apply to it
            # too. Spotify's own ISRC, when the track object had one, is never replaced.
            self.db.execute("UPDATE tracks SET isrc = ? WHERE id = ? AND isrc IS NULL",
                            (isrc, track_id))
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


def artist_genres(row: sqlite3.Row) -> tuple[str, ...]:
    """An artists row's genres: Spotify's (when it gave any), then the inferred ones."""
    genres = json.loads(row["genres"]) if row["genres"] else []
    return tuple(dict.fromkeys([*genres, *json.loads(row["inferred_genres"] or "[]")]))
