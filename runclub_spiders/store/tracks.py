"""Tracks, artists and their enrichment state; the planning side of the one ISRC rule."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from runclub_spiders.catalog.isrc import isrc_wins
from runclub_spiders.seeds import GENRE_FILTER
from runclub_spiders.store.base import StoreBase
from runclub_spiders.store.schema import FEATURE_FIELDS, TrackRecord
from runclub_spiders.umbrellas import normalize_genre

if TYPE_CHECKING:
    from runclub_spiders.opendata.mapping import GenreMapping

ISRC_FORMAT = re.compile(r"[A-Z]{2}[A-Z0-9]{3}\d{7}")
GENRE_LEDGER = "genre_queries"      # StoreBase.derived: Tracks._genre_queries


def add_genre_query(ledger: dict[str, set[str]], q: str, kind: str) -> None:
    """File a seed ledger query under the normalised genres its ``genre:"..."`` filters
    name (``genre:"r&b"`` and ``genre:"r and b"`` are one genre)."""
    if kind == "track":
        for genre in filter(None, map(normalize_genre, GENRE_FILTER.findall(q))):
            ledger.setdefault(genre, set()).add(q)


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

    def planning_rows(self) -> Iterator[tuple[str, str, str | None, str | None]]:
        """Each track's primary artist, first source, ``planning_cells`` (JSON) and first
        query, in ID order."""
        for artist_ids, source, cells, query in self.db.execute(
                "SELECT artist_ids, first_source, planning_cells, first_query FROM tracks "
                "ORDER BY id"):
            yield json.loads(artist_ids)[0], source, cells, query

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
                         displaced: Callable[[list, str, str, str | None], None] | None = None
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
        row = self.db.execute("SELECT id, artist_ids, first_source, planning_cells, "
                              "first_query FROM tracks WHERE isrc = ? "
                              "AND id != ? AND planning_cells IS NOT NULL",
                              (isrc, track_id)).fetchone()
        if row is not None:
            with self.transaction():
                self.db.execute("UPDATE tracks SET planning_cells = NULL WHERE id = ?",
                                (row["id"],))
            if displaced is not None:
                displaced([tuple(cell) for cell in json.loads(row["planning_cells"])],
                          json.loads(row["artist_ids"])[0], row["first_source"],
                          row["first_query"])
        return True

    # ---------------------------------------------------------------- genre evidence
    def add_genre_evidence(self, artist_id: str, genre: str, source: str,
                           detail: str | None = None) -> None:
        """Record why ``artist_id`` has ``genre`` (normalised here): one row per artist,
        genre and source. A second report of the same evidence keeps the smaller ``detail``
        (the first query in sort order, not in time): a page or an answer processed twice
        changes nothing, and pages in another order leave the same row."""
        if source not in GENRE_SOURCES:
            raise ValueError(f"genre evidence source {source!r}: use one of "
                             f"{', '.join(GENRE_SOURCES)}")
        normalised = normalize_genre(genre)
        if not normalised:
            return
        self.db.execute(
            "INSERT INTO genre_evidence (artist_id, genre, source, detail) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(artist_id, genre, source) DO UPDATE SET detail = excluded.detail "
            "WHERE excluded.detail < detail", (artist_id, normalised, source, detail))

    def genre_evidence_of(self, artist_ids: Iterable[str]
                          ) -> dict[str, list[tuple[str, str, str | None]]]:
        """Per artist with any: its evidence as ``(genre, source, detail)``, sources in
        ``GENRE_SOURCES`` order, genres sorted within a source. The genres Spotify gave on
        the artist object (``artists.genres``, extended profile) are the ``spotify`` source,
        first and in Spotify's order: that column stays their one home, so a refetch that
        changes them leaves no stale evidence behind."""
        ids = sorted(set(artist_ids))
        return self._genre_evidence(ids) if ids else {}

    def genre_evidence(self) -> dict[str, list[tuple[str, str, str | None]]]:
        """``genre_evidence_of`` every artist with any, in one read (the export's)."""
        return self._genre_evidence(None)

    def _genre_evidence(self, ids: list[str] | None
                        ) -> dict[str, list[tuple[str, str, str | None]]]:
        """``genre_evidence_of`` these artists, or of every artist (None)."""
        where, params = ("", []) if ids is None else \
            (f" AND {{column}} IN ({','.join('?' * len(ids))})", ids)
        result: dict[str, list[tuple[str, str, str | None]]] = {}
        seen: set[tuple[str, str, str]] = set()

        def add(artist_id: str, genre: str, source: str, detail: str | None) -> None:
            if (artist_id, genre, source) not in seen:
                seen.add((artist_id, genre, source))
                result.setdefault(artist_id, []).append((genre, source, detail))

        for row in self.db.execute("SELECT id, genres FROM artists WHERE genres IS NOT NULL"
                                   + where.format(column="id") + " ORDER BY id", params):
            for given in json.loads(row["genres"]):
                if isinstance(given, str) and normalize_genre(given):
                    add(row["id"], normalize_genre(given), "spotify", None)
        rank = " ".join(f"WHEN '{s}' THEN {i}" for i, s in enumerate(GENRE_SOURCES))
        for row in self.db.execute(
                "SELECT artist_id, genre, source, detail FROM genre_evidence WHERE 1"
                + where.format(column="artist_id")
                + f" ORDER BY artist_id, CASE source {rank} ELSE {len(GENRE_SOURCES)} END, "
                  "source, genre", params):
            add(row["artist_id"], row["genre"], row["source"], row["detail"])
        return {artist_id: result[artist_id] for artist_id in sorted(result)}

    def add_search_genre_hits(self, genre: str, query: str,
                              hits: Iterable[tuple[str, ...]]) -> None:
        """A ``genre:"..."`` query's page (its hits' artist IDs, primary first): the sole
        artist of a hit gets the genre (``search_sole``); then the genre's ``search_common``
        evidence is derived again from every hit of its queries (``refresh_common_genre``).
        Call it after the page's edges are stored."""
        for artist_ids in hits:
            if len(artist_ids) == 1:
                self.add_genre_evidence(artist_ids[0], genre, "search_sole", query)
        self.refresh_common_genre(genre, query)

    def refresh_common_genre(self, genre: str, query: str | None = None) -> None:
        """Re-derive the ``search_common`` evidence of ``genre`` (as in its queries' text)
        from what its queries (those of the seed ledger whose genre normalises the same, and
        ``query``) returned (``seed_tracks``) and who is a sole artist of one of those hits.

        A search matches a track through any credited artist, so a hit with several artists
        names none of them. An artist ``A`` is credited when it is the primary artist of two
        hits of the genre's queries (of any decade: the filter is the same) that both need
        ``A`` to be explained:

        * each is *unexplained* without ``A``: none of its other artists has ``search_sole``
          evidence of the genre (a guest whose solo tracks the genre's queries returned
          explains the hit), and
        * no other artist is common to the two (``(A, F)`` twice might be explained by ``F``
          alone).

        Primary only: a featured artist who recurs on the tracks of the genre's artists
        (``(L, F)``, ``(M, F)``) is explained by them more often than not, even when their
        solo tracks were not reached (measured on the simulator: 23 of 60 such credits right).
        And only an artist of whom no solo track is stored (see below): the rule is for the
        artists a crawl never meets alone.

        Recomputed whole (never added to) from the genre's hits, their sole artists and
        which artists have a solo track stored. A solo track stored after the genre's last
        page leaves a credit standing until the genre's next page, or until
        ``settle_genre_evidence`` (the export's first step) withdraws it: what the export
        reads is what the final store implies, in whatever order its pages came."""
        normalised = normalize_genre(genre)
        credited = self._common_credits(normalised, {query} if query else set())
        self._write_common(normalised, credited)

    def _genre_queries(self) -> dict[str, set[str]]:
        """Per normalised genre: the ``genre:"..."`` track queries of the seed ledger (a few
        hundred rows; ``genre:"r&b"`` and ``genre:"r and b"`` are one genre). Read once, then
        kept up to date by ``record_page``, the ledger's only writer: it was read again for
        every genre page, ~3% of a crawl's CPU. Not to be changed by the caller."""
        ledger = self.derived.get(GENRE_LEDGER)
        if ledger is None:
            ledger = self.derived[GENRE_LEDGER] = {}
            for (q,) in self.db.execute("SELECT q FROM seeds WHERE kind = 'track' "
                                        "AND instr(q, 'genre:\"') > 0"):
                add_genre_query(ledger, q, "track")
        return ledger

    def _common_credits(self, normalised: str, extra: set[str],
                        ledger: dict[str, set[str]] | None = None,
                        alone: set[str] | None = None) -> dict[str, str]:
        """What the ``search_common`` rule credits for this genre from the store as it is
        (``refresh_common_genre``), ``extra`` queries counted as the genre's too. ``ledger``
        (``_genre_queries``) and ``alone`` (``_solo_artists``), when given, are read once
        for many genres."""
        ledger = self._genre_queries() if ledger is None else ledger
        queries = sorted(ledger.get(normalised, set()) | extra)
        if not queries:
            return {}
        # Their hits through seed_tracks' key: no scan of every edge on every page.
        marks = ",".join("?" * len(queries))
        rows = self.db.execute(
            "SELECT st.q, t.artist_ids FROM seed_tracks st JOIN tracks t ON t.id = st.track_id "
            f"WHERE st.kind = 'track' AND st.q IN ({marks}) AND t.artist_ids LIKE '%,%' "
            "ORDER BY st.q, t.id", queries).fetchall()
        sole = {r[0] for r in self.db.execute(
            "SELECT artist_id FROM genre_evidence WHERE genre = ? AND source = 'search_sole'",
            (normalised,))}
        hits = [(q, tuple(json.loads(ids))) for q, ids in rows]
        credited = common_artists(hits, sole)
        # Only artists the crawl has never stored a solo track of: one whose own tracks
        # were found, yet not by the genre's queries, is no more likely to have the genre
        # than its guests (measured: every such credit wrong on the simulator).
        if alone is not None:
            return {a: q for a, q in credited.items() if a not in alone}
        return {a: q for a, q in credited.items() if self.db.execute(
            "SELECT 1 FROM tracks WHERE artist_ids = ? LIMIT 1",
            (json.dumps([a]),)).fetchone() is None}

    def _solo_artists(self) -> set[str]:
        """Every artist with a solo track stored (one scan, where ``_common_credits`` asks
        per credited artist: ``artist_ids`` has no index)."""
        return {json.loads(ids)[0] for (ids,) in self.db.execute(
            "SELECT artist_ids FROM tracks WHERE artist_ids NOT LIKE '%,%'")}

    def _write_common(self, normalised: str, credited: dict[str, str]) -> bool:
        """Make the genre's ``search_common`` rows ``credited``; True when they changed."""
        current = {r[0]: r[1] for r in self.db.execute(
            "SELECT artist_id, detail FROM genre_evidence WHERE genre = ? "
            "AND source = 'search_common'", (normalised,))}
        if current == credited:
            return False
        with self.transaction():
            self.db.execute("DELETE FROM genre_evidence WHERE genre = ? "
                            "AND source = 'search_common'", (normalised,))
            self.db.executemany(
                "INSERT INTO genre_evidence (artist_id, genre, source, detail) "
                "VALUES (?, ?, 'search_common', ?)",
                [(a, normalised, q) for a, q in sorted(credited.items())])
        return True

    def settle_genre_evidence(self, mapping: GenreMapping | None) -> dict[str, int]:
        """Bring the evidence that is derived from other rows up to date with the store as
        it is now, before the export reads it (``catalog_export``): the same store then gives
        the same genres, whatever order its pages came in or when its answers were mapped.

        * ``search_common``: every genre's credits derived once more from its hits
          (``refresh_common_genre``), keeping only credits already stored. On a crawl's
          final store that only withdraws the credits a solo track stored after the genre's
          last page disproves (its hits and sole artists were all there at that page), and
          it never turns hits into credits where the crawl wrote none (``genre:`` untrusted).
        * ``wikidata``: every answered artist's rows derived again from the labels Wikidata
          gave (``wikidata_artists.labels``) through ``mapping`` (``WIKIDATA_GENRE_MAP`` as
          it is now), so an edited mapping applies without asking Wikidata again. None
          leaves them as stored (Wikidata off).

        Writes only what changed (an unchanged store keeps its bytes). Returns how many
        credits were withdrawn (``common_withdrawn``) and how many ``wikidata`` rows were
        removed and added (``wikidata_removed``, ``wikidata_added``)."""
        counts = {"common_withdrawn": 0, "wikidata_removed": 0, "wikidata_added": 0}
        with self.transaction():
            stored: dict[str, dict[str, str]] = {}
            for artist_id, genre, detail in self.db.execute(
                    "SELECT artist_id, genre, detail FROM genre_evidence "
                    "WHERE source = 'search_common'"):
                stored.setdefault(genre, {})[artist_id] = detail
            ledger = self._genre_queries() if stored else {}
            alone = self._solo_artists() if stored else set()
            for genre, current in sorted(stored.items()):
                derived = self._common_credits(genre, set(), ledger, alone)
                kept = {a: q for a, q in derived.items() if a in current}
                if self._write_common(genre, kept):
                    counts["common_withdrawn"] += len(current) - len(kept)
            if mapping is not None:
                removed, added = self._map_wikidata(mapping)
                counts.update(wikidata_removed=removed, wikidata_added=added)
        return counts

    def _map_wikidata(self, mapping: GenreMapping) -> tuple[int, int]:
        """The ``wikidata`` rows as ``mapping`` makes them from the stored labels (as the
        open-data pipeline writes them: one row per genre, the smallest ``label (QID)`` as
        its detail); ``wikidata_artists.genres`` follows. Returns (removed, added) rows."""
        wanted: dict[tuple[str, str], str] = {}
        lists: dict[str, str] = {}
        for artist_id, qid, labels, genres in self.db.execute(
                "SELECT artist_id, qid, labels, genres FROM wikidata_artists ORDER BY artist_id"):
            mapped: list[str] = []
            for label in json.loads(labels or "[]"):
                for given in mapping.genres(label) or ():
                    genre, detail = normalize_genre(given), f"{label} ({qid})"
                    if genre and ((artist_id, genre) not in wanted
                                  or detail < wanted[(artist_id, genre)]):
                        wanted[(artist_id, genre)] = detail
                    mapped.append(genre)
            listed = json.dumps(list(dict.fromkeys(g for g in mapped if g)))
            if listed != genres:
                lists[artist_id] = listed
        have = {(r[0], r[1]): r[2] for r in self.db.execute(
            "SELECT artist_id, genre, detail FROM genre_evidence WHERE source = 'wikidata'")}
        gone = sorted(k for k in have if wanted.get(k) != have[k])
        new = sorted(k for k in wanted if have.get(k) != wanted[k])
        self.db.executemany("DELETE FROM genre_evidence WHERE artist_id = ? AND genre = ? "
                            "AND source = 'wikidata'", gone)
        self.db.executemany("INSERT INTO genre_evidence (artist_id, genre, source, detail) "
                            "VALUES (?, ?, 'wikidata', ?)", [(*k, wanted[k]) for k in new])
        self.db.executemany("UPDATE wikidata_artists SET genres = ? WHERE artist_id = ?",
                            [(listed, a) for a, listed in sorted(lists.items())])
        return len(gone), len(new)

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
        """These artists' genres (``artist_genres`` of their evidence); an artist without
        any is left out."""
        return {artist_id: tuple(sources) for artist_id, evidence in
                self.genre_evidence_of(artist_ids).items()
                if (sources := artist_genres(evidence))}

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


def common_artists(hits: Iterable[tuple[str, tuple[str, ...]]], sole: set[str]
                   ) -> dict[str, str]:
    """The artists the ``search_common`` rule credits (``Tracks.refresh_common_genre``),
    each with the smallest query of its witnessing hits. ``hits``: (query, artist IDs,
    primary first) of one genre's multi-artist hits; ``sole``: the artists with
    ``search_sole`` evidence of it."""
    needing: dict[str, list[tuple[str, frozenset[str]]]] = {}
    for query, artist_ids in hits:
        lead, others = artist_ids[0], frozenset(artist_ids[1:]) - {artist_ids[0]}
        if others and lead not in sole and not others & sole:
            needing.setdefault(lead, []).append((query, others))
    credited = {}
    for artist, witnesses in sorted(needing.items()):
        pairs = [min(a[0], b[0]) for i, a in enumerate(witnesses)
                 for b in witnesses[i + 1:] if not a[1] & b[1]]
        if pairs:
            credited[artist] = min(pairs)
    return credited


def artist_genres(evidence: Iterable[tuple[str, str, str | None]]
                  ) -> dict[str, list[str]]:
    """An artist's genres from its evidence (``Tracks.genre_evidence_of``), each with the
    sources that name it (``GENRE_SOURCES`` order), genres in the order their first
    evidence is listed: Spotify's first, then Wikidata's, then search evidence.

    ``artists.inferred_genres`` (what older versions wrote: the query's genre given to the
    primary artist of every hit, 58% wrong) is never read: an old store's artists have no
    genres until a crawl writes evidence."""
    result: dict[str, list[str]] = {}
    for genre, source, _ in evidence:
        sources = result.setdefault(genre, [])
        if source not in sources:
            sources.append(source)
    return result
