"""Where the export is written: the feeds, the staging folder, and the atomic publish.

The eight data files are plain Scrapy feeds (``FEEDS``): ``format: jsonlines`` (written by
``exporters.FastJsonLinesItemExporter``), routed by ``item_classes``, and Scrapy's
``GzipPlugin`` (compressing on a worker thread: ``postprocessing.ThreadedGzipPlugin``) with
``gzip_mtime: 0`` and ``gzip_filename: ""`` for the ``.gz`` twins, so equal rows give equal
bytes. They are feeds of the ``catalog_export`` spider only (its ``update_settings``). A
track's three rows travel as one ``TrackExport`` item (``export/items.py``); each feed writes
its part. ``CheckedFileFeedStorage`` records whether each file was stored, for the publisher.

Feeds write into a staging folder beside the export folder (``exports/.catalog.partial`` for
``exports/catalog``). Only a complete export is published, by swapping whole folders:

1. ``exports/catalog`` -> ``exports/.catalog.previous``;
2. ``exports/.catalog.partial`` -> ``exports/catalog``;
3. ``exports/.catalog.previous`` is deleted.

A reader therefore sees the old export or the new one, never a mix. A crash between 1 and 2
leaves the old export under ``.previous``; ``recover`` (run when the next crawl starts) puts
it back. A crash anywhere else leaves the published export as it was.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any

from scrapy.extensions.feedexport import FileFeedStorage, ItemFilter

from runclub_spiders.export.items import ArtistExport, TrackExport
from runclub_spiders.export.rows import ROW_CLASSES

logger = logging.getLogger(__name__)

GZIP_PLUGIN = "runclub_spiders.export.postprocessing.ThreadedGzipPlugin"
DATA_FILES = tuple(f"{name}{suffix}" for name in ROW_CLASSES
                   for suffix in (".jsonl", ".jsonl.gz"))
MANIFEST = "manifest.json"


def staging_dir(export_dir: str | Path) -> Path:
    final = Path(export_dir)
    return final.parent / f".{final.name}.partial"


def previous_dir(export_dir: str | Path) -> Path:
    final = Path(export_dir)
    return final.parent / f".{final.name}.previous"


class HasFeatures(ItemFilter):
    """``audio_features`` takes only the tracks ReccoBeats had features for."""

    def accepts(self, item: Any) -> bool:
        return super().accepts(item) and item.features is not None


class CheckedFileFeedStorage(FileFeedStorage):
    """Scrapy's file storage that remembers whether its file was stored (closed without an
    error): Scrapy reports a failed store only as a log line and a stat, and sends
    ``feed_slot_closed`` either way. ``FEED_STORAGES`` of the export spider."""

    stored = False

    def store(self, file: Any) -> None:
        super().store(file)             # closes the file: a deferred write error raises here
        self.stored = True


def export_feeds(export_dir: str | Path, *, gzip_level: int = 6) -> dict[Path, dict[str, Any]]:
    """The ``FEEDS`` entries for the eight data files, in the staging folder."""
    staging = staging_dir(export_dir)
    bundle = f"{TrackExport.__module__}.{TrackExport.__qualname__}"
    artist = f"{ArtistExport.__module__}.{ArtistExport.__qualname__}"
    shapes = {  # file -> (item class, attribute written, item filter)
        "catalog_wide": (bundle, "wide", None),
        "cached_tracks": (bundle, "track", None),
        "audio_features": (bundle, "features", f"{__name__}.HasFeatures"),
        "cached_artists": (artist, "artist", None),
    }
    feeds: dict[Path, dict[str, Any]] = {}
    for name, (item_class, row, item_filter) in shapes.items():
        common: dict[str, Any] = {
            "format": "jsonlines", "encoding": "utf-8", "item_classes": [item_class],
            "overwrite": True, "store_empty": True}
        if row is not None:
            common["item_export_kwargs"] = {"row": row}
        if item_filter is not None:
            common["item_filter"] = item_filter
        feeds[staging / f"{name}.jsonl"] = dict(common)
        feeds[staging / f"{name}.jsonl.gz"] = {
            **common, "postprocessing": [GZIP_PLUGIN], "gzip_compresslevel": gzip_level,
            "gzip_mtime": 0, "gzip_filename": ""}
    return feeds


def recover(export_dir: str | Path) -> None:
    """Undo a publish that stopped halfway; drop a stale staging folder."""
    final, previous = Path(export_dir), previous_dir(export_dir)
    if previous.exists():
        if final.exists():
            shutil.rmtree(previous)
        else:
            os.replace(previous, final)
            logger.warning("Restored the previous export to %s (a publish was interrupted)",
                           final)
    staging = staging_dir(export_dir)
    if staging.exists():
        shutil.rmtree(staging)


def publish(export_dir: str | Path) -> Path:
    """Swap the staging folder in as the export folder (see module doc)."""
    final, previous, staging = Path(export_dir), previous_dir(export_dir), \
        staging_dir(export_dir)
    _fsync_tree(staging)
    if previous.exists():
        shutil.rmtree(previous)
    if final.exists():
        os.replace(final, previous)
    os.replace(staging, final)
    _fsync_dir(final.parent)
    if previous.exists():
        shutil.rmtree(previous)
    return final


def discard(export_dir: str | Path) -> None:
    staging = staging_dir(export_dir)
    if staging.exists():
        shutil.rmtree(staging)


def _fsync_tree(path: Path) -> None:
    """Flush the staged files to disk before they become the export."""
    for child in path.iterdir():
        if child.is_file():
            fd = os.open(child, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    _fsync_dir(path)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
