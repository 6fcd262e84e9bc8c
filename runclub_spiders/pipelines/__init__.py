"""Item pipelines: cheap filters first, then ReccoBeats enrichment.

Order (``ITEM_PIPELINES``): ``CheapFilterPipeline`` (100) marks what is not worth enriching,
``ReccoBeatsEnrichmentPipeline`` (200) batches the rest to ReccoBeats. Neither drops items:
rejected ones pass on with ``item.rejected`` set, so later stages can count and route them.

Both reach the crawl store through the crawler (``extensions.store.crawler_store``), at
first use. Verdicts land in the store's
``enrich_state`` column, so a resumed run knows what is done, missing or still pending.
Timestamps are UTC ``YYYY-MM-DDTHH:MM:SSZ`` (``quota.utc_iso``); they compare as strings, and
``Store.pending_enrichment(now)`` must be given the same format.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Self

from runclub_spiders.extensions.store import crawler_store
from runclub_spiders.quota import utc_iso

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

    from runclub_spiders.store import Store


def utc_now() -> str:
    return utc_iso(time.time())


class StorePipeline:
    """Base of the store-backed pipelines: keeps the crawler, finds the store lazily."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self._store: Store | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = crawler_store(self.crawler)
        return self._store
