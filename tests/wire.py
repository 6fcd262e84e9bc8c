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

    The delay is what enforces ``concurrency``. Scrapy 2.19's downloader counts a request as
    transferring only once its download task starts, not when it leaves the slot's queue. It
    guards against a burst by looking at the queue again right after taking a request, and
    sends another if ``delay`` has passed since. So with ``delay`` 0 every queued request goes
    out in one go, and any stall of ``delay`` or more between taking a request and that second
    look sends two. Such a stall happens when the simulator's thread takes the GIL, for up to
    the 5 ms switch interval. With a 1 ms delay, a pacing test of the CI saw a request go out
    with the one that met a 429. The 50 ms here is ten switch intervals, with room left for
    the OS to keep the process off a core a while (three test workers share two cores); it
    costs the tests about half a second each.
    """
    return {"api.spotify.com": {"concurrency": 1, "delay": 0.05, "jitter": 0, **spotify},
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
