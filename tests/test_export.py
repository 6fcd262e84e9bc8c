"""The catalog export end to end: crawl the simulator, export, validate, compare with the truth.

One development-profile crawl (cached for the module) feeds most tests: the brief's
acceptance criteria through ``validate_export``, decade and umbrella accuracy against the
simulator's ground truth (reissues and compilations included), the splitter field by field,
and byte-identical re-exports under ``SOURCE_DATE_EPOCH``.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import shutil
from pathlib import Path

import pytest
from scrapy import signals
from scrapy.utils.defer import deferred_f_from_coro_f

from runclub_spiders.export.feeds import DATA_FILES, previous_dir, recover, staging_dir
from runclub_spiders.export.rows import CatalogWideRow
from runclub_spiders.export.splitter import to_audio_feature, to_cached_artists, to_cached_track
from runclub_spiders.export.validate import validate_export
from runclub_spiders.runs import CatalogRun, crawl_catalog
from tests.conftest import crawl_settings, use_credentials

SIZE = 12_000
EPOCH = "1780000000"                      # 2026-05-28T20:26:40Z
SETTINGS = {"CATALOG_CELL_MIN": 15, "CATALOG_CELL_TARGET": 30, "CATALOG_MAX_TRACKS": 4000,
            "DISCOVERY_PROGRESS_INTERVAL": 0, "DISCOVERY_CONCURRENCY": 4}
_crawled: dict[str, object] = {}


def export_settings(sim, folder: Path, **overrides):
    return crawl_settings(sim, folder, CATALOG_STORE_PATH=str(folder / "store.sqlite"),
                          EXPORT_DIR=str(folder / "exports" / "catalog"),
                          **{**SETTINGS, **overrides})


async def run(sim, folder: Path, mode: str = "full", prepare=None, **overrides) -> CatalogRun:
    """The catalog crawl as ``scrapy crawl spotify_catalog`` runs it: discovery, then export."""
    return await crawl_catalog(export_settings(sim, folder, **overrides), mode=mode,
                               prepare=prepare)


@pytest.fixture
def sim(simulator_factory, monkeypatch):
    simulator = simulator_factory(size=SIZE, profile="development")
    use_credentials(monkeypatch, simulator)
    return simulator


async def crawled(sim, tmp_path_factory):
    """One full crawl per module: (folder, run)."""
    if not _crawled:
        folder = tmp_path_factory.mktemp("crawl")
        _crawled["folder"], _crawled["run"] = folder, await run(sim, folder)
    return _crawled["folder"], _crawled["run"]


def rows(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@deferred_f_from_coro_f
async def test_crawl_publishes_an_export_that_passes_every_check(sim, tmp_path_factory):
    folder, catalog_run = await crawled(sim, tmp_path_factory)
    discovery, stats = catalog_run.discovery_stats, catalog_run.export_stats
    assert discovery["finish_reason"] == "finished" == stats["finish_reason"]
    assert catalog_run.errors == 0
    assert stats["export/published"] == 1
    export = folder / "exports" / "catalog"
    checks = validate_export(export)
    failed = [f"{c.name}: {c.detail}" for c in checks if not c.ok]
    assert not failed, failed
    assert not staging_dir(export).exists() and not previous_dir(export).exists()
    manifest = json.loads((export / "manifest.json").read_text())
    tracks = rows(export / "cached_tracks.jsonl")
    assert stats["export/tracks"] == manifest["totals"]["tracks"] == len(tracks) > 2000
    assert manifest["reccobeats"]["featureCoveragePct"] >= 99.0        # the brief's aim
    assert manifest["balance"]["cellsAtMin"] >= 100                      # of 108
    # Every rejection is counted, per seed and in total, and the stats say the same.
    total = manifest["rejections"]["total"]
    for reason, n in total.items():
        assert stats[f"export/rejected/{reason}"] == n
        assert sum(seed.get(reason, 0) for seed in
                   manifest["rejections"]["bySeed"].values()) == n
    assert {"duration_short", "duration_long", "duplicate_isrc", "no_features"} <= set(total)
    assert manifest["spotify"]["profile"] == "development"
    assert manifest["spotify"]["requestsByBucket"]["search"] == \
        discovery["quota/requests/search"]
    assert manifest["notes"] and manifest["filtersApplied"]["maxDurationMs"] == 360_000
    assert (export / "coverage.md").read_text().count("|") > 100
    assert (export / "coverage.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@deferred_f_from_coro_f
async def test_decades_and_umbrellas_match_the_ground_truth(sim, tmp_path_factory):
    folder, _ = await crawled(sim, tmp_path_factory)
    wide = rows(folder / "exports" / "catalog" / "catalog_wide.jsonl")
    catalog = sim.catalog
    decade_ok = umbrella_ok = 0
    reissued = reissued_ok = 0
    for row in wide:
        track = catalog.track_by_id[row["spotify_track_id"]]
        truth = catalog.truth(track)
        decade_ok += row["album_decade_label"] == truth["decade"]
        umbrella_ok += row["_extra"]["umbrellas"][0] in truth["umbrellas"]
        if catalog.albums[track.album_idx].kind != "original":
            reissued += 1
            reissued_ok += row["album_decade_label"] == truth["decade"]
    n = len(wide)
    print(f"\ndecade accuracy {decade_ok / n:.2%}, umbrella accuracy {umbrella_ok / n:.2%} "
          f"over {n} tracks; reissue/compilation tracks {reissued}, decade right "
          f"{reissued_ok / reissued:.2%}")
    assert decade_ok / n >= 0.97
    assert umbrella_ok / n >= 0.95
    assert reissued >= 50 and reissued_ok / reissued >= 0.97
    # Tracks read from album track lists (simplified objects: no ISRC, no album) enter the
    # catalog like searched ones: ISRC (from ReccoBeats), year, umbrella and features, as
    # right as the rest.
    albums = [row for row in wide if row["_extra"]["ingest_source"] == "album"]
    assert len(albums) >= 100
    album_decades = album_umbrellas = 0
    for row in albums:
        track = catalog.track_by_id[row["spotify_track_id"]]
        truth = catalog.truth(track)
        assert row["isrc"] == track.isrc and row["tempo"] is not None
        album_decades += row["album_decade_label"] == truth["decade"]
        album_umbrellas += row["_extra"]["umbrellas"][0] in truth["umbrellas"]
    print(f"album tracks {len(albums)}: decade {album_decades / len(albums):.2%}, umbrella "
          f"{album_umbrellas / len(albums):.2%}")
    assert album_decades / len(albums) >= 0.97
    assert album_umbrellas / len(albums) >= 0.95


@deferred_f_from_coro_f
async def test_splitter_maps_every_field_as_the_brief_lists(sim, tmp_path_factory):
    folder, _ = await crawled(sim, tmp_path_factory)
    export = folder / "exports" / "catalog"
    wide = {r["spotify_track_id"]: r for r in rows(export / "catalog_wide.jsonl")}
    tracks = rows(export / "cached_tracks.jsonl")
    features = {r["trackId"]: r for r in rows(export / "audio_features.jsonl")}
    artists = {r["id"]: r for r in rows(export / "cached_artists.jsonl")}
    assert len(tracks) == len(wide)
    for track in tracks:
        w = wide[track["id"]]
        assert list(track)[:11] == ["id", "name", "artistId", "artistName", "durationMs",
                                    "albumName", "albumReleaseYear", "popularity", "explicit",
                                    "addedAt", "isPlayable"]
        assert track["name"] == w["name"]
        assert track["artistId"] == w["artist_ids"][0]
        assert track["artistName"] == w["artist_names"][0]
        assert track["durationMs"] == w["duration_ms"]
        assert track["albumName"] == w["album_name"]
        assert track["albumReleaseYear"] == w["album_release_year"]
        assert track["popularity"] == w["popularity_snapshot"]
        assert track["explicit"] == w["explicit"]
        assert track["addedAt"] == w["created_at"]
        assert track["isPlayable"] == (w["available_us"]
                                       or "US" in w["available_primary_markets"])
        assert track["_isrc"] == w["isrc"] and track["_decade"] == w["album_decade_label"]
        assert all(key.startswith("_") for key in list(track)[11:])
        f = features.get(track["id"])
        if w["tempo"] is None:
            assert f is None
        else:
            assert list(f) == ["trackId", "tempo", "energy", "danceability", "valence",
                               "loudness", "key", "mode", "timeSignature"]
            for key in ("tempo", "energy", "danceability", "valence", "loudness", "key",
                        "mode"):
                assert f[key] == w[key]
            assert f["timeSignature"] is None and w["time_signature"] is None
        for i, artist_id in enumerate(w["artist_ids"]):
            artist = artists[artist_id]
            assert artist["name"] == w["artist_names"][i]
            assert artist["genres"] == w["artist_genres"][i]
            assert list(artist) == ["id", "name", "genres", "popularity"]


def test_splitter_functions_on_one_row():
    wide = CatalogWideRow(
        id="x", spotify_track_id="A" * 22, isrc="USAAA7700001", name="Song",
        duration_ms=200_000, explicit=True, album_name="Album", album_release_date="1977-05",
        album_release_year=1977, album_decade_label="70s", album_image_url=None,
        popularity_snapshot=58, popularity_bucket=50, available_us=False,
        available_primary_markets=["GB"], preview_url=None, artist_ids=["B" * 22, "C" * 22],
        artist_names=["Lead", "Guest"], artist_genres=[["outlaw country"], []],
        artist_image_urls=None, source_playlist_id=None, source_playlist_name=None,
        source_playlist_owner=None, sources=[], recco_track_id="r", recco_features_version="v",
        recco_features_at=None, tempo=170.0, energy=0.7, danceability=0.6, valence=0.4,
        loudness=-6.0, acousticness=0.1, instrumentalness=0.0, liveness=0.1, speechiness=0.05,
        key=9, mode=1, time_signature=None, created_at="2026-01-01T00:00:00Z",
        updated_at="2026-01-01T00:00:00Z",
        _extra={"umbrellas": ["Country & Americana"], "ingest_source": "search",
                "ingest_query": "70s country", "tempo_bucket": 170, "cadence_spm": 170,
                "cadence_match": "1:1"})
    track = to_cached_track(wide, "GB")
    assert (track.id, track.artistId, track.artistName, track.albumReleaseYear,
            track.popularity, track.isPlayable) == ("A" * 22, "B" * 22, "Lead", 1977, 58, True)
    assert to_cached_track(wide, "US").isPlayable is False   # neither US nor the market
    assert to_audio_feature(wide).tempo == 170.0
    artists = to_cached_artists(wide, {"B" * 22: 67})
    assert [(a.id, a.name, a.genres, a.popularity) for a in artists] == [
        ("B" * 22, "Lead", ["outlaw country"], 67), ("C" * 22, "Guest", [], None)]


@deferred_f_from_coro_f
async def test_reexports_are_byte_identical_with_source_date_epoch(sim, tmp_path_factory,
                                                                   monkeypatch):
    folder, _ = await crawled(sim, tmp_path_factory)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)
    hashes = []
    for attempt in ("one", "two"):
        copy = tmp_path_factory.mktemp(f"reexport-{attempt}")
        shutil.copy(folder / "store.sqlite", copy / "store.sqlite")
        mark = len(sim.log)
        reexport = await run(sim, copy, mode="export")
        assert reexport.discovery is None                   # no discovery crawl at all
        stats = reexport.export_stats
        assert stats["finish_reason"] == "finished" and stats["export/published"] == 1
        assert stats.get("log_count/ERROR", 0) == 0
        # Export mode makes no request at all: not one token, search or ReccoBeats call.
        assert not any(k.startswith("quota/requests/") for k in stats)
        assert sim.requests(mark) == []         # the simulator saw nothing, accounts included
        export = copy / "exports" / "catalog"
        hashes.append({p.name: digest(p) for p in sorted(export.iterdir())})
        manifest = json.loads((export / "manifest.json").read_text())
        assert manifest["createdAt"] == "2026-05-28T20:26:40Z"
        assert {p.name: manifest["fileHashes"][p.name] for p in export.iterdir()
                if p.name != "manifest.json"} == {k: v for k, v in hashes[-1].items()
                                                  if k != "manifest.json"}
        for name in DATA_FILES:
            if name.endswith(".gz"):
                plain = (export / name[:-3]).read_bytes()
                assert gzip.decompress((export / name).read_bytes()) == plain
    assert hashes[0] == hashes[1]
    assert set(hashes[0]) >= {*DATA_FILES, "manifest.json", "coverage.md", "coverage.png"}


@deferred_f_from_coro_f
async def test_an_interrupted_crawl_leaves_the_previous_export_untouched(sim, tmp_path):
    export = tmp_path / "exports" / "catalog"
    export.mkdir(parents=True)
    (export / "manifest.json").write_text('{"previous": true}')
    interrupted = await run(sim, tmp_path, CLOSESPIDER_PAGECOUNT=5)
    assert interrupted.discovery_stats["finish_reason"] == "closespider_pagecount"
    assert interrupted.errors == 0
    assert interrupted.export is None                   # no export after a CLOSESPIDER_* close
    assert sorted(p.name for p in export.iterdir()) == ["manifest.json"]
    assert (export / "manifest.json").read_text() == '{"previous": true}'
    assert not staging_dir(export).exists()


@deferred_f_from_coro_f
async def test_discover_mode_creates_no_export_file(sim, tmp_path):
    """-a mode=discover: the discovery crawl has no feed at all, so not even an empty staged
    file is created (the feeds belong to the catalog_export spider, which does not run)."""
    export = tmp_path / "exports" / "catalog"
    staged: list[bool] = []

    def watch(crawler) -> None:
        crawler.signals.connect(lambda: staged.append(staging_dir(export).exists()),
                                signal=signals.spider_closed, weak=False)

    discovered = await run(sim, tmp_path, mode="discover", prepare=watch,
                           CLOSESPIDER_PAGECOUNT=5)
    assert discovered.export is None and discovered.errors == 0
    assert not discovered.discovery.settings.getdict("FEEDS")
    assert staged == [False]
    assert not export.parent.exists()


def test_recover_puts_back_an_export_whose_publish_was_cut_short(tmp_path):
    export = tmp_path / "catalog"
    previous = previous_dir(export)
    previous.mkdir()
    (previous / "manifest.json").write_text("old")
    staging_dir(export).mkdir()
    (staging_dir(export) / "catalog_wide.jsonl").write_text("partial")
    recover(export)                     # killed between the two renames
    assert (export / "manifest.json").read_text() == "old"
    assert not previous.exists() and not staging_dir(export).exists()


@deferred_f_from_coro_f
async def test_csv_and_parquet_copies_behind_a_setting(sim, tmp_path_factory):
    folder, _ = await crawled(sim, tmp_path_factory)
    copy = tmp_path_factory.mktemp("copies")
    shutil.copy(folder / "store.sqlite", copy / "store.sqlite")
    stats = (await run(sim, copy, mode="export", EXPORT_COPIES=["csv", "parquet"])).export_stats
    assert stats["finish_reason"] == "finished" and stats["export/published"] == 1
    assert stats.get("log_count/ERROR", 0) == 0
    export = copy / "exports" / "catalog"
    manifest = json.loads((export / "manifest.json").read_text())
    tracks = manifest["totals"]["tracks"]
    assert tracks > 0
    assert manifest["files"]["catalog_wide.csv"]["rows"] == tracks
    with (export / "catalog_wide.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == tracks
    wide_ids = [json.loads(line)["id"] for line in
                (export / "catalog_wide.jsonl").read_text().splitlines()]
    assert [row["id"] for row in rows] == wide_ids
    assert digest(export / "catalog_wide.parquet") == \
        manifest["fileHashes"]["catalog_wide.parquet"]
    import pyarrow.parquet as pq  # noqa: PLC0415 -- optional dependency, as in the exporter

    assert pq.read_table(export / "catalog_wide.parquet").num_rows == tracks
    assert not any(c.ok is False for c in validate_export(export))


@deferred_f_from_coro_f
async def test_extended_profile_exports_markets_and_popularity(simulator_factory, monkeypatch,
                                                               tmp_path):
    """Extended Quota: Spotify gives each track its markets (dozens of countries) and its
    popularity; the rows report the primary markets it plays in and that popularity."""
    sim = simulator_factory(size=SIZE, profile="extended")
    use_credentials(monkeypatch, sim)
    extended = await run(sim, tmp_path, CATALOG_MAX_TRACKS=1500)
    assert extended.reason == "finished"
    assert extended.errors == 0
    assert extended.export_stats["export/published"] == 1
    export = tmp_path / "exports" / "catalog"
    assert [f"{c.name}: {c.detail}" for c in validate_export(export) if not c.ok] == []
    truth = {t.id: t for t in sim.catalog.tracks}
    wide = rows(export / "catalog_wide.jsonl")
    assert len(wide) > 500
    assert max(len(truth[w["spotify_track_id"]].markets) for w in wide) > 4
    for w in wide:
        track = truth[w["spotify_track_id"]]
        assert w["available_primary_markets"] == sorted({"US", "CA", "GB", "AU"}
                                                        & set(track.markets))
        assert w["available_us"] == ("US" in track.markets)
        assert w["popularity_snapshot"] == track.popularity
