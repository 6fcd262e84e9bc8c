"""Which ReccoBeats track rows become leads (``frontier.leads``), on the row shape
ReccoBeats documents (its own example, ``docs/simulator.md``, "ReccoBeats": the Spotify IDs
only inside ``href``, ``availableCountries`` one comma-separated string, ``ean``/``upc``
null), and that a lead never asks for what the store already holds."""

from __future__ import annotations

from contextlib import closing
from dataclasses import replace

import pytest

from runclub_spiders.frontier.leads import Leads, spotify_id
from runclub_spiders.store import Store, TrackRecord

ARTIST = "1Xyo4u8uXC1ZmMpatF05PJ"
TRACK = "00aqkszH1FdUiJJWvX6iEl"
NOW = "2026-12-06T00:00:00Z"


def row(**changes) -> dict:
    """ReccoBeats' documented track object (its reference example), trimmed countries."""
    base = {"id": "8212bab8-5911-48a0-b177-24923ef2329a", "trackTitle": "Wicked Games",
            "artists": [{"id": "9451b6b2-8746-4d43-abd7-c355ed1e3048", "name": "The Weeknd",
                         "href": f"https://open.spotify.com/artist/{ARTIST}"}],
            "durationMs": 325305, "isrc": "USUM72104140", "ean": None, "upc": None,
            "href": f"https://open.spotify.com/track/{TRACK}",
            "availableCountries": "AR,AU,AT,US,XK", "popularity": 69}
    return {**base, **changes}


@pytest.fixture
def leads(tmp_path):
    with closing(Store.open(tmp_path / "store.sqlite")) as store:
        leads = Leads(store, on=True, min_worth=0.5, min_ms=120_000, max_ms=360_000,
                      market="US")
        leads.see(ARTIST, "R&B & Soul")
        leads.looked_up((ARTIST,), {ARTIST: "9451b6b2-8746-4d43-abd7-c355ed1e3048"})
        yield leads


def test_a_row_the_artist_leads_becomes_a_lead(leads):
    assert leads.listed(ARTIST, 0, [row()], 1, NOW) == 1
    assert [r["track_id"] for r in leads.store.open_leads()] == [TRACK]
    assert leads.store.open_leads()[0]["isrc"] == "USUM72104140"


@pytest.mark.parametrize("changes", [
    # another artist leads it (a featured credit): the votes name this artist, not them
    {"artists": [{"href": "https://open.spotify.com/artist/0000000000000000000000"},
                 {"href": f"https://open.spotify.com/artist/{ARTIST}"}]},
    {"durationMs": 400_000},                      # longer than the export keeps
    {"durationMs": 90_000},
    {"availableCountries": "AR,AU,AT"},           # not playable in the market
    {"href": "https://open.spotify.com/track/not-an-id"},
    {"href": None},
])
def test_rows_the_export_could_not_keep_are_no_leads(leads, changes):
    assert leads.listed(ARTIST, 0, [row(**changes)], 1, NOW) == 0
    assert leads.store.open_leads() == []


def test_missing_optional_fields_still_make_a_lead(leads):
    # Every field but id and href is optional in what clients recorded.
    sparse = {"id": "x", "href": f"https://open.spotify.com/track/{TRACK}?si=abc",
              "artists": [{"href": f"https://open.spotify.com/artist/{ARTIST}"}]}
    assert leads.listed(ARTIST, 0, [sparse], 1, NOW) == 1


def test_what_the_store_holds_is_never_a_lead(leads):
    stored = TrackRecord(
        id="5".ljust(22, "x"), name="Wicked Games", isrc="USUM72104140", duration_ms=325_305,
        explicit=True, album_id="album", album_name="Trilogy", album_type="album",
        release_date="2012-11-13", release_precision="day", album_image_url=None,
        artist_ids=(ARTIST,), artist_names=("The Weeknd",), is_playable=True,
        available_markets=None, popularity=None, preview_url=None, track_number=1,
        disc_number=1)
    leads.store.upsert_track(stored, source="search", now=NOW)       # same recording
    assert leads.listed(ARTIST, 0, [row()], 2, NOW) == 0
    leads.store.upsert_track(replace(stored, id=TRACK, isrc=None), source="album", now=NOW)
    assert leads.listed(ARTIST, 1, [row(isrc=None)], 2, NOW) == 0     # the track itself


def test_the_last_page_ends_the_artists_list(leads):
    assert leads.listed(ARTIST, 0, [row()], 2, NOW) == 1
    assert ARTIST in leads.artists and leads.artists[ARTIST].next_page == 1
    assert leads.listed(ARTIST, 1, [], 2, NOW) == 0
    assert ARTIST not in leads.artists
    assert leads.store.recco_artists() == []          # listed to the end: never read again


def test_spotify_ids_come_only_from_open_spotify_links():
    assert spotify_id(f"https://open.spotify.com/track/{TRACK}", "track") == TRACK
    assert spotify_id(f"https://open.spotify.com/track/{TRACK}?si=1", "track") == TRACK
    assert spotify_id(f"https://open.spotify.com/artist/{ARTIST}", "track") is None
    assert spotify_id("https://open.spotify.com/track/short", "track") is None
    assert spotify_id(42, "track") is None
