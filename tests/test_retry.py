"""5xx answers and dropped connections: retries with exponential backoff (``retry.py``)."""

from __future__ import annotations

import itertools
import time
from collections import defaultdict

from scrapy import Request, Spider, signals
from scrapy.http import TextResponse
from scrapy.utils.defer import deferred_f_from_coro_f
from scrapy.utils.test import get_crawler

from runclub_spiders import scrapy_compat
from runclub_spiders.downloadermiddlewares.retry import BackoffRetryMiddleware, backoff
from runclub_spiders.downloadermiddlewares.spotify_auth import TOKEN_REQUEST
from tests.conftest import project_settings, use_credentials
from tests.wire import crawl, track_paths


def test_backoff_bounds():
    for attempt, ceiling in ((1, 0.5), (2, 1.0), (3, 2.0), (4, 3.0), (10, 3.0), (60, 3.0)):
        draws = [backoff(attempt, 0.5, 3.0) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in draws), attempt
        assert max(draws) - min(draws) > ceiling / 10              # jittered, not fixed


@deferred_f_from_coro_f
async def test_a_retry_never_carries_the_bearer_token():
    crawler = get_crawler(Spider, project_settings(
        SPIDER_MODULES=[], RATE_LIMIT_BACKOFF_BASE=0.001, RATE_LIMIT_BACKOFF_MAX=0.002))
    crawler.spider = crawler._create_spider(name="unit")
    middleware = BackoffRetryMiddleware.from_crawler(crawler)
    assert 429 not in middleware.retry_http_codes        # pacing's and quota's, not ours
    api = Request("https://api.spotify.com/v1/tracks/x",
                  headers={"Authorization": "Bearer secret"})
    token = Request("https://accounts.spotify.com/api/token", meta={TOKEN_REQUEST: True},
                    headers={"Authorization": "Basic client"})
    for request, kept in ((api, None), (token, b"Basic client")):
        retry = await middleware.process_response(
            request, TextResponse(request.url, status=503, request=request))
        assert isinstance(retry, Request) and retry.meta["retry_times"] == 1
        assert retry.headers.get("Authorization") == kept
        assert request.headers.get("Authorization") is not None   # the original is untouched
        retry = await middleware.process_exception(request, TimeoutError())
        assert retry.headers.get("Authorization") == kept
    too_many = TextResponse(api.url, status=429, request=api)
    assert await middleware.process_response(api, too_many) is too_many


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
    # Every attempt was counted against its bucket: a 5xx reached Spotify.
    assert stats["quota/requests/tracks"] == len(spotify := [e for e in log
                                                             if e.service == "spotify"])
    assert stats["quota/requests_today/tracks"] == len(spotify)


@deferred_f_from_coro_f
async def test_a_close_cuts_the_backoff_short(simulator_factory, tmp_path, monkeypatch):
    """Every answer a 5xx, backoffs of 20-40 s: a shutdown ends every wait at once, and the
    retries that waited are never sent."""
    sim = simulator_factory(error_rate=1.0)
    use_credentials(monkeypatch, sim)
    sent: list[float] = []

    def close_once_all_wait(response, request, spider) -> None:
        sent.append(time.monotonic())
        if len(sent) == 1:
            scrapy_compat.schedule_coro(close_soon(spider.crawler))

    async def close_soon(crawler) -> None:
        from scrapy.utils.asyncio import sleep  # noqa: PLC0415

        await sleep(0.5)                          # the token retry and the others now wait
        await crawler.engine.close_spider_async(reason="shutdown")

    started = time.monotonic()
    crawler, stats = await crawl(
        sim, tmp_path, track_paths(sim, 3), RATE_LIMIT_BACKOFF_BASE=20, RATE_LIMIT_BACKOFF_MAX=40,
        prepare=lambda c: c.signals.connect(close_once_all_wait,
                                            signal=signals.response_downloaded))
    assert stats["finish_reason"] == "shutdown"
    assert stats.get("log_count/ERROR", 0) == 0
    assert stats["close/seconds"] < 0.5
    assert time.monotonic() - started < 5
    # The token request failed first; its retry waited, and the close ended the wait: no
    # API request was ever sent, and every path failed with SpiderClosing.
    assert [e.service for e in sim.requests()] == ["accounts"]
    assert sim.requests()[0].status >= 500
    assert stats["retry/count"] == 1
    assert crawler.spider.failures == dict.fromkeys(track_paths(sim, 3), "SpiderClosing")
