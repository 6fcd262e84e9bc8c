"""A spider that feeds stored tracks to the enrichment pipelines, as the catalog spider does."""

from __future__ import annotations

import json
import time

from scrapy import Spider, signals

from runclub_spiders.extensions.store import crawler_store
from runclub_spiders.items import CandidateItem
from runclub_spiders.pipelines import utc_now
from runclub_spiders.store import Store, TrackRecord


def candidate(record: TrackRecord, source: str = "search") -> CandidateItem:
    return CandidateItem(id=record.id, isrc=record.isrc, duration_ms=record.duration_ms,
                         is_playable=record.is_playable, artist_ids=list(record.artist_ids),
                         source=source)


class CandidateSpider(Spider):
    """Upserts ``records`` into the crawl store (all first, as the catalog spider
    does per page), then yields one item per record (``repeat`` lists IDs yielded twice); with
    ``resume``, first yields the store's pending tracks as the catalog spider does on start."""

    name = "candidates"

    def __init__(self, records: list[TrackRecord] | None = None,
                 repeat: list[str] | None = None, resume: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.records = list(records or [])
        self.repeat = list(repeat or [])
        self.resume = resume
        self.items: list[CandidateItem] = []
        self.started_at: float | None = None

    @classmethod
    def from_crawler(cls, crawler, *args, **kwargs):
        spider = super().from_crawler(crawler, *args, **kwargs)
        crawler.signals.connect(spider.item_scraped, signal=signals.item_scraped)
        return spider

    @property
    def store(self) -> Store:
        return crawler_store(self.crawler)

    def item_scraped(self, item):
        self.items.append(item)

    async def start(self):
        now = utc_now()
        if self.resume:
            for track_id in self.store.pending_enrichment(now):
                row = self.store.track(track_id)
                playable = row["is_playable"]
                yield CandidateItem(id=track_id, isrc=row["isrc"], duration_ms=row["duration_ms"],
                                    is_playable=None if playable is None else bool(playable),
                                    artist_ids=json.loads(row["artist_ids"]), source="store")
        for record in self.records:
            self.store.upsert_track(record, source="search", now=now)
        self.started_at = time.time()
        by_id = {r.id: r for r in self.records}
        for record in self.records:
            yield candidate(record)
        for track_id in self.repeat:
            yield candidate(by_id[track_id])
