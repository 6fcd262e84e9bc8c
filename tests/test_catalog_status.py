"""The finish projection (``catalog/projection.py``) and ``scrapy catalog-status``, on a store
filled directly with known figures: no crawl, no simulator, no API call."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from contextlib import closing
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from scrapy.settings import Settings
from scrapy.utils.test import get_crawler

import runclub_spiders.settings as project
from runclub_spiders import clock
from runclub_spiders.catalog.projection import (
    DEFAULT_BUCKET_SIZE,
    BucketSize,
    Projection,
    bucket_sizes,
    cell_counts,
    discovery_buckets,
    project_store,
)
from runclub_spiders.catalog.projection import project as projection
from runclub_spiders.clock import OFFSET_ENV
from runclub_spiders.frontier.progress import Progress
from runclub_spiders.probe import Capabilities
from runclub_spiders.store import Store

REPO = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 12, 6, 10, 0, 5, tzinfo=UTC).timestamp()   # the quota clock of the tests
HOUR = int(NOW // 3600)
UMBRELLAS = """\
umbrellas:
  - name: Pop
    neighbours: [Rock]
    representative_genres: [pop]
  - name: Rock
    neighbours: [Pop]
    representative_genres: [rock]
rules:
  - pop: Pop
  - rock: Rock
"""
PLAN = """\
decades:
  80s: 80s
  90s: 90s
  00s: 2000s
groups:
  words:
    kind: track
    keywords: [running]
"""
CELLS = [("Pop", "80s"), ("Pop", "90s"), ("Pop", "00s"),
         ("Rock", "80s"), ("Rock", "90s"), ("Rock", "00s")]
SETTINGS = {"CATALOG_CELL_TARGET": 100, "DISCOVERY_OVERSAMPLE": 1.0,
            "CATALOG_MAX_TRACKS": 1000, "SPOTIFY_DAILY_BUDGET": {"albums": 5}}


def add_tracks(store: Store, n: int, cells: list | None, *, source: str = "search",
               state: str = "done") -> None:
    start = store.db.execute("SELECT COUNT(*) FROM tracks").fetchone()[0]
    for i in range(start, start + n):
        store.db.execute(
            "INSERT INTO tracks (id, name, duration_ms, explicit, album_name, artist_ids, "
            "artist_names, first_source, first_seen_at, updated_at, enrich_state, "
            "planning_cells) VALUES (?, ?, 200000, 0, 'Album', '[]', '[]', ?, ?, ?, ?, ?)",
            (f"t{i:05d}", f"Track {i}", source, "2026-12-05T00:00:00Z",
             "2026-12-05T00:00:00Z", state, None if cells is None else json.dumps(cells)))


def build_store(path: Path) -> None:
    """Known figures. Candidates per cell (target 100): Pop 80s 10 (3 of them from the
    owner's playlists), Pop 90s 4, Pop 00s 0, Rock 80s 7 (stopped: exhausted), Rock 90s 2
    (one track counts in both 90s cells), Rock 00s 12 (stopped: low_yield); 2 without a
    cell, 1 set aside (not counted): 36 counted, 33 found by discovery's own requests.
    Requests on every day: search 40 + albums 10 + artists 5 = 55 of discovery."""
    with closing(Store.open(path)) as store, store.transaction():
        add_tracks(store, 7, [["Pop", "80s"]])
        add_tracks(store, 3, [["Pop", "80s"]], source="playlist")
        add_tracks(store, 3, [["Pop", "90s"]], state="pending")
        add_tracks(store, 1, [["Pop", "90s"], ["Rock", "90s"]], state="pending")
        add_tracks(store, 1, [["Rock", "90s"]])
        add_tracks(store, 7, [["Rock", "80s"]], state="miss")
        add_tracks(store, 12, [["Rock", "00s"]], state="pending")
        add_tracks(store, 2, [])
        add_tracks(store, 1, None, state="skipped")
        for umbrella, decade, found, stopped in (("Pop", "80s", 10, None),
                                                 ("Rock", "80s", 7, "exhausted"),
                                                 ("Rock", "00s", 12, "low_yield")):
            store.set_discovery_cell(umbrella, decade, found=found, reachable=None,
                                     stopped=stopped, now="2026-12-05T00:00:00Z")
        for day, counts in (("2026-12-04", {"search": 20, "albums": 10, "tracks": 60}),
                            ("2026-12-05", {"search": 20, "artists": 5, "tracks": 40,
                                            "playlists": 7})):
            for bucket, n in counts.items():
                store.add_quota_requests(day, bucket, n)
        # The rolling window: the current hour and the 23 before it; hour - 24 is out, but
        # in the 25 hours a SPOTIFY_DAILY_BUDGET counts (albums' budget: 5, all spent).
        for hour, bucket, n in ((HOUR, "search", 12), (HOUR - 23, "search", 5),
                                (HOUR - 24, "search", 100), (HOUR, "tracks", 3),
                                (HOUR - 1, "albums", 4), (HOUR - 24, "albums", 1)):
            store.add_quota_hour(hour, bucket, n)
        store.add_quota_learned("search", NOW - 2 * 86_400, 25, 50_400.0)
        store.add_quota_learned("search", NOW - 3600, 30, 50_400.0)    # the latest wins
        store.add_quota_learned("playlists", NOW - 7200, 8, None)
        store.set_quota_park("search", NOW + 5 * 3600, "QUOTA_EXCEEDED")
        store.set_quota_park("tracks", NOW - 60, "Retry-After 7200 s")  # over: open


# ---------------------------------------------------------------------------- store reads
def test_window_use_counts_the_current_hour_and_the_23_before(tmp_path):
    build_store(tmp_path / "store.sqlite")
    with closing(Store.open(tmp_path / "store.sqlite")) as store:
        assert store.quota_window_use(NOW) == {"albums": 4, "search": 17, "tracks": 3}
        assert store.quota_window_use(NOW + 3600) == {"albums": 4, "search": 12, "tracks": 3}
        assert store.learned_quota() == {"playlists": (8, None, NOW - 7200),
                                         "search": (30, 50_400.0, NOW - 3600)}
        assert store.quota_requests_all_days() == {"albums": 10, "artists": 5,
                                                   "playlists": 7, "search": 40,
                                                   "tracks": 100}
        assert store.discovered_candidates() == 33


# ---------------------------------------------------------------------------- projection
def project_known_store(path: Path, *parks: tuple[str, float]) -> Projection:
    """The projection of ``build_store``'s store at NOW under SETTINGS, with ``parks``
    (bucket, until) recorded on top."""
    build_store(path)
    settings = Settings()
    settings.setmodule(project)
    settings.update(SETTINGS)
    with closing(Store.open(path)) as store:
        for bucket, until in parks:
            store.set_quota_park(bucket, until, "QUOTA_EXCEEDED")
        return project_store(store, settings, CELLS, NOW)


def test_projection_of_a_known_store(tmp_path):
    p = project_known_store(tmp_path / "store.sqlite")
    # Open cells below 100: Pop 80s 90 + Pop 90s 96 + Pop 00s 100 + Rock 90s 98; Rock 80s
    # and Rock 00s are stopped. Room under the cap: 1000 - 36.
    assert p.wanted == 384
    # Discovery's buckets: search, albums, artists and tracks (the leads); not playlists.
    assert (p.candidates, p.requests_made) == (33, 155)
    assert p.requests_needed == 1804                     # ceil(384 / (33 / 155))
    assert p.sizes == (BucketSize("search", 30, "learned"),
                       BucketSize("albums", 5, "SPOTIFY_DAILY_BUDGET"),
                       BucketSize("artists", DEFAULT_BUCKET_SIZE, "default"),
                       BucketSize("tracks", DEFAULT_BUCKET_SIZE, "default"))
    assert p.per_day == 1235
    assert p.days_needed == pytest.approx(1804 / 1235)
    # Search is parked until 15:00: nothing is left today, and 1,804 needs two days' calls.
    assert (p.left_today, p.parked) == (0, ("search",))
    assert p.finish == date(2026, 12, 8)


def test_a_bucket_discovery_does_not_draw_on_adds_no_day():
    def buckets(caps=None, **overrides):
        settings = Settings()
        settings.setmodule(project)
        settings.update(overrides)
        return discovery_buckets(settings, Capabilities(caps or {}, {}, None))

    assert buckets() == ("search", "albums", "album_tracks", "artists", "tracks")
    # Leads off, by the setting or because ReccoBeats was unreachable: no tracks bucket in
    # Development Mode; in Extended Quota the album reads' full objects still draw on it
    # (and album reads never fall back to /albums/{id}/tracks: no quota parks them).
    assert buckets(DISCOVERY_RECCO_LEADS=False) == ("search", "albums", "album_tracks",
                                                    "artists")
    assert buckets({"reccobeats": "unreachable"}) == ("search", "albums", "album_tracks",
                                                      "artists")
    assert buckets(DISCOVERY_RECCO_LEADS=False, SPOTIFY_API_PROFILE="extended") \
        == ("search", "albums", "artists", "tracks")
    # Album reads and listings off, or refused by Spotify (the probe).
    assert buckets({"albums": "forbidden", "artist_albums": "forbidden"},
                   DISCOVERY_RECCO_LEADS=False, SPOTIFY_API_PROFILE="extended") == ("search",)
    assert buckets(DISCOVERY_ALBUMS=False, DISCOVERY_ARTIST_ALBUMS=False) \
        == ("search", "tracks")


def test_album_tracks_add_a_day_only_once_spotify_showed_a_size_of_their_own():
    # Nobody knows whether /albums/{id}/tracks shares the albums bucket until Spotify
    # refuses it: no size of its own before, 0 when it shares, what it served when not.
    buckets = ("search", "albums", "album_tracks")

    def sizes(learned=None, budgets=None):
        return {s.bucket: (s.size, s.source)
                for s in bucket_sizes(learned or {}, budgets or {}, buckets)}

    assert sizes() == {"search": (DEFAULT_BUCKET_SIZE, "default"),
                       "albums": (DEFAULT_BUCKET_SIZE, "default")}
    assert sizes({"album_tracks": (0, 3600.0, NOW)})["album_tracks"] == (0, "learned")
    assert sizes({"album_tracks": (600, 3600.0, NOW)})["album_tracks"] == (600, "learned")
    assert sizes(budgets={"album_tracks": 50})["album_tracks"] == (50, "SPOTIFY_DAILY_BUDGET")


def test_the_finish_is_the_day_of_the_run_that_spends_the_last_request():
    # search 600 + albums 600 a day; a yield of one candidate per request, so the requests
    # needed are the candidates wanted.
    sizes = bucket_sizes({}, {}, ("search", "albums"))

    def finish(wanted: int, use: dict[str, int], parked: tuple[str, ...] = (), *,
               until: float = NOW + 20 * 3600, buckets=sizes) -> tuple:
        p = projection(counts={("Pop", "80s"): 0}, stopped=(), cell_target=wanted,
                       total_candidates=0, max_candidates=10_000, candidates=50,
                       requests_made=50, sizes=buckets, now=NOW, use=use,
                       parks=dict.fromkeys(parked, until))
        assert p.requests_needed == wanted
        return p.left_today, p.finish

    today, tomorrow = date(2026, 12, 6), date(2026, 12, 7)
    # What the windows still hold today (100 + 500) is spent today; the rest a day at a time.
    assert finish(600, {"search": 500, "albums": 100}) == (600, today)
    assert finish(601, {"search": 500, "albums": 100}) == (600, tomorrow)
    assert finish(1800, {"search": 500, "albums": 100}) == (600, tomorrow)
    assert finish(1801, {"search": 500, "albums": 100}) == (600, date(2026, 12, 8))
    # A parked bucket: the crawl has closed for the day and the rest waits for the next
    # run, however little it is (counting days, 10 requests of 1,200 a day were "today").
    assert finish(10, {"search": 600, "albums": 100}, ("search",)) == (0, tomorrow)
    assert finish(1201, {}, ("albums",)) == (0, date(2026, 12, 8))
    # A bucket discovery does not draw on parks nothing; a park that has ended neither.
    assert finish(10, {"search": 600}, ("playlists",)) == (600, today)
    assert finish(10, {"search": 600}, ("albums",), until=NOW - 1) == (600, today)
    # Use over the size (Spotify's window and ours differ by an hour) leaves nothing.
    assert finish(10, {"search": 700, "albums": 595}) == (5, tomorrow)
    # A park that outlasts the runs the calls need: the finish waits for its end.
    assert finish(10, {}, ("search",), until=NOW + 50 * 3600) == (0, date(2026, 12, 8))
    # Album tracks sharing the albums bucket (size 0): their park closes nothing. With a
    # bucket of their own and open, the albums are read through it while albums is parked.
    shared = bucket_sizes({"album_tracks": (0, 3600.0, NOW)}, {},
                          ("search", "albums", "album_tracks"))
    assert finish(10, {}, ("album_tracks",), buckets=shared) == (1200, today)
    assert finish(10, {}, ("albums", "album_tracks"), buckets=shared) == (0, tomorrow)
    own = bucket_sizes({"album_tracks": (600, 3600.0, NOW)}, {},
                       ("search", "albums", "album_tracks"))
    assert finish(10, {"albums": 600}, ("albums",), buckets=own) == (1200, today)
    assert finish(10, {}, ("albums", "album_tracks"), buckets=own) == (0, tomorrow)


def test_a_park_the_crawl_waits_for_closes_no_day(tmp_path):
    # Search parked for 5 minutes (within QUOTA_PARK_IDLE_WAIT): the run waits for it, so
    # today still holds 13 + 0 + 600 + 597 calls (sizes less the window's use; albums: its
    # budget of 5, spent in the 25 hours a budget counts, 4 of them in Spotify's 24).
    p = project_known_store(tmp_path / "store.sqlite", ("search", NOW + 300))
    assert (p.parked, p.left_today, p.requests_needed) == ((), 1210, 1804)
    assert p.finish == date(2026, 12, 7)                   # 594 more: tomorrow's run


def test_the_cap_bounds_what_is_wanted_and_nothing_wanted_is_done_today():
    sizes = bucket_sizes({}, {})
    common = {"stopped": (), "cell_target": 10, "candidates": 10, "requests_made": 20,
              "sizes": sizes, "now": NOW, "use": {}, "parks": {}}
    # The cap bounds what counts toward a cell below its target: Jazz's 30 past its target
    # do not bring the end nearer (useful 0 + 5 + 10 = 15 of 20: 5 more wanted).
    capped = projection(counts={("Pop", "80s"): 0, ("Rock", "80s"): 5, ("Jazz", "80s"): 40},
                        total_candidates=45, max_candidates=20, **common)
    assert (capped.wanted, capped.requests_needed) == (5, 10)
    done = projection(counts={("Pop", "80s"): 12}, total_candidates=12, max_candidates=100,
                   **common)
    assert (done.wanted, done.requests_needed, done.days_needed) == (0, 0, 0)
    assert done.finish == date(2026, 12, 6)
    # Nothing wanted is done today even with no bucket to spend (every size 0).
    idle = projection(counts={("Pop", "80s"): 12}, total_candidates=12, max_candidates=100,
                      **{**common, "sizes": ()})
    assert (idle.days_needed, idle.finish) == (None, date(2026, 12, 6))
    unmeasured = projection(counts={("Pop", "80s"): 0}, total_candidates=0, max_candidates=100,
                         **{**common, "candidates": 0, "requests_made": 0})
    assert (unmeasured.wanted, unmeasured.requests_needed, unmeasured.finish) == \
        (10, None, None)


# ---------------------------------------------------------------------------- the command
def catalog_status(tmp_path: Path, store: Path, *settings: str) -> subprocess.CompletedProcess:
    (tmp_path / "plan.yaml").write_text(PLAN)
    (tmp_path / "umbrellas.yaml").write_text(UMBRELLAS)
    options = [f"CATALOG_STORE_PATH={store}", f"SEEDS_PLAN={tmp_path / 'plan.yaml'}",
               f"SEEDS_UMBRELLAS={tmp_path / 'umbrellas.yaml'}",
               "CATALOG_CELL_TARGET=100", "DISCOVERY_OVERSAMPLE=1.0",
               "CATALOG_MAX_TRACKS=1000", 'SPOTIFY_DAILY_BUDGET={"albums": 5}', *settings]
    # The quota clock shifted so that the command's now is NOW (plus its start-up time).
    env = {**os.environ, OFFSET_ENV: str(NOW - time.time())}
    return subprocess.run(
        [sys.executable, "-m", "scrapy", "catalog-status",
         *[arg for option in options for arg in ("-s", option)]],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=False)


EXPECTED = """\
catalog-status: {store} at 2026-12-06 10:00 UTC (no API call)

Candidates per cell (found/target, * = discovery stopped there); 36 in all, cap 1,000
  umbrella     80s      90s      00s
  Pop       10/100    4/100    0/100
  Rock       7/100*   2/100   12/100*
  * stopped: exhausted, low_yield

Quota buckets (24 h use, by whole hours; learned size: when, and the wait Spotify gave):
  bucket       24 h use  learned size                          parked
  search             17  30 (2026-12-06 09:00, wait 14.0 h)    until 2026-12-06T15:00:05Z
  albums              4  not learned                           open
  album_tracks        0  not learned                           open
  artists             0  not learned                           open
  tracks              3  not learned                           open
  playlists           0  8 (2026-12-06 08:00, no Retry-After)  open
  user                0  not learned                           open

Pending enrichment: 16 tracks

Projection (yield over the whole history, so the date can come early; see catalog/projection.py):
  tracks still wanted:   384 candidates in open cells
  yield:                 0.21 new candidates per request (33 / 155 requests)
  requests still needed: 1,804
  requests a day:        1,235, the sizes of the buckets discovery draws on:
    search               30 (learned)
    albums               5 (SPOTIFY_DAILY_BUDGET)
    artists              600 (not learned, no budget: the default)
    tracks               600 (not learned, no budget: the default)
  left today:            0 (search parked: the rest waits for the next run)
  days needed:           1.5
  projected finish:      2026-12-08 (UTC), the run that spends the last request
"""


def test_catalog_status_prints_the_known_figures_and_writes_nothing(tmp_path):
    store = tmp_path / "store.sqlite"
    build_store(store)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    result = catalog_status(tmp_path, store)
    assert result.returncode == 0, result.stderr
    assert result.stdout == EXPECTED.format(store=store)
    assert result.stderr == ""
    # Nothing written: the store's bytes are the same and no -wal/-shm is left behind.
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.suffix != ".yaml"}
    assert after == {k: v for k, v in before.items() if not k.endswith(".yaml")}


def test_catalog_status_without_a_store_is_one_line_and_exit_1(tmp_path):
    missing = tmp_path / "nowhere" / "store.sqlite"
    result = catalog_status(tmp_path, missing)
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "CATALOG_STORE_PATH" in lines[0] and str(missing) in lines[0]
    assert "Traceback" not in result.stderr
    assert not missing.parent.exists()


# ---------------------------------------------------------------------------- progress line
class StubPlanner:
    """What ``Progress`` reads of the planner: the counts as the store holds them."""

    def __init__(self, store: Store) -> None:
        self.counts, self.total_candidates = cell_counts(store, CELLS)
        self.cell_target, self.max_candidates, self.families = 100, 1000, {}

    def cells_at_target(self) -> int:
        return sum(1 for n in self.counts.values() if n >= self.cell_target)

    def useful(self) -> int:
        return sum(min(n, self.cell_target) for n in self.counts.values())


def test_progress_shows_the_projected_finish_and_sets_its_stats(tmp_path, caplog,
                                                                monkeypatch):
    build_store(tmp_path / "store.sqlite")
    monkeypatch.setattr(clock, "now", lambda: NOW)
    defaults = {name: getattr(project, name) for name in dir(project) if name.isupper()}
    crawler = get_crawler(settings_dict={**defaults, **SETTINGS,
                                         "DISCOVERY_PROGRESS_INTERVAL": 0})
    crawler.stats.open_spider()
    with closing(Store.open(tmp_path / "store.sqlite")) as store:
        planner = StubPlanner(store)
        progress = Progress(crawler, store, planner)
        with caplog.at_level("INFO", logger="runclub_spiders.frontier.progress"):
            progress.close()
    assert "projected finish: 2026-12-08 (1,804 requests to go)" in caplog.text
    assert crawler.stats.get_value("discovery/projected_finish") == "2026-12-08"
    assert crawler.stats.get_value("discovery/requests_needed") == 1804
    assert crawler.stats.get_value("discovery/candidates_toward_target") == sum(
        min(n, 100) for n in planner.counts.values()) > 0
