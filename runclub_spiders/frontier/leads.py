"""ReccoBeats leads: discovery's share of the tracks quota bucket.

In Development Mode ``GET /tracks/{id}`` is the tracks bucket's only use, one track a call,
and nothing else draws on that bucket: left alone it stays idle. ReccoBeats lists an artist's
tracks (``/v1/artist/{uuid}/track``, 50 a page, no Spotify quota) with their Spotify IDs in
``href``, their ISRCs and durations, and it lists only tracks it knows, the ones it has
audio features for. So for an artist whose cell-query votes name an umbrella
(``Expansion.named``), one ReccoBeats page gives up to 50 *leads*: tracks the store lacks,
of the right length, by that artist as lead artist. Each lead costs one tracks-bucket call
to confirm (the full track object: album, date, explicit flag, ISRC), then enters the crawl
like a searched track.

Choosing, with what the store knows:

* a lead's worth is the chance it counts toward a cell: of the artist's tracks counted so
  far (``Planner.by_artist``), the share that sit in cells of the umbrella still open with
  room for the artist, times the share of confirmed leads that counted (learnt, prior 0.8);
  a lead is asked when that is at least ``DISCOVERY_LEAD_MIN_WORTH``;
* leads also come from album checks (``frontier.expansion``): an album with too few good
  tracks for an albums call hands them over with their cell known, and such a lead's worth
  is whether that cell is open with room for the artist;
* artists' lists are read lazily: an artist's next page only when fewer than ``POOL_LOW`` worthy
  leads wait, and artists' UUIDs (``/v1/artist?ids=``, 40 a call) only when no looked-up
  artist is left to read. ReccoBeats has no published limit; the crawl keeps its calls per
  exported track low (BENCHMARKS.md).

State lives in the store (``recco_artists``, ``leads``): a restart neither reads a page
nor confirms a lead twice.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from collections.abc import Callable, Container
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from runclub_spiders.frontier.work import RECCO_ARTIST_TRACKS, RECCO_ARTISTS, TRACK, Work
from runclub_spiders.seeds import DECADES

if TYPE_CHECKING:
    from runclub_spiders.store import Store

Cell = tuple[str, str]
RECCO_PAGE = 50          # /v1/artist/{uuid}/track page size (the API's maximum)
RECCO_IDS = 40           # /v1/artist?ids= batch (the API's maximum)
POOL_LOW = 20            # worthy leads waiting below which the next page is read


@dataclass
class RecordedArtist:
    umbrella: str
    recco_id: str | None       # None: not looked up yet
    next_page: int


class Leads:
    def __init__(self, store: Store, *, on: bool, min_worth: float, min_ms: int,
                 max_ms: int, market: str) -> None:
        self.store, self.on, self.min_worth = store, on, min_worth
        self.min_ms, self.max_ms, self.market = min_ms, max_ms, market
        # Set by the frontier: do an artist's votes name the umbrella (``Expansion.named``);
        # how full an open cell is, None when it needs no more (``CellBook.fill``); how many
        # more tracks of the artist a cell counts (``Planner.artist_room``); the artist's
        # counted tracks per cell (``Planner.by_artist``).
        self.named: Callable[[str, str], bool] = lambda artist, umbrella: True
        self.need: Callable[[Cell], float | None] = lambda cell: 0.0
        self.room: Callable[[Cell, str | None], float] = lambda cell, artist: math.inf
        self.counted_in: Callable[[Cell, str], int] = lambda cell, artist: 0
        self.artists: OrderedDict[str, RecordedArtist] = OrderedDict()
        for row in store.recco_artists():
            self.artists[row["artist_id"]] = RecordedArtist(row["umbrella"], row["recco_id"],
                                                            row["next_page"])
        # umbrella -> (artist, decade: a checked album's, else None) -> open leads, in the
        # order they were found.
        self.pool: dict[str, OrderedDict[tuple[str, str | None], deque[str]]] = {}
        self.isrcs: dict[str, str] = {}                    # open lead -> its ISRC
        for row in store.open_leads():
            self._pool_add(row["umbrella"], (row["artist_id"], row["decade"]),
                           row["track_id"], row["isrc"])
        yields = store.lead_yields()
        self.confirmed, self.counted = yields["confirmed"], yields["counted"]

    # ---------------------------------------------------------------- learning
    def see(self, artist_id: str, umbrella: str) -> None:
        """An artist a cell query named for ``umbrella`` (``Frontier.place``); kept with
        leads off too, so that turning them on later finds every artist."""
        if self.store.see_recco_artist(artist_id, umbrella):
            self.artists[artist_id] = RecordedArtist(umbrella, None, 0)

    def share(self) -> float:
        """Of the confirmed leads, the share counted toward a cell (prior 0.8 over 20)."""
        return (self.counted + 0.8 * 20) / (self.confirmed + 20)

    def worth(self, artist_id: str, umbrella: str, decade: str | None = None) -> float:
        """The chance one more lead of this artist counts (the module doc)."""
        if not self.named(artist_id, umbrella):
            return 0.0
        if decade is not None:
            cell = (umbrella, decade)
            return self.share() if self.need(cell) is not None and \
                self.room(cell, artist_id) >= 1 else 0.0
        total = open_ = 0
        for each in DECADES:
            cell = (umbrella, each)
            n = self.counted_in(cell, artist_id)
            total += n
            if n and self.need(cell) is not None and self.room(cell, artist_id) >= 1:
                open_ += n
        return open_ / total * self.share() if total else 0.0

    # ---------------------------------------------------------------- choosing
    def next_lead(self, umbrellas: list[str], busy: Container[tuple]) -> Work | None:
        """The first worthy lead of the neediest umbrellas (``umbrellas``, neediest first)."""
        if not self.on:
            return None
        for umbrella in umbrellas:
            by_key = self.pool.get(umbrella)
            for key in list(by_key or ()):
                waiting = by_key[key]
                while waiting and self._stale(waiting[0]):
                    waiting.popleft()
                if not waiting:
                    del by_key[key]
                    continue
                if self.worth(key[0], umbrella, key[1]) < self.min_worth:
                    continue
                for track_id in waiting:
                    if (TRACK, 0, (), (track_id,)) not in busy:
                        return Work(TRACK, track_ids=(track_id,), artist_id=key[0])
        return None

    def _stale(self, track_id: str) -> bool:
        """Stored meanwhile, or its recording (an album read's track gets its ISRC from
        ReccoBeats after the lead was kept): no call needed."""
        isrc = self.isrcs.get(track_id)
        if self.store.track_source(track_id) is None and \
                not (isrc and self.store.isrc_stored(isrc)):
            return False
        self.store.end_lead(track_id, "known")
        self.isrcs.pop(track_id, None)
        return True

    def worthy_waiting(self, umbrellas: list[str]) -> int:
        return sum(len(waiting) for umbrella in umbrellas
                   for (artist_id, decade), waiting in self.pool.get(umbrella, {}).items()
                   if self.worth(artist_id, umbrella, decade) >= self.min_worth)

    def next_recco(self, umbrellas: list[str], busy: Container[tuple]) -> Work | None:
        """ReccoBeats work when the worthy leads run low: the next page of a looked-up
        artist of the neediest umbrella, else a batch of artists to look up."""
        if not self.on or self.worthy_waiting(umbrellas) >= POOL_LOW:
            return None
        rank = {u: i for i, u in enumerate(umbrellas)}
        candidates = sorted(((rank[a.umbrella], i, artist_id, a)
                             for i, (artist_id, a) in enumerate(self.artists.items())
                             if a.umbrella in rank), key=lambda c: c[:2])
        unknown = []
        for _, _, artist_id, artist in candidates:
            if self.worth(artist_id, artist.umbrella) < self.min_worth:
                continue
            if artist.recco_id is None:
                unknown.append(artist_id)
            elif (RECCO_ARTIST_TRACKS, artist_id) not in busy:
                return Work(RECCO_ARTIST_TRACKS, offset=artist.next_page, artist_id=artist_id)
        asking = {a for key in busy if key[0] == RECCO_ARTISTS for a in key[2]}
        batch = tuple(a for a in unknown if a not in asking)[:RECCO_IDS]
        return Work(RECCO_ARTISTS, artist_ids=batch) if batch else None

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
        leads = [(track_id, artist_id, artist.umbrella, None, isrc, duration)
                 for row in rows if (kept := self.keepable(row)) is not None
                 for track_id, isrc, duration, lead_artist in [kept]
                 if lead_artist == artist_id]
        added = self._add(leads, now)
        more = total_pages is not None and page + 1 < total_pages and bool(rows)
        self.store.recco_listing_progress(artist_id, page + 1, now=None if more else now)
        if more:
            artist.next_page = page + 1
        else:
            del self.artists[artist_id]
        return added

    def album_leads(self, artist_id: str, umbrella: str, decade: str,
                    rows: list[tuple[str, str | None, int | None, str | None]], now: str
                    ) -> int:
        """A checked album's good tracks (``keepable`` answers) led by its artist, too few
        for an albums call: leads with their cell known. How many were new."""
        return self._add([(track_id, artist_id, umbrella, decade, isrc, duration)
                          for track_id, isrc, duration, lead_artist in rows
                          if lead_artist == artist_id], now)

    def _add(self, leads: list[tuple[str, str, str, str | None, str | None, int | None]],
             now: str) -> int:
        added = self.store.add_leads(leads, now)
        for track_id, artist_id, umbrella, decade, isrc, _ in leads:
            self._pool_add(umbrella, (artist_id, decade), track_id, isrc)
        return added

    def keepable(self, row: dict[str, Any]
                 ) -> tuple[str, str | None, int | None, str | None] | None:
        """``(track ID, ISRC, duration, lead artist)`` of a ReccoBeats track row the export
        could keep, else None: its length passes, it plays in the market, and the store has
        neither the track nor its recording."""
        track_id = spotify_id(row.get("href"), "track")
        credits = row.get("artists")
        lead = credits[0] if isinstance(credits, list) and credits and \
            isinstance(credits[0], dict) else {}
        if track_id is None:
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
                (isrc is not None and self.store.isrc_stored(isrc)):
            return None
        return track_id, isrc, duration, spotify_id(lead.get("href"), "artist")

    def ended(self, work: Work, outcome: str, *, counted: bool = False) -> None:
        """A lead confirmed (``counted``: it counted toward a cell) or gone for good."""
        track_id = work.track_ids[0]
        self.store.end_lead(track_id, outcome)
        self.isrcs.pop(track_id, None)
        self.confirmed += outcome == "confirmed"
        self.counted += counted
        for by_key in self.pool.values():
            for (artist_id, _), waiting in by_key.items():
                if artist_id == work.artist_id and track_id in waiting:
                    waiting.remove(track_id)

    def gone(self, work: Work, now: str) -> None:
        """ReccoBeats' 404 for an artist's list: never asked again."""
        if work.kind == RECCO_ARTIST_TRACKS and work.artist_id in self.artists:
            self.listed(work.artist_id, work.offset, [], None, now)
        elif work.kind == TRACK:
            self.ended(work, "gone")

    def umbrella_of(self, work: Work) -> str | None:
        """The umbrella of a lead's pool (what its artist's votes name)."""
        for umbrella, by_key in self.pool.items():
            if any(artist_id == work.artist_id and work.track_ids[0] in waiting
                   for (artist_id, _), waiting in by_key.items()):
                return umbrella
        return None

    def _pool_add(self, umbrella: str, key: tuple[str, str | None], track_id: str,
                  isrc: str | None) -> None:
        if isrc:
            self.isrcs[track_id] = isrc
        self.pool.setdefault(umbrella, OrderedDict()).setdefault(key, deque()) \
            .append(track_id)


def spotify_id(href: Any, kind: str) -> str | None:
    """The Spotify ID in an ``open.spotify.com/{kind}/{id}`` link (ReccoBeats' only join)."""
    if not isinstance(href, str):
        return None
    marker = f"open.spotify.com/{kind}/"
    at = href.find(marker)
    if at < 0:
        return None
    value = href[at + len(marker):].split("?")[0].split("/")[0]
    return value if value.isalnum() and len(value) == 22 else None
