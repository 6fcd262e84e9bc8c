"""The Scrapy internals this project relies on, in one place, each with why (Scrapy 2.19.0).

Everything else uses Scrapy's public API. When ``requirements.txt`` moves Scrapy's pin, check
each function here against the new release first: ``tests/reliability/test_prompt_close.py``,
``tests/test_pacing.py``, ``tests/test_quota.py`` and ``tests/test_scrapy_downloader.py`` fail
if one of them stops doing its job.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from scrapy.core.engine import ExecutionEngine
from scrapy.utils.defer import _schedule_coro

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.core.downloader import Downloader
    from twisted.internet.defer import Deferred


#: ``(class, attribute)`` of the engine's idle-check heartbeat (5 s). The engine notices that
#: the last items from ``start()`` are done only at its next heartbeat (the same bug as in
#: :func:`recheck_scraper_closing`); tests whose crawls end that way shorten it with
#: ``monkeypatch.setattr(*ENGINE_HEARTBEAT, 0.1)``.
ENGINE_HEARTBEAT = (ExecutionEngine, "_SLOT_HEARTBEAT_INTERVAL")


def schedule_coro(coro: Coroutine[Any, Any, Any]) -> None:
    """Run ``coro`` without awaiting it (Scrapy's own helper: a Deferred or an asyncio task,
    whichever the reactor wants). Used to start ``engine.close_spider_async`` from code that
    cannot await it (a middleware's synchronous path)."""
    _schedule_coro(coro)


def on_close_started(engine: ExecutionEngine, callback: Callable[[str], None]) -> None:
    """Call ``callback(reason)`` as soon as the engine starts closing the spider.

    Scrapy sends ``spider_closed`` only after every request in progress has ended, and no
    signal when the close begins; so work that waits (a ReccoBeats batch in flight, a token
    refresh, a paced or backed-off request sleeping in a middleware) would hold the close for
    as long as it takes. Every close (a ``CloseSpider``, ``engine.stop_async`` on SIGTERM or
    Ctrl-C, a close the auth middleware asks for) goes through the engine's
    ``close_spider_async`` attribute, so wrapping it on the instance sees them all.
    """
    original = engine.close_spider_async

    async def close_spider_async(*, reason: str = "cancelled") -> None:
        callback(reason)
        await original(reason=reason)

    engine.close_spider_async = close_spider_async  # type: ignore[method-assign]


def recheck_scraper_closing(engine: ExecutionEngine) -> None:
    """Let the scraper finish closing if its last items are done.

    Scrapy 2.19 bug: the scraper checks whether it may close only when it starts closing and
    after each *response* is processed. Items that come from ``start()`` (the spider re-yields
    tracks still waiting for enrichment there) are not tied to a response, so one that ends
    after the close began is never followed by a check, and the crawl hangs forever between
    "Closing spider" and ``spider_closed``. Called repeatedly while the close is under way.
    """
    scraper = engine.scraper
    slot = scraper.slot
    if slot is not None and slot.closing is not None and not slot.closing.called:
        scraper._check_if_closing()


def pause_slot(downloader: Downloader, request: Request, wait: float) -> None:
    """Hold every request queued in ``request``'s download slot for ``wait`` seconds.

    Scrapy has no API to pause a slot. Its downloader waits ``delay - (now - lastseen)``
    before a slot's next request, so moving ``Slot.lastseen`` into the future pauses it (only
    for a slot with a delay: with ``delay=0`` 2.19 sends the whole queue at once).
    """
    slot = downloader.slots.get(downloader.get_slot_key(request))
    if slot is None:
        return
    slot.delay = max(slot.delay, 0.001)
    slot.lastseen = max(slot.lastseen, time.monotonic() + wait)


def slot_delay(downloader: Downloader, key: str) -> tuple[float, float] | None:
    """``(delay, jitter)`` of download slot ``key``, or ``None`` before its first request.

    Scrapy's downloader waits ``Slot.download_delay()`` between two requests of a slot, and
    draws it anew, as ``delay * (1 + uniform(-jitter, jitter))`` (floored at 0), at every look
    at the slot's queue (each enqueue, each answer, each timer): a request goes out at the
    first draw the time since the last one exceeds. So two requests are spaced at least
    ``delay * (1 - jitter)`` apart, not ``delay``. AutoThrottle sets ``Slot.delay`` in its
    ``response_downloaded`` handler. There is no public API to read or set either.
    """
    slot = downloader.slots.get(key)
    return None if slot is None else (slot.delay, slot.jitter)


def set_slot_delay(downloader: Downloader, key: str, delay: float,
                   jitter: float | None = None) -> None:
    """Set the delay (and the jitter, when given) of download slot ``key``, if it exists.
    See :func:`slot_delay` for how the downloader uses them."""
    slot = downloader.slots.get(key)
    if slot is None:
        return
    slot.delay = delay
    if jitter is not None:
        slot.jitter = jitter


def take_queued(downloader: Downloader, wanted: Callable[[Request], bool]
                ) -> list[tuple[Request, Deferred]]:
    """Remove the ``wanted`` requests from the download slots' queues, with the Deferreds
    their callers wait on (the caller must fire each). Scrapy has no API for it: they passed
    every ``process_request`` already, and would otherwise be sent (a quota park, a close)."""
    taken = []
    for slot in downloader.slots.values():
        keep: deque = deque()
        for entry in slot.queue:
            (taken if wanted(entry[0]) else keep).append(entry)
        slot.queue.clear()
        slot.queue.extend(keep)
    return taken
