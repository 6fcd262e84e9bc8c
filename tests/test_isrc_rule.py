"""One ISRC rule (``catalog.isrc``), and every stage that picks a track per ISRC applies it.

The same competing tracks, found in every order, must give the same winner at discovery
planning (``Store.claim_isrc_count``, which ``Frontier.place`` calls), in
the cheap filter (``CheapFilterPipeline``) and in the export (``load_candidates`` then
``dedupe``). The tracks are chosen so that every other plausible rule (first stored, most
popular, smallest ID, popularity in Development Mode, an undated album first) picks another.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import replace

import pytest
from scrapy.utils.test import get_crawler

from runclub_spiders.catalog.candidates import load_candidates
from runclub_spiders.catalog.isrc import isrc_rank, isrc_winner, isrc_wins
from runclub_spiders.catalog.selection import BalanceSettings, dedupe, filter_reason
from runclub_spiders.catalog.years import release_year
from runclub_spiders.items import CandidateItem
from runclub_spiders.pipelines.cheap_filters import CheapFilterPipeline
from runclub_spiders.store import Store, TrackRecord
from runclub_spiders.umbrellas import load_umbrellas
from tests.conftest import project_settings

ISRC = "USABC7712345"
NOW = "2026-01-01T00:00:00Z"
ARTIST = "artist0000000000000001"


def track(prefix: str, date: str | None, *, popularity: int | None = None,
          duration_ms: int = 200_000, is_playable: bool | None = True) -> TrackRecord:
    return TrackRecord(
        id=prefix.ljust(22, "x"), name="Song", isrc=ISRC, duration_ms=duration_ms,
        explicit=False, album_id=f"album-{prefix}", album_name=f"Album {prefix}",
        album_type="album", release_date=date, release_precision=None if date is None else "day",
        album_image_url=None, artist_ids=(ARTIST,), artist_names=("Artist",),
        is_playable=is_playable, available_markets=None, popularity=popularity,
        preview_url=None, track_number=1, disc_number=1)


# The winner: the earliest album year (1977, twice), then the smaller ID of the two.
WINNER = track("3", "1977-05-03", popularity=20)
COMPETITORS = (
    track("0", None, popularity=90),               # smallest ID and most popular; no year
    track("1", "2011-03-01", popularity=50),       # a remaster
    track("5", "1977", popularity=10),             # same year as the winner, larger ID
    WINNER,
)
# They share the ISRC but fail the cheap filters' checks: they never compete.
OUTSIDERS = (
    track("2", "1970", duration_ms=400_000),
    track("4", "1972", is_playable=False),
)
ORDERS = list(itertools.permutations(COMPETITORS))


def rank(record: TrackRecord) -> tuple[int, str]:
    return isrc_rank(record.id, release_year(record.release_date))


def stored(tmp_path, name: str, records) -> Store:
    store = Store.open(tmp_path / f"{name}.sqlite")
    for record in records:
        store.upsert_track(record, source="search", now=NOW)
    return store


# ------------------------------------------------------------------------------ the rule
@pytest.mark.parametrize("order", ORDERS)
def test_the_winner_does_not_depend_on_the_order(order):
    contenders = [(t.id, release_year(t.release_date)) for t in order]
    assert isrc_winner(contenders) == WINNER.id


def test_rank_earliest_year_then_smallest_id_and_undated_last():
    assert isrc_rank("b", 1977) < isrc_rank("a", 2011)
    assert isrc_rank("a", 1977) < isrc_rank("b", 1977)
    assert isrc_rank("z", 2026) < isrc_rank("a", None)
    assert isrc_winner([]) is None
    assert isrc_winner([("a", None)]) == "a"


def test_a_track_alone_wins_and_one_the_store_does_not_hold_loses():
    rows = [{"id": WINNER.id, "release_date": WINNER.release_date}]
    assert isrc_wins(WINNER.id, rows)
    assert isrc_wins("anything", [])
    assert not isrc_wins("unknown", rows)


# ------------------------------------------------------------------------------ planning
@pytest.mark.parametrize("order", ORDERS)
def test_planning_counts_the_winner_once_whatever_the_order(tmp_path, order):
    """As the spider does: each new track stored, then asked whether it counts."""
    store = Store.open(tmp_path / "store.sqlite")
    counted, displaced = 0, []
    for record in (*OUTSIDERS[:1], *order, *OUTSIDERS[1:]):
        store.upsert_track(record, source="search", now=NOW, query="90s hits")
        passes = 120_000 <= record.duration_ms <= 360_000 and record.is_playable is not False
        if passes and store.claim_isrc_count(
                record.id, record.isrc, 120_000, 360_000,
                lambda cells, artist, source, query: displaced.append(
                    (cells, artist, source, query))):
            store.set_planning_cells(record.id, [["Rock", "70s"]])
            counted += 1
    holders = [cells for cells in store.planning_cells() if cells is not None]
    assert counted - len(displaced) == 1 and holders == [json.dumps([["Rock", "70s"]])]
    assert store.track(WINNER.id)["planning_cells"] is not None
    # Each track counted before the winner came was displaced, its cells handed back with
    # its lead artist, how it was found and its first query (the planner's artist cap and
    # shares, its query family's share).
    assert all(d == ([("Rock", "70s")], WINNER.artist_ids[0], "search", "90s hits")
               for d in displaced)


def test_planning_without_isrc_always_counts(tmp_path):
    store = stored(tmp_path, "store", [replace(WINNER, isrc=None)])
    assert store.claim_isrc_count(WINNER.id, None, 120_000, 360_000)


# ------------------------------------------------------------------------------ the cheap filter
def cheap_filter(store: Store) -> CheapFilterPipeline:
    class Filter(CheapFilterPipeline):
        @property
        def store(self) -> Store:
            return fixed

    fixed = store
    return Filter(get_crawler(settings_dict=project_settings(SPIDER_MODULES=[])))


def item(record: TrackRecord) -> CandidateItem:
    return CandidateItem(id=record.id, isrc=record.isrc, duration_ms=record.duration_ms,
                         is_playable=record.is_playable)


@pytest.mark.parametrize("order", ORDERS)
def test_cheap_filter_verdicts_depend_on_the_store_order_only(tmp_path, order):
    """A page's tracks are stored in ``order``, then judged in that order and, as a run
    resumed with them pending may, in the reverse one: the same verdicts. A track is set
    aside when one stored before it wins; the winner never is."""
    expected = {OUTSIDERS[0].id: "duration_long", OUTSIDERS[1].id: "unplayable"}
    for i, record in enumerate(order):
        expected[record.id] = None if min(order[:i + 1], key=rank) is record \
            else "duplicate_isrc"
    assert expected[WINNER.id] is None
    for name, judged in (("forward", order), ("reverse", order[::-1])):
        store = stored(tmp_path, name, (*OUTSIDERS, *order))
        pipeline = cheap_filter(store)
        verdicts = {r.id: pipeline.process_item(item(r)).rejected
                    for r in (*OUTSIDERS, *judged)}
        assert verdicts == expected, name


@pytest.mark.parametrize("order", ORDERS)
def test_cheap_filter_one_by_one_always_enriches_the_winner(tmp_path, order):
    """Tracks found one at a time: a loser found before the winner is enriched (nothing beat
    it yet), the winner always is, and a loser found after it never is. Planning counts the
    same tracks as they come, and the count ends on the winner."""
    store = Store.open(tmp_path / "store.sqlite")
    pipeline = cheap_filter(store)
    seen = []
    for record in order:
        store.upsert_track(record, source="search", now=NOW)
        if store.claim_isrc_count(record.id, record.isrc, 120_000, 360_000):
            store.set_planning_cells(record.id, [["Rock", "70s"]])
        counts = store.track(record.id)["planning_cells"] is not None
        rejected = pipeline.process_item(item(record)).rejected
        seen.append(record)
        assert (rejected is None) == counts == (min(seen, key=rank) is record), record.id
    assert store.track(WINNER.id)["enrich_state"] == "pending"       # not set aside
    assert [c for c in store.planning_cells() if c is not None] == ['[["Rock", "70s"]]']
    assert store.track(WINNER.id)["planning_cells"] is not None


# ------------------------------------------------------------------------------ the export
@pytest.mark.parametrize("order", ORDERS)
def test_export_keeps_the_winner_whatever_the_store_order(tmp_path, order):
    store = stored(tmp_path, "store", (*OUTSIDERS, *order))
    store.set_artist_details(ARTIST, genres=["rock"], popularity=None, image_url=None, now=NOW)
    # Two losers have features, stored in this order's order: the winner borrows from the
    # one the rule ranks first, not from the first stored.
    with_features = [r for r in order if r.id[0] in "15"]
    for record in with_features:
        store.save_features(record.id, {"id": f"r{record.id}", "isrc": ISRC, "tempo": 120},
                            NOW)
    rules = load_umbrellas("seeds/umbrellas.yaml")
    candidates = load_candidates(store, rules, "US")
    passed = [c for c in candidates if filter_reason(c, BalanceSettings()) is None]
    assert {c.id for c in passed} == {r.id for r in COMPETITORS}
    survivors, losers = dedupe(passed)
    assert [c.id for c in survivors] == [WINNER.id]
    assert set(losers.values()) == {"duplicate_isrc"}
    assert (survivors[0].features_from, survivors[0].features_source) == \
        (track("5", None).id, "isrc_sibling")                # 1977 beats 2011
