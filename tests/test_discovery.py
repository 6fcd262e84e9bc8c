"""The spotify_catalog spider against the simulator: discovery in both profiles.

Every crawl is real (Scrapy's downloader, the asyncio reactor, the simulator on loopback);
assertions cover the close reason, the error log, stats, what reached the simulator and what
the store holds.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from contextlib import closing
from dataclasses import replace
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from scrapy.utils.defer import deferred_f_from_coro_f

from runclub_spiders import clock
from runclub_spiders.frontier.planner import Planner
from runclub_spiders.quota import utc_day
from runclub_spiders.seeds import load_plan
from runclub_spiders.simulator.search import Query
from runclub_spiders.spiders.spotify_catalog import SpotifyCatalogSpider
from runclub_spiders.store import Store, TrackRecord
from tests.conftest import crawl_settings, run_spider, use_credentials

REPO = Path(__file__).resolve().parents[1]
SIZE = 8000
TARGET = 20                  # per cell; discovery aims at TARGET x DISCOVERY_OVERSAMPLE
# For tests about something else (playlists, artist lookups): fewer requests, same point.
SEARCH_ONLY = {"DISCOVERY_ALBUMS": False, "DISCOVERY_ARTIST_ALBUMS": False}
# For tests where how much is discovered is beside the point (a second run, a playlist's
# tail, a lookup budget): a smaller target, the same kinds of request.
SMALL_TARGET = {"CATALOG_CELL_TARGET": 8}
# Share of the fillable cells discovery fills (and stops on at target): which ones end just
# short varies with the requests in flight, 4 to 6 of 58 in our runs.
FILLED = 0.85


def discovery_settings(sim, tmp_path, **overrides):
    settings = {"CATALOG_STORE_PATH": str(tmp_path / "store.sqlite"),
                "CATALOG_CELL_TARGET": TARGET,
                "CATALOG_MAX_TRACKS": 100_000, "DISCOVERY_OVERSAMPLE": 1.0,
                # Discovery alone: tests/test_export.py covers the export phase.
                "EXPORT_ENABLED": False, "DISCOVERY_PROGRESS_INTERVAL": 0, **overrides}
    return crawl_settings(sim, tmp_path, **settings)


async def crawl(sim, tmp_path, **overrides):
    return await run_spider(SpotifyCatalogSpider, discovery_settings(sim, tmp_path, **overrides))


def api_calls(log) -> Counter[str]:
    """Spotify API calls by path and query (token requests left out)."""
    return Counter(f"{e.path}?{e.query}" if e.query else e.path for e in log
                   if e.path.startswith("/v1/"))


def fillable_cells(sim, target: int) -> set[tuple[str, str]]:
    """Cells whose ground truth holds at least twice ``target`` distinct recordings (ISRCs)
    playable in the market, dated by their first release (as the export dates them) and
    released on an album of that decade (what the cell's ``year:`` searches can reach)."""
    catalog = sim.catalog
    recordings: dict[tuple[str, str], set[str]] = {}
    for track in catalog.tracks:
        decade = catalog.truth(track)["decade"]
        album_year = catalog.albums[track.album_idx].year
        if sim.config.market not in track.markets or decade is None \
                or album_year // 10 != catalog.truth(track)["original_year"] // 10:
            continue
        cell = (catalog.artists[track.artist_idxs[0]].umbrellas[0], decade)
        recordings.setdefault(cell, set()).add(track.isrc)
    return {cell for cell, isrcs in recordings.items() if len(isrcs) >= target * 2}


def check_development_requests(sim, log, stats) -> None:
    """Development Mode's rules on the wire, for every Spotify request of a crawl."""
    searches = [e for e in log if e.path.endswith("/search")]
    for entry in searches:
        params = parse_qs(entry.query)
        assert params["market"] == ["US"] and params["limit"] == ["10"]
        assert entry.status == 200
        # A cell query (genre:"..." year:A-B) asks artists too, in the same call.
        cell = params["q"][0].startswith('genre:"') and " year:" in params["q"][0]
        assert params["type"] == (["track,artist"] if cell else ["track"])
    # Development mode: no editorial list, no other user's items, no batch call, no artist
    # lookup; albums are read whole (/albums/{id}) and artists listed within the
    # Development Mode limit, albums and singles only; ReccoBeats leads confirmed one by one
    # (/tracks/{id}), each once.
    readable = {p.id for p in sim.catalog.playlists.values() if p.readable}
    buckets = Counter(e.bucket for e in log)
    assert buckets["albums"] > 0 and buckets["artists"] > 0
    for entry in log:
        assert "/playlists/37i9dQZ" not in entry.path
        if entry.path.endswith("/items"):
            assert entry.path.split("/")[-2] in readable
        parts = entry.path.split("/v1/")[1].split("/")
        if parts[0] == "artists":
            assert len(parts) == 3 and parts[2] == "albums"
            assert parse_qs(entry.query)["include_groups"] == ["album,single"]
            assert parse_qs(entry.query)["limit"] == ["10"]
        elif parts[0] == "albums":
            assert len(parts) == 2 and parse_qs(entry.query)["market"] == ["US"]
        elif parts[0] == "tracks":
            assert len(parts) == 2 and parse_qs(entry.query) == {"market": ["US"]}
    # Leads wait while search has work, so a crawl that search alone nearly fills confirms
    # few or none (0 to 8 of them here, with the requests in flight deciding); the tracks
    # bucket's rules hold for every one. test_multi_bucket's
    # test_reccobeats_leads_spend_the_tracks_bucket parks search so that leads must work.
    lookups = [e.path for e in log if e.bucket == "tracks"]
    assert len(lookups) == len(set(lookups)) == stats.get("discovery/leads/confirmed", 0)
    assert not [e for e in log if e.status >= 400]


@pytest.fixture
def dev(simulator_factory, monkeypatch):
    sim = simulator_factory(size=SIZE, profile="development")
    use_credentials(monkeypatch, sim)
    return sim


@deferred_f_from_coro_f
async def test_development_discovery_fills_the_fillable_cells(dev, tmp_path):
    crawler, stats = await crawl(dev, tmp_path, CATALOG_MAX_ARTIST_SHARE=0)
    assert stats["finish_reason"] == "finished"
    assert stats.get("log_count/ERROR", 0) == 0
    # Finished: nothing left worth asking, so the projection, on the crawl's own verdicts
    # at its close (not those the store had from the last close), wants nothing: today.
    assert stats["discovery/requests_needed"] == 0
    assert stats["discovery/projected_finish"] == utc_day(clock.now())
    planner = crawler.spider.frontier.planner
    full = {cell for cell, n in planner.counts.items() if n >= TARGET}
    fillable = fillable_cells(dev, TARGET)
    # A track counts toward the cell query that found it, so a cell whose representative
    # genres reach fewer recordings than the truth holds (70s country: the simulator's
    # "americana" artists never match genre:"country") stays short here; the export then
    # backfills it from neighbours (tests/test_export.py asserts the exported cells). With 4
    # requests in flight, which others end just short varies: 4 to 6 of 58 in our runs (6 in
    # 1 run of 5 before the leads too, which failed the 0.9 this asserted).
    assert fillable and len(fillable & full) >= FILLED * len(fillable)
    log = dev.requests(service="spotify")
    check_development_requests(dev, log, stats)
    # Provenance: every stored track has edges, a playlist or an album read behind it.
    store = Store.open(tmp_path / "store.sqlite")
    try:
        row = store.db.execute(
            "SELECT COUNT(*) FROM tracks t WHERE NOT EXISTS (SELECT 1 FROM seed_tracks s "
            "WHERE s.track_id = t.id) AND NOT EXISTS (SELECT 1 FROM playlist_tracks p WHERE "
            "p.track_id = t.id) AND NOT (t.first_source = 'album' AND EXISTS (SELECT 1 FROM "
            "albums a WHERE a.id = t.album_id AND a.expanded IS NOT NULL)) AND NOT "
            "(t.first_source = 'lead' AND EXISTS (SELECT 1 FROM leads l WHERE l.track_id = "
            "t.id AND l.ended = 'confirmed'))").fetchone()
        assert row[0] == 0
        assert store.counts()["tracks"] == stats["store/tracks"] > 0
        # No album read twice, none left half read.
        albums = [e.path for e in log if e.bucket == "albums"]
        assert len(albums) == len(set(albums)) == stats["discovery/album/pages"]
        cells, seeds = store.discovery_cells(), store.seeds()
    finally:
        store.close()
    # The stop rule: every cell has its verdict; the fillable ones were filled, and cells
    # whose queries reach fewer than half the target's recordings (playable, of a length the
    # filters keep) at all were given up, cheaply: at most a page or two per query.
    reach: dict[tuple[str, str], set[str]] = {}
    for cell in planner.counts:
        for query in crawler.spider.plan.cell_queries(*cell):
            for i in dev.index.tracks(Query.parse(query.q)):
                track = dev.catalog.tracks[i]
                if "US" in track.markets and 120_000 <= track.duration_ms <= 360_000:
                    reach.setdefault(cell, set()).add(track.isrc)
    scarce = {cell for cell in planner.counts if len(reach.get(cell, ())) < TARGET // 2}
    assert set(cells) == set(planner.counts) and len(scarce) >= 5
    assert sum(cells[c]["stopped"] == "target" for c in fillable) >= FILLED * len(fillable)
    for cell in scarce:
        assert cells[cell]["stopped"] in ("low_yield", "exhausted"), cell
        assert cells[cell]["found"] < TARGET
    rows = [r for r in seeds if (r["umbrella"], r["decade"]) in scarce]
    assert sum(r["requests"] for r in rows) <= 1.5 * len(rows)


@deferred_f_from_coro_f
async def test_second_run_asks_nothing_already_known(dev, tmp_path):
    _, first = await crawl(dev, tmp_path, **SMALL_TARGET)
    assert first["finish_reason"] == "finished"
    assert first["discovery/album/pages"] > 0       # every kind of request was made once
    before = len(dev.requests())
    _, second = await crawl(dev, tmp_path, **SMALL_TARGET)
    assert second["finish_reason"] == "finished"
    assert second.get("log_count/ERROR", 0) == 0
    again = [e.path.rsplit("/v1", 1)[1] for e in dev.requests(since=before, service="spotify")]
    # Only who-am-I and the playlist listing; every playlist unchanged, no search repeated.
    assert sorted(again) == ["/me", "/me/playlists"]
    assert second["playlists/unchanged"] == first["playlists/read"]


@deferred_f_from_coro_f
async def test_changed_playlist_is_read_again_from_its_tail(simulator_factory, monkeypatch,
                                                           tmp_path):
    sim = simulator_factory(size=SIZE, fresh_catalog=True)
    use_credentials(monkeypatch, sim)
    _, first = await crawl(sim, tmp_path, **SEARCH_ONLY, **SMALL_TARGET)   # playlists: the point
    assert first["finish_reason"] == "finished"
    own = next(p for p in sim.catalog.playlists.values()
               if p.owner_id == "runclub-owner" and len(p.track_idxs) > 60)
    sim.edit_playlist(own.id, add=3)
    before = len(sim.requests())
    _, second = await crawl(sim, tmp_path, **SEARCH_ONLY, **SMALL_TARGET)
    assert second["finish_reason"] == "finished"
    items = [e for e in sim.requests(since=before, service="spotify")
             if e.path.endswith("/items")]
    assert {e.path.split("/")[-2] for e in items} == {own.id}
    offsets = [int(parse_qs(e.query)["offset"][0]) for e in items]
    assert offsets[0] > 0 and len(items) < -(-len(own.track_idxs) // 50)   # the tail only
    assert second["playlists/read"] == 1


@deferred_f_from_coro_f
async def test_extended_profile_uses_playlist_search_and_artist_batches(
        simulator_factory, monkeypatch, tmp_path):
    sim = simulator_factory(size=SIZE, profile="extended")
    use_credentials(monkeypatch, sim)
    _, stats = await crawl(sim, tmp_path, CATALOG_CELL_TARGET=40)
    assert stats["finish_reason"] == "finished"
    assert stats.get("log_count/ERROR", 0) == 0
    log = sim.requests(service="spotify")
    searches = [parse_qs(e.query) for e in log if e.path.endswith("/search")]
    assert all(s["limit"] == ["50"] for s in searches)
    batches = [parse_qs(e.query)["ids"][0].split(",") for e in log if e.path.endswith("/artists")]
    assert batches and all(len(b) <= 50 for b in batches)
    assert stats["discovery/artist_lookups"] == len(batches)
    # Search and playlist objects were full already; only album tracks (simplified) are
    # looked up, 50 at a time, each once.
    store = Store.open(tmp_path / "store.sqlite")
    try:
        album_tracks = {r[0] for r in store.db.execute(
            "SELECT id FROM tracks WHERE first_source = 'album'")}
        full = store.db.execute("SELECT COUNT(*) FROM tracks WHERE first_source = 'album' AND "
                                "(popularity IS NULL OR isrc IS NULL)").fetchone()[0]
    finally:
        store.close()
    looked_up = [i for e in log if e.path.endswith("/v1/tracks")
                 for i in parse_qs(e.query)["ids"][0].split(",")]
    assert album_tracks and sorted(looked_up) == sorted(album_tracks) and full == 0


def test_malformed_seed_file_stops_the_crawl_command_with_one_line(tmp_path):
    plan = tmp_path / "plan.yaml"
    plan.write_text("groups: [unclosed\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPOTIFY_")}
    env.update(SPOTIFY_CLIENT_ID="x", SPOTIFY_CLIENT_SECRET="y", SPOTIFY_REFRESH_TOKEN="z")
    result = subprocess.run(
        [sys.executable, "-m", "scrapy", "crawl", "spotify_catalog", "-s", f"SEEDS_PLAN={plan}"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(plan) in lines[0], result.stderr
    assert "Traceback" not in result.stderr


@deferred_f_from_coro_f
async def test_interrupted_crawl_resumes_to_the_same_store(dev, tmp_path):
    """Stopped after its first page (the owner's playlist listing still queued), resumed and
    stopped again 31 pages later, then run to the end: the store is the uninterrupted run's."""
    # One request at a time (the frontier sends no more than CONCURRENT_REQUESTS works, over
    # every bucket), so an uninterrupted run is a fixed sequence to compare with.
    serial = {"DISCOVERY_CONCURRENCY": 1, "CONCURRENT_REQUESTS": 1}
    _, whole = await crawl(dev, tmp_path / "whole", **serial)
    assert whole["finish_reason"] == "finished"
    store = Store.open(tmp_path / "whole" / "store.sqlite")
    try:
        want_calls, want = api_calls(dev.requests(service="spotify")), store.dump()
    finally:
        store.close()

    job = tmp_path / "part" / "job"
    mark = len(dev.requests())
    stops = (1, 31)
    for stop_after in stops:
        _, part = await crawl(dev, tmp_path / "part", JOBDIR=str(job),
                              CLOSESPIDER_PAGECOUNT=stop_after, **serial)
        assert part["finish_reason"] == "closespider_pagecount"
    _, last = await crawl(dev, tmp_path / "part", JOBDIR=str(job), **serial)
    assert last["finish_reason"] == "finished"
    assert last.get("log_count/ERROR", 0) == 0
    # Nothing of an earlier run is queued in JOBDIR (the store is what resumes): the runs
    # together ask Spotify exactly what the uninterrupted run asked, each page once (each
    # run asks who the owner is: one /me more a run).
    assert not (job / "requests.queue").exists()
    part_calls = api_calls(dev.requests(mark, service="spotify"))
    assert part_calls - Counter({"/v1/me": len(stops)}) == want_calls

    resumed = Store.open(tmp_path / "part" / "store.sqlite")
    try:
        got = resumed.dump()
        for table in want:
            assert got[table] == want[table], table
    finally:
        resumed.close()


@deferred_f_from_coro_f
async def test_development_artist_lookups_stay_within_their_budget(dev, tmp_path):
    _, stats = await crawl(dev, tmp_path, DISCOVERY_ARTIST_LOOKUP_BUDGET=3, **SEARCH_ONLY,
                           **SMALL_TARGET)
    assert stats["finish_reason"] == "finished"
    lookups = [e for e in dev.requests(service="spotify")
               if "/artists/" in e.path and not e.path.endswith("/albums")]
    assert len(lookups) == 3 == stats["discovery/artist_lookups"]
    assert all(e.status == 200 for e in lookups)


@deferred_f_from_coro_f
async def test_interrupted_multi_bucket_crawl_asks_nothing_twice(dev, tmp_path):
    """Stopped part way through, with searches, albums and listings in flight, then run
    again: every page is asked once over both runs (the store, not a queue, resumes)."""
    mark = len(dev.requests())
    _, first = await crawl(dev, tmp_path, CLOSESPIDER_PAGECOUNT=120)
    assert first["finish_reason"] == "closespider_pagecount"
    assert first["discovery/album/pages"] > 0
    _, second = await crawl(dev, tmp_path)
    assert second["finish_reason"] == "finished"
    assert second.get("log_count/ERROR", 0) == 0
    calls = api_calls(dev.requests(mark, service="spotify"))
    repeated = {call: n for call, n in calls.items()
                if n > 1 and call not in ("/v1/me", "/v1/me/playlists?limit=50&offset=0")}
    assert repeated == {}
    store = Store.open(tmp_path / "store.sqlite")
    try:
        half_read = store.db.execute("SELECT COUNT(*) FROM albums WHERE next_offset > 0 AND "
                                     "expanded IS NULL").fetchone()[0]
        assert half_read == 0
    finally:
        store.close()


def test_a_query_family_is_priced_by_the_share_of_its_tracks_counted_in_a_cell(tmp_path):
    """A general query ("90s hits") finds tracks whose umbrella is not known: they count
    toward no cell, and its family must bring more new tracks a page to be worth a request
    than a cell query's. The shares are read back from the store as they were counted."""
    plan = load_plan(REPO / "seeds" / "plan.yaml", REPO / "seeds" / "umbrellas.yaml")
    cell_q = 'genre:"deep house" year:1990-1999'
    now = "2026-12-06T00:00:00Z"
    with closing(Store.open(tmp_path / "store.sqlite")) as store:
        for q, family, umbrella in (("90s hits", "decade_refreshers", None),
                                    (cell_q, "cell_genre", "House")):
            store.record_page(q=q, kind="track", family=family, umbrella=umbrella,
                              decade="90s", next_offset=10, total=100, new=10, known=0,
                              low_page=False, exhausted=None, now=now)
        for n in range(20):
            general = n < 10
            record = TrackRecord(
                id=str(n).rjust(22, "T"), name="x", isrc=None, duration_ms=200_000,
                explicit=False, album_id=None, album_name="x", album_type="album",
                release_date="1995", release_precision="year", album_image_url=None,
                artist_ids=(f"A{n}",), artist_names=("x",), is_playable=True,
                available_markets=None, popularity=None, preview_url=None, track_number=None,
                disc_number=None)
            store.upsert_track(record, source="search", now=now,
                               query="90s hits" if general else cell_q)
            # The general query: 1 of 10 counted toward a cell. The cell query: 9 (one set
            # aside by the cheap filters).
            if general or n < 19:
                store.set_planning_cells(record.id, [["House", "90s"]]
                                         if (n == 0 or not general) else [])

        def planner() -> Planner:
            return Planner(plan=plan, store=store, page_size=10, cell_target=100,
                           max_candidates=10_000, min_new_per_page=4, patience=2,
                           family_trial=5, family_min_yield=1.0, min_yield=1.0,
                           search_share=0.8, features_share=0.6)

        def placed(p: Planner) -> Counter[str]:
            """Per query family, its new tracks counted toward a plan cell."""
            return Counter({family: sum(cells.values())
                            for family, cells in p.family_cells.items()})

        p = planner()
        assert p.family_new == {"decade_refreshers": 10, "cell_genre": 10}
        assert placed(p) == {"decade_refreshers": 1, "cell_genre": 9}
        # (counted in a cell + 20 x the searches' share) / (new + 20), made exportable
        assert p.min_new("decade_refreshers") == pytest.approx(1 / ((1 + 16) / 30 * 0.6))
        assert p.min_new("cell_genre") == pytest.approx(1 / ((9 + 16) / 30 * 0.6))
        assert p.min_new("cadence") == pytest.approx(1 / (0.8 * 0.6))       # no track yet
        # Counted live as a restart counts them: a general query's new track, of no cell.
        late = replace(record, id="L".rjust(22, "T"), artist_ids=("AL",))
        store.upsert_track(late, source="search", now=now, query="90s hits")
        assert p.place([late], None, 120_000, 360_000, "search", "decade_refreshers") \
            == {late.id: []}
        again = planner()
        assert p.family_new == again.family_new == {"decade_refreshers": 11, "cell_genre": 10}
        assert placed(p) == placed(again)
        # A displaced cell track (its ISRC's winner came) is taken off its family's count.
        p.remove_candidate([("House", "90s")], "A11", "search", cell_q)
        assert placed(p)["cell_genre"] == 8
        # A general query is priced by the cells its tracks landed in that are still open:
        # with House 90s full, its one counted track is worth nothing; a cell query's
        # family keeps its share (it is asked only for an open cell).
        assert p.min_new("decade_refreshers", general=True) == pytest.approx(
            1 / ((1 + 16) / 31 * 0.6))
        p.cell_target = 9
        assert p.min_new("decade_refreshers", general=True) == pytest.approx(
            1 / ((0 + 16) / 31 * 0.6))
        assert p.min_new("decade_refreshers") == pytest.approx(1 / ((1 + 16) / 31 * 0.6))
        assert p.min_new("cell_genre") == pytest.approx(1 / ((8 + 16) / 30 * 0.6))
        # A track of two cells counts where the plan has a cell, whichever comes first.
        p.cell_target = 100
        p.add_candidate([("Nowhere", "90s"), ("House", "90s")], "AX", "search",
                        "decade_refreshers")
        assert p.min_new("decade_refreshers", general=True) == pytest.approx(
            1 / ((2 + 16) / 31 * 0.6))
