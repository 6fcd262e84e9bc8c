"""``scrapy spotify-probe`` runs this spider: the capability probe now, whatever its age.

It sends only the probe's calls (``runclub_spiders.probe``), through the crawl's own
downloader middlewares (token, quota ledger, pacing, retries), keeps what it found in the
store and exports nothing. ``scrapy crawl spotify_catalog`` runs the same probe itself when
the last one is older than ``SPOTIFY_PROBE_INTERVAL_DAYS``.
"""

from __future__ import annotations

from scrapy import Spider

from runclub_spiders.extensions.store import crawler_store
from runclub_spiders.probe import Capabilities, capabilities
from runclub_spiders.seeds import load_plan


class SpotifyProbeSpider(Spider):
    name = "spotify_probe"
    capabilities: Capabilities | None = None

    async def start(self):
        s = self.crawler.settings
        plan = load_plan(s["SEEDS_PLAN"], s["SEEDS_UMBRELLAS"])
        self.capabilities = await capabilities(self.crawler, crawler_store(self.crawler), plan,
                                               force=True)
        return
        yield                       # an async generator that yields no request
