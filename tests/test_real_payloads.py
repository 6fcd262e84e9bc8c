"""Response bodies recorded from the live Spotify services by others, through our parsers.

The bodies under ``tests/fixtures/real/`` are kept byte for byte as their projects published
them (``SOURCES.md`` there says where each comes from, under which licence, and what it shows;
a test below checks every file against the SHA-256 listed there). Each test hands a body to
every parser of the project that handles that kind of body and checks that what the body holds
comes out field for field, that nothing real is dropped and that nothing raises:

* track objects (search pages, full tracks, relinked tracks, playlist items) through
  :func:`~runclub_spiders.spotify_objects.parse_track`, :class:`PageTracks` and
  :func:`paging`, with the playlist-row unwrapping the spider uses;
* token responses and Accounts errors through the real ``SpotifyAuthMiddleware`` in a real
  crawl, served from a loopback HTTP server (no mocks);
* Web API error bodies through the auth middleware (401), the rate-limit middleware's body
  reader and ``Retry-After`` parser (403), and a real crawl (403 over loopback).

The unplayable track (``is_playable: false`` with ``restrictions``) is a live 2017 answer from
rspotify's VCR cassettes; the 403 bodies and the playlist page whose second row carries no
object at all come from spotify-web-api-java. ReccoBeats bodies, 429 bodies, playlist search
pages with ``null`` entries and playlist items with a ``null`` track or with both ``item`` and
``track`` were still not found in any permissively licensed source (see SOURCES.md); the
simulator's versions of those are tested elsewhere.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from scrapy.http import TextResponse
from scrapy.utils.defer import deferred_f_from_coro_f

import runclub_spiders.settings as project
from runclub_spiders.auth.tokens import TokenFile
from runclub_spiders.catalog.candidates import playability
from runclub_spiders.quota import parse_retry_after, quota_reason
from runclub_spiders.spotify_objects import (
    PageTracks,
    clean_text,
    paging,
    parse_track,
    playlist_items_total,
    timestamp,
    token,
)
from tests.conftest import run_spider
from tests.spiders import ProbeSpider

REAL = Path(__file__).resolve().parent / "fixtures" / "real"
JAVA = "spotify-web-api-java"
KIT = "SpotifyKit"
ZMB3 = "zmb3-spotify"
RSPOTIFY = "guilhermesad-rspotify"


def raw(name: str) -> bytes:
    return (REAL / name).read_bytes()


def load(name: str) -> Any:
    return json.loads(raw(name))


class Stats:
    """Enough of a Scrapy stats collector for :class:`PageTracks`."""

    def __init__(self) -> None:
        self.values: dict[str, int] = {}

    def inc_value(self, key: str, count: int = 1) -> None:
        self.values[key] = self.values.get(key, 0) + count


def row_object(row: Any) -> Any:
    """The spider's unwrapping of a playlist row (``parse_playlist_items``), verbatim."""
    return row.get("item") if "item" in row else row.get("track")


# ---------------------------------------------------------------------------- provenance
def test_every_fixture_is_listed_with_its_checksum():
    sources = (REAL / "SOURCES.md").read_text(encoding="utf-8")
    listed = dict(re.findall(r"^\| `([^`]+)` \| `([0-9a-f]{64})` \|", sources, re.M))
    on_disk = {p.relative_to(REAL).as_posix() for p in REAL.rglob("*")
               if p.is_file() and p.parent.name != "LICENSES" and p.name != "SOURCES.md"}
    assert on_disk == set(listed)
    for name, digest in listed.items():
        assert hashlib.sha256(raw(name)).hexdigest() == digest, name
    for licence in ("Apache-2.0.txt", "MIT-spotify-web-api-java.txt", "MIT-rspotify.txt"):
        assert (REAL / "LICENSES" / licence).stat().st_size > 1000


# ---------------------------------------------------------------------------- search pages
def test_search_page_of_tracks_and_playlists():
    body = json.loads(raw(f"{ZMB3}/search_trackplaylist.txt"))
    items, total, following = paging(body, "tracks")
    assert (len(items), total) == (2, 95757)          # a total far past the reachable 1,000
    assert following == ("https://api.spotify.com/v1/search?query=holiday&offset=2&limit=2"
                         "&type=track")
    stats = Stats()
    page = PageTracks(stats)
    records = [page.track(obj) for obj in items]
    assert stats.values == {}                           # nothing skipped, nothing repaired
    first, second = records
    assert first is not None and second is not None
    assert (first.id, first.name, first.isrc, first.duration_ms, first.explicit) == (
        "2DDyRNAXXX813uHNsmVTZZ", "I Gotta Right to Sing the Blues", "DEL111401686", 168669,
        False)
    assert (second.id, second.name, second.isrc, second.duration_ms) == (
        "5HMX3UxFIRq4wFFmoXanCK", "The Blue Angel (Der blaue Engel): Falling in Love Again",
        "DEL111401687", 167940)
    for record, number in ((first, 1), (second, 2)):
        assert record.album_id == "2N8ts2lU3mmMoapxr7BCMM"
        assert record.album_name == ("All That Jazz, Vol. 21: Billie Holiday, Vol. 1 "
                                     "(2014 Digital Remaster)")
        assert record.album_type == "compilation"
        assert record.release_date is None and record.release_precision is None  # not sent
        assert record.album_image_url == ("https://i.scdn.co/image/"
                                          "d7b2595d05ed7688b76ea7ccaf4f11963c3c8514")
        assert record.artist_ids == ("1YzCsTRb22dQkh9lghPIrp",)
        assert record.artist_names == ("Billie Holiday",)
        assert record.popularity == 0                   # a real 0, not "unknown"
        assert record.is_playable is None               # no market: not sent
        assert record.available_markets is not None and len(record.available_markets) == 60
        assert record.available_markets[:3] == ("AD", "AR", "AT")
        assert record.track_number == number and record.disc_number == 1
        assert record.preview_url is not None
        assert record.preview_url.startswith("https://p.scdn.co/mp3-preview/")

    playlists, total, _ = paging(body, "playlists")
    assert (len(playlists), total) == (2, 1232)
    assert [p["id"] for p in playlists] == ["5l6rFyXN63iINVsbaBObag", "5NtjgKz4doejP5HJtKXFcS"]
    # What the spider keeps of a listed playlist: owner id and name through clean_text.
    assert [clean_text(p["owner"]["id"]) for p in playlists] == ["myplay.com", "128899670"]
    name = clean_text(playlists[0]["name"])
    assert name == playlists[0]["name"] and "Bublé" in name     # 150 characters, kept whole
    # These older bodies have no snapshot_id, "public": null and only the "tracks" summary.
    assert all(token(p.get("snapshot_id")) is None for p in playlists)
    assert [p["tracks"]["total"] for p in playlists] == [185, 49]
    # The spider reads a playlist's size through this, old name or new (2026: "items").
    assert [playlist_items_total(p) for p in playlists] == [185, 49]


# ---------------------------------------------------------------------------- full tracks
def test_full_track():
    record, note = parse_track(load(f"{JAVA}/GetTrackRequest.json"))
    assert note is None and record is not None
    assert (record.id, record.name, record.isrc, record.duration_ms, record.explicit) == (
        "3n3Ppam7vgaVa1iaRUc9Lp", "Mr. Brightside", "GBFFP0300052", 222200, False)
    assert (record.album_id, record.album_name, record.album_type) == (
        "4OHNH3sDzIxnmUADXzv2kT", "Hot Fuss (Deluxe Version)", "album")
    assert record.artist_ids == ("0C0XlULifJtAgn6ZNCW2eu",)
    assert record.artist_names == ("The Killers",)
    assert (record.popularity, record.track_number, record.disc_number) == (73, 2, 1)
    assert record.album_image_url == ("https://i.scdn.co/image/"
                                      "ac68a9e4a867ec3ce8249cd90a2d7c73755fb487")
    assert record.available_markets is not None and len(record.available_markets) == 57
    assert "US" not in record.available_markets         # a real gap, kept as sent
    assert record.release_date is None                  # not in this body


def test_full_track_with_a_lowercase_isrc():
    record, note = parse_track(load(f"{KIT}/trackData.json"))
    assert note is None and record is not None
    assert (record.id, record.name, record.duration_ms, record.explicit) == (
        "7g1YqCZblmFepoevFFVP7t", "My Thing", 157666, False)
    assert record.isrc == "USCGH1386337"                # sent as "uscgh1386337"
    assert record.is_playable is True and record.popularity == 14
    assert (record.album_id, record.album_name) == ("2iZq3oEOQvi24pwnMAtyob", "Mountain")
    assert record.artist_names == ("Vibrolux",)
    assert record.preview_url == ("https://p.scdn.co/mp3-preview/"
                                  "36b1991141d0721a7e55530d6fe9786d1cdd3593"
                                  "?cid=8897482848704f2a8f8d7c79726a70d4")
    assert record.available_markets is None             # not sent


def test_unplayable_track_with_a_market_restriction():
    body = load(f"{RSPOTIFY}/track_find_6fi8e1nv4QBqODf9puRcyX_market_ES.json")
    # As recorded (GET /v1/tracks/6fi8e1nv4QBqODf9puRcyX?market=ES, 2017-11-04).
    assert body["is_playable"] is False and body["restrictions"] == {"reason": "market"}
    assert "available_markets" not in body and "linked_from" not in body
    record, note = parse_track(body)
    assert note is None and record is not None      # kept: unplayable is not malformed
    assert (record.id, record.name, record.isrc, record.duration_ms, record.explicit) == (
        "6fi8e1nv4QBqODf9puRcyX", "Stuck Together Pieces", "GB4YG1200015", 328443, False)
    assert record.is_playable is False              # kept as sent, not "unknown"
    assert record.available_markets is None
    assert record.popularity == 0                   # a real 0
    assert record.preview_url is None               # "preview_url": null
    assert (record.track_number, record.disc_number) == (6, 1)
    assert (record.album_id, record.album_name, record.album_type) == (
        "6dJZDZMNdBPZrJcNv57bEq", "AMOK", "album")
    assert record.release_date is None and record.release_precision is None   # not sent
    assert record.album_image_url == ("https://i.scdn.co/image/"
                                      "4bafa984ad5f17915fce1cde1108036c17869ec2")
    assert record.artist_ids == ("7tA9Eeeb68kkiG9Nrvuzmi",)
    assert record.artist_names == ("Atoms For Peace",)
    stats = Stats()
    assert PageTracks(stats).track(body) == record and stats.values == {}
    # What classification makes of it once stored (the store keeps is_playable as 0/1):
    stored = {"is_playable": int(record.is_playable), "available_markets": None,
              "recco_countries": None}
    assert playability(stored, "ES", frozenset({"ES"})) == (
        False, "spotify_is_playable", None)


def test_relinked_tracks_and_an_uppercase_album_type():
    body = load(f"{KIT}/recommendationsData.json")
    stats = Stats()
    page = PageTracks(stats)
    records = [page.track(obj) for obj in body["tracks"]]
    assert stats.values == {}
    assert all(r is not None for r in records)
    relinked, echoes, testarossa = records
    # Relinked: the playable instance's id, not the one asked for (linked_from.id).
    assert body["tracks"][0]["linked_from"]["id"] == "30XdrKqZLyKojgKvAkRtno"
    assert (relinked.id, relinked.name, relinked.isrc, relinked.is_playable) == (
        "79NqxckK3lcOV0DTVXPuEE", "Imaginary Friend", "SEUM71601202", True)
    assert relinked.preview_url is None                 # "preview_url": null
    assert (relinked.duration_ms, relinked.track_number, relinked.popularity) == (252771, 9, 56)
    # "album_type": "ALBUM" in these bodies; the store takes the lowercase spelling.
    assert [r.album_type for r in records] == ["album", "album", "album"]
    assert (echoes.id, echoes.album_name, echoes.isrc) == (
        "78GyX18u4pQwlnVYBaGjbb", "Caracal (Deluxe)", "GBUM71503572")
    assert testarossa.artist_ids == ("28j8lBWDdDSHSSt5oPlsX2", "7wFDo161xYdeaiLz3KIHoM")
    assert testarossa.artist_names == ("ZHU", "Gallant")
    assert testarossa.isrc == "USSM11506934"


# ---------------------------------------------------------------------------- playlist items
def test_playlist_with_a_local_file():
    body = load(f"{JAVA}/playlist-localfiles-response.json")
    rows, total, following = paging(body, "tracks")      # pre-2026 name of the items page
    assert (len(rows), total, following) == (1, 1, None)
    stats = Stats()
    page = PageTracks(stats)
    assert [page.track(row_object(r)) for r in rows] == [None]
    assert stats.values == {"discovery/skipped/local_file": 1}
    assert rows[0]["is_local"] is True
    assert timestamp(rows[0]["added_at"]) == "2015-07-30T05:31:52Z"
    assert token(body["snapshot_id"]) == ("S5YVoffZ+0fIafN+WRREou2ayfrU5VNtUJRfuN5J1xU6VgtTpLA"
                                          "L68GTJbmDRgU2")
    assert clean_text(body["owner"]["id"]) == "1160451974"
    assert clean_text(body["name"]) == "Lokale Playlisten"
    assert body["description"] is None and clean_text(body["description"]) is None


def test_playlist_items_page_with_an_episode():
    body = load(f"{JAVA}/GetPlaylistsItemsRequest_Episode.json")
    rows, total, following = paging(body)
    assert (len(rows), total, following) == (1, 58, None)
    row = rows[0]
    assert "item" in row and "track" not in row         # the 2026 key alone
    episode = row_object(row)
    # An episode object carries "track": false and "episode": true of its own.
    assert episode["type"] == "episode" and episode["track"] is False
    assert parse_track(episode) == (None, "not_a_track")
    stats = Stats()
    assert PageTracks(stats).track(episode) is None
    assert stats.values == {"discovery/skipped/not_a_track": 1}
    assert timestamp(row["added_at"]) == "2016-10-11T13:44:40Z"


def test_playlist_items_page_with_a_row_that_carries_no_object():
    body = load(f"{JAVA}/GetPlaylistsItemsRequest.json")
    rows, total, following = paging(body)
    assert (len(rows), total, following) == (2, 58, None)
    full, bare = rows
    assert "track" in full and "item" not in full       # the pre-2026 key alone
    assert "track" not in bare and "item" not in bare   # neither key: no object at all
    assert row_object(bare) is None
    stats = Stats()
    page = PageTracks(stats)
    records = [page.track(row_object(r)) for r in rows]
    assert records[1] is None
    assert stats.values == {"discovery/skipped/null": 1}   # counted, nothing raised
    record = records[0]
    assert record is not None
    assert (record.id, record.name, record.isrc, record.duration_ms, record.explicit) == (
        "7pk3EpFtmsOdj8iUhjmeCM", "Otra Vez (feat. J Balvin)", "USWL11600423", 209453, False)
    assert record.artist_ids == ("21451j1KhjAiaYKflxBjr1", "1vyhD5VmyZ7KMfW5gqLgo5")
    assert record.artist_names == ("Zion & Lennox", "J Balvin")
    assert (record.album_id, record.album_name, record.album_type) == (
        "5GjKG3Y8OvSVJO55dQTFyD", "Otra Vez (feat. J Balvin)", "single")
    assert (record.popularity, record.track_number, record.disc_number) == (85, 1, 1)
    assert record.is_playable is None
    assert record.available_markets is not None and len(record.available_markets) == 59
    assert "US" not in record.available_markets
    assert record.preview_url == ("https://p.scdn.co/mp3-preview/"
                                  "79c8c9edc4f1ced9dbc368f24374421ed0a33005")
    assert record.album_image_url == ("https://i.scdn.co/image/"
                                      "b16064142fcd2bd318b08aab0b93b46e87b1ebf5")
    assert [timestamp(r["added_at"]) for r in rows] == ["2016-10-11T13:44:40Z"] * 2
    assert [clean_text(r["added_by"]["id"]) for r in rows] == ["spotify_españa"] * 2


# ---------------------------------------------------------------------------- error bodies
def response(body: bytes, status: int) -> TextResponse:
    return TextResponse("https://api.spotify.com/v1/tracks/x", status=status, body=body,
                        headers={"Content-Type": "application/json"})


@pytest.mark.parametrize("name", [f"{KIT}/errorData.json", f"{KIT}/authenticationErrorData.json",
                                  f"{JAVA}/AuthorizationCodeRefreshRevoked.json"])
def test_error_bodies_carry_no_quota_reason(name):
    # The rate-limit middleware reads ``error.reason`` of every 429; these bodies have none
    # (and the OAuth ones have a string "error"): no crash, no quota park.
    assert quota_reason(response(raw(name), 429)) is None


FORBIDDEN = {
    f"{JAVA}/AddTracksToPlaylistRequest_Error.json":
        "You cannot add tracks to a playlist you don't own.",
    f"{JAVA}/CreatePlaylistRequest_Error.json": "You cannot create a playlist for another user.",
    f"{JAVA}/ChangePlaylistsDetailsRequest_Error.json": "Not allowed",
}


@pytest.mark.parametrize("name", sorted(FORBIDDEN))
def test_403_bodies(name):
    body = load(name)
    assert body == {"error": {"status": 403, "message": FORBIDDEN[name]}}
    # No "reason" in a real 403: the body reader finds no quota reason, whatever the status
    # it arrives with, and does not raise.
    for status in (403, 429):
        assert quota_reason(response(raw(name), status)) is None
    # None of these recordings kept a Retry-After header; an absent one parses to None.
    assert parse_retry_after(None, 0.0) is None


# ---------------------------------------------------------------------------- through the wire
class Recorded:
    """A loopback server for the Accounts token endpoint and the Web API, serving recorded
    bodies: ``token`` answers every token request, ``api`` lists (status, body) answers for
    successive API requests (the last repeats)."""

    def __init__(self, token: tuple[int, bytes], api: list[tuple[int, bytes]]) -> None:
        self.token, self.api = token, list(api)
        self.authorizations: list[str] = []
        self.token_requests = 0
        recorded = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"      # keep-alive, as Scrapy's pooled connections expect

            def _send(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                recorded.token_requests += 1
                self._send(*recorded.token)

            def do_GET(self) -> None:
                recorded.authorizations.append(self.headers.get("Authorization", ""))
                answer = recorded.api.pop(0) if len(recorded.api) > 1 else recorded.api[0]
                self._send(*answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Recorded:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


async def crawl(server: Recorded, tmp_path, monkeypatch,
                paths=("/tracks/3n3Ppam7vgaVa1iaRUc9Lp",)):
    monkeypatch.setenv("SPOTIFY_CLIENT_ID", "recordedclient")
    monkeypatch.setenv("SPOTIFY_CLIENT_SECRET", "recorded-secret")
    monkeypatch.setenv("SPOTIFY_REFRESH_TOKEN", "the-refresh-token-we-hold")
    settings = {k: v for k, v in vars(project).items() if k.isupper()}
    settings.update(
        SPOTIFY_API_BASE_URL=f"{server.base}/v1", SPOTIFY_ACCOUNTS_BASE_URL=server.base,
        RECCOBEATS_BASE_URL=f"{server.base}/recco",
        SPOTIFY_TOKEN_FILE=str(tmp_path / "cache" / "spotify_token.json"),
        CATALOG_STORE_PATH=str(tmp_path / "store.sqlite"),
        AUTOTHROTTLE_ENABLED=False, RETRY_ENABLED=False, LOG_LEVEL="INFO",
        DOWNLOAD_SLOTS={"api.spotify.com": {"concurrency": 1, "delay": 0.0},
                        "accounts.spotify.com": {"concurrency": 1, "delay": 0.0},
                        "api.reccobeats.com": {"concurrency": 1, "delay": 0.0}})
    return await run_spider(ProbeSpider, settings, paths=list(paths))


def track_body() -> bytes:
    return raw(f"{JAVA}/GetTrackRequest.json")


@deferred_f_from_coro_f
async def test_token_response_with_a_new_refresh_token(tmp_path, monkeypatch):
    with Recorded((200, raw(f"{JAVA}/AuthorizationCode.json")), [(200, track_body())]) as s:
        crawler, stats = await crawl(s, tmp_path, monkeypatch)
    assert stats["finish_reason"] == "finished"
    assert crawler.spider.statuses == {"/tracks/3n3Ppam7vgaVa1iaRUc9Lp": 200}
    assert s.authorizations == ["Bearer NgCXRK...MzYjw"]           # access_token, as sent
    assert stats["spotify/auth/token_refreshes"] == 1
    assert stats["spotify/auth/refresh_token_rotated"] == 1
    saved = TokenFile(tmp_path / "cache" / "spotify_token.json").read()
    assert saved is not None and saved["refresh_token"] == "NgAagA...Um_SHo"


@deferred_f_from_coro_f
async def test_token_response_without_a_refresh_token(tmp_path, monkeypatch):
    with Recorded((200, raw(f"{JAVA}/AuthorizationCodeRefresh.json")),
                  [(200, track_body())]) as s:
        crawler, stats = await crawl(s, tmp_path, monkeypatch)
    assert stats["finish_reason"] == "finished"
    assert crawler.spider.statuses == {"/tracks/3n3Ppam7vgaVa1iaRUc9Lp": 200}
    assert s.authorizations == ["Bearer NgA6ZcYI...ixn8bUQ"]
    assert "spotify/auth/refresh_token_rotated" not in stats     # keep the token we hold
    assert not (tmp_path / "cache" / "spotify_token.json").exists()


@deferred_f_from_coro_f
async def test_expired_access_token_401_is_refreshed_and_retried(tmp_path, monkeypatch):
    answers = [(401, raw(f"{KIT}/errorData.json")), (200, track_body())]
    with Recorded((200, raw(f"{JAVA}/AuthorizationCodeRefresh.json")), answers) as s:
        crawler, stats = await crawl(s, tmp_path, monkeypatch)
    assert stats["finish_reason"] == "finished", stats
    assert crawler.spider.statuses == {"/tracks/3n3Ppam7vgaVa1iaRUc9Lp": 200}, (
        crawler.spider.failures, stats)
    assert stats["spotify/auth/retried_401"] == 1
    assert stats["spotify/auth/token_refreshes"] == 2 == s.token_requests
    assert len(s.authorizations) == 2


@pytest.mark.parametrize("name, said", [
    (f"{JAVA}/AuthorizationCodeRefreshRevoked.json", "Refresh token revoked"),
    (f"{KIT}/authenticationErrorData.json", "invalid_client"),
])
@deferred_f_from_coro_f
async def test_accounts_errors_stop_the_crawl(tmp_path, monkeypatch, caplog, name, said):
    caplog.set_level(logging.ERROR)
    with Recorded((400, raw(name)), [(200, track_body())]) as s:
        _crawler, stats = await crawl(s, tmp_path, monkeypatch)
    assert stats["finish_reason"] == "auth_failed"
    assert stats["spotify/auth/failure"] == "auth_failed"
    assert s.authorizations == []                       # no API request went out
    assert s.token_requests == 1                        # invalid_grant is not retried
    assert any(said in r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR)



@deferred_f_from_coro_f
async def test_a_real_403_is_final(tmp_path, monkeypatch):
    forbidden = raw(f"{JAVA}/AddTracksToPlaylistRequest_Error.json")
    with Recorded((200, raw(f"{JAVA}/AuthorizationCodeRefresh.json")), [(403, forbidden)]) as s:
        crawler, stats = await crawl(s, tmp_path, monkeypatch)
    assert stats["finish_reason"] == "finished"
    assert crawler.spider.statuses == {}
    assert crawler.spider.failures == {"/tracks/3n3Ppam7vgaVa1iaRUc9Lp": "HttpError"}
    assert len(s.authorizations) == 1                   # not retried, not re-authenticated
    assert s.token_requests == 1
    assert "spotify/auth/retried_401" not in stats
