"""The synthetic catalog: deterministic, and as varied as the crawler's real inputs."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from runclub_spiders.simulator.catalog import EDITORIAL_PREFIX, Catalog, normalize_genre
from runclub_spiders.simulator.vocabulary import UMBRELLA_GENRES
from tests.conftest import cached_catalog

# Every umbrella and subgenre the brief's "Sourcing Strategy" names, as the app normalises them.
BRIEF_GENRES = [
    "pop", "rock", "indie", "hip hop", "r and b", "electronic", "latin", "metal", "country",
    "afrobeat", "k pop", "bollywood", "reggaeton", "edm", "house", "techno",
    "dance pop", "electropop", "hyperpop", "alternative rock", "indie rock", "pop punk", "emo",
    "punk rock", "big room", "trance", "drum and bass", "dubstep", "electro house", "trap",
    "boom bap", "grime", "drill", "contemporary r and b", "dembow", "latin pop",
    "urbano latino", "amapiano", "bhangra", "j pop", "metalcore", "hard rock",
    "hardcore punk", "nu disco", "funk", "disco", "outlaw country", "afrobeats",
]


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return cached_catalog(3000, 1)


def test_same_seed_same_bytes_other_seed_other_catalog():
    first, second = Catalog(1500, seed=7), Catalog(1500, seed=7)
    assert b"".join(first.canonical_lines()) == b"".join(second.canonical_lines())
    assert first.fingerprint() == second.fingerprint()
    assert Catalog(1500, seed=8).fingerprint() != first.fingerprint()
    assert Catalog(1600, seed=7).fingerprint() != first.fingerprint()


def test_size_is_honoured(catalog):
    assert 3000 <= len(catalog.tracks) < 3000 + 60   # the last album may overshoot a little


def test_ids_are_unique_base62(catalog):
    ids = [t.id for t in catalog.tracks] + [a.id for a in catalog.artists]
    ids += [a.id for a in catalog.albums] + list(catalog.playlists)
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"[0-9A-Za-z]{22}", i) for i in ids)


def test_isrcs_are_plausible(catalog):
    assert all(re.fullmatch(r"[A-Z]{2}[A-Z0-9]{3}\d{7}", t.isrc) for t in catalog.tracks)


def test_genre_vocabulary_covers_the_brief(catalog):
    served = {normalize_genre(g) for a in catalog.artists for g in a.genres}
    vocabulary = {normalize_genre(g) for genres in UMBRELLA_GENRES.values() for g in genres}
    assert set(BRIEF_GENRES) <= vocabulary
    # a small catalog already carries most of them, a default-size one all the umbrellas
    assert len(served & set(BRIEF_GENRES)) > len(BRIEF_GENRES) * 0.6
    assert any(not a.genres for a in catalog.artists)
    assert any("-" in g or "&" in g for a in catalog.artists for g in a.genres)


def test_albums_releases_and_reissues(catalog):
    assert {a.album_type for a in catalog.albums} == {"album", "single", "compilation"}
    assert {a.precision for a in catalog.albums} == {"year", "month", "day"}
    years = [a.year for a in catalog.albums]
    assert min(years) < 1970 and max(years) >= 2020
    for album in catalog.albums:
        pattern = {"year": r"\d{4}", "month": r"\d{4}-\d{2}", "day": r"\d{4}-\d{2}-\d{2}"}
        assert re.fullmatch(pattern[album.precision], album.release_date)
        assert album.release_date.startswith(str(album.year))
    kinds = Counter(a.kind for a in catalog.albums)
    assert kinds["remaster"] + kinds["deluxe"] + kinds["anniversary"] > 0
    assert kinds["greatest_hits"] > 0 and kinds["various"] > 0
    # A reissue or compilation carries an existing recording's ISRC under a new track ID and a
    # later year; ground truth keeps the first release year.
    by_isrc: dict[str, list] = {}
    for track in catalog.tracks:
        by_isrc.setdefault(track.isrc, []).append(track)
    shared = [group for group in by_isrc.values() if len(group) > 1]
    assert len(shared) > 50
    for group in shared:
        years = sorted(catalog.albums[t.album_idx].year for t in group)
        assert len({t.id for t in group}) == len(group)
        assert all(t.original_year == years[0] for t in group)
        assert years[-1] > years[0] or len(set(years)) == 1


def test_tracks_vary_like_real_ones(catalog):
    durations = [t.duration_ms for t in catalog.tracks]
    assert min(durations) < 120_000 and max(durations) > 420_000
    assert 0.6 < sum(120_000 <= d <= 300_000 for d in durations) / len(durations) < 0.9
    assert 0 < sum(t.explicit for t in catalog.tracks) < len(catalog.tracks) / 2
    unplayable = sum("US" not in t.markets for t in catalog.tracks) / len(catalog.tracks)
    assert 0.02 < unplayable < 0.15
    known = sum(t.recco_known for t in catalog.tracks) / len(catalog.tracks)
    assert 0.55 < known < 0.65


def test_playlists_of_every_kind(catalog):
    playlists = list(catalog.playlists.values())
    own = [p for p in playlists if p.owner_id == "runclub-owner"]
    collaborative = [p for p in playlists if p.collaborative and p.owner_id != "runclub-owner"]
    editorial = [p for p in playlists if p.editorial]
    others = [p for p in playlists if not p.readable and not p.editorial]
    assert own and collaborative and editorial and others
    assert all(p.id.startswith(EDITORIAL_PREFIX) for p in editorial)
    assert all(p.readable for p in own + collaborative)
    assert not any(p.id.startswith("37i9dQZ") for p in own + collaborative + others)


def test_editing_a_playlist_changes_its_snapshot():
    catalog = Catalog(800, seed=3)
    playlist = next(iter(catalog.playlists.values()))
    before, count = playlist.snapshot_id, len(playlist.track_idxs)
    catalog.edit_playlist(playlist.id, add=4)
    assert playlist.snapshot_id != before
    assert len(playlist.track_idxs) == count + 4
    # and the same edit on the same seed is reproducible
    again = Catalog(800, seed=3)
    again.edit_playlist(playlist.id, add=4)
    assert again.playlists[playlist.id].track_idxs == playlist.track_idxs


def test_ground_truth_is_complete(catalog):
    track = catalog.tracks[0]
    truth = catalog.truth(track)
    assert set(truth) == {"original_year", "decade", "umbrellas", "recco_known", "playable"}
    assert truth["umbrellas"] and truth["original_year"] <= catalog.albums[track.album_idx].year


def test_features_are_stable_and_in_range(catalog):
    track = catalog.tracks[5]
    features = catalog.features(track)
    assert features == catalog.features(track)
    assert set(features) == {"acousticness", "danceability", "energy", "instrumentalness", "key",
                             "liveness", "loudness", "mode", "speechiness", "tempo", "valence"}
    assert -1 <= features["key"] <= 11 and features["mode"] in (0, 1)
    assert -60 <= features["loudness"] <= 2 and 0 <= features["tempo"] <= 250
