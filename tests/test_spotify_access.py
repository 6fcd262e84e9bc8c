"""Spotify access against the simulator: OAuth refresh, 401 recovery, rotation, failures.

Each test runs a real crawl (Scrapy's downloader on the asyncio reactor) against the simulator
on loopback, and asserts the close reason, the error-log count and the stats.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import subprocess
import sys
from pathlib import Path

import requests
from scrapy import signals
from scrapy.utils.defer import deferred_f_from_coro_f

from runclub_spiders.auth.tokens import TokenFile
from tests.conftest import crawl_settings, run_spider, use_credentials
from tests.spiders import ProbeSpider

REPO = Path(__file__).resolve().parents[1]


def track_paths(sim, n: int) -> list[str]:
    return [f"/tracks/{t.id}" for t in sim.catalog.tracks[:n]]


async def crawl(sim, tmp_path, paths, **settings):
    scheduled: list = []

    def on_scheduled(request, **_):   # a named local: signal receivers are held weakly
        scheduled.append(request)

    crawler, stats = await run_spider(
        ProbeSpider, crawl_settings(sim, tmp_path, **settings), paths=paths,
        prepare=lambda c: c.signals.connect(on_scheduled, signal=signals.request_scheduled))
    return crawler, stats, scheduled


@deferred_f_from_coro_f
async def test_tokens_expiring_every_n_requests_lose_nothing(simulator_factory, tmp_path,
                                                             monkeypatch):
    sim = simulator_factory(token_expire_every=7)
    use_credentials(monkeypatch, sim)
    paths = track_paths(sim, 60)
    crawler, stats, scheduled = await crawl(sim, tmp_path, paths)
    assert stats["finish_reason"] == "finished"
    assert stats.get("log_count/ERROR", 0) == 0
    assert crawler.spider.statuses == dict.fromkeys(paths, 200)
    assert not crawler.spider.failures
    unauthorized = [e for e in sim.requests(service="spotify") if e.status == 401]
    assert unauthorized and stats["spotify/auth/retried_401"] == len(unauthorized)
    assert "spotify/auth/gave_up_401" not in stats
    # One refresh per dead token, however many requests hit it: no duplicate refreshes.
    grants = sim.accounts.token_grants
    assert grants == stats["spotify/auth/token_refreshes"]
    # Every token serves exactly 7 requests before it dies, so 60 successes need
    # ceil(60 / 7) = 9 tokens; a duplicate refresh would waste one and need more.
    assert 9 <= grants <= 10
    # Retries went back through the scheduler without the header (JOBDIR would pickle them).
    assert scheduled and not any(b"Authorization" in r.headers for r in scheduled)


@deferred_f_from_coro_f
async def test_tokens_are_renewed_before_they_expire(simulator_factory, tmp_path, monkeypatch):
    sim = simulator_factory(access_token_ttl=4)
    use_credentials(monkeypatch, sim)
    # Tokens live 4 s and are renewed 2 s early; queued requests wait well under that, even
    # on a loaded machine (with 2 s tokens renewed 1 s early this flaked under `-n 2`).
    _, stats, _ = await crawl(
        sim, tmp_path, track_paths(sim, 30), CONCURRENT_REQUESTS=4,
        DOWNLOAD_SLOTS={"api.spotify.com": {"concurrency": 1, "delay": 0.15}})
    assert stats["finish_reason"] == "finished"
    assert not [e for e in sim.requests(service="spotify") if e.status == 401]
    assert stats["spotify/auth/token_refreshes"] >= 3      # 30 x 0.15 s, renewed every 2 s


@deferred_f_from_coro_f
async def test_rotated_refresh_token_is_stored(simulator_factory, tmp_path, monkeypatch):
    sim = simulator_factory(rotate_refresh_tokens=True, token_expire_every=10)
    use_credentials(monkeypatch, sim, refresh_token=False)
    token_file = TokenFile(tmp_path / "cache" / "spotify_token.json")
    token_file.write(sim.config.refresh_token)
    _, stats, _ = await crawl(sim, tmp_path, track_paths(sim, 25))
    assert stats["finish_reason"] == "finished"
    assert stats.get("log_count/ERROR", 0) == 0
    assert stats["spotify/auth/refresh_token_rotated"] == stats["spotify/auth/token_refreshes"]
    stored = token_file.refresh_token()
    assert stored and stored != sim.config.refresh_token
    assert stat.S_IMODE(token_file.path.stat().st_mode) == 0o600
    assert stored in sim.accounts.refresh_tokens                 # the live one
    assert sim.config.refresh_token not in sim.accounts.refresh_tokens


@deferred_f_from_coro_f
async def test_invalid_grant_closes_with_auth_failed(simulator_factory, tmp_path, monkeypatch,
                                                     caplog):
    sim = simulator_factory()
    use_credentials(monkeypatch, sim)
    monkeypatch.setenv("SPOTIFY_REFRESH_TOKEN", "AQ-revoked-token")
    with caplog.at_level(logging.INFO):
        _, stats, _ = await crawl(sim, tmp_path, track_paths(sim, 10))
    assert stats["finish_reason"] == "auth_failed"
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and stats["log_count/ERROR"] == 1
    assert "run `scrapy spotify-auth` again" in errors[0].getMessage()
    assert "AQ-revoked-token" not in caplog.text
    assert not sim.requests(service="spotify")           # nothing reached the API


@deferred_f_from_coro_f
async def test_missing_credentials_stop_before_the_first_request(simulator_factory, tmp_path,
                                                                  caplog):
    sim = simulator_factory()
    with caplog.at_level(logging.INFO):
        _, stats, _ = await crawl(sim, tmp_path, track_paths(sim, 5))
    assert stats["finish_reason"] == "missing_credentials"
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    for name in ("SPOTIFY_CLIENT_ID", "SPOTIFY_CLIENT_SECRET", "SPOTIFY_REFRESH_TOKEN",
                 "make demo"):
        assert name in errors[0]
    assert not sim.requests()


def test_crawl_command_names_missing_variables_in_one_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPOTIFY_")}
    env["SPOTIFY_CLIENT_ID"] = "abc"
    result = subprocess.run(
        [sys.executable, "-m", "scrapy", "crawl", "spotify_catalog",
         "-s", f"SPOTIFY_TOKEN_FILE={tmp_path / 'none.json'}"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "SPOTIFY_CLIENT_SECRET" in lines[0] and "SPOTIFY_CLIENT_ID" not in lines[0]
    assert "make demo" in lines[0]


def test_crawl_command_rejects_an_invalid_market(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPOTIFY_")}
    env["SPOTIFY_MARKET"] = "USA"
    result = subprocess.run([sys.executable, "-m", "scrapy", "crawl", "spotify_catalog"],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
                            check=False)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: SPOTIFY_MARKET='USA' is not an ISO 3166-1 alpha-2 country code; use two "
        "letters such as US or GB")


def test_token_file_with_loose_permissions_is_fixed_and_said(tmp_path, caplog):
    path = tmp_path / "token.json"
    path.write_text(json.dumps({"refresh_token": "AQ-x"}))
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING):
        assert TokenFile(path).refresh_token() == "AQ-x"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "changed it to 600" in caplog.text


def test_simulator_refresh_token_in_file_is_usable(simulator_factory, tmp_path):
    """The token file format is what the middleware reads back (round trip)."""
    sim = simulator_factory()
    token_file = TokenFile(tmp_path / "t.json")
    token_file.write(sim.config.refresh_token, scope="playlist-read-private")
    response = requests.post(f"{sim.accounts_base_url}/api/token",
                             data={"grant_type": "refresh_token",
                                   "refresh_token": token_file.refresh_token()},
                             auth=(sim.config.client_id, sim.config.client_secret), timeout=10)
    assert response.status_code == 200
