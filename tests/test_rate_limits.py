"""Rate limits, quota parks and retries against the simulator.

Each crawl runs through Scrapy's real downloader on the asyncio reactor against the simulator
on loopback, and asserts the close reason, the error-log count, the stats and what the
simulator's request log shows reached it (and when).
"""

from __future__ import annotations

import itertools
import json
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime
from email.utils import format_datetime
from urllib.parse import urlsplit

import pytest
from scrapy import Request, Spider, signals
from scrapy.core.downloader import Slot
from scrapy.exceptions import IgnoreRequest
from scrapy.http import TextResponse
from scrapy.http.request import NO_CALLBACK
from scrapy.utils.asyncio import sleep
from scrapy.utils.defer import deferred_f_from_coro_f
from scrapy.utils.test import get_crawler

import runclub_spiders.settings as project
from runclub_spiders import scrapy_compat
from runclub_spiders.downloadermiddlewares.rate_limit import (
    RATE_LIMIT_RETRIES,
    RateLimitMiddleware,
    parse_retry_after,
)
from runclub_spiders.quota import next_utc_midnight, utc_iso
from tests.conftest import crawl_settings, use_credentials
from tests.spiders import ProbeSpider

TOLERANCE = 0.05          # seconds: the simulator's and Scrapy's clocks are the same clock


def track_paths(sim, n: int, start: int = 0) -> list[str]:
    return [f"/tracks/{t.id}" for t in sim.catalog.tracks[start:start + n]]


def search_paths(n: int) -> list[str]:
    return [f"/search?q=rock&type=track&limit=10&offset={10 * i}" for i in range(n)]


def one_slot():
    """Spotify's slot with one request in flight, so the log shows exactly what was sent.

    The small delay is needed: with ``delay`` 0, Scrapy 2.19's downloader hands every queued
    request to the network in one go (``Slot.transferring`` is only filled once each download
    task starts), so ``concurrency`` is not enforced.
    """
    return {"api.spotify.com": {"concurrency": 1, "delay": 0.001, "jitter": 0},
            "accounts.spotify.com": {"concurrency": 1, "delay": 0.0},
            "api.reccobeats.com": {"concurrency": 2, "delay": 0.0}}


async def crawl(sim, tmp_path, paths, **settings):
    crawler = get_crawler(ProbeSpider, crawl_settings(sim, tmp_path, **settings))
    await crawler.crawl_async(paths=paths)
    return crawler, crawler.stats.get_stats()


def spotify_log(sim, since: int = 0, bucket: str | None = None):
    return [e for e in sim.requests(since, service="spotify")
            if bucket is None or e.bucket == bucket]


def offset(entry) -> int:
    return int(dict(p.split("=") for p in entry.query.split("&"))["offset"])


# ---------------------------------------------------------------------------- short 429s
@deferred_f_from_coro_f
async def test_retry_after_pauses_the_slot(simulator_factory, tmp_path, monkeypatch):
    sim = simulator_factory(rate_limit=4, rate_window=2)
    use_credentials(monkeypatch, sim)
    paths = track_paths(sim, 12)
    crawler, stats = await crawl(sim, tmp_path, paths, DOWNLOAD_SLOTS=one_slot())
    assert stats["finish_reason"] == "finished"
    assert stats.get("log_count/ERROR", 0) == 0
    assert crawler.spider.statuses == dict.fromkeys(paths, 200)
    assert not crawler.spider.failures
    log = spotify_log(sim)
    limited = [e for e in log if e.status == 429]
    assert limited, "the rate window never filled: the test proves nothing"
    assert stats["ratelimit/429"] == len(limited)
    assert stats["ratelimit/waited_seconds"] == sum(float(e.retry_after) for e in limited)
    assert "ratelimit/gave_up" not in stats
    for e in limited:
        wait = float(e.retry_after)
        assert 1 <= wait <= 5
        early = [x for x in log if e.t < x.t < e.t + wait - TOLERANCE]
        assert not early, f"sent {early[0].t - e.t:.3f} s into a {wait:.0f} s Retry-After"
    # Everything else was 200, once per path.
    prefix = urlsplit(sim.spotify_api_base_url).path
    assert sorted(e.path for e in log if e.status == 200) == sorted(prefix + p for p in paths)


# ---------------------------------------------------------------------------- unit: parsing
def test_parse_retry_after_forms():
    now = time.time()
    assert parse_retry_after("7", now) == 7.0
    assert parse_retry_after(b" 2.5 ", now) == 2.5
    assert parse_retry_after("0", now) == 0.0
    assert parse_retry_after("-3", now) == 0.0                      # never negative
    assert parse_retry_after(None, now) is None
    assert parse_retry_after("", now) is None
    assert parse_retry_after("   ", now) is None
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(b"\xff\xfe", now) is None
    in_90 = format_datetime(datetime.fromtimestamp(now + 90, UTC), usegmt=True)
    assert parse_retry_after(in_90, now) == pytest.approx(90, abs=1.01)
    past = format_datetime(datetime.fromtimestamp(now - 90, UTC), usegmt=True)
    assert parse_retry_after(past, now) == 0.0


def unit_middleware(tmp_path) -> RateLimitMiddleware:
    settings = {k: v for k, v in vars(project).items() if k.isupper()}
    settings.update(RATE_LIMIT_BACKOFF_BASE=0.5, RATE_LIMIT_BACKOFF_MAX=3.0, SPIDER_MODULES=[],
                    QUOTA_STATE_FILE=str(tmp_path / "q.json"))
    return RateLimitMiddleware(get_crawler(Spider, settings))


def test_backoff_bounds(tmp_path):
    middleware = unit_middleware(tmp_path)
    for attempt, ceiling in ((1, 0.5), (2, 1.0), (3, 2.0), (4, 3.0), (10, 3.0), (60, 3.0)):
        draws = [middleware._backoff(attempt) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in draws), attempt
        assert max(draws) - min(draws) > ceiling / 10              # jittered, not fixed


def test_429_without_retry_after_backs_off(tmp_path):
    """The simulator's 429s always carry Retry-After, so this path is driven directly."""
    middleware = unit_middleware(tmp_path)
    crawler = middleware.crawler
    slot = Slot(concurrency=1, delay=0.0, jitter=0.0)
    crawler.engine = type("Engine", (), {"downloader": type("Downloader", (), {
        "slots": {"api.reccobeats.com": slot},
        "get_slot_key": staticmethod(lambda request: request.meta["download_slot"])})})
    crawler.stats.open_spider()
    request = Request("https://api.reccobeats.com/v1/audio-features?ids=x",
                      meta={"download_slot": "api.reccobeats.com", "spotify_bucket": "reccobeats"})
    for attempt, ceiling in ((1, 0.5), (2, 1.0), (3, 2.0), (4, 3.0)):
        response = TextResponse(request.url, status=429, body=b"Too Many Requests",
                                request=request)
        before = time.monotonic()
        middleware.response_downloaded(response, request)       # what the downloader sends
        retry = middleware.process_response(request, response)
        assert isinstance(retry, Request) and retry.dont_filter
        assert retry.meta[RATE_LIMIT_RETRIES] == attempt
        paused = slot.lastseen - before
        assert ceiling / 2 - 0.01 <= paused <= ceiling + 0.01, (attempt, paused)
        assert slot.delay > 0                       # the pause applies to a delay-less slot
        slot.lastseen = 0.0
        request = retry
    assert crawler.stats.get_value("ratelimit/429") == 4
    assert "quota/parks" not in crawler.stats.get_stats()


# ---------------------------------------------------------------------------- quota parks
QUOTA_PATHS_SEARCHES = 8


def mixed_paths(sim) -> tuple[list[str], list[str]]:
    searches, tracks = search_paths(QUOTA_PATHS_SEARCHES), track_paths(sim, 8)
    mixed = [p for pair in zip(searches, tracks, strict=True) for p in pair]
    return mixed, tracks


@deferred_f_from_coro_f
async def test_quota_exceeded_parks_the_bucket_across_runs(simulator_factory, tmp_path,
                                                           monkeypatch):
    sim = simulator_factory(quota={"search": 3}, quota_retry_after=3600)
    use_credentials(monkeypatch, sim)
    paths, tracks = mixed_paths(sim)
    before = time.time()
    crawler, stats = await crawl(sim, tmp_path, paths, DOWNLOAD_SLOTS=one_slot())
    assert stats["finish_reason"] == "quota_parked"
    assert stats.get("log_count/ERROR", 0) == 0

    searches = spotify_log(sim, bucket="search")
    assert [e.status for e in searches] == [200, 200, 200, 429]
    assert searches[-1].fault == "quota" and searches[-1].retry_after == "3600"
    track_log = spotify_log(sim, bucket="tracks")
    assert len(track_log) == len(tracks) and {e.status for e in track_log} == {200}
    assert {p: crawler.spider.statuses[p] for p in tracks} == dict.fromkeys(tracks, 200)

    assert stats["quota/parks"] == 1
    unsent = QUOTA_PATHS_SEARCHES - len(searches)
    assert stats["quota/set_aside/search"] == unsent + 1
    until = datetime.strptime(stats["quota/parked_until/search"], "%Y-%m-%dT%H:%M:%SZ")
    assert until.replace(tzinfo=UTC).timestamp() == pytest.approx(before + 3600, abs=60)
    # Searches already queued in the slot when the park began were set aside, not sent, and
    # are not counted against the day.
    assert stats["quota/requests/search"] == stats["quota/requests_today/search"] == 4
    # The set-aside searches failed with IgnoreRequest; nothing else failed.
    assert set(crawler.spider.failures) == set(search_paths(QUOTA_PATHS_SEARCHES)) - {
        p for p, s in crawler.spider.statuses.items() if s == 200}

    state = json.loads((tmp_path / "cache" / "quota_state.json").read_text())
    assert state["parks"]["search"]["reason"] == "QUOTA_EXCEEDED"
    assert utc_iso(state["parks"]["search"]["until"]) == stats["quota/parked_until/search"]

    # A second run with the same state file never calls the parked bucket.
    mark = len(sim.requests())
    more_tracks = track_paths(sim, 4, start=8)
    crawler, stats = await crawl(sim, tmp_path, search_paths(3) + more_tracks,
                                 DOWNLOAD_SLOTS=one_slot())
    assert stats["finish_reason"] == "quota_parked"
    assert stats.get("log_count/ERROR", 0) == 0
    assert spotify_log(sim, mark, bucket="search") == []
    assert [e.status for e in spotify_log(sim, mark, bucket="tracks")] == [200] * 4
    assert "quota/parks" not in stats                   # an existing park, not a new one
    assert stats["quota/set_aside/search"] == 3
    assert crawler.spider.statuses == dict.fromkeys(more_tracks, 200)


@deferred_f_from_coro_f
async def test_quota_without_retry_after_parks_for_the_default(simulator_factory, tmp_path,
                                                              monkeypatch):
    sim = simulator_factory(quota={"search": 1}, quota_send_retry_after=False)
    use_credentials(monkeypatch, sim)
    before = time.time()
    _, stats = await crawl(sim, tmp_path, search_paths(3), DOWNLOAD_SLOTS=one_slot(),
                           QUOTA_PARK_DEFAULT=7200)
    assert stats["finish_reason"] == "quota_parked"
    assert stats.get("log_count/ERROR", 0) == 0
    searches = spotify_log(sim, bucket="search")
    assert [(e.status, e.retry_after) for e in searches] == [(200, ""), (429, "")]
    until = datetime.strptime(stats["quota/parked_until/search"], "%Y-%m-%dT%H:%M:%SZ")
    assert until.replace(tzinfo=UTC).timestamp() == pytest.approx(before + 7200, abs=60)


@deferred_f_from_coro_f
async def test_short_park_waits_in_process(simulator_factory, tmp_path, monkeypatch):
    sim = simulator_factory(quota={"search": 3}, quota_retry_after=2)
    use_credentials(monkeypatch, sim)
    paths, _ = mixed_paths(sim)
    crawler, stats = await crawl(sim, tmp_path, paths, QUOTA_PARK_IDLE_WAIT=10,
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
    for e in quota:
        wait = float(e.retry_after)
        early = [x for x in searches if e.t < x.t < e.t + wait - TOLERANCE]
        assert not early, f"search sent {early[0].t - e.t:.3f} s into a {wait:.0f} s park"


@deferred_f_from_coro_f
async def test_daily_budget_parks_until_utc_midnight(simulator_factory, tmp_path, monkeypatch):
    sim = simulator_factory()
    use_credentials(monkeypatch, sim)
    paths, tracks = mixed_paths(sim)
    _, stats = await crawl(sim, tmp_path, paths, SPOTIFY_DAILY_BUDGET={"search": 2})
    assert stats["finish_reason"] == "quota_parked"
    assert stats.get("log_count/ERROR", 0) == 0
    searches = spotify_log(sim, bucket="search")
    assert [e.status for e in searches] == [200, 200]
    assert stats["quota/requests_today/search"] == 2
    assert stats["quota/requests/search"] == 2
    assert stats["quota/parked_until/search"] == utc_iso(next_utc_midnight(time.time()))
    assert stats["quota/set_aside/search"] == QUOTA_PATHS_SEARCHES - 2
    assert stats["quota/parks"] == 1
    assert [e.status for e in spotify_log(sim, bucket="tracks")] == [200] * len(tracks)
    state = json.loads((tmp_path / "cache" / "quota_state.json").read_text())
    assert state["parks"]["search"]["reason"] == "daily budget"


class DirectFetchSpider(Spider):
    """Fetches ReccoBeats through ``engine.download_async``, as the enrichment pipeline does."""

    name = "direct_fetch"

    def __init__(self, ids: list[str] | None = None, **kwargs):
        super().__init__(**kwargs)
        self.ids = list(ids or [])
        self.outcomes: list[int | str] = []

    async def start(self):
        base = self.settings["RECCOBEATS_BASE_URL"]
        for track_id in self.ids:
            request = Request(f"{base}/audio-features?ids={track_id}", callback=NO_CALLBACK,
                              dont_filter=True)
            try:
                response = await self.crawler.engine.download_async(request)
            except IgnoreRequest:
                self.outcomes.append("parked")
            else:
                self.outcomes.append(response.status)
        return
        yield  # an async generator with nothing for the scheduler


@deferred_f_from_coro_f
async def test_park_refuses_direct_downloads_without_setting_them_aside(
        simulator_factory, tmp_path, monkeypatch):
    # Every ReccoBeats answer is a 429 with Retry-After 1-3 s, above RATE_LIMIT_MAX_WAIT here:
    # the first parks the bucket. Requests from engine.download_async have a caller waiting
    # for them; they are refused with IgnoreRequest, never set aside for the scheduler (their
    # NO_CALLBACK would be called, or fail to pickle into JOBDIR).
    sim = simulator_factory(recco_429_rate=1.0)
    use_credentials(monkeypatch, sim)
    ids = [t.id for t in sim.catalog.tracks[:4]]
    jobdir = tmp_path / "job"
    crawler = get_crawler(DirectFetchSpider, crawl_settings(
        sim, tmp_path, RATE_LIMIT_MAX_WAIT=0.5, QUOTA_PARK_IDLE_WAIT=0, JOBDIR=str(jobdir)))
    await crawler.crawl_async(ids=ids)
    stats = crawler.stats.get_stats()
    assert stats["finish_reason"] == "finished"
    assert stats.get("log_count/ERROR", 0) == 0
    assert crawler.spider.outcomes == ["parked"] * 4
    assert [e.status for e in sim.requests(service="reccobeats")] == [429]
    assert stats["quota/parks"] == 1 and stats["quota/refused/reccobeats"] == 4
    assert "quota/set_aside/reccobeats" not in stats


# ---------------------------------------------------------------------------- 5xx backoff
@deferred_f_from_coro_f
async def test_server_errors_retry_with_backoff(simulator_factory, tmp_path, monkeypatch):
    sim = simulator_factory(error_rate=0.3, fault_seed=7)
    use_credentials(monkeypatch, sim)
    paths = track_paths(sim, 30)
    base, ceiling = 0.2, 1.0
    crawler, stats = await crawl(sim, tmp_path, paths, RATE_LIMIT_BACKOFF_BASE=base,
                                 RATE_LIMIT_BACKOFF_MAX=ceiling, RETRY_TIMES=8)
    assert stats["finish_reason"] == "finished"
    assert stats.get("log_count/ERROR", 0) == 0
    assert crawler.spider.statuses == dict.fromkeys(paths, 200)
    log = sim.requests()                  # token requests get the same faults and retries
    errors = [e for e in log if e.status >= 500]
    assert len([e for e in errors if e.service == "spotify"]) >= 5
    # The token request failed too; its retry must keep the client's Basic credentials.
    assert any(e.service == "accounts" for e in errors)
    assert {e.status for e in errors} <= {500, 502, 503}
    assert stats["retry/count"] == len(errors)
    assert "retry/max_reached" not in stats
    attempts: dict[str, list] = defaultdict(list)
    for e in log:
        attempts[e.path].append(e)
    assert sum(len(tries) > 2 for tries in attempts.values()) >= 1   # a second retry, too
    assert stats["spotify/auth/token_refreshes"] == 1     # so one attempt chain per path
    for tries in attempts.values():
        assert [e.status for e in tries][-1] == 200
        for n, (failed, retry) in enumerate(itertools.pairwise(tries), start=1):
            least = min(ceiling, base * 2 ** (n - 1)) / 2
            assert retry.t - failed.t >= least - 0.01, (n, retry.t - failed.t)


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
    state = json.loads((tmp_path / "cache" / "quota_state.json").read_text())
    assert state["days"] == {utc_iso(time.time())[:10]: {"tracks": 12, "search": 2}}


# ---------------------------------------------------------------------------- counted once
# A request is counted against its bucket's day as it goes out, and taken back only if that
# same attempt is refused before it is sent. Copies of a counted request (a request set aside
# by a park, a retry) go out, or not, on their own: refusing one must not take back the count
# of the attempt it was copied from. The ledger must always equal what reached Spotify.
def ledger_today(tmp_path) -> dict[str, int]:
    state = json.loads((tmp_path / "cache" / "quota_state.json").read_text())
    return state["days"].get(utc_iso(time.time())[:10], {})


@deferred_f_from_coro_f
async def test_set_aside_copy_refused_by_the_park_next_run_keeps_the_count(
        simulator_factory, tmp_path, monkeypatch):
    sim = simulator_factory(quota={"search": 3}, quota_retry_after=3600)
    use_credentials(monkeypatch, sim)
    settings = {"QUOTA_PARK_IDLE_WAIT": 0, "DOWNLOAD_SLOTS": one_slot()}
    _, first = await crawl(sim, tmp_path, search_paths(5), **settings)
    assert first["finish_reason"] == "quota_parked"
    assert first.get("log_count/ERROR", 0) == 0
    sent = spotify_log(sim, bucket="search")
    assert [e.status for e in sent] == [200, 200, 200, 429]
    # The 429'd search (counted: Spotify saw it) is among those set aside.
    assert first["quota/set_aside/search"] == 2
    assert first["quota/requests_today/search"] == ledger_today(tmp_path)["search"] == len(sent)

    # Next run, bucket still parked: the two unanswered searches, planned again, are refused
    # before they are sent, and take nothing back from the count.
    _, second = await crawl(sim, tmp_path, search_paths(5)[3:], **settings)
    assert second["finish_reason"] == "quota_parked"
    assert second.get("log_count/ERROR", 0) == 0
    assert spotify_log(sim, bucket="search") == sent
    assert second["quota/set_aside/search"] == 2
    assert second.get("quota/requests/search", 0) == 0
    assert second["quota/requests_today/search"] == ledger_today(tmp_path)["search"] == len(sent)


@deferred_f_from_coro_f
async def test_set_aside_requests_are_not_saved_and_the_count_is_kept(
        simulator_factory, tmp_path, monkeypatch):
    sim = simulator_factory(quota={"search": 3}, quota_retry_after=2)
    use_credentials(monkeypatch, sim)
    settings = crawl_settings(sim, tmp_path, JOBDIR=str(tmp_path / "job"),
                              QUOTA_PARK_IDLE_WAIT=0, DOWNLOAD_SLOTS=one_slot())
    paths = search_paths(5)
    crawler = get_crawler(ProbeSpider, settings)
    await crawler.crawl_async(paths=paths)
    first = crawler.stats.get_stats()
    assert first["finish_reason"] == "quota_parked"
    assert first.get("log_count/ERROR", 0) == 0
    assert [e.status for e in spotify_log(sim, bucket="search")] == [200, 200, 200, 429]
    assert first["quota/set_aside/search"] == 2
    assert first["quota/requests_today/search"] == 4

    until = json.loads((tmp_path / "cache" / "quota_state.json").read_text()
                       )["parks"]["search"]["until"]
    await sleep(max(0.0, until - time.time()) + 0.1)

    # The set-aside requests were not saved anywhere: the next run plans the two unanswered
    # searches itself (as the catalog spider does from its store), and sends nothing else.
    assert not any((tmp_path / "job").rglob("*.pickle"))
    mark = len(sim.requests())
    settings.pop("JOBDIR")      # ProbeSpider's own dupefilter there would skip the two paths
    crawler = get_crawler(ProbeSpider, settings)
    await crawler.crawl_async(paths=paths[3:])
    second = crawler.stats.get_stats()
    assert second["finish_reason"] == "finished"
    assert second.get("log_count/ERROR", 0) == 0
    assert crawler.spider.statuses == dict.fromkeys(paths[3:], 200)
    assert [e.status for e in spotify_log(sim, mark, bucket="search")] == [200, 200]
    assert second["quota/requests/search"] == 2
    sent = len(spotify_log(sim, bucket="search"))
    assert second["quota/requests_today/search"] == ledger_today(tmp_path)["search"] == sent


@deferred_f_from_coro_f
async def test_a_close_drops_what_waits_in_a_paused_slot(simulator_factory, tmp_path,
                                                         monkeypatch):
    """The slot is paused for a Retry-After (1-5 s) with requests queued behind it when a
    shutdown begins: they are dropped at once (the next run asks), not sent after the pause,
    and the close does not wait for the pause to end."""
    sim = simulator_factory(rate_limit=2, rate_window=30)
    use_credentials(monkeypatch, sim)
    crawler = get_crawler(ProbeSpider, crawl_settings(sim, tmp_path, DOWNLOAD_SLOTS=one_slot()))
    closed_at: list[int] = []

    def close_on_first_429(response, request, spider) -> None:
        if response.status == 429 and not closed_at:
            closed_at.append(len(sim.requests()))
            scrapy_compat.schedule_coro(crawler.engine.close_spider_async(reason="shutdown"))

    crawler.signals.connect(close_on_first_429, signal=signals.response_downloaded)
    await crawler.crawl_async(paths=track_paths(sim, 12))
    stats = crawler.stats.get_stats()
    assert stats["finish_reason"] == "shutdown"
    assert stats.get("log_count/ERROR", 0) == 0
    assert stats["close/dropped_queued"] >= 1
    assert stats["close/seconds"] < 0.5               # the shortest pause is 1 s
    assert "SpiderClosing" in crawler.spider.failures.values()
    assert len(sim.requests()) == closed_at[0]        # nothing was sent after the 429
