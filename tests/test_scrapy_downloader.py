"""The simulator through Scrapy's real downloader on the asyncio reactor.

The crawler will reach the simulator only this way, so the wire details matter here: HTTP/1.1
from Twisted, form-encoded token requests with Basic auth, query strings with commas, gzip.
"""

from __future__ import annotations

import base64
import json

from scrapy import FormRequest, Request, Spider
from scrapy.utils.defer import deferred_f_from_coro_f

from tests.conftest import run_spider


class SimulatorTourSpider(Spider):
    name = "simulator_tour"

    def __init__(self, env: dict[str, str], **kwargs):
        super().__init__(**kwargs)
        self.env = env
        self.seen: dict[str, object] = {}

    async def start(self):
        credentials = f"{self.env['SPOTIFY_CLIENT_ID']}:{self.env['SPOTIFY_CLIENT_SECRET']}"
        yield FormRequest(
            f"{self.env['SPOTIFY_ACCOUNTS_BASE_URL']}/api/token",
            formdata={"grant_type": "refresh_token",
                      "refresh_token": self.env["SPOTIFY_REFRESH_TOKEN"]},
            headers={"Authorization": "Basic " + base64.b64encode(credentials.encode()).decode()},
            callback=self.parse_token)

    def parse_token(self, response):
        token = response.json()["access_token"]
        self.seen["token_type"] = response.json()["token_type"]
        query = 'genre:"rock" year:1980-1999'
        yield Request(f"{self.env['SPOTIFY_API_BASE_URL']}/search?q={query}&type=track"
                      f"&limit=10&market=US", headers={"Authorization": f"Bearer {token}"},
                      callback=self.parse_search)

    def parse_search(self, response):
        page = response.json()["tracks"]
        self.seen["search_total"] = page["total"]
        ids = [t["id"] for t in page["items"]]
        self.seen["search_ids"] = ids
        yield Request(f"{self.env['RECCOBEATS_BASE_URL']}/audio-features?ids={','.join(ids)}",
                      callback=self.parse_features)

    def parse_features(self, response):
        self.seen["feature_rows"] = json.loads(response.text)["content"]


@deferred_f_from_coro_f
async def test_scrapy_downloader_talks_to_every_service(simulator_factory):
    sim = simulator_factory()
    crawler, stats = await run_spider(SimulatorTourSpider, {"LOG_LEVEL": "INFO"},
                                      env=sim.env())
    assert stats["finish_reason"] == "finished"
    assert stats.get("log_count/ERROR", 0) == 0
    assert stats["downloader/response_status_count/200"] == 3
    seen = crawler.spider.seen
    assert seen["token_type"] == "Bearer"
    assert seen["search_total"] > 10 and len(seen["search_ids"]) == 10
    requested = set(seen["search_ids"])
    for row in seen["feature_rows"]:
        assert row["href"].rsplit("/", 1)[1] in requested
        assert row["id"] not in requested           # ReccoBeats keys rows by its own UUID
    logged = [(e.service, e.status) for e in sim.requests()]
    assert logged == [("accounts", 200), ("spotify", 200), ("reccobeats", 200)]
