"""Behaviour of the simulator's Web API outside search: playlists, tracks, artists, albums,
and the endpoints the 2024 and 2026 changes took away. Checked against ``sim.catalog``."""

from __future__ import annotations

import pytest
import requests

from runclub_spiders.simulator import Simulator
from runclub_spiders.simulator.catalog import EDITORIAL_PREFIX, OWNER_ID, Playlist
from tests.conftest import api_session

FORBIDDEN = {"error": {"status": 403, "message": "Forbidden"}}
NOT_FOUND = {"error": {"status": 404, "message": "Resource not found"}}
UNKNOWN_ID = "0000000000000000000000"


def get(sim: Simulator, path: str, session: requests.Session | None = None,
        **params) -> requests.Response:
    session = session or api_session(sim)
    return session.get(f"{sim.spotify_api_base_url}{path}", params=params, timeout=10)


def playlists(sim: Simulator, **where) -> list[Playlist]:
    found = [p for p in sim.catalog.playlists.values()
             if all(getattr(p, k) == v for k, v in where.items())]
    assert found, where
    return found


def own(sim: Simulator) -> Playlist:
    return playlists(sim, owner_id=OWNER_ID, extras=())[0]


def with_extras(sim: Simulator) -> Playlist:
    return next(p for p in playlists(sim, owner_id=OWNER_ID) if p.extras)


def collaborative(sim: Simulator) -> Playlist:
    return playlists(sim, collaborative=True)[0]


def others(sim: Simulator) -> Playlist:
    """A followed public list of another user: listed in /me/playlists, items not readable."""
    return next(p for p in playlists(sim, readable=False, followed=True) if not p.editorial)


def editorial(sim: Simulator) -> Playlist:
    return next(p for p in sim.catalog.playlists.values() if p.editorial)


def all_items(sim: Simulator, session: requests.Session, playlist_id: str,
              **params) -> list[dict]:
    rows: list[dict] = []
    offset = 0
    while True:
        response = get(sim, f"/playlists/{playlist_id}/items", session, limit=50,
                       offset=offset, **params)
        assert response.status_code == 200, response.text
        page = response.json()
        rows += page["items"]
        if page["next"] is None:
            assert len(rows) == page["total"]
            return rows
        offset += 50


# ---------------------------------------------------------------- /me/playlists
def test_me_playlists_lists_own_collaborative_and_followed(dev_sim):
    s = api_session(dev_sim)
    response = get(dev_sim, "/me/playlists", s, limit=50)
    assert response.status_code == 200
    page = response.json()
    listed = {p["id"]: p for p in page["items"]}
    want = {p.id for p in dev_sim.catalog.playlists.values() if p.followed}
    assert set(listed) == want
    assert page["total"] == len(want)
    owners = {p["owner"]["id"] for p in listed.values()}
    assert OWNER_ID in owners
    assert len(owners) > 2                                   # followed lists of other users
    assert any(p["collaborative"] for p in listed.values())
    assert all(not p["public"] for p in listed.values() if p["collaborative"])
    assert any(p["owner"]["id"] == "spotify" for p in listed.values())
    # not followed: never listed
    assert not {p.id for p in dev_sim.catalog.playlists.values() if not p.followed} & set(listed)
    for p in listed.values():
        catalog = dev_sim.catalog.playlists[p["id"]]
        assert p["items"]["total"] == len(catalog.track_idxs) + len(catalog.extras)
        assert p["snapshot_id"] == catalog.snapshot_id
    small = get(dev_sim, "/me/playlists", s, limit=3, offset=3).json()
    assert [p["id"] for p in small["items"]] == [p["id"] for p in page["items"][3:6]]
    assert get(dev_sim, "/me/playlists", s, limit=51).status_code == 400


# ---------------------------------------------------------------- playlist items
def test_owned_and_collaborative_items_readable_with_item_and_track_keys(dev_sim):
    s = api_session(dev_sim)
    c = dev_sim.catalog
    for playlist in (own(dev_sim), collaborative(dev_sim)):
        rows = all_items(dev_sim, s, playlist.id)
        assert [r["item"]["id"] for r in rows] == [c.tracks[i].id for i in playlist.track_idxs]
        for row in rows:
            assert row["track"] == row["item"]                 # deprecated alias, same object
            assert row["item"]["type"] == "track"
            assert row["item"]["external_ids"]["isrc"] == c.track_by_id[row["item"]["id"]].isrc
        assert [r["added_at"] for r in rows] == playlist.added_at


def test_other_users_items_403_in_development_readable_in_extended(simulator_factory):
    dev = simulator_factory(profile="development")
    ext = simulator_factory(profile="extended")
    playlist = others(dev)
    response = get(dev, f"/playlists/{playlist.id}/items")
    assert response.status_code == 403
    assert response.json() == FORBIDDEN
    rows = all_items(ext, api_session(ext), playlist.id)
    assert [r["item"]["id"] for r in rows] == [ext.catalog.tracks[i].id
                                                for i in playlist.track_idxs]


def test_editorial_playlists_404_in_development(simulator_factory):
    dev = simulator_factory(profile="development")
    ext = simulator_factory(profile="extended")
    playlist = editorial(dev)
    assert playlist.id.startswith(EDITORIAL_PREFIX[:7])
    for path in (f"/playlists/{playlist.id}", f"/playlists/{playlist.id}/items"):
        response = get(dev, path)
        assert response.status_code == 404, path
        assert response.json() == NOT_FOUND
        assert get(ext, path).status_code == 200, path
    assert get(ext, f"/playlists/{playlist.id}").json()["owner"]["id"] == "spotify"


def test_get_playlist_embeds_items_only_when_readable(simulator_factory):
    dev = simulator_factory(profile="development")
    ext = simulator_factory(profile="extended")
    s = api_session(dev)
    for playlist in (own(dev), collaborative(dev)):
        body = get(dev, f"/playlists/{playlist.id}", s).json()
        assert body["items"]["total"] == len(playlist.track_idxs) + len(playlist.extras)
        first = [r["item"]["id"] for r in body["items"]["items"][:5]]
        assert first == [dev.catalog.tracks[i].id for i in playlist.track_idxs[:5]]
        assert body["snapshot_id"] == playlist.snapshot_id
    foreign = others(dev)
    body = get(dev, f"/playlists/{foreign.id}", s).json()
    assert "items" not in body
    assert body["id"] == foreign.id
    assert body["owner"]["id"] == foreign.owner_id
    assert body["name"] == foreign.name
    assert "items" in get(ext, f"/playlists/{foreign.id}").json()


def test_unknown_and_invalid_playlist_ids(dev_sim):
    s = api_session(dev_sim)
    assert get(dev_sim, f"/playlists/{UNKNOWN_ID}", s).json() == NOT_FOUND
    assert get(dev_sim, f"/playlists/{UNKNOWN_ID}/items", s).status_code == 404
    assert get(dev_sim, "/playlists/not-a-spotify-id", s).status_code == 400


# ---------------------------------------------------------------- playlist extras
def test_playlist_extras_local_null_and_episode_items(dev_sim):
    s = api_session(dev_sim)
    playlist = with_extras(dev_sim)
    assert set(playlist.extras) == {"local", "null", "episode"}
    n = len(playlist.track_idxs)
    rows = all_items(dev_sim, s, playlist.id)
    assert len(rows) == n + len(playlist.extras)
    extras = dict(zip(playlist.extras, rows[n:], strict=True))
    local = extras["local"]
    assert local["is_local"] is True
    assert local["item"]["is_local"] is True
    assert local["item"]["id"] is None
    assert local["item"]["uri"].startswith("spotify:local:")
    assert extras["null"]["item"] is None
    assert extras["null"]["track"] is None
    assert extras["episode"]["item"] is None                 # not asked for
    assert all(r["is_local"] is False and r["item"]["id"] for r in rows[:n])

    with_episodes = all_items(dev_sim, s, playlist.id, additional_types="track,episode")
    episode = dict(zip(playlist.extras, with_episodes[n:], strict=True))["episode"]
    assert episode["item"]["type"] == "episode"
    assert episode["track"] == episode["item"]
    assert dict(zip(playlist.extras, with_episodes[n:], strict=True))["null"]["item"] is None


def test_playlist_extras_off_gives_plain_track_lists(simulator_factory):
    sim = simulator_factory(profile="development", playlist_extras=False)
    playlist_id = with_extras(simulator_factory(profile="development")).id
    playlist = sim.catalog.playlists[playlist_id]
    rows = all_items(sim, api_session(sim), playlist_id, additional_types="track,episode")
    assert len(rows) == len(playlist.track_idxs)
    assert all(r["item"] is not None and r["is_local"] is False for r in rows)
    listed = {p["id"]: p for p in get(sim, "/me/playlists", limit=50).json()["items"]}
    assert listed[playlist_id]["items"]["total"] == len(playlist.track_idxs)


# ---------------------------------------------------------------- edits
def test_snapshot_changes_and_items_grow_after_edit(simulator_factory):
    sim = simulator_factory(fresh_catalog=True, profile="development")
    s = api_session(sim)
    playlist = own(sim)
    before = get(sim, f"/playlists/{playlist.id}", s).json()
    rows_before = all_items(sim, s, playlist.id)
    new_snapshot = sim.edit_playlist(playlist.id, add=5)
    after = get(sim, f"/playlists/{playlist.id}", s).json()
    assert new_snapshot == after["snapshot_id"] != before["snapshot_id"]
    rows_after = all_items(sim, s, playlist.id)
    assert len(rows_after) == len(rows_before) + 5
    assert rows_after[:len(rows_before)] == rows_before
    listed = {p["id"]: p for p in get(sim, "/me/playlists", s, limit=50).json()["items"]}
    assert listed[playlist.id]["snapshot_id"] == new_snapshot
    assert listed[playlist.id]["items"]["total"] == len(rows_after)


def test_admin_edit_route_edits_too(simulator_factory):
    sim = simulator_factory(fresh_catalog=True, profile="development")
    s = api_session(sim)
    playlist = collaborative(sim)
    before = get(sim, f"/playlists/{playlist.id}", s).json()
    response = requests.post(f"{sim.origin}/_sim/playlists/{playlist.id}/edit",
                             params={"add": 3}, timeout=10)
    assert response.status_code == 200
    assert response.json()["id"] == playlist.id
    after = get(sim, f"/playlists/{playlist.id}", s).json()
    assert after["snapshot_id"] == response.json()["snapshot_id"] != before["snapshot_id"]
    assert after["items"]["total"] == before["items"]["total"] + 3
    missing = requests.post(f"{sim.origin}/_sim/playlists/{UNKNOWN_ID}/edit", timeout=10)
    assert missing.status_code == 404


# ---------------------------------------------------------------- tracks
def test_track_with_market_reports_playability(dev_sim):
    s = api_session(dev_sim)
    c = dev_sim.catalog
    blocked = next(t for t in c.tracks if "US" not in t.markets)
    playable = next(t for t in c.tracks if "US" in t.markets)
    body = get(dev_sim, f"/tracks/{blocked.id}", s, market="US").json()
    assert body["id"] == blocked.id
    assert body["is_playable"] is False
    assert body["restrictions"] == {"reason": "market"}
    body = get(dev_sim, f"/tracks/{playable.id}", s, market="US").json()
    assert body["is_playable"] is True
    assert "restrictions" not in body
    plain = get(dev_sim, f"/tracks/{blocked.id}", s).json()
    assert "is_playable" not in plain
    assert "restrictions" not in plain
    assert plain["external_ids"] == {"isrc": blocked.isrc}
    assert plain["name"] == blocked.name
    assert plain["album"]["id"] == c.albums[blocked.album_idx].id
    assert get(dev_sim, f"/tracks/{playable.id}", s, market="usa").status_code == 400


def test_track_invalid_id_400_unknown_404(dev_sim):
    s = api_session(dev_sim)
    for bad in ("abc", "x" * 23, "has-dash-000000000000000"[:22]):
        response = get(dev_sim, f"/tracks/{bad}", s)
        assert response.status_code == 400, bad
        assert response.json()["error"]["status"] == 400
    assert get(dev_sim, f"/tracks/{UNKNOWN_ID}", s).json() == NOT_FOUND
    assert get(dev_sim, f"/artists/{UNKNOWN_ID}", s).json() == NOT_FOUND
    assert get(dev_sim, f"/albums/{UNKNOWN_ID}", s).json() == NOT_FOUND


@pytest.mark.parametrize(("path", "key", "maximum"),
                         [("/tracks", "tracks", 50), ("/artists", "artists", 50),
                          ("/albums", "albums", 20)])
def test_batch_endpoints(simulator_factory, path, key, maximum):
    dev = simulator_factory(profile="development")
    ext = simulator_factory(profile="extended")
    table = {"tracks": ext.catalog.tracks, "artists": ext.catalog.artists,
             "albums": ext.catalog.albums}[key]
    ids = [table[0].id, UNKNOWN_ID, table[1].id]
    response = get(dev, path, ids=",".join(ids))
    assert response.status_code == 403
    assert response.json() == FORBIDDEN

    response = get(ext, path, ids=",".join(ids))
    assert response.status_code == 200
    rows = response.json()[key]
    assert [r["id"] if r else None for r in rows] == [ids[0], None, ids[2]]

    many = [x.id for x in table[:maximum + 1]]
    assert get(ext, path, ids=",".join(many[:maximum])).status_code == 200
    too_many = get(ext, path, ids=",".join(many))
    assert too_many.status_code == 400
    assert too_many.json()["error"]["message"] == "Too many ids requested"


def test_artist_and_album_lookups(dev_sim):
    s = api_session(dev_sim)
    c = dev_sim.catalog
    album = max(c.albums, key=lambda a: (len(a.track_idxs), a.id))
    body = get(dev_sim, f"/albums/{album.id}", s).json()
    assert body["id"] == album.id
    assert body["release_date"] == album.release_date
    assert body["release_date_precision"] == album.precision
    assert body["total_tracks"] == len(album.track_idxs)
    tracks = body["tracks"]
    assert tracks["total"] == len(album.track_idxs)
    assert [t["id"] for t in tracks["items"]] == [c.tracks[i].id for i in album.track_idxs]
    assert all("album" not in t and "external_ids" not in t for t in tracks["items"])
    paged = get(dev_sim, f"/albums/{album.id}/tracks", s, limit=2, offset=1).json()
    assert [t["id"] for t in paged["items"]] == [c.tracks[i].id for i in album.track_idxs[1:3]]

    artist = c.artists[c.tracks[album.track_idxs[0]].artist_idxs[0]]
    body = get(dev_sim, f"/artists/{artist.id}", s).json()
    assert (body["id"], body["name"]) == (artist.id, artist.name)
    albums = get(dev_sim, f"/artists/{artist.id}/albums", s, limit=10,
                 include_groups="album,single,compilation").json()
    want = {a.id for a in c.albums if artist.idx in a.artist_idxs}
    assert albums["total"] == len(want)
    assert {a["id"] for a in albums["items"]} <= want


# ---------------------------------------------------------------- removed endpoints
REMOVED_EVERYWHERE = ["/recommendations", "/audio-features", f"/audio-features/{UNKNOWN_ID}",
                      f"/audio-analysis/{UNKNOWN_ID}", f"/artists/{UNKNOWN_ID}/related-artists",
                      "/browse/featured-playlists"]


@pytest.mark.parametrize("path", REMOVED_EVERYWHERE)
def test_endpoints_removed_in_2024_are_403_in_both_profiles(simulator_factory, path):
    for profile in ("development", "extended"):
        sim = simulator_factory(profile=profile)
        response = get(sim, path)
        assert response.status_code == 403, (profile, path)
        assert response.json() == FORBIDDEN


def test_endpoints_removed_in_2026_are_403_in_development(dev_sim):
    s = api_session(dev_sim)
    c = dev_sim.catalog
    own_list = own(dev_sim)
    for path in (f"/playlists/{own_list.id}/tracks", f"/artists/{c.artists[0].id}/top-tracks",
                 "/users/runnerdave", "/users/runnerdave/playlists", "/browse/new-releases",
                 "/browse/categories", "/markets"):
        response = get(dev_sim, path, s)
        assert response.status_code == 403, path
        assert response.json() == FORBIDDEN


def test_legacy_playlist_tracks_route_still_works_in_extended(ext_sim):
    playlist = own(ext_sim)
    body = get(ext_sim, f"/playlists/{playlist.id}/tracks", limit=5).json()
    assert [r["track"]["id"] for r in body["items"]] == [
        ext_sim.catalog.tracks[i].id for i in playlist.track_idxs[:5]]
    assert all("item" not in r for r in body["items"])


def test_unknown_path_is_404(dev_sim):
    s = api_session(dev_sim)
    for path in ("/nothing-here", "/tracks/x/y/z", "/me/nonsense"):
        response = get(dev_sim, path, s)
        assert response.status_code == 404, path
        assert response.json()["error"]["status"] == 404


# ---------------------------------------------------------------- artist albums: include_groups
def discography(sim: Simulator, artist) -> dict[str, set[str]]:
    """The albums of ``artist`` by group, from the catalog: album artist -> its album_type;
    a track on an album it is not an album artist of -> appears_on."""
    c = sim.catalog
    groups: dict[str, set[str]] = {"album": set(), "single": set(), "compilation": set(),
                                   "appears_on": set()}
    for album in c.albums:
        if artist.idx in album.artist_idxs:
            groups[album.album_type].add(album.id)
        elif any(artist.idx in c.tracks[t].artist_idxs for t in album.track_idxs):
            groups["appears_on"].add(album.id)
    return groups


def artist_with_every_group(sim: Simulator):
    for artist in sim.catalog.artists:
        groups = discography(sim, artist)
        various = any(not sim.catalog.album_by_id[i].artist_idxs
                      for i in groups["appears_on"])
        if various and groups["compilation"] and groups["album"] | groups["single"]:
            return artist, groups
    raise AssertionError("no artist with main albums, compilations and appears_on")


def all_pages(sim: Simulator, session: requests.Session, path: str, limit: int,
              **params) -> tuple[list[dict], list[dict]]:
    """Every item of a paged endpoint by following ``next``; also the pages."""
    pages = [session.get(f"{sim.spotify_api_base_url}{path}",
                         params={**params, "limit": limit}, timeout=10).json()]
    while pages[-1]["next"]:
        pages.append(session.get(pages[-1]["next"], timeout=10).json())
    return [item for page in pages for item in page["items"]], pages


def test_artist_albums_include_groups_filters(simulator_factory):
    sim = simulator_factory(profile="extended")
    s = api_session(sim)
    artist, groups = artist_with_every_group(sim)
    path = f"/artists/{artist.id}/albums"
    every = set().union(*groups.values())

    items, _ = all_pages(sim, s, path, 50)
    assert {a["id"] for a in items} == every
    assert len(items) == len(every)
    # album_group (extended) says which group each album is listed under.
    assert {(a["album_group"], a["id"]) for a in items} == \
        {(g, i) for g, ids in groups.items() for i in ids}
    # Listed group by group: album, single, compilation, appears_on.
    order = ["album", "single", "compilation", "appears_on"]
    ranks = [order.index(a["album_group"]) for a in items]
    assert ranks == sorted(ranks)

    appears, _ = all_pages(sim, s, path, 50, include_groups="appears_on")
    assert {a["id"] for a in appears} == groups["appears_on"]
    for album in appears:                 # the artist is never one of its album artists
        assert artist.id not in {x["id"] for x in album["artists"]}
    various = [a for a in appears if not sim.catalog.album_by_id[a["id"]].artist_idxs]
    assert various                        # compilations credited to Various Artists
    assert all([x["name"] for x in a["artists"]] == ["Various Artists"] for a in various)

    main, _ = all_pages(sim, s, path, 50, include_groups="album,single")
    assert {a["id"] for a in main} == groups["album"] | groups["single"]
    assert {a["album_group"] for a in main} <= {"album", "single"}
    compilations, _ = all_pages(sim, s, path, 50, include_groups="compilation")
    assert {a["id"] for a in compilations} == groups["compilation"]


def test_artist_albums_include_groups_pages_carry_the_filter(dev_sim):
    s = api_session(dev_sim)
    artist = max(dev_sim.catalog.artists,
                 key=lambda a: (len(discography(dev_sim, a)["appears_on"]), a.id))
    groups = discography(dev_sim, artist)
    assert len(groups["appears_on"]) > 2
    items, pages = all_pages(dev_sim, s, f"/artists/{artist.id}/albums", 2,
                             include_groups="appears_on")
    assert len(pages) > 1
    assert all("include_groups=appears_on" in p["next"] for p in pages[:-1])
    assert all(p["total"] == len(groups["appears_on"]) for p in pages)
    assert [a["id"] for a in items if a["id"] in groups["appears_on"]] == \
        [a["id"] for a in items]
    assert len(items) == len(groups["appears_on"])
    assert all("album_group" not in a for a in items)        # development: removed


@pytest.mark.parametrize("value", ["ep", "album, single", "album,,single", "Album"])
def test_artist_albums_invalid_include_groups_is_400(dev_sim, value):
    artist = dev_sim.catalog.artists[0]
    response = get(dev_sim, f"/artists/{artist.id}/albums", include_groups=value)
    assert response.status_code == 400
    assert response.json() == {"error": {"status": 400, "message": "Invalid include_groups"}}


@pytest.mark.parametrize(("profile", "default", "maximum"),
                         [("development", 5, 10), ("extended", 20, 50)])
def test_artist_albums_limits(simulator_factory, profile, default, maximum):
    sim = simulator_factory(profile=profile)
    s = api_session(sim)
    artist = max(sim.catalog.artists,
                 key=lambda a: (sum(map(len, discography(sim, a).values())), a.id))
    total = sum(map(len, discography(sim, artist).values()))
    assert total > 10
    path = f"/artists/{artist.id}/albums"
    plain = get(sim, path, s).json()
    assert (plain["limit"], len(plain["items"])) == (default, min(default, total))
    top = get(sim, path, s, limit=maximum)
    assert top.status_code == 200
    assert len(top.json()["items"]) == min(maximum, total)
    over = get(sim, path, s, limit=maximum + 1)
    assert over.status_code == 400
    assert over.json() == {"error": {"status": 400, "message": "Invalid limit"}}


@pytest.mark.parametrize("profile", ["development", "extended"])
def test_album_tracks_limit_50_and_album_pages_its_tracks(simulator_factory, profile):
    sim = simulator_factory(profile=profile, fresh_catalog=True)
    c = sim.catalog
    album = c.albums[0]
    # A 60-track album (no generated album is that long): the extra tracks are others'.
    album.track_idxs = list(album.track_idxs) + \
        [t.idx for t in c.tracks if t.idx not in album.track_idxs][:60 - len(album.track_idxs)]
    want = [c.tracks[i].id for i in album.track_idxs]
    s = api_session(sim)
    assert get(sim, f"/albums/{album.id}/tracks", s, limit=50).status_code == 200
    over = get(sim, f"/albums/{album.id}/tracks", s, limit=51)
    assert over.status_code == 400
    assert over.json()["error"]["message"] == "Invalid limit"

    body = get(sim, f"/albums/{album.id}", s, market="US").json()
    tracks = body["tracks"]
    assert [t["id"] for t in tracks["items"]] == want[:50]
    assert tracks["total"] == 60
    rest = s.get(tracks["next"], timeout=10).json()
    assert [t["id"] for t in rest["items"]] == want[50:]
    assert rest["next"] is None
    # Simplified tracks say whether they play in the market asked for, and only then.
    for row in tracks["items"] + rest["items"]:
        assert row["is_playable"] is ("US" in c.track_by_id[row["id"]].markets)
    assert any(not row["is_playable"] for row in tracks["items"] + rest["items"])
    bare = get(sim, f"/albums/{album.id}/tracks", s, limit=50).json()
    assert all("is_playable" not in row for row in bare["items"])
    short = get(sim, f"/albums/{c.albums[1].id}", s).json()["tracks"]
    assert short["next"] is None
