"""Exceptions shared by the project's components."""

from __future__ import annotations

from scrapy.exceptions import IgnoreRequest


class QuotaParked(IgnoreRequest):
    """A request refused, unsent, because its quota ``bucket`` is parked until ``until``.

    Raised by the quota middleware; the request's errback (the frontier, for the catalog
    spider) decides what becomes of the work: nothing keeps a copy of the request.
    """

    def __init__(self, bucket: str, until: float, message: str) -> None:
        super().__init__(message)
        self.bucket = bucket
        self.until = until
