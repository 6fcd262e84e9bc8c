"""Which Scrapy wrote a JOBDIR, so a crawl never resumes another version's pickled requests.

Scrapy pickles the pending requests and the spider state into ``JOBDIR`` and writes nothing
that says which Scrapy did it; a JOBDIR resumed after an upgrade can fail deep inside the
scheduler, or worse, half-work. :class:`JobdirVersionRecorder` (``EXTENSIONS``) writes
``JOBDIR/runclub_versions.json`` (``{"scrapy": ..., "python": ...}``) atomically when the
spider opens, if it is not there yet; :func:`check_jobdir`, called by the crawl command's
preflight, refuses a JOBDIR whose recorded Scrapy version differs from the running one.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import TYPE_CHECKING, Self

import scrapy
from scrapy import signals
from scrapy.exceptions import NotConfigured

from runclub_spiders.utils.files import write_atomic

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

VERSIONS_FILE = "runclub_versions.json"
START_OVER = "the store keeps all progress"


class JobdirVersionError(Exception):
    """The JOBDIR cannot be resumed by this Scrapy; the message says what to do instead."""


def current_versions() -> dict[str, str]:
    return {"scrapy": scrapy.__version__, "python": platform.python_version()}


def check_jobdir(jobdir: str | Path) -> None:
    """Refuse a JOBDIR written by another Scrapy version; a new or unstamped one is fine."""
    jobdir = Path(jobdir)
    if jobdir.exists() and not jobdir.is_dir():
        raise JobdirVersionError(f"JOBDIR={jobdir} is a file, not a folder; point JOBDIR "
                                 f"elsewhere")
    path = jobdir / VERSIONS_FILE
    if not path.exists():
        return
    try:
        recorded = json.loads(path.read_text(encoding="utf-8")).get("scrapy")
    except (OSError, UnicodeDecodeError, ValueError, AttributeError):
        recorded = None
    if not isinstance(recorded, str) or not recorded:
        raise JobdirVersionError(f"JOBDIR={jobdir}: {path.name} is unreadable, so the Scrapy "
                                 f"version that wrote it is unknown; delete the JOBDIR to "
                                 f"start over ({START_OVER})")
    if recorded != scrapy.__version__:
        raise JobdirVersionError(f"JOBDIR={jobdir} was written by Scrapy {recorded}, this is "
                                 f"Scrapy {scrapy.__version__}: finish it with Scrapy "
                                 f"{recorded} or delete the JOBDIR to start over "
                                 f"({START_OVER})")


class JobdirVersionRecorder:
    def __init__(self, jobdir: Path) -> None:
        self.path = jobdir / VERSIONS_FILE

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        jobdir = crawler.settings.get("JOBDIR")
        if not jobdir:
            raise NotConfigured     # no message: Scrapy would log one as a WARNING every run
        recorder = cls(Path(jobdir))
        crawler.signals.connect(recorder.spider_opened, signal=signals.spider_opened)
        return recorder

    def spider_opened(self) -> None:
        # The scheduler has created JOBDIR by now; an existing stamp is never rewritten.
        if not self.path.exists():
            write_atomic(self.path, json.dumps(current_versions()).encode())
