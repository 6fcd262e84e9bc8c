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

Not chosen: ``cell_full`` (the cell or the global cap had enough), ``long_not_needed``,
``no_features`` (featureless, not needed to reach a minimum), ``playability_unknown``.
Within a phase, candidates are ranked by popularity (Spotify's, else ReccoBeats'), then by
a hash of the ID: stable across runs and independent of the order tracks were found.
"""

from __future__ import annotations

import hashlib
import heapq
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

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


@dataclass
class CellReport:
    umbrella: str
    decade: str
    home: int = 0                      # exported tracks whose own cell this is
    backfilled: int = 0                # exported tracks assigned here from elsewhere
    candidates: int = 0                # classified here before filters
    eligible: int = 0                  # passed filters and dedupe
    why: str | None = None

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


class _Balancer:
    def __init__(self, survivors: list[Candidate], rules: UmbrellaRules,
                 cells: dict[tuple[str, str], CellReport], settings: BalanceSettings,
                 decades: tuple[str, ...]) -> None:
        self.rules, self.cells, self.settings, self.decades = rules, cells, settings, decades
        self.assigned: dict[str, tuple[tuple[str, str], str | None]] = {}
        self.backfill_counts: Counter[str] = Counter()
        self.total = 0
        self.featureless = 0
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

    def _filtered(self, test: Callable[[Candidate], bool]):
        def pick(pool: list[Candidate]) -> Iterable[Candidate]:
            return (c for c in pool if c.id not in self.assigned and test(c))
        return pick

    def _backfill_sources(self, cell: tuple[str, str]) -> Iterable[tuple[Candidate, str]]:
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
        """Water-fill: always give the next track to the emptiest cell still below ``limit``."""
        iterators = {cell: iter(source(cell)) for cell in self.cells}
        heap = [(report.count, i, cell) for i, (cell, report) in enumerate(self.cells.items())
                if report.count < limit]
        heapq.heapify(heap)
        while heap and self.total < self.settings.max_tracks:
            count, i, cell = heapq.heappop(heap)
            if featureless and not self._featureless_allowed():
                return
            # Sources skip assigned candidates as they are pulled (_filtered).
            pick = next(iterators[cell], None)
            if pick is None:
                continue                       # nothing left for this cell in this phase
            candidate, kind = pick if backfill else (pick, None)
            self._assign(candidate, cell, kind, featureless)
            if count + 1 < limit:
                heapq.heappush(heap, (count + 1, i, cell))

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
        self.total += 1
        if featureless:
            self.featureless += 1

    def why_not(self, c: Candidate) -> str:
        if c.playable is None:
            return "playability_unknown"
        if not c.has_features:
            return "no_features"
        if c.duration_ms > PREFERRED_MAX_MS:
            return "long_not_needed"
        return "cell_full"
