"""The ``hostile_rate`` knob: corrupted tracks and paging on search and playlist-item pages.

Real HTTP against a simulator on loopback. Each corruption the simulator serves is checked
against what ``spotify_objects`` makes of it, so the knob and the parser keep one contract:
the kinds in ``TRACK_KINDS`` end in their skip reason, the others are repaired and kept.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import requests

from runclub_spiders.simulator import Simulator, SimulatorConfig
from runclub_spiders.simulator.hostile import (
    FOREIGN_HOST,
    HUGE_TOTAL,
    LONG_NAME,
    REPAIR_NOTES,
    TRACK_KINDS,
)
from runclub_spiders.spotify_objects import MAX_TEXT, PageTracks, clean, paging, parse_track
from tests.conftest import access_token, api_session, cached_catalog

CATALOG = cached_catalog()
READABLE = [p for p in CATALOG.playlists.values() if p.readable and not p.extras]
QUERIES = ("run", "love", "night", "fire", "dance", "heart", "rain", "gold")


class Stats(Counter):
    def inc_value(self, key: str, count: int = 1) -> None:
        self[key] += count


def search(sim: Simulator, session: requests.Session, q: str, offset: int = 0) -> dict:
    response = session.get(f"{sim.spotify_api_base_url}/search", timeout=10,
                           params={"q": q, "type": "track", "limit": 10, "offset": offset,
                                   "market": "US"})
    assert response.status_code == 200
    return response.json()


def items(sim: Simulator, session: requests.Session, playlist_id: str) -> dict:
    response = session.get(f"{sim.spotify_api_base_url}/playlists/{playlist_id}/items",
                           params={"limit": 50, "market": "US"}, timeout=10)
    assert response.status_code == 200
    return response.json()


def test_rate_zero_serves_clean_pages_and_logs_nothing_hostile(simulator_factory):
    sim = simulator_factory()
    assert sim.config.hostile_rate == 0.0
    session = api_session(sim)
    checked = 0
    for q in QUERIES[:4]:
        page = search(sim, session, q)["tracks"]
        assert all(parse_track(t)[1] is None for t in page["items"])
        assert page["next"] is None or page["next"].startswith(sim.spotify_api_base_url)
        checked += len(page["items"])
    # The check above saw real tracks: "run", "night" and "fire" fill a page of 10 each
    # ("love" matches nothing in this catalog).
    assert checked >= 30, checked
    playlist = items(sim, session, READABLE[0].id)
    assert playlist["items"]
    assert all(parse_track(entry["item"])[1] is None for entry in playlist["items"])
    assert sim.hostile_served() == Counter()
    assert {e.fault for e in sim.requests()} == {""}
    assert all(e.hostile == () for e in sim.requests())


def test_rate_one_corrupts_every_track_and_every_page(simulator_factory):
    sim = simulator_factory(hostile_rate=1.0, fault_seed=3)
    session = api_session(sim)
    body = search(sim, session, "run")
    page = body["tracks"]
    assert page["total"] == HUGE_TOTAL
    assert page["next"].startswith(FOREIGN_HOST + "/")
    logged = sim.requests(service="spotify")[-1]
    assert logged.fault == "hostile"
    kinds = list(logged.hostile)
    # One kind per track in page order (a first "duplicate" has nothing to copy: clean),
    # then the paging lies.
    assert kinds[-2:] == ["huge_total", "foreign_next"]
    track_kinds = kinds[:-2]
    assert len(track_kinds) in (len(page["items"]), len(page["items"]) - 1)
    # What the parser makes of each, as the spider counts it.
    stats = Stats()
    tracker = PageTracks(stats)
    for track in page["items"]:
        tracker.track(track)
    expected = Counter(f"discovery/skipped/{TRACK_KINDS[k]}" for k in track_kinds
                       if TRACK_KINDS[k])
    expected.update(f"discovery/repaired/{REPAIR_NOTES[k]}" for k in track_kinds
                    if k in REPAIR_NOTES)
    assert stats == expected
    # The paging helper caps the lie and never vouches for the foreign link.
    _, total, _ = paging(body, "tracks")
    assert total is not None and total < HUGE_TOTAL


def test_every_kind_is_served_and_parsed_as_its_contract_says(simulator_factory):
    sim = simulator_factory(hostile_rate=0.5, fault_seed=11)
    session = api_session(sim)
    stats = Stats()
    for q in QUERIES:
        for offset in (0, 10, 20):
            tracker = PageTracks(stats)
            for track in search(sim, session, q, offset)["tracks"]["items"]:
                tracker.track(track)
    for playlist in READABLE[:4]:
        tracker = PageTracks(stats)
        body = items(sim, session, playlist.id)
        for row in body["items"]:
            assert row["item"] == row["track"]          # the alias is corrupted alike
            tracker.track(row["item"])
    served = sim.hostile_served()
    assert set(served) == {*TRACK_KINDS, "huge_total", "foreign_next"}, served
    skipped = Counter({k.removeprefix("discovery/skipped/"): n for k, n in stats.items()
                       if k.startswith("discovery/skipped/")})
    assert skipped == sim.hostile_skips()
    assert stats["discovery/repaired/truncated_text"] == served["long_name"]
    assert stats["discovery/repaired/control_chars"] == served["odd_unicode"]


def test_corruptions_are_reproducible_per_request_and_seed(simulator_factory):
    first = simulator_factory(hostile_rate=0.3, fault_seed=5)
    again = simulator_factory(hostile_rate=0.3, fault_seed=5)
    other = simulator_factory(hostile_rate=0.3, fault_seed=6)
    bodies = {}
    for name, sim in (("first", first), ("again", again), ("other", other)):
        session = api_session(sim)
        pages = [search(sim, session, q) for q in QUERIES]
        # Asking again (a retry) serves the same corruption: bad data stays bad.
        assert [search(sim, session, q) for q in QUERIES] == pages
        bodies[name] = json.dumps(pages).replace(sim.origin, "ORIGIN")
    assert bodies["first"] == bodies["again"]
    assert bodies["first"] != bodies["other"]


def test_partial_rate_share_and_odd_names(simulator_factory):
    sim = simulator_factory(hostile_rate=0.2, fault_seed=2)
    session = api_session(sim)
    served_tracks = 0
    names = []
    for q in QUERIES:
        for offset in (0, 10, 20, 30):
            for track in search(sim, session, q, offset)["tracks"]["items"]:
                served_tracks += 1
                names.append(track.get("name"))
    served = sim.hostile_served()
    share = sum(served[k] for k in TRACK_KINDS) / served_tracks
    assert 0.1 <= share <= 0.3, share
    long_names = [n for n in names if isinstance(n, str) and len(n) == LONG_NAME]
    assert len(long_names) == served["long_name"] > 0
    odd = [n for n in names if isinstance(n, str) and "\x00" in n]
    assert len(odd) == served["odd_unicode"] > 0
    for name in odd:
        text, note = clean(name)
        assert note == "control_chars"
        assert text.startswith("\u200f") and "\u202e" not in text      # RLM kept, RLO not
        assert "\U0001f3c3\u200d\u2640\ufe0f" in text                  # the emoji intact
        assert not any(ch in text for ch in "\x00\x85\ufeff\ud800")
    for name in long_names:
        text, note = clean(name)
        assert note == "truncated_text" and len(text) == MAX_TEXT and text.endswith("\u2026")


def test_request_log_file_records_the_kinds(simulator_factory, tmp_path: Path):
    log_path = tmp_path / "requests.jsonl"
    sim = simulator_factory(hostile_rate=1.0, request_log=str(log_path))
    search(sim, api_session(sim), "run")
    rows = [json.loads(line) for line in log_path.read_text().splitlines()]
    assert rows[0]["hostile"] == []                                # the token request
    assert rows[-1]["fault"] == "hostile"
    assert rows[-1]["hostile"] == list(sim.requests()[-1].hostile)
    assert rows[-1]["hostile"][-2:] == ["huge_total", "foreign_next"]


def test_malformed_bodies_do_not_count_as_hostile(simulator_factory):
    sim = simulator_factory(hostile_rate=1.0, malformed_rate=0.5, fault_seed=4)
    token = None
    for _ in range(40):                 # the token endpoint's JSON is cut short too, at times
        try:
            token = access_token(sim)
            break
        except ValueError:
            pass
    assert token
    headers = {"Authorization": f"Bearer {token}"}
    for q in QUERIES:
        response = requests.get(f"{sim.spotify_api_base_url}/search", headers=headers,
                                params={"q": q, "type": "track", "limit": 10}, timeout=10)
        assert response.status_code == 200
    logged = sim.requests(service="spotify")
    faults = Counter(e.fault for e in logged)
    assert faults["malformed"] > 0 and faults["hostile"] > 0
    assert all(e.hostile == () for e in logged if e.fault == "malformed")
    assert sum(sim.hostile_served().values()) == sum(len(e.hostile) for e in logged
                                                     if e.fault == "hostile")


def test_hostile_rate_is_validated():
    with pytest.raises(ValueError, match="hostile_rate must be between 0 and 1"):
        SimulatorConfig(hostile_rate=1.5)
