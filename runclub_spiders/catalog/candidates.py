"""Every stored track as an export candidate, classified: year, decade, umbrellas, playability.

One pass over the store builds ``Candidate`` objects with everything the filters, the
balancer and the row builder need, so none of them goes back to SQLite per track. Where each
derived value came from is kept beside it (``year_source``, ``umbrella_source``,
``playability_source``) for the rows' ``_extra`` and the manifest.

Umbrellas, most trusted first:

1. ``artist_genres``: the primary artist's Spotify genres (extended profile) through the
   umbrella rules;
2. ``query_votes``: the umbrellas of the umbrella-tagged searches (``genre:"..."`` cell
   queries count 1, free-text seeds 0.25) that returned the primary artist's tracks. A search
   matches any credited artist, so a vote from a track with featured artists goes to the
   primary artist only when no featured artist explains it (has solo votes for that
   umbrella). Umbrellas with at least a third of the top one's votes are kept, top first;
3. ``featured_artist_genres``: the other credited artists' Spotify genres;
4. ``none``: unclassified (not exported: it cannot be placed in a cell).

Measured against the simulator's ground truth (``tests/test_export.py``), votes beat the
inferred genre strings (``artists.inferred_genres``, 59% right): a ``genre:`` search matches
words of any credited artist's genres, so single strings are noisy, while an artist found by
many searches of one umbrella rarely belongs elsewhere. An artist whose only evidence comes
from tracks shared with featured artists that explain it stays unclassified: guessing there
was wrong more often than right.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

from runclub_spiders.catalog.years import (
    AlbumAppearance,
    YearVerdict,
    recording_year,
    release_year,
)
from runclub_spiders.seeds import CELL_FAMILY
from runclub_spiders.store import Store
from runclub_spiders.umbrellas import UmbrellaRules, normalize_genre

VOTE_SHARE = 3                 # keep umbrellas with at least 1/3 of the top one's votes
FREE_TEXT_WEIGHT = 0.25        # a free-text seed's umbrella tag is weaker than genre:"..."


@dataclass(slots=True)
class Candidate:
    row: sqlite3.Row                          # the store's tracks row
    seq: int                                  # store insertion order (rowid)
    id: str
    isrc: str | None
    artist_ids: tuple[str, ...]
    duration_ms: int
    popularity: int | None                    # Spotify (extended profile)
    recco_popularity: int | None
    year: YearVerdict
    album_year: int | None                    # this album's own year
    umbrellas: tuple[str, ...]
    umbrella_source: str
    playable: bool | None
    playability_source: str
    markets: tuple[str, ...] | None           # where it is known to play, if known
    features: dict[str, Any] | None = None    # the features row (own or an ISRC sibling's)
    features_source: str | None = None        # own | isrc_sibling
    source: PrimarySource | None = None       # see PrimarySource

    @property
    def seed(self) -> str:
        return self.source.seed if self.source else self.row["first_source"]

    @property
    def decade(self) -> str | None:
        return self.year.decade

    @property
    def has_features(self) -> bool:
        return self.features is not None and self.features.get("tempo") is not None

    @property
    def cell(self) -> tuple[str, str] | None:
        if not self.umbrellas or self.decade is None:
            return None
        return (self.umbrellas[0], self.decade)


@dataclass(frozen=True, slots=True)
class PrimarySource:
    """Where a track is said to come from: the owner's playlist that holds it (smallest ID),
    else the search that found it (first in sort order). Chosen from everything the store
    knows, not from what happened to arrive first, so a resumed crawl names the same one."""

    kind: str                         # playlist | search | lookup
    query: str | None
    playlist_id: str | None

    @property
    def seed(self) -> str:
        """The key rejections are counted under, per seed."""
        if self.kind == "playlist":
            return f"playlist:{self.playlist_id}"
        return self.query or self.kind


def primary_sources(db: sqlite3.Connection) -> dict[str, PrimarySource]:
    queries: dict[str, str] = {}
    for track_id, q in db.execute("SELECT track_id, MIN(q) FROM seed_tracks GROUP BY track_id"):
        queries[track_id] = q
    playlists: dict[str, str] = {}
    for track_id, p in db.execute("SELECT track_id, MIN(playlist_id) FROM playlist_tracks "
                                  "GROUP BY track_id"):
        playlists[track_id] = p
    result = {}
    for track_id in queries.keys() | playlists.keys():
        playlist = playlists.get(track_id)
        result[track_id] = PrimarySource("playlist" if playlist else "search",
                                         queries.get(track_id), playlist)
    return result


def load_candidates(store: Store, rules: UmbrellaRules, market: str) -> list[Candidate]:
    """Every stored track, classified, in store order."""
    db = store.db
    rows = db.execute("SELECT rowid AS seq, * FROM tracks ORDER BY rowid").fetchall()
    spotify_genres = _spotify_genres(db)
    votes = artist_votes(db)
    sources = primary_sources(db)
    features = {r["track_id"]: dict(r) for r in db.execute("SELECT * FROM features")}
    by_isrc: dict[str, list[sqlite3.Row]] = defaultdict(list)
    for row in rows:
        if row["isrc"]:
            by_isrc[row["isrc"]].append(row)

    candidates = []
    for row in rows:
        siblings = by_isrc[row["isrc"]] if row["isrc"] else [row]
        year = recording_year((_appearance(r) for r in siblings), row["isrc"])
        artist_ids = tuple(json.loads(row["artist_ids"]))
        umbrellas, umbrella_source = classify_umbrellas(
            rules, artist_ids, spotify_genres, votes)
        playable, playability_source, markets = playability(row, market)
        candidate = Candidate(
            row=row, seq=row["seq"], id=row["id"], isrc=row["isrc"], artist_ids=artist_ids,
            duration_ms=row["duration_ms"], popularity=row["popularity"],
            recco_popularity=row["recco_popularity"], year=year,
            album_year=release_year(row["release_date"]),
            umbrellas=umbrellas, umbrella_source=umbrella_source, playable=playable,
            playability_source=playability_source, markets=markets,
            source=sources.get(row["id"]) or PrimarySource(row["first_source"], None, None))
        candidate.features, candidate.features_source = _features_for(row, siblings, features)
        candidates.append(candidate)
    return candidates


def classify_umbrellas(rules: UmbrellaRules, artist_ids: tuple[str, ...],
                       spotify_genres: dict[str, tuple[str, ...]],
                       votes: dict[str, Counter[str]]) -> tuple[tuple[str, ...], str]:
    if not artist_ids:
        return (), "none"
    lead = artist_ids[0]
    found = rules.classify(spotify_genres.get(lead, ()))
    if found:
        return found, "artist_genres"
    counts = votes.get(lead)
    if counts:
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        top = ranked[0][1]
        return tuple(u for u, n in ranked if n * VOTE_SHARE >= top), "query_votes"
    found = rules.classify(g for a in artist_ids[1:] for g in spotify_genres.get(a, ()))
    if found:
        return found, "featured_artist_genres"
    return (), "none"


def playability(row: sqlite3.Row, market: str) -> tuple[bool | None, str,
                                                        tuple[str, ...] | None]:
    """Playable in ``market``? From Spotify's ``is_playable``, then its markets, then
    ReccoBeats' ``availableCountries``; None when no source says."""
    markets = json.loads(row["available_markets"]) if row["available_markets"] else None
    countries = json.loads(row["recco_countries"]) if row["recco_countries"] else None
    known = markets if markets is not None else countries
    if row["is_playable"] is not None:
        return bool(row["is_playable"]), "spotify_is_playable", known and tuple(known)
    if markets is not None:
        return market in markets, "spotify_available_markets", tuple(markets)
    if countries is not None:
        return market in countries, "reccobeats_available_countries", tuple(countries)
    return None, "unknown", None


def _appearance(row: sqlite3.Row) -> AlbumAppearance:
    return AlbumAppearance(row["release_date"], row["album_type"], row["album_name"] or "",
                           row["name"] or "")


def _features_for(row: sqlite3.Row, siblings: list[sqlite3.Row],
                  features: dict[str, dict[str, Any]]) -> tuple[dict[str, Any] | None,
                                                                 str | None]:
    """Its own features, else those of a track with the same ISRC (the same recording, so
    the same audio), preferring the earliest stored sibling."""
    own = features.get(row["id"])
    if own is not None and own.get("tempo") is not None:
        return own, "own"
    for sibling in siblings:
        found = features.get(sibling["id"])
        if sibling["id"] != row["id"] and found is not None and found.get("tempo") is not None:
            return found, "isrc_sibling"
    return own, "own" if own is not None else None


def _spotify_genres(db: sqlite3.Connection) -> dict[str, tuple[str, ...]]:
    """Per artist: the genres Spotify gave (extended profile), normalised."""
    result = {}
    for row in db.execute("SELECT id, genres FROM artists WHERE genres IS NOT NULL"):
        given = json.loads(row["genres"])
        result[row["id"]] = tuple(dict.fromkeys(normalize_genre(g) for g in given if g))
    return result


def artist_votes(db: sqlite3.Connection) -> dict[str, Counter[str]]:
    """Per primary artist: umbrella votes from the umbrella-tagged searches that found its
    tracks (see the module doc)."""
    credits = {r[0]: json.loads(r[1]) for r in db.execute("SELECT id, artist_ids FROM tracks")}
    edges = db.execute(
        "SELECT st.track_id, s.umbrella, s.family FROM seed_tracks st JOIN seeds s "
        "ON s.q = st.q AND s.kind = st.kind WHERE s.umbrella IS NOT NULL "
        "ORDER BY st.track_id, s.q").fetchall()
    solo: dict[str, Counter[str]] = defaultdict(Counter)
    shared: list[tuple[list[str], str, float]] = []
    for track_id, umbrella, family in edges:
        artists = credits.get(track_id)
        if not artists:
            continue
        weight = 1.0 if family == CELL_FAMILY else FREE_TEXT_WEIGHT
        if len(artists) == 1:
            solo[artists[0]][umbrella] += weight
        else:
            shared.append((artists, umbrella, weight))
    votes: dict[str, Counter[str]] = defaultdict(Counter)
    for artist, counts in solo.items():
        votes[artist].update(counts)
    for artists, umbrella, weight in shared:
        if not any(solo.get(other, {}).get(umbrella) for other in artists[1:]):
            votes[artists[0]][umbrella] += weight
    return dict(votes)
