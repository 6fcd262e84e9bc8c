"""Every close reason exits within seconds, whatever is in flight.

A week-long crawl closes for many reasons: ``finished``, ``quota_parked``, ``auth_failed``,
``shutdown`` (SIGTERM, Ctrl-C). Scrapy then waits for every request in progress before it
sends ``spider_closed``, and this crawl has work that waits on purpose: ReccoBeats batches
(awaited by the items of the enrichment pipeline), token refreshes, requests sleeping in the
rate-limit middleware for their backoff or pace. Left alone, a close waits for all of them,
and one Scrapy bug turns the wait into a hang (``scrapy_compat.recheck_scraper_closing``).

So this extension sends ``signals.close_started`` the moment a close begins; components
listening to it (``utils.closing.CloseWatch``) stop waiting: batches end as errors (their
tracks stay ``pending`` in the store for the next run), sleepers give up with
``IgnoreRequest``, a refresh in flight is cancelled. While the close is under way the scraper
is nudged every ``POLL`` seconds until it has closed.

Stats: ``close/started_reason``, ``close/seconds`` (from the start of the close to
``spider_closed``).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Self

from scrapy import signals
from scrapy.utils.asyncio import create_looping_call

from runclub_spiders import scrapy_compat
from runclub_spiders.signals import close_started

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

POLL = 0.1


class PromptClose:
    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.started: float | None = None
        self._nudge = None
        crawler.signals.connect(self.engine_started, signal=signals.engine_started)
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    def engine_started(self) -> None:
        assert self.crawler.engine is not None
        scrapy_compat.on_close_started(self.crawler.engine, self._close_started)

    def _close_started(self, reason: str) -> None:
        if self.started is not None:
            return                      # a second close request joins the first
        self.started = time.monotonic()
        self.crawler.stats.set_value("close/started_reason", reason)
        self.crawler.signals.send_catch_log(close_started, reason=reason)
        self._nudge = create_looping_call(self._recheck)
        self._nudge.start(POLL, now=False)

    def _recheck(self) -> None:
        assert self.crawler.engine is not None
        scrapy_compat.recheck_scraper_closing(self.crawler.engine)

    def spider_closed(self) -> None:
        if self._nudge is not None and self._nudge.running:
            self._nudge.stop()
        if self.started is not None:
            self.crawler.stats.set_value("close/seconds",
                                         round(time.monotonic() - self.started, 2))
