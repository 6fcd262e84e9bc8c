"""A benchmark add-on: how long the reactor went without running, per crawl.

``-s ADDONS='{"bench.reactor_lag.ReactorLagAddon": 0}' -s REACTOR_LAG_FILE=<path>``: a
``LoopingCall`` every 5 ms notes the longest gap between two of its runs beyond those 5 ms,
from ``engine_started`` to ``engine_stopped``, and appends ``{"spider": ..., "max_block_ms":
..., "seconds": ...}`` to the file as one JSON line per crawl (``scrapy crawl spotify_catalog``
writes two: discovery's and the export's). A gap is time the reactor spent in one callback or
waiting for the GIL: a stretch no request, signal or Ctrl-C is handled in. ``bench/crawl.py``
uses it for the export alone (BENCHMARKS.md).
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Self

from scrapy import signals
from scrapy.exceptions import NotConfigured
from scrapy.utils.asyncio import create_looping_call

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

INTERVAL = 0.005


class ReactorLag:
    def __init__(self, crawler: Crawler, path: str) -> None:
        self.crawler, self.path = crawler, path
        self.worst = 0.0
        self.started = self.last = 0.0
        self.call = None
        crawler.signals.connect(self.engine_started, signal=signals.engine_started)
        crawler.signals.connect(self.engine_stopped, signal=signals.engine_stopped)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        path = crawler.settings.get("REACTOR_LAG_FILE")
        if not path:
            raise NotConfigured("REACTOR_LAG_FILE is not set")
        return cls(crawler, path)

    def engine_started(self) -> None:
        self.started = self.last = time.monotonic()
        self.call = create_looping_call(self.tick)
        self.call.start(INTERVAL, now=False)

    def tick(self) -> None:
        now = time.monotonic()
        self.worst = max(self.worst, now - self.last - INTERVAL)
        self.last = now

    def engine_stopped(self) -> None:
        self.tick()
        if self.call is not None and self.call.running:
            self.call.stop()
        spider = self.crawler.spider
        record = {"spider": spider.name if spider else None,
                  "max_block_ms": round(self.worst * 1000, 1),
                  "seconds": round(time.monotonic() - self.started, 2)}
        with open(self.path, "a", encoding="utf-8") as out:
            out.write(json.dumps(record) + "\n")


class ReactorLagAddon:
    def update_settings(self, settings) -> None:
        settings["EXTENSIONS"][f"{__name__}.ReactorLag"] = 1000
