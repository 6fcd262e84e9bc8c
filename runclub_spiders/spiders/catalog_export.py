"""``scrapy crawl catalog_export``: build the catalog from the store and publish it; no API call.

``scrapy crawl spotify_catalog`` runs this spider after discovery, in the same process, when
discovery ended with nothing left to do (``runs.crawl_catalog``); ``-a mode=export`` runs it
alone, and so does ``scrapy crawl catalog_export``.

``start()`` selects the catalog from the store (``export.build``: classify, filter, dedupe,
balance), sends ``signals.export_built`` with the build, and yields its rows
(``export/items.py``) a batch at a time. They go to the eight feeds of this spider only
(``update_settings``; no item pipeline), which write them into a staging folder; the
publisher (``export.extension.ExportPublisher``, added here too) hashes the files as the feeds
close, writes the reports and the manifest, and swaps the folder in.

The selection and every batch of rows run on one worker thread, one call at a time: they
read the store (selection alone takes seconds at 40,000 tracks) and the reactor keeps running
meanwhile. Nothing else in this crawl uses the store (no pipeline, no request), and a close
waits for the call in progress before the store is closed (``spider_closed``).

Before selecting, the evidence derived from other rows is brought up to date with the store
(``Store.settle_genre_evidence``): ``search_common`` credits a later solo track disproves are
withdrawn, and Wikidata's stored labels are mapped again through ``WIKIDATA_GENRE_MAP`` as it
is now (Wikidata on), so the genres exported depend on the store and the mapping only, never
on the order pages came in or on the mapping an answer was first read with.

Stats: ``export/genre_evidence/<change>`` (``common_withdrawn``, ``wikidata_removed``,
``wikidata_added``; only when non-zero), ``export/select_seconds``,
``export/rejected/<reason>``, ``export/backfill/<kind>``, ``export/tracks``,
``export/artists``, ``export/seconds``; the publisher's
``export/published``, ``export/rows/<file>``, ``export/not_published/<why>``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from scrapy import Spider, signals

from runclub_spiders.catalog.selection import BalanceSettings
from runclub_spiders.export.build import Clock, ExportBuild, build_export
from runclub_spiders.export.extension import ExportPublisher
from runclub_spiders.export.feeds import CheckedFileFeedStorage, export_feeds
from runclub_spiders.export.items import ArtistExport, TrackExport
from runclub_spiders.export.manifest import crawl_facts, explain_thin_cells
from runclub_spiders.extensions.store import crawler_store
from runclub_spiders.opendata.mapping import load_mapping
from runclub_spiders.seeds import load_plan
from runclub_spiders.signals import close_started, export_built

logger = logging.getLogger(__name__)
T = TypeVar("T")
PROJECT = "runclub_spiders."
PUBLISHER = f"{ExportPublisher.__module__}.{ExportPublisher.__qualname__}"
STORAGE = f"{CheckedFileFeedStorage.__module__}.{CheckedFileFeedStorage.__qualname__}"


class CatalogExportSpider(Spider):
    name = "catalog_export"
    custom_settings = {
        # No request is ever made; like spotify_catalog, nothing is queued to a JOBDIR.
        "SCHEDULER": "runclub_spiders.scheduler.StoreBackedScheduler",
        # The rows go to the feeds only.
        "ITEM_PIPELINES": {},
    }

    @classmethod
    def update_settings(cls, settings) -> None:
        super().update_settings(settings)
        cls._no_downloader_middlewares(settings)
        if not settings.getbool("EXPORT_ENABLED"):
            return
        # The eight data files are feeds of this spider only (see export/feeds.py).
        feeds = settings.getdict("FEEDS")
        feeds.update(export_feeds(settings["EXPORT_DIR"],
                                  gzip_level=settings.getint("EXPORT_GZIP_LEVEL")))
        settings.set("FEEDS", feeds, priority="spider")
        storages = settings.getdict("FEED_STORAGES")
        storages.update({"": STORAGE, "file": STORAGE})
        settings.set("FEED_STORAGES", storages, priority="spider")
        # At spider priority, like FEEDS: a runner given this crawler merges its own settings
        # into it, over any of equal priority (Scrapy 2.19, CrawlerRunnerBase.create_crawler).
        extensions = settings.getdict("EXTENSIONS")
        extensions.setdefault(PUBLISHER, 500)
        settings.set("EXTENSIONS", extensions, priority="spider")

    @classmethod
    def _no_downloader_middlewares(cls, settings) -> None:
        """This spider sends no request: the project's downloader middlewares (Spotify
        access, pacing, quota, retries) stay out of its crawl, and with them anything they
        would do as it opens or closes (a credentials check, the quota ledger in the store)."""
        middlewares = settings.getdict("DOWNLOADER_MIDDLEWARES")
        for component in list(middlewares):
            name = component if isinstance(component, str) else component.__module__
            if name.startswith(PROJECT):
                middlewares[component] = None
        settings.set("DOWNLOADER_MIDDLEWARES", middlewares, priority="spider")

    @classmethod
    def from_crawler(cls, crawler, *args: Any, **kwargs: Any) -> CatalogExportSpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        s = crawler.settings
        spider.plan = load_plan(s["SEEDS_PLAN"], s["SEEDS_UMBRELLAS"])
        # Checked by scrapy crawl's preflight when Wikidata is on; off, the stored rows stand.
        spider.wikidata_map = (load_mapping(s["WIKIDATA_GENRE_MAP"])
                               if s.getbool("WIKIDATA_ENABLED") else None)
        spider.settled = {}
        spider.worker = _Worker()
        spider.closing = False
        spider.batches = None
        crawler.signals.connect(spider.close_started, signal=close_started)
        crawler.signals.connect(spider.spider_closed, signal=signals.spider_closed)
        return spider

    async def start(self) -> AsyncIterator[TrackExport | ArtistExport]:
        if not self.crawler.settings.getbool("EXPORT_ENABLED"):
            logger.info("EXPORT_ENABLED is off: nothing to export")
            return
        if self.closing:
            return
        started = time.monotonic()
        build = await self.worker.run(self.select)
        stats = self.crawler.stats
        for change, n in sorted(self.settled.items()):
            if n:
                stats.set_value(f"export/genre_evidence/{change}", n)
        for reason, n in sorted(build.selection.rejections.items()):
            stats.set_value(f"export/rejected/{reason}", n)
        for kind, n in sorted(build.selection.backfill.items()):
            stats.set_value(f"export/backfill/{kind}", n)
        chosen = len(build.selection.chosen)
        stats.set_value("export/select_seconds", round(time.monotonic() - started, 2))
        logger.info("Export selected: %d tracks from %d candidates in %.1f s", chosen,
                    sum(build.selection.rejections.values()) + chosen,
                    time.monotonic() - started)
        self.crawler.signals.send_catch_log(export_built, build=build)
        # The rows are built as the feeds take them (export/build.py): never all in memory.
        self.batches = build.batches()
        while not self.closing:         # (a close after the call started ends the loop next)
            batch = await self.worker.run(next, self.batches, None)
            if batch is None:
                break
            for item in batch:
                if self.closing:
                    return
                yield item
        if not build.counts:
            return                      # closing: the publisher leaves the export as it was
        stats.set_value("export/tracks", build.counts["cached_tracks"])
        stats.set_value("export/artists", build.counts["cached_artists"])
        stats.set_value("export/seconds", round(time.monotonic() - started, 2))  # and feeds
        logger.info("Export rows written: %d tracks, %d artists in %.1f s",
                    build.counts["cached_tracks"], build.counts["cached_artists"],
                    time.monotonic() - started)

    def select(self) -> ExportBuild:
        """The catalog and the manifest's facts, from the store (on the worker thread)."""
        s = self.crawler.settings
        store = crawler_store(self.crawler)
        self.settled = store.settle_genre_evidence(self.wikidata_map)
        market = s["SPOTIFY_MARKET"]
        balance = BalanceSettings(
            min_duration_ms=s.getint("CATALOG_MIN_DURATION_MS"),
            max_duration_ms=s.getint("CATALOG_MAX_DURATION_MS"),
            cell_min=s.getint("CATALOG_CELL_MIN"), cell_target=s.getint("CATALOG_CELL_TARGET"),
            max_tracks=s.getint("CATALOG_MAX_TRACKS"),
            max_featureless_share=s.getfloat("CATALOG_MAX_FEATURELESS_SHARE"),
            max_artist_share=s.getfloat("CATALOG_MAX_ARTIST_SHARE"),
            max_artist_floor=s.getint("CATALOG_MAX_ARTIST_FLOOR"))
        build = build_export(store, self.plan, balance, market=market,
                             clock=Clock.from_environment(time.time()),
                             primary_markets=tuple(s.getlist("EXPORT_PRIMARY_MARKETS")))
        explain_thin_cells(build.selection, store, self.plan)
        build.facts = crawl_facts(store, self.plan, market=market,
                                  profile=s["SPOTIFY_API_PROFILE"], stamp=build.clock.stamp)
        return build

    def close_started(self, reason: str) -> None:
        self.closing = True             # no further batch: the close is prompt

    async def spider_closed(self) -> None:
        self.closing = True
        # Before engine_stopped closes the store: the call in progress ends first.
        await self.worker.wait()
        if self.batches is not None:
            self.batches.close()        # an unfinished export: its cleanup runs
        ExportBuild.release()           # (selection froze its objects: build_export)
        self.worker.shutdown()


class _Worker:
    """One thread for the store's reads and the rows' building: one call at a time, and a
    call in progress can be waited for even after whoever awaited it was cancelled."""

    def __init__(self) -> None:
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="catalog-export")
        self.pending: Future[Any] | None = None

    async def run(self, func: Callable[..., T], *args: Any) -> T:
        self.pending = self.executor.submit(func, *args)
        return await asyncio.wrap_future(self.pending)

    async def wait(self) -> None:
        pending = self.pending
        if pending is not None and not pending.done():
            await asyncio.wait([asyncio.wrap_future(pending)])

    def shutdown(self) -> None:
        self.executor.shutdown(wait=False)
