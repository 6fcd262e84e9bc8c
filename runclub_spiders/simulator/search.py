"""Search over the synthetic catalog: free text plus Spotify's field filters.

Free text behaves like a forgiving relevance engine: words the catalog knows must all match
(in a track, artist or album name, an artist genre or an era word such as "70s"), words it
does not know ("running", "workout") are ignored, and a query of unknown words finds nothing.
Field filters (``artist:``, ``album:``, ``track:``, ``year:``, ``genre:``, ``isrc:``) narrow
the result exactly. Results are ranked by the hidden popularity, then by ID.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

from runclub_spiders.simulator.catalog import Catalog, Playlist

TOKEN = re.compile(r"[^\W_]+")
FILTER = re.compile(r'(?i)\b(artist|album|track|year|genre|isrc|tag):("([^"]*)"|(\S+))')
YEAR = re.compile(r"^(\d{4})(?:-(\d{4}))?$")


def tokens(text: str) -> list[str]:
    return TOKEN.findall(text.lower().replace("&", " and "))


def era_words(year: int) -> tuple[str, ...]:
    decade = year // 10 * 10
    return (str(year), f"{decade}s", f"{decade % 100:02d}s")


@dataclass(frozen=True, slots=True)
class Query:
    text: tuple[str, ...]
    filters: tuple[tuple[str, str], ...]

    @classmethod
    def parse(cls, q: str) -> Query:
        filters = []
        for match in FILTER.finditer(q):
            value = match.group(3) if match.group(3) is not None else match.group(4)
            filters.append((match.group(1).lower(), value))
        return cls(tuple(tokens(FILTER.sub(" ", q))), tuple(filters))


class SearchIndex:
    """Inverted indexes over tracks, artists and playlists."""

    def __init__(self, catalog: Catalog, cache_size: int = 512) -> None:
        self.catalog = catalog
        self.track_name: dict[str, set[int]] = {}
        self.track_artist: dict[str, set[int]] = {}
        self.track_album: dict[str, set[int]] = {}
        self.track_genre: dict[str, set[int]] = {}
        self.track_era: dict[str, set[int]] = {}
        self.track_year: dict[int, list[int]] = {}
        self.track_isrc: dict[str, list[int]] = {}
        self.artist_words: dict[str, set[int]] = {}
        self.artist_genre: dict[str, set[int]] = {}
        self.playlist_words: dict[str, set[str]] = {}
        self._cache: OrderedDict[tuple[str, Query], list] = OrderedDict()
        self._cache_size = cache_size
        self._build()

    @staticmethod
    def _add(index: dict, words: Iterable[str], key: object) -> None:
        for word in words:
            index.setdefault(word, set()).add(key)

    def _build(self) -> None:
        c = self.catalog
        artist_name_words = [tokens(a.name) for a in c.artists]
        artist_genre_words = [{w for g in a.genres for w in tokens(g)} for a in c.artists]
        album_words = [tokens(a.name) for a in c.albums]
        for t in c.tracks:
            album = c.albums[t.album_idx]
            self._add(self.track_name, tokens(t.name), t.idx)
            for a in t.artist_idxs:
                self._add(self.track_artist, artist_name_words[a], t.idx)
                self._add(self.track_genre, artist_genre_words[a], t.idx)
            self._add(self.track_album, album_words[album.idx], t.idx)
            self._add(self.track_era, era_words(album.year), t.idx)
            self.track_year.setdefault(album.year, []).append(t.idx)
            self.track_isrc.setdefault(t.isrc.lower(), []).append(t.idx)
        for a in c.artists:
            self._add(self.artist_words, artist_name_words[a.idx], a.idx)
            self._add(self.artist_words, artist_genre_words[a.idx], a.idx)
            self._add(self.artist_genre, artist_genre_words[a.idx], a.idx)
        for p in c.playlists.values():
            self._add(self.playlist_words, tokens(p.name), p.id)
            self._add(self.playlist_words, tokens(p.description or ""), p.id)

    # ---------------------------------------------------------------- queries
    def _cached(self, kind: str, query: Query, compute) -> list:
        key = (kind, query)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        result = compute(query)
        self._cache[key] = result
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return result

    @staticmethod
    def _all_words(index: dict[str, set], words: list[str]) -> set | None:
        """Keys matching every word, or None when a word is unknown to this index."""
        result: set | None = None
        for word in words:
            hits = index.get(word)
            if hits is None:
                return None
            result = set(hits) if result is None else result & hits
        return result

    def tracks(self, query: Query, genre_filter: str = "honoured",
               year_filter: str = "honoured") -> list[int]:
        """Track indexes matching ``query``, best ranked first.

        ``genre_filter``/``year_filter`` model what Spotify may do with those filters for an
        app: ``honoured`` (narrow exactly), ``ignored`` (the filter matches everything, so the
        query answers as if it were absent) or, for genre, ``empty`` (no results at all).
        """
        return self._cached(f"track:{genre_filter}:{year_filter}", query,
                            lambda q: self._tracks(q, genre_filter, year_filter))

    def _tracks(self, query: Query, genre_filter: str, year_filter: str) -> list[int]:
        candidates: set[int] | None = None
        known = [w for w in query.text if any(w in ix for ix in self._text_indexes)]
        for word in known:
            hits = set().union(*(ix.get(word, ()) for ix in self._text_indexes))
            candidates = hits if candidates is None else candidates & hits
        match_all = False               # an ignored filter stood alone: it matches everything
        for name, value in query.filters:
            if name == "tag":
                continue                    # tag:new / tag:hipster apply to albums only
            found = self._track_filter(name, value, genre_filter, year_filter)
            if found is None:
                match_all = True
                continue
            if not found:
                return []
            candidates = found if candidates is None else candidates & found
        if candidates is None and match_all:
            return list(self.catalog.tracks_by_popularity_idx)
        if not candidates:
            return []
        rank = self.catalog.rank
        return sorted(candidates, key=rank.__getitem__)

    def _track_filter(self, name: str, value: str, genre_filter: str,
                      year_filter: str) -> set[int] | None:
        """The tracks one field filter admits; None when it admits every track."""
        if (name == "genre" and genre_filter == "ignored") or (
                name == "year" and year_filter == "ignored"):
            return None
        if name == "year":
            match = YEAR.match(value)
            if not match:
                return set()
            low = int(match.group(1))
            high = int(match.group(2) or low)
            return {i for y in range(low, high + 1) for i in self.track_year.get(y, ())}
        if name == "isrc":
            return set(self.track_isrc.get(value.lower(), ()))
        if name == "genre" and genre_filter == "empty":
            return set()
        index = {"artist": self.track_artist, "album": self.track_album,
                 "track": self.track_name, "genre": self.track_genre}[name]
        return self._all_words(index, tokens(value)) or set()

    @property
    def _text_indexes(self) -> tuple[dict[str, set[int]], ...]:
        return (self.track_name, self.track_artist, self.track_album, self.track_genre,
                self.track_era)

    def artists(self, query: Query, genre_filter: str = "honoured") -> list[int]:
        """Artist indexes matching ``query`` (``genre_filter`` as for :meth:`tracks`)."""
        return self._cached(f"artist:{genre_filter}", query,
                            lambda q: self._artists(q, genre_filter))

    def _artists(self, query: Query, genre_filter: str) -> list[int]:
        candidates: set[int] | None = None
        known = [w for w in query.text if w in self.artist_words]
        if known:
            candidates = self._all_words(self.artist_words, known)
        match_all = False
        for name, value in query.filters:
            if name == "genre":
                if genre_filter == "empty":
                    return []
                if genre_filter == "ignored":
                    match_all = True
                    continue
                hits = self._all_words(self.artist_genre, tokens(value)) or set()
            elif name == "artist":
                hits = self._all_words(self.artist_words, tokens(value)) or set()
            else:
                continue
            candidates = hits if candidates is None else candidates & hits
        if candidates is None and match_all:
            candidates = set(range(len(self.catalog.artists)))
        if not candidates:
            return []
        artists = self.catalog.artists
        return sorted(candidates, key=lambda i: (-artists[i].popularity, artists[i].id))

    def playlists(self, query: Query) -> list[Playlist]:
        return self._cached("playlist", query, self._playlists)

    def _playlists(self, query: Query) -> list[Playlist]:
        known = [w for w in query.text if w in self.playlist_words]
        if not known:
            return []
        ids = self._all_words(self.playlist_words, known) or set()
        playlists = [self.catalog.playlists[i] for i in ids]
        # Editorial lists rank first, as on Spotify, then bigger lists.
        return sorted(playlists, key=lambda p: (not p.editorial, -len(p.track_idxs), p.id))
