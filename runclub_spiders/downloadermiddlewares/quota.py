"""Daily quota per endpoint bucket: request counts, budgets and parks, kept in the store.

Every request with a quota bucket (``request.meta["spotify_bucket"]``, set by
``service_slots.py``) is counted against that bucket's UTC day and UTC hour as it goes out
(``quota_days``, ``quota_hours``; the hours give the use over Spotify's rolling ~24 h window);
the count is taken back, from the day and hour it went to, only if that very attempt is
refused before it is sent. A bucket is **parked**
until a given time by a ``QUOTA_EXCEEDED`` answer or a ``Retry-After`` above
``RATE_LIMIT_MAX_WAIT`` (``QUOTA_PARK_DEFAULT`` seconds without the header; the rule is
:func:`runclub_spiders.quota.quota_park`), or by its own ``SPOTIFY_DAILY_BUDGET``. A budget
counts Spotify's rolling window, not the UTC day: a run that spends it before midnight and
one after must not spend it twice within Spotify's 24 h. The bucket waits until enough of
its oldest hours have left the window (:func:`runclub_spiders.quota.budget_release`).
Counts and parks live in the store (``quota_days``, ``quota_hours``, ``quota_parks``), so
a restart never calls a locked bucket again.

A ``QUOTA_EXCEEDED`` answer that starts a park also teaches the bucket's size
(``quota_learned``): the requests Spotify served in the rolling window before refusing (our
window use, less the refused request and the bucket's other requests still in flight), and
its ``Retry-After``. Only ``QUOTA_EXCEEDED`` teaches: a long ``Retry-After`` without that
reason may be the rate limiter's penalty for a burst, which says nothing of the daily size,
and a ``SPOTIFY_DAILY_BUDGET`` park is our own number, not Spotify's.

Nothing is ever sent to a parked bucket. Its requests are refused with
:class:`~runclub_spiders.exceptions.QuotaParked` (an ``IgnoreRequest``: the errback, or an
``engine.download_async`` caller, gets it): in ``process_request``; for the 429 that starts
the park; and for the bucket's requests already waiting in a download slot's queue (they
passed ``process_request`` before the park began, and the downloader would still send them).
This middleware keeps no request and never closes the spider. It tells, through
``runclub_spiders.signals``:

* ``bucket_parked(bucket=, until=, reason=)`` when a park starts (or a running park's end
  moves later), and at ``spider_opened`` for every park an earlier run recorded that is still
  active;
* ``bucket_released(bucket=)`` when a park ends while the crawl runs (a timer, cancelled when
  the close starts).

Whoever owns the work (the catalog spider's frontier) holds what was refused, sends it again
on release, and decides whether to wait for a park or close (``quota_parked``).

A 429 is acted on in the ``response_downloaded`` signal, before the downloader hands the slot's
next queued request out (see ``pacing.py``), and refused in ``process_response``; this
middleware is ordered above ``pacing.py`` so that it refuses a park's 429 before pacing could
retry it, and it works the same with ``RETRY_ENABLED = False``. It is also ordered above the
auth middleware, so that it is the last of the project's middlewares to see a request before
its slot: a request that waited in an earlier one (auth awaits its token) while a park began
is refused here, not sent into the park. A middleware that awaits after this one would
reopen that gap.

Stats: ``quota/requests/<bucket>`` (this run), ``quota/requests_today/<bucket>`` (the UTC day,
all runs; at close), ``quota/parks`` (parks started), ``quota/parked_until/<bucket>``,
``quota/refused/<bucket>`` (every refusal), ``quota/learned/<bucket>`` (the learned size, at
close, for every bucket that has one).
"""

from __future__ import annotations

import json
import logging
import weakref
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Self

from scrapy import signals
from scrapy.exceptions import IgnoreRequest
from scrapy.utils.asyncio import call_later

from runclub_spiders import clock, scrapy_compat
from runclub_spiders import signals as project_signals
from runclub_spiders.exceptions import QuotaParked
from runclub_spiders.extensions.store import crawler_store
from runclub_spiders.quota import (
    BUDGET_WINDOW_HOURS,
    QUOTA_EXCEEDED,
    Park,
    budget_release,
    parse_retry_after,
    quota_park,
    utc_day,
    utc_iso,
)
from runclub_spiders.utils.closing import CloseWatch

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.http import Response
    from scrapy.utils.asyncio import CallLaterResult

    from runclub_spiders.store import Store

logger = logging.getLogger(__name__)

RELEASE_SLACK = 0.05       # seconds after a park's end before its release timer fires


class QuotaMiddleware:
    def __init__(self, crawler: Crawler) -> None:
        settings = crawler.settings
        self.crawler = crawler
        self.store: Store = crawler_store(crawler)
        self.max_wait = settings.getfloat("RATE_LIMIT_MAX_WAIT")
        self.default_park = settings.getfloat("QUOTA_PARK_DEFAULT")
        self.budgets = {str(k): int(v)
                        for k, v in settings.getdict("SPOTIFY_DAILY_BUDGET").items()}
        import_legacy_ledger(self.store)
        self.parks: dict[str, tuple[float, str]] = self.store.quota_parks()
        # The attempts counted against their bucket (see process_request) and not yet ended.
        # The request object itself is the mark, not a meta flag: every copy of a request (a
        # retry, a 429 wait, the auth and malformed-JSON retries, JOBDIR) inherits its meta,
        # so a flag there would let a copy that is later refused take back the count of the
        # attempt it was copied from, which did reach Spotify. An object is never a copy.
        # Weak, so an attempt ended out of our sight cannot leak. The value is when it was
        # counted: a count taken back comes off the day and hour it went to.
        self._counted: weakref.WeakKeyDictionary[Request, float] = weakref.WeakKeyDictionary()
        self._timers: dict[str, CallLaterResult] = {}
        self.watch = CloseWatch(crawler, on_close=self._cancel_timers)
        crawler.signals.connect(self.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)
        crawler.signals.connect(self.response_downloaded, signal=signals.response_downloaded)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    # ---------------------------------------------------------------- requests
    def process_request(self, request: Request) -> None:
        bucket = request.meta.get("spotify_bucket")
        if not bucket:
            return
        now = clock.now()
        until = self.parked_until(bucket, now)
        budget = self.budgets.get(bucket)
        if not until and budget is not None and self.budget_use(bucket, now) >= budget:
            until = budget_release(self._hours_of(bucket, now), budget, now)
            self._park(bucket, until, "daily budget")
        if until:
            raise self._refusal(bucket)
        # Counted as it goes out: what Spotify sees is what the daily quota charges. Taken
        # back if this attempt is refused before it is sent (a park or a close taking it from
        # the slot queue): process_exception. Kept once the attempt got an answer or failed
        # on the wire.
        self._count(bucket, 1, now)
        self._counted[request] = now

    def process_response(self, request: Request, response: Response) -> Response:
        sent = self._counted.pop(request, None)  # answered (no response_downloaded if cached)
        bucket = request.meta.get("spotify_bucket")
        if response.status != 429 or not bucket:
            return response
        park = self._park_of(response, bucket)
        if park is None:
            return response
        if not self.parked_until(bucket):    # no response_downloaded (e.g. a cached response)
            self._park_on_answer(bucket, park, response, sent)
            self._drop_queued(bucket)
        raise self._refusal(bucket)

    def process_exception(self, request: Request, exception: Exception) -> None:
        if isinstance(exception, IgnoreRequest):
            self._uncount(request)           # refused before it went out
        else:
            self._counted.pop(request, None)  # failed on the wire: it may have arrived

    def response_downloaded(self, response: Response, request: Request) -> None:
        """Park on a quota 429 before the downloader sends the slot's next queued request."""
        sent = self._counted.pop(request, None)  # answered: stays counted, whatever comes next
        bucket = request.meta.get("spotify_bucket")
        if response.status != 429 or not bucket:
            return
        park = self._park_of(response, bucket)
        if park is not None:
            self._park_on_answer(bucket, park, response, sent)
            self._drop_queued(bucket)

    def _park_of(self, response: Response, bucket: str):
        return quota_park(response, bucket, now=clock.now(), max_wait=self.max_wait,
                          default_park=self.default_park)

    def _park_on_answer(self, bucket: str, park: Park, response: Response,
                        sent: float | None) -> None:
        """Park as Spotify said; a ``QUOTA_EXCEEDED`` that starts the park is learnt from.
        ``sent``: when the refused request was counted (None if it was not, a cached one)."""
        started = not self.parked_until(bucket)
        if started and park.reason == QUOTA_EXCEEDED:
            # Learnt before the park is told: a bucket_parked receiver may read it (the
            # frontier learns whether album tracks share the albums bucket).
            self._learn(bucket, response, sent)
        self._park(bucket, *park)

    def _learn(self, bucket: str, response: Response, sent: float | None) -> None:
        """Record what Spotify served in the rolling window before this refusal: our window
        use (hour granularity, ``Store.quota_window_use``) less the refused request itself
        and the bucket's attempts sent after it and not yet answered (Spotify saw them after
        the refusal, or never). Those sent before it and still unanswered count as served."""
        now = clock.now()
        after = sum(1 for r, at in list(self._counted.items())
                    if r.meta.get("spotify_bucket") == bucket
                    and (sent is None or at > sent))
        refused = 1 if sent is not None else 0
        served = max(0, self.store.quota_window_use(now).get(bucket, 0) - refused - after)
        retry_after = parse_retry_after(response.headers.get("Retry-After"), now)
        self.store.add_quota_learned(bucket, now, served, retry_after)
        logger.info("Quota bucket %r: Spotify refused it after %d requests in the last 24 h "
                    "(learned size)", bucket, served)

    def _refusal(self, bucket: str) -> QuotaParked:
        until = self.parks[bucket][0]
        self.crawler.stats.inc_value(f"quota/refused/{bucket}")
        return QuotaParked(bucket, until,
                           f"quota bucket {bucket!r} is parked until {utc_iso(until)}")

    def _drop_queued(self, bucket: str) -> None:
        """Refuse the parked bucket's requests that already wait in a slot's queue."""
        assert self.crawler.engine is not None
        taken = scrapy_compat.take_queued(self.crawler.engine.downloader,
                                          lambda r: r.meta.get("spotify_bucket") == bucket)
        for _request, deferred in taken:
            # Through process_exception, which takes back their count: never sent.
            deferred.errback(self._refusal(bucket))

    # ---------------------------------------------------------------- counts
    def budget_use(self, bucket: str, now: float) -> int:
        """The bucket's requests in the window its budget counts, as the store's ledger
        counts it for the projection too."""
        return self.store.quota_window_use(now, hours=BUDGET_WINDOW_HOURS).get(bucket, 0)

    def _hours_of(self, bucket: str, now: float) -> dict[int, int]:
        """The bucket's requests per hour since the budget window's first hour, as the
        store's ledger has them (its one owner: ``_count`` writes it as requests go out)."""
        return self.store.quota_hours_since(int(now // 3600) - BUDGET_WINDOW_HOURS + 1,
                                            bucket).get(bucket, {})

    def _count(self, bucket: str, n: int, at: float) -> None:
        """Add ``n`` to ``bucket``'s count of the UTC day and hour of ``at``."""
        with self.store.transaction():
            self.store.add_quota_requests(utc_day(at), bucket, n)
            self.store.add_quota_hour(int(at // 3600), bucket, n)
        self.crawler.stats.inc_value(f"quota/requests/{bucket}", n)

    def _uncount(self, request: Request) -> None:
        """Take back the count of this very attempt, if it was counted and has not ended."""
        at = self._counted.pop(request, None)
        if at is not None:
            self._count(request.meta["spotify_bucket"], -1, at)

    # ---------------------------------------------------------------- parks
    def parked_until(self, bucket: str, now: float | None = None) -> float:
        """Until when ``bucket`` is parked (epoch seconds), or 0. A park found over ends."""
        park = self.parks.get(bucket)
        if park is None:
            return 0.0
        if park[0] <= (now if now is not None else clock.now()):
            self._release(bucket)
            return 0.0
        return park[0]

    def _park(self, bucket: str, until: float, reason: str) -> None:
        current = self.parked_until(bucket)
        if until <= current:
            return
        self.parks[bucket] = (until, reason)
        self.store.set_quota_park(bucket, until, reason)
        self.crawler.stats.set_value(f"quota/parked_until/{bucket}", utc_iso(until))
        if not current:
            self.crawler.stats.inc_value("quota/parks")
            logger.warning("Quota bucket %r parked until %s (%s); no request goes to it "
                           "before then", bucket, utc_iso(until), reason)
        self._announce(bucket, until, reason)

    def _announce(self, bucket: str, until: float, reason: str) -> None:
        """Send ``bucket_parked`` and set the timer that releases the park."""
        timer = self._timers.pop(bucket, None)
        if timer is not None:
            timer.cancel()
        if not self.watch.closing:
            self._timers[bucket] = call_later(max(0.0, until - clock.now()) + RELEASE_SLACK,
                                              self._timer_fired, bucket)
        self.crawler.signals.send_catch_log(project_signals.bucket_parked, bucket=bucket,
                                            until=until, reason=reason)

    def _timer_fired(self, bucket: str) -> None:
        self._timers.pop(bucket, None)
        park = self.parks.get(bucket)
        if park is not None and park[0] > clock.now():   # the clock went back: wait more
            self._timers[bucket] = call_later(park[0] - clock.now() + RELEASE_SLACK,
                                              self._timer_fired, bucket)
        elif park is not None:
            self._release(bucket)

    def _release(self, bucket: str) -> None:
        self.parks.pop(bucket, None)
        self.store.clear_quota_park(bucket)
        timer = self._timers.pop(bucket, None)
        if timer is not None:
            timer.cancel()
        if self.watch.closing or self.crawler.engine is None:
            return
        logger.info("Quota bucket %r released: requests may go to it again", bucket)
        self.crawler.signals.send_catch_log(project_signals.bucket_released, bucket=bucket)

    def _cancel_timers(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()

    # ---------------------------------------------------------------- signals
    def spider_opened(self) -> None:
        now = clock.now()
        for bucket, (until, reason) in sorted(self.parks.items()):
            if until <= now:
                self.parks.pop(bucket)
                self.store.clear_quota_park(bucket)     # over before this run: nothing to say
                continue
            self.crawler.stats.set_value(f"quota/parked_until/{bucket}", utc_iso(until))
            logger.warning("Quota bucket %r is parked until %s (%s, recorded by an earlier "
                           "run); no request goes to it before then", bucket, utc_iso(until),
                           reason)
            self._announce(bucket, until, reason)

    def spider_closed(self) -> None:
        self._cancel_timers()
        for bucket, used in self.store.quota_requests(utc_day(clock.now())).items():
            self.crawler.stats.set_value(f"quota/requests_today/{bucket}", used)
        for bucket, (size, _, _) in self.store.learned_quota().items():
            self.crawler.stats.set_value(f"quota/learned/{bucket}", size)


# -------------------------------------------------------------------- upgrade
def import_legacy_ledger(store: Store) -> None:
    """Once, on upgrade: a store without quota rows takes the days and parks of the JSON
    ledger earlier versions kept beside it (``quota_state.json``: the default store and the
    default file sat side by side in ``.cache/``, and the demo kept its own beside its
    store), so a real park is not lost; the file is renamed ``<name>.imported``. Any other
    store (the demo's, a test's) never takes a real crawl's file. An unreadable file is left
    where it is, with a warning.

    The file counted by UTC day; a ``SPOTIFY_DAILY_BUDGET`` counts the store's hours. So a
    day's requests are also filed under the last hour they can have been sent in (the day's
    last, or the current one for today): a budget may wait longer after the upgrade, but
    never spends in the same window again what the old version spent."""
    path = store.path.parent / "quota_state.json"
    if store.has_quota_rows() or not path.is_file():
        return
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
        days = {str(d): {str(b): int(n) for b, n in counts.items()}
                for d, counts in state.get("days", {}).items()}
        parks = {str(b): (float(p["until"]), str(p["reason"]))
                 for b, p in state.get("parks", {}).items()}
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        logger.warning("%s is not a quota ledger this version can read; not imported "
                       "(it only held request counts and parks)", path)
        return
    store.import_quota(days, parks, _latest_hours(days, clock.now()))
    path.rename(path.with_name(path.name + ".imported"))
    logger.info("Quota ledger %s imported into the store (%d days, %d parks); renamed to "
                "%s.imported", path, len(days), len(parks), path.name)


def _latest_hours(days: dict[str, dict[str, int]], now: float) -> dict[int, dict[str, int]]:
    """Per-day counts as per-hour ones (epoch seconds // 3600), each day's under the last
    hour it can have been sent in: the day's last, or ``now``'s for today (or a later day).
    Only the hours a budget still counts; a key that is not a day is left out."""
    now_hour = int(now // 3600)
    hours: dict[int, dict[str, int]] = {}
    for day, counts in days.items():
        try:
            start = datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC).timestamp()
        except ValueError:
            continue
        hour = min(int(start // 3600) + 23, now_hour)
        if hour > now_hour - BUDGET_WINDOW_HOURS:
            filed = hours.setdefault(hour, {})
            for bucket, n in counts.items():
                filed[bucket] = filed.get(bucket, 0) + n
    return hours
