"""Retry-After, exponential backoff and quota parks for Spotify and ReccoBeats.

Replaces Scrapy's ``RetryMiddleware``, which resends a 429 at once and never reads
``Retry-After``. Three kinds of trouble, three answers:

* **Short 429** (``Retry-After`` up to ``RATE_LIMIT_MAX_WAIT`` s): pause that service's
  download slot for the time given, so nothing else goes to the host meanwhile, then retry.
  Without the header: exponential backoff with jitter.
* **Quota** (``reason: QUOTA_EXCEEDED``, or a longer ``Retry-After``): park the endpoint
  bucket until the time given, in a state file that survives restarts. Requests for a parked
  bucket are never sent; they are set aside, including those already waiting in a download
  slot's queue. When nothing else is left, the crawl closes with reason ``quota_parked`` (or
  waits, if the park ends within ``QUOTA_PARK_IDLE_WAIT``); set-aside requests are not
  saved: the next run plans those pages again from the store. Requests a component awaits
  through ``engine.download_async`` (``callback=NO_CALLBACK``) are only refused with
  ``IgnoreRequest``: their caller decides what to do, and the scheduler could not deliver them.
* **5xx, timeouts, dropped connections**: bounded retries, each delayed by exponential
  backoff with jitter.

An optional ``SPOTIFY_DAILY_BUDGET`` parks a bucket at its budget, before Spotify does.

The downloader hands a slot's next queued request to the network as soon as a response
arrives, before any ``process_response`` runs; so 429s are acted on (slot paused, bucket
parked) in the ``response_downloaded`` signal, which Scrapy sends before that hand-over.
"""

from __future__ import annotations

import logging
import random
import time
import weakref
from collections import deque
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING

from scrapy import signals
from scrapy.downloadermiddlewares.retry import RetryMiddleware, get_retry_request
from scrapy.exceptions import CloseSpider, DontCloseSpider, IgnoreRequest
from scrapy.http.request import NO_CALLBACK
from scrapy.utils.asyncio import call_later
from scrapy.utils.response import response_status_message

from runclub_spiders import scrapy_compat
from runclub_spiders.downloadermiddlewares.spotify_auth import TOKEN_REQUEST
from runclub_spiders.quota import QuotaLedger, next_utc_midnight, utc_iso
from runclub_spiders.utils.closing import CloseWatch, SpiderClosing

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.http import Response

logger = logging.getLogger(__name__)

RELAX_AFTER = 4                        # quiet windows before learned pacing relaxes 10%
TWICE_429 = "_second_429"              # this 429 followed another one on the same slot
NOT_BEFORE = "_not_before"           # monotonic time before which a retry must not go out
RATE_LIMIT_RETRIES = "_rate_limit_retries"
DECISION_429 = "_rate_limit_429"     # what response_downloaded decided for this 429


class QuotaParked(IgnoreRequest):
    """A request refused because its quota bucket is parked.

    ``set_aside`` says whether this middleware kept a copy to send when the park ends. When it
    did, that copy is the request's only owner: the spider must not plan the same page again
    (it would be asked twice, once by the new request and once by the copy), and must not
    count it as failed. When it did not (``engine.download_async`` callers), the caller owns it.
    """

    def __init__(self, message: str, *, set_aside: bool) -> None:
        super().__init__(message)
        self.set_aside = set_aside


def set_aside_by_park(failure) -> bool:
    """True when ``failure`` is a park refusal whose request waits, set aside, for the park."""
    return bool(failure.check(QuotaParked)) and failure.value.set_aside


def parse_retry_after(value: bytes | str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date."""
    if value is None:
        return None
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    text = text.strip()
    if not text:
        return None
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(text).timestamp() - now)
    except (TypeError, ValueError, IndexError):
        return None


def _quota_reason(response: Response) -> str | None:
    try:
        body = response.json()  # type: ignore[attr-defined]
    except (AttributeError, ValueError):
        return None
    error = body.get("error") if isinstance(body, dict) else None
    reason = error.get("reason") if isinstance(error, dict) else None
    return reason if isinstance(reason, str) else None


def _drop_access_token(request: Request) -> None:
    """Keep the Bearer token out of retries (the scheduler, JOBDIR); the OAuth middleware
    adds a fresh one. A token request's own ``Authorization`` (the client credentials) stays:
    it never passes the scheduler, and its retry cannot authenticate without it."""
    if not request.meta.get(TOKEN_REQUEST):
        request.headers.pop("Authorization", None)


class RateLimitMiddleware(RetryMiddleware):
    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler.settings)
        settings = crawler.settings
        self.crawler = crawler
        self.max_wait = settings.getfloat("RATE_LIMIT_MAX_WAIT")
        self.rate_limit_retries = settings.getint("RATE_LIMIT_MAX_RETRIES")
        self.backoff_base = settings.getfloat("RATE_LIMIT_BACKOFF_BASE")
        self.backoff_max = settings.getfloat("RATE_LIMIT_BACKOFF_MAX")
        self.default_park = settings.getfloat("QUOTA_PARK_DEFAULT")
        self.idle_wait = settings.getfloat("QUOTA_PARK_IDLE_WAIT")
        self.budgets = {str(k): int(v)
                        for k, v in settings.getdict("SPOTIFY_DAILY_BUDGET").items()}
        self.ledger = QuotaLedger(settings["QUOTA_STATE_FILE"])
        self.stash: list[Request] = []
        self._reinject_call = None
        self._run_counts: dict[str, int] = {}
        # The attempts counted against their bucket (see process_request) and not yet ended.
        # The request object itself is the mark, not a meta flag: every copy of a request (a
        # retry, a 429 wait, one set aside by a park, the auth and malformed-JSON retries,
        # JOBDIR) inherits its meta, so a flag there would let a copy that is later refused
        # take back the count of the attempt it was copied from, which did reach Spotify.
        # An object is never a copy. Weak, so an attempt ended out of our sight cannot leak.
        self._counted: weakref.WeakSet[Request] = weakref.WeakSet()
        # Learned pacing (see _learn_pacing): per download slot.
        self.window = settings.getfloat("RATE_LIMIT_WINDOW")
        self.learn_min = settings.getint("RATE_LIMIT_LEARN_MIN")
        self.sent: dict[str, deque[float]] = {}
        self.pacing: dict[str, tuple[float, float]] = {}   # slot -> (interval, learnt at)
        self.limits: dict[str, int] = {}                    # slot -> requests per window
        self.last_429: dict[str, bool] = {}                 # slot -> last answer was a 429
        self.next_send: dict[str, float] = {}
        # Backoff and pacing sleep inside process_request; a close cuts them short.
        self.watch = CloseWatch(crawler, on_close=self._close_started)
        crawler.signals.connect(self.spider_idle, signal=signals.spider_idle)
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)
        crawler.signals.connect(self.response_downloaded, signal=signals.response_downloaded)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RateLimitMiddleware:
        return cls(crawler)

    # ---------------------------------------------------------------- requests
    async def process_request(self, request: Request) -> None:
        if self.watch.closing:
            # Nothing new goes out once the spider closes (a retry re-entering after the
            # slot queues were emptied would otherwise wait out the slot's pause).
            raise SpiderClosing(f"the spider is closing ({self.watch.reason})")
        not_before = request.meta.get(NOT_BEFORE)
        if not_before is not None:
            wait = not_before - time.monotonic()
            if wait > 0:
                await self.watch.sleep(wait)  # before the park check: a park may start
        await self._pace(request.meta.get("download_slot"))
        bucket = request.meta.get("spotify_bucket")
        if bucket:
            now = time.time()
            until = self.ledger.parked_until(bucket)
            budget = self.budgets.get(bucket)
            if not until and budget is not None and self.ledger.used_today(bucket) >= budget:
                until = next_utc_midnight(now)
                self._park(bucket, until, "daily budget")
            if until:
                raise QuotaParked(f"quota bucket {bucket!r} is parked until {utc_iso(until)}",
                                  set_aside=self._set_aside(request, bucket))
            # Counted as it goes out: what Spotify sees is what the daily quota charges.
            # Taken back if a later middleware refuses this attempt (no token:
            # process_exception) or a park sets it aside from the slot queue before it is sent
            # (_drop_queued); kept once the attempt got an answer or failed on the wire.
            self._count(bucket, 1)
            self._counted.add(request)
            self._sent_log(request.meta.get("download_slot")).append(time.monotonic())

    def _count(self, bucket: str, n: int) -> None:
        self.ledger.count(bucket, n)
        self._run_counts[bucket] = self._run_counts.get(bucket, 0) + n
        self.crawler.stats.inc_value(f"quota/requests/{bucket}", n)

    def _uncount(self, request: Request) -> None:
        """Take back the count of this very attempt, if it was counted and has not ended."""
        if request in self._counted:
            self._counted.discard(request)
            self._count(request.meta["spotify_bucket"], -1)

    def process_response(self, request: Request, response: Response) -> Request | Response:
        self._counted.discard(request)       # answered (no response_downloaded if cached)
        if request.meta.get("dont_retry", False):
            return response
        if response.status == 429:
            return self._on_429(request, response)
        if response.status in self.retry_http_codes:
            return self._retry_later(request, response_status_message(response.status)) \
                or response
        return response

    def process_exception(self, request: Request, exception: Exception) -> Request | None:
        if isinstance(exception, IgnoreRequest):
            self._uncount(request)               # refused before it went out
            return None
        self._counted.discard(request)           # failed on the wire: it may have arrived
        if isinstance(exception, self.exceptions_to_retry) and not request.meta.get(
                "dont_retry", False):
            return self._retry_later(request, exception)
        return None

    # ---------------------------------------------------------------- 429
    def response_downloaded(self, response: Response, request: Request) -> None:
        """Act on a 429 before the downloader sends the slot's next queued request."""
        self._counted.discard(request)       # answered: stays counted, whatever comes next
        slot = request.meta.get("download_slot") or ""
        previous = self.last_429.get(slot, False)
        self.last_429[slot] = response.status == 429
        if response.status != 429 or request.meta.get("dont_retry", False):
            return
        request.meta[TWICE_429] = previous
        decision = self._decide_429(request, response)
        request.meta[DECISION_429] = decision
        self._apply_429(request, decision)

    def _decide_429(self, request: Request, response: Response) -> tuple:
        """``("park", bucket, until, reason)``, ``("wait", seconds)`` or ``("give up",)``."""
        now = time.time()
        bucket = request.meta.get("spotify_bucket")
        wait = parse_retry_after(response.headers.get("Retry-After"), now)
        reason = _quota_reason(response)
        if bucket and (reason == "QUOTA_EXCEEDED" or (wait is not None and wait > self.max_wait)):
            until = now + (wait if wait is not None else self.default_park)
            return ("park", bucket, until, reason or f"Retry-After {wait:.0f} s")
        retries = request.meta.get(RATE_LIMIT_RETRIES, 0) + 1
        if retries > self.rate_limit_retries:
            return ("give up",)
        if wait is None:
            wait = self._backoff(retries)
        return ("wait", min(wait, self.max_wait))

    def _apply_429(self, request: Request, decision: tuple) -> None:
        """Pause the slot or park the bucket; safe to run twice for the same 429."""
        if decision[0] == "park":
            _, bucket, until, reason = decision
            self._park(bucket, until, reason)
            self._drop_queued(bucket)
        elif decision[0] == "wait":
            self._pause_slot(request, decision[1])
            if request.meta.pop(TWICE_429, False):
                self._learn_pacing(request.meta.get("download_slot"))

    def _on_429(self, request: Request, response: Response) -> Request | Response:
        stats = self.crawler.stats
        decision = request.meta.pop(DECISION_429, None)
        if decision is None:             # no response_downloaded (e.g. a cached response)
            decision = self._decide_429(request, response)
            self._apply_429(request, decision)
        if decision[0] == "park":
            _, bucket, until, _reason = decision
            raise QuotaParked(f"quota bucket {bucket!r} parked until {utc_iso(until)}",
                              set_aside=self._set_aside(request, bucket))
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
        retry = self._clean_copy(request)
        retry.meta[RATE_LIMIT_RETRIES] = retries
        retry.dont_filter = True
        return retry

    # ---------------------------------------------------------------- learned pacing
    # Spotify limits each app over a rolling 30 s window and does not say how much. A short
    # 429 tells: the requests sent to that slot in the last window, less one, is the limit.
    # From then on requests to the slot are spaced window / limit apart, so the crawl runs
    # just under the ceiling instead of bursting into it and pausing. The spacing relaxes by
    # 10% after every RELAX_AFTER windows without a 429, so a limit that rises is found again
    # at the cost of about one 429 per two minutes. Only two 429s in a row teach (a full
    # window refuses everything until it slides; a lone 429 is more likely a fault), and
    # fewer than RATE_LIMIT_LEARN_MIN requests in the window teach nothing.
    def _sent_log(self, slot: str | None) -> deque[float]:
        log = self.sent.setdefault(slot or "", deque())
        horizon = time.monotonic() - self.window
        while log and log[0] < horizon:
            log.popleft()
        return log

    def _learn_pacing(self, slot: str | None) -> None:
        limit = len(self._sent_log(slot)) - 1
        if slot is None or limit < self.learn_min:
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
        # The window is full now: the next request waits until its oldest one has left it,
        # otherwise the paced requests would meet the tail of the burst that filled it.
        sent = self._sent_log(slot)
        if sent:
            self.next_send[slot] = max(self.next_send.get(slot, 0.0), sent[0] + self.window)
        self.crawler.stats.set_value(f"ratelimit/pacing/{slot}", round(interval, 4))

    def _interval(self, slot: str) -> float:
        learnt = self.pacing.get(slot)
        if learnt is None:
            return 0.0
        interval, at = learnt
        return interval * 0.9 ** int((time.monotonic() - at) / (RELAX_AFTER * self.window))

    async def _pace(self, slot: str | None) -> None:
        interval = self._interval(slot) if slot else 0.0
        if not interval:
            return
        now = time.monotonic()
        at = max(now, self.next_send.get(slot, 0.0))
        self.next_send[slot] = at + interval
        if at > now:
            await self.watch.sleep(at - now)

    def _pause_slot(self, request: Request, wait: float) -> None:
        """Hold every queued request of this slot for ``wait`` seconds (it must happen before
        the downloader picks the slot's next request: see ``response_downloaded``)."""
        scrapy_compat.pause_slot(self.crawler.engine.downloader, request, wait)

    def _drop_queued(self, bucket: str) -> None:
        """Set aside the parked bucket's requests that already wait in a slot's queue.

        They passed ``process_request`` before the park began; left there, the downloader
        would still send them.
        """
        taken = scrapy_compat.take_queued(self.crawler.engine.downloader,
                                          lambda r: r.meta.get("spotify_bucket") == bucket)
        for request, deferred in taken:
            self._uncount(request)       # and so process_exception does not undo it twice
            kept = self._set_aside(request, bucket)
            deferred.errback(QuotaParked(f"quota bucket {bucket!r} is parked", set_aside=kept))

    def _close_started(self) -> None:
        """Nothing waiting in a slot queue (a slot paused for a Retry-After of up to
        ``RATE_LIMIT_MAX_WAIT``, say) goes out once the spider closes: the next run asks."""
        taken = scrapy_compat.take_queued(self.crawler.engine.downloader, lambda r: True)
        for request, deferred in taken:
            self._uncount(request)
            deferred.errback(SpiderClosing(f"the spider is closing ({self.watch.reason})"))
        if taken:
            self.crawler.stats.inc_value("close/dropped_queued", len(taken))

    # ---------------------------------------------------------------- retries with backoff
    def _backoff(self, attempt: int) -> float:
        ceiling = min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)

    def _retry_later(self, request: Request, reason: str | Exception) -> Request | None:
        retry = get_retry_request(
            request, spider=self.crawler.spider, reason=reason,
            max_retry_times=request.meta.get("max_retry_times", self.max_retry_times),
            priority_adjust=request.meta.get("priority_adjust", self.priority_adjust))
        if retry is None:
            return None
        _drop_access_token(retry)
        retry.meta[NOT_BEFORE] = time.monotonic() + self._backoff(retry.meta["retry_times"])
        return retry

    @staticmethod
    def _clean_copy(request: Request) -> Request:
        copy = request.copy()
        _drop_access_token(copy)
        copy.meta.pop(NOT_BEFORE, None)
        copy.dont_filter = True
        return copy

    # ---------------------------------------------------------------- parks
    def _park(self, bucket: str, until: float, reason: str) -> None:
        already = self.ledger.parked_until(bucket)
        self.ledger.park(bucket, until, reason)
        self.crawler.stats.set_value(f"quota/parked_until/{bucket}", utc_iso(until))
        if not already:
            self.crawler.stats.inc_value("quota/parks")
            logger.warning("Quota bucket %r parked until %s (%s); no request goes to it "
                           "before then", bucket, utc_iso(until), reason)

    def _set_aside(self, request: Request, bucket: str) -> bool:
        """Keep a copy of ``request`` to send when the park ends; False when it is not kept."""
        if request.callback is NO_CALLBACK:
            # Awaited through engine.download_async: the IgnoreRequest goes to its caller.
            # Scheduled later, its response would reach NO_CALLBACK.
            self.crawler.stats.inc_value(f"quota/refused/{bucket}")
            return False
        # A clean copy with dont_filter: the dupefilter has seen the original already, and
        # would drop it when it comes back. Kept in memory only: after a restart the spider
        # plans the page again (the catalog spider from its store).
        self.stash.append(self._clean_copy(request))
        self.crawler.stats.inc_value(f"quota/set_aside/{bucket}")
        return True

    def _stash_buckets(self) -> set[str]:
        return {r.meta["spotify_bucket"] for r in self.stash}

    def _reinject(self) -> None:
        self._reinject_call = None
        ready = [r for r in self.stash
                 if not self.ledger.parked_until(r.meta["spotify_bucket"])]
        self.stash = [r for r in self.stash if r not in ready]
        for request in ready:
            self.crawler.engine.crawl(request)
        if ready:
            logger.info("Quota park over: %d set-aside requests back in the queue", len(ready))

    # ---------------------------------------------------------------- signals
    def waiting_in_process(self) -> bool:
        """True while set-aside requests will be sent again by this process (a short park)."""
        if not self.stash:
            return False
        ends = [self.ledger.parked_until(b) for b in self._stash_buckets()]
        return not all(ends) or min(ends) - time.time() <= self.idle_wait

    def spider_idle(self) -> None:
        if not self.stash:
            return
        now = time.time()
        ends = [self.ledger.parked_until(b) for b in self._stash_buckets()]
        if not all(ends):
            self._reinject()
            raise DontCloseSpider
        earliest = min(ends)
        if earliest - now <= self.idle_wait:
            if self._reinject_call is None:
                self._reinject_call = call_later(max(0.0, earliest - now) + 0.05,
                                                 self._reinject)
            raise DontCloseSpider
        latest = max(ends)
        if self.crawler.stats.get_value("quota/resume_after") != utc_iso(latest):
            # Once: another idle handler (the export phase) may keep the crawl open a while.
            self.crawler.stats.set_value("quota/resume_after", utc_iso(latest))
            logger.warning("Every remaining request needs a parked quota bucket (%s). Run the "
                           "same command again after %s UTC to continue.",
                           ", ".join(sorted(self._stash_buckets())), utc_iso(latest))
        raise CloseSpider("quota_parked")

    def spider_closed(self) -> None:
        if self._reinject_call is not None:
            self._reinject_call.cancel()
        self.ledger.save()
        for bucket, used in self.ledger.today().items():
            self.crawler.stats.set_value(f"quota/requests_today/{bucket}", used)
