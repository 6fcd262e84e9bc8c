"""Reject candidates before they cost a ReccoBeats lookup.

Three checks, from the item and the store only (no HTTP):

* **duration** outside ``[CATALOG_MIN_DURATION_MS, CATALOG_MAX_DURATION_MS]`` (default
  2-6 minutes, both ends included). The brief never allows more than 6 minutes, so a larger
  maximum is refused at startup. Reasons ``duration_short`` / ``duration_long``.
* **playability**: ``is_playable`` is ``False`` in the primary market. ``None`` (Spotify gave
  no answer) passes; the enrichment pipeline then asks ReccoBeats for ``availableCountries``.
  Reason ``unplayable``.
* **known duplicate**: a track with the same ISRC stored before it competes for it (its
  stored record passes the two checks above and it is not set aside:
  ``Store.isrc_competitors``) and wins by the one ISRC rule that planning and the export
  apply too (``catalog.isrc``): the earliest album year, then the smallest Spotify ID. Both
  are known at discovery and never change, so the track the export keeps is never set aside,
  whatever order tracks arrive in. A newcomer that beats a track already enriched is enriched
  all the same (the export keeps the newcomer); a loser stored before its winner was found
  has been enriched too (nothing beat it then). Only tracks stored before it count, so the
  verdict on a track never changes: a run resumed after an interruption judges a pending
  track as the first run did. Popularity is not in the rule: Spotify gives none in
  Development Mode and it drifts. Reason ``duplicate_isrc``.

A rejected item is returned (not dropped) with ``item.rejected`` set and
``item.enrichment = "skipped"``; the store records ``enrich_state = 'skipped'`` with the
reason, and the stats count ``filters/rejected/<reason>`` (and ``filters/passed``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from runclub_spiders.catalog.isrc import isrc_wins
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
        """True when a competing track with the same ISRC wins it (see module doc)."""
        return not isrc_wins(item.id, self.store.isrc_competitors(
            item.id, item.isrc, self.min_ms, self.max_ms))
