"""A real third-party client, spotipy, against the simulator: its OAuth refresh against the
simulated Accounts service, then the Web API in both profiles. Whatever spotipy builds (paths,
trailing slashes, absolute ``next`` links) the simulator has to answer the way Spotify does."""

from __future__ import annotations

from typing import Any

import pytest
import spotipy
from spotipy.cache_handler import MemoryCacheHandler
from spotipy.oauth2 import SpotifyOAuth, SpotifyOauthError

from runclub_spiders.simulator import Simulator
from runclub_spiders.simulator.catalog import OWNER_ID, Playlist

SCOPE = "playlist-read-private playlist-read-collaborative"
UNKNOWN_ID = "0000000000000000000000"


def oauth_for(sim: Simulator, cache: MemoryCacheHandler | None = None,
              client_secret: str | None = None) -> SpotifyOAuth:
    """spotipy's own Authorization Code manager, with its token URL pointed at the simulator."""

    class SimulatorOAuth(SpotifyOAuth):
        OAUTH_AUTHORIZE_URL = sim.accounts_base_url + "/authorize"
        OAUTH_TOKEN_URL = sim.accounts_base_url + "/api/token"

    env = sim.env()
    return SimulatorOAuth(client_id=env["SPOTIFY_CLIENT_ID"],
                          client_secret=client_secret or env["SPOTIFY_CLIENT_SECRET"],
                          redirect_uri=env["SPOTIFY_REDIRECT_URI"], scope=SCOPE,
                          cache_handler=cache or MemoryCacheHandler(), open_browser=False,
                          requests_timeout=10)


def client(sim: Simulator) -> spotipy.Spotify:
    token = oauth_for(sim).refresh_access_token(sim.config.refresh_token)["access_token"]
    sp = spotipy.Spotify(auth=token, requests_timeout=10, retries=0, status_retries=0)
    sp.prefix = sim.spotify_api_base_url + "/"
    return sp


def spotify_paths(sim: Simulator, since: int) -> list[str]:
    return [e.path for e in sim.requests(since, service="spotify")]


def playlist(sim: Simulator, **where: Any) -> Playlist:
    return next(p for p in sim.catalog.playlists.values()
                if all(getattr(p, k) == v for k, v in where.items()))


def owner_playlist(sim: Simulator) -> Playlist:
    """An owner playlist with more than 50 rows, so its items take several pages."""
    return next(p for p in sim.catalog.playlists.values()
                if p.owner_id == OWNER_ID and len(p.track_idxs) + len(p.extras) > 50)


def others_playlist(sim: Simulator) -> Playlist:
    return playlist(sim, readable=False, editorial=False, public=True)


def editorial_playlist(sim: Simulator) -> Playlist:
    return next(p for p in sim.catalog.playlists.values() if p.editorial)


def all_items(sp: spotipy.Spotify, first: dict[str, Any]) -> list[Any]:
    """Follow ``next`` with spotipy until the last page."""
    page, rows = first, list(first["items"])
    while page["next"]:
        page = sp.next(page)
        rows.extend(page["items"])
    return rows


# ---------------------------------------------------------------------------- OAuth
def test_spotipy_refreshes_through_the_simulated_accounts_service(ext_sim) -> None:
    cache = MemoryCacheHandler()
    info = oauth_for(ext_sim, cache).refresh_access_token(ext_sim.config.refresh_token)
    assert info["access_token"].startswith("BQ") and info["token_type"] == "Bearer"
    assert info["expires_in"] == 3600
    # Spotify did not rotate it, so spotipy keeps the refresh token it sent.
    assert info["refresh_token"] == ext_sim.config.refresh_token
    assert cache.get_cached_token() == info
    assert ext_sim.accounts.token_grants == 1
    assert [(e.method, e.path) for e in ext_sim.requests(service="accounts")] == [
        ("POST", "/accounts/api/token")]


def test_spotipy_auth_manager_refreshes_an_expired_cached_token(ext_sim) -> None:
    stale = {"access_token": "BQ-expired", "token_type": "Bearer", "expires_in": 3600,
             "expires_at": 0, "scope": SCOPE, "refresh_token": ext_sim.config.refresh_token}
    cache = MemoryCacheHandler(dict(stale))
    sp = spotipy.Spotify(auth_manager=oauth_for(ext_sim, cache), requests_timeout=10,
                         retries=0, status_retries=0)
    sp.prefix = ext_sim.spotify_api_base_url + "/"
    assert sp.me()["id"] == OWNER_ID
    assert ext_sim.accounts.token_grants == 1
    fresh = cache.get_cached_token()
    assert fresh["access_token"] != stale["access_token"] and fresh["expires_at"] > 0
    assert sp.current_user_playlists(limit=1)["total"] > 0
    assert ext_sim.accounts.token_grants == 1       # the fresh token is reused


def test_spotipy_sees_oauth_errors(ext_sim) -> None:
    with pytest.raises(SpotifyOauthError) as bad_grant:
        oauth_for(ext_sim).refresh_access_token("AQ-not-a-refresh-token")
    assert bad_grant.value.error == "invalid_grant"
    with pytest.raises(SpotifyOauthError) as bad_client:
        oauth_for(ext_sim, client_secret="wrong").refresh_access_token(
            ext_sim.config.refresh_token)
    assert bad_client.value.error == "invalid_client"
    assert ext_sim.accounts.token_grants == 0


def test_spotipy_gets_401_for_a_dead_token(ext_sim) -> None:
    sp = spotipy.Spotify(auth="BQ-never-issued", requests_timeout=10, retries=0,
                         status_retries=0)
    sp.prefix = ext_sim.spotify_api_base_url + "/"
    with pytest.raises(spotipy.SpotifyException) as denied:
        sp.track(ext_sim.catalog.tracks[0].id)
    assert denied.value.http_status == 401
    assert "Invalid access token" in denied.value.msg


# ---------------------------------------------------------------------------- extended
def test_extended_search_takes_limit_50_and_next_follows_the_absolute_link(ext_sim) -> None:
    sp = client(ext_sim)
    first = sp.search("rock", limit=50)["tracks"]
    assert first["limit"] == 50 and len(first["items"]) == 50 and first["total"] > 100
    assert first["next"].startswith(ext_sim.spotify_api_base_url + "/search?")
    since = len(ext_sim.requests())
    second = sp.next(first)["tracks"]
    assert spotify_paths(ext_sim, since) == ["/spotify/v1/search"]
    assert second["offset"] == 50 and len(second["items"]) == 50
    assert not {t["id"] for t in first["items"]} & {t["id"] for t in second["items"]}
    assert sp.previous(second)["tracks"]["items"] == first["items"]
    assert all("popularity" in t for t in first["items"])


def test_extended_track_and_batch_lookups(ext_sim) -> None:
    sp = client(ext_sim)
    tracks = ext_sim.catalog.tracks[:5]
    one = sp.track(tracks[0].id)
    assert one["id"] == tracks[0].id and one["external_ids"]["isrc"] == tracks[0].isrc
    assert one["popularity"] == tracks[0].popularity
    since = len(ext_sim.requests())
    batch = sp.tracks([t.id for t in tracks] + [UNKNOWN_ID])["tracks"]
    assert spotify_paths(ext_sim, since) == ["/spotify/v1/tracks/"]   # spotipy's trailing "/"
    assert [t["id"] for t in batch[:-1]] == [t.id for t in tracks] and batch[-1] is None
    artists = sp.artists([a.id for a in ext_sim.catalog.artists[:3]])["artists"]
    assert [a["id"] for a in artists] == [a.id for a in ext_sim.catalog.artists[:3]]
    albums = sp.albums([a.id for a in ext_sim.catalog.albums[:3]])["albums"]
    assert [a["id"] for a in albums] == [a.id for a in ext_sim.catalog.albums[:3]]


def test_extended_playlist_read(ext_sim) -> None:
    sp = client(ext_sim)
    mine = owner_playlist(ext_sim)
    total = len(mine.track_idxs) + len(mine.extras)
    full = sp.playlist(mine.id)
    assert full["id"] == mine.id and full["snapshot_id"] == mine.snapshot_id
    assert full["items"]["total"] == total
    since = len(ext_sim.requests())
    first = sp.playlist_items(mine.id)
    # spotipy 2.26 reads /items, the endpoint that replaced /tracks.
    assert spotify_paths(ext_sim, since) == [f"/spotify/v1/playlists/{mine.id}/items"]
    rows = all_items(sp, first)
    assert len(rows) == total
    track_ids = [row["item"]["id"] for row in rows[:len(mine.track_idxs)]]
    assert track_ids == [ext_sim.catalog.tracks[i].id for i in mine.track_idxs]
    assert all(row["track"] == row["item"] for row in rows)     # deprecated alias, same object
    # Extended mode still reads other people's lists (the pre-2026 behaviour).
    theirs = others_playlist(ext_sim)
    assert sp.playlist_items(theirs.id)["total"] == len(theirs.track_idxs)
    editorial = editorial_playlist(ext_sim)
    assert sp.playlist(editorial.id)["owner"]["id"] == "spotify"


# ---------------------------------------------------------------------------- development
def test_development_search_limit_over_10_is_400(dev_sim) -> None:
    sp = client(dev_sim)
    with pytest.raises(spotipy.SpotifyException) as too_many:
        sp.search("rock", limit=20)
    assert too_many.value.http_status == 400
    assert "Invalid limit" in too_many.value.msg
    page = sp.search("rock", limit=10)["tracks"]       # spotipy's own default still works
    assert page["limit"] == 10 and len(page["items"]) == 10
    assert all("popularity" not in t and "available_markets" not in t for t in page["items"])
    second = sp.next(page)["tracks"]
    assert second["offset"] == 10 and len(second["items"]) == 10


def test_development_batch_endpoints_are_403(dev_sim) -> None:
    sp = client(dev_sim)
    calls = {"tracks": lambda: sp.tracks([t.id for t in dev_sim.catalog.tracks[:3]]),
             "artists": lambda: sp.artists([a.id for a in dev_sim.catalog.artists[:3]]),
             "albums": lambda: sp.albums([a.id for a in dev_sim.catalog.albums[:3]])}
    for name, call in calls.items():
        with pytest.raises(spotipy.SpotifyException) as forbidden:
            call()
        assert forbidden.value.http_status == 403, name
        assert "Forbidden" in forbidden.value.msg


def test_development_playlists_of_others(dev_sim) -> None:
    sp = client(dev_sim)
    theirs = others_playlist(dev_sim)
    meta = sp.playlist(theirs.id)               # metadata still comes back ...
    assert meta["id"] == theirs.id and meta["owner"]["id"] == theirs.owner_id
    assert "items" not in meta                  # ... without the items
    with pytest.raises(spotipy.SpotifyException) as forbidden:
        sp.playlist_items(theirs.id)
    assert forbidden.value.http_status == 403


def test_development_editorial_playlists_are_404(dev_sim) -> None:
    sp = client(dev_sim)
    editorial = editorial_playlist(dev_sim)
    assert editorial.id.startswith("37i9dQZ")
    for call in (sp.playlist, sp.playlist_items):
        with pytest.raises(spotipy.SpotifyException) as missing:
            call(editorial.id)
        assert missing.value.http_status == 404
        assert "Resource not found" in missing.value.msg


def test_development_what_still_works(dev_sim) -> None:
    sp = client(dev_sim)
    track = dev_sim.catalog.tracks[0]
    one = sp.track(track.id, market="US")
    assert one["id"] == track.id and one["external_ids"]["isrc"] == track.isrc
    assert "popularity" not in one and "linked_from" not in one
    assert one["is_playable"] is ("US" in track.markets)
    artist = sp.artist(dev_sim.catalog.artists[0].id)
    assert "genres" not in artist and "followers" not in artist
    album = sp.album(dev_sim.catalog.albums[0].id)
    assert album["release_date"] == dev_sim.catalog.albums[0].release_date
    assert "label" not in album
    with pytest.raises(spotipy.SpotifyException) as too_many:
        sp.artist_albums(dev_sim.catalog.artists[0].id)     # spotipy's default limit is 20
    assert too_many.value.http_status == 400
    assert sp.artist_albums(dev_sim.catalog.artists[0].id, limit=10)["items"]
    me = sp.me()
    assert me["id"] == OWNER_ID and "product" not in me and "country" not in me

    followed = all_items(sp, sp.current_user_playlists())
    assert [p["id"] for p in followed] == [p.id for p in dev_sim.catalog.owner_playlists()]

    mine = owner_playlist(dev_sim)
    assert sp.playlist(mine.id)["items"]["total"] == len(mine.track_idxs) + len(mine.extras)
    rows = all_items(sp, sp.playlist_items(mine.id))
    assert len(rows) == len(mine.track_idxs) + len(mine.extras)
    kinds = {"local" if r["is_local"] else (r["item"] or {}).get("type") for r in rows}
    assert kinds <= {"track", "episode", "local", None}
    assert [r["item"]["id"] for r in rows[:len(mine.track_idxs)]] == [
        dev_sim.catalog.tracks[i].id for i in mine.track_idxs]
    collaborative = playlist(dev_sim, readable=True, collaborative=True)
    assert collaborative.owner_id != OWNER_ID
    assert sp.playlist_items(collaborative.id)["total"] == len(collaborative.track_idxs)
    with pytest.raises(spotipy.SpotifyException) as legacy:
        sp._get(f"playlists/{mine.id}/tracks")      # the endpoint /items replaced
    assert legacy.value.http_status == 403
