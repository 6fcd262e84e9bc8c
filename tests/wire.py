"""Helpers of the retry, pacing and quota tests: crawls of ``ProbeSpider`` on the real wire.

Each crawl runs through Scrapy's real downloader on the asyncio reactor against the simulator
on loopback; the tests assert the close reason, the error-log count, the stats and what the
simulator's request log shows reached it (and when).
"""

from __future__ import annotations

from tests.conftest import crawl_settings, run_spider
from tests.spiders import ProbeSpider

TOLERANCE = 0.05          # seconds: the simulator's and Scrapy's clocks are the same clock


def track_paths(sim, n: int, start: int = 0) -> list[str]:
    return [f"/tracks/{t.id}" for t in sim.catalog.tracks[start:start + n]]


def search_paths(n: int) -> list[str]:
    return [f"/search?q=rock&type=track&limit=10&offset={10 * i}" for i in range(n)]


def one_slot(**spotify) -> dict[str, dict]:
    """Spotify's slot with one request in flight, so the log shows exactly what was sent.

    The small delay is needed: with ``delay`` 0, Scrapy 2.19's downloader hands every queued
    request to the network in one go (``Slot.transferring`` is only filled once each download
    task starts), so ``concurrency`` is not enforced.
    """
    return {"api.spotify.com": {"concurrency": 1, "delay": 0.001, "jitter": 0, **spotify},
            "accounts.spotify.com": {"concurrency": 1, "delay": 0.0},
            "api.reccobeats.com": {"concurrency": 2, "delay": 0.0}}


async def crawl(sim, tmp_path, paths, spider=ProbeSpider, prepare=None, **settings):
    """``run_spider`` for a probe crawl of ``paths``: (crawler, stats)."""
    return await run_spider(spider, crawl_settings(sim, tmp_path, **settings),
                            prepare=prepare, paths=paths)


def spotify_log(sim, since: int = 0, bucket: str | None = None):
    return [e for e in sim.requests(since, service="spotify")
            if bucket is None or e.bucket == bucket]


def offset(entry) -> int:
    return int(dict(p.split("=") for p in entry.query.split("&"))["offset"])
