"""The crawl store's one owner: opened when the crawler is built, closed when the engine stops.

Every component that reads or writes the store (spiders, pipelines, the quota middleware,
the export) reaches it through :func:`crawler_store`, never through the spider object, so
none of them depends on another having opened it first, and the store outlives every
``spider_closed`` handler (their order is not fixed): it is closed on ``engine_stopped``,
after all of them ran.

Setting: ``CATALOG_STORE_PATH``. Empty turns the extension off (``NotConfigured``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Self

from scrapy import signals
from scrapy.exceptions import NotConfigured

from runclub_spiders.store import Store

if TYPE_CHECKING:
    from scrapy.crawler import Crawler


class CatalogStore:
    def __init__(self, store: Store) -> None:
        self.store = store

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        path = crawler.settings.get("CATALOG_STORE_PATH")
        if not path:
            raise NotConfigured("CATALOG_STORE_PATH is empty")
        extension = cls(Store.open(path))
        crawler.signals.connect(extension.engine_stopped, signal=signals.engine_stopped)
        return extension

    def engine_stopped(self) -> None:
        self.store.close()


def crawler_store(crawler: Crawler) -> Store:
    """The store of this crawl (the ``CatalogStore`` extension must be enabled)."""
    extension = crawler.get_extension(CatalogStore)
    if extension is None:
        raise RuntimeError("the CatalogStore extension is not enabled: add "
                           "runclub_spiders.extensions.store.CatalogStore to EXTENSIONS and "
                           "set CATALOG_STORE_PATH")
    return extension.store
