"""Daily counts, budgets and quota parks, kept in the store (``quota.py``).

With a plain probe spider a parked bucket's requests end in ``QuotaParked`` errbacks: what
becomes of that work (held, sent on release, closing with ``quota_parked``) is the frontier's,
covered by the reliability tests.
"""

from __future__ import annotations

import gzip
import json
import time
from collections import Counter
from contextlib import closing
from datetime import UTC, datetime

import pytest
from scrapy import Request, Spider
from scrapy.exceptions import DontCloseSpider, IgnoreRequest
from scrapy.http import Response, TextResponse
from scrapy.http.request import NO_CALLBACK
from scrapy.utils.asyncio import sleep
from scrapy.utils.defer import deferred_f_from_coro_f
from scrapy.utils.test import get_crawler

from runclub_spiders import clock
from runclub_spiders import signals as project_signals
from runclub_spiders.downloadermiddlewares import quota as quota_middleware
from runclub_spiders.downloadermiddlewares.quota import import_legacy_ledger
from runclub_spiders.quota import (
    BUDGET_WINDOW_HOURS,
    budget_release,
    budget_window,
    quota_park,
    quota_reason,
    utc_day,
    utc_iso,
)
from runclub_spiders.store import Store
from tests.conftest import project_settings, use_credentials
from tests.spiders import ProbeSpider
from tests.wire import (
    TOLERANCE,
    crawl,
    offset,
    one_slot,
    search_paths,
    spotify_log,
    track_paths,
)

QUOTA_PATHS_SEARCHES = 8


def mixed_paths(sim) -> tuple[list[str], list[str]]:
    searches, tracks = search_paths(QUOTA_PATHS_SEARCHES), track_paths(sim, 8)
    mixed = [p for pair in zip(searches, tracks, strict=True) for p in pair]
    return mixed, tracks


def ledger(tmp_path) -> tuple[dict[str, int], dict[str, tuple[float, str]]]:
    """Today's counts and the parks, as the store holds them after a crawl."""
    with closing(Store.open(tmp_path / "store.sqlite")) as store:
        return store.quota_requests(utc_day(time.time())), store.quota_parks()


def iso_epoch(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


class SignalLog(list):
    """Every bucket_parked / bucket_released the crawl sends, with its arguments and time;
    ``record`` is the ``prepare`` hook that connects it."""

    def record(self, crawler) -> None:
        def parked(bucket, until, reason):
            self.append(("parked", bucket, until, reason, time.time()))

        def released(bucket):
            self.append(("released", bucket, time.time()))

        crawler.signals.connect(parked, signal=project_signals.bucket_parked, weak=False)
        crawler.signals.connect(released, signal=project_signals.bucket_released, weak=False)


# ---------------------------------------------------------------------------- the rule
def response(status: int, body: bytes, **headers) -> Response:
    return TextResponse("https://api.spotify.com/v1/search", status=status, body=body,
                        headers=headers)


QUOTA_BODY = b'{"error": {"status": 429, "message": "Too many requests", ' \
             b'"reason": "QUOTA_EXCEEDED"}}'


def test_one_rule_tells_a_park_from_a_short_429():
    now, rule = 1_000_000.0, {"max_wait": 60, "default_park": 7200}
    short = response(429, b'{"error": {"status": 429}}', **{"Retry-After": "5"})
    assert quota_park(short, "search", now=now, **rule) is None
    long = response(429, b"{}", **{"Retry-After": "61"})
    assert quota_park(long, "search", now=now, **rule) == (now + 61, "Retry-After 61 s")
    assert quota_park(long, None, now=now, **rule) is None          # no bucket: never a park
    assert quota_park(response(503, QUOTA_BODY), "search", now=now, **rule) is None
    quota = response(429, QUOTA_BODY, **{"Retry-After": "5"})
    assert quota_park(quota, "search", now=now, **rule) == (now + 5, "QUOTA_EXCEEDED")
    assert quota_park(response(429, QUOTA_BODY), "search", now=now, **rule) == (
        now + 7200, "QUOTA_EXCEEDED")
    # The response_downloaded signal sees the body still compressed; the same answer.
    zipped = response(429, gzip.compress(QUOTA_BODY), **{"Content-Encoding": "gzip"})
    assert quota_reason(zipped) == "QUOTA_EXCEEDED"
    assert quota_park(zipped, "search", now=now, **rule) == (now + 7200, "QUOTA_EXCEEDED")
    assert quota_reason(response(429, b"\x1f\x8b garbage", **{"Content-Encoding": "gzip"})) \
        is None


# ---------------------------------------------------------------------------- parks
@deferred_f_from_coro_f
async def test_quota_exceeded_parks_the_bucket_across_runs(simulator_factory, tmp_path,
                                                           monkeypatch):
    sim = simulator_factory(quota={"search": 3}, quota_retry_after=3600)
    use_credentials(monkeypatch, sim)
    paths, tracks = mixed_paths(sim)
    before = time.time()
    seen = SignalLog()
    crawler, stats = await crawl(sim, tmp_path, paths,
                                 prepare=seen.record, DOWNLOAD_SLOTS=one_slot())
    assert stats["finish_reason"] == "finished"
    assert stats.get("log_count/ERROR", 0) == 0

    searches = spotify_log(sim, bucket="search")
    assert [e.status for e in searches] == [200, 200, 200, 429]
    assert searches[-1].fault == "quota" and searches[-1].retry_after == "3600"
    track_log = spotify_log(sim, bucket="tracks")
    assert len(track_log) == len(tracks) and {e.status for e in track_log} == {200}
    assert {p: crawler.spider.statuses[p] for p in tracks} == dict.fromkeys(tracks, 200)

    # One park, one signal, with the time Spotify gave; never a release.
    assert stats["quota/parks"] == 1
    until = iso_epoch(stats["quota/parked_until/search"])
    assert until == pytest.approx(before + 3600, abs=60)
    assert [s[:4] for s in seen] == [("parked", "search", pytest.approx(until, abs=1),
                                      "QUOTA_EXCEEDED")]
    assert searches[-1].t <= seen[0][4] + TOLERANCE
    # Every search not answered 200 failed with QuotaParked: the 429 that started the park,
    # those queued in the slot when it began, those that came after. None was retried.
    answered = {p for p, s in crawler.spider.statuses.items() if s == 200}
    refused = set(search_paths(QUOTA_PATHS_SEARCHES)) - answered
    assert crawler.spider.failures == dict.fromkeys(refused, "QuotaParked")
    assert stats["quota/refused/search"] == len(refused) == QUOTA_PATHS_SEARCHES - 3
    assert "ratelimit/429" not in stats and "retry/count" not in stats
    # Counted: what reached Spotify (the 429 too), not what was refused unsent.
    assert stats["quota/requests/search"] == stats["quota/requests_today/search"] == 4
    counts, parks = ledger(tmp_path)
    assert counts == {"search": 4, "tracks": len(tracks)}
    assert parks["search"][1] == "QUOTA_EXCEEDED"
    assert utc_iso(parks["search"][0]) == stats["quota/parked_until/search"]

    # A second run on the same store never calls the parked bucket, and says so at once.
    mark = len(sim.requests())
    more_tracks = track_paths(sim, 4, start=8)
    seen = SignalLog()
    crawler, stats = await crawl(sim, tmp_path, search_paths(3) + more_tracks,
                                 prepare=seen.record, DOWNLOAD_SLOTS=one_slot())
    assert stats["finish_reason"] == "finished"
    assert stats.get("log_count/ERROR", 0) == 0
    assert spotify_log(sim, mark, bucket="search") == []
    assert [e.status for e in spotify_log(sim, mark, bucket="tracks")] == [200] * 4
    assert "quota/parks" not in stats                   # an existing park, not a new one
    assert stats["quota/refused/search"] == 3
    assert stats["quota/parked_until/search"] == utc_iso(parks["search"][0])
    assert [s[:4] for s in seen] == [("parked", "search", parks["search"][0],
                                      "QUOTA_EXCEEDED")]
    assert seen[0][4] <= sim.requests(mark)[0].t         # at spider_opened, before any request
    assert crawler.spider.statuses == dict.fromkeys(more_tracks, 200)
    assert crawler.spider.failures == dict.fromkeys(search_paths(3), "QuotaParked")
    assert stats["quota/requests_today/search"] == 4


@deferred_f_from_coro_f
async def test_quota_without_retry_after_parks_for_the_default(simulator_factory, tmp_path,
                                                              monkeypatch):
    sim = simulator_factory(quota={"search": 1}, quota_send_retry_after=False)
    use_credentials(monkeypatch, sim)
    before = time.time()
    _, stats = await crawl(sim, tmp_path, search_paths(3), DOWNLOAD_SLOTS=one_slot(),
                           QUOTA_PARK_DEFAULT=7200)
    assert stats["finish_reason"] == "finished"
    assert stats.get("log_count/ERROR", 0) == 0
    searches = spotify_log(sim, bucket="search")
    assert [(e.status, e.retry_after) for e in searches] == [(200, ""), (429, "")]
    assert iso_epoch(stats["quota/parked_until/search"]) == pytest.approx(before + 7200,
                                                                          abs=60)
    assert stats["quota/refused/search"] == 2


class HoldingProbe(ProbeSpider):
    """What the frontier does, reduced to the probe: a refused path is held and asked again
    when its bucket is released; the crawl stays open while something is held."""

    name = "holding_probe"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.held: list[str] = []

    @classmethod
    def from_crawler(cls, crawler, *args, **kwargs):
        spider = super().from_crawler(crawler, *args, **kwargs)
        crawler.signals.connect(spider.released, signal=project_signals.bucket_released)
        crawler.signals.connect(spider.idle, signal=__import__("scrapy").signals.spider_idle)
        return spider

    def failed(self, failure):
        if failure.check(IgnoreRequest) and type(failure.value).__name__ == "QuotaParked":
            self.held.append(failure.request.meta["path"])
        else:
            super().failed(failure)

    def released(self, bucket):
        base = self.settings["SPOTIFY_API_BASE_URL"]
        for path in self.held:
            self.crawler.engine.crawl(Request(base + path, callback=self.parse,
                                              errback=self.failed, meta={"path": path},
                                              dont_filter=True))
        self.held = []

    def idle(self):
        if self.held:
            raise DontCloseSpider


@deferred_f_from_coro_f
async def test_a_park_ends_with_bucket_released(simulator_factory, tmp_path, monkeypatch):
    """A 2 s park: nothing goes to the bucket before its end; then ``bucket_released`` comes
    (a timer, not a request), and what was held is answered."""
    sim = simulator_factory(quota={"search": 3}, quota_retry_after=2)
    use_credentials(monkeypatch, sim)
    paths, _ = mixed_paths(sim)
    seen = SignalLog()
    crawler, stats = await crawl(sim, tmp_path, paths,
                                 spider=HoldingProbe, prepare=seen.record,
                                 DOWNLOAD_SLOTS=one_slot())
    assert stats["finish_reason"] == "finished"
    assert stats.get("log_count/ERROR", 0) == 0
    assert crawler.spider.statuses == dict.fromkeys(paths, 200)
    searches = spotify_log(sim, bucket="search")
    ok = Counter(offset(e) for e in searches if e.status == 200)
    assert ok == Counter(10 * i for i in range(QUOTA_PATHS_SEARCHES))
    quota = [e for e in searches if e.status == 429]
    assert quota and all(e.fault == "quota" for e in quota)
    assert stats["quota/parks"] == len(quota)
    parked = [s for s in seen if s[0] == "parked"]
    released = [s for s in seen if s[0] == "released"]
    assert len(parked) == len(released) == len(quota)
    for e, park, release in zip(quota, parked, released, strict=True):
        _, bucket, until, reason, _ = park
        assert (bucket, reason) == ("search", "QUOTA_EXCEEDED")
        assert until == pytest.approx(e.t + float(e.retry_after), abs=0.1)
        assert release[1] == "search" and until <= release[2] <= until + 0.5
        early = [x for x in searches if e.t < x.t < until]
        assert not early, f"search sent {early[0].t - e.t:.3f} s into a park"
    assert ledger(tmp_path)[1] == {}                  # released parks leave the store


def budget_park_end(tmp_path, bucket: str) -> float:
    """When a budget parks ``bucket``: 25 hours after the first hour the ledger counts it in
    (every request of that hour has then left Spotify's rolling ~24 h window)."""
    with closing(Store.open(tmp_path / "store.sqlite")) as store:
        first = min(hour for hour, n in store.quota_hours_since(0)[bucket].items() if n > 0)
    return float((first + BUDGET_WINDOW_HOURS) * 3600)


@deferred_f_from_coro_f
async def test_a_daily_budget_parks_until_its_hours_leave_the_window(simulator_factory,
                                                                     tmp_path, monkeypatch):
    sim = simulator_factory()
    use_credentials(monkeypatch, sim)
    paths, tracks = mixed_paths(sim)
    seen = SignalLog()
    _, stats = await crawl(sim, tmp_path, paths,
                           prepare=seen.record, SPOTIFY_DAILY_BUDGET={"search": 2})
    assert stats["finish_reason"] == "finished"
    assert stats.get("log_count/ERROR", 0) == 0
    assert [e.status for e in spotify_log(sim, bucket="search")] == [200, 200]
    assert stats["quota/requests_today/search"] == stats["quota/requests/search"] == 2
    until = budget_park_end(tmp_path, "search")
    assert until - clock.now() > 23 * 3600          # not the next UTC midnight
    assert stats["quota/parked_until/search"] == utc_iso(until)
    assert stats["quota/refused/search"] == QUOTA_PATHS_SEARCHES - 2
    assert stats["quota/parks"] == 1
    assert [s[:4] for s in seen] == [("parked", "search", until, "daily budget")]
    assert [e.status for e in spotify_log(sim, bucket="tracks")] == [200] * len(tracks)
    assert ledger(tmp_path)[1] == {"search": (until, "daily budget")}


@deferred_f_from_coro_f
async def test_a_daily_budget_spent_before_midnight_is_not_spent_again_after_it(
        simulator_factory, tmp_path, monkeypatch):
    """Spotify counts a rolling ~24 h window: a budget per UTC day would let a run at 23:30
    and one at 00:30 each spend it, twice the budget in Spotify's window."""
    sim = simulator_factory()
    use_credentials(monkeypatch, sim)
    paths, _ = mixed_paths(sim)
    midnight = (int(time.time() // 86_400) + 1) * 86_400
    clock.set_offset(midnight - 1800 - time.time())             # 23:30 UTC
    _, first = await crawl(sim, tmp_path, paths, SPOTIFY_DAILY_BUDGET={"search": 10})
    assert first["quota/requests/search"] == QUOTA_PATHS_SEARCHES and "quota/parks" not in first
    clock.set_offset(midnight + 1800 - time.time())             # 00:30 UTC, a new UTC day
    before = len(spotify_log(sim, bucket="search"))
    _, second = await crawl(sim, tmp_path, paths, SPOTIFY_DAILY_BUDGET={"search": 10})
    assert second["finish_reason"] == "finished"
    assert second.get("log_count/ERROR", 0) == 0
    # What the window had left: 10 - 8 searches, then parked until 23:00 + 25 h (the hour of
    # the first run's searches has then left the window), not until the next midnight.
    assert len(spotify_log(sim, bucket="search")) - before == 2
    assert second["quota/requests/search"] == 2
    assert second["quota/refused/search"] == QUOTA_PATHS_SEARCHES - 2
    assert ledger(tmp_path)[1] == {"search": (midnight - 3600 + 25 * 3600, "daily budget")}


def test_a_budget_frees_once_enough_of_its_oldest_hours_have_left_the_window(tmp_path):
    hour = 1_000_000
    now = hour * 3600 + 120.0
    # 3 requests 24 h ago, 5 an hour later, 2 now: a budget of 10 frees when the first hour
    # leaves (7 left), one of 6 when the second does too (2 left).
    # The window is the current hour and the 24 before it, as the store counts it; hour - 25
    # has left it, and an hour ahead of the clock (the clock went back) is not in it yet.
    hours = {hour - 30: 9, hour - 25: 4, hour - 24: 3, hour - 23: 5, hour: 2, hour + 1: 7}
    assert budget_window(hours, now) == {hour - 24: 3, hour - 23: 5, hour: 2}
    with closing(Store.open(tmp_path / "store.sqlite")) as store, store.transaction():
        for h, n in hours.items():
            store.add_quota_hour(h, "search", n)
        assert store.quota_window_use(now, hours=BUDGET_WINDOW_HOURS) == {"search": 10}
    past = {h: n for h, n in hours.items() if h <= hour}
    for budget, release in ((10, hour + 1), (6, hour + 2)):
        at = budget_release(hours, budget, now)
        assert at == release * 3600
        # Free at that instant, not a moment before (with no request sent meanwhile).
        assert sum(budget_window(past, at).values()) < budget \
            <= sum(budget_window(past, at - 0.001).values())
    assert budget_release(hours, 0, now) == now + 86_400         # never: checked again daily


def test_a_count_taken_back_comes_off_the_hour_it_went_to(tmp_path, monkeypatch):
    """A request counted at 10:59:59 and refused before it went out at 11:00 frees the
    budget it took in hour 10, not in hour 11."""
    store = Store.open(tmp_path / "store.sqlite")
    monkeypatch.setattr(quota_middleware, "crawler_store", lambda crawler: store)
    crawler = get_crawler(settings_dict={"SPOTIFY_DAILY_BUDGET": {"search": 2}})
    crawler.stats.open_spider()
    middleware = quota_middleware.QuotaMiddleware.from_crawler(crawler)
    ten = 1_000_010 * 3600.0
    now = {"t": ten + 3599.5}
    monkeypatch.setattr(clock, "now", lambda: now["t"])
    try:
        def search() -> Request:
            return Request("https://api.spotify.com/v1/search", meta={"spotify_bucket": "search"})
        first = search()
        middleware.process_request(first)
        now["t"] = ten + 3600.5
        middleware.process_exception(first, IgnoreRequest())        # never sent
        for _ in range(2):                     # the budget is whole again: two go out
            middleware.process_request(search())
        assert middleware.budget_use("search", now["t"]) == 2
        assert store.quota_hours_since(0) == {"search": {1_000_010: 0, 1_000_011: 2}}
        assert "quota/parks" not in crawler.stats.get_stats()
    finally:
        store.close()


@deferred_f_from_coro_f
async def test_parks_and_budgets_need_no_retry_middleware(simulator_factory, tmp_path,
                                                          monkeypatch):
    sim = simulator_factory(quota={"search": 2}, quota_retry_after=3600)
    use_credentials(monkeypatch, sim)
    paths, tracks = mixed_paths(sim)
    crawler, stats = await crawl(sim, tmp_path, paths, RETRY_ENABLED=False,
                                 DOWNLOAD_SLOTS=one_slot(), SPOTIFY_DAILY_BUDGET={"tracks": 5})
    assert stats["finish_reason"] == "finished"
    assert stats.get("log_count/ERROR", 0) == 0
    assert [e.status for e in spotify_log(sim, bucket="search")] == [200, 200, 429]
    assert [e.status for e in spotify_log(sim, bucket="tracks")] == [200] * 5
    assert stats["quota/parks"] == 2
    assert stats["quota/refused/search"] == QUOTA_PATHS_SEARCHES - 2
    assert stats["quota/refused/tracks"] == len(tracks) - 5
    assert set(ledger(tmp_path)[1]) == {"search", "tracks"}
    assert set(crawler.spider.failures.values()) == {"QuotaParked"}
    assert crawler.spider.with_token == []         # the refused 429's request too


class AwaitsFirst:
    """An async downloader middleware that keeps each request a while, as auth does while it
    fetches a token: requests wait in it while the quota 429 arrives."""

    async def process_request(self, request):
        await sleep(0.02)


@deferred_f_from_coro_f
async def test_no_request_that_waited_in_a_middleware_goes_into_a_park(
        simulator_factory, tmp_path, monkeypatch):
    """The quota check is the last step before the download slot: requests that were waiting
    in an earlier middleware when the park began are refused, not sent (before the check came
    after auth, two more searches went out into the park here, and on CI now and then)."""
    sim = simulator_factory(quota={"search": 2}, quota_retry_after=3600)
    use_credentials(monkeypatch, sim)
    paths, tracks = mixed_paths(sim)
    middlewares = {**project_settings()["DOWNLOADER_MIDDLEWARES"],
                   f"{__name__}.AwaitsFirst": 600}
    crawler, stats = await crawl(sim, tmp_path, paths, DOWNLOADER_MIDDLEWARES=middlewares,
                                 DOWNLOAD_SLOTS=one_slot())
    assert stats["finish_reason"] == "finished"
    assert stats.get("log_count/ERROR", 0) == 0
    assert [e.status for e in spotify_log(sim, bucket="search")] == [200, 200, 429]
    assert stats["quota/requests/search"] == 3
    assert stats["quota/refused/search"] == QUOTA_PATHS_SEARCHES - 2
    assert [e.status for e in spotify_log(sim, bucket="tracks")] == [200] * len(tracks)
    assert crawler.spider.with_token == []


class DirectFetchSpider(Spider):
    """Fetches ReccoBeats through ``engine.download_async``, as the enrichment pipeline does."""

    name = "direct_fetch"

    def __init__(self, paths: list[str] | None = None, **kwargs):
        super().__init__(**kwargs)
        self.ids = list(paths or [])
        self.outcomes: list[int | str] = []

    async def start(self):
        base = self.settings["RECCOBEATS_BASE_URL"]
        for track_id in self.ids:
            request = Request(f"{base}/audio-features?ids={track_id}", callback=NO_CALLBACK,
                              dont_filter=True)
            try:
                response = await self.crawler.engine.download_async(request)
            except IgnoreRequest as exc:
                self.outcomes.append(type(exc).__name__)
            else:
                self.outcomes.append(response.status)
        return
        yield  # an async generator with nothing for the scheduler


@deferred_f_from_coro_f
async def test_a_park_refuses_direct_downloads(simulator_factory, tmp_path, monkeypatch):
    # Every ReccoBeats answer is a 429 with Retry-After 1-3 s, above RATE_LIMIT_MAX_WAIT here:
    # the first parks the bucket. engine.download_async callers get the IgnoreRequest.
    sim = simulator_factory(recco_429_rate=1.0)
    use_credentials(monkeypatch, sim)
    ids = [t.id for t in sim.catalog.tracks[:4]]
    crawler, stats = await crawl(sim, tmp_path, ids, DirectFetchSpider, RATE_LIMIT_MAX_WAIT=0.5)
    assert stats["finish_reason"] == "finished"
    assert stats.get("log_count/ERROR", 0) == 0
    assert crawler.spider.outcomes == ["QuotaParked"] * 4
    assert [e.status for e in sim.requests(service="reccobeats")] == [429]
    assert stats["quota/parks"] == 1 and stats["quota/refused/reccobeats"] == 4
    assert stats["quota/requests/reccobeats"] == 1


# ---------------------------------------------------------------------------- daily counts
@deferred_f_from_coro_f
async def test_daily_counts_add_up_across_runs(simulator_factory, tmp_path, monkeypatch):
    sim = simulator_factory()
    use_credentials(monkeypatch, sim)
    _, first = await crawl(sim, tmp_path, track_paths(sim, 7))
    _, second = await crawl(sim, tmp_path, track_paths(sim, 5, start=7) + search_paths(2))
    for stats in (first, second):
        assert stats["finish_reason"] == "finished"
        assert stats.get("log_count/ERROR", 0) == 0
    assert first["quota/requests/tracks"] == 7
    assert second["quota/requests/tracks"] == 5
    assert second["quota/requests/search"] == 2
    assert first["quota/requests_today/tracks"] == 7
    assert second["quota/requests_today/tracks"] == 12
    assert second["quota/requests_today/search"] == 2
    assert len(spotify_log(sim, bucket="tracks")) == 12
    assert ledger(tmp_path) == ({"search": 2, "tracks": 12}, {})


# ---------------------------------------------------------------------------- counted once
# A request is counted against its bucket's day as it goes out, and taken back only if that
# same attempt is refused before it is sent. Copies of a counted request (a retry, the same
# page planned again) go out, or not, on their own: refusing one must not take back the count
# of the attempt it was copied from. The ledger must always equal what reached Spotify.
@deferred_f_from_coro_f
async def test_refusals_never_take_back_a_sent_requests_count(simulator_factory, tmp_path,
                                                              monkeypatch):
    sim = simulator_factory(quota={"search": 3}, quota_retry_after=2)
    use_credentials(monkeypatch, sim)
    settings = {"DOWNLOAD_SLOTS": one_slot(), "JOBDIR": str(tmp_path / "job")}
    paths = search_paths(5)
    crawler, first = await crawl(sim, tmp_path, paths, **settings)
    assert first["finish_reason"] == "finished"
    assert first.get("log_count/ERROR", 0) == 0
    sent = spotify_log(sim, bucket="search")
    assert [e.status for e in sent] == [200, 200, 200, 429]
    # The 429'd search (counted: Spotify saw it) is among those refused.
    assert first["quota/refused/search"] == 2
    assert first["quota/requests_today/search"] == ledger(tmp_path)[0]["search"] == len(sent)
    until = ledger(tmp_path)[1]["search"][0]

    # Next run, bucket still parked: the two unanswered searches, planned again, are refused
    # before they are sent, and take nothing back from the count. Nothing was kept for them.
    assert not any((tmp_path / "job").rglob("*.pickle"))
    settings.pop("JOBDIR")      # ProbeSpider's own dupefilter there would skip the two paths
    _, second = await crawl(sim, tmp_path, paths[3:], **settings)
    assert second["finish_reason"] == "finished"
    assert second.get("log_count/ERROR", 0) == 0
    assert spotify_log(sim, bucket="search") == sent
    assert second["quota/refused/search"] == 2
    assert second.get("quota/requests/search", 0) == 0
    assert second["quota/requests_today/search"] == ledger(tmp_path)[0]["search"] == len(sent)

    # After the park, the same two go out, and are counted once each.
    await sleep(max(0.0, until - time.time()) + 0.1)
    mark = len(sim.requests())
    crawler, third = await crawl(sim, tmp_path, paths[3:], **settings)
    assert third["finish_reason"] == "finished"
    assert crawler.spider.statuses == dict.fromkeys(paths[3:], 200)
    assert [e.status for e in spotify_log(sim, mark, bucket="search")] == [200, 200]
    assert third["quota/requests/search"] == 2
    total = len(spotify_log(sim, bucket="search"))
    assert third["quota/requests_today/search"] == ledger(tmp_path)[0]["search"] == total


# ---------------------------------------------------------------------------- upgrade
def legacy_state(until: float) -> dict:
    today = utc_day(time.time())
    return {"days": {"2026-01-01": {"search": 9}, today: {"search": 40, "tracks": 3}},
            "parks": {"search": {"until": until, "reason": "QUOTA_EXCEEDED"}}}


@deferred_f_from_coro_f
async def test_the_json_ledger_of_earlier_versions_is_imported_once(simulator_factory,
                                                                    tmp_path, monkeypatch):
    """A park recorded by a version before the store ledger is not lost on upgrade."""
    sim = simulator_factory()
    use_credentials(monkeypatch, sim)
    until = time.time() + 3600
    legacy = tmp_path / "quota_state.json"               # beside the store
    legacy.write_text(json.dumps(legacy_state(until)))
    seen = SignalLog()
    _, stats = await crawl(sim, tmp_path, search_paths(2) + track_paths(sim, 2),
                           prepare=seen.record)
    assert stats["finish_reason"] == "finished"
    assert stats.get("log_count/ERROR", 0) == 0
    assert spotify_log(sim, bucket="search") == []
    assert stats["quota/refused/search"] == 2
    assert [s[:4] for s in seen] == [("parked", "search", until, "QUOTA_EXCEEDED")]
    assert stats["quota/requests_today/tracks"] == 3 + 2
    assert not legacy.exists()
    assert json.loads((tmp_path / "quota_state.json.imported").read_text()) \
        == legacy_state(until)
    with closing(Store.open(tmp_path / "store.sqlite")) as store:
        assert store.quota_requests("2026-01-01") == {"search": 9}
    # Once: a file that appears again beside a store with a ledger is left alone.
    legacy.write_text(json.dumps(legacy_state(until + 7200)))
    _, stats = await crawl(sim, tmp_path, track_paths(sim, 1, start=2))
    assert stats["quota/requests_today/tracks"] == 3 + 2 + 1
    assert legacy.exists()
    assert ledger(tmp_path)[1]["search"][0] == until


@deferred_f_from_coro_f
async def test_an_unreadable_json_ledger_is_left_alone(simulator_factory, tmp_path,
                                                       monkeypatch, caplog):
    sim = simulator_factory()
    use_credentials(monkeypatch, sim)
    legacy = tmp_path / "quota_state.json"
    legacy.write_text("{not json")
    _, stats = await crawl(sim, tmp_path, track_paths(sim, 1))
    assert stats["finish_reason"] == "finished"
    assert "is not a quota ledger this version can read" in caplog.text
    assert legacy.read_text() == "{not json"
    assert ledger(tmp_path) == ({"tracks": 1}, {})


def test_the_default_json_ledger_is_imported_only_into_the_store_beside_it(
        tmp_path, monkeypatch):
    """``.cache/quota_state.json`` sat beside the default store ``.cache/catalog.sqlite``:
    that store takes it; another store under the working directory (the demo's
    ``.cache/demo/catalog.sqlite``, run first after an upgrade, say) never does, or the real
    crawl would lose its park and call a locked bucket."""
    monkeypatch.chdir(tmp_path)
    legacy = tmp_path / ".cache" / "quota_state.json"
    legacy.parent.mkdir()
    until = time.time() + 3600
    legacy.write_text(json.dumps(legacy_state(until)))
    with closing(Store.open(tmp_path / ".cache" / "demo" / "catalog.sqlite")) as store:
        import_legacy_ledger(store)
        assert not store.has_quota_rows()
    assert legacy.exists()
    with closing(Store.open(tmp_path / ".cache" / "catalog.sqlite")) as store:
        import_legacy_ledger(store)
        assert store.quota_parks() == {"search": (until, "QUOTA_EXCEEDED")}
        assert store.quota_requests(utc_day(time.time())) == {"search": 40, "tracks": 3}
        # A budget counts hours: today's requests are in its window (2026-01-01's are not).
        assert store.quota_window_use(time.time(), hours=BUDGET_WINDOW_HOURS) \
            == {"search": 40, "tracks": 3}
    assert not legacy.exists() and legacy.with_name("quota_state.json.imported").exists()


@deferred_f_from_coro_f
async def test_a_budget_counts_what_the_json_ledger_spent(simulator_factory, tmp_path,
                                                          monkeypatch):
    """The JSON ledger counted by UTC day, a budget counts hours: after the upgrade, the 3
    track requests it holds for today still count against a budget of 5."""
    sim = simulator_factory()
    use_credentials(monkeypatch, sim)
    state = legacy_state(time.time() + 3600)
    state["parks"] = {}
    (tmp_path / "quota_state.json").write_text(json.dumps(state))
    _, stats = await crawl(sim, tmp_path, track_paths(sim, 4), DOWNLOAD_SLOTS=one_slot(),
                           SPOTIFY_DAILY_BUDGET={"tracks": 5})
    assert stats["finish_reason"] == "finished"
    assert stats.get("log_count/ERROR", 0) == 0
    assert len(spotify_log(sim, bucket="tracks")) == 2
    assert stats["quota/refused/tracks"] == 2
    assert stats["quota/requests_today/tracks"] == 3 + 2


def test_the_removed_quota_state_file_setting_is_refused_with_one_line():
    from scrapy.settings import Settings  # noqa: PLC0415

    import runclub_spiders.settings as project  # noqa: PLC0415
    from runclub_spiders.commands.crawl import ConfigError, preflight  # noqa: PLC0415

    settings = Settings({"SPOTIFY_MARKET": "US", "SPOTIFY_API_PROFILE": "development",
                         "QUOTA_STATE_FILE": ".cache/quota_state.json"})
    with pytest.raises(ConfigError) as refused:
        preflight(settings)
    message = str(refused.value)
    assert message.startswith("QUOTA_STATE_FILE is no longer used: the quota ledger now lives "
                              "in the store at CATALOG_STORE_PATH")
    assert "\n" not in message
    assert not hasattr(project, "QUOTA_STATE_FILE")


def test_a_store_from_before_the_ledger_opens_with_it(tmp_path):
    path = tmp_path / "store.sqlite"
    with closing(Store.open(path)) as store:
        store.set_meta("kept", 1)
        store.db.execute("DROP TABLE quota_days")
        store.db.execute("DROP TABLE quota_parks")
    Store.check(path)
    with closing(Store.open(path)) as store:
        assert store.get_meta("kept") == 1
        assert not store.has_quota_rows()
        store.add_quota_requests("2026-01-01", "search", -1)     # never below zero
        store.add_quota_requests("2026-01-01", "search", 2)
        store.add_quota_requests("2026-01-01", "search", -1)
        assert store.quota_requests("2026-01-01") == {"search": 1}


# ---------------------------------------------------------------------------- learned size
def learned_ledger(tmp_path) -> tuple[dict, dict[str, int], dict[str, int]]:
    """The learned sizes, the rolling-window use and today's counts, as the store holds them."""
    with closing(Store.open(tmp_path / "store.sqlite")) as store:
        now = time.time()
        return (store.learned_quota(), store.quota_window_use(now),
                store.quota_requests(utc_day(now)))


@pytest.mark.parametrize("slots", ["one", "default"])
@deferred_f_from_coro_f
async def test_quota_exceeded_teaches_the_bucket_size(simulator_factory, tmp_path, monkeypatch,
                                                      slots):
    """Spotify served 3 searches and refused the 4th: the size learnt is 3 (the refused one,
    and those sent after it, are not part of what it served), with its Retry-After."""
    sim = simulator_factory(quota={"search": 3}, quota_retry_after=3600)
    use_credentials(monkeypatch, sim)
    paths, tracks = mixed_paths(sim)
    settings = {"DOWNLOAD_SLOTS": one_slot()} if slots == "one" else {}
    before = time.time()
    _, stats = await crawl(sim, tmp_path, paths, **settings)
    assert stats["finish_reason"] == "finished"
    assert stats.get("log_count/ERROR", 0) == 0
    sent = spotify_log(sim, bucket="search")
    assert [e.status for e in sent][:3] == [200, 200, 200]
    assert {e.status for e in sent[3:]} == {429}
    learned, window, today = learned_ledger(tmp_path)
    # One in flight: exactly what Spotify served. Two (the default slot): a search sent just
    # before the refused one and refused too, still unanswered when the first refusal came,
    # counts as served, so the size can be one over.
    sizes = {3} if slots == "one" else {3, 4}
    assert learned.keys() == {"search"} and learned["search"][0] in sizes
    assert learned["search"][1:] == (3600.0, pytest.approx(before, abs=60))
    assert stats["quota/learned/search"] == learned["search"][0]
    assert "quota/learned/tracks" not in stats
    # The hours hold what the days hold: what reached Spotify, refusals taken back.
    assert window == today == {"search": len(sent), "tracks": len(tracks)}

    # A later run on the parked bucket sends nothing to it and learns nothing new.
    _, stats = await crawl(sim, tmp_path, search_paths(2), **settings)
    assert stats["quota/refused/search"] == 2
    assert learned_ledger(tmp_path)[0] == learned
    assert stats["quota/learned/search"] == learned["search"][0]


@deferred_f_from_coro_f
async def test_our_own_budget_teaches_nothing_a_quota_exceeded_without_header_does(
        simulator_factory, tmp_path, monkeypatch):
    sim = simulator_factory(quota={"search": 1}, quota_send_retry_after=False)
    use_credentials(monkeypatch, sim)
    paths, _ = mixed_paths(sim)
    _, stats = await crawl(sim, tmp_path, paths, DOWNLOAD_SLOTS=one_slot(),
                           SPOTIFY_DAILY_BUDGET={"tracks": 2})
    assert stats["finish_reason"] == "finished"
    assert stats["quota/parks"] == 2
    learned, window, today = learned_ledger(tmp_path)
    # search: QUOTA_EXCEEDED without Retry-After still teaches (retry_after NULL);
    # tracks: parked by our own budget, which says nothing of Spotify's size.
    assert learned == {"search": (1, None, pytest.approx(time.time(), abs=60))}
    assert window == today == {"search": len(spotify_log(sim, bucket="search")), "tracks": 2}
    assert stats["quota/learned/search"] == 1 and "quota/learned/tracks" not in stats

