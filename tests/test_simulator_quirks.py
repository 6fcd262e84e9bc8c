"""Quirks of real recorded payloads (tests/fixtures/real/) that the simulator reproduces.

Each test fetches from the running simulator and checks one quirk seen in a real body; the
quirks are in shape only, so the catalog and every export stay as they were.
"""

from __future__ import annotations

from runclub_spiders.spotify_objects import parse_track
from tests.conftest import api_session


def owner_rows(sim, types: str = "track,episode") -> dict[str, dict]:
    """The extra rows (local file, null, episode) of an owner playlist, by kind."""
    playlist = next(p for p in sim.catalog.playlists.values() if p.extras)
    total = len(playlist.track_idxs) + len(playlist.extras)
    first = len(playlist.track_idxs)
    response = api_session(sim).get(
        f"{sim.spotify_api_base_url}/playlists/{playlist.id}/items",
        params={"offset": first, "limit": total - first, "additional_types": types},
        timeout=10)
    response.raise_for_status()
    return dict(zip(playlist.extras, response.json()["items"], strict=True))


def test_playlist_rows_carry_primary_color_and_video_thumbnail(dev_sim):
    # GetPlaylistsItemsRequest_Episode.json: "primary_color": null,
    # "video_thumbnail": {"url": null} on every row.
    for row in owner_rows(dev_sim).values():
        assert row["primary_color"] is None
        assert row["video_thumbnail"] == {"url": None}


def test_episode_objects_say_episode_true_track_false(dev_sim):
    # GetPlaylistsItemsRequest_Episode.json: the episode object has "track": false.
    episode = owner_rows(dev_sim)["episode"]["item"]
    assert episode["type"] == "episode"
    assert episode["episode"] is True and episode["track"] is False
    assert parse_track(episode) == (None, "not_a_track")


def test_local_files_have_null_ids_hrefs_uris_and_album_type(dev_sim):
    # playlist-localfiles-response.json: ids, hrefs and URIs null, album_type null.
    local = owner_rows(dev_sim)["local"]["item"]
    assert local["id"] is None and local["href"] is None
    assert local["uri"].startswith("spotify:local:")
    assert (local["album"]["album_type"], local["album"]["id"], local["album"]["href"],
            local["album"]["uri"]) == (None, None, None, None)
    assert [(a["id"], a["href"], a["uri"]) for a in local["artists"]] == [(None, None, None)]
    assert local["external_ids"] == {} and local["disc_number"] == 0
    assert parse_track(local) == (None, "local_file")
    # Without the is_local flag inside the object (as real local files come), still skipped.
    assert parse_track({k: v for k, v in local.items() if k != "is_local"}) == (
        None, "local_file")
