"""Shared fixtures: simulators on loopback, started in-process on their own thread.

Catalogs are cached per (size, seed) because building one is the slow part; a test that edits
playlists should ask ``simulator_factory`` for ``fresh_catalog=True``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import requests
from scrapy.utils.test import get_crawler

import runclub_spiders.settings as project
from runclub_spiders import clock
from runclub_spiders.seeds import load_plan
from runclub_spiders.simulator import Catalog, Simulator

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

    from runclub_spiders.umbrellas import UmbrellaRules

SMALL = 3000  # tracks: enough for every shape, quick to build
REPO = Path(__file__).resolve().parents[1]


@cache
def cached_catalog(size: int = SMALL, seed: int = 1) -> Catalog:
    return Catalog(size, seed)


@pytest.fixture
def simulator_factory() -> Iterator[Callable[..., Simulator]]:
    started: list[Simulator] = []

    def start(fresh_catalog: bool = False, **overrides: Any) -> Simulator:
        overrides.setdefault("size", SMALL)
        catalog = None
        # The cache only serves catalogs that the knobs given would build identically.
        shaped = {"market", "recco_coverage"} & set(overrides)
        if not (fresh_catalog or shaped) and overrides.get("playlist_extras", True):
            catalog = cached_catalog(overrides["size"], overrides.get("seed", 1))
        simulator = Simulator(catalog=catalog, **overrides).start()
        started.append(simulator)
        return simulator

    yield start
    for simulator in started:
        simulator.stop()


@pytest.fixture
def dev_sim(simulator_factory) -> Simulator:
    return simulator_factory(profile="development")


@pytest.fixture
def ext_sim(simulator_factory) -> Simulator:
    return simulator_factory(profile="extended")


def access_token(simulator: Simulator) -> str:
    env = simulator.env()
    response = requests.post(f"{env['SPOTIFY_ACCOUNTS_BASE_URL']}/api/token",
                             data={"grant_type": "refresh_token",
                                   "refresh_token": env["SPOTIFY_REFRESH_TOKEN"]},
                             auth=(env["SPOTIFY_CLIENT_ID"], env["SPOTIFY_CLIENT_SECRET"]),
                             timeout=10)
    response.raise_for_status()
    return response.json()["access_token"]


def api_session(simulator: Simulator) -> requests.Session:
    """A blocking session with a fresh access token for the simulator's Spotify API."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {access_token(simulator)}"
    session.headers["User-Agent"] = "runclub-spiders tests"
    return session


# ---------------------------------------------------------------------------- crawler helpers
CREDENTIAL_VARIABLES = ("SPOTIFY_CLIENT_ID", "SPOTIFY_CLIENT_SECRET", "SPOTIFY_REFRESH_TOKEN",
                        "SPOTIFY_REDIRECT_URI", "RECCOBEATS_API_KEY", "SPOTIFY_API_BASE_URL",
                        "SPOTIFY_ACCOUNTS_BASE_URL", "RECCOBEATS_BASE_URL", "SPOTIFY_MARKET",
                        "SPOTIFY_API_PROFILE")


@pytest.fixture(autouse=True)
def restore_quota_clock() -> Iterator[None]:
    """A test that moves the process's quota clock (``Simulator.advance_clock``) must not move
    it for the tests after it on the same worker: parks and ledgers would be days off."""
    before = clock.offset()
    yield
    clock.set_offset(before)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    """No test sees the developer's own credentials or a .env loaded at import."""
    for name in CREDENTIAL_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def use_credentials(monkeypatch, simulator: Simulator, refresh_token: bool = True) -> None:
    env = simulator.env()
    monkeypatch.setenv("SPOTIFY_CLIENT_ID", env["SPOTIFY_CLIENT_ID"])
    monkeypatch.setenv("SPOTIFY_CLIENT_SECRET", env["SPOTIFY_CLIENT_SECRET"])
    if refresh_token:
        monkeypatch.setenv("SPOTIFY_REFRESH_TOKEN", env["SPOTIFY_REFRESH_TOKEN"])


@cache
def project_rules() -> UmbrellaRules:
    """The umbrella rules of the repository's seed plan."""
    return load_plan(REPO / "seeds" / "plan.yaml", REPO / "seeds" / "umbrellas.yaml").rules


def project_settings(**overrides: Any) -> dict[str, Any]:
    """The project's settings (``settings.py``, where every default is stated once)."""
    return {**{k: v for k, v in vars(project).items() if k.isupper()}, **overrides}


def crawl_settings(simulator: Simulator, tmp_path, **overrides: Any) -> dict[str, Any]:
    """The project's settings, pointed at ``simulator`` and made fast for tests."""
    settings = project_settings()
    settings.update(
        SPOTIFY_API_BASE_URL=simulator.spotify_api_base_url,
        SPOTIFY_ACCOUNTS_BASE_URL=simulator.accounts_base_url,
        RECCOBEATS_BASE_URL=simulator.reccobeats_base_url,
        SPOTIFY_API_PROFILE=simulator.config.profile,
        SPOTIFY_TOKEN_FILE=str(tmp_path / "cache" / "spotify_token.json"),
        CATALOG_STORE_PATH=str(tmp_path / "store.sqlite"),
        EXPORT_DIR=str(tmp_path / "exports" / "catalog"),
        AUTOTHROTTLE_ENABLED=False,
        DOWNLOAD_SLOTS={"api.spotify.com": {"concurrency": 2, "delay": 0.0},
                        "accounts.spotify.com": {"concurrency": 1, "delay": 0.0},
                        "api.reccobeats.com": {"concurrency": 2, "delay": 0.0}},
        RATE_LIMIT_BACKOFF_BASE=0.05,
        RATE_LIMIT_BACKOFF_MAX=0.5,
        LOG_LEVEL="INFO",
        # The capability probe's ~10 calls would shift every request count a test asserts;
        # tests/test_probe.py turns it on.
        SPOTIFY_PROBE_ENABLED=False,
        # The open-data sources are off unless a test turns them on (tests/test_opendata.py
        # points them at the simulator): never the real services, no requests counted here.
        WIKIDATA_ENABLED=False,
        MUSICBRAINZ_ENABLED=False,
    )
    settings.update(overrides)
    return settings


async def run_spider(spidercls, settings: dict[str, Any], *,
                     prepare: Callable[[Crawler], None] | None = None,
                     **spider_args: Any) -> tuple[Crawler, dict[str, Any]]:
    """The one way tests run a single spider: Scrapy's real engine and downloader on the
    asyncio reactor, over HTTP to a server on loopback (the simulator, or recorded bodies).
    ``prepare(crawler)`` runs before the crawl starts (to connect signals). A catalog run
    (discovery, then the export) goes through the product's own ``runs.crawl_catalog``."""
    crawler = get_crawler(spidercls, settings)
    if prepare is not None:
        prepare(crawler)
    await crawler.crawl_async(**spider_args)
    return crawler, crawler.stats.get_stats()


# ---------------------------------------------------------------------------- order
def pytest_collection_modifyitems(items) -> None:
    """The long crawls (marked ``slow``) first, the rest after: on two workers the short tests
    then fill the gaps instead of one long crawl starting last and running alone."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


# ---------------------------------------------------------------------------- figures
# Here, not in tests/reliability/conftest.py: under xdist the controller loads only this one.
def pytest_terminal_summary(terminalreporter) -> None:
    """Print the figures tests recorded (``figures`` fixture) in their own section."""
    lines = []
    for reports in terminalreporter.stats.values():
        for report in reports:
            if getattr(report, "when", None) != "call":
                continue
            for key, value in getattr(report, "user_properties", ()):
                if key == "figure":
                    lines.append(f"{report.nodeid.split('::')[-1]}: {value}")
    if lines:
        terminalreporter.section("reliability figures")
        for line in sorted(lines):
            terminalreporter.write_line(line)
