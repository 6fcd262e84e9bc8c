"""Put every request in its service's download slot and tag its quota bucket.

Runs first (lowest order) so the OAuth and rate-limit middlewares see ``download_slot`` and
``spotify_bucket`` already set.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from runclub_spiders.services import ServiceMap

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler


class ServiceSlotsMiddleware:
    def __init__(self, crawler: Crawler) -> None:
        self.services = ServiceMap(crawler.settings)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ServiceSlotsMiddleware:
        return cls(crawler)

    def process_request(self, request: Request) -> None:
        target = self.services.target(request.url)
        if target is None:
            return
        request.meta.setdefault("download_slot", target.slot)
        if target.bucket:
            request.meta.setdefault("spotify_bucket", target.bucket)
