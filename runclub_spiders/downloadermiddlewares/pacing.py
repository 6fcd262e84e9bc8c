"""Short 429s and learned pacing, per download slot (one slot per service).

* **Short 429** (``Retry-After`` up to ``RATE_LIMIT_MAX_WAIT`` s; without the header,
  exponential backoff with jitter from ``RATE_LIMIT_BACKOFF_BASE/MAX``): the service's download
  slot is paused for that long, so nothing else goes to the host meanwhile, and the request is
  retried, up to ``RATE_LIMIT_MAX_RETRIES`` times (then it gives up with one ERROR line and the
  429 goes on to the spider). Stats: ``ratelimit/429``, ``ratelimit/waited_seconds``,
  ``ratelimit/gave_up``.
* A 429 that parks a quota bucket (:func:`runclub_spiders.quota.quota_park`, the one rule both
  middlewares ask) is not this middleware's: ``quota.py`` (ordered above it, so its
  ``process_response`` runs first) refuses that request.
* **Learned pacing**: see :meth:`PacingMiddleware._learn_pacing`. It is applied as the slot's
  delay, which the downloader enforces between two requests of the slot; nothing sleeps here.
* **A close** drops what waits in the slot queues (``close/dropped_queued``): a slot paused for
  a Retry-After would otherwise hold the close, then send its queue. The next run asks again.

Ordering matters twice. The downloader hands a slot's next queued request to the network as
soon as a response arrives, before any ``process_response`` runs; so a 429 pauses the slot in
the ``response_downloaded`` signal, which Scrapy sends before that hand-over. AutoThrottle
also sets the slot's delay in that signal; extensions are built (and connect) before the
engine and its middlewares, so this middleware's handler runs after AutoThrottle's and
re-asserts the learned pace over whatever AutoThrottle chose.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from typing import TYPE_CHECKING, Self

from scrapy import signals

from runclub_spiders import clock, scrapy_compat
from runclub_spiders.downloadermiddlewares.retry import backoff, drop_access_token
from runclub_spiders.quota import parse_retry_after, quota_park
from runclub_spiders.utils.closing import CloseWatch, SpiderClosing

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.http import Response

logger = logging.getLogger(__name__)

RELAX_AFTER = 4                        # quiet windows before learned pacing relaxes 10%
RATE_LIMIT_RETRIES = "_rate_limit_retries"
DECISION_429 = "_rate_limit_429"       # what response_downloaded decided for this 429
# A paced slot's jitter (see _hold_pace): with a jitter j the delay must be interval / (1 - j)
# for the shortest draw to keep the pace, and the downloader, which sends at the first draw
# below the time elapsed, then spaces requests up to (1 + j) / (1 - j) intervals apart (about
# 1.15 on average at j = 0.1, measured): a rolling window gains nothing from the spread.
MAX_JITTER = 0.0


class PacingMiddleware:
    def __init__(self, crawler: Crawler) -> None:
        settings = crawler.settings
        self.crawler = crawler
        self.max_wait = settings.getfloat("RATE_LIMIT_MAX_WAIT")
        self.max_retries = settings.getint("RATE_LIMIT_MAX_RETRIES")
        self.backoff_base = settings.getfloat("RATE_LIMIT_BACKOFF_BASE")
        self.backoff_max = settings.getfloat("RATE_LIMIT_BACKOFF_MAX")
        self.default_park = settings.getfloat("QUOTA_PARK_DEFAULT")
        self.window = settings.getfloat("RATE_LIMIT_WINDOW")
        self.learn_min = settings.getint("RATE_LIMIT_LEARN_MIN")
        # Per download slot: when accepted requests went out (monotonic), the learned
        # interval and when it was learned, the learned limit per window, whether the last
        # answer was a short 429, and (delay set by others, delay set here) for _hold_pace.
        self.sent: dict[str, deque[float]] = {}
        self.pacing: dict[str, tuple[float, float]] = {}
        self.limits: dict[str, int] = {}
        self.last_429: dict[str, bool] = {}
        self.delays: dict[str, tuple[float, float]] = {}
        self.watch = CloseWatch(crawler, on_close=self._close_started)
        crawler.signals.connect(self.response_downloaded, signal=signals.response_downloaded)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    @property
    def downloader(self):
        assert self.crawler.engine is not None
        return self.crawler.engine.downloader

    # ---------------------------------------------------------------- requests
    def process_request(self, request: Request) -> None:
        if self.watch.closing:
            # Nothing new reaches a slot queue once the spider closes (a retry entering after
            # the queues were emptied would otherwise wait out the slot's pause).
            raise SpiderClosing(f"the spider is closing ({self.watch.reason})")

    def process_response(self, request: Request, response: Response) -> Request | Response:
        if response.status != 429 or request.meta.get("dont_retry", False):
            return response
        decision = request.meta.pop(DECISION_429, None)
        if decision is None:             # no response_downloaded (e.g. a cached response)
            if self._parks(request, response):
                return response          # the quota middleware's (refused there if enabled)
            decision = self._decide(request, response)
            self._apply(request, decision, twice=False)
        stats = self.crawler.stats
        retries = request.meta.get(RATE_LIMIT_RETRIES, 0) + 1
        if decision[0] == "give up":
            stats.inc_value("ratelimit/gave_up")
            logger.error("Gave up on %s after %d rate-limit retries", request, retries - 1)
            return response
        wait = decision[1]
        stats.inc_value("ratelimit/429")
        stats.inc_value("ratelimit/waited_seconds", wait)
        logger.info("429 from %s: pausing slot %s for %.1f s", request.url,
                    request.meta.get("download_slot"), wait)
        retry = request.copy()
        drop_access_token(retry)
        retry.meta[RATE_LIMIT_RETRIES] = retries
        retry.dont_filter = True      # the dupefilter has seen the original already
        return retry

    # ---------------------------------------------------------------- 429
    def response_downloaded(self, response: Response, request: Request) -> None:
        """Pause the slot on a short 429 before the downloader sends its next queued
        request; re-assert the learned pace after AutoThrottle's adjustment."""
        slot = request.meta.get("download_slot")
        if slot is None:
            return
        if response.status != 429:
            self.last_429[slot] = False
            latency = request.meta.get("download_latency") or 0.0
            self._sent_log(slot).append(time.monotonic() - latency)
            self._hold_pace(slot)
            return
        if request.meta.get("dont_retry", False) or self._parks(request, response):
            return
        twice = self.last_429.get(slot, False)
        self.last_429[slot] = True
        decision = self._decide(request, response)
        request.meta[DECISION_429] = decision
        self._apply(request, decision, twice=twice)

    def _parks(self, request: Request, response: Response) -> bool:
        return quota_park(response, request.meta.get("spotify_bucket"), now=clock.now(),
                          max_wait=self.max_wait, default_park=self.default_park) is not None

    def _decide(self, request: Request, response: Response) -> tuple:
        """``("wait", seconds)`` or ``("give up",)``."""
        retries = request.meta.get(RATE_LIMIT_RETRIES, 0) + 1
        if retries > self.max_retries:
            return ("give up",)
        wait = parse_retry_after(response.headers.get("Retry-After"), time.time())
        if wait is None:
            wait = backoff(retries, self.backoff_base, self.backoff_max)
        return ("wait", min(wait, self.max_wait))

    def _apply(self, request: Request, decision: tuple, *, twice: bool) -> None:
        if decision[0] != "wait":
            return
        scrapy_compat.pause_slot(self.downloader, request, decision[1])
        if twice:
            self._learn_pacing(request)

    # ---------------------------------------------------------------- learned pacing
    # Spotify limits each app over a rolling 30 s window and does not say how much. A short
    # 429 tells: the requests the slot got answers for in the last window is the limit. From
    # then on the slot's requests are spaced window / limit apart (2% over), so the crawl runs
    # just under the ceiling instead of bursting into it and pausing. The spacing relaxes by
    # 10% after every RELAX_AFTER windows without being learned again, so a limit that rises
    # is found again at the cost of about one 429 per two minutes. Only two short 429s in a
    # row teach (a full window refuses everything until it slides; a lone 429 is more likely
    # a fault), and fewer than RATE_LIMIT_LEARN_MIN requests in the window teach nothing.
    def _sent_log(self, slot: str) -> deque[float]:
        log = self.sent.setdefault(slot, deque())
        horizon = time.monotonic() - self.window
        while log and log[0] < horizon:
            log.popleft()
        return log

    def _learn_pacing(self, request: Request) -> None:
        slot = request.meta["download_slot"]
        sent = self._sent_log(slot)
        limit = len(sent)
        if limit < max(1, self.learn_min):
            return
        known = self.limits.get(slot)
        if known is not None and 0.9 * known <= limit < known:
            # At the pace we keep already (a retry pause or a stray 429 makes the count look a
            # little lower): keep the limit, restart the relaxing clock. Taking the lower count
            # each time would ratchet the pace down on every stray 429.
            limit = known
        elif known is None or limit != known:
            logger.info("Slot %s allows about %d requests per %.0f s: one every %.3f s from "
                        "now on", slot, limit, self.window, self.window / limit * 1.02)
        self.limits[slot] = limit
        interval = self.window / limit * 1.02
        self.pacing[slot] = (interval, time.monotonic())
        self.crawler.stats.set_value(f"ratelimit/pacing/{slot}", round(interval, 4))
        # The window is full now: the next request waits until its oldest one has left it,
        # otherwise the paced requests would meet the tail of the burst that filled it; and one
        # interval more, as the service saw that request a little after we sent it (without
        # it, a 429 at the window's edge cost a Retry-After of 1-5 s in 1 run of 2).
        scrapy_compat.pause_slot(self.downloader, request, sent[0] + self.window + interval
                                 - time.monotonic())
        self._hold_pace(slot)

    def _interval(self, slot: str) -> float:
        learnt = self.pacing.get(slot)
        if learnt is None:
            return 0.0
        interval, at = learnt
        return interval * 0.9 ** int((time.monotonic() - at) / (RELAX_AFTER * self.window))

    def _hold_pace(self, slot: str) -> None:
        """Keep the slot's delay at or above what spaces its requests ``_interval`` apart.

        The downloader spaces two requests at least ``delay * (1 - jitter)`` apart
        (``scrapy_compat.slot_delay``), so the delay is raised to ``interval / (1 - jitter)``,
        with the jitter lowered to ``MAX_JITTER``.
        Whoever else sets the delay (AutoThrottle, the slot's settings) sets the base this
        floor is laid over: when the learned interval relaxes, the delay returns to it.
        """
        interval = self._interval(slot)
        current = scrapy_compat.slot_delay(self.downloader, slot)
        if not interval or current is None:
            return
        delay, jitter = current
        base, ours = self.delays.get(slot, (delay, None))
        if delay != ours:
            base = delay              # set by someone else since our last look
        new_jitter = None
        if jitter > MAX_JITTER:
            new_jitter = jitter = MAX_JITTER
        ours = max(base, interval / (1 - jitter))
        scrapy_compat.set_slot_delay(self.downloader, slot, ours, new_jitter)
        self.delays[slot] = (base, ours)

    # ---------------------------------------------------------------- close
    def _close_started(self) -> None:
        """Nothing waiting in a slot queue (a slot paused for a Retry-After of up to
        ``RATE_LIMIT_MAX_WAIT``, say) goes out once the spider closes: the next run asks.
        Each dropped request fails with ``SpiderClosing`` through the middlewares'
        ``process_exception`` (the quota middleware takes back its count: it was not sent)."""
        taken = scrapy_compat.take_queued(self.downloader, lambda r: True)
        for _request, deferred in taken:
            deferred.errback(SpiderClosing(f"the spider is closing ({self.watch.reason})"))
        if taken:
            self.crawler.stats.inc_value("close/dropped_queued", len(taken))
