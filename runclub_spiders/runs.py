"""A catalog run: discovery (``spotify_catalog``), then the export (``catalog_export``).

The one place that decides when the export runs. ``scrapy crawl spotify_catalog``
(``commands/crawl.py``), ``scrapy demo``, the benchmarks (through ``scrapy crawl``) and the
tests that crawl the whole catalog in-process all go through :func:`crawl_catalog`:

* ``mode="full"`` (the default): discovery, then, in the same process, the export, when
  discovery closed with nothing left to discover or enrich: reason ``finished``, or
  ``quota_parked`` (only work for parked quota buckets is left: what there is gets exported,
  and the same command continues after the park). Any other close (``shutdown`` after Ctrl-C
  or SIGTERM, ``auth_failed``, a ``CLOSESPIDER_*`` limit) runs no export: the published one
  stays as it was.
* ``mode="export"``: the export only, without a single API call (discovery is not run).
* ``mode="discover"``: discovery only; no feed, so no export file is even created.

With ``EXPORT_ENABLED`` off no export runs in any mode.

Both crawls are crawlers of the same runner, one after the other: a stop (Ctrl-C) reaches
whichever is running. Each has its own stats; :class:`CatalogRun` holds both crawlers.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from scrapy.crawler import AsyncCrawlerRunner, CrawlerRunner
from scrapy.settings import BaseSettings, Settings
from scrapy.utils.defer import deferred_from_coro, maybe_deferred_to_future
from scrapy.utils.reactor import is_reactor_installed
from twisted.internet.defer import Deferred

if TYPE_CHECKING:
    from scrapy.crawler import Crawler, CrawlerProcessBase, CrawlerRunnerBase
    from twisted.python.failure import Failure

logger = logging.getLogger(__name__)
T = TypeVar("T")

DISCOVERY = "spotify_catalog"
EXPORT = "catalog_export"
MODES = ("full", "export", "discover")
#: Discovery's close reasons after which the export runs (see the module doc).
EXPORT_AFTER = frozenset({"finished", "quota_parked"})


@dataclass
class CatalogRun:
    """The crawlers of one run; ``None`` for a crawl that did not run."""

    discovery: Crawler | None = None
    export: Crawler | None = None

    @property
    def discovery_stats(self) -> dict[str, Any]:
        return crawler_stats(self.discovery)

    @property
    def export_stats(self) -> dict[str, Any]:
        return crawler_stats(self.export)

    @property
    def reason(self) -> str | None:
        """How the run ended, for its exit code: discovery's close reason, or the export's
        when only the export ran (``mode="export"``)."""
        crawler = self.discovery if self.discovery is not None else self.export
        return crawler_stats(crawler).get("finish_reason")

    @property
    def errors(self) -> int:
        """ERROR log records of both crawls."""
        return sum(stats.get("log_count/ERROR", 0)
                   for stats in (self.discovery_stats, self.export_stats))


def crawler_stats(crawler: Crawler | None) -> dict[str, Any]:
    """A crawler's stats; empty when it never got as far as having any."""
    if crawler is None:
        return {}
    try:
        return crawler.stats.get_stats()
    except (RuntimeError, AttributeError):      # not started: its stats do not exist yet
        return {}


def catalog_runner(settings: dict[str, Any] | BaseSettings) -> CrawlerRunnerBase:
    """A runner for ``settings`` (for tests and scripts; commands have their process)."""
    if not isinstance(settings, BaseSettings):
        settings = Settings(settings)
    return CrawlerRunner(settings) if is_reactor_installed() else AsyncCrawlerRunner(settings)


async def crawl_catalog(runner: CrawlerRunnerBase | dict[str, Any] | BaseSettings, *,
                        mode: str = "full", run: CatalogRun | None = None,
                        prepare: Callable[[Crawler], object] | None = None,
                        **spider_args: Any) -> CatalogRun:
    """Run discovery and then the export as ``mode`` says (module doc) with ``runner`` (a
    ``CrawlerRunner``, ``AsyncCrawlerRunner`` or a process; or settings to make one from).
    ``spider_args`` go to discovery (``-a`` arguments). ``run``, when given, is filled in as
    the crawlers are made, so its caller has them even if this never returns (the reactor
    stopped by a signal between the two crawls). ``prepare`` is called with each crawler
    before it starts (to connect to its signals, say). Bootstrap errors propagate."""
    if mode not in MODES:
        raise ValueError(f"mode={mode!r}: use one of {', '.join(MODES)}")
    if not hasattr(runner, "create_crawler"):
        runner = catalog_runner(runner)
    run = run if run is not None else CatalogRun()
    if mode != "export":
        run.discovery = runner.create_crawler(DISCOVERY)
        if prepare is not None:
            prepare(run.discovery)
        await _crawl(runner, run.discovery, mode=mode, **spider_args)
        reason = run.reason
        if mode == "discover" or reason not in EXPORT_AFTER:
            return run
        logger.info("Discovery closed (%s): exporting the catalog (%s)", reason, EXPORT)
    if not runner.settings.getbool("EXPORT_ENABLED"):
        return run
    run.export = runner.create_crawler(EXPORT)
    if prepare is not None:
        prepare(run.export)
    await _crawl(runner, run.export)
    return run


async def _crawl(runner: CrawlerRunnerBase, crawler: Crawler, **spider_args: Any) -> None:
    """Through the runner, which tracks the crawl (a process's Ctrl-C stops it)."""
    started = runner.crawl(crawler, **spider_args)
    if isinstance(started, Deferred):
        await maybe_deferred_to_future(started)
    else:
        await started


def run_in_process(process: CrawlerProcessBase, main: Callable[[], Awaitable[T]]) -> T | None:
    """Start ``process``'s reactor, run ``main()`` in it and stop the reactor when it ends.

    ``CrawlerProcess.start()`` stops the reactor as soon as no crawl is active, which is also
    the moment between discovery and the export. The result of ``main()``, or None when the
    reactor was stopped before it ended (a second Ctrl-C, say). An error it raised is logged
    (a bootstrap failure also sets ``process.bootstrap_failed``).
    """
    from twisted.internet import reactor  # noqa: PLC0415 -- the process installs it first

    outcome: dict[str, Any] = {}

    def stop(_: Any) -> None:
        if reactor.running:
            reactor.stop()

    def failed(failure: Failure) -> None:
        logger.error("The crawl could not run: %s", failure.getErrorMessage(),
                     exc_info=(failure.type, failure.value, failure.getTracebackObject()))

    def begin() -> None:
        done = deferred_from_coro(main())
        done.addCallbacks(lambda result: outcome.setdefault("result", result), failed)
        done.addBoth(stop)

    reactor.callWhenRunning(begin)
    process.start(stop_after_crawl=False)
    return outcome.get("result")
