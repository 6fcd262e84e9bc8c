"""Retries of 5xx answers, timeouts and dropped connections, with exponential backoff.

Scrapy's ``RetryMiddleware`` resends at once; against an API that is struggling, that only
adds load. This one waits ``RATE_LIMIT_BACKOFF_BASE * 2**(n-1)`` seconds before the n-th
retry (capped at ``RATE_LIMIT_BACKOFF_MAX``, drawn from the upper half so retries spread),
up to ``RETRY_TIMES`` retries, for ``RETRY_HTTP_CODES`` and ``RETRY_EXCEPTIONS``. 429 is not
its concern (``pacing.py`` and ``quota.py`` are), even if listed in ``RETRY_HTTP_CODES``.

The wait happens before the retry is handed back (``process_response``/``process_exception``),
so the retry reaches the scheduler when it is due and nothing sleeps in ``process_request``;
a close cuts the wait short (``SpiderClosing``: the next run asks again).
``RETRY_ENABLED = False`` turns this middleware off, and only this one.

A retry never carries the Bearer header of the attempt it copies (see
:func:`drop_access_token`).
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Self

from scrapy.downloadermiddlewares.retry import RetryMiddleware
from scrapy.utils.response import response_status_message

from runclub_spiders.downloadermiddlewares.spotify_auth import TOKEN_REQUEST
from runclub_spiders.utils.closing import CloseWatch

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.http import Response


def backoff(attempt: int, base: float, ceiling: float) -> float:
    """Seconds before retry number ``attempt`` (1, 2, ...): exponential, capped, jittered."""
    top = min(ceiling, base * 2 ** (attempt - 1))
    return random.uniform(top / 2, top)


def drop_access_token(request: Request) -> None:
    """Keep the Bearer token out of retries (the scheduler, JOBDIR); the OAuth middleware
    adds a fresh one. A token request's own ``Authorization`` (the client credentials) stays:
    it never passes the scheduler, and its retry cannot authenticate without it."""
    if not request.meta.get(TOKEN_REQUEST):
        request.headers.pop("Authorization", None)


class BackoffRetryMiddleware(RetryMiddleware):
    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler.settings)          # NotConfigured unless RETRY_ENABLED
        self.crawler = crawler
        self.retry_http_codes.discard(429)
        self.backoff_base = crawler.settings.getfloat("RATE_LIMIT_BACKOFF_BASE")
        self.backoff_max = crawler.settings.getfloat("RATE_LIMIT_BACKOFF_MAX")
        self.watch = CloseWatch(crawler)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    async def process_response(self, request: Request, response: Response
                               ) -> Request | Response:
        if request.meta.get("dont_retry", False) or response.status not in self.retry_http_codes:
            return response
        return await self._retry_later(request, response_status_message(response.status)) \
            or response

    async def process_exception(self, request: Request, exception: Exception
                                ) -> Request | None:
        if isinstance(exception, self.exceptions_to_retry) and not request.meta.get(
                "dont_retry", False):
            return await self._retry_later(request, exception)
        return None

    async def _retry_later(self, request: Request, reason: str | Exception) -> Request | None:
        retry = self._retry(request, reason)       # Scrapy's: counts, logs, gives up
        if retry is None:
            return None
        drop_access_token(retry)
        await self.watch.sleep(backoff(retry.meta["retry_times"], self.backoff_base,
                                       self.backoff_max))
        return retry
