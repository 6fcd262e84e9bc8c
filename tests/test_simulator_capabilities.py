"""One knob per capability a live probe of Spotify checks (issue 15), each over HTTP.

The probe cannot know in advance what Spotify grants a Development Mode app in 2026, so the
simulator can serve every variant: these tests pin what each knob setting answers.
"""

from __future__ import annotations

import pytest
import requests

from runclub_spiders.simulator import Simulator
from tests.conftest import api_session


def get(sim: Simulator, session: requests.Session, path: str, **params) -> requests.Response:
    return session.get(f"{sim.spotify_api_base_url}{path}", params=params, timeout=10)


def total(sim: Simulator, session: requests.Session, q: str, kind: str = "track") -> int:
    response = get(sim, session, "/search", q=q, type=kind, limit=10)
    assert response.status_code == 200, response.text
    return response.json()[f"{kind}s"]["total"]


def ids(sim: Simulator, session: requests.Session, q: str) -> list[str]:
    response = get(sim, session, "/search", q=q, type="track", limit=10)
    return [item["id"] for item in response.json()["tracks"]["items"]]


def test_search_limit_maximum_per_profile_and_knob(simulator_factory):
    for overrides, largest in (({"profile": "development"}, 10),
                               ({"profile": "extended"}, 50),
                               ({"profile": "development", "search_max_limit": 20}, 20)):
        sim = simulator_factory(**overrides)
        s = api_session(sim)
        ok = get(sim, s, "/search", q="year:1990-1999", type="track", limit=largest)
        assert ok.status_code == 200 and len(ok.json()["tracks"]["items"]) == largest
        over = get(sim, s, "/search", q="year:1990-1999", type="track", limit=largest + 1)
        assert over.status_code == 400, overrides
        assert over.json() == {"error": {"status": 400, "message": "Invalid limit"}}


@pytest.mark.parametrize("mode", ["honoured", "ignored", "empty"])
def test_genre_filter_modes_as_a_probe_tells_them_apart(simulator_factory, mode):
    sim = simulator_factory(profile="development", genre_filter=mode)
    s = api_session(sim)
    year = "year:1990-1999"
    plain = total(sim, s, year)
    rock = total(sim, s, f'genre:"rock" {year}')
    unrelated = total(sim, s, f'genre:"k-pop girl group" {year}')
    assert plain > 0
    if mode == "honoured":
        assert 0 < rock < plain and rock != unrelated
    elif mode == "ignored":
        assert rock == unrelated == plain
        assert ids(sim, s, f'genre:"rock" {year}') == ids(sim, s, year)
    else:
        assert rock == unrelated == 0
        assert total(sim, s, 'genre:"rock"', "artist") == 0


def test_year_filter_ignored_matches_every_year(simulator_factory):
    honoured = simulator_factory(profile="development")
    ignored = simulator_factory(profile="development", year_filter="ignored")
    s_on, s_off = api_session(honoured), api_session(ignored)
    everything = len(honoured.catalog.tracks)
    assert 0 < total(honoured, s_on, "year:1985") < everything
    assert total(ignored, s_off, "year:1985") == everything
    assert total(ignored, s_off, "year:1985-1986") == everything
    assert ids(ignored, s_off, 'genre:"rock" year:1985') == ids(honoured, s_on, 'genre:"rock"')


def test_track_isrc_knob(simulator_factory):
    for with_isrc in (True, False):
        sim = simulator_factory(profile="development", track_isrc=with_isrc)
        s = api_session(sim)
        track = sim.catalog.tracks[0]
        one = get(sim, s, f"/tracks/{track.id}").json()
        found = get(sim, s, "/search", q="year:2000", type="track", limit=10).json()
        objects = [one, *found["tracks"]["items"]]
        if with_isrc:
            assert one["external_ids"] == {"isrc": track.isrc}
            assert all(t["external_ids"]["isrc"] for t in objects)
        else:
            assert all("external_ids" not in t for t in objects)
            assert one["id"] == track.id and one["album"]["release_date"]


def test_artist_genres_knob(simulator_factory):
    artist = next(a for a in simulator_factory().catalog.artists if a.genres)
    cases = {("development", "auto"): None, ("extended", "auto"): list(artist.genres),
             ("development", "present"): list(artist.genres),
             ("extended", "absent"): None, ("development", "empty"): []}
    for (profile, mode), expected in cases.items():
        sim = simulator_factory(profile=profile, artist_genres=mode)
        s = api_session(sim)
        one = get(sim, s, f"/artists/{artist.id}").json()
        assert one["id"] == artist.id
        assert one.get("genres") == expected, (profile, mode)
        assert ("genres" in one) is (expected is not None)
        # search's artist objects follow the same rule
        for found in get(sim, s, "/search", q=f'artist:"{artist.name}"', type="artist",
                         limit=5).json()["artists"]["items"]:
            assert ("genres" in found) is (expected is not None)


def test_album_endpoints_knob(simulator_factory):
    for allowed in (True, False):
        sim = simulator_factory(profile="development", album_endpoints=allowed)
        s = api_session(sim)
        album = sim.catalog.albums[0]
        artist = sim.catalog.artists[album.artist_idxs[0]]
        for path in (f"/albums/{album.id}", f"/albums/{album.id}/tracks",
                     f"/artists/{artist.id}/albums"):
            response = get(sim, s, path)
            if allowed:
                assert response.status_code == 200, path
            else:
                assert response.status_code == 403, path
                assert response.json() == {"error": {"status": 403, "message": "Forbidden"}}
        # the rest of the API is untouched
        assert get(sim, s, f"/artists/{artist.id}").status_code == 200


def test_owner_playlist_items_knob(simulator_factory):
    for readable in (True, False):
        sim = simulator_factory(profile="development", owner_playlist_items=readable)
        s = api_session(sim)
        mine = get(sim, s, "/me/playlists", limit=50).json()["items"]
        owned = next(p for p in mine if p["owner"]["id"] == "runclub-owner")
        items = get(sim, s, f"/playlists/{owned['id']}/items", limit=50)
        playlist = get(sim, s, f"/playlists/{owned['id']}").json()
        if readable:
            assert items.status_code == 200 and items.json()["total"] > 0
            assert "items" in playlist
        else:
            assert items.status_code == 403
            assert "items" not in playlist and playlist["id"] == owned["id"]


def test_reccobeats_default_user_agent_block(simulator_factory):
    sim = simulator_factory(recco_block_default_ua=True)
    track = sim.catalog.tracks[0]
    url = f"{sim.reccobeats_base_url}/audio-features"
    blocked = requests.get(url, params={"ids": track.id}, timeout=10)   # python-requests/x
    assert blocked.status_code == 403 and blocked.text == "error code: 1010"
    named = requests.get(url, params={"ids": track.id}, timeout=10,
                         headers={"User-Agent": "runclub-spiders/1.0 (owner@example.org)"})
    assert named.status_code == 200
