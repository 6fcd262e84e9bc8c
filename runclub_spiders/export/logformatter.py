"""Scrapy's log formatter, minus the "Scraped from" line for export rows.

Scrapy logs every scraped item at DEBUG with its ``repr``. The export phase yields one item
per exported track and artist: at 40,000 tracks that is some 50,000 records built (and, at
``LOG_LEVEL=DEBUG``, about 100 MB of log) that say nothing the manifest does not. Other
items are logged as usual.
"""

from __future__ import annotations

from typing import Any

from scrapy.logformatter import LogFormatter, LogFormatterResult

from runclub_spiders.export.rows import CachedArtistRow, TrackExport


class ExportLogFormatter(LogFormatter):
    def scraped(self, item: Any, response: Any, spider: Any) -> LogFormatterResult | None:
        if isinstance(item, (TrackExport, CachedArtistRow)):
            return None
        return super().scraped(item, response, spider)
