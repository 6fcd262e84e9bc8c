"""Which ReccoBeats track rows become leads (``frontier.leads``), on the row shape
ReccoBeats documents (its own example, ``docs/simulator.md``, "ReccoBeats": the Spotify IDs
only inside ``href``, ``availableCountries`` one comma-separated string, ``ean``/``upc``
null), that a lead never asks for what the store already holds, and which lead or page is
asked next, after a failure too, in this run and the next."""

from __future__ import annotations

from contextlib import closing
from dataclasses import replace
from types import SimpleNamespace

import pytest
from scrapy.utils.test import get_crawler

from runclub_spiders import settings as project
from runclub_spiders.frontier.cells import CellBook
from runclub_spiders.frontier.expansion import Expansion
from runclub_spiders.frontier.leads import Leads
from runclub_spiders.frontier.work import RECCO_ARTIST_TRACKS, Work
from runclub_spiders.frontier.work import TRACK as LEAD
from runclub_spiders.pipelines.reccobeats import spotify_id
from runclub_spiders.spiders.spotify_catalog import SpotifyCatalogSpider
from runclub_spiders.spotify_objects import AlbumRef
from runclub_spiders.store import Store, TrackRecord
from tests.conftest import project_rules

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


def counted_in(cell: tuple[str, str], artist: str) -> int:
    """The artist has counted tracks in one open cell: a lead of theirs is worth asking."""
    return 3 if cell == ("R&B & Soul", "10s") and artist == ARTIST else 0


@pytest.fixture
def leads(tmp_path):
    with closing(Store.open(tmp_path / "store.sqlite")) as store:
        leads = Leads(store, on=True, min_worth=0.5, min_ms=120_000, max_ms=360_000,
                      market="US")
        leads.counted_in = counted_in
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


# ---------------------------------------------------------------------------- choosing
def lead_row(n: int, isrc: str | None = None) -> dict:
    """A kept row for ``ARTIST``: track ``n`` (a distinct Spotify ID), its own ISRC."""
    return row(href=f"https://open.spotify.com/track/{str(n).rjust(22, 'T')}",
               isrc=isrc or f"USXX{n:08d}")


def test_one_lead_per_recording_on_a_page(leads):
    # A single and its album hold the same recording: one call is enough.
    assert leads.listed(ARTIST, 0, [lead_row(1, "SAME"), lead_row(2, "SAME")], 1, NOW) == 1


def test_next_lead_skips_what_is_busy_failed_or_stored_and_ended_leads_leave(leads):
    leads.listed(ARTIST, 0, [lead_row(n) for n in range(1, 5)], 1, NOW)
    ids = [str(n).rjust(22, "T") for n in range(1, 5)]
    umbrellas = ["R&B & Soul"]
    first = leads.next_lead(umbrellas, busy=set())
    assert first.track_ids == (ids[0],) and first.artist_id == ARTIST
    second = leads.next_lead(umbrellas, busy={first.key})          # the first is in flight
    assert second.track_ids == (ids[1],)
    leads.failed(second, 503, now=NOW)                              # not again this run
    stored = TrackRecord(
        id=ids[2], name="x", isrc=None, duration_ms=200_000, explicit=False, album_id=None,
        album_name="x", album_type=None, release_date=None, release_precision=None,
        album_image_url=None, artist_ids=(ARTIST,), artist_names=("x",), is_playable=True,
        available_markets=None, popularity=None, preview_url=None, track_number=None,
        disc_number=None)
    leads.store.upsert_track(stored, source="album", now=NOW)       # found by an album read
    third = leads.next_lead(umbrellas, busy={first.key})
    assert third.track_ids == (ids[3],)
    states = {r["track_id"]: r["ended"] for r in
              leads.store.db.execute("SELECT track_id, ended FROM leads")}
    assert states == {ids[0]: None, ids[1]: None, ids[2]: "known", ids[3]: None}
    leads.ended(*leads.pairs(first)[0], "confirmed")
    leads.ended(*leads.pairs(third)[0], "gone")
    assert leads.next_lead(umbrellas, busy=set()) is None          # only the failed one left
    # The next run asks the failed one again: the store kept it open.
    again = Leads(leads.store, on=True, min_worth=0.5, min_ms=120_000, max_ms=360_000,
                  market="US")
    again.counted_in = counted_in
    assert again.next_lead(umbrellas, busy=set()).track_ids == (ids[1],)


def test_extended_quota_confirms_leads_in_batches(leads):
    # Extended Quota's /tracks?ids= takes 50: one call for many leads, each with its artist,
    # none held by a batch in flight or failed this run.
    leads.batch = 3
    leads.listed(ARTIST, 0, [lead_row(n) for n in range(1, 9)], 1, NOW)
    ids = [str(n).rjust(22, "T") for n in range(1, 9)]
    umbrellas = ["R&B & Soul"]
    first = leads.next_lead(umbrellas, busy=set())
    assert first.track_ids == tuple(ids[:3]) and first.artist_ids == (ARTIST,) * 3
    assert leads.pairs(first) == [(t, ARTIST) for t in ids[:3]]
    second = leads.next_lead(umbrellas, busy={first.key})
    assert second.track_ids == tuple(ids[3:6])
    leads.failed(second, 404, now=NOW)   # which of them was refused is not said...
    assert len(leads.store.open_leads()) == 8
    busy, singles = {first.key}, []
    for _ in range(3):                   # ...so they are asked one a call
        work = leads.next_lead(umbrellas, busy=busy)
        singles.append(work.track_ids)
        busy.add(work.key)
    assert singles == [(ids[3],), (ids[4],), (ids[5],)]
    rest = leads.next_lead(umbrellas, busy=busy)
    assert rest.track_ids == tuple(ids[6:])                       # what is left, fewer
    refused = Work(LEAD, track_ids=(ids[4],), artist_ids=(ARTIST,))
    leads.failed(refused, 404, now=NOW)                           # alone: that one is gone
    for pair in leads.pairs(first) + leads.pairs(rest) + [(ids[3], ARTIST), (ids[5], ARTIST)]:
        leads.ended(*pair, "confirmed")
    assert leads.next_lead(umbrellas, busy=set()) is None
    states = dict(leads.store.db.execute("SELECT track_id, ended FROM leads"))
    assert states[ids[4]] == "gone" and leads.store.open_leads() == []


def test_a_cell_is_not_stopped_while_its_leads_still_work(leads):
    cell, other = ("R&B & Soul", "10s"), ("R&B & Soul", "90s")
    assert leads.open_for(cell)                      # the artist's track list, still to read
    assert not leads.open_for(other)                 # the artist has no track counted there
    leads.listed(ARTIST, 0, [row()], 1, NOW)         # the whole list read: one lead waits
    assert leads.open_for(cell)
    leads.ended(TRACK, ARTIST, "confirmed")
    assert not leads.open_for(cell)
    # The cell's verdict: low yield for search and albums, but not while leads still work.
    planner = SimpleNamespace(counts={cell: 1}, cell_target=10, full=lambda: False,
                              cell_worth=lambda *c: 0.0, cell_exhausted=lambda *c: False)
    learnt = SimpleNamespace(share=lambda source: 1.0, features_share=0.6,
                             listing_worth=lambda: 0.0)
    expansion = SimpleNamespace(learnt=learnt, album_worth=lambda cell, busy: 0.0,
                                listing_open=lambda umbrella, busy: False)
    book = CellBook(planner, expansion, leads.store, min_yield=1.0)
    assert book.review() == {cell: "low_yield"}
    book.leads_open = lambda c: c == cell
    assert book.review() == {}


def test_failures_of_leads_work(leads):
    track = Work(LEAD, track_ids=(TRACK,), artist_id=ARTIST)
    leads.listed(ARTIST, 0, [row()], 2, NOW)
    leads.failed(track, 404, now=NOW)                 # Spotify will not serve it: gone
    assert leads.store.open_leads() == []
    page = Work(RECCO_ARTIST_TRACKS, offset=1, artist_id=ARTIST, recco_id="u")
    leads.failed(page, 503, now=NOW)                  # after the retries: next run
    assert leads.next_recco(["R&B & Soul"], busy=set()) is None
    assert leads.on and ARTIST in leads.artists
    leads.failed(page, 403, now=NOW)                  # Cloudflare's block: no more this run
    assert not leads.on and leads.store.recco_artists()[0]["listed"] is None
    leads.on = True
    leads.failed_keys.clear()
    leads.failed(page, 404, now=NOW)                  # ReccoBeats does not know the artist
    assert leads.store.recco_artists() == [] and ARTIST not in leads.artists


def test_pages_stop_when_they_stop_giving_leads(leads):
    assert leads.next_recco(["R&B & Soul"], busy=set()).kind == RECCO_ARTIST_TRACKS
    leads.pages, leads.found = 40, 10               # (10 + 15) / 45 < 1 lead a page
    assert leads.next_recco(["R&B & Soul"], busy=set()) is None


def test_pages_stay_within_their_share_of_the_candidates(leads):
    """Pages that still give leads are read only while the pages read so far stay under
    ``pages_per_candidate`` of the candidates counted; the cap follows the count up, and
    0 means no cap. A cell is not kept open by pages the cap would not read."""
    leads.pages_per_candidate, leads.candidates = 0.02, lambda: 250
    leads.pages, leads.found = 5, 50        # (50 + 15) / (5 + 5) leads a page: worth reading
    assert leads.next_recco(["R&B & Soul"], busy=set()) is None     # 5 of 250 x 0.02
    assert not leads.open_for(("R&B & Soul", "10s"))
    leads.candidates = lambda: 251
    assert leads.next_recco(["R&B & Soul"], busy=set()).kind == RECCO_ARTIST_TRACKS
    assert leads.open_for(("R&B & Soul", "10s"))
    leads.pages_per_candidate, leads.candidates = 0.0, lambda: 0
    assert leads.next_recco(["R&B & Soul"], busy=set()).kind == RECCO_ARTIST_TRACKS


def test_reccobeats_discovery_requests_carry_the_key_but_are_never_cached(monkeypatch):
    monkeypatch.setenv("RECCOBEATS_API_KEY", "rb-key")
    crawler = get_crawler(SpotifyCatalogSpider, {
        k: getattr(project, k) for k in dir(project) if k.isupper()})
    spider = SpotifyCatalogSpider.from_crawler(crawler)
    spider.frontier = SimpleNamespace(failed=lambda failure: [])
    page = spider.request_for(Work(RECCO_ARTIST_TRACKS, offset=2, artist_id=ARTIST,
                                   recco_id="9451b6b2"))
    assert page.url.endswith("/artist/9451b6b2/track?page=2&size=50")
    assert page.headers[b"x-api-key"] == b"rb-key"
    # An HTTP cache would write the request's headers to disk with the response.
    assert page.meta["dont_cache"] is True


def test_artists_with_the_most_unread_album_tracks_are_read_first(leads):
    """The artist whose known albums hold the most tracks the store lacks is read first,
    even of a less needy umbrella: an artist whose albums are all read has little left for
    ReccoBeats to name. Among equals, the neediest umbrella's."""
    other, needy, less_needy = "2Xyo4u8uXC1ZmMpatF05PJ", "R&B & Soul", "Pop"
    umbrellas = [needy, less_needy]
    leads.counted_in = lambda cell, artist: 3 if cell[1] == "10s" else 0
    leads.see(other, less_needy)
    leads.looked_up((other,), {other: "5551b6b2-8746-4d43-abd7-c355ed1e3048"})
    assert leads.next_recco(umbrellas, busy=set()).artist_id == ARTIST    # neediest first

    rules = project_rules()
    expansion = Expansion(leads.store, rules, min_yield=1.0, albums=True, listings=False)
    album = AlbumRef("3Xyo4u8uXC1ZmMpatF05PJ", "Unread", "album", "2015-03-01", "day", 12,
                     other, None)
    expansion.see(album, [(less_needy, "10s")], NOW, list_artist=False)
    expansion.stored([album.id] * 4)                  # 4 of its 12 tracks stored meanwhile
    assert (expansion.unread(other), expansion.unread(ARTIST)) == (8, 0)
    leads.unread = expansion.unread
    assert leads.next_recco(umbrellas, busy=set()).artist_id == other
    expansion.album_read(album.id, 12, 12, 8, 8, NOW)  # read to the end: nothing unread
    assert expansion.unread(other) == 0
    assert leads.next_recco(umbrellas, busy=set()).artist_id == ARTIST


def test_artists_spotify_has_not_listed_yet_are_read_before_those_with_unread_tracks(leads):
    """An artist still waiting for its Spotify album listing comes before one whose known
    albums hold unread tracks: its ReccoBeats list names tracks of albums nobody has seen,
    and a confirmed lead reveals its album. Once listed, the unread tracks decide again."""
    waiting, needy, less_needy = "2Xyo4u8uXC1ZmMpatF05PJ", "R&B & Soul", "Pop"
    umbrellas = [needy, less_needy]
    leads.counted_in = lambda cell, artist: 3 if cell[1] == "10s" else 0
    leads.see(waiting, less_needy)
    leads.looked_up((waiting,), {waiting: "5551b6b2-8746-4d43-abd7-c355ed1e3048"})

    rules = project_rules()
    expansion = Expansion(leads.store, rules, min_yield=1.0, albums=True, listings=True)
    unread = AlbumRef("3Xyo4u8uXC1ZmMpatF05PJ", "Unread", "album", "2015-03-01", "day", 12,
                      ARTIST, None)
    expansion.see(unread, [(needy, "10s")], NOW, list_artist=False)
    seen_on_a_hit = AlbumRef("4Xyo4u8uXC1ZmMpatF05PJ", "Hit", "single", "2016-05-01", "day",
                             1, waiting, None)
    expansion.see(seen_on_a_hit, [(less_needy, "10s")], NOW, list_artist=True)
    expansion.stored([seen_on_a_hit.id])
    leads.unread, leads.to_list = expansion.unread, expansion.to_list
    assert (expansion.unread(ARTIST), expansion.unread(waiting)) == (12, 0)
    assert (expansion.to_list(ARTIST), expansion.to_list(waiting)) == (False, True)
    assert leads.next_recco(umbrellas, busy=set()).artist_id == waiting
    assert Expansion(leads.store, rules, min_yield=1.0, albums=True,
                     listings=True).to_list(waiting)                # a restart: the same

    expansion.listing_read(waiting, [], 0, 0, NOW, first=True)     # listed: nothing more
    assert not expansion.to_list(waiting)
    assert leads.next_recco(umbrellas, busy=set()).artist_id == ARTIST
    assert not Expansion(leads.store, rules, min_yield=1.0, albums=True,
                         listings=True).to_list(waiting)
