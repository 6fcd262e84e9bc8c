"""Which candidates become the catalog: filter, dedupe, then balance umbrella x decade cells.

Filters (the first that fails is the reason; every reason is counted per seed and in total):

* ``duration_short`` / ``duration_long``: outside ``[min, max]`` ms; never over 6 minutes;
* ``unplayable``: not playable in the primary market by the first source that knows;
* ``no_release_year``, ``before_1970``, ``no_umbrella``: cannot be placed in a cell;
* ``decade_not_planned``: its decade is not among the seed plan's ``decades``.

Dedupe, among the tracks that passed:

* ``duplicate_isrc``: one track per ISRC, by the rule discovery planning and the cheap
  filter apply too (``catalog.isrc``): the earliest album year, then the smallest ID;
* ``duplicate_title``: for tracks without an ISRC (or one without, against one with), the
  same normalised title and primary artist within 2 s of duration; among tracks without an
  ISRC the most popular (Spotify's, absent in Development Mode) stays, then the earliest
  album year, then the smallest ID.

Balance: every cell takes its own tracks ("home") and, when thin, others', in phases; each
phase fills the cell with the fewest tracks first (water-filling), so the global cap shares
out evenly and nothing depends on cell order:

1. home tracks with features, 2-5 minutes, up to the cell minimum;
2. home 5-6 minute tracks with features, up to the minimum (only below it);
3. backfill up to the minimum with featured tracks not yet chosen: artists whose secondary
   umbrella is this one, then neighbour umbrellas in the umbrella file's order (same decade),
   then the same umbrella in adjacent decades, nearest first;
4. home tracks with features up to the soft target (2-5 minutes first, then 5-6);
5. home tracks without features, or with unknown playability, for cells still below their
   minimum, while the featureless share stays within ``max_featureless_share``.

Artist variety (room for the app's per-artist spacing): in every phase above, a cell takes a
track only if its primary artist (the first listed) then holds at most
``artist_cap(n) = max(max_artist_floor, floor(max_artist_share * n))`` of the cell's ``n``
tracks, ``n`` counting that track. The cap grows with the cell, so a track it holds back
waits (in rank order) and is taken as soon as the cell has grown enough, before any
lower-ranked track: at each step the cell takes its best-ranked candidate the cap allows.
Since a cell never shrinks and the cap never falls, every artist stays within the cap of the
cell's exported count. Then one last phase:

6. tracks over the cap, for cells still below their minimum after every phase above (the
   sources of phases 1-3, featured only), up to the minimum: the artist with the fewest tracks
   in the cell first, then rank order. ``CellReport.over_artist_share`` counts the tracks
   above the cap of the cell's final count (``sum(max(0, k - artist_cap(count)))``), so a
   cell at or above its minimum has none.

The order of the caps: filters and dedupe decide whether a track may be exported at all; the
artist cap decides which of a cell's candidates it takes next; water-filling decides which
cell takes the next track, and the global cap (``max_tracks``) ends every phase, the last
included, when the export is full: it is never exceeded, and a track held back by the artist
cap leaves its place in the global cap to another track (of this cell or another).

Not chosen: ``cell_full`` (the cell or the global cap had enough), ``artist_share`` (its
cell is below its target, but its artist holds the cap there), ``long_not_needed``,
``no_features`` (featureless, not needed to reach a minimum), ``playability_unknown``.
Within a phase, candidates are ranked by popularity (Spotify's, else ReccoBeats'), then by
a hash of the ID: stable across runs and independent of the order tracks were found.
"""

from __future__ import annotations

import functools
import hashlib
import heapq
import re
import unicodedata
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from fractions import Fraction

from runclub_spiders.catalog.candidates import Candidate
from runclub_spiders.catalog.isrc import isrc_rank
from runclub_spiders.seeds import DECADES
from runclub_spiders.umbrellas import UmbrellaRules

PREFERRED_MAX_MS = 300_000          # 5 minutes: longer tracks only where a cell needs them
TITLE_DURATION_TOLERANCE_MS = 2_000
TITLE_NOISE = re.compile(
    r"\s*[-(\[]\s*(?:\d{4}\s+)?(?:remaster(?:ed)?|deluxe|anniversary|mono|stereo|single|"
    r"radio edit|album version|bonus track)\b.*$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class BalanceSettings:
    min_duration_ms: int = 120_000
    max_duration_ms: int = 360_000
    cell_min: int = 400
    cell_target: int = 600
    max_tracks: int = 40_000
    max_featureless_share: float = 0.01
    max_artist_share: float = 0.10
    max_artist_floor: int = 4

    def artist_cap(self, count: int) -> int:
        """Tracks one primary artist may hold in a cell of ``count`` exported tracks. Exact
        arithmetic: 0.57 * 100 is 56.99... in floating point, the cap is 57."""
        numerator, denominator = _exact(self.max_artist_share)
        return max(self.max_artist_floor, count * numerator // denominator)


@functools.lru_cache(maxsize=8)
def _exact(share: float) -> tuple[int, int]:
    """The share as the decimal written in the settings (0.1 is 1/10, not 0.1000...0555)."""
    exact = Fraction(str(share))
    return exact.numerator, exact.denominator


@dataclass
class CellReport:
    umbrella: str
    decade: str
    home: int = 0                      # exported tracks whose own cell this is
    backfilled: int = 0                # exported tracks assigned here from elsewhere
    candidates: int = 0                # classified here before filters
    eligible: int = 0                  # passed filters and dedupe
    why: str | None = None
    top_artist: int = 0                # tracks of the primary artist with the most here
    artist_cap: int = 0                # the cap at this cell's exported count
    over_artist_share: int = 0         # tracks above that cap (only to reach the minimum)
    # What discovery last concluded here (the store's discovery_cells; export.build sets
    # them): candidates found, estimated reachable, why it stopped (None while it spends).
    found: int | None = None
    reachable: float | None = None
    stopped: str | None = None

    @property
    def count(self) -> int:
        return self.home + self.backfilled


@dataclass
class Selection:
    chosen: list[Candidate]                              # sorted by Spotify ID
    assigned: dict[str, tuple[tuple[str, str], str | None]]  # id -> (cell, backfill kind)
    rejections: Counter[str]
    rejections_by_seed: dict[str, Counter[str]]
    cells: dict[tuple[str, str], CellReport]
    backfill: Counter[str]
    settings: BalanceSettings
    year_sources: Counter[str] = field(default_factory=Counter)
    umbrella_sources: Counter[str] = field(default_factory=Counter)


def rank_key(candidate: Candidate) -> tuple[int, str]:
    popularity = candidate.popularity if candidate.popularity is not None \
        else candidate.recco_popularity
    digest = hashlib.sha1(candidate.id.encode()).hexdigest()
    return (-(popularity if popularity is not None else -1), digest)


def normalized_title(name: str) -> str:
    text = unicodedata.normalize("NFKC", TITLE_NOISE.sub("", name)).casefold()
    return " ".join(re.sub(r"[^\w\s]", " ", text).split())


def duration_reason(duration_ms: int, min_ms: int, max_ms: int) -> str | None:
    """``duration_short`` / ``duration_long`` outside ``[min_ms, max_ms]``, else None; the
    cheap filter at discovery and the export apply the same rule."""
    if duration_ms < min_ms:
        return "duration_short"
    if duration_ms > max_ms:
        return "duration_long"
    return None


def filter_reason(candidate: Candidate, settings: BalanceSettings) -> str | None:
    reason = duration_reason(candidate.duration_ms, settings.min_duration_ms,
                             settings.max_duration_ms)
    if reason:
        return reason
    if candidate.playable is False:
        return "unplayable"
    if candidate.year.year is None:
        return "no_release_year"
    if candidate.decade is None:
        return "before_1970"
    if not candidate.umbrellas:
        return "no_umbrella"
    return None


def dedupe(candidates: list[Candidate]) -> tuple[list[Candidate], dict[str, str]]:
    """The survivors (store order) and, for each loser, its reason."""
    losers: dict[str, str] = {}

    def title_tie_break(c: Candidate) -> tuple[int, int, str]:
        return (-(c.popularity if c.popularity is not None else -1),
                c.album_year if c.album_year is not None else 10_000, c.id)

    groups: dict[str, list[Candidate]] = defaultdict(list)
    for c in candidates:
        if c.isrc:
            groups[c.isrc].append(c)
    for group in groups.values():
        for loser in sorted(group, key=lambda c: isrc_rank(c.id, c.album_year))[1:]:
            losers[loser.id] = "duplicate_isrc"

    by_title: dict[tuple[str, str], list[Candidate]] = defaultdict(list)
    for c in candidates:
        if c.id not in losers and c.artist_ids:
            by_title[(normalized_title(c.name), c.artist_ids[0])].append(c)
    for group in by_title.values():
        if len(group) < 2 or all(c.isrc for c in group):
            continue
        group.sort(key=lambda c: (c.duration_ms, c.id))
        cluster: list[Candidate] = [group[0]]
        for c in group[1:]:
            if c.duration_ms - cluster[-1].duration_ms <= TITLE_DURATION_TOLERANCE_MS:
                cluster.append(c)
            else:
                _collapse_title_cluster(cluster, title_tie_break, losers)
                cluster = [c]
        _collapse_title_cluster(cluster, title_tie_break, losers)
    return [c for c in candidates if c.id not in losers], losers


def _collapse_title_cluster(cluster: list[Candidate], tie_break: Callable,
                            losers: dict[str, str]) -> None:
    """Tracks with ISRCs here are distinct recordings (ISRC dedupe ran first) and all stay;
    a track without an ISRC duplicates them, or, among tracks without one, the best stays."""
    if len(cluster) < 2:
        return
    with_isrc = [c for c in cluster if c.isrc]
    without = sorted((c for c in cluster if not c.isrc), key=tie_break)
    for c in without if with_isrc else without[1:]:
        losers[c.id] = "duplicate_title"


def select(candidates: list[Candidate], rules: UmbrellaRules,
           settings: BalanceSettings, decades: Iterable[str] = DECADES) -> Selection:
    decades = tuple(decades)
    cells = {(u, d): CellReport(u, d) for u in rules.names() for d in decades}
    rejections: Counter[str] = Counter()
    by_seed: dict[str, Counter[str]] = defaultdict(Counter)

    def reject(c: Candidate, reason: str) -> None:
        rejections[reason] += 1
        by_seed[c.seed][reason] += 1

    passed = []
    for c in candidates:
        if c.cell in cells:
            cells[c.cell].candidates += 1
        reason = filter_reason(c, settings)
        if reason is None and c.cell not in cells:
            reason = "decade_not_planned"   # the seed plan covers only some decades
        if reason:
            reject(c, reason)
        else:
            passed.append(c)
    survivors, dupes = dedupe(passed)
    for c in passed:
        if c.id in dupes:
            reject(c, dupes[c.id])

    balancer = _Balancer(survivors, rules, cells, settings, decades)
    balancer.run()
    chosen = sorted((c for c in survivors if c.id in balancer.assigned), key=lambda c: c.id)
    for c in survivors:
        if c.id not in balancer.assigned:
            reject(c, balancer.why_not(c))
    selection = Selection(chosen=chosen, assigned=balancer.assigned, rejections=rejections,
                          rejections_by_seed=dict(by_seed), cells=cells,
                          backfill=balancer.backfill_counts, settings=settings)
    for c in chosen:
        selection.year_sources[c.year.source] += 1
        selection.umbrella_sources[c.umbrella_source] += 1
    return selection


def primary_artist(candidate: Candidate) -> str | None:
    return candidate.artist_ids[0] if candidate.artist_ids else None


Pick = tuple[Candidate, str | None]          # a candidate and its backfill kind (None: home)


class _Balancer:
    def __init__(self, survivors: list[Candidate], rules: UmbrellaRules,
                 cells: dict[tuple[str, str], CellReport], settings: BalanceSettings,
                 decades: tuple[str, ...]) -> None:
        self.rules, self.cells, self.settings, self.decades = rules, cells, settings, decades
        self.assigned: dict[str, tuple[tuple[str, str], str | None]] = {}
        self.backfill_counts: Counter[str] = Counter()
        self.total = 0
        self.featureless = 0
        # Exported tracks per primary artist, per cell (home and backfilled alike).
        self.artists: dict[tuple[str, str], Counter[str]] = {cell: Counter() for cell in cells}
        self.home: dict[tuple[str, str], list[Candidate]] = defaultdict(list)
        self.secondary: dict[tuple[str, str], list[Candidate]] = defaultdict(list)
        for c in sorted(survivors, key=rank_key):
            self.home[c.cell].append(c)
            cells[c.cell].eligible += 1
            for umbrella in c.umbrellas[1:]:
                if (umbrella, c.decade) in cells:
                    self.secondary[(umbrella, c.decade)].append(c)

    # ---------------------------------------------------------------- phases
    def run(self) -> None:
        s = self.settings
        preferred = self._filtered(lambda c: c.has_features and c.playable is not None
                                   and c.duration_ms <= PREFERRED_MAX_MS)
        long = self._filtered(lambda c: c.has_features and c.playable is not None
                              and c.duration_ms > PREFERRED_MAX_MS)
        self._fill(s.cell_min, lambda cell: preferred(self.home[cell]))
        self._fill(s.cell_min, lambda cell: long(self.home[cell]))
        self._fill(s.cell_min, self._backfill_sources, backfill=True)
        self._fill(s.cell_target, lambda cell: preferred(self.home[cell]))
        self._fill(s.cell_target, lambda cell: long(self.home[cell]))
        fallback = self._filtered(lambda c: not (c.has_features and c.playable is not None))
        self._fill(s.cell_min, lambda cell: fallback(self.home[cell]), featureless=True)
        self._fill_over_cap(preferred, long)
        self._report_artists()

    def _filtered(self, test: Callable[[Candidate], bool]):
        def pick(pool: list[Candidate]) -> Iterable[Candidate]:
            return (c for c in pool if c.id not in self.assigned and test(c))
        return pick

    def _backfill_sources(self, cell: tuple[str, str]) -> Iterable[Pick]:
        umbrella, decade = cell
        usable = self._filtered(lambda c: c.has_features and c.playable is not None)
        for c in usable(self.secondary[cell]):
            yield c, "secondary_umbrella"
        for neighbour in self.rules.get(umbrella).neighbours:
            for c in usable(self.home[(neighbour, decade)]):
                yield c, "neighbour_umbrella"
        index = self.decades.index(decade)
        for step in range(1, len(self.decades)):
            for other in (index - step, index + step):
                if 0 <= other < len(self.decades):
                    for c in usable(self.home[(umbrella, self.decades[other])]):
                        yield c, "adjacent_decade"

    def _fill(self, limit: int, source: Callable, *, backfill: bool = False,
              featureless: bool = False) -> None:
        """A phase within the artist cap: each cell takes its candidates in source order,
        those the cap holds back as soon as it allows (``_CappedPicks``)."""
        picks = {cell: _CappedPicks(self, cell, source(cell) if backfill
                                    else ((c, None) for c in source(cell)))
                 for cell in self.cells}
        self._water_fill(limit, picks, featureless=featureless)

    def _water_fill(self, limit: int, picks: dict[tuple[str, str], _CappedPicks | _OverCap],
                    *, featureless: bool = False) -> None:
        """Always give the next track to the emptiest cell still below ``limit``."""
        order = {cell: i for i, cell in enumerate(self.cells)}
        heap = [(self.cells[cell].count, order[cell], cell) for cell in picks
                if self.cells[cell].count < limit]
        heapq.heapify(heap)
        while heap and self.total < self.settings.max_tracks:
            count, i, cell = heapq.heappop(heap)
            if featureless and not self._featureless_allowed():
                return
            pick = picks[cell].next()
            if pick is None:
                continue                       # nothing left for this cell in this phase
            candidate, kind = pick
            self._assign(candidate, cell, kind, featureless)
            if count + 1 < limit:
                heapq.heappush(heap, (count + 1, i, cell))

    def _fill_over_cap(self, preferred: Callable, long: Callable) -> None:
        """Phase 6: cells still below their minimum take tracks over the artist cap."""
        minimum = self.settings.cell_min
        picks: dict[tuple[str, str], _CappedPicks | _OverCap] = {}
        for cell, report in self.cells.items():
            if report.count < minimum:
                picks[cell] = _OverCap(self, cell, lambda cell=cell: (
                    *((c, None) for c in (*preferred(self.home[cell]),
                                          *long(self.home[cell]))),
                    *self._backfill_sources(cell)))
        self._water_fill(minimum, picks)

    def allows(self, cell: tuple[str, str], artist: str | None) -> bool:
        """Whether the cell may take one more track of ``artist`` within the cap."""
        if artist is None:
            return True
        cap = self.settings.artist_cap(self.cells[cell].count + 1)
        return self.artists[cell][artist] + 1 <= cap

    def _featureless_allowed(self) -> bool:
        share = self.settings.max_featureless_share
        return self.featureless + 1 <= share * (self.total + 1)

    def _assign(self, c: Candidate, cell: tuple[str, str], kind: str | None,
                featureless: bool) -> None:
        self.assigned[c.id] = (cell, kind)
        report = self.cells[cell]
        if kind is None:
            report.home += 1
        else:
            report.backfilled += 1
            self.backfill_counts[kind] += 1
        artist = primary_artist(c)
        if artist is not None:
            self.artists[cell][artist] += 1
        self.total += 1
        if featureless:
            self.featureless += 1

    def _report_artists(self) -> None:
        for cell, report in self.cells.items():
            counts = self.artists[cell].values()
            report.artist_cap = cap = self.settings.artist_cap(report.count)
            report.top_artist = max(counts, default=0)
            report.over_artist_share = sum(max(0, n - cap) for n in counts)

    def why_not(self, c: Candidate) -> str:
        if c.playable is None:
            return "playability_unknown"
        if not c.has_features:
            return "no_features"
        report = self.cells[c.cell]
        artist = primary_artist(c)
        if (artist is not None and report.count < self.settings.cell_target
                and self.total < self.settings.max_tracks
                and self.artists[c.cell][artist] >= report.artist_cap):
            return "artist_share"
        if c.duration_ms > PREFERRED_MAX_MS:
            return "long_not_needed"
        return "cell_full"


class _CappedPicks:
    """One cell's candidates in one phase, in source order, within the artist cap. A
    candidate the cap holds back waits with its artist's others; each ``next()`` returns the
    earliest waiting candidate the cap now allows, else pulls on. Waiting candidates came
    before anything not yet pulled, so the cell always takes its best-ranked allowed one."""

    def __init__(self, balancer: _Balancer, cell: tuple[str, str],
                 source: Iterable[Pick]) -> None:
        self.balancer, self.cell, self.source = balancer, cell, iter(source)
        self.waiting: dict[str | None, deque[tuple[int, Pick]]] = {}
        self.pulled = 0
        self.none_waiting_allowed_at = -1       # a cap at which no waiting one was allowed

    def next(self) -> Pick | None:
        assigned, allows = self.balancer.assigned, self.balancer.allows
        best: tuple[int, str | None] | None = None
        # Counts only grow: what waits becomes allowed only when the cap grows.
        cap = self.balancer.settings.artist_cap(self.balancer.cells[self.cell].count + 1)
        for artist in list(self.waiting) if cap != self.none_waiting_allowed_at else ():
            queue = self.waiting[artist]
            while queue and queue[0][1][0].id in assigned:   # taken meanwhile by another cell
                queue.popleft()
            if not queue:
                del self.waiting[artist]
            elif (best is None or queue[0][0] < best[0]) and allows(self.cell, artist):
                best = (queue[0][0], artist)
        if best is None:
            self.none_waiting_allowed_at = cap
        else:
            artist = best[1]
            _, pick = self.waiting[artist].popleft()
            if not self.waiting[artist]:
                del self.waiting[artist]
            return pick
        for pick in self.source:                # sources skip assigned candidates as pulled
            artist = primary_artist(pick[0])
            if allows(self.cell, artist):
                return pick
            self.waiting.setdefault(artist, deque()).append((self.pulled, pick))
            self.pulled += 1
        return None


class _OverCap:
    """Phase 6 for one cell: its remaining candidates regardless of the cap, the artist with
    the fewest tracks in the cell first (the excess spreads as thin as it can), then source
    order."""

    def __init__(self, balancer: _Balancer, cell: tuple[str, str],
                 source: Callable[[], Iterable[Pick]]) -> None:
        self.balancer, self.cell, self.source = balancer, cell, source
        self.picks: list[Pick] = []
        self.heap: list[tuple[int, int]] | None = None  # read at the first next(), if any

    def _start(self) -> list[tuple[int, int]]:
        first: dict[str, Pick] = {}
        for pick in self.source():              # a candidate may come from two sources
            first.setdefault(pick[0].id, pick)
        self.picks = list(first.values())
        counts = self.balancer.artists[self.cell]
        heap = [(self._held(counts, pick), index) for index, pick in enumerate(self.picks)]
        heapq.heapify(heap)
        return heap

    @staticmethod
    def _held(counts: Counter[str], pick: Pick) -> int:
        artist = primary_artist(pick[0])
        return 0 if artist is None else counts[artist]

    def next(self) -> Pick | None:
        if self.heap is None:
            self.heap = self._start()
        counts = self.balancer.artists[self.cell]
        while self.heap:
            held, index = heapq.heappop(self.heap)
            pick = self.picks[index]
            if pick[0].id in self.balancer.assigned:
                continue
            now = self._held(counts, pick)
            if now != held:                     # its artist gained tracks since: requeue
                heapq.heappush(self.heap, (now, index))
                continue
            return pick
        return None
