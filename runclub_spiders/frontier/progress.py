"""What discovery has done: a progress line every ``DISCOVERY_PROGRESS_INTERVAL`` seconds,
with the projected finish date (``catalog.projection``), and at close the run's stats
(``discovery/projected_finish``, ``discovery/requests_needed`` among them) and its request
counts in the store (the manifest reads them)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from scrapy.utils.asyncio import create_looping_call

from runclub_spiders import clock
from runclub_spiders.catalog.projection import Cell, Projection, project_store
from runclub_spiders.export.manifest import run_requests, run_totals
from runclub_spiders.quota import utc_day

if TYPE_CHECKING:
    from collections.abc import Callable, Collection

    from scrapy.crawler import Crawler

    from runclub_spiders.frontier.planner import Planner
    from runclub_spiders.store import Store

logger = logging.getLogger(__name__)


class Progress:
    def __init__(self, crawler: Crawler, store: Store, planner: Planner,
                 stopped: Callable[[], Collection[Cell]] | None = None) -> None:
        """``stopped``: the cells where discovery stopped spending, as the crawl judges them
        now (``CellBook.review``); without it, as the store has them from the last close."""
        self.stats, self.store, self.planner = crawler.stats, store, planner
        self.stopped = stopped
        self.settings = crawler.settings
        interval = crawler.settings.getfloat("DISCOVERY_PROGRESS_INTERVAL")
        self._loop = None
        if interval > 0:
            self._loop = create_looping_call(self.log)
            self._loop.start(interval, now=False)

    def log(self, projection: Projection | None = None) -> None:
        """The progress line; ``projection`` when the caller has it already (the close)."""
        if projection is None:
            projection = self.projection()
        counts = self.store.counts()
        today = self.store.quota_requests(utc_day(clock.now()))    # all runs of the UTC day
        yields = ", ".join(f"{name} {family.per_request:.1f}"
                           for name, family in sorted(self.planner.families.items())
                           if family.requests)
        logger.info("progress: %d candidates, %d with features, %d misses, %d pending; "
                    "%d/%d cells at target; requests today: %s; new tracks per request: %s; "
                    "projected finish: %s",
                    counts["tracks"], counts["features"], counts["misses"], counts["pending"],
                    self.planner.cells_at_target(), len(self.planner.counts),
                    ", ".join(f"{k}={v}" for k, v in sorted(today.items())) or "none",
                    yields or "none yet", finish_text(projection))

    def projection(self) -> Projection:
        """When discovery should be done, from the planner's counts and the store."""
        planner = self.planner
        return project_store(self.store, self.settings, planner.counts, clock.now(),
                             counts=planner.counts, total_candidates=planner.total_candidates,
                             targets=(planner.cell_target, planner.max_candidates),
                             stopped=self.stopped() if self.stopped is not None else None)

    def close(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        projection = self.projection()            # once: the line and the stats alike
        self.log(projection)
        stats = self.stats
        stats.set_value("discovery/cells_at_target", self.planner.cells_at_target())
        stats.set_value("discovery/cells", len(self.planner.counts))
        # Candidates counted toward a cell below its target: what the global cap and the
        # lead pages' cap (DISCOVERY_LEAD_PAGES_PER_CANDIDATE) count.
        stats.set_value("discovery/candidates_toward_target", self.planner.useful())
        if projection.finish is not None:
            stats.set_value("discovery/projected_finish", projection.finish.isoformat())
        if projection.requests_needed is not None:
            stats.set_value("discovery/requests_needed", projection.requests_needed)
        for key, value in self.store.counts().items():
            stats.set_value(f"store/{key}", value)
        for name, family in sorted(self.planner.families.items()):
            stats.set_value(f"discovery/family/{name}/requests", family.requests)
            stats.set_value(f"discovery/family/{name}/new_tracks", family.new_tracks)
        run = stats.get_stats()
        today = utc_day(clock.now())
        self.store.add_run_counts(today, run_requests(run), run_totals(run))


def finish_text(projection: Projection) -> str:
    """``2026-12-08 (1,234 requests to go)``, or why there is no date yet."""
    if projection.finish is None:
        return "unknown (no discovery yield measured yet)"
    return f"{projection.finish.isoformat()} ({projection.requests_needed:,} requests to go)"
