"""``runs.crawl_catalog``: when the export runs after discovery, on stand-in crawlers.

The real crawls are in tests/test_export.py (finished, mode=export, a CLOSESPIDER_* close),
tests/reliability/test_quota_park.py (quota_parked) and test_prompt_close.py (shutdown).
"""

from __future__ import annotations

from typing import Any

import pytest
from scrapy.settings import Settings
from scrapy.utils.defer import deferred_f_from_coro_f
from twisted.internet.defer import succeed

from runclub_spiders.runs import DISCOVERY, EXPORT, CatalogRun, crawl_catalog


class FakeStats:
    def __init__(self, reason: str) -> None:
        self.reason = reason

    def get_stats(self) -> dict[str, Any]:
        return {"finish_reason": self.reason}


class FakeCrawler:
    def __init__(self, name: str, reason: str) -> None:
        self.name, self.reason = name, reason
        self.stats: FakeStats | None = None          # no stats before it runs

    def ran(self, **spider_args: Any) -> None:
        self.spider_args = spider_args
        self.stats = FakeStats(self.reason)


class FakeRunner:
    """Each crawler closes with the reason given for its spider."""

    def __init__(self, reasons: dict[str, str], **settings: Any) -> None:
        self.reasons = reasons
        self.settings = Settings({"EXPORT_ENABLED": True, **settings})
        self.crawled: list[str] = []

    def create_crawler(self, name: str) -> FakeCrawler:
        return FakeCrawler(name, self.reasons[name])

    def crawl(self, crawler: FakeCrawler, **spider_args: Any):
        self.crawled.append(crawler.name)
        crawler.ran(**spider_args)
        return succeed(None)


@pytest.mark.parametrize(("reason", "exports"), [
    ("finished", True),
    ("quota_parked", True),            # only parked work left: export what there is
    ("shutdown", False),               # Ctrl-C, SIGTERM
    ("auth_failed", False),
    ("missing_credentials", False),
    ("closespider_pagecount", False),
    ("closespider_timeout", False),
])
@deferred_f_from_coro_f
async def test_the_export_runs_after_discovery_ends_with_nothing_left(reason, exports):
    runner = FakeRunner({DISCOVERY: reason, EXPORT: "finished"})
    run = await crawl_catalog(runner, JOBNAME="x")
    assert runner.crawled == ([DISCOVERY, EXPORT] if exports else [DISCOVERY])
    assert run.discovery.spider_args == {"mode": "full", "JOBNAME": "x"}
    assert (run.export is not None) == exports
    assert run.reason == reason                    # the exit code follows discovery


@deferred_f_from_coro_f
async def test_modes_and_the_export_switch():
    runner = FakeRunner({DISCOVERY: "finished", EXPORT: "finished"})
    run = await crawl_catalog(runner, mode="export")
    assert runner.crawled == [EXPORT] and run.discovery is None and run.reason == "finished"

    runner = FakeRunner({DISCOVERY: "finished", EXPORT: "finished"})
    run = await crawl_catalog(runner, mode="discover")
    assert runner.crawled == [DISCOVERY] and run.export is None
    assert run.discovery.spider_args == {"mode": "discover"}

    runner = FakeRunner({DISCOVERY: "finished", EXPORT: "finished"}, EXPORT_ENABLED=False)
    run = await crawl_catalog(runner)
    assert runner.crawled == [DISCOVERY] and run.export is None

    with pytest.raises(ValueError, match="mode='both'"):
        await crawl_catalog(runner, mode="both")


@deferred_f_from_coro_f
async def test_prepare_sees_each_crawler_before_it_runs_and_run_is_filled_in():
    runner = FakeRunner({DISCOVERY: "finished", EXPORT: "finished"})
    seen: list[tuple[str, bool]] = []
    run = CatalogRun()
    returned = await crawl_catalog(
        runner, run=run, prepare=lambda c: seen.append((c.name, c.stats is None)))
    assert returned is run and run.export is not None
    assert seen == [(DISCOVERY, True), (EXPORT, True)]
    assert CatalogRun().reason is None and CatalogRun().errors == 0
