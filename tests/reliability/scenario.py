"""In-process crawls for the reliability scenarios: one request at a time, small targets,
timestamps clamped by ``SOURCE_DATE_EPOCH``, so two runs that should agree export the same
bytes."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from runclub_spiders.export.feeds import DATA_FILES
from runclub_spiders.runs import crawl_catalog
from tests.conftest import crawl_settings

REPO = Path(__file__).resolve().parents[2]
SIZE = 6000
EPOCH = "1700000000"
COMPARED = (*DATA_FILES, "coverage.md", "coverage.png")
SERIAL = {
    "CATALOG_CELL_MIN": 5, "CATALOG_CELL_TARGET": 8, "CATALOG_MAX_TRACKS": 600,
    "DISCOVERY_CONCURRENCY": 1, "CONCURRENT_REQUESTS": 1, "DISCOVERY_PROGRESS_INTERVAL": 0,
}


async def crawl(sim, folder: Path, **overrides):
    """Run the catalog crawl (discovery, then the export: ``runs.crawl_catalog``) against
    ``sim`` with state in ``folder``: (``CatalogRun``, seconds)."""
    settings = crawl_settings(sim, folder, CATALOG_STORE_PATH=str(folder / "store.sqlite"),
                              EXPORT_DIR=str(folder / "exports" / "catalog"),
                              **{**SERIAL, **overrides})
    settings["DOWNLOAD_SLOTS"] = {k: {**v, "concurrency": 1}
                                  for k, v in settings["DOWNLOAD_SLOTS"].items()}
    started = time.monotonic()
    run = await crawl_catalog(settings)
    return run, time.monotonic() - started


def export_hashes(folder: Path) -> dict[str, str]:
    export = folder / "exports" / "catalog"
    return {name: hashlib.sha256((export / name).read_bytes()).hexdigest()
            for name in COMPARED}


def spotify_requests(sim, since: int = 0) -> int:
    return sum(1 for e in sim.requests(since) if e.service == "spotify")


def repeated_pages(log) -> list[tuple[str, str]]:
    """The GET (path, query) pairs answered 200 again after a clean 200 in the same log.

    A page asked again after an answer that was an error (a fault the simulator injected:
    truncated JSON, say) is a retry, not a repeat; one asked again after a clean answer spent
    quota on something the crawl already had.
    """
    clean: set[tuple[str, str]] = set()
    repeats = []
    for entry in log:
        if entry.method != "GET" or entry.status != 200:
            continue
        key = (entry.path, entry.query)
        if key in clean:
            repeats.append(key)
        if not entry.fault:
            clean.add(key)
    return repeats


# ---------------------------------------------------------------------------- the real command
def command(sim, folder: Path, kill_at: str | None = None, env: dict[str, str] | None = None,
            **overrides) -> tuple[list[str], dict[str, str]]:
    """``scrapy crawl spotify_catalog`` against ``sim`` with its state in ``folder``, one
    request at a time (an uninterrupted run is one fixed sequence to compare with), logging to
    ``folder/crawl-<kill point or 'full'>-<n>.log``: (argv, environment)."""
    settings = {
        "CATALOG_STORE_PATH": folder / "store.sqlite",
        "EXPORT_DIR": folder / "exports" / "catalog",
        "JOBDIR": folder / "job",
        "SPOTIFY_TOKEN_FILE": folder / "cache" / "token.json",
        "LOG_FILE": folder / f"crawl-{kill_at or 'full'}-{time.monotonic_ns()}.log",
        **SERIAL, "AUTOTHROTTLE_ENABLED": False,
        "DOWNLOAD_SLOTS": json.dumps({s: {"concurrency": 1, "delay": 0} for s in (
            "api.spotify.com", "accounts.spotify.com", "api.reccobeats.com")}),
        "LOG_LEVEL": "INFO",
        # As in crawl_settings: the open-data sources (sim.env() names them) and the
        # capability probe (its calls would shift every kill point) stay off here.
        "WIKIDATA_ENABLED": False, "MUSICBRAINZ_ENABLED": False,
        "SPOTIFY_PROBE_ENABLED": False, **overrides,
    }
    if kill_at:
        settings["KILL_AT"] = kill_at
        settings["ADDONS"] = json.dumps({"tests.reliability.killswitch.KillSwitchAddon": 0})
    argv = [sys.executable, "-m", "scrapy", "crawl", "spotify_catalog"]
    for name, value in settings.items():
        argv += ["-s", f"{name}={value}"]
    environment = {**os.environ, **sim.env(), "SOURCE_DATE_EPOCH": EPOCH,
                   "PYTHONPATH": str(REPO), **(env or {})}
    return argv, environment


def run_command(sim, folder: Path, kill_at: str | None = None, **kwargs
                ) -> subprocess.CompletedProcess:
    argv, env = command(sim, folder, kill_at, **kwargs)
    return subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=240, check=False)
