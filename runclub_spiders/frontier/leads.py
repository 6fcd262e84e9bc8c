"""ReccoBeats leads: discovery's share of the tracks quota bucket.

In Development Mode ``GET /tracks/{id}`` is the tracks bucket's only use, one track a call,
and nothing else draws on that bucket: left alone it stays idle. ReccoBeats lists an artist's
tracks (``/v1/artist/{uuid}/track``, 50 a page, no Spotify quota) with their Spotify IDs in
``href``, their ISRCs and durations, and it lists only tracks it knows, the ones it has
audio features for. So for an artist whose cell-query votes name an umbrella
(``Expansion.named``), one ReccoBeats page gives up to 50 *leads*: tracks the store lacks,
of the right length, by that artist as lead artist. Each lead costs one tracks-bucket call
to confirm (the full track object: album, date, explicit flag, ISRC), or a fiftieth of one
in Extended Quota (``/tracks?ids=``), then enters the crawl like a searched track.

Choosing, with what the store knows:

* a lead's worth is the chance it counts toward a cell: of the artist's tracks counted so
  far (``Planner.by_artist``), the share that sit in cells of the umbrella still open with
  room for the artist, times the share of confirmed leads that counted (learnt, prior 0.8);
  a lead is asked when that is at least ``DISCOVERY_LEAD_MIN_WORTH``;
* leads wait while search has work, and while their artist has an album still to be read
  and the albums bucket is not parked (``Frontier._next_lead``, ``Expansion.to_read``):
  those find most of a lead's tracks, several a call;
* ReccoBeats is read lazily: an artist's next page only when fewer than ``POOL_LOW`` worthy
  leads wait (a batch's worth in Extended Quota), and while a page gives at least
  ``MIN_LEADS_PER_PAGE`` new leads (learnt), and no more pages in all than
  ``DISCOVERY_LEAD_PAGES_PER_CANDIDATE`` per candidate counted so far; artists' UUIDs
  (``/v1/artist?ids=``, 40 a call) only when no looked-up artist is left to read.
  ReccoBeats has no published limit; the crawl keeps its calls per exported track under
  0.1 (BENCHMARKS.md);
* the artists whose albums Spotify has not listed yet come first (``Expansion.to_list``):
  their track lists name tracks of albums nobody has seen, and each lead confirmed
  reveals its album, read for its other tracks. So the tracks bucket finds albums
  beside the artists bucket, which lists some 600 artists a day and is spent every day
  of a quota-bound crawl. Then the artists with the most album tracks the store lacks,
  then the neediest umbrella's, for pages and for the lookups of their UUIDs alike
  (``Expansion.unread``:
  albums known and not read to the end; none worth a call of its own unless the albums
  bucket is parked, or the artist's leads would wait for it): their pages give the leads.
  An artist whose known albums are all read has few tracks left for ReccoBeats to name:
  on the 15k benchmark, read in the neediest umbrella's order, half such pages gave
  none; the pages of artists left with 10 or more unread album tracks gave 4.8 leads,
  the others 1.4. Every page read is of an artist whose leads are worth asking
  (``worth``), whatever its umbrella.

State lives in the store (``recco_artists``, ``leads``): a restart neither reads a page
nor confirms a lead twice.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from runclub_spiders.frontier.work import RECCO_ARTIST_TRACKS, RECCO_ARTISTS, TRACK, Work
from runclub_spiders.pipelines.reccobeats import spotify_id
from runclub_spiders.seeds import DECADES

if TYPE_CHECKING:
    from runclub_spiders.store import Store

Cell = tuple[str, str]
RECCO_PAGE = 50          # /v1/artist/{uuid}/track page size (the API's maximum)
RECCO_IDS = 40           # /v1/artist?ids= batch (the API's maximum)
POOL_LOW = 8             # worthy leads waiting below which the next page is read
MIN_LEADS_PER_PAGE = 1.0  # ReccoBeats pages are read while they give at least this (learnt)
LEAD_KINDS = (TRACK, RECCO_ARTISTS, RECCO_ARTIST_TRACKS)


@dataclass
class ArtistList:
    """Where reading one artist's ReccoBeats track list stands."""

    umbrella: str
    recco_id: str | None       # None: not looked up yet
    next_page: int


class Leads:
    def __init__(self, store: Store, *, on: bool, min_worth: float, min_ms: int,
                 max_ms: int, market: str, batch: int = 1,
                 pages_per_candidate: float = 0.0) -> None:
        """``batch``: leads one call confirms, 1 in Development Mode (``/tracks/{id}``), 50
        in Extended Quota (``/tracks?ids=``). ``pages_per_candidate``: ReccoBeats pages
        read at most per candidate counted toward a cell (0: no cap)."""
        self.store, self.on, self.min_worth, self.batch = store, on, min_worth, batch
        self.pages_per_candidate = pages_per_candidate
        self.pool_low = max(POOL_LOW, batch)        # a batch's worth waiting, at least
        self.min_ms, self.max_ms, self.market = min_ms, max_ms, market
        # Set by the frontier: do an artist's votes name the umbrella (``Expansion.named``);
        # how full an open cell is, None when it needs no more (``CellBook.fill``); how many
        # more tracks of the artist a cell counts (``Planner.artist_room``); the artist's
        # counted tracks per cell (``Planner.by_artist``).
        self.named: Callable[[str, str], bool] = lambda artist, umbrella: True
        self.need: Callable[[Cell], float | None] = lambda cell: 0.0
        self.room: Callable[[Cell, str | None], float] = lambda cell, artist: math.inf
        self.counted_in: Callable[[Cell, str], int] = lambda cell, artist: 0
        # Has the artist an album still to be read for an open cell, by an albums bucket not
        # parked (``Expansion.to_read``)?
        self.albums_pending: Callable[[str], bool] = lambda artist: False
        # Tracks of the artist's known albums the store lacks (``Expansion.unread``).
        self.unread: Callable[[str], int] = lambda artist: 0
        # Is the artist's Spotify album listing still to come (``Expansion.to_list``)?
        self.to_list: Callable[[str], bool] = lambda artist: False
        # Candidates counted toward a cell below its target (``Planner.useful``).
        self.candidates: Callable[[], int] = lambda: 0
        # Lead tracks counted toward a cell (``Planner.counted["lead"]``: a track displaced
        # by its ISRC's winner is uncounted there, as a restart counts it).
        self.counted: Callable[[], int] = lambda: 0
        # Work that failed this run (after the retries): not planned again before the next
        # run, or the crawl would ask it again at once, and again.
        self.failed_keys: set[tuple] = set()
        # Leads of a batch Spotify refused: asked one a call, to find the one it refuses.
        self.alone: set[str] = set()
        self.artists: OrderedDict[str, ArtistList] = OrderedDict()
        for row in store.recco_artists():
            self.artists[row["artist_id"]] = ArtistList(row["umbrella"], row["recco_id"],
                                                            row["next_page"])
        # umbrella -> artist -> open leads, in the order they were found.
        self.pool: dict[str, OrderedDict[str, deque[str]]] = {}
        self.isrcs: dict[str, str] = {}                    # open lead -> its ISRC
        self.open_isrcs: set[str] = set()                  # ISRCs of open leads
        for row in store.open_leads():
            self._pool_add(row["umbrella"], row["artist_id"], row["track_id"], row["isrc"])
        yields = store.lead_yields()
        self.confirmed = yields["confirmed"]
        self.pages, self.found = yields["pages"], yields["found"]

    # ---------------------------------------------------------------- learning
    def see(self, artist_id: str, umbrella: str) -> None:
        """An artist a cell query named for ``umbrella`` (``Frontier.place``); kept with
        leads off too, so that turning them on later finds every artist."""
        if self.store.see_recco_artist(artist_id, umbrella):
            self.artists[artist_id] = ArtistList(umbrella, None, 0)

    def per_page(self) -> float:
        """New leads a ReccoBeats page gives (prior: 5 pages of 3 each, until there is
        evidence). Late in a crawl, or on a small catalog, search and album reads have found
        most of an artist's tracks already, and a page is a call for nothing."""
        return (self.found + 3 * 5) / (self.pages + 5)

    def pages_worth_reading(self) -> bool:
        """Do ReccoBeats pages still give leads (``MIN_LEADS_PER_PAGE``), within the pages
        the candidates counted so far allow (``pages_per_candidate``)? The crawl keeps its
        ReccoBeats calls per exported track low: a large tracks bucket would otherwise read
        the pages of every artist down to the last lead or two."""
        if self.per_page() < MIN_LEADS_PER_PAGE:
            return False
        return not self.pages_per_candidate or \
            self.pages < self.pages_per_candidate * self.candidates()

    def share(self) -> float:
        """Of the confirmed leads, the share counted toward a cell (prior 0.8 over 20)."""
        return (self.counted() + 0.8 * 20) / (self.confirmed + 20)

    def worth(self, artist_id: str, umbrella: str) -> float:
        """The chance one more lead of this artist counts (the module doc); none while an
        album of the artist is still to be read: that read brings its tracks, most of the
        artist's leads among them, for one call (a lead it does not bring waits for it)."""
        if not self.named(artist_id, umbrella) or self.albums_pending(artist_id):
            return 0.0
        total = open_ = 0
        for decade in DECADES:
            cell = (umbrella, decade)
            n = self.counted_in(cell, artist_id)
            total += n
            if n and self.need(cell) is not None and self.room(cell, artist_id) >= 1:
                open_ += n
        return open_ / total * self.share() if total else 0.0

    # ---------------------------------------------------------------- choosing
    def next_lead(self, umbrellas: list[str], busy: Collection[tuple]) -> Work | None:
        """The first worthy leads of the neediest umbrellas (``umbrellas``, neediest first),
        ``batch`` at most; none that a work in flight (``busy``) or one failed this run holds.
        A batch of fewer waits while ReccoBeats has pages worth reading."""
        if not self.on:
            return None
        skip = {track_id for key in (*busy, *self.failed_keys) if key[0] == TRACK
                for track_id in key[3]}
        chosen: list[tuple[str, str]] = []
        for umbrella in umbrellas:
            by_artist = self.pool.get(umbrella)
            for artist_id in list(by_artist or ()):
                waiting = by_artist.get(artist_id)
                if not waiting:
                    by_artist.pop(artist_id, None)
                    continue
                if self.worth(artist_id, umbrella) < self.min_worth:
                    continue
                for track_id in list(waiting):
                    if track_id in skip:
                        continue
                    if self._stale(track_id):
                        self._drop(artist_id, track_id)
                        continue
                    if track_id in self.alone:
                        if not chosen:
                            return self._work([(track_id, artist_id)])
                        continue
                    chosen.append((track_id, artist_id))
                    skip.add(track_id)
                    if len(chosen) >= self.batch:
                        return self._work(chosen)
        if not chosen or (len(chosen) < self.batch and self._more_coming(umbrellas, busy)):
            return None         # a batch not full waits while ReccoBeats has more to give
        return self._work(chosen)

    def _more_coming(self, umbrellas: list[str], busy: Collection[tuple]) -> bool:
        """Will ReccoBeats give more leads: a page of it on its way, or one worth reading?"""
        return any(key[0] in (RECCO_ARTISTS, RECCO_ARTIST_TRACKS) for key in busy) \
            or self.next_recco(umbrellas, busy) is not None

    def _work(self, chosen: list[tuple[str, str]]) -> Work:
        if len(chosen) == 1 and self.batch == 1:
            (track_id, artist_id), = chosen
            return Work(TRACK, track_ids=(track_id,), artist_id=artist_id)
        return Work(TRACK, track_ids=tuple(t for t, _ in chosen),
                    artist_ids=tuple(a for _, a in chosen))

    @staticmethod
    def pairs(work: Work) -> list[tuple[str, str]]:
        """``(track ID, artist ID)`` of each lead a TRACK work asks, in the order asked."""
        return list(zip(work.track_ids, work.artist_ids or (work.artist_id or "",),
                        strict=True))

    def _stale(self, track_id: str) -> bool:
        """Stored meanwhile, or its recording (an album read's track gets its ISRC from
        ReccoBeats after the lead was kept): no call needed (ended ``known``)."""
        isrc = self.isrcs.get(track_id)
        if self.store.track_source(track_id) is None and \
                not (isrc and self.store.isrc_stored(isrc)):
            return False
        self.store.end_lead(track_id, "known")
        return True

    def worthy_waiting(self, umbrellas: list[str], enough: int) -> int:
        """Worthy leads waiting, counted up to ``enough``."""
        count = 0
        for umbrella in umbrellas:
            for artist_id, waiting in self.pool.get(umbrella, {}).items():
                if waiting and self.worth(artist_id, umbrella) >= self.min_worth:
                    count += len(waiting)
                    if count >= enough:
                        return count
        return count

    def next_recco(self, umbrellas: list[str], busy: Collection[tuple]) -> Work | None:
        """ReccoBeats work when the worthy leads run low: the next page of the looked-up
        artist Spotify has not listed yet, else with the most unread album tracks, of the
        neediest umbrella among equals; else a batch of artists to look up, in that order."""
        if not self.on or not self.pages_worth_reading() \
                or self.worthy_waiting(umbrellas, self.pool_low) >= self.pool_low:
            return None
        rank = {u: i for i, u in enumerate(umbrellas)}
        candidates = sorted(((not self.to_list(artist_id), -self.unread(artist_id),
                              rank[a.umbrella], i, artist_id, a)
                             for i, (artist_id, a) in enumerate(self.artists.items())
                             if a.umbrella in rank), key=lambda c: c[:4])
        unknown: list[str] = []
        asking = {a for key in busy if key[0] == RECCO_ARTISTS for a in key[2]}
        for *_, artist_id, artist in candidates:
            if len(unknown) >= RECCO_IDS and artist.recco_id is None:
                continue
            if self.worth(artist_id, artist.umbrella) < self.min_worth:
                continue
            if artist.recco_id is None:
                if artist_id not in asking:
                    unknown.append(artist_id)
                continue
            work = Work(RECCO_ARTIST_TRACKS, offset=artist.next_page, artist_id=artist_id,
                        recco_id=artist.recco_id)
            if work.key not in busy and work.key not in self.failed_keys:
                return work
        work = Work(RECCO_ARTISTS, artist_ids=tuple(unknown))
        return work if unknown and work.key not in self.failed_keys else None

    def open_for(self, cell: Cell) -> bool:
        """Do leads still work for ``cell``: a worthy lead waiting, or a track list still
        to read, of an artist with tracks counted there (where their tracks mostly land)?"""
        if not self.on:
            return False
        umbrella = cell[0]
        for artist_id, waiting in self.pool.get(umbrella, {}).items():
            if waiting and self.counted_in(cell, artist_id) \
                    and self.worth(artist_id, umbrella) >= self.min_worth:
                return True
        if not self.pages_worth_reading():
            return False
        return any(a.umbrella == umbrella and self.counted_in(cell, artist_id)
                   and self.worth(artist_id, umbrella) >= self.min_worth
                   for artist_id, a in self.artists.items())

    # ---------------------------------------------------------------- answers
    def looked_up(self, asked: tuple[str, ...], found: dict[str, str]) -> None:
        """``/v1/artist?ids=`` answered: ``found`` maps Spotify artist ID -> UUID."""
        self.store.set_recco_ids(found, asked)
        for artist_id in asked:
            if artist_id in self.artists:
                if artist_id in found:
                    self.artists[artist_id].recco_id = found[artist_id]
                else:
                    del self.artists[artist_id]         # ReccoBeats does not know them

    def listed(self, artist_id: str, page: int, rows: list[dict[str, Any]],
               total_pages: int | None, now: str) -> int:
        """One page of an artist's ReccoBeats tracks: keep the leads; how many were new."""
        artist = self.artists.get(artist_id)
        if artist is None:
            return 0
        leads, seen = [], set()
        for row in rows:
            lead = self._lead(row, artist_id)
            # One lead per recording: a single and its album often hold the same ISRC.
            if lead is not None and (lead[1] is None or lead[1] not in seen):
                leads.append((lead[0], artist_id, artist.umbrella, lead[1], lead[2]))
                seen.add(lead[1])
        inserted = self.store.add_leads(leads, now)
        self.pages += 1
        self.found += len(inserted)
        for track_id, _, _, isrc, _ in leads:
            if track_id in inserted:
                self._pool_add(artist.umbrella, artist_id, track_id, isrc)
        more = total_pages is not None and page + 1 < total_pages and bool(rows)
        self.store.recco_listing_progress(artist_id, page + 1, now=None if more else now)
        if more:
            artist.next_page = page + 1
        else:
            del self.artists[artist_id]
        return len(inserted)

    def _lead(self, row: dict[str, Any], artist_id: str
              ) -> tuple[str, str | None, int | None] | None:
        """``(track ID, ISRC, duration)`` of a row worth confirming, else None: the artist
        leads it, its length passes, it plays in the market, and the store has neither the
        track nor its recording."""
        track_id = spotify_id(row.get("href"), "track")
        credits = row.get("artists")
        lead = credits[0] if isinstance(credits, list) and credits and \
            isinstance(credits[0], dict) else {}
        if track_id is None or spotify_id(lead.get("href"), "artist") != artist_id:
            return None
        duration = row.get("durationMs")
        duration = duration if isinstance(duration, int) and not isinstance(duration, bool) \
            else None
        if duration is not None and not self.min_ms <= duration <= self.max_ms:
            return None
        countries = row.get("availableCountries")
        if isinstance(countries, str) and countries and \
                self.market not in countries.split(","):
            return None
        isrc = row.get("isrc") if isinstance(row.get("isrc"), str) and row["isrc"] else None
        if self.store.track_source(track_id) is not None or \
                (isrc is not None and (isrc in self.open_isrcs or self.store.isrc_stored(isrc))):
            return None                 # stored, or another version of an open lead's recording
        return track_id, isrc, duration

    def ended(self, track_id: str, artist_id: str, outcome: str) -> None:
        """A lead confirmed (Spotify answered) or gone for good."""
        self.store.end_lead(track_id, outcome)
        self.confirmed += outcome == "confirmed"
        self._drop(artist_id, track_id)

    def _drop(self, artist_id: str, track_id: str) -> None:
        """A lead leaves the pool; an artist with none left leaves it too, so that a later
        page of theirs queues as a restart would order it (by the lead found first)."""
        isrc = self.isrcs.pop(track_id, None)
        self.open_isrcs.discard(isrc or "")
        for by_artist in self.pool.values():
            waiting = by_artist.get(artist_id)
            if waiting is not None and track_id in waiting:
                waiting.remove(track_id)
                if not waiting:
                    del by_artist[artist_id]

    def failed(self, work: Work, status: int | None, *, now: str) -> None:
        """A lead's work failed. Spotify's 400/403/404 for a track, or ReccoBeats' 404 for
        an artist's list: never asked again. ReccoBeats' 403 is Cloudflare's block: no more
        ReccoBeats work this run. A batch's 400/403/404 does not say which ID was refused:
        its leads are asked one a call from then on (``alone``), so the refused one ends
        gone and the others are confirmed. Anything else (5xx, timeouts after the retries):
        not again this run; the next run asks it (the store still has it open)."""
        if work.kind == TRACK and status in (400, 403, 404):
            if len(work.track_ids) == 1:
                self.ended(*self.pairs(work)[0], "gone")
            else:
                self.alone.update(work.track_ids)
        elif work.kind == RECCO_ARTIST_TRACKS and status == 404 \
                and work.artist_id in self.artists:
            self.listed(work.artist_id, work.offset, [], None, now)
        elif work.kind != TRACK and status == 403:
            self.on = False
        else:
            self.failed_keys.add(work.key)

    def umbrella_of(self, track_id: str) -> str | None:
        """The umbrella the lead was kept for (what its artist's votes name)."""
        return self.store.lead_umbrella(track_id)

    def _pool_add(self, umbrella: str, artist_id: str, track_id: str, isrc: str | None
                  ) -> None:
        if isrc:
            self.isrcs[track_id] = isrc
            self.open_isrcs.add(isrc)
        self.pool.setdefault(umbrella, OrderedDict()).setdefault(artist_id, deque()) \
            .append(track_id)

