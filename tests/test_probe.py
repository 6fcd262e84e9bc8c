"""The capability probe against the simulator: what it finds, what it costs, how a crawl adapts.

Real crawls over loopback; the simulator's knobs stand for each state Spotify and ReccoBeats
may be in (``docs/simulator.md``), and its request log says what the probe asked.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from scrapy.utils.defer import deferred_f_from_coro_f

from runclub_spiders.probe import NAMES, Capabilities, _genre_verdict
from runclub_spiders.runs import crawl_catalog
from runclub_spiders.spiders.spotify_catalog import SpotifyCatalogSpider
from runclub_spiders.spiders.spotify_probe import SpotifyProbeSpider
from runclub_spiders.store import Store
from tests.conftest import crawl_settings, run_spider, use_credentials
from tests.test_discovery import REPO
from tests.test_opendata import SIZE as OPEN_DATA_SIZE
from tests.test_opendata import manifest, open_data, wide_rows

MAX_SPOTIFY_CALLS = 12


def spotify_calls(sim, since: int = 0) -> list[str]:
    return [f"{e.path}?{e.query}" for e in sim.requests(since, service="spotify")]


async def probe(sim, tmp_path, **overrides):
    settings = crawl_settings(sim, tmp_path, EXPORT_ENABLED=False, **overrides)
    crawler, stats = await run_spider(SpotifyProbeSpider, settings)
    return crawler.spider.capabilities, stats


@pytest.mark.parametrize("mode", ["honoured", "ignored", "empty"])
@deferred_f_from_coro_f
async def test_the_probe_tells_each_genre_filter_mode_in_at_most_12_calls(
        simulator_factory, monkeypatch, tmp_path, mode):
    sim = simulator_factory(profile="development", genre_filter=mode)
    use_credentials(monkeypatch, sim)
    caps, stats = await probe(sim, tmp_path)
    assert stats["finish_reason"] == "finished"
    assert stats.get("log_count/ERROR", 0) == 0
    assert caps.get("genre_filter") == mode
    assert f"genre filter: {mode}" in caps.lines()
    calls = spotify_calls(sim)
    assert len(calls) == stats["probe/spotify_requests"] <= MAX_SPOTIFY_CALLS
    # Development Mode as the simulator plays it: pages of 10, no artist genres, albums and
    # owner playlists readable, ISRCs on tracks, ReccoBeats reachable.
    assert {n: caps.get(n) for n in NAMES} == {
        "search_limit": "10", "genre_filter": mode, "year_filter": "honoured",
        "track_isrc": "present", "artist_genres": "absent", "albums": "allowed",
        "artist_albums": "allowed", "playlist_items": "readable", "reccobeats": "reachable",
        "reccobeats_default_user_agent": "allowed"}
    store = Store.open(tmp_path / "store.sqlite")
    try:
        assert Capabilities.from_store(store).values == caps.values
    finally:
        store.close()


@deferred_f_from_coro_f
async def test_the_probe_tells_refused_endpoints_and_missing_fields(simulator_factory,
                                                                   monkeypatch, tmp_path):
    sim = simulator_factory(profile="development", year_filter="ignored", track_isrc=False,
                            album_endpoints=False, owner_playlist_items=False,
                            recco_block_default_ua=True)
    use_credentials(monkeypatch, sim)
    caps, stats = await probe(sim, tmp_path)
    assert stats["finish_reason"] == "finished"
    assert stats.get("log_count/ERROR", 0) == 0
    assert {n: caps.get(n) for n in NAMES} == {
        "search_limit": "10", "genre_filter": "honoured", "year_filter": "ignored",
        "track_isrc": "absent", "artist_genres": "absent", "albums": "forbidden",
        "artist_albums": "forbidden", "playlist_items": "forbidden", "reccobeats": "reachable",
        "reccobeats_default_user_agent": "blocked"}
    assert len(spotify_calls(sim)) <= MAX_SPOTIFY_CALLS


@deferred_f_from_coro_f
async def test_the_probe_tells_extended_quota(simulator_factory, monkeypatch, tmp_path):
    sim = simulator_factory(profile="extended")
    use_credentials(monkeypatch, sim)
    caps, _ = await probe(sim, tmp_path)
    assert (caps.get("search_limit"), caps.get("artist_genres")) == ("50", "present")
    # The limit=50 page, the limit=10 baseline, two genre pages: no wider years needed.
    assert sum("type=track" in call for call in spotify_calls(sim)) == 4


@deferred_f_from_coro_f
async def test_a_crawl_probes_once_a_week_and_adapts_its_plan(simulator_factory, monkeypatch,
                                                             tmp_path):
    sim = simulator_factory(profile="development", genre_filter="ignored",
                            album_endpoints=False)
    use_credentials(monkeypatch, sim)
    settings = crawl_settings(sim, tmp_path, EXPORT_ENABLED=False, SPOTIFY_PROBE_ENABLED=True,
                              CATALOG_CELL_TARGET=20, DISCOVERY_PROGRESS_INTERVAL=0,
                              SPOTIFY_DAILY_BUDGET={"search": 40})
    _, stats = await run_spider(SpotifyCatalogSpider, settings)
    assert stats["finish_reason"] == "quota_parked"
    assert stats.get("log_count/ERROR", 0) == 0
    assert stats["probe/genre_filter"] == "ignored" and stats["probe/albums"] == "forbidden"
    searches = [e.query for e in sim.requests(service="spotify") if e.path.endswith("/search")]
    # The probe's two genre: searches, and no cell query built on the ignored filter.
    assert sum("genre" in q for q in searches) == 2 and len(searches) == 40, searches[:5]
    paths = [e.path for e in sim.requests(service="spotify")]
    assert sum("/albums" in p for p in paths) == 2          # the probe's own two (403)
    store = Store.open(tmp_path / "store.sqlite")
    try:
        sources = {r[0] for r in store.db.execute("SELECT source FROM genre_evidence")}
        assert not {"search_sole", "search_common"} & sources
    finally:
        store.close()

    mark = len(sim.requests())
    _, again = await run_spider(SpotifyCatalogSpider, settings)
    assert "probe/spotify_requests" not in again            # probed 0 days ago: not due
    sim.advance_clock(8 * 86_400)
    _, later = await run_spider(SpotifyCatalogSpider, settings)
    assert later["probe/spotify_requests"] >= 8             # a week on: probed again
    assert later["probe/genre_filter"] == "ignored"
    assert len(sim.requests(mark, service="spotify")) > 0


def test_the_command_prints_one_line_per_capability_then_the_plan(simulator_factory, tmp_path):
    sim = simulator_factory(profile="development", genre_filter="empty")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SPOTIFY_", "RECCO"))}
    env.update(sim.env())
    settings = {"CATALOG_STORE_PATH": tmp_path / "store.sqlite",
                "SPOTIFY_TOKEN_FILE": tmp_path / "token.json",
                "EXPORT_DIR": tmp_path / "exports"}
    result = subprocess.run(
        [sys.executable, "-m", "scrapy", "spotify-probe",
         *[arg for k, v in settings.items() for arg in ("-s", f"{k}={v}")]],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:len(NAMES)] == [f"{n.replace('_', ' ')}: {v}" for n, v in (
        ("search_limit", "10"), ("genre_filter", "empty"), ("year_filter", "honoured"),
        ("track_isrc", "present"), ("artist_genres", "absent"), ("albums", "allowed"),
        ("artist_albums", "allowed"), ("playlist_items", "readable"),
        ("reccobeats", "reachable"), ("reccobeats_default_user_agent", "allowed"))]
    assert lines[len(NAMES)] == "the crawl will:"
    assert lines[len(NAMES) + 1].startswith("  cell queries: off (genre filter empty)")
    assert "Traceback" not in result.stderr
    for secret in (sim.config.client_secret, sim.config.refresh_token):
        assert secret not in result.stdout + result.stderr


@pytest.mark.parametrize("mode", ["ignored", "empty"])
@deferred_f_from_coro_f
async def test_without_a_genre_filter_umbrellas_stay_right(simulator_factory, monkeypatch,
                                                           tmp_path, mode):
    """Spotify ignores or empties genre:: the probe says so, the crawl drops the cell queries
    built on it and takes no genre from search hits, and umbrellas come from Wikidata's
    genres (else the free-text seeds' targets): at least 90% right against the truth."""
    sim = simulator_factory(size=OPEN_DATA_SIZE, profile="development", genre_filter=mode)
    use_credentials(monkeypatch, sim)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    run = await crawl_catalog(open_data(sim, tmp_path, SPOTIFY_PROBE_ENABLED=True,
                                        CATALOG_MAX_TRACKS=300))
    stats = run.discovery_stats
    assert stats["finish_reason"] == "finished" and run.errors == 0
    assert stats["probe/genre_filter"] == mode
    cell_queries = [e for e in sim.requests(service="spotify")
                    if e.path.endswith("/search") and "genre" in e.query]
    assert len(cell_queries) == 2                  # the probe's own two
    wide = wide_rows(tmp_path)
    catalog = sim.catalog
    right = sum(row["_extra"]["umbrellas"][0] in catalog.truth(
        catalog.track_by_id[row["spotify_track_id"]])["umbrellas"] for row in wide)
    print(f"\n{mode}: umbrellas right {right / len(wide):.1%} of {len(wide)} exported")

    assert len(wide) >= 250 and right / len(wide) >= 0.90
    sources = {source for row in wide for genres in row["_extra"]["genre_sources"].values()
               for found in genres.values() for source in found}
    assert sources and sources <= {"wikidata"}     # no genre from a search hit
    notes = manifest(tmp_path)["notes"]
    assert any(f"genre: filter was {mode}" in note for note in notes)
    probed = manifest(tmp_path)["spotify"]["capabilities"]
    assert probed["capabilities"]["genre_filter"] == mode
    # Every time in the manifest is clamped to SOURCE_DATE_EPOCH (2023-11-14T22:13:20Z).
    assert probed["probedAt"] == "2023-11-14T22:13:20Z"
    assert {s["lastRunAt"] for s in manifest(tmp_path)["openData"].values()} == \
        {"2023-11-14T22:13:20Z"}


def test_two_unrelated_genres_decide_the_verdict():
    # "pop" may top the year's chart with the filter honoured: only the two genres together,
    # sharing their tracks, say the filter is ignored.
    assert _genre_verdict([["a", "b"], ["c"]]) == "honoured"
    assert _genre_verdict([["a", "b"], []]) == "honoured"
    assert _genre_verdict([["a", "b"], ["b", "a"]]) == "ignored"
    assert _genre_verdict([[], []]) == "empty"


@deferred_f_from_coro_f
async def test_a_probe_without_answers_keeps_the_last_findings(simulator_factory, monkeypatch,
                                                              tmp_path, caplog):
    sim = simulator_factory(profile="development", size=300)
    use_credentials(monkeypatch, sim)
    caps, _ = await probe(sim, tmp_path)
    # 300 tracks hold none of 2015-2016: the wider years gave the baseline.
    assert caps.get("genre_filter") == "honoured" and "1970-2029" in caps.details["year_filter"]
    assert caps.fresh
    # Nothing answers now: nothing judged, nothing saved; the crawl goes by the last probe.
    dead = "http://127.0.0.1:9"
    again, _ = await probe(sim, tmp_path, SPOTIFY_API_BASE_URL=f"{dead}/v1",
                           RECCOBEATS_BASE_URL=f"{dead}/reccobeats/v1",
                           RETRY_ENABLED=False)
    assert not again.fresh and again.values == caps.values
    assert again.probed_at == caps.probed_at
    assert "The capability probe got no answer" in caplog.text


def test_the_command_exits_1_when_nothing_answers(simulator_factory, tmp_path):
    sim = simulator_factory(profile="development")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SPOTIFY_", "RECCO"))}
    env.update(sim.env(), SPOTIFY_API_BASE_URL="http://127.0.0.1:9/v1",
               RECCOBEATS_BASE_URL="http://127.0.0.1:9/reccobeats/v1")
    result = subprocess.run(
        [sys.executable, "-m", "scrapy", "spotify-probe", "-s", "RETRY_ENABLED=False",
         "-s", f"CATALOG_STORE_PATH={tmp_path / 'store.sqlite'}",
         "-s", f"SPOTIFY_TOKEN_FILE={tmp_path / 'token.json'}",
         "-s", f"EXPORT_DIR={tmp_path / 'exports'}"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    assert "error: the probe got no answer" in result.stderr
    assert "Traceback" not in result.stderr
