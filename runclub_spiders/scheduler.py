"""The scheduler of ``spotify_catalog``: Scrapy's, with no request ever written to JOBDIR.

The store is this crawl's memory: every search page, playlist page and enrichment state is
recorded there as it is answered, and a restarted crawl plans what is still missing from it.
A request queued on disk by an earlier process would ask a page the planner asks again (the
page twice), and a queue cut short by SIGKILL cannot even be read back. So the queue lives in
memory only; ``-s JOBDIR=...`` still works (Scrapy keeps its spider state and the run's
version record there) and the same command resumes, from the store.
"""

from __future__ import annotations

from typing import Any

from scrapy.core.scheduler import Scheduler


class StoreBackedScheduler(Scheduler):
    def __init__(self, *args: Any, jobdir: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, jobdir=None, **kwargs)   # memory queues, JOBDIR or not
