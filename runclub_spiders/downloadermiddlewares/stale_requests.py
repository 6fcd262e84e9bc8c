"""Drop discovery requests left over from an earlier process before they cost quota.

The spider plans every search page and playlist page from the store's ledgers, so after a
restart it asks again for exactly what is still missing. Requests of the previous process
that come back anyway (from a ``JOBDIR`` queue, or set aside by a quota park) would ask the
same pages a second time, and one that was popped but not answered when the process was
killed would otherwise sit in the dupefilter forever. So the spider stamps its requests with
its run token (``meta["run"]``), sends them with ``dont_filter``, and this middleware refuses
any request stamped by another run: the planner's own request replaces it.

Requests without a stamp (token refreshes, ReccoBeats batches, other spiders) pass.
Stats: ``discovery/stale_requests_dropped``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Self

from scrapy.exceptions import IgnoreRequest

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler

RUN_META = "run"


class StaleRequestsMiddleware:
    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    def process_request(self, request: Request) -> None:
        stamp = request.meta.get(RUN_META)
        if stamp is None:
            return
        current = getattr(self.crawler.spider, "run_token", None)
        if current is not None and stamp != current:
            self.crawler.stats.inc_value("discovery/stale_requests_dropped")
            raise IgnoreRequest("a request of an earlier run: the planner asks again")
