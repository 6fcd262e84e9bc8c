"""In-process crawls for the reliability scenarios: one request at a time, small targets,
timestamps clamped by ``SOURCE_DATE_EPOCH``, so two runs that should agree export the same
bytes."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

from scrapy.utils.test import get_crawler

from runclub_spiders.export.feeds import DATA_FILES
from runclub_spiders.spiders.spotify_catalog import SpotifyCatalogSpider
from tests.conftest import crawl_settings

SIZE = 6000
EPOCH = "1700000000"
COMPARED = (*DATA_FILES, "coverage.md", "coverage.png")
SERIAL = {
    "CATALOG_CELL_MIN": 8, "CATALOG_CELL_TARGET": 12, "CATALOG_MAX_TRACKS": 1500,
    "DISCOVERY_CONCURRENCY": 1, "CONCURRENT_REQUESTS": 1, "PROGRESS_INTERVAL": 0,
}


async def crawl(sim, folder: Path, **overrides):
    """Run ``spotify_catalog`` against ``sim`` with state in ``folder``: (stats, seconds)."""
    settings = crawl_settings(sim, folder, STORE_PATH=str(folder / "store.sqlite"),
                              EXPORT_DIR=str(folder / "exports" / "catalog"),
                              **{**SERIAL, **overrides})
    settings["DOWNLOAD_SLOTS"] = {k: {**v, "concurrency": 1}
                                  for k, v in settings["DOWNLOAD_SLOTS"].items()}
    crawler = get_crawler(SpotifyCatalogSpider, settings)
    started = time.monotonic()
    await crawler.crawl_async()
    return crawler.stats.get_stats(), time.monotonic() - started


def export_hashes(folder: Path) -> dict[str, str]:
    export = folder / "exports" / "catalog"
    return {name: hashlib.sha256((export / name).read_bytes()).hexdigest()
            for name in COMPARED}


def spotify_requests(sim, since: int = 0) -> int:
    return sum(1 for e in sim.requests(since) if e.service == "spotify")


def repeated_pages(log) -> list[tuple[str, str]]:
    """The GET (path, query) pairs answered 200 again after a clean 200 in the same log.

    A page asked again after an answer that was an error (a fault the simulator injected:
    truncated JSON, say) is a retry, not a repeat; one asked again after a clean answer spent
    quota on something the crawl already had.
    """
    clean: set[tuple[str, str]] = set()
    repeats = []
    for entry in log:
        if entry.method != "GET" or entry.status != 200:
            continue
        key = (entry.path, entry.query)
        if key in clean:
            repeats.append(key)
        if not entry.fault:
            clean.add(key)
    return repeats
