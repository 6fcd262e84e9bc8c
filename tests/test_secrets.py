"""Secrets never leave the token file: not in logs (at DEBUG), not in JOBDIR, not in .cache.

The crawl is made to exercise every path a token could leak through: access tokens expire
every few requests (401 retries go back through the scheduler), refresh tokens rotate (the
token file is rewritten), the rate limit answers 429 (retry copies), and the crawl is stopped
early so JOBDIR still holds pickled requests.
"""

from __future__ import annotations

import base64
import logging
import stat
from pathlib import Path

from scrapy.utils.defer import deferred_f_from_coro_f

from tests.conftest import crawl_settings, run_spider, use_credentials
from tests.spiders import ProbeSpider


def pending_requests(jobdir: Path) -> list[Path]:
    return [p for p in (jobdir / "requests.queue").rglob("q0*") if p.stat().st_size]


def leaks(secrets: set[str], blob: bytes) -> list[str]:
    return sorted(s for s in secrets if s.encode() in blob)


@deferred_f_from_coro_f
async def test_no_secret_in_logs_jobdir_or_cache(simulator_factory, tmp_path, monkeypatch,
                                                 caplog):
    sim = simulator_factory(token_expire_every=4, rotate_refresh_tokens=True, rate_limit=12,
                            rate_window=1)
    use_credentials(monkeypatch, sim)
    jobdir, cache = tmp_path / "job", tmp_path / "cache"
    settings = crawl_settings(sim, tmp_path, JOBDIR=str(jobdir), LOG_LEVEL="DEBUG",
                              CLOSESPIDER_PAGECOUNT=40, CONCURRENT_REQUESTS=4,
                              RATE_LIMIT_WINDOW=1)    # the simulator's window, not Spotify's 30 s
    paths = [f"/tracks/{t.id}" for t in sim.catalog.tracks[:120]]
    with caplog.at_level(logging.DEBUG):
        _, stats = await run_spider(ProbeSpider, settings, paths=paths)
    assert stats["finish_reason"] == "closespider_pagecount"
    assert stats["spotify/auth/retried_401"] > 0                     # 401 retries happened
    assert stats["spotify/auth/refresh_token_rotated"] > 0           # the file was rewritten
    assert stats["ratelimit/429"] > 0                                # 429 retry copies too
    assert pending_requests(jobdir)                   # JOBDIR really holds pickled requests

    config = sim.config
    secrets = {config.client_secret, config.refresh_token, *sim.accounts.refresh_tokens,
               *sim.accounts.access,
               base64.b64encode(f"{config.client_id}:{config.client_secret}".encode()).decode()}
    assert len(sim.accounts.access) >= 5

    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    log_text = "\n".join(formatter.format(r) for r in caplog.records)
    assert "Crawled (200)" in log_text                                # DEBUG was really on
    assert leaks(secrets, log_text.encode()) == []

    assert_no_file_leaks(secrets, jobdir, cache)


def assert_no_file_leaks(secrets: set[str], jobdir: Path, cache: Path) -> None:
    for path in jobdir.rglob("*"):
        if path.is_file():
            assert leaks(secrets, path.read_bytes()) == [], path
    token_file = cache / "spotify_token.json"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    for path in cache.rglob("*"):
        if path.is_file() and path != token_file:
            assert leaks(secrets, path.read_bytes()) == [], path
