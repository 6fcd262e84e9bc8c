"""Album expansion: discovery's share of the albums and artists quota buckets.

Spotify counts quota per endpoint bucket, so a crawl that only searches leaves the other
buckets idle. A search page costs one search call for at most 10 tracks (Development Mode);
an album found on it costs one albums call (``/albums/{id}``: up to 50 tracks) and has the
artist and year of the track that revealed it, so its tracks mostly land in that track's
cell. An artist known in an umbrella costs one artists call
(``/artists/{id}/albums?include_groups=album,single``) for up to 10 more of their albums.
Once Spotify parks the albums bucket, the frontier reads the same albums through
``/albums/{id}/tracks`` (``Frontier._next_album_tracks``), which may count apart.
Compilations, "appears on" albums and reissues (``expandable``) are never expanded: other
artists, other years, or the same recordings again.

Choosing, in each bucket, with what the store knows and what the crawl learnt:

* an album's worth is its expected new exportable tracks: the tracks it has that the store
  does not (``total_tracks`` minus those stored) times the share of album tracks that count
  (``Learnt.share``) times the share ReccoBeats knows (``Learnt.features_share``);
  the frontier asks the album worth most among the open cells' best, if it is worth at
  least ``DISCOVERY_MIN_YIELD``;
* an artist listing's worth is learnt: the new exportable tracks the albums it revealed are
  expected to bring, per call (the listing and the album calls it leads to); once the crawl
  is quota-bound (a Spotify bucket has been parked) it is at least the price, since the
  artists bucket serves discovery nothing else, and the artists a cell query's search named
  (``type=track,artist``) are listed too (``list_hit_artists``). Of the neediest umbrella's
  artists, the one with the fewest albums the store knows is listed first
  (``next_listing``): a listing's worth is the albums it reveals, and an artist seen only
  beside others on a search has all of theirs still to show, while one whose tracks the
  searches found has most of its albums known already (40k benchmark, per listing: 8.4
  tracks counted from the albums revealed for artists without a searched track, 2.8 for
  those with 8 or more);
* a cell stops drawing on either when it reaches its target (``cells.CellBook``).

The state lives in the store (``albums``, ``artist_albums``): a restart neither reads an
album nor lists an artist twice.
"""

from __future__ import annotations

import heapq
import math
from collections import Counter
from collections.abc import Callable, Container
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from runclub_spiders.catalog.years import REISSUE_WORDS, AlbumAppearance, recording_year
from runclub_spiders.frontier.work import ALBUM, ALBUM_TRACKS, ARTIST_ALBUMS, Work
from runclub_spiders.seeds import DECADES, GENRE_FILTER, SeedQuery

if TYPE_CHECKING:
    from runclub_spiders.spotify_objects import AlbumRef
    from runclub_spiders.store import Store
    from runclub_spiders.umbrellas import UmbrellaRules

Cell = tuple[str, str]
EXPANDED = ("album", "single")     # compilations and appears_on: other artists, other years
MIN_VOTES = 1                      # specific-genre cell-query hits before an artist's albums
UNKNOWN_SIZE = 10                  # tracks assumed on an album whose object gave no total
ALBUM_PAGE = 50                    # /albums/{id} and /albums/{id}/tracks pages


@dataclass
class Learnt:
    """Running shares, with priors until the crawl has seen enough (``weight`` calls)."""

    # New tracks by first source (search, album), and of them those counted toward a cell
    # (passed the cheap filters, won their ISRC): ``Planner.counted``, the same object.
    new: Counter[str] = field(default_factory=Counter)
    counted: Counter[str] = field(default_factory=Counter)
    listings: int = 0               # artist listing pages answered
    listing_album_calls: int = 0    # album calls on the albums listings revealed
    listing_counted: int = 0        # tracks those calls counted toward a cell
    # The share of tracks ReccoBeats has features for (about 60%, docs/simulator.md,
    # "ReccoBeats"; DISCOVERY_OVERSAMPLE assumes it too). Assumed, not learnt: enrichment
    # answers arrive in their own time, and a request's worth must not depend on when.
    features_share: float = 0.6
    weight: int = 20

    def read(self, store: Store) -> None:
        """Everything from the store (``Store.discovery_yields``): a restarted crawl, and a
        crawl deciding whether it is done, judge from what the store holds, not from the
        order answers came in."""
        y = store.discovery_yields()
        self.new = Counter({source: int(y.get(f"{source}_new", 0))
                            for source in ("search", "album")})
        self.listings, self.listing_album_calls = int(y["listings"]), \
            int(y["listing_album_calls"])
        self.listing_counted = int(y["listing_counted"])

    def share(self, source: str) -> float:
        """Of the new tracks ``source`` brought, the share counted (prior 0.85)."""
        prior = 0.85
        return (self.counted[source] + prior * self.weight) / (self.new[source] + self.weight)

    def listing_worth(self) -> float:
        """New exportable tracks per listing call: the tracks counted from the albums
        listings revealed, per listing (a prior of 5 listings of 4 counted tracks each,
        until there is evidence). Each album call they lead to is judged on its own
        (``worth``), in its own bucket."""
        return (self.listing_counted + 4 * 5) * self.features_share / (self.listings + 5)


@dataclass
class AlbumState:
    ref_type: str | None
    total: int | None
    umbrella: str | None
    decade: str | None
    artist: str | None
    found_by: str = "track"
    offset: int = 0


class Expansion:
    def __init__(self, store: Store, rules: UmbrellaRules, *, min_yield: float, albums: bool,
                 listings: bool) -> None:
        self.store, self.min_yield = store, min_yield
        # How full an open cell is (0..1), None when it needs no more (``CellBook.fill``);
        # how many more tracks of an artist a cell counts (``Planner.artist_room``).
        self.need: Callable[[Cell], float | None] = lambda cell: 0.0
        self.room: Callable[[Cell, str | None], float] = lambda cell, artist: math.inf
        # how many more candidates a cell wants (``Planner.wanted``).
        self.wanted: Callable[[Cell], float] = lambda cell: math.inf
        # Has a Spotify bucket been parked (``Frontier.quota_bound``)? Then the artists
        # bucket's calls that listings leave unspent are lost, as it serves discovery
        # nothing else: an artist is listed whatever listings have brought so far, and the
        # albums it reveals are judged on their own, in the albums bucket.
        self.quota_bound: Callable[[], bool] = lambda: False
        self.albums_on, self.listings_on = albums, listings
        self.learnt = Learnt()
        self.known = store.tracks_per_album()
        self.open: dict[str, AlbumState] = {}
        self.by_artist: dict[str, set[str]] = {}        # artist -> their open albums
        self.heaps: dict[Cell, list[tuple[int, str]]] = {}
        # Umbrella votes per artist: the cell queries (genre filter) that returned a track of
        # theirs as its sole artist, or them among the search's artists, counted only for a
        # genre that names its umbrella alone (``UmbrellaRules.specific``: "pop" also
        # returns "latin pop" and "punjabi pop" artists). An album waits until its artist's
        # votes name its umbrella (MIN_VOTES, and no other umbrella ahead): an album
        # multiplies a mistake by its length. One such vote suffices: album tracks'
        # umbrellas were 98% right against the simulator's truth (tests/test_export.py),
        # and the 40k bench's albums bucket stayed spent.
        self.rules = rules
        self.votes: dict[str, Counter[str]] = {}
        for artist_id, q, umbrella in store.solo_cell_votes():
            self._count_vote(artist_id, q, umbrella)
        self.waiting: dict[str, list[str]] = {}          # artist -> albums waiting for votes
        for row in store.albums():
            self._add(row["id"], AlbumState(row["album_type"], row["total_tracks"],
                                            row["umbrella"], row["decade"], row["artist_id"],
                                            row["found_by"], row["next_offset"]))
        # Albums the store knows per artist (``next_listing``: a listing reveals the rest).
        self.albums_known: Counter[str] = Counter(store.albums_per_artist())
        # Artists to list, per umbrella, in the order they were found.
        self.artists: dict[str, list[str]] = {}
        self.listing: dict[str, tuple[str, int]] = {}      # artist -> (umbrella, offset)
        for row in store.artist_listings():
            if row["listed"] is None and row["umbrella"]:
                self.artists.setdefault(row["umbrella"], []).append(row["artist_id"])
                self.listing[row["artist_id"]] = (row["umbrella"], row["next_offset"])

    # ---------------------------------------------------------------- learning about albums
    def see(self, ref: AlbumRef, cells: list[Cell], now: str, *, list_artist: bool) -> None:
        """An album seen on a track (or an artist's list) whose tracks count toward ``cells``
        (the track's, else the album's own decade with the umbrella given)."""
        if not expandable(ref) or ref.artist_id is None:
            return
        umbrella = cells[0][0] if cells else None
        decade = album_decade(ref) or (cells[0][1] if cells else None)
        if umbrella is None or decade is None:
            return                  # no cell to count toward: not worth a call
        if self.store.see_album(ref, umbrella=umbrella, decade=decade, found_by="track",
                                now=now):
            self.albums_known[ref.artist_id] += 1
            self._add(ref.id, AlbumState(ref.album_type, ref.total_tracks, umbrella, decade,
                                         ref.artist_id))
        if list_artist and ref.artist_id and self.store.see_artist_listing(ref.artist_id,
                                                                           umbrella):
            self.artists.setdefault(umbrella, []).append(ref.artist_id)
            self.listing[ref.artist_id] = (umbrella, 0)

    def stored(self, album_ids: list[str | None]) -> None:
        """New tracks were stored: their albums have fewer unknown tracks."""
        for album_id in album_ids:
            if album_id is not None:
                self.known[album_id] = self.known.get(album_id, 0) + 1

    def _count_vote(self, artist_id: str, q: str, umbrella: str) -> bool:
        genre = GENRE_FILTER.search(q)
        if genre is None or not self.rules.specific(genre.group(1), umbrella):
            return False
        self.votes.setdefault(artist_id, Counter())[umbrella] += 1
        return True

    def vote(self, artist_id: str, query: SeedQuery) -> None:
        """A cell query returned ``artist_id``: as the sole artist of a track, or among its
        artists (``artist_hit``)."""
        umbrella = query.umbrella
        if umbrella is None or not self._count_vote(artist_id, query.q, umbrella):
            return
        if self.named(artist_id, umbrella):
            for album_id in self.waiting.pop(artist_id, []):
                if album_id in self.open:
                    self._queue(album_id)

    def artist_hit(self, artist_id: str, query: SeedQuery) -> None:
        """A cell query returned ``artist_id`` among its artists (its genre filter named the
        artist): a vote, and, in a quota-bound crawl, the artist waits to be listed
        (``list_hit_artists``)."""
        self.vote(artist_id, query)
        if query.umbrella is not None and self.quota_bound():
            self._list_hit(artist_id, query.umbrella)

    def list_hit_artists(self) -> None:
        """The crawl is quota-bound (now, or since an earlier run): every artist the cell
        queries' searches named waits to be listed, for the umbrella of the query that
        named it first, in the order they were found (``listing_open`` lists one only while
        its votes name that umbrella). Their albums are new to the store more often than
        those of an artist found on a track, and the artists bucket serves discovery nothing
        else, so its calls not spent on them are lost. Without quota every call counts: on
        the small catalog, listing them cost 104 calls for 14 more exported tracks."""
        if not self.quota_bound():
            return
        for artist_id, umbrella in self.store.artist_hits():
            self._list_hit(artist_id, umbrella)

    def _list_hit(self, artist_id: str, umbrella: str) -> None:
        # Not gated on the votes: they may name the umbrella only later, and a restart must
        # queue what the interrupted run queued (``listing_open`` checks them when choosing).
        if self.store.see_artist_listing(artist_id, umbrella):
            self.artists.setdefault(umbrella, []).append(artist_id)
            self.listing[artist_id] = (umbrella, 0)

    def named(self, artist_id: str | None, umbrella: str | None) -> bool:
        """Do the artist's votes name ``umbrella`` (enough of them, none ahead)?"""
        votes = self.votes.get(artist_id or "")
        return bool(votes) and votes[umbrella] >= MIN_VOTES \
            and votes[umbrella] == max(votes.values())

    def _add(self, album_id: str, state: AlbumState) -> None:
        self.open[album_id] = state
        if state.artist is not None:
            self.by_artist.setdefault(state.artist, set()).add(album_id)
        if self.named(state.artist, state.umbrella):
            self._queue(album_id)
        elif state.artist is not None:
            self.waiting.setdefault(state.artist, []).append(album_id)

    def _queue(self, album_id: str) -> None:
        state = self.open[album_id]
        cell = (state.umbrella, state.decade)
        heapq.heappush(self.heaps.setdefault(cell, []), (-self.unknown(album_id), album_id))

    def unknown(self, album_id: str) -> int:
        state = self.open[album_id]
        total = state.total if state.total is not None else UNKNOWN_SIZE
        return max(0, total - max(self.known.get(album_id, 0), state.offset))

    def worth(self, album_id: str) -> float:
        """Expected new exportable tracks of one more call on this album (no more than its
        artist still has room for in the cell, nor than the cell still wants)."""
        state = self.open[album_id]
        cell = (state.umbrella, state.decade)
        unknown = min(self.unknown(album_id), ALBUM_PAGE, self.room(cell, state.artist),
                      self.wanted(cell))
        return unknown * self.learnt.share("album") * self.learnt.features_share

    # ---------------------------------------------------------------- choosing
    def best_album(self, cell: Cell, busy: Container[tuple]) -> str | None:
        """The album of ``cell`` with the most expected new tracks, worth a call; None if
        none is (lazy heap: entries whose count changed are put back with the new one)."""
        heap = self.heaps.get(cell)
        skipped = []
        found = None
        while heap:
            negative, album_id = heap[0]
            if album_id not in self.open:
                heapq.heappop(heap)
                continue
            if -negative != self.unknown(album_id):
                heapq.heapreplace(heap, (-self.unknown(album_id), album_id))
                continue
            if (ALBUM, album_id) in busy or self.room(cell, self.open[album_id].artist) < 1:
                skipped.append(heapq.heappop(heap))        # in flight, or its artist is full
                continue
            if self.worth(album_id) >= self.min_yield:
                found = album_id
            break
        for entry in skipped:
            heapq.heappush(heap, entry)
        return found

    def album_worth(self, cell: Cell, busy: Container[tuple]) -> float:
        album_id = self.best_album(cell, busy)
        return self.worth(album_id) if album_id else 0.0

    def next_album(self, cells: list[Cell], busy: Container[tuple]) -> Work | None:
        """Read the album worth most among the best of each open cell (``cells``, neediest
        first: the neediest wins a tie). The albums bucket has its own quota, and every
        cell it draws for still wants tracks, so its day is spent where a call brings most."""
        if not self.albums_on:
            return None
        best, best_worth = None, 0.0
        for cell in cells:
            album_id = self.best_album(cell, busy)
            if album_id is not None and (worth := self.worth(album_id)) > best_worth:
                best, best_worth = album_id, worth
        if best is None:
            return None
        return Work(ALBUM, offset=self.open[best].offset, album_id=best)

    def listing_worth(self) -> float:
        """What one more listing is worth (``Learnt.listing_worth``); in a quota-bound
        crawl at least the price (``quota_bound``)."""
        worth = self.learnt.listing_worth()
        return max(worth, self.min_yield) if self.quota_bound() else worth

    def listing_open(self, umbrella: str, busy: Container[tuple], *,
                     fewest_albums: bool = False) -> str | None:
        """An artist of ``umbrella`` to list, when listings are worth it: one whose votes
        name the umbrella, with room left in an open cell of it (the artist cap), not being
        listed. The first found, or with ``fewest_albums`` the one with the fewest albums
        the store knows (the first found among equals)."""
        if not self.listings_on or self.listing_worth() < self.min_yield:
            return None
        open_cells = [(umbrella, d) for d in DECADES if self.need((umbrella, d)) is not None]
        chosen, fewest = None, math.inf
        for a in self.artists.get(umbrella, ()):
            known = self.albums_known[a] if fewest_albums else 0
            if known < fewest and (ARTIST_ALBUMS, a) not in busy and self.named(a, umbrella) \
                    and any(self.room(cell, a) >= 1 for cell in open_cells):
                chosen, fewest = a, known
                if known == 0:
                    break                   # none can have fewer
        return chosen

    def next_listing(self, umbrellas: list[str], busy: Container[tuple]) -> Work | None:
        """List the albums of the artist of the neediest of ``umbrellas`` with the fewest
        albums known (the module doc)."""
        for umbrella in umbrellas:
            artist_id = self.listing_open(umbrella, busy, fewest_albums=True)
            if artist_id is not None:
                return Work(ARTIST_ALBUMS, offset=self.listing[artist_id][1],
                            artist_id=artist_id)
        return None

    # ---------------------------------------------------------------- answers
    def album_read(self, album_id: str, next_offset: int, total: int | None, new: int,
                   counted: int, now: str) -> bool:
        """One page of an album answered; True when there is more to read."""
        state = self.open.get(album_id)
        if state is not None and state.found_by == "listing":
            self.learnt.listing_album_calls += state.offset == 0
            self.learnt.listing_counted += counted
        more = total is not None and next_offset < total
        self.store.album_progress(album_id, next_offset, now=None if more else now)
        if state is not None:
            state.offset, state.total = next_offset, total if total is not None else state.total
            if more:
                cell = (state.umbrella, state.decade)
                heapq.heappush(self.heaps[cell], (-self.unknown(album_id), album_id))
            else:
                self._close(album_id)
        return more

    def gone(self, work: Work, now: str) -> None:
        """Spotify will not serve this album or artist (400, 403, 404): never asked again."""
        if work.kind in (ALBUM, ALBUM_TRACKS) and work.album_id is not None:
            self.store.album_progress(work.album_id, work.offset, now=now)
            self._close(work.album_id)
        elif work.kind == ARTIST_ALBUMS and work.artist_id is not None:
            self.listing_read(work.artist_id, [], work.offset, None, now,
                              first=work.offset == 0)

    def listing_read(self, artist_id: str, refs: list[AlbumRef], next_offset: int,
                     total: int | None, now: str, *, first: bool) -> bool:
        """One page of an artist's albums answered; True when the next page is worth it."""
        umbrella = self.listing.get(artist_id, (None, 0))[0]
        useful = False
        for ref in refs:
            if not expandable(ref) or ref.id in self.open or umbrella is None:
                continue
            decade = album_decade(ref)
            if decade is None:
                continue
            if self.store.see_album(ref, umbrella=umbrella, decade=decade,
                                    found_by="listing", now=now):
                if ref.artist_id is not None:
                    self.albums_known[ref.artist_id] += 1
                self._add(ref.id, AlbumState(ref.album_type, ref.total_tracks, umbrella,
                                             decade, ref.artist_id, "listing"))
                useful = useful or self.need((umbrella, decade)) is not None
        self.learnt.listings += first          # artists listed, as the store counts them
        more = total is not None and next_offset < total and useful
        self.store.listing_progress(artist_id, next_offset, total, now=None if more else now)
        if more and umbrella is not None:
            self.listing[artist_id] = (umbrella, next_offset)
        else:
            if umbrella is not None and artist_id in self.artists.get(umbrella, ()):
                self.artists[umbrella].remove(artist_id)
            self.listing.pop(artist_id, None)
        return more

    def _close(self, album_id: str) -> None:
        state = self.open.pop(album_id, None)
        if state is not None and state.artist is not None:
            self.by_artist.get(state.artist, set()).discard(album_id)

    def to_read(self, artist_id: str) -> bool:
        """Has the artist an album still to be read for an open cell (its votes name the
        umbrella, the artist has room there, it is worth a call)? Its tracks will come by
        that read."""
        for album_id in self.by_artist.get(artist_id, ()):
            state = self.open[album_id]
            cell = (state.umbrella, state.decade)
            if self.albums_on and self.named(artist_id, state.umbrella) \
                    and self.need(cell) is not None and self.room(cell, artist_id) >= 1 \
                    and self.worth(album_id) >= self.min_yield:
                return True
        return False

    def to_list(self, artist_id: str) -> bool:
        """Is the artist waiting for its albums to be listed (not listed to the end)?"""
        return artist_id in self.listing

    def unread(self, artist_id: str) -> int:
        """Tracks of the artist's known albums that the store lacks (albums not read to the
        end): what a ReccoBeats list of the artist's tracks can still name."""
        return sum(self.unknown(album_id) for album_id in self.by_artist.get(artist_id, ()))

    def album_umbrella(self, album_id: str) -> str | None:
        state = self.open.get(album_id)
        return state.umbrella if state is not None else None


def expandable(ref: AlbumRef) -> bool:
    """Albums and singles only, and no reissue (remaster, deluxe, greatest hits...): its
    tracks are the original's recordings again (one ISRC each, already found or to be found
    on the original) and its date is not theirs."""
    return ref.album_type in EXPANDED and not REISSUE_WORDS.search(ref.name)


def album_decade(ref: AlbumRef) -> str | None:
    """The decade an album's own date gives (``catalog.years``, one appearance)."""
    appearance = AlbumAppearance(ref.release_date, ref.album_type, ref.name, "")
    return recording_year([appearance], None).decade
