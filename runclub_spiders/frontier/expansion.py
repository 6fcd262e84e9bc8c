"""Album expansion: discovery's share of the albums and artists quota buckets.

Spotify counts quota per endpoint bucket, so a crawl that only searches leaves the other
buckets idle. A search page costs one search call for at most 10 tracks (Development Mode);
an album found on it costs one albums call (``/albums/{id}``: up to 50 tracks) and has the
artist and year of the track that revealed it, so its tracks mostly land in that track's
cell. An artist known in an umbrella costs one artists call
(``/artists/{id}/albums?include_groups=album,single``) for up to 10 more of their albums.
Compilations, "appears on" albums and reissues (``expandable``) are never expanded: other
artists, other years, or the same recordings again.

Choosing, in each bucket, with what the store knows and what the crawl learnt:

* an album's worth is its expected new exportable tracks: the tracks it has that the store
  does not (``total_tracks`` minus those stored) times the share of album tracks that count
  (``Learnt.share``) times the share ReccoBeats knows (``Learnt.features_share``);
  the frontier asks the album worth most among the open cells' best, if it is worth at
  least ``DISCOVERY_MIN_YIELD``;
* an artist listing's worth is learnt: the new exportable tracks the albums it revealed are
  expected to bring, per call (the listing and the album calls it leads to);
* a cell stops drawing on either when it reaches its target (``cells.CellBook``).

Album checks (``DISCOVERY_ALBUM_CHECKS``): ReccoBeats lists the tracks of an album it knows
(``/v1/album?ids=`` for its UUID, then ``/v1/album/{uuid}/track``), only those it has
features for, with their Spotify IDs, ISRCs, durations and markets: no Spotify quota. So
before an album costs an albums call, the crawl knows exactly how many of its tracks the
store lacks and the export could keep (``good``). With checks on, the albums bucket reads
only checked albums, the richest first (an album's worth is its good tracks, no more than
its artist's room or its cell's want, times ``CHECKED_SHARE``); checks run ahead of the
reads (``CHECK_AHEAD`` rich albums waiting), the biggest unchecked albums first. An album
whose good tracks are too few for an albums call (``LEAD_MAX_GOOD``) hands them to the
tracks bucket as leads (``frontier.leads``).

The state lives in the store (``albums``, ``artist_albums``): a restart neither reads an
album nor lists an artist twice.
"""

from __future__ import annotations

import heapq
import json
import math
from collections import Counter
from collections.abc import Callable, Container
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from runclub_spiders.catalog.years import REISSUE_WORDS, AlbumAppearance, recording_year
from runclub_spiders.frontier.work import (
    ALBUM,
    ARTIST_ALBUMS,
    RECCO_ALBUM_TRACKS,
    RECCO_ALBUMS,
    Work,
)
from runclub_spiders.seeds import DECADES, GENRE_FILTER, SeedQuery

if TYPE_CHECKING:
    from runclub_spiders.spotify_objects import AlbumRef
    from runclub_spiders.store import Store, TrackRecord
    from runclub_spiders.umbrellas import UmbrellaRules

Cell = tuple[str, str]
EXPANDED = ("album", "single")     # compilations and appears_on: other artists, other years
MIN_VOTES = 1                      # specific-genre cell-query hits before an artist's albums
UNKNOWN_SIZE = 10                  # tracks assumed on an album whose object gave no total
ALBUM_PAGE = 50                    # /albums/{id} and /albums/{id}/tracks pages
# Of a checked album's good tracks (ReccoBeats has features for them, their length and market
# pass, the store lacks them), the share expected to count: a few lose their ISRC to a
# sibling or find their artist's room taken (the leads' learnt share is about 0.9 too).
CHECKED_SHARE = 0.9
CHECK_AHEAD = 40                   # checked albums with GOOD_AHEAD good tracks kept waiting
GOOD_AHEAD = 4
LEAD_MAX_GOOD = 2                  # fewer good tracks than this + 1: leads, not an album call
RECCO_IDS = 40                     # /v1/album?ids= batch (the API's maximum)


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
                 listings: bool, checks: bool = False) -> None:
        self.store, self.min_yield = store, min_yield
        # How full an open cell is (0..1), None when it needs no more (``CellBook.fill``);
        # how many more tracks of an artist a cell counts (``Planner.artist_room``).
        self.need: Callable[[Cell], float | None] = lambda cell: 0.0
        self.room: Callable[[Cell, str | None], float] = lambda cell, artist: math.inf
        # how many more candidates a cell wants (``Planner.wanted``).
        self.wanted: Callable[[Cell], float] = lambda cell: math.inf
        self.albums_on, self.listings_on = albums, listings
        self.checks_on = albums and checks
        self.learnt = Learnt()
        self.known = store.tracks_per_album()
        self.open: dict[str, AlbumState] = {}
        self.heaps: dict[Cell, list[tuple[int, str]]] = {}      # unchecked, biggest first
        self.ready: dict[Cell, list[tuple[int, str]]] = {}      # checked, richest first
        # Checks: ReccoBeats' album UUIDs looked up ('' for an album it does not know), and
        # each checked album's good tracks still missing from the store.
        self.recco_ids: dict[str, str] = {}
        self.good: dict[str, set[str]] = {}
        for row in store.album_checks():
            if row["recco_id"] is not None:
                self.recco_ids[row["id"]] = row["recco_id"]
            if row["good"] is not None:
                self.good[row["id"]] = {t for t in json.loads(row["good"])
                                        if store.track_source(t) is None}
        # Umbrella votes per artist: the cell queries (genre filter) that returned a track of
        # theirs as its sole artist, counted only for a genre that names its umbrella alone
        # (``UmbrellaRules.specific``: "pop" also returns "latin pop" and "punjabi pop"
        # artists). An album waits until its artist's votes name its umbrella (MIN_VOTES,
        # and no other umbrella ahead): an album multiplies a mistake by its length. One
        # such vote suffices: album tracks' umbrellas were 98% right against the simulator's
        # truth (tests/test_export.py), and the 40k bench's albums bucket stayed spent.
        self.rules = rules
        self.votes: dict[str, Counter[str]] = {}
        for artist_id, q, umbrella in store.solo_cell_votes():
            self._count_vote(artist_id, q, umbrella)
        self.waiting: dict[str, list[str]] = {}          # artist -> albums waiting for votes
        for row in store.albums():
            self._add(row["id"], AlbumState(row["album_type"], row["total_tracks"],
                                            row["umbrella"], row["decade"], row["artist_id"],
                                            row["found_by"], row["next_offset"]))
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
            self._add(ref.id, AlbumState(ref.album_type, ref.total_tracks, umbrella, decade,
                                         ref.artist_id))
        if list_artist and ref.artist_id and self.store.see_artist_listing(ref.artist_id,
                                                                           umbrella):
            self.artists.setdefault(umbrella, []).append(ref.artist_id)
            self.listing[ref.artist_id] = (umbrella, 0)

    def stored(self, records: list[TrackRecord]) -> None:
        """New tracks were stored: their albums have fewer unknown (and good) tracks."""
        for record in records:
            if record.album_id is not None:
                self.known[record.album_id] = self.known.get(record.album_id, 0) + 1
                good = self.good.get(record.album_id)
                if good is not None:
                    good.discard(record.id)

    def _count_vote(self, artist_id: str, q: str, umbrella: str) -> bool:
        genre = GENRE_FILTER.search(q)
        if genre is None or not self.rules.specific(genre.group(1), umbrella):
            return False
        self.votes.setdefault(artist_id, Counter())[umbrella] += 1
        return True

    def vote(self, artist_id: str, query: SeedQuery) -> None:
        """A cell query returned a track whose sole artist is ``artist_id``."""
        umbrella = query.umbrella
        if umbrella is None or not self._count_vote(artist_id, query.q, umbrella):
            return
        if self.named(artist_id, umbrella):
            for album_id in self.waiting.pop(artist_id, []):
                if album_id in self.open:
                    self._queue(album_id)

    def named(self, artist_id: str | None, umbrella: str | None) -> bool:
        """Do the artist's votes name ``umbrella`` (enough of them, none ahead)?"""
        votes = self.votes.get(artist_id or "")
        return bool(votes) and votes[umbrella] >= MIN_VOTES \
            and votes[umbrella] == max(votes.values())

    def _add(self, album_id: str, state: AlbumState) -> None:
        self.open[album_id] = state
        if self.named(state.artist, state.umbrella):
            self._queue(album_id)
        elif state.artist is not None:
            self.waiting.setdefault(state.artist, []).append(album_id)

    def _queue(self, album_id: str) -> None:
        state = self.open[album_id]
        cell = (state.umbrella, state.decade)
        if album_id in self.good:
            heapq.heappush(self.ready.setdefault(cell, []), (-self._size(album_id), album_id))
        else:
            heapq.heappush(self.heaps.setdefault(cell, []), (-self.unknown(album_id),
                                                             album_id))

    def _size(self, album_id: str) -> int:
        """The heap key: good tracks of a checked album, else its unknown ones."""
        good = self.good.get(album_id)
        return len(good) if good is not None else self.unknown(album_id)

    def unknown(self, album_id: str) -> int:
        state = self.open[album_id]
        total = state.total if state.total is not None else UNKNOWN_SIZE
        return max(0, total - max(self.known.get(album_id, 0), state.offset))

    def worth(self, album_id: str) -> float:
        """Expected new exportable tracks of one more call on this album (no more than its
        artist still has room for in the cell, nor than the cell still wants)."""
        state = self.open[album_id]
        cell = (state.umbrella, state.decade)
        good = self.good.get(album_id)
        if good is not None:
            return min(len(good), ALBUM_PAGE, self.room(cell, state.artist),
                       self.wanted(cell)) * CHECKED_SHARE
        unknown = min(self.unknown(album_id), ALBUM_PAGE, self.room(cell, state.artist),
                      self.wanted(cell))
        return unknown * self.learnt.share("album") * self.learnt.features_share

    # ---------------------------------------------------------------- choosing
    def best_album(self, cell: Cell, busy: Container[tuple], *, checked: bool | None = None
                   ) -> str | None:
        """The album of ``cell`` with the most expected new tracks, worth a call; None if
        none is (lazy heap: entries whose count changed are put back with the new one).
        With checks on, only checked albums are read (``checked`` None: as reading would;
        False: the best unchecked one, for the next check)."""
        if checked is None:
            checked = self.checks_on
        heap = (self.ready if checked else self.heaps).get(cell)
        skipped = []
        found = None
        while heap:
            negative, album_id = heap[0]
            if album_id not in self.open or (not checked and album_id in self.good):
                heapq.heappop(heap)             # read, or checked (now in ``ready``)
                continue
            if -negative != self._size(album_id):
                heapq.heapreplace(heap, (-self._size(album_id), album_id))
                continue
            if (ALBUM, album_id) in busy or (RECCO_ALBUM_TRACKS, album_id) in busy \
                    or self.room(cell, self.open[album_id].artist) < 1:
                skipped.append(heapq.heappop(heap))        # in flight, or its artist is full
                continue
            if self.worth(album_id) >= self.min_yield:
                found = album_id
            break
        for entry in skipped:
            heapq.heappush(heap, entry)
        return found

    def album_worth(self, cell: Cell, busy: Container[tuple]) -> float:
        """What the cell's best album is expected to bring: checked or, with checks on, an
        unchecked one (it is read once checked)."""
        worth = 0.0
        for checked in (True, False) if self.checks_on else (False,):
            album_id = self.best_album(cell, busy, checked=checked)
            worth = max(worth, self.worth(album_id) if album_id else 0.0)
        return worth

    # ---------------------------------------------------------------- checks
    def ahead(self, cells: list[Cell]) -> int:
        """Checked albums waiting in open ``cells`` with at least GOOD_AHEAD good tracks."""
        return sum(1 for cell in cells for negative, album_id in self.ready.get(cell, ())
                   if -negative >= GOOD_AHEAD and album_id in self.open)

    def next_check(self, cells: list[Cell], busy: Container[tuple]) -> Work | None:
        """ReccoBeats work for the albums bucket's next reads, while fewer than CHECK_AHEAD
        rich checked albums wait: the track list of the biggest unchecked album (worth a
        call on its prior) whose UUID is known, else a batch of UUIDs to look up."""
        if not self.checks_on or self.ahead(cells) >= CHECK_AHEAD:
            return None
        best, best_worth = None, 0.0
        for cell in cells:
            album_id = self.best_album(cell, busy, checked=False)
            if album_id is not None and (worth := self.worth(album_id)) > best_worth:
                best, best_worth = album_id, worth
        if best is None:
            return None
        if self.recco_ids.get(best):
            return Work(RECCO_ALBUM_TRACKS, album_id=best)
        asking = {a for key in busy if key[0] == RECCO_ALBUMS for a in key[1]}
        batch = [best] if best not in asking else []
        for cell in cells:
            heap = self.heaps.get(cell, ())
            for _, album_id in heapq.nsmallest(RECCO_IDS, heap):
                if len(batch) >= RECCO_IDS:
                    break
                if album_id in self.open and album_id not in self.good \
                        and album_id not in self.recco_ids and album_id not in asking \
                        and album_id not in batch:
                    batch.append(album_id)
        return Work(RECCO_ALBUMS, album_ids=tuple(sorted(batch))) if batch else None

    def looked_up(self, asked: tuple[str, ...], found: dict[str, str], now: str) -> None:
        """``/v1/album?ids=`` answered: ``found`` maps Spotify album ID -> UUID; an album
        ReccoBeats does not know has no track it has features for: checked, nothing good."""
        self.store.set_album_recco_ids(found, asked)
        for album_id in asked:
            self.recco_ids[album_id] = found.get(album_id, "")
            if album_id not in found:
                self.checked(album_id, [], now)

    def checked(self, album_id: str, good: list[str], now: str) -> None:
        """An album's good tracks (``Leads.keepable`` rows the store lacks)."""
        self.store.set_album_good(album_id, good, now)
        self.good[album_id] = set(good)
        if album_id in self.open and self.named(self.open[album_id].artist,
                                                self.open[album_id].umbrella):
            self._queue(album_id)

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

    def listing_open(self, umbrella: str, busy: Container[tuple]) -> str | None:
        """An artist of ``umbrella`` to list, when listings are worth it: one whose votes
        name the umbrella, with room left in an open cell of it (the artist cap), not being
        listed."""
        if not self.listings_on or self.learnt.listing_worth() < self.min_yield:
            return None
        open_cells = [(umbrella, d) for d in DECADES if self.need((umbrella, d)) is not None]
        return next((a for a in self.artists.get(umbrella, ())
                     if (ARTIST_ALBUMS, a) not in busy and self.named(a, umbrella)
                     and any(self.room(cell, a) >= 1 for cell in open_cells)), None)

    def next_listing(self, umbrellas: list[str], busy: Container[tuple]) -> Work | None:
        """List the albums of an artist of the neediest of ``umbrellas``."""
        for umbrella in umbrellas:
            artist_id = self.listing_open(umbrella, busy)
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
                del self.open[album_id]
                self.good.pop(album_id, None)
        return more

    def gone(self, work: Work, now: str) -> None:
        """Spotify will not serve this album or artist, or ReccoBeats this album's tracks
        (400, 403, 404): never asked again."""
        if work.kind == ALBUM and work.album_id is not None:
            self.store.album_progress(work.album_id, work.offset, now=now)
            self.open.pop(work.album_id, None)
        elif work.kind == ARTIST_ALBUMS and work.artist_id is not None:
            self.listing_read(work.artist_id, [], work.offset, None, now,
                              first=work.offset == 0)
        elif work.kind == RECCO_ALBUM_TRACKS and work.album_id is not None:
            self.checked(work.album_id, [], now)        # ReccoBeats lists none of it

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
