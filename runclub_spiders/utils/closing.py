"""Waiting that ends the moment the spider starts closing (see ``extensions/prompt_close.py``)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from scrapy.exceptions import IgnoreRequest

from runclub_spiders.signals import close_started

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

T = TypeVar("T")


class SpiderClosing(IgnoreRequest):
    """A request given up because the spider is closing; it is asked again next run."""


class CloseWatch:
    """One component's view of the close: a flag, and waits that it cuts short."""

    def __init__(self, crawler: Crawler, on_close: Callable[[], None] | None = None) -> None:
        self.reason: str | None = None
        self._on_close = on_close
        self._waiters: set[asyncio.Future[None]] = set()
        crawler.signals.connect(self._close_started, signal=close_started)

    @property
    def closing(self) -> bool:
        return self.reason is not None

    def _close_started(self, reason: str) -> None:
        self.reason = reason
        for waiter in list(self._waiters):
            if not waiter.done():
                waiter.set_result(None)
        if self._on_close is not None:
            self._on_close()

    def _closed(self) -> asyncio.Future[None]:
        waiter = asyncio.get_running_loop().create_future()
        if self.closing:
            waiter.set_result(None)
        self._waiters.add(waiter)
        waiter.add_done_callback(self._waiters.discard)
        return waiter

    async def sleep(self, seconds: float) -> None:
        """Sleep, or raise :class:`SpiderClosing` as soon as the close starts."""
        await self.run(asyncio.sleep(seconds))

    async def run(self, awaitable: Awaitable[T]) -> T:
        """Await ``awaitable``; if the close starts first, cancel it and raise
        :class:`SpiderClosing` (a download it awaits is cancelled with it)."""
        if self.closing:
            if asyncio.iscoroutine(awaitable):
                awaitable.close()
            raise SpiderClosing(f"the spider is closing ({self.reason})")
        task = asyncio.ensure_future(awaitable)
        closed = self._closed()
        try:
            await asyncio.wait({task, closed}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            task.cancel()               # whoever awaits us gave up: so does the work
            raise
        finally:
            closed.cancel()
        if self.closing:
            # Even when the work is done too: what comes after it (a request going on to its
            # download slot, say) must not start once the close has begun.
            if not task.done():
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            raise SpiderClosing(f"the spider is closing ({self.reason})")
        return task.result()
