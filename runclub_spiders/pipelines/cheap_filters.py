"""Reject candidates before they cost a ReccoBeats lookup.

Three checks, from the item and the store only (no HTTP):

* **duration** outside ``[CATALOG_MIN_DURATION_MS, CATALOG_MAX_DURATION_MS]`` (default
  2-6 minutes, both ends included). The brief never allows more than 6 minutes, so a larger
  maximum is refused at startup. Reasons ``duration_short`` / ``duration_long``.
* **playability**: ``is_playable`` is ``False`` in the primary market. ``None`` (Spotify gave
  no answer) passes; the enrichment pipeline then asks ReccoBeats for ``availableCountries``.
  Reason ``unplayable``.
* **known duplicate**: another track in the store holds the same ISRC and competes for it,
  that is, it is not ``skipped`` and it passes the two checks above by its stored record.
  Among the competitors and this track, the first stored wins (the store's insertion order,
  which follows discovery order, so an interrupted and resumed crawl decides alike): a track
  already stored is never displaced by a newcomer, whatever order items arrive in. The brief
  also allows "most popular", but Spotify popularity is absent in
  Development Mode and drifts, so it would make the choice unstable. Reason ``duplicate_isrc``.

A rejected item is returned (not dropped) with ``item.rejected`` set and
``item.enrichment = "skipped"``; the store records ``enrich_state = 'skipped'`` with the
reason, and the stats count ``filters/rejected/<reason>`` (and ``filters/passed``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from runclub_spiders.catalog.selection import duration_reason
from runclub_spiders.items import CandidateItem
from runclub_spiders.pipelines import StorePipeline, utc_now

if TYPE_CHECKING:
    from scrapy.crawler import Crawler


MAX_DURATION_MS = 360_000       # the brief's hard cap: never over 6 minutes


class CheapFilterPipeline(StorePipeline):
    def __init__(self, crawler: Crawler) -> None:
        settings = crawler.settings
        super().__init__(crawler)
        self.stats = crawler.stats
        self.min_ms = settings.getint("CATALOG_MIN_DURATION_MS")
        self.max_ms = settings.getint("CATALOG_MAX_DURATION_MS")
        if not 0 <= self.min_ms <= self.max_ms <= MAX_DURATION_MS:
            raise ValueError(f"need 0 <= CATALOG_MIN_DURATION_MS <= CATALOG_MAX_DURATION_MS "
                             f"<= {MAX_DURATION_MS} (never over 6 minutes), got "
                             f"{self.min_ms} and {self.max_ms}")


    def process_item(self, item: Any) -> Any:
        if not isinstance(item, CandidateItem) or item.rejected:
            return item
        reason = self.verdict(item)
        if reason is None:
            self.stats.inc_value("filters/passed")
            return item
        item.rejected = reason
        item.enrichment = "skipped"
        self.store.set_enrich_state(item.id, "skipped", reason=reason, now=utc_now())
        self.stats.inc_value(f"filters/rejected/{reason}")
        return item

    def verdict(self, item: CandidateItem) -> str | None:
        """Why ``item`` is not worth enriching, or None."""
        reason = duration_reason(item.duration_ms, self.min_ms, self.max_ms)
        if reason:
            return reason
        if item.is_playable is False:
            return "unplayable"
        if item.isrc and self._held_by_another(item):
            return "duplicate_isrc"
        return None

    def _held_by_another(self, item: CandidateItem) -> bool:
        """True when a competing track with the same ISRC was seen first (see module doc)."""
        rows = self.store.db.execute(
            "SELECT id, rowid AS seq FROM tracks WHERE isrc = ? AND id != ? "
            "AND enrich_state != 'skipped' AND duration_ms BETWEEN ? AND ? "
            "AND (is_playable IS NULL OR is_playable != 0)",
            (item.isrc, item.id, self.min_ms, self.max_ms)).fetchall()
        if not rows:
            return False
        own = self.store.db.execute("SELECT rowid FROM tracks WHERE id = ?",
                                    (item.id,)).fetchone()
        if own is None:                    # not stored: it is the newcomer
            return True
        return any(row["seq"] < own[0] for row in rows)
