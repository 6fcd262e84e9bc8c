"""Spiders used by the tests to drive the project's components against the simulator."""

from __future__ import annotations

from scrapy import Request, Spider


class ProbeSpider(Spider):
    """Requests the given Spotify API paths once each and records what came back."""

    name = "probe"

    def __init__(self, paths: list[str] | None = None, **kwargs):
        super().__init__(**kwargs)
        self.paths = list(paths or [])
        self.statuses: dict[str, int] = {}
        self.failures: dict[str, str] = {}
        self.with_token: list[str] = []    # failed requests that still carry Authorization

    async def start(self):
        base = self.settings["SPOTIFY_API_BASE_URL"]
        for path in self.paths:
            yield Request(base + path, callback=self.parse, errback=self.failed,
                          meta={"path": path})

    def parse(self, response):
        self.statuses[response.meta["path"]] = response.status

    def failed(self, failure):
        request = failure.request
        self.failures[request.meta["path"]] = type(failure.value).__name__
        if "Authorization" in request.headers:
            self.with_token.append(request.meta["path"])
