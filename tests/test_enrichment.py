"""Cheap filters and ReccoBeats enrichment, crawled through Scrapy's downloader.

Each crawl runs ``CandidateSpider`` (a store at ``tmp_path``, tracks built from the simulator's
catalog) through both pipelines against the simulator, and asserts the close reason, the
error-log count, the exact stats, what the simulator's request log shows was asked, and what
the store holds afterwards against the catalog's ground truth.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import replace
from datetime import datetime, timedelta
from urllib.parse import parse_qs

import pytest
from scrapy.utils.defer import deferred_f_from_coro_f
from scrapy.utils.misc import build_from_crawler
from scrapy.utils.test import get_crawler

from runclub_spiders import scrapy_compat
from runclub_spiders.catalog.isrc import isrc_rank
from runclub_spiders.catalog.years import release_year
from runclub_spiders.pipelines.cheap_filters import CheapFilterPipeline
from runclub_spiders.pipelines.enrichment import ReccoBeatsEnrichmentPipeline
from runclub_spiders.pipelines.reccobeats import (
    clean_features,
    parse_countries,
    spotify_id_of,
)
from runclub_spiders.signals import close_started
from runclub_spiders.simulator.catalog import Track
from runclub_spiders.store import FEATURE_FIELDS, Store, TrackRecord
from tests.conftest import crawl_settings, project_settings, run_spider
from tests.enrichment_spiders import CandidateSpider

FILTERS = "runclub_spiders.pipelines.cheap_filters.CheapFilterPipeline"
ENRICH = "runclub_spiders.pipelines.enrichment.ReccoBeatsEnrichmentPipeline"
PIPELINES = {FILTERS: 100, ENRICH: 200}
WAIT = 1.0                      # RECCOBEATS_BATCH_WAIT in these tests, seconds (0.3 split
                                # batches on a loaded machine: 3 requests where 2 were due)


# ---------------------------------------------------------------------------- helpers
@pytest.fixture(autouse=True)
def quick_idle_check(monkeypatch):
    """These crawls have no request left once start() is read, so only the engine's 5 s
    heartbeat would notice that the last items are done; check every 0.1 s instead."""
    monkeypatch.setattr(*scrapy_compat.ENGINE_HEARTBEAT, 0.1)


def record(sim, track: Track, **changes) -> TrackRecord:
    """The store record the catalog spider would build from the simulator's track JSON."""
    catalog = sim.catalog
    album = catalog.albums[track.album_idx]
    artists = [catalog.artists[i] for i in track.artist_idxs]
    return replace(TrackRecord(
        id=track.id, name=track.name, isrc=track.isrc, duration_ms=track.duration_ms,
        explicit=track.explicit, album_id=album.id, album_name=album.name,
        album_type=album.album_type, release_date=album.release_date,
        release_precision=album.precision, album_image_url=None,
        artist_ids=tuple(a.id for a in artists), artist_names=tuple(a.name for a in artists),
        is_playable=catalog.market in track.markets, available_markets=None, popularity=None,
        preview_url=None, track_number=track.track_number, disc_number=1), **changes)


def passes(sim, track: Track) -> bool:
    return 120_000 <= track.duration_ms <= 360_000 and sim.catalog.market in track.markets


def eligible(sim, n: int, start: int = 0) -> list[Track]:
    """``n`` tracks that pass the cheap filters, no two sharing an ISRC."""
    shared = {i for i, c in Counter(t.isrc for t in sim.catalog.tracks).items() if c > 1}
    pool = [t for t in sim.catalog.tracks if passes(sim, t) and t.isrc not in shared]
    return pool[start:start + n]


def isrc_pairs(sim) -> list[tuple[Track, Track]]:
    """Pairs of tracks sharing an ISRC, both passing duration and playability."""
    groups: dict[str, list[Track]] = defaultdict(list)
    for t in sim.catalog.tracks:
        groups[t.isrc].append(t)
    return [(g[0], g[1]) for g in groups.values()
            if len(g) == 2 and passes(sim, g[0]) and passes(sim, g[1])]


async def crawl(sim, tmp_path, records=(), *, repeat=(), resume=False, **settings):
    settings.setdefault("ITEM_PIPELINES", PIPELINES)
    settings.setdefault("RECCOBEATS_BATCH_WAIT", WAIT)
    # No project spiders: the crawl should not depend on runclub_spiders.spiders importing.
    return await run_spider(CandidateSpider, crawl_settings(
        sim, tmp_path, SPOTIFY_AUTH_ENABLED=False, SPIDER_MODULES=[], **settings),
        records=list(records), repeat=list(repeat), resume=resume)


def recco_log(sim, since: int = 0, endpoint: str = "/audio-features"):
    return [e for e in sim.requests(since, service="reccobeats") if e.path.endswith(endpoint)]


def asked(entry) -> list[str]:
    return [i for v in parse_qs(entry.query)["ids"] for i in v.split(",")]


def open_store(tmp_path) -> Store:
    return Store.open(tmp_path / "store.sqlite")


def enrich_stats(stats) -> dict:
    return {k: v for k, v in stats.items()
            if k.startswith(("reccobeats/", "filters/", "ratelimit/", "retry/"))}


def assert_enriched(sim, store: Store, tracks: list[Track], *, ttl_days: float = 60) -> None:
    """Features equal the catalog's for what ReccoBeats knows; misses for the rest."""
    for track in tracks:
        row = store.track(track.id)
        features = store.features(track.id)
        if track.recco_known:
            assert row["enrich_state"] == "done", track.id
            assert features is not None
            assert {f: features[f] for f in FEATURE_FIELDS} == sim.catalog.features(track)
            assert features["recco_id"] == sim.catalog.recco_id(track)
            assert features["isrc"] == track.isrc
            assert features["fetched_at"] == row["enriched_at"]
        else:
            assert row["enrich_state"] == "miss", track.id
            assert features is None
            seen = datetime.strptime(row["enriched_at"], "%Y-%m-%dT%H:%M:%SZ")
            retry = datetime.strptime(row["enrich_retry_after"], "%Y-%m-%dT%H:%M:%SZ")
            assert retry - seen == timedelta(days=ttl_days)


def assert_items(sim, items, tracks: list[Track]) -> None:
    by_id = {i.id: i for i in items}
    assert len(items) == len(tracks) == len(by_id)
    for track in tracks:
        item = by_id[track.id]
        assert item.rejected is None
        if track.recco_known:
            assert (item.enrichment, item.features) == ("done", sim.catalog.features(track))
        else:
            assert (item.enrichment, item.features) == ("miss", None)


# ---------------------------------------------------------------------------- batching and joins
@pytest.mark.parametrize("stray", [False, True])
@deferred_f_from_coro_f
async def test_batches_of_40_joined_by_href(simulator_factory, tmp_path, stray):
    sim = simulator_factory(recco_stray_rows=stray)      # recco_shuffle is on by default
    assert sim.config.recco_shuffle
    tracks = eligible(sim, 100)
    known = sum(t.recco_known for t in tracks)
    assert 40 < known < 80
    crawler, stats = await crawl(sim, tmp_path, [record(sim, t) for t in tracks])
    assert stats["finish_reason"] == "finished"
    assert "log_count/ERROR" not in stats
    log = recco_log(sim)
    assert len(log) == math.ceil(100 / 40) == 3
    assert all(e.status == 200 for e in log)
    sent = [i for e in log for i in asked(e)]
    assert sorted(len(asked(e)) for e in log) == [20, 40, 40]
    assert sorted(sent) == sorted(t.id for t in tracks)             # each ID once
    assert enrich_stats(stats) == {
        "filters/passed": 100,
        "reccobeats/requests": 3, "reccobeats/requests/audio-features": 3,
        "reccobeats/features": known, "reccobeats/misses": 100 - known,
        "reccobeats/flush/timer": 1,
        **({"reccobeats/stray_rows": 3} if stray else {})}
    assert stats["item_scraped_count"] == 100
    store = open_store(tmp_path)
    assert_enriched(sim, store, tracks)
    counts = store.counts()
    assert (counts["pending"], counts["features"]) == (0, known)   # no stray row was kept
    assert_items(sim, crawler.spider.items, tracks)


@deferred_f_from_coro_f
async def test_second_run_asks_nothing(simulator_factory, tmp_path):
    sim = simulator_factory()
    tracks = eligible(sim, 60)
    known = sum(t.recco_known for t in tracks)
    records = [record(sim, t) for t in tracks]
    _, first = await crawl(sim, tmp_path, records)
    assert first["reccobeats/requests"] == 2
    since = len(sim.requests())
    crawler, stats = await crawl(sim, tmp_path, records, resume=True)
    assert stats["finish_reason"] == "finished"
    assert "log_count/ERROR" not in stats
    assert sim.requests(since, service="reccobeats") == []
    assert enrich_stats(stats) == {"filters/passed": 60,
                                   "reccobeats/already_enriched": known,
                                   "reccobeats/miss_not_due": 60 - known}
    assert_items(sim, crawler.spider.items, tracks)      # features from the store
    assert_enriched(sim, open_store(tmp_path), tracks)


@deferred_f_from_coro_f
async def test_misses_asked_again_once_due(simulator_factory, tmp_path):
    sim = simulator_factory()
    tracks = eligible(sim, 60)
    misses = sorted(t.id for t in tracks if not t.recco_known)
    records = [record(sim, t) for t in tracks]
    await crawl(sim, tmp_path, records, RECCOBEATS_MISS_TTL_DAYS=0)
    assert_enriched(sim, open_store(tmp_path), tracks, ttl_days=0)
    since = len(sim.requests())
    crawler, stats = await crawl(sim, tmp_path, records, RECCOBEATS_MISS_TTL_DAYS=0)
    assert stats["finish_reason"] == "finished"
    assert "log_count/ERROR" not in stats
    log = recco_log(sim, since)
    assert len(log) == math.ceil(len(misses) / 40)
    assert sorted(i for e in log for i in asked(e)) == misses        # only the misses
    assert enrich_stats(stats) == {
        "filters/passed": 60, "reccobeats/already_enriched": 60 - len(misses),
        "reccobeats/requests": len(log), "reccobeats/requests/audio-features": len(log),
        "reccobeats/misses": len(misses), "reccobeats/flush/timer": 1}
    assert_items(sim, crawler.spider.items, tracks)


@deferred_f_from_coro_f
async def test_timer_flushes_a_short_batch_and_ids_are_deduplicated(simulator_factory, tmp_path):
    sim = simulator_factory()
    tracks = eligible(sim, 5)
    crawler, stats = await crawl(sim, tmp_path, [record(sim, t) for t in tracks],
                                 repeat=[tracks[0].id], RECCOBEATS_BATCH_WAIT=0.5)
    assert stats["finish_reason"] == "finished"
    assert "log_count/ERROR" not in stats
    [entry] = recco_log(sim)
    assert sorted(asked(entry)) == sorted(t.id for t in tracks)
    waited = entry.t - crawler.spider.started_at
    assert 0.45 <= waited < 1.5
    known = sum(t.recco_known for t in tracks)
    assert enrich_stats(stats) == {
        "filters/passed": 6, "reccobeats/deduplicated": 1, "reccobeats/flush/timer": 1,
        "reccobeats/requests": 1, "reccobeats/requests/audio-features": 1,
        "reccobeats/features": known, "reccobeats/misses": 5 - known}
    items = crawler.spider.items
    assert len(items) == 6
    twins = [i for i in items if i.id == tracks[0].id]
    assert len(twins) == 2 and twins[0].enrichment == twins[1].enrichment != "error"
    assert twins[0].features == twins[1].features


class UncheckedBatches(ReccoBeatsEnrichmentPipeline):
    MAX_BATCH = 60              # lets a batch over the API's cap through, to provoke the 400


@deferred_f_from_coro_f
async def test_size_error_splits_the_batch(simulator_factory, tmp_path):
    sim = simulator_factory()
    tracks = eligible(sim, 50)
    known = sum(t.recco_known for t in tracks)
    _, stats = await crawl(sim, tmp_path, [record(sim, t) for t in tracks],
                           ITEM_PIPELINES={FILTERS: 100, UncheckedBatches: 200},
                           RECCOBEATS_BATCH_SIZE=50)
    assert stats["finish_reason"] == "finished"
    assert "log_count/ERROR" not in stats
    log = recco_log(sim)
    assert [(e.status, len(asked(e))) for e in log[:1]] == [(400, 50)]
    assert sorted((e.status, len(asked(e))) for e in log[1:]) == [(200, 25), (200, 25)]
    assert enrich_stats(stats) == {
        "filters/passed": 50, "reccobeats/batch_splits": 1,
        "reccobeats/requests": 3, "reccobeats/requests/audio-features": 3,
        "reccobeats/features": known, "reccobeats/misses": 50 - known}
    assert_enriched(sim, open_store(tmp_path), tracks)


# ---------------------------------------------------------------------------- cheap filters
@deferred_f_from_coro_f
async def test_cheap_filters_keep_rejects_away_from_reccobeats(simulator_factory, tmp_path):
    sim = simulator_factory()
    good = eligible(sim, 10)
    long_, short, unplayable, edge_low, edge_high = good[5:]
    good = good[:5]
    # Each pair as (winner, loser) by the one ISRC rule (catalog.isrc), not by arrival.
    pairs = [sorted(pair, key=lambda t: isrc_rank(
        t.id, release_year(sim.catalog.albums[t.album_idx].release_date)))
        for pair in isrc_pairs(sim)]
    (held, newcomer), (usurper, dethroned), (winner, loser), (late_winner, early_loser) = \
        pairs[:4]
    (skipped_holder, heir), (unplayable_holder, heir2) = pairs[4:6]
    # From earlier runs: a winner enriched, a loser enriched before its winner was found, one
    # winner set aside, and one still pending that fails the playability check (the last two
    # do not hold their ISRC).
    store = open_store(tmp_path)
    for enriched in (held, dethroned):
        store.upsert_track(record(sim, enriched), source="search", now="2026-01-01T00:00:00Z")
        store.save_features(enriched.id, {"id": "x", "isrc": enriched.isrc, "tempo": 120},
                            "2026-01-01T00:00:00Z")
    store.upsert_track(record(sim, skipped_holder), source="search",
                       now="2026-01-01T00:00:00Z")
    store.set_enrich_state(skipped_holder.id, "skipped", reason="unplayable")
    store.upsert_track(record(sim, unplayable_holder, is_playable=False), source="search",
                       now="2026-01-01T00:00:00Z")
    store.close()
    # Of two new tracks, a loser stored after its winner is set aside; one stored before it
    # is not (nothing stored before it beats it: a verdict never depends on what comes later).
    records = [record(sim, t) for t in good] + [
        record(sim, long_, duration_ms=360_001), record(sim, short, duration_ms=119_999),
        record(sim, unplayable, is_playable=False),
        record(sim, edge_low, duration_ms=120_000), record(sim, edge_high, duration_ms=360_000),
        record(sim, newcomer), record(sim, usurper), record(sim, winner), record(sim, loser),
        record(sim, early_loser), record(sim, late_winner), record(sim, heir), record(sim, heir2)]
    crawler, stats = await crawl(sim, tmp_path, records)
    assert stats["finish_reason"] == "finished"
    assert "log_count/ERROR" not in stats
    # The usurper beats a track already enriched: it is enriched all the same.
    passing = [*good, edge_low, edge_high, usurper, winner, early_loser, late_winner, heir,
               heir2]
    [entry] = recco_log(sim)
    assert sorted(asked(entry)) == sorted(t.id for t in passing)
    known = sum(t.recco_known for t in passing)
    assert enrich_stats(stats) == {
        "filters/passed": 13, "filters/rejected/duration_long": 1,
        "filters/rejected/duration_short": 1, "filters/rejected/unplayable": 1,
        "filters/rejected/duplicate_isrc": 2, "reccobeats/flush/timer": 1,
        "reccobeats/requests": 1, "reccobeats/requests/audio-features": 1,
        "reccobeats/features": known, "reccobeats/misses": 13 - known}
    store = open_store(tmp_path)
    reasons = {long_.id: "duration_long", short.id: "duration_short",
               unplayable.id: "unplayable", newcomer.id: "duplicate_isrc",
               loser.id: "duplicate_isrc"}
    for track_id, reason in reasons.items():
        row = store.track(track_id)
        assert (row["enrich_state"], row["enrich_reason"]) == ("skipped", reason)
        assert store.features(track_id) is None
    assert store.track(held.id)["enrich_state"] == "done"
    assert store.track(dethroned.id)["enrich_state"] == "done"      # kept; the export drops it
    items = {i.id: i for i in crawler.spider.items}
    assert len(items) == 18                        # rejected items pass on, marked
    for track_id, reason in reasons.items():
        assert (items[track_id].rejected, items[track_id].enrichment) == (reason, "skipped")
    assert_items(sim, [items[t.id] for t in passing], passing)


def test_filter_and_batch_settings_are_validated(tmp_path):
    def build(pipeline, **settings):
        crawler = get_crawler(settings_dict=project_settings(
            RECCOBEATS_BASE_URL="http://127.0.0.1:9/v1", **settings))
        return build_from_crawler(pipeline, crawler)

    assert build(ReccoBeatsEnrichmentPipeline).batch_size == 40
    assert build(ReccoBeatsEnrichmentPipeline, RECCOBEATS_BATCH_SIZE=1).batch_size == 1
    for size in (0, 41, 100):
        with pytest.raises(ValueError, match="RECCOBEATS_BATCH_SIZE"):
            build(ReccoBeatsEnrichmentPipeline, RECCOBEATS_BATCH_SIZE=size)
    with pytest.raises(ValueError, match="RECCOBEATS_BATCH_WAIT"):
        build(ReccoBeatsEnrichmentPipeline, RECCOBEATS_BATCH_WAIT=-1)
    assert build(CheapFilterPipeline).max_ms == 360_000
    with pytest.raises(ValueError, match="never over 6 minutes"):
        build(CheapFilterPipeline, CATALOG_MAX_DURATION_MS=360_001)
    with pytest.raises(ValueError):
        build(CheapFilterPipeline, CATALOG_MIN_DURATION_MS=200_000,
              CATALOG_MAX_DURATION_MS=150_000)


# ---------------------------------------------------------------------------- /track
@deferred_f_from_coro_f
async def test_unknown_playability_asks_track_endpoint(simulator_factory, tmp_path):
    sim = simulator_factory()
    market = sim.catalog.market
    durations_ok = [t for t in sim.catalog.tracks if 120_000 <= t.duration_ms <= 360_000]
    known_away = next(t for t in durations_ok if t.recco_known and market not in t.markets)
    known_here = next(t for t in durations_ok if t.recco_known and market in t.markets)
    unknown = next(t for t in durations_ok if not t.recco_known)
    unsure = [known_away, known_here, unknown]
    spotify_says = next(t for t in eligible(sim, 10) if t not in unsure)
    records = [record(sim, t, is_playable=None) for t in unsure] + [record(sim, spotify_says)]
    crawler, stats = await crawl(sim, tmp_path, records, SPOTIFY_MARKET=market)
    assert stats["finish_reason"] == "finished"
    assert "log_count/ERROR" not in stats
    [features] = recco_log(sim)
    [tracks] = recco_log(sim, endpoint="/track")
    assert len(asked(features)) == 4
    assert sorted(asked(tracks)) == sorted(t.id for t in unsure)
    enriched = [known_away, known_here, unknown, spotify_says]
    known = sum(t.recco_known for t in enriched)
    assert enrich_stats(stats) == {
        "filters/passed": 4, "reccobeats/flush/timer": 1,
        "reccobeats/requests": 2, "reccobeats/requests/audio-features": 1,
        "reccobeats/requests/track": 1, "reccobeats/track_rows": 2,
        "reccobeats/features": known, "reccobeats/misses": 4 - known}
    store = open_store(tmp_path)
    for track in (known_away, known_here):
        row = store.track(track.id)
        assert row["is_playable"] is None                      # Spotify's answer stays
        assert parse_countries(row["recco_countries"].strip("[]").replace('"', "")) == sorted(
            track.markets)
        assert row["recco_popularity"] == track.popularity
    assert store.track(unknown.id)["recco_countries"] is None
    assert store.track(spotify_says.id)["recco_countries"] is None  # never asked
    items = {i.id: i for i in crawler.spider.items}
    assert items[known_away.id].is_playable is False
    assert items[known_here.id].is_playable is True
    assert items[unknown.id].is_playable is None
    assert_enriched(sim, store, enriched)


# ---------------------------------------------------------------------------- faults
@deferred_f_from_coro_f
async def test_429s_and_server_errors_are_retried(simulator_factory, tmp_path):
    sim = simulator_factory(recco_429_rate=0.3, error_rate=0.3, fault_seed=3)
    tracks = eligible(sim, 100)
    known = sum(t.recco_known for t in tracks)
    # A batch waits up to 5 s to fill, not WAIT: on a loaded machine 20 items can take
    # longer than 0.3 s to arrive, and a partial batch would make it 6 requests.
    _, stats = await crawl(sim, tmp_path, [record(sim, t) for t in tracks],
                           RECCOBEATS_BATCH_SIZE=20, RECCOBEATS_BATCH_WAIT=5.0)
    assert stats["finish_reason"] == "finished"
    assert "log_count/ERROR" not in stats
    log = recco_log(sim)
    limited = sum(e.status == 429 for e in log)
    failed = sum(e.status >= 500 for e in log)
    assert limited and failed, "no fault was drawn: the test proves nothing"
    assert sum(e.status == 200 for e in log) == 5
    assert len(log) == 5 + limited + failed
    assert enrich_stats(stats) == {
        "filters/passed": 100,
        "reccobeats/requests": 5, "reccobeats/requests/audio-features": 5,
        "reccobeats/features": known, "reccobeats/misses": 100 - known,
        "ratelimit/429": limited, "ratelimit/waited_seconds": stats["ratelimit/waited_seconds"],
        "retry/count": failed, **{k: v for k, v in stats.items()
                                  if k.startswith("retry/reason_count/")}}
    assert sum(v for k, v in stats.items() if k.startswith("retry/reason_count/")) == failed
    assert_enriched(sim, open_store(tmp_path), tracks)


@deferred_f_from_coro_f
async def test_failed_batches_stay_pending_and_a_resumed_run_completes_them(
        simulator_factory, tmp_path):
    sim = simulator_factory(error_rate=1.0)
    tracks = eligible(sim, 50)
    known = sum(t.recco_known for t in tracks)
    crawler, stats = await crawl(sim, tmp_path, [record(sim, t) for t in tracks],
                                 RETRY_TIMES=1)
    assert stats["finish_reason"] == "finished"
    assert stats["log_count/ERROR"] == 2              # the retry middleware gives up, twice
    assert len(recco_log(sim)) == 2 * 2               # two batches, one retry each
    assert enrich_stats(stats) == {
        "filters/passed": 50, "reccobeats/flush/timer": 1,
        "reccobeats/requests": 2, "reccobeats/requests/audio-features": 2,
        "reccobeats/errors": 2, "retry/count": 2, "retry/max_reached": 2,
        **{k: v for k, v in stats.items() if k.startswith("retry/reason_count/")}}
    assert {i.enrichment for i in crawler.spider.items} == {"error"}
    assert len(crawler.spider.items) == 50
    store = open_store(tmp_path)
    assert store.pending_enrichment("9999-12-31T00:00:00Z") == sorted(
        t.id for t in tracks)                          # same first_seen_at: ordered by ID
    store.close()

    sim.config.error_rate = 0.0                       # ReccoBeats is back
    since = len(sim.requests())
    crawler, stats = await crawl(sim, tmp_path, resume=True)
    assert stats["finish_reason"] == "finished"
    assert "log_count/ERROR" not in stats
    assert len(recco_log(sim, since)) == 2
    assert enrich_stats(stats) == {
        "filters/passed": 50, "reccobeats/flush/timer": 1,
        "reccobeats/requests": 2, "reccobeats/requests/audio-features": 2,
        "reccobeats/features": known, "reccobeats/misses": 50 - known}
    assert {i.source for i in crawler.spider.items} == {"store"}
    assert_items(sim, crawler.spider.items, tracks)
    store = open_store(tmp_path)
    assert_enriched(sim, store, tracks)
    assert store.counts()["pending"] == 0


@pytest.mark.parametrize("fault", ["drop_rate", "malformed_rate"])
@deferred_f_from_coro_f
async def test_lost_connections_and_bad_bodies_leave_tracks_pending(
        simulator_factory, tmp_path, fault):
    sim = simulator_factory(**{fault: 1.0})
    tracks = eligible(sim, 5)
    crawler, stats = await crawl(sim, tmp_path, [record(sim, t) for t in tracks],
                                 RETRY_TIMES=0)
    assert stats["finish_reason"] == "finished"
    # A lost connection exhausts the retry middleware, which logs its give-up at ERROR; a
    # truncated 200 is the pipeline's to report, at WARNING.
    assert stats.get("log_count/ERROR", 0) == (1 if fault == "drop_rate" else 0)
    assert len(recco_log(sim)) == 1
    assert {k: v for k, v in enrich_stats(stats).items() if not k.startswith("retry/")} == {
        "filters/passed": 5, "reccobeats/flush/timer": 1, "reccobeats/requests": 1,
        "reccobeats/requests/audio-features": 1, "reccobeats/errors": 1}
    assert [i.enrichment for i in crawler.spider.items] == ["error"] * 5
    store = open_store(tmp_path)
    assert sorted(store.pending_enrichment("2000-01-01T00:00:00Z")) == sorted(
        t.id for t in tracks)
    assert store.counts()["features"] == 0


@deferred_f_from_coro_f
async def test_truncated_bodies_are_asked_again_in_the_same_run(simulator_factory, tmp_path):
    # A truncated 200 is a transient fault like a 5xx: left pending, its batch would miss the
    # run's export (the fault soak: one /audio-features batch of 33 IDs lost its features).
    sim = simulator_factory(malformed_rate=0.5, fault_seed=1)
    tracks = eligible(sim, 60)
    crawler, stats = await crawl(sim, tmp_path, [record(sim, t) for t in tracks],
                                 RECCOBEATS_BATCH_SIZE=10)
    assert stats["finish_reason"] == "finished"
    assert "log_count/ERROR" not in stats
    log = recco_log(sim)
    truncated = sum(e.fault == "malformed" for e in log)
    assert truncated, "no fault was drawn: the test proves nothing"
    assert stats["retry/reason_count/malformed_json"] == truncated
    assert len(log) == 6 + truncated
    assert "reccobeats/errors" not in stats
    assert {i.enrichment for i in crawler.spider.items} <= {"done", "miss"}
    store = open_store(tmp_path)
    assert_enriched(sim, store, tracks)
    assert store.counts()["pending"] == 0


# ---------------------------------------------------------------------------- units
def test_join_ignores_stray_duplicate_and_broken_rows():
    crawler = get_crawler(settings_dict=project_settings(
        RECCOBEATS_BASE_URL="http://127.0.0.1:9/v1"))
    crawler.stats.open_spider()
    pipeline = build_from_crawler(ReccoBeatsEnrichmentPipeline, crawler)
    a, b, c = "A" * 22, "B" * 22, "C" * 22

    def row(track_id, tempo):
        return {"id": f"uuid-{tempo}", "href": f"https://open.spotify.com/track/{track_id}",
                "tempo": tempo}

    content = [row(b, 2), row(c, 3), row(a, 1), row(a, 9), {"href": 7}, "junk", None]
    assert pipeline._join("audio-features", content, [a, b]) == {a: row(a, 1), b: row(b, 2)}
    assert {k: v for k, v in crawler.stats.get_stats().items()
            if k.startswith("reccobeats/")} == {"reccobeats/stray_rows": 4,
                                                "reccobeats/duplicate_rows": 1}


def test_rows_are_joined_by_href_only():
    track_id = "01K4zKU104LyJ8gMb7227B"
    assert spotify_id_of({"href": f"https://open.spotify.com/track/{track_id}"}) == track_id
    assert spotify_id_of({"href": f"https://open.spotify.com/track/{track_id}?si=x"}) == track_id
    assert spotify_id_of({"id": track_id}) is None                 # the id is ReccoBeats' UUID
    assert spotify_id_of({"href": f"https://open.spotify.com/artist/{track_id}"}) is None
    assert spotify_id_of({"href": f"https://open.spotify.com/track/{track_id}X"}) is None
    assert spotify_id_of({"href": None}) is None
    assert spotify_id_of(None) is None


def test_feature_rows_are_parsed_leniently():
    row = {"id": "uuid", "href": "h", "isrc": "USUG12103683", "acousticness": 0.817,
           "danceability": "0.6", "energy": None, "instrumentalness": 0, "key": -1,
           "liveness": True, "loudness": 1.5, "mode": 1.0, "speechiness": float("nan"),
           "tempo": 0, "valence": 1, "time_signature": 4}
    assert clean_features(row) == {
        "id": "uuid", "isrc": "USUG12103683", "acousticness": 0.817, "danceability": None,
        "energy": None, "instrumentalness": 0, "key": -1, "liveness": None, "loudness": 1.5,
        "mode": 1, "speechiness": None, "tempo": None, "valence": 1}
    assert clean_features({})["id"] is None
    assert parse_countries("US, gb,XK,,USA") == ["GB", "US", "XK"]
    assert parse_countries(["DE", 3]) == ["DE"]
    assert parse_countries(None) is None


def test_api_key_header_only_when_set(monkeypatch):
    crawler = get_crawler(settings_dict=project_settings(
        RECCOBEATS_BASE_URL="http://127.0.0.1:9/v1/"))
    plain = build_from_crawler(ReccoBeatsEnrichmentPipeline, crawler)
    request = plain.request("audio-features", ["a", "b"])
    assert request.url == "http://127.0.0.1:9/v1/audio-features?ids=a,b"
    assert request.headers["Accept"] == b"application/json"
    assert b"x-api-key" not in {k.lower() for k in request.headers}
    monkeypatch.setenv("RECCOBEATS_API_KEY", "k3y")
    keyed = build_from_crawler(ReccoBeatsEnrichmentPipeline, crawler)
    assert keyed.request("track", ["a"]).headers["x-api-key"] == b"k3y"


@deferred_f_from_coro_f
async def test_a_close_resolves_every_waiting_item_even_before_a_batch_is_sent():
    """A batch launched (full) and the close starting in the same tick: its task is cancelled
    before its first step, so its own clean-up never runs. Every item must still get its
    answer ("error": the track stays pending) instead of waiting for ever (a hung close)."""
    crawler = get_crawler(settings_dict=project_settings(
        RECCOBEATS_BASE_URL="http://127.0.0.1:9/v1"))
    crawler.stats.open_spider()
    pipeline = build_from_crawler(ReccoBeatsEnrichmentPipeline, crawler)
    ids = [f"{n:022d}" for n in range(45)]
    futures = [pipeline._enqueue(track_id, False) for track_id in ids]   # 40 sent, 5 open
    batches = pipeline.batches
    assert len(batches._flushes) == 1 and batches._batch is not None
    crawler.signals.send_catch_log(close_started, reason="shutdown")
    assert all(f.done() and f.result().state == "error" for f in futures)
    assert batches._inflight == {} and batches._batch is None
    assert pipeline._enqueue("Z" * 22, False).result().state == "error"   # nothing new opens
    assert crawler.stats.get_value("reccobeats/given_up_on_close") == 45
