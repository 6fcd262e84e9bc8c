"""Every stored track as an export candidate, classified: year, decade, umbrellas, playability.

One pass over the store builds ``Candidate`` objects with everything the filters, the
balancer and the row builder need, so none of them goes back to SQLite per track. Where each
derived value came from is kept beside it (``year_source``, ``umbrella_source``,
``playability_source``) for the rows' ``_extra`` and the manifest.

Umbrellas, most trusted first:

1. ``artist_genres``: the primary artist's curated genres (Spotify's, extended profile;
   Wikidata's) through the umbrella rules;
2. ``query_votes``: the umbrellas of the umbrella-tagged searches (``genre:"..."`` cell
   queries count 1, or 0.25 for a genre other umbrellas' genres contain, free-text seeds
   0.25: ``vote_weight``) that returned the primary artist's tracks, or the
   artist itself (a cell query asks ``type=track,artist``: its genre filter matched the
   artist). A search matches any credited artist, so a vote from a track with featured
   artists goes to the primary artist only when no featured artist explains it (has solo
   votes for that umbrella). Umbrellas with at least a third of the top one's votes are
   kept, top first;
3. ``search_genres``: the primary artist's genres from search evidence (``search_sole``,
   ``search_common``: ``Store.add_search_genre_hits``) through the rules;
4. ``none``: unclassified (not exported: it cannot be placed in a cell). A featured
   artist's genres never classify the track: with Spotify's genre filter ignored they were
   the only evidence for 6 exported tracks and wrong for all 6 (tests/test_probe.py; the
   track's genre is its primary artist's).

Votes come before search genres: they rank umbrellas by how many searches found the
artist, where the genres from search evidence are a set (an artist found by many searches of
one umbrella rarely belongs elsewhere). An artist whose only evidence comes from tracks
shared with featured artists that explain it stays unclassified: guessing there was wrong
more often than right.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from runclub_spiders.catalog.isrc import isrc_rank
from runclub_spiders.catalog.years import (
    AlbumAppearance,
    YearVerdict,
    recording_year,
    release_year,
)
from runclub_spiders.seeds import CELL_FAMILY, GENRE_FILTER
from runclub_spiders.store import Store, artist_genres
from runclub_spiders.umbrellas import UmbrellaRules

VOTE_SHARE = 3                 # keep umbrellas with at least 1/3 of the top one's votes
FREE_TEXT_WEIGHT = 0.25        # a free-text seed's umbrella tag is weaker than genre:"..."


@dataclass(slots=True)
class Candidate:
    id: str
    name: str
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
    markets: tuple[str, ...] | None           # where it is known to play (those asked)
    source: PrimarySource                     # see PrimarySource
    features_from: str | None = None          # whose features row: its own or an ISRC sibling's
    features_source: str | None = None        # own | isrc_sibling
    has_features: bool = False                # that row has a tempo

    @property
    def seed(self) -> str:
        return self.source.seed

    @property
    def decade(self) -> str | None:
        return self.year.decade

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


def primary_sources(store: Store) -> dict[str, PrimarySource]:
    queries = store.first_query_by_track()
    playlists = store.first_playlist_by_track()
    result = {}
    for track_id in queries.keys() | playlists.keys():
        playlist = playlists.get(track_id)
        result[track_id] = PrimarySource("playlist" if playlist else "search",
                                         queries.get(track_id), playlist)
    return result


# What the filters, the balancer and the years need of each track; the row builder reads the
# rest for the chosen tracks only (``export.build``), so the store is never held whole.
CANDIDATE_COLUMNS = ("id", "name", "isrc", "artist_ids", "duration_ms",
                     "popularity", "recco_popularity", "release_date", "album_type",
                     "album_name", "is_playable", "available_markets", "recco_countries",
                     "first_source")


def load_candidates(store: Store, rules: UmbrellaRules, market: str,
                    markets: Iterable[str] = ()) -> list[Candidate]:
    """Every stored track, classified, in store order. ``Candidate.markets`` lists only
    ``markets`` (and ``market``): the ones the export reports on."""
    keep = frozenset((market, *markets))
    rows = store.track_rows(CANDIDATE_COLUMNS)
    credits = {row["id"]: tuple(json.loads(row["artist_ids"])) for row in rows}
    curated, evidenced = artist_genre_sets(store)
    votes = artist_votes(store, credits, rules)
    sources = primary_sources(store)
    tempo_known = store.tempo_known()      # per track: does its features row have a tempo?
    by_isrc: dict[str, list[sqlite3.Row]] = defaultdict(list)
    for row in rows:
        if row["isrc"]:
            by_isrc[row["isrc"]].append(row)
    musicbrainz = store.musicbrainz_years()       # trusted original years by ISRC
    years = {isrc: recording_year((_appearance(r) for r in siblings), isrc,
                                  musicbrainz.get(isrc))
             for isrc, siblings in by_isrc.items()}

    candidates = []
    for row in rows:
        siblings = by_isrc[row["isrc"]] if row["isrc"] else [row]
        year = years[row["isrc"]] if row["isrc"] else \
            recording_year([_appearance(row)], None)
        artist_ids = credits[row["id"]]
        umbrellas, umbrella_source = classify_umbrellas(
            rules, artist_ids, curated, evidenced, votes)
        playable, playability_source, plays_in = playability(row, market, keep)
        features_from, features_source = _features_for(row, siblings, tempo_known)
        candidates.append(Candidate(
            id=row["id"], name=row["name"], isrc=row["isrc"], artist_ids=artist_ids,
            duration_ms=row["duration_ms"], popularity=row["popularity"],
            recco_popularity=row["recco_popularity"], year=year,
            album_year=release_year(row["release_date"]),
            umbrellas=umbrellas, umbrella_source=umbrella_source, playable=playable,
            playability_source=playability_source, markets=plays_in,
            features_from=features_from, features_source=features_source,
            has_features=bool(features_from and tempo_known[features_from]),
            source=sources.get(row["id"]) or PrimarySource(row["first_source"], None, None)))
    return candidates


def classify_umbrellas(rules: UmbrellaRules, artist_ids: tuple[str, ...],
                       curated: dict[str, tuple[str, ...]],
                       evidenced: dict[str, tuple[str, ...]],
                       votes: dict[str, Counter[str]]) -> tuple[tuple[str, ...], str]:
    """A track's umbrellas, best first, and which rule gave them (the module doc).
    ``curated``: per artist, the genres Spotify or Wikidata gave; ``evidenced``: every
    genre of the artist, search evidence included (``artist_genre_sets``)."""
    if not artist_ids:
        return (), "none"
    lead = artist_ids[0]
    found = rules.classify(curated.get(lead, ()))
    if found:
        return found, "artist_genres"
    counts = votes.get(lead)
    if counts:
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        top = ranked[0][1]
        return tuple(u for u, n in ranked if n * VOTE_SHARE >= top), "query_votes"
    found = rules.classify(evidenced.get(lead, ()))
    if found:
        return found, "search_genres"
    return (), "none"


def playability(row: sqlite3.Row, market: str, keep: frozenset[str]
                ) -> tuple[bool | None, str, tuple[str, ...] | None]:
    """Playable in ``market``? From Spotify's ``is_playable``, then its markets, then
    ReccoBeats' ``availableCountries``; None when no source says. Also where it is known to
    play, among the markets in ``keep`` only: kept whole, a list costs about 35 bytes per
    country per track (measured), some 6 kB per track for Spotify's ~180 countries."""
    markets = json.loads(row["available_markets"]) if row["available_markets"] else None
    countries = json.loads(row["recco_countries"]) if row["recco_countries"] else None
    known = markets if markets is not None else countries
    kept = None if known is None else tuple(m for m in known if m in keep)
    if row["is_playable"] is not None:
        return bool(row["is_playable"]), "spotify_is_playable", kept
    if markets is not None:
        return market in markets, "spotify_available_markets", kept
    if countries is not None:
        return market in countries, "reccobeats_available_countries", kept
    return None, "unknown", None


def _appearance(row: sqlite3.Row) -> AlbumAppearance:
    return AlbumAppearance(row["release_date"], row["album_type"], row["album_name"] or "",
                           row["name"] or "")


def _features_for(row: sqlite3.Row, siblings: list[sqlite3.Row],
                  tempo_known: dict[str, bool]) -> tuple[str | None, str | None]:
    """Whose features row it exports, and why: its own, else that of a track with the same
    ISRC (the same recording, so the same audio), preferring the sibling the one ISRC rule
    ranks first (``catalog.isrc``), not the first stored: the same store lends the same."""
    own = row["id"]
    if tempo_known.get(own):
        return own, "own"
    for sibling in sorted(siblings, key=lambda r: isrc_rank(r["id"],
                                                            release_year(r["release_date"]))):
        if sibling["id"] != own and tempo_known.get(sibling["id"]):
            return sibling["id"], "isrc_sibling"
    return (own, "own") if own in tempo_known else (None, None)


CURATED_SOURCES = frozenset({"spotify", "wikidata"})


def artist_genre_sets(store: Store
                      ) -> tuple[dict[str, tuple[str, ...]], dict[str, tuple[str, ...]]]:
    """Per artist with any: its curated genres (Spotify's, Wikidata's), and all its genres
    (``artist_genres``: search evidence too), each in the order the store lists them."""
    curated, evidenced = {}, {}
    for artist_id, evidence in store.genre_evidence().items():
        genres = artist_genres(evidence)
        if genres:
            evidenced[artist_id] = tuple(genres)
        chosen = tuple(g for g, sources in genres.items() if CURATED_SOURCES & set(sources))
        if chosen:
            curated[artist_id] = chosen
    return curated, evidenced


def vote_weight(rules: UmbrellaRules, family: str, q: str, umbrella: str) -> float:
    """A search's vote: 1 for a cell query whose genre names its umbrella alone
    (``UmbrellaRules.specific``), free text's weight otherwise."""
    if family == CELL_FAMILY:
        # genre:"house" also returns "progressive house" (Electronic & EDM) artists: a
        # genre that other umbrellas' genres contain votes as weakly as free text
        # (UmbrellaRules.specific; album tracks' umbrellas were 94-96% right without).
        genre = GENRE_FILTER.search(q)
        if genre is None or rules.specific(genre.group(1), umbrella):
            return 1.0
    return FREE_TEXT_WEIGHT


def artist_votes(store: Store, credits: dict[str, tuple[str, ...]], rules: UmbrellaRules
                 ) -> dict[str, Counter[str]]:
    """Per primary artist: umbrella votes from the umbrella-tagged searches that found its
    tracks or the artist itself (see the module doc). ``credits``: each track's artist IDs,
    primary first."""
    solo: dict[str, Counter[str]] = defaultdict(Counter)
    shared: list[tuple[tuple[str, ...], str, float]] = []
    for track_id, umbrella, family, q in store.umbrella_edges():
        artists = credits.get(track_id)
        if not artists:
            continue
        weight = vote_weight(rules, family, q, umbrella)
        if len(artists) == 1:
            solo[artists[0]][umbrella] += weight
        else:
            shared.append((artists, umbrella, weight))
    # An artist a search returned is its own evidence, as the sole artist of a track is.
    # Without these, one track shared with a featured artist could outvote them: album
    # tracks of an artist the cell queries named 15 times went out under another umbrella
    # in about one test crawl in four (tests/test_export.py).
    for artist_id, q, umbrella in store.cell_artist_hits():
        solo[artist_id][umbrella] += vote_weight(rules, CELL_FAMILY, q, umbrella)
    votes: dict[str, Counter[str]] = defaultdict(Counter)
    for artist, counts in solo.items():
        votes[artist].update(counts)
    for artists, umbrella, weight in shared:
        if not any(solo.get(other, {}).get(umbrella) for other in artists[1:]):
            votes[artists[0]][umbrella] += weight
    return dict(votes)
