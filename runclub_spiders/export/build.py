"""From the store to export rows: select the catalog, then build its rows as they are written.

``build_export`` runs the whole selection (``catalog.candidates`` then ``catalog.selection``)
and returns an ``ExportBuild``. Its ``batches()`` yields the feeds' items in a fixed order, a
batch at a time: one ``TrackExport`` (wide, track and features rows, as JSON lines) per track
in Spotify-ID order, then one ``ArtistExport`` per unique artist. The rows are built while
the feeds write them, reading the chosen tracks' store rows a chunk at a time: a 40,000-track
export that held every store row and every export row at once peaked at 487 MB; streamed, at
278 MB (BENCHMARKS.md, "Export alone").

Both steps read the store and take seconds at 40,000 tracks: the export spider
(``spiders/catalog_export.py``) runs ``build_export`` and each ``next()`` of ``batches()`` on
a worker thread, one call at a time, so the reactor keeps running meanwhile.

Timestamps: rows carry the store's UTC times (first seen, last updated, features fetched).
With ``SOURCE_DATE_EPOCH`` set they are clamped to it (the reproducible-builds convention),
so a resumed crawl and an uninterrupted one export the same bytes.
"""

from __future__ import annotations

import gc
import json
import os
import sqlite3
import uuid
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from runclub_spiders.catalog.cadence import best_cadence, tempo_bucket
from runclub_spiders.catalog.candidates import Candidate, load_candidates
from runclub_spiders.catalog.genres import GenreVocabulary, exported_genres
from runclub_spiders.catalog.selection import BalanceSettings, Selection, select
from runclub_spiders.catalog.years import year_source
from runclub_spiders.export.exporters import json_line
from runclub_spiders.export.items import ArtistExport, TrackExport
from runclub_spiders.export.rows import CachedArtistRow, CatalogWideRow
from runclub_spiders.export.splitter import to_audio_feature, to_cached_artists, to_cached_track
from runclub_spiders.quota import utc_iso
from runclub_spiders.seeds import SeedPlan
from runclub_spiders.store import Store, artist_genres

BATCH = 500                # items per ExportBuild.batches() step: ~25 ms of work
TRACK_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://open.spotify.com/track/")
RECCO_FEATURES_VERSION = "reccobeats-v1"   # ReccoBeats publishes no model version: its API's


def row_id(spotify_track_id: str) -> str:
    """UUID v5 of the track's Spotify ID: the same track has the same row ID in every run."""
    return str(uuid.uuid5(TRACK_NAMESPACE, spotify_track_id))


def source_date_epoch() -> int | None:
    """``SOURCE_DATE_EPOCH`` as an int, None when unset; ValueError names it when invalid."""
    raw = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if not raw:
        return None
    if not raw.isdigit():
        raise ValueError(f"SOURCE_DATE_EPOCH={raw!r} is not a whole number of seconds since "
                         f"1970; unset it or give e.g. SOURCE_DATE_EPOCH=$(date +%s)")
    return int(raw)


@dataclass(frozen=True)
class Clock:
    """Export time, and the clamp applied to every stored timestamp."""

    now: str
    clamp_to: str | None = None

    @classmethod
    def from_environment(cls, now: float) -> Clock:
        epoch = source_date_epoch()
        if epoch is None:
            return cls(utc_iso(now))
        return cls(utc_iso(epoch), utc_iso(epoch))

    def stamp(self, value: str | None) -> str | None:
        if value is None or self.clamp_to is None:
            return value
        return min(value, self.clamp_to)


@dataclass
class ExportBuild:
    selection: Selection
    market: str
    clock: Clock
    rows: _RowBuilder
    umbrellas: tuple[str, ...] = ()
    decades: tuple[str, ...] = ()
    facts: dict[str, Any] = field(default_factory=dict)   # manifest parts read at build time
    counts: dict[str, int] = field(default_factory=dict)  # rows per file, once items() ends

    def batches(self, size: int = BATCH) -> Iterator[list[TrackExport | ArtistExport]]:
        """Every item to export, ``size`` at a time, built on the way (see the module doc);
        sets ``counts`` once the last batch has been taken."""
        artists: dict[str, CachedArtistRow] = {}
        popularity = self.rows.artist_popularity
        tracks = features = 0
        batch: list[TrackExport | ArtistExport] = []
        # The selection's objects live until the export ends: frozen (build_export froze
        # them; this adds the row builder's), the cyclic collector stops walking them every
        # few thousand rows. With gc_paused in build_export, a 40,000-track export went from
        # 17.9 s to 14.6 s.
        gc.freeze()
        try:
            for wide in self.rows.wide_rows():
                audio = to_audio_feature(wide)
                tracks += 1
                features += audio is not None
                for artist in to_cached_artists(wide, popularity):
                    artists.setdefault(artist.id, artist)
                batch.append(TrackExport(
                    wide.spotify_track_id, json_line(wide),
                    json_line(to_cached_track(wide, self.market)),
                    None if audio is None else json_line(audio)))
                if len(batch) >= size:
                    yield batch
                    batch = []
            for artist_id in sorted(artists):
                batch.append(ArtistExport(artist_id, json_line(artists[artist_id])))
                if len(batch) >= size:
                    yield batch
                    batch = []
            if batch:
                yield batch
        finally:
            self.release()
        self.counts = {"catalog_wide": tracks, "cached_tracks": tracks,
                       "audio_features": features, "cached_artists": len(artists)}

    @staticmethod
    def release() -> None:
        """Hand the frozen objects back to the cyclic collector (``batches()`` does it when it
        ends; call it when an export ends before)."""
        gc.unfreeze()


def build_export(store: Store, plan: SeedPlan, settings: BalanceSettings, *, market: str,
                 clock: Clock, primary_markets: tuple[str, ...]
                 ) -> ExportBuild:
    markets = tuple(dict.fromkeys((market, *primary_markets)))
    with gc_paused():
        selection = select(load_candidates(store, plan.rules, market, (*markets, "US")),
                           plan.rules, settings, plan.decades)
        add_discovery(selection, store)
        # Out of the collector's sight until the export ends (ExportBuild.release): allocated
        # with collection paused, they all sit in the youngest generation, and the next
        # collection, in whichever thread, would walk every one of them holding the GIL (a
        # 143 ms and a 155 ms pause of the reactor at 40,000 tracks).
        gc.freeze()
    # The genre strings evidence pins down (catalog.genres), each with its sources.
    vocabulary = GenreVocabulary.from_rules(plan.rules)
    genres = {artist_id: exported for artist_id, evidence in store.genre_evidence().items()
              if (exported := exported_genres(artist_genres(evidence), vocabulary))}
    return ExportBuild(selection, market, clock,
                       _RowBuilder(store.db, selection, market, markets, clock, genres),
                       umbrellas=plan.rules.names(), decades=plan.decades)


def add_discovery(selection: Selection, store: Store) -> None:
    """What discovery concluded per cell (the store's ``discovery_cells``, written by the
    frontier), onto the selection's cell reports for the coverage report; a cell discovery
    has not written keeps None."""
    for key, row in store.discovery_cells().items():
        report = selection.cells.get(key)
        if report is not None:
            report.found, report.reachable, report.stopped = \
                row["found"], row["reachable"], row["stopped"]


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection inside: building a few hundred thousand acyclic objects
    (the candidates) otherwise triggers full collections that walk them all, again and again.
    Reference counting still frees everything."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class _RowBuilder:
    """Wide rows for the chosen tracks. What many rows share (artists, playlists, search
    terms) is read once; the tracks' and features' rows ``CHUNK`` tracks at a time."""

    CHUNK = 500

    def __init__(self, db: sqlite3.Connection, selection: Selection, market: str,
                 primary_markets: tuple[str, ...], clock: Clock,
                 genres: dict[str, dict[str, list[str]]] | None = None) -> None:
        self.db, self.selection, self.market, self.clock = db, selection, market, clock
        self.primary_markets = primary_markets
        chosen = {c.id for c in selection.chosen}
        self.artists = {r["id"]: r for r in db.execute("SELECT * FROM artists")}
        self.artist_popularity = {a: r["popularity"] for a, r in self.artists.items()}
        # Per artist: its genres, each with the sources that name it (store.artist_genres).
        self.genres = genres or {}
        self.playlists = {r["id"]: r for r in db.execute("SELECT * FROM playlists")}
        self.terms: dict[str, list[str]] = defaultdict(list)
        for track_id, q in db.execute("SELECT track_id, q FROM seed_tracks ORDER BY q, kind"):
            if track_id in chosen:
                self.terms[track_id].append(q)
        self.in_playlists: dict[str, list[str]] = defaultdict(list)
        for playlist_id, track_id in db.execute(
                "SELECT playlist_id, track_id FROM playlist_tracks ORDER BY playlist_id"):
            if track_id in chosen:
                self.in_playlists[track_id].append(playlist_id)

    def wide_rows(self) -> Iterator[CatalogWideRow]:
        """In ``selection.chosen`` order (Spotify ID). The store is not written meanwhile:
        the export phase starts when discovery and enrichment are over."""
        chosen = self.selection.chosen
        for start in range(0, len(chosen), self.CHUNK):
            part = chosen[start:start + self.CHUNK]
            tracks = self._by_id("tracks", "id", [c.id for c in part])
            features = self._by_id("features", "track_id",
                                   sorted({c.features_from for c in part if c.features_from}))
            for c in part:
                yield self.wide_row(c, tracks[c.id],
                                    dict(features[c.features_from]) if c.features_from else {})

    def _by_id(self, table: str, key: str, ids: list[str]) -> dict[str, sqlite3.Row]:
        marks = ", ".join("?" * len(ids))
        return {r[key]: r for r in self.db.execute(
            f"SELECT * FROM {table} WHERE {key} IN ({marks})", ids)}

    def _genres(self, artist_id: str) -> list[str]:
        return list(self.genres.get(artist_id, ()))

    def _genre_sources(self, artist_ids: list[str]) -> dict[str, dict[str, list[str]]]:
        """``_extra.genre_sources``: per credited artist with genres (sorted by ID), each
        exported genre (in ``artist_genres`` order) with its sources (spotify, wikidata,
        search_sole, search_common: that order)."""
        return {a: {g: list(sources) for g, sources in self.genres[a].items()}
                for a in sorted(set(artist_ids)) if self.genres.get(a)}

    def _sources(self, c: Candidate) -> list[dict[str, Any]]:
        sources: list[dict[str, Any]] = []
        for playlist_id in self.in_playlists.get(c.id, ()):
            p = self.playlists.get(playlist_id)
            sources.append({"type": "playlist", "playlist_id": playlist_id,
                            "owner": p["owner"] if p else None, "name": p["name"] if p else None})
        for term in dict.fromkeys(self.terms.get(c.id, ())):
            sources.append({"type": "search", "term": term})
        return sources

    def wide_row(self, c: Candidate, row: sqlite3.Row, features: dict[str, Any]
                 ) -> CatalogWideRow:
        artist_ids = list(c.artist_ids)
        names = json.loads(row["artist_names"])
        playlist_id = c.source.playlist_id
        playlist = self.playlists.get(playlist_id) if playlist_id else None
        popularity = c.popularity
        markets = self._primary_markets(c)
        tempo = features.get("tempo")
        cadence = best_cadence(tempo)
        cell, backfill = self.selection.assigned[c.id]
        fetched = self.clock.stamp(features.get("fetched_at"))
        updated = max(filter(None, (row["updated_at"], features.get("fetched_at"))))
        images = [self.artists[a]["image_url"] if a in self.artists else None
                  for a in artist_ids]
        return CatalogWideRow(
            id=row_id(c.id), spotify_track_id=c.id, isrc=c.isrc, name=row["name"],
            duration_ms=c.duration_ms, explicit=bool(row["explicit"]),
            album_name=row["album_name"], album_release_date=row["release_date"],
            album_release_year=c.year.year, album_decade_label=c.decade,
            album_image_url=row["album_image_url"], popularity_snapshot=popularity,
            popularity_bucket=None if popularity is None else min(popularity // 10, 9) * 10,
            available_us=self._plays_in(c, "US"), available_primary_markets=markets,
            preview_url=row["preview_url"], artist_ids=artist_ids, artist_names=names,
            artist_genres=[self._genres(a) for a in artist_ids],
            artist_image_urls=images if any(images) else None,
            source_playlist_id=playlist_id,
            source_playlist_name=playlist["name"] if playlist else None,
            source_playlist_owner=playlist["owner"] if playlist else None,
            sources=self._sources(c),
            recco_track_id=features.get("recco_id"),
            recco_features_version=RECCO_FEATURES_VERSION if features else None,
            recco_features_at=fetched,
            tempo=tempo, energy=features.get("energy"),
            danceability=features.get("danceability"), valence=features.get("valence"),
            loudness=features.get("loudness"), acousticness=features.get("acousticness"),
            instrumentalness=features.get("instrumentalness"),
            liveness=features.get("liveness"), speechiness=features.get("speechiness"),
            key=features.get("key"), mode=features.get("mode"), time_signature=None,
            created_at=self.clock.stamp(row["first_seen_at"]),
            updated_at=self.clock.stamp(updated),
            _extra={
                "umbrellas": list(c.umbrellas), "umbrella_source": c.umbrella_source,
                "genre_sources": self._genre_sources(artist_ids),
                "year_source": year_source(c.year), "year_rule": c.year.source,
                "album_year": c.album_year,
                "album_type": row["album_type"], "cell": list(cell), "backfill": backfill,
                "features_source": c.features_source,
                "playable": c.playable, "playability_source": c.playability_source,
                "recco_popularity": c.recco_popularity,
                "tempo_bucket": tempo_bucket(tempo),
                "cadence_spm": cadence.spm if cadence else None,
                "cadence_match": cadence.match if cadence else None,
                "cadence_off_bpm": cadence.off_bpm if cadence else None,
                "ingest_source": c.source.kind,
                "ingest_query": c.source.query,
            })

    def _primary_markets(self, c: Candidate) -> list[str]:
        """The primary markets it is known to play in."""
        return sorted(m for m in self.primary_markets if self._plays_in(c, m))

    def _plays_in(self, c: Candidate, market: str) -> bool:
        """Known to play in ``market``: listed in its markets (up to ~180 countries:
        scanned, not copied), or it is the crawl's market and the track is playable there."""
        return market in (c.markets or ()) or bool(c.playable and market == self.market)
