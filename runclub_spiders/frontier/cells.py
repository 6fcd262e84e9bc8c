"""Per umbrella x decade cell: how full it is, whether discovery still spends there, and how
many tracks it can reach at all.

* **Need**: a cell below its target is open; the neediest (lowest share of its target) is
  served first, by every bucket.
* **The stop rule**: discovery spends on a cell only while some request is expected to bring
  at least ``DISCOVERY_MIN_YIELD`` new exportable tracks there: a search page (its query's
  last page, else its family's mean), an album (its unknown tracks), an artist listing (what
  listings brought so far). Expected tracks are made exportable by what the crawl learnt:
  the share of new tracks that pass the cheap filters and the share ReccoBeats knows; or
  while ReccoBeats leads still work for it (``Leads.open_for``: one track each, priced by
  ``DISCOVERY_LEAD_MIN_WORTH``); or, in a quota-bound crawl, while an artist of its
  umbrella is still to be listed (``Expansion.listing_worth``). A cell where nothing is
  worth a request has stopped:
  ``exhausted`` when its searches reached their end and no album is left, else
  ``low_yield``; ``target`` when it is full;
  ``max_tracks`` when the catalog as a whole has enough (``Planner.full``).
* **Reachable**: capture-recapture over the cell's searches. Independent queries of a cell
  sample the same population; the share of the latest query's hits that were already known
  (``Planner.latest``, from the seed ledger) estimates the share of the cell's reachable
  tracks already found, so reachable ~ found / known share. None until that query has seen
  ``MIN_HITS`` tracks.

Nothing here sends a request: the planner and the expansion ask ``fill`` and ``worth``;
the coverage report and ``scrapy catalog-status`` read what ``save`` writes to the store.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from runclub_spiders.frontier.expansion import Expansion
    from runclub_spiders.frontier.planner import Planner
    from runclub_spiders.store import Store

Cell = tuple[str, str]
MIN_HITS = 20               # hits of the cell's latest query before any estimate


class CellBook:
    def __init__(self, planner: Planner, expansion: Expansion, store: Store,
                 min_yield: float) -> None:
        self.planner, self.expansion, self.store = planner, expansion, store
        self.min_yield = min_yield
        self.stopped: dict[Cell, str] = {}
        # Do ReccoBeats leads still work for the cell (``Leads.open_for``)?
        self.leads_open: Callable[[Cell], bool] = lambda cell: False

    # ---------------------------------------------------------------- need
    def fill(self, cell: Cell) -> float | None:
        """Share of its target a cell holds; None when it needs no more tracks."""
        count = self.planner.counts.get(cell)
        if count is None or count >= self.planner.cell_target:
            return None
        return count / self.planner.cell_target

    def neediest(self) -> list[Cell]:
        """Open cells, neediest first (ties: the plan's order)."""
        order = {cell: i for i, cell in enumerate(self.planner.counts)}
        open_cells = [(fill, order[c], c) for c in self.planner.counts
                      if (fill := self.fill(c)) is not None]
        return [cell for _, _, cell in sorted(open_cells)]

    def umbrellas(self) -> list[str]:
        """Umbrellas with an open cell, the one with the neediest cell first."""
        seen: dict[str, None] = {}
        for umbrella, _ in self.neediest():
            seen.setdefault(umbrella)
        return list(seen)

    # ---------------------------------------------------------------- worth
    def exportable(self, new_tracks: float, share: float) -> float:
        """Expected exportable tracks of ``new_tracks`` new ones passing cheap filters at
        ``share``."""
        return new_tracks * share * self.expansion.learnt.features_share

    def worth(self, cell: Cell) -> float:
        """The most new exportable tracks one request is expected to bring to ``cell``."""
        search = self.exportable(self.planner.cell_worth(*cell),
                                 self.expansion.learnt.share("search"))
        album = self.expansion.album_worth(cell, ())
        listing = self.expansion.listing_worth() \
            if self.expansion.listing_open(cell[0], ()) else 0.0
        return max(search, album, listing)

    # ---------------------------------------------------------------- reachable
    def reachable(self, cell: Cell) -> float | None:
        count = self.planner.counts.get(cell, 0)
        if self.stopped.get(cell) == "exhausted":
            return float(count)
        latest = self.planner.latest.get(cell)
        if latest is None or latest[1][1] < MIN_HITS:
            return None
        new, seen = latest[1]
        known = (seen - new) / seen
        return round(count / known, 1) if known > 0 else None

    # ---------------------------------------------------------------- verdicts
    def review(self) -> dict[Cell, str]:
        """Why discovery no longer spends on each cell it stopped on."""
        stopped = {}
        full = self.planner.full()
        for cell in self.planner.counts:
            if self.fill(cell) is None:
                stopped[cell] = "target"
            elif full:
                stopped[cell] = "max_tracks"        # the whole catalog has enough candidates
            elif self.worth(cell) < self.min_yield and not self.leads_open(cell):
                exhausted = (self.planner.cell_exhausted(*cell)
                             and self.expansion.album_worth(cell, ()) == 0.0)
                stopped[cell] = "exhausted" if exhausted else "low_yield"
        self.stopped = stopped
        return stopped

    def save(self, now: str) -> None:
        self.review()
        for cell, found in self.planner.counts.items():
            self.store.set_discovery_cell(*cell, found=found, reachable=self.reachable(cell),
                                          stopped=self.stopped.get(cell), now=now)

