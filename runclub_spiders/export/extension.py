"""The export publisher: hashes the closed feeds, writes the reports and the manifest, publishes.

An extension of the ``catalog_export`` spider (its ``update_settings`` adds it), driven by
signals, never by ``spider_closed``, whose handlers run in no fixed order:

* ``export_built`` (``runclub_spiders.signals``): the spider selected the catalog; keep the
  build (selection, manifest facts, and, once every row has been handed over, its counts);
* ``feed_slot_closed``: one data file is complete; if it was stored, hash it (in a thread)
  and keep its count;
* ``feed_exporter_closed``: every feed is closed. If the spider built an export, handed over
  every row, and every file holds exactly those rows, write the coverage report and the
  optional CSV and Parquet copies into the staging folder, hash them, write
  ``manifest.json`` last (itself to a temporary name, then renamed), and swap the staging
  folder in as the export folder. Otherwise (the crawl stopped before or during its export,
  a feed failed, a row was dropped) the staging folder is removed and the previous export
  stays as it was.

Settings: ``EXPORT_ENABLED``, ``EXPORT_DIR``, ``EXPORT_COPIES`` (``["csv", "parquet"]``).
Stats: ``export/published`` (0 or 1), ``export/rows/<file>``, ``export/not_published/<why>``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import scrapy
from scrapy import signals
from scrapy.exceptions import NotConfigured
from scrapy.utils.asyncio import run_in_thread

from runclub_spiders.export import feeds
from runclub_spiders.export.copies import check_formats, write_copies
from runclub_spiders.export.coverage import CoverageTable, write_coverage
from runclub_spiders.export.manifest import build_manifest, cell_rows, dumps
from runclub_spiders.signals import export_built
from runclub_spiders.utils.files import sha256_file, write_atomic

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

    from runclub_spiders.export.build import ExportBuild

logger = logging.getLogger(__name__)


class ExportPublisher:
    def __init__(self, crawler: Crawler, export_dir: Path, copies: list[str]) -> None:
        self.crawler = crawler
        self.export_dir = export_dir
        self.staging = feeds.staging_dir(export_dir)
        self.copies = copies
        self.build: ExportBuild | None = None
        self.hashes: dict[str, str] = {}
        self.rows: dict[str, int] = {}
        self.failed: list[str] = []

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        settings = crawler.settings
        if not settings.getbool("EXPORT_ENABLED"):
            raise NotConfigured("EXPORT_ENABLED is off")
        try:
            copies = check_formats(settings.getlist("EXPORT_COPIES"))
        except ValueError as exc:
            raise ValueError(f"EXPORT_COPIES: {exc}") from None
        publisher = cls(crawler, Path(settings["EXPORT_DIR"]), copies)
        # Before the feed exporter opens its files (spider_opened): a stale staging folder
        # from a killed run goes, and a publish cut short is undone.
        feeds.recover(publisher.export_dir)
        crawler.signals.connect(publisher.export_built, signal=export_built)
        crawler.signals.connect(publisher.feed_slot_closed, signal=signals.feed_slot_closed)
        crawler.signals.connect(publisher.feed_exporter_closed,
                                signal=signals.feed_exporter_closed)
        return publisher

    def export_built(self, build: ExportBuild) -> None:
        self.build = build

    async def feed_slot_closed(self, slot: Any) -> None:
        path = getattr(slot.storage, "path", None)
        if path is None or Path(path).parent.resolve() != self.staging.resolve():
            return
        path = Path(path)
        self.rows[path.name] = slot.itemcount
        # feeds.CheckedFileFeedStorage (FEED_STORAGES of the export spider): Scrapy sends this
        # signal whether or not the file could be stored.
        if getattr(slot.storage, "stored", False) and path.exists():
            self.hashes[path.name] = await run_in_thread(sha256_file, path)
        else:
            self.failed.append(f"{path.name} could not be stored")

    async def feed_exporter_closed(self) -> None:
        build = self.build
        problem = self._problem(build)
        stats = self.crawler.stats
        if problem is not None:
            feeds.discard(self.export_dir)
            stats.set_value("export/published", 0)
            stats.inc_value(f"export/not_published/{problem[0]}")
            log = logger.error if problem[0] in ("feed_failed", "row_count") else logger.info
            log("Export not published (%s); %s is unchanged", problem[1], self.export_dir)
            return
        assert build is not None
        await run_in_thread(self._finish, build)
        stats.set_value("export/published", 1)
        for name, n in sorted(self.rows.items()):
            stats.set_value(f"export/rows/{name}", n)
        logger.info("Export published to %s: %d tracks, %d artists, %d with audio features",
                    self.export_dir, build.counts["cached_tracks"],
                    build.counts["cached_artists"], build.counts["audio_features"])

    def _problem(self, build: ExportBuild | None) -> tuple[str, str] | None:
        if build is None:
            return ("no_export_phase", "the export stopped before its catalog was selected")
        if not build.counts:                # set once every row has been handed over
            return ("incomplete", "the export stopped before every row was written")
        if self.failed:
            return ("feed_failed", "a feed could not be stored: " + "; ".join(self.failed))
        expected = {f"{name}{suffix}": n for name, n in build.counts.items()
                    for suffix in (".jsonl", ".jsonl.gz")}
        if self.rows != expected:
            wrong = sorted(k for k in expected if self.rows.get(k) != expected[k])
            return ("row_count", f"rows written differ from rows built in {', '.join(wrong)} "
                    f"(an item was dropped or failed in a pipeline)")
        return None

    def _finish(self, build: ExportBuild) -> None:
        """Reports, copies and the manifest, in the staging folder; then publish."""
        selection = build.selection
        summary = [f"{build.counts['cached_tracks']:,} tracks, "
                   f"{build.counts['cached_artists']:,} artists, "
                   f"{build.counts['audio_features']:,} with audio features",
                   f"cell minimum {selection.settings.cell_min}, soft target "
                   f"{selection.settings.cell_target}, global cap "
                   f"{selection.settings.max_tracks:,}",
                   f"created {build.clock.now}"]
        table = CoverageTable.from_dicts(build.umbrellas, build.decades, cell_rows(selection))
        extra = write_coverage(self.staging, table, title="RunClub catalog coverage",
                               summary_lines=summary)
        extra += write_copies(self.staging, self.copies)
        files = {name: {"rows": n, "bytes": (self.staging / name).stat().st_size}
                 for name, n in self.rows.items()}
        for name in extra:
            self.hashes[name] = sha256_file(self.staging / name)
            files[name] = {"rows": build.counts["catalog_wide"] if name.startswith(
                "catalog_wide.") else None, "bytes": (self.staging / name).stat().st_size}
        totals = {"tracks": build.counts["cached_tracks"],
                  "artists": build.counts["cached_artists"],
                  "audioFeatures": build.counts["audio_features"]}
        manifest = build_manifest(
            selection=selection, facts=build.facts, created_at=build.clock.now, files=files,
            hashes=self.hashes, totals=totals, umbrellas=list(build.umbrellas),
            decades=list(build.decades), scrapy_version=scrapy.__version__)
        write_atomic(self.staging / feeds.MANIFEST, dumps(manifest))
        feeds.publish(self.export_dir)

