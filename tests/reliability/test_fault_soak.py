"""Fault soak: the same crawl against a clean simulator and against one that answers 10% of
requests with 5xx, 2% with short 429s, drops 2% of connections, truncates 1% of JSON bodies,
kills every access token after 50 requests and answers 10% of ReccoBeats calls with 429. The
faulty crawl must finish cleanly and publish the clean run's export, byte for byte."""

from __future__ import annotations

import pytest
from scrapy.utils.defer import deferred_f_from_coro_f

from runclub_spiders.simulator import Simulator
from tests.conftest import cached_catalog, use_credentials
from tests.reliability.scenario import EPOCH, SIZE, crawl, export_hashes, repeated_pages

# A short 429 says Retry-After: 1 and the crawl is serial: each costs a second of waiting,
# so 2% (about ten) prove the handling without making the soak a minute long.
FAULTS = {"fault_seed": 7, "error_rate": 0.10, "spotify_429_rate": 0.02, "drop_rate": 0.02,
          "malformed_rate": 0.01, "token_expire_every": 50, "recco_429_rate": 0.10}


async def run(tmp_path, monkeypatch, name: str, **knobs):
    sim = Simulator(catalog=cached_catalog(SIZE), size=SIZE, **knobs).start()
    try:
        use_credentials(monkeypatch, sim)
        # Stray 429s are not a rate window: learned pacing (measured in bench/crawl.py) would
        # take two in a row for a limit and slow the run, not change what it exports.
        catalog_run, seconds = await crawl(sim, tmp_path / name, RATE_LIMIT_BACKOFF_BASE=0.05,
                                           RATE_LIMIT_BACKOFF_MAX=0.5,
                                           RATE_LIMIT_LEARN_MIN=100_000, CATALOG_CELL_MIN=5,
                                           CATALOG_CELL_TARGET=8, CATALOG_MAX_TRACKS=600)
        log = sim.requests()
    finally:
        sim.stop()
    return catalog_run, seconds, log


@pytest.mark.slow
@deferred_f_from_coro_f
async def test_faulty_services_give_the_clean_export(tmp_path, monkeypatch, figures):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)
    clean_run, clean_s, clean_log = await run(tmp_path, monkeypatch, "clean")
    clean = clean_run.discovery_stats
    assert clean["finish_reason"] == "finished"
    assert clean_run.errors == 0
    assert clean_run.export_stats["export/published"] == 1
    assert not [entry for entry in clean_log if entry.fault]     # the reference saw no fault
    faulty_run, faulty_s, faulty_log = await run(tmp_path, monkeypatch, "faulty", **FAULTS)
    faulty = faulty_run.discovery_stats
    assert faulty["finish_reason"] == "finished"
    assert faulty_run.errors == 0
    assert faulty_run.export_stats["export/published"] == 1
    assert export_hashes(tmp_path / "faulty") == export_hashes(tmp_path / "clean")
    assert repeated_pages(clean_log) == repeated_pages(faulty_log) == []

    faults: dict[str, int] = {}
    for entry in faulty_log:
        if entry.fault:
            kind = entry.fault.split()[0] if entry.fault.startswith("error") else entry.fault
            faults[kind] = faults.get(kind, 0) + 1
    # Every kind of fault was actually served.
    assert {"error", "drop", "malformed", "429", "recco 429"} <= set(faults), faults
    assert faulty.get("spotify/auth/token_refreshes", 0) > clean.get(
        "spotify/auth/token_refreshes", 0)
    figures("requests clean / faulty", f"{len(clean_log)} / {len(faulty_log)}")
    figures("faults served", dict(sorted(faults.items())))
    figures("retries (retry/count, ratelimit/429, malformed)",
            f"{faulty.get('retry/count', 0)}, {faulty.get('ratelimit/429', 0)}, "
            f"{faulty.get('discovery/malformed_json', 0)}")
    figures("token refreshes clean / faulty",
            f"{clean.get('spotify/auth/token_refreshes', 0)} / "
            f"{faulty.get('spotify/auth/token_refreshes', 0)}")
    figures("wall seconds clean / faulty (overhead)",
            f"{clean_s:.1f} / {faulty_s:.1f} ({faulty_s / clean_s - 1:+.0%})")
