"""What discovery has done: a progress line every ``DISCOVERY_PROGRESS_INTERVAL`` seconds,
and at close the run's stats and its request counts in the store (the manifest reads them)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from scrapy.utils.asyncio import create_looping_call

from runclub_spiders import clock
from runclub_spiders.export.manifest import run_requests, run_totals
from runclub_spiders.quota import utc_day

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

    from runclub_spiders.frontier.planner import Planner
    from runclub_spiders.store import Store

logger = logging.getLogger(__name__)


class Progress:
    def __init__(self, crawler: Crawler, store: Store, planner: Planner) -> None:
        self.stats, self.store, self.planner = crawler.stats, store, planner
        interval = crawler.settings.getfloat("DISCOVERY_PROGRESS_INTERVAL")
        self._loop = None
        if interval > 0:
            self._loop = create_looping_call(self.log)
            self._loop.start(interval, now=False)

    def log(self) -> None:
        counts = self.store.counts()
        today = self.store.quota_requests(utc_day(clock.now()))    # all runs of the UTC day
        yields = ", ".join(f"{name} {family.per_request:.1f}"
                           for name, family in sorted(self.planner.families.items())
                           if family.requests)
        logger.info("progress: %d candidates, %d with features, %d misses, %d pending; "
                    "%d/%d cells at target; requests today: %s; new tracks per request: %s",
                    counts["tracks"], counts["features"], counts["misses"], counts["pending"],
                    self.planner.cells_at_target(), len(self.planner.counts),
                    ", ".join(f"{k}={v}" for k, v in sorted(today.items())) or "none",
                    yields or "none yet")

    def close(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self.log()
        stats = self.stats
        stats.set_value("discovery/cells_at_target", self.planner.cells_at_target())
        stats.set_value("discovery/cells", len(self.planner.counts))
        for key, value in self.store.counts().items():
            stats.set_value(f"store/{key}", value)
        for name, family in sorted(self.planner.families.items()):
            stats.set_value(f"discovery/family/{name}/requests", family.requests)
            stats.set_value(f"discovery/family/{name}/new_tracks", family.new_tracks)
        run = stats.get_stats()
        today = utc_day(clock.now())
        self.store.add_run_counts(today, run_requests(run), run_totals(run))
