"""Quota park: the search bucket runs out mid-crawl. The crawl parks it within one request
(no later call to it), exports what it has, and closes with ``quota_parked``; the same
command after the park time continues and ends with the clean run's export, byte for byte.

Search-only discovery here: with albums, artists and leads on, those buckets go on working
while search is parked (tests/test_multi_bucket.py), so the parked run reads albums and
confirms leads in an order the clean run never did, and the two catalogs differ as any two
crawl orders may; every page is still asked once (``repeated_pages``), which is what this
scenario is about.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from scrapy.utils.defer import deferred_f_from_coro_f

from runclub_spiders.export.validate import validate_export
from runclub_spiders.simulator import Simulator
from tests.conftest import cached_catalog, use_credentials
from tests.reliability.scenario import EPOCH, SIZE, crawl, export_hashes, repeated_pages

LOCK_SECONDS = 4
SEARCH_ONLY = {"DISCOVERY_ALBUMS": False, "DISCOVERY_ARTIST_ALBUMS": False,
               "DISCOVERY_RECCO_LEADS": False}


@pytest.mark.slow
@deferred_f_from_coro_f
async def test_parked_search_bucket_exports_then_resumes_to_the_clean_export(
        tmp_path, monkeypatch, figures):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)
    catalog = cached_catalog(SIZE)
    clean = Simulator(catalog=catalog, size=SIZE).start()
    try:
        use_credentials(monkeypatch, clean)
        run, _ = await crawl(clean, tmp_path / "clean", **SEARCH_ONLY)
        assert run.discovery_stats["finish_reason"] == "finished"
        assert run.errors == 0
        assert run.export_stats["export/published"] == 1
        searches = run.discovery_stats["quota/requests/search"]
    finally:
        clean.stop()
    reference = export_hashes(tmp_path / "clean")

    budget = searches * 52 // 100
    sim = Simulator(catalog=catalog, size=SIZE, quota={"search": budget},
                    quota_retry_after=LOCK_SECONDS).start()
    try:
        use_credentials(monkeypatch, sim)
        folder = tmp_path / "parked"
        # A Retry-After over RATE_LIMIT_MAX_WAIT parks; nothing waits in-process for it.
        park = {"RATE_LIMIT_MAX_WAIT": 1, "QUOTA_PARK_IDLE_WAIT": 0,
                "JOBDIR": str(folder / "job"), **SEARCH_ONLY}
        parked, _ = await crawl(sim, folder, **park)
        assert parked.discovery_stats["finish_reason"] == "quota_parked"
        assert parked.errors == 0
        log = [e for e in sim.requests() if e.bucket == "search"]
        refused = [i for i, e in enumerate(log) if e.status == 429]
        # Parked within one request: the first QUOTA_EXCEEDED is the last search call.
        assert len(refused) == 1 and refused[0] == len(log) - 1 == budget
        assert log[-1].fault == "quota"
        assert repeated_pages(sim.requests()) == []
        # It exported what it had (the export runs before a quota_parked close as after a
        # finished one), and that export is whole and valid.
        assert parked.export_stats["export/published"] == 1
        export = folder / "exports" / "catalog"
        assert all(c.ok for c in validate_export(export)), \
            [c for c in validate_export(export) if not c.ok]
        partial = json.loads((export / "manifest.json").read_text())["totals"]["tracks"]

        await asyncio.sleep(LOCK_SECONDS + 0.5)
        mark = len(sim.requests())
        resumed, _ = await crawl(sim, folder, **park)
        second = resumed.discovery_stats
        assert second["finish_reason"] == "finished"
        assert resumed.errors == 0
        assert not any(e.status == 429 for e in sim.requests(mark))
        assert repeated_pages(sim.requests(mark)) == []     # each run asks each page once
        # Requests set aside by the park were not saved: the store replans their pages.
        assert not any((folder / "job").rglob("*.pickle"))
        assert not (folder / "job" / "requests.queue").exists()
        assert export_hashes(folder) == reference
        full = json.loads((export / "manifest.json").read_text())["totals"]["tracks"]
        assert 0 < partial < full       # the parked export was partial, the resumed one not
    finally:
        sim.stop()
    figures("search requests, clean run", searches)
    figures("search budget before the park", budget)
    figures("tracks exported while parked / after resuming", f"{partial} / {full}")
    figures("search requests after resuming",
            second["quota/requests/search"])


@pytest.mark.slow
@deferred_f_from_coro_f
async def test_short_parks_never_ask_a_page_twice(tmp_path, monkeypatch, figures, caplog):
    """A search bucket that parks every 30 calls for 1 s, waited out in-process, with two
    searches in flight: the work of a request refused by the park is held by the frontier,
    and asked once when the park ends (before, the spider also planned the page again: with
    2 s parks and 1,500 tracks, 166 of 1,035 answered searches were pages already received)."""
    sim = Simulator(catalog=cached_catalog(SIZE), size=SIZE, quota={"search": 30},
                    quota_retry_after=1).start()
    try:
        use_credentials(monkeypatch, sim)
        run, _ = await crawl(sim, tmp_path, DISCOVERY_CONCURRENCY=2, CONCURRENT_REQUESTS=4,
                             RATE_LIMIT_MAX_WAIT=0.5, QUOTA_PARK_IDLE_WAIT=5,
                             CATALOG_MAX_TRACKS=900)
        log = sim.requests()
    finally:
        sim.stop()
    stats = run.discovery_stats
    assert stats["finish_reason"] == "finished"
    assert run.errors == 0, \
        [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert stats["quota/parks"] >= 3 and stats["quota/set_aside/search"] >= 3
    searches = [e for e in log if e.bucket == "search" and e.status == 200]
    assert repeated_pages(log) == []
    figures("short parks: parks, set aside, answered searches",
            f"{stats['quota/parks']}, {stats['quota/set_aside/search']}, {len(searches)}")
