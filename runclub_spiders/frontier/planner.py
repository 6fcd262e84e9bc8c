"""Which search to send next: the cell furthest below its target, with as few calls as possible.

The catalog is balanced over umbrella x decade cells. Every search spends daily quota, so the
planner always picks a query for the neediest cell, pages a query only while its recent pages
bring new tracks (adaptive pagination, no blind paging), and demotes whole query families that
do not pay. A page is worth a request when its expected new tracks, at the share of its
family's new tracks that counted toward a plan cell and the share ReccoBeats knows, are at
least ``DISCOVERY_MIN_YIELD`` (``min_new``): a general query ("90s hits") finds tracks of no
known umbrella, and on the 15k benchmark ~300 such pages brought 24 exported tracks at the
end. Its state lives in the store's seed ledger and the tracks' first queries, so a restart
continues where the last run stopped instead of repeating pages.
"""

from __future__ import annotations

import json
import logging
import math
from collections import Counter
from collections.abc import Container, Iterable
from dataclasses import dataclass, field

from runclub_spiders.catalog.selection import duration_reason
from runclub_spiders.catalog.years import (
    AlbumAppearance,
    recording_year,
)
from runclub_spiders.seeds import SeedPlan, SeedQuery
from runclub_spiders.store import Store, TrackRecord

logger = logging.getLogger(__name__)

MAX_OFFSET = 1000            # Spotify serves at most 1,000 results per query
PRIOR = 20                   # new tracks of a family before its own share outweighs the prior


@dataclass
class QueryState:
    next_offset: int = 0
    total: int | None = None
    exhausted: str | None = None
    low_pages: int = 0
    requests: int = 0
    new_tracks: int = 0


@dataclass
class FamilyYield:
    requests: int = 0
    new_tracks: int = 0
    demoted: bool = False

    @property
    def per_request(self) -> float:
        return self.new_tracks / self.requests if self.requests else math.inf


@dataclass
class Planner:
    plan: SeedPlan
    store: Store
    page_size: int
    cell_target: int
    max_candidates: int
    min_new_per_page: int
    patience: int
    family_trial: int
    family_min_yield: float
    include_playlist_search: bool = False
    # The price of a request (DISCOVERY_MIN_YIELD) in exportable tracks, and what makes a
    # page's new tracks exportable: the share of searched tracks that count (the frontier
    # sets it from what it learnt) and the share ReccoBeats knows (``min_new``).
    min_yield: float = 0.0
    search_share: float = 1.0
    features_share: float = 1.0
    # Room for the export's artist cap (CATALOG_MAX_ARTIST_SHARE): a cell counts at most this
    # many candidates of one primary artist (0: no cap); the rest are found but not counted.
    artist_cap: int = 0
    counts: dict[tuple[str, str], int] = field(default_factory=dict)
    by_artist: Counter[tuple[tuple[str, str], str]] = field(default_factory=Counter)
    counted: Counter[str] = field(default_factory=Counter)    # candidates by first source
    total_candidates: int = 0
    states: dict[tuple[str, str], QueryState] = field(default_factory=dict)
    families: dict[str, FamilyYield] = field(default_factory=dict)
    # Per cell, the cumulative (new, seen) of the cell query opened last: how much of what a
    # fresh query of the cell returns is still new (the cell's earlier queries found the
    # rest). A seeds row is created at a query's first page, so the store's order says which.
    latest: dict[tuple[str, str], tuple[str, list[int]]] = field(default_factory=dict)
    # Per query family: the new tracks its searches found first, and of them those counted
    # toward a plan cell, per cell (the first of the track's the plan holds; a general
    # query's price counts the open ones, ``min_new``). A general query ("90s hits") finds
    # tracks whose umbrella is not known, which count toward no cell: its family pays far
    # less than a cell query's.
    family_of: dict[str, str] = field(default_factory=dict)      # query text -> family
    family_new: Counter[str] = field(default_factory=Counter)
    family_cells: dict[str, Counter[tuple[str, str]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for row in self.store.seeds(answered_order=True):
            if row["kind"] == "track":
                self.family_of[row["q"]] = row["family"]
            self.states[(row["q"], row["kind"])] = QueryState(
                row["next_offset"], row["total"], row["exhausted"], row["low_pages"],
                row["requests"], row["new_tracks"])
            family = self.families.setdefault(row["family"], FamilyYield())
            family.requests += row["requests"]
            family.new_tracks += row["new_tracks"]
            if row["umbrella"] and row["decade"] and row["requests"]:
                self.latest[(row["umbrella"], row["decade"])] = (
                    row["q"], [row["new_tracks"], row["new_tracks"] + row["known_tracks"]])
        # A restarted run demotes what the interrupted one had demoted, before asking anything.
        for family in self.families.values():
            family.demoted = self._fails_trial(family)
        self.recount()

    def _fails_trial(self, family: FamilyYield) -> bool:
        return (family.requests >= self.family_trial
                and family.per_request < self.family_min_yield)

    # ---------------------------------------------------------------- cells
    @property
    def cells(self) -> list[tuple[str, str]]:
        return list(self.plan.cells())

    def track_cells(self, record: TrackRecord, genres: Iterable[str],
                    query_umbrella: str | None = None) -> list[tuple[str, str]]:
        """The cells a new track counts toward, decided from what is known when it is found.

        The decade is the export's (``catalog.years``) from this one album; the umbrella is
        the cell query's that found it, else the artist's genres through the rules. The
        export classifies again with everything the store learnt since.
        """
        appearance = AlbumAppearance(record.release_date, record.album_type,
                                     record.album_name, record.name)
        decade = recording_year([appearance], record.isrc).decade
        if decade is None:
            return []
        umbrellas = [query_umbrella] if query_umbrella else \
            list(self.plan.rules.classify(genres))
        return [(u, decade) for u in umbrellas]

    def recount(self) -> None:
        """Candidates per cell from the store, as they were counted when discovered.

        The cells a track counts toward are fixed when it is found and stored with it, so a
        resumed run plans from exactly the counts the interrupted one had.
        """
        self.counts = dict.fromkeys(self.cells, 0)
        self.by_artist = Counter()
        self.counted = Counter()
        self.family_new, self.family_cells = Counter(), {}
        self.total_candidates = 0
        for artist, source, cells, query in self.store.planning_rows():
            family = self._family(source, query)
            if family is not None:
                self.family_new[family] += 1
            if cells is None:                        # set aside at discovery: not counted
                continue
            self.add_candidate([tuple(cell) for cell in json.loads(cells or "[]")], artist,
                               source, family)

    def place(self, records: list[TrackRecord], umbrella: str | None, min_ms: int,
              max_ms: int, source: str, family: str | None = None
              ) -> dict[str, list[tuple[str, str]]]:
        """Count new tracks toward their cells, as the cheap filters will judge them.

        Decided once, at discovery, and stored with each track (``planning_cells``), so a
        resumed run plans from exactly these counts. The umbrella is a cell query's, else the
        primary artist's genres through the rules. Of the tracks sharing an ISRC only the
        winner counts (``Store.claim_isrc_count``, the one rule of ``catalog.isrc``).
        Returns the cells of each track counted.
        """
        genres = self.store.genres_of(r.artist_ids[0] for r in records)
        placed = {}
        if family is not None:
            self.family_new[family] += len(records)
        for record in records:
            if (duration_reason(record.duration_ms, min_ms, max_ms)
                    or record.is_playable is False
                    or not self.store.claim_isrc_count(record.id, record.isrc, min_ms, max_ms,
                                                       self.remove_candidate)):
                continue          # the cheap filters drop it, or a competitor wins its ISRC
            cells = self.track_cells(record, genres.get(record.artist_ids[0], ()), umbrella)
            self.add_candidate(cells, record.artist_ids[0], source, family)
            self.store.set_planning_cells(record.id, cells)
            placed[record.id] = cells
        return placed

    def add_candidate(self, cells: list[tuple[str, str]], artist: str, source: str,
                      family: str | None = None) -> None:
        self.total_candidates += 1
        self.counted[source] += 1
        if family is not None and any(cell in self.counts for cell in cells):
            self.family_cells.setdefault(family, Counter())[self._plan_cell(cells)] += 1
        for cell in cells:
            if cell in self.counts:
                self.by_artist[(cell, artist)] += 1
                if not self.artist_cap or self.by_artist[(cell, artist)] <= self.artist_cap:
                    self.counts[cell] += 1

    def _plan_cell(self, cells: list[tuple[str, str]]) -> tuple[str, str]:
        """The first of a track's cells that the plan holds (``family_cells``)."""
        return next(cell for cell in cells if cell in self.counts)

    def remove_candidate(self, cells: list[tuple[str, str]], artist: str, source: str,
                         query: str | None = None) -> None:
        """A counted track was displaced by the winner of its ISRC (``Store.claim_isrc_count``;
        ``query``: the track's first query)."""
        self.total_candidates -= 1
        self.counted[source] -= 1
        family = self._family(source, query)
        if family is not None and any(cell in self.counts for cell in cells):
            self.family_cells.setdefault(family, Counter())[self._plan_cell(cells)] -= 1
        for cell in cells:
            if cell in self.counts:
                if not self.artist_cap or self.by_artist[(cell, artist)] <= self.artist_cap:
                    self.counts[cell] -= 1
                self.by_artist[(cell, artist)] -= 1

    def artist_room(self, cell: tuple[str, str], artist: str | None) -> float:
        """How many more tracks of ``artist`` would count toward ``cell``."""
        if not self.artist_cap or artist is None:
            return math.inf
        return max(0, self.artist_cap - self.by_artist[(cell, artist)])

    def wanted(self, cell: tuple[str, str]) -> int:
        """How many more candidates ``cell`` wants to reach its target."""
        return max(0, self.cell_target - self.counts.get(cell, self.cell_target))

    def useful(self) -> int:
        """Candidates that count toward a cell below its target: what the global cap
        (``max_candidates``) bounds. Tracks past a cell's target (an album read for the
        last few it needed, a search page of a general query) do not bring the end nearer."""
        return sum(min(n, self.cell_target) for n in self.counts.values())

    def full(self) -> bool:
        return self.useful() >= self.max_candidates

    def cells_at_target(self) -> int:
        return sum(1 for n in self.counts.values() if n >= self.cell_target)

    # ---------------------------------------------------------------- choosing
    def state(self, query: SeedQuery) -> QueryState:
        return self.states.setdefault((query.q, query.kind), QueryState())

    def _open(self, query: SeedQuery, allow_demoted: bool,
              busy: Container[tuple[str, str]]) -> bool:
        if (query.q, query.kind) in busy or self.state(query).exhausted:
            return False
        family = self.families.get(query.family)
        if not (allow_demoted or family is None or not family.demoted):
            return False
        return self.expected_new(query) >= self.min_new(
            query.family, general=not (query.umbrella and query.decade))

    def _family(self, source: str, query: str | None) -> str | None:
        """The query family a stored track counts for: its first query's, if searched."""
        return self.family_of.get(query or "") if source == "search" else None

    def min_new(self, family: str, general: bool = False) -> float:
        """The new tracks a page of ``family`` must be expected to bring to be worth a
        request: ``DISCOVERY_MIN_YIELD`` exportable ones, at the share of the family's new
        tracks counted toward a plan cell (the searches' share as a prior of 20 tracks).

        ``general``: a query of no one cell ("best of 90s"), whose tracks land where they
        fall. Only those counted toward a cell still below its target are worth anything,
        and late in a crawl most cells are full: on the 15k benchmark's last day 96 such
        pages went on, priced by every cell, for 553 new tracks, most of them counted in full
        cells or none. A cell query's tracks land in its own cell, which is open when it is
        asked, so its family keeps the plain share."""
        if self.min_yield <= 0:
            return 0.0
        cells = self.family_cells.get(family, {})
        placed = sum(n for cell, n in cells.items()
                     if not general or self.counts[cell] < self.cell_target)
        share = (placed + PRIOR * self.search_share) / (self.family_new[family] + PRIOR)
        return self.min_yield / (share * self.features_share) if share > 0 else math.inf

    def expected_new(self, query: SeedQuery) -> float:
        """New tracks the query's next page is expected to bring: its own mean per page
        (its ledger: a restart expects the same), else its family's, else a full page."""
        state = self.state(query)
        if state.requests:
            return state.new_tracks / state.requests
        latest = self.latest.get((query.umbrella, query.decade)) if query.decade else None
        if latest is not None and latest[1][1] >= self.page_size:
            new, seen = latest[1]                # a fresh query samples the same cell
            return self.page_size * new / seen
        family = self.families.get(query.family)
        if family is not None and family.requests:
            return family.per_request
        return float(self.page_size)

    def cell_worth(self, umbrella: str, decade: str,
                   busy: Container[tuple[str, str]] = ()) -> float:
        """The most new tracks one search of the cell is expected to bring (0: none open)."""
        return max((self.expected_new(q) for q in self.plan.cell_queries(umbrella, decade)
                    if self._open(q, True, busy)), default=0.0)

    def cell_exhausted(self, umbrella: str, decade: str) -> bool:
        """Has every query of the cell reached its end (or come back empty)?"""
        return all(self.state(q).exhausted in ("end", "empty")
                   for q in self.plan.cell_queries(umbrella, decade))

    def next_query(self, busy: Container[tuple[str, str]] = ()
                   ) -> tuple[SeedQuery, int] | None:
        """The next (query, offset) to send, or None when discovery has nothing worth asking.

        ``busy`` holds the ``(q, kind)`` of queries with a page outstanding (the frontier's):
        a query pages sequentially, so it is never picked twice at once.
        """
        if self.full():
            return None
        for allow_demoted in (False, True):
            chosen = self._pick(allow_demoted, busy)
            if chosen is not None:
                return chosen, self.state(chosen).next_offset
        return None

    def _pick(self, allow_demoted: bool, busy: Container[tuple[str, str]]
              ) -> SeedQuery | None:
        needy = sorted((n / self.cell_target, i, cell) for i, (cell, n) in
                       enumerate(self.counts.items()) if n < self.cell_target)
        for _, _, (umbrella, decade) in needy:
            for query in self.plan.cell_queries(umbrella, decade):
                if self._open(query, allow_demoted, busy):
                    return query
        needy_umbrellas = {cell[0] for _, _, cell in needy}
        for query in self.plan.general_queries("track"):
            if query.umbrella is not None and query.umbrella not in needy_umbrellas:
                continue
            if self._open(query, allow_demoted, busy):
                return query
        if self.include_playlist_search:
            for query in self.plan.general_queries("playlist"):
                if self._open(query, allow_demoted, busy):
                    return query
        return None

    # ---------------------------------------------------------------- results
    def record_page(self, query: SeedQuery, offset: int, total: int | None, new: int,
                    known: int, now: str) -> QueryState:
        """Advance the query's ledger after one page; decide whether it goes on."""
        if query.kind == "track":
            self.family_of[query.q] = query.family
        state = self.state(query)
        state.next_offset = offset + self.page_size
        state.total = total
        state.requests += 1
        state.new_tracks += new
        if query.umbrella and query.decade:
            cell = (query.umbrella, query.decade)
            if offset == 0 or self.latest.get(cell, ("",))[0] == query.q:
                hits = [0, 0] if offset == 0 else self.latest[cell][1]
                hits[0] += new
                hits[1] += new + known
                self.latest[cell] = (query.q, hits)
        low = new < self.min_new_per_page
        state.low_pages = state.low_pages + 1 if low else 0
        reachable = min(total or 0, MAX_OFFSET)
        if not total:
            state.exhausted = "empty"
        elif state.next_offset >= reachable:
            state.exhausted = "end"
        elif state.low_pages >= self.patience:
            state.exhausted = "low_yield"
        family = self.families.setdefault(query.family, FamilyYield())
        family.requests += 1
        family.new_tracks += new
        if not family.demoted and self._fails_trial(family):
            family.demoted = True
            logger.info("Query family %r pays %.2f new tracks per request after %d requests: "
                        "demoted behind the families that pay", query.family,
                        family.per_request, family.requests)
        self.store.record_page(q=query.q, kind=query.kind, family=query.family,
                               umbrella=query.umbrella, decade=query.decade,
                               next_offset=state.next_offset, total=total, new=new, known=known,
                               low_page=low, exhausted=state.exhausted, now=now)
        return state


