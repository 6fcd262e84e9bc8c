"""Discard a JOBDIR request queue that a hard stop (SIGKILL, power loss) left damaged.

Scrapy writes its disk queues without a journal: a process killed mid-write can leave a
queue file with a missing header or a cut record, and the next run then fails inside the
scheduler ("unpack requires a buffer of 4 bytes") as soon as it pushes to that priority.
This project loses nothing by dropping such a queue: the crawl's progress lives in the
store, the spider plans every page again from it, and requests of an earlier process are
refused anyway (``downloadermiddlewares/stale_requests.py``). So, before the scheduler opens
the queue (extensions are built before the engine opens the spider), every queue file is
checked; if any is damaged, ``requests.queue`` is moved to ``requests.queue.damaged`` with
one warning. Only Scrapy's default LIFO/FIFO pickle and marshal disk queues are checked.

Stats: ``jobdir/queue_discarded`` (1 when a damaged queue was set aside).
"""

from __future__ import annotations

import json
import logging
import shutil
import struct
from pathlib import Path
from typing import TYPE_CHECKING, Self

from scrapy.exceptions import NotConfigured

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)

SIZE = struct.Struct(">L")          # queuelib's record length and LIFO header format


def lifo_file_ok(path: Path) -> bool:
    """queuelib LifoDiskQueue: a 4-byte count, then records each followed by its length."""
    data = path.read_bytes()
    if len(data) < SIZE.size:
        return False
    (count,) = SIZE.unpack_from(data, 0)
    end = len(data)
    for _ in range(count):
        end -= SIZE.size
        if end < SIZE.size:
            return False
        (length,) = SIZE.unpack_from(data, end)
        end -= length
        if end < SIZE.size:
            return False
    return end == SIZE.size


def fifo_dir_ok(path: Path) -> bool:
    """queuelib FifoDiskQueue: ``info.json`` naming chunk files that must exist."""
    try:
        info = json.loads((path / "info.json").read_text())
    except (OSError, ValueError):
        return False
    return all((path / f"q{n:05d}").exists()
               for n in range(info["tail"][0], info["head"][0] + 1)) if info.get("size") \
        else True


def queue_ok(queue_dir: Path, lifo: bool) -> bool:
    active = queue_dir / "active.json"
    if active.exists():
        try:
            json.loads(active.read_text() or "null")
        except ValueError:
            return False
    for path in queue_dir.rglob("*"):
        if lifo and path.is_file() and path.name != "active.json" and not lifo_file_ok(path):
            return False
        if not lifo and path.is_dir() and (path / "info.json").exists() \
                and not fifo_dir_ok(path):
            return False
    return True


class JobdirQueueRepair:
    def __init__(self, crawler: Crawler, queue_dir: Path, lifo: bool) -> None:
        self.crawler = crawler
        if queue_dir.exists() and not queue_ok(queue_dir, lifo):
            damaged = queue_dir.with_name("requests.queue.damaged")
            if damaged.exists():
                shutil.rmtree(damaged)
            queue_dir.rename(damaged)
            crawler.stats.set_value("jobdir/queue_discarded", 1)
            logger.warning("The JOBDIR request queue was damaged by a hard stop; moved to %s. "
                           "Nothing is lost: the store holds the crawl's progress and the "
                           "spider plans the remaining requests again.", damaged)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        jobdir = crawler.settings.get("JOBDIR")
        if not jobdir:
            raise NotConfigured  # no JOBDIR: nothing to check (no message: it would log a warning)
        queue = crawler.settings.get("SCHEDULER_DISK_QUEUE", "")
        name = queue.rsplit(".", 1)[-1] if isinstance(queue, str) else queue.__name__
        if name not in ("PickleLifoDiskQueue", "MarshalLifoDiskQueue", "PickleFifoDiskQueue",
                        "MarshalFifoDiskQueue"):
            raise NotConfigured  # a custom queue: its format is unknown here
        return cls(crawler, Path(jobdir) / "requests.queue", lifo="Lifo" in name)
