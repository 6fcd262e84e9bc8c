"""Behaviour of the simulator's ``GET /search``, checked against the catalog it serves.

Every filter test recomputes the expected hits from ``sim.catalog`` on its own (own
tokenizer, own predicates) and compares them with what the HTTP API answered, so a search
index that drifts from the catalog fails here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from runclub_spiders.simulator import Simulator
from runclub_spiders.simulator.catalog import Catalog, Track
from tests.conftest import api_session


# ---------------------------------------------------------------- independent ground truth
def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", text.lower().replace("&", " and ")))


def artist_words(c: Catalog, t: Track) -> set[str]:
    return set().union(*(words(c.artists[i].name) for i in t.artist_idxs))


def genre_words(c: Catalog, t: Track) -> set[str]:
    return {w for i in t.artist_idxs for g in c.artists[i].genres for w in words(g)}


def album_year(c: Catalog, t: Track) -> int:
    return c.albums[t.album_idx].year


def text_words(c: Catalog, t: Track) -> set[str]:
    year = album_year(c, t)
    decade = year // 10 * 10
    return (words(t.name) | artist_words(c, t) | words(c.albums[t.album_idx].name)
            | genre_words(c, t) | {str(year), f"{decade}s", f"{decade % 100:02d}s"})


def expected(c: Catalog, keep: Callable[[Track], bool], market: str | None = None) -> list[str]:
    """Matching track IDs in the hidden popularity order (popularity desc, then ID)."""
    hits = [t for t in c.tracks if keep(t) and (market is None or market in t.markets)]
    return [t.id for t in sorted(hits, key=lambda t: (-t.popularity, t.id))]


# ---------------------------------------------------------------- HTTP helpers
def search(session: requests.Session, sim: Simulator, **params) -> requests.Response:
    return session.get(f"{sim.spotify_api_base_url}/search", params=params, timeout=10)


def all_track_ids(session: requests.Session, sim: Simulator, q: str, **params) -> list[str]:
    """Every hit of a track search, walking pages by explicit offsets (extended: limit 50)."""
    ids: list[str] = []
    offset = 0
    while True:
        response = search(session, sim, q=q, type="track", limit=50, offset=offset, **params)
        assert response.status_code == 200, response.text
        page = response.json()["tracks"]
        ids += [item["id"] for item in page["items"]]
        offset += 50
        if offset >= page["total"] or offset >= 1000:
            assert len(ids) == min(page["total"], 1000)
            return ids


@pytest.fixture
def ext(ext_sim) -> tuple[Simulator, requests.Session]:
    return ext_sim, api_session(ext_sim)


@pytest.fixture
def dev(dev_sim) -> tuple[Simulator, requests.Session]:
    return dev_sim, api_session(dev_sim)


def most_common_artist(c: Catalog) -> str:
    counts: dict[int, int] = {}
    for t in c.tracks:
        counts[t.artist_idxs[0]] = counts.get(t.artist_idxs[0], 0) + 1
    return c.artists[max(counts, key=lambda i: (counts[i], -i))].name


# ---------------------------------------------------------------- free text
def test_free_text_known_words_must_all_match(ext):
    sim, s = ext
    c = sim.catalog
    want = expected(c, lambda t: {"fire", "night"} <= text_words(c, t))
    assert 0 < len(want) < 1000
    assert all_track_ids(s, sim, "Fire NIGHT") == want
    # each word alone finds strictly more: the two words are ANDed, not ORed
    assert len(all_track_ids(s, sim, "fire")) > len(want)
    assert len(all_track_ids(s, sim, "night")) > len(want)


def test_free_text_matches_artist_album_genre_and_era_words(ext):
    sim, s = ext
    c = sim.catalog
    t = c.tracks[c.tracks_by_popularity_idx[0]]
    artist_word = sorted(words(c.artists[t.artist_idxs[0]].name) - {"the"})[0]
    decade = f"{album_year(c, t) // 10 * 10 % 100:02d}s"
    ids = all_track_ids(s, sim, f"{artist_word} {decade}")
    assert t.id in ids
    assert ids == expected(c, lambda x: {artist_word, decade} <= text_words(c, x))
    genre = next(g for a in c.artists for g in a.genres if " " not in g and len(g) > 4)
    genre_hits = all_track_ids(s, sim, genre)
    assert genre_hits
    assert genre_hits == expected(c, lambda x: genre in text_words(c, x))
    assert any(genre in genre_words(c, c.track_by_id[i]) for i in genre_hits)


def test_unknown_words_are_ignored_and_all_unknown_finds_nothing(dev):
    sim, s = dev
    plain = search(s, sim, q="fire", type="track", limit=10).json()["tracks"]
    noisy = search(s, sim, q="fire zzqx jogtastic", type="track", limit=10).json()["tracks"]
    assert plain["total"] > 0
    assert noisy["total"] == plain["total"]
    assert [i["id"] for i in noisy["items"]] == [i["id"] for i in plain["items"]]
    nothing = search(s, sim, q="zzqx jogtastic", type="track")
    assert nothing.status_code == 200
    body = nothing.json()["tracks"]
    assert body["total"] == 0
    assert body["items"] == []
    assert body["next"] is None


# ---------------------------------------------------------------- field filters
def test_artist_filter(ext):
    sim, s = ext
    c = sim.catalog
    name = most_common_artist(c)
    want_words = words(name)
    ids = all_track_ids(s, sim, f'artist:"{name}"')
    assert ids == expected(c, lambda t: want_words <= artist_words(c, t))
    assert len(ids) >= 5
    for track_id in ids:
        assert want_words <= artist_words(c, c.track_by_id[track_id])


def test_album_and_track_filters(ext):
    sim, s = ext
    c = sim.catalog
    album = max(c.albums, key=lambda a: (len(a.track_idxs), a.id))
    album_ids = all_track_ids(s, sim, f'album:"{album.name}"')
    assert set(album_ids) >= {c.tracks[i].id for i in album.track_idxs}
    album_words = words(album.name)
    assert album_ids == expected(c, lambda t: album_words <= words(c.albums[t.album_idx].name))

    track_ids = all_track_ids(s, sim, "track:velocity")
    assert track_ids
    assert track_ids == expected(c, lambda t: "velocity" in words(t.name))
    # a word that is in artist/album names but not in the track's own name does not count
    for track_id in track_ids:
        assert "velocity" in words(c.track_by_id[track_id].name)


def test_year_filter_single_and_range(ext):
    sim, s = ext
    c = sim.catalog
    single = all_track_ids(s, sim, "year:1995")
    assert single
    assert single == expected(c, lambda t: album_year(c, t) == 1995)
    ranged = all_track_ids(s, sim, "year:1990-1994")
    assert ranged == expected(c, lambda t: 1990 <= album_year(c, t) <= 1994)
    assert len(ranged) > len(single)
    # combined with free text, the filter still holds for every hit
    combined = all_track_ids(s, sim, "fire year:1980-1989")
    assert combined
    assert combined == expected(
        c, lambda t: "fire" in text_words(c, t) and 1980 <= album_year(c, t) <= 1989)
    bad = search(s, sim, q="year:nineties", type="track").json()["tracks"]
    assert bad["total"] == 0


def test_genre_filter_with_quoted_multiword_genre(ext):
    sim, s = ext
    c = sim.catalog
    ids = all_track_ids(s, sim, 'genre:"hip hop"')
    assert ids
    assert ids == expected(c, lambda t: {"hip", "hop"} <= genre_words(c, t))
    exact = {t.id for t in c.tracks if "hip hop" in c.artists[t.artist_idxs[0]].genres}
    assert exact
    assert exact <= set(ids)
    # both words of the quoted value belong to the filter: a pairing no genre has finds nothing
    assert search(s, sim, q='genre:"hip metalcore"', type="track").json()["tracks"]["total"] == 0


def test_isrc_filter_returns_every_release_of_the_recording(ext):
    sim, s = ext
    c = sim.catalog
    by_isrc: dict[str, list[Track]] = {}
    for t in c.tracks:
        by_isrc.setdefault(t.isrc, []).append(t)
    isrc, copies = max(by_isrc.items(), key=lambda kv: (len(kv[1]), kv[0]))
    assert len(copies) > 1                      # reissues share the ISRC
    ids = all_track_ids(s, sim, f"isrc:{isrc}")
    assert set(ids) == {t.id for t in copies}
    body = search(s, sim, q=f"isrc:{isrc}", type="track", limit=50).json()["tracks"]
    assert {item["external_ids"]["isrc"] for item in body["items"]} == {isrc}
    assert search(s, sim, q="isrc:ZZZ000000000", type="track").json()["tracks"]["total"] == 0


def test_genre_filter_empty_makes_genre_queries_empty(simulator_factory):
    sim = simulator_factory(profile="development", genre_filter="empty")
    s = api_session(sim)
    assert search(s, sim, q='genre:"hip hop"', type="track").json()["tracks"]["total"] == 0
    assert search(s, sim, q="fire genre:rock", type="track").json()["tracks"]["total"] == 0
    assert search(s, sim, q="genre:rock", type="artist").json()["artists"]["total"] == 0
    # other filters and free text are unaffected
    assert search(s, sim, q="year:1995", type="track").json()["tracks"]["total"] > 0
    on = simulator_factory(profile="development")
    assert search(api_session(on), on, q='genre:"hip hop"',
                  type="track").json()["tracks"]["total"] > 0


def test_genre_filter_ignored_answers_as_if_the_filter_were_absent(simulator_factory):
    sim = simulator_factory(profile="extended", genre_filter="ignored")
    s = api_session(sim)
    c = sim.catalog
    # genre:"X" year:A-B is exactly year:A-B, page by page and in the same order
    year_only = all_track_ids(s, sim, "year:1985-1987")
    assert year_only == expected(c, lambda t: 1985 <= album_year(c, t) <= 1987)
    assert all_track_ids(s, sim, 'genre:"hip hop" year:1985-1987') == year_only
    assert all_track_ids(s, sim, 'genre:"no such genre" year:1985-1987') == year_only
    # alone, it matches every track and every artist
    assert search(s, sim, q="genre:rock", type="track").json()["tracks"]["total"] == len(c.tracks)
    artists = search(s, sim, q="genre:rock", type="artist", limit=50).json()["artists"]
    assert artists["total"] == len(c.artists)
    top = sorted(c.artists, key=lambda a: (-a.popularity, a.id))[:50]
    assert [a["id"] for a in artists["items"]] == [a.id for a in top]
    with pytest.raises(ValueError, match="genre_filter must be one of honoured, ignored, empty"):
        simulator_factory(genre_filter=False)


# ---------------------------------------------------------------- market and ranking
def test_market_excludes_unplayable_tracks_and_adds_is_playable(ext):
    sim, s = ext
    c = sim.catalog
    q = "year:1970-2026"                       # nearly everything
    without = search(s, sim, q=q, type="track", limit=50).json()["tracks"]
    with_us = search(s, sim, q=q, type="track", limit=50, market="US").json()["tracks"]
    keep = lambda t: 1970 <= album_year(c, t) <= 2026  # noqa: E731
    assert without["total"] == len(expected(c, keep))
    assert with_us["total"] == len(expected(c, keep, market="US"))
    assert with_us["total"] < without["total"]
    assert all("is_playable" not in item for item in without["items"])
    assert all(item["is_playable"] is True for item in with_us["items"])
    unplayable = {t.id for t in c.tracks if "US" not in t.markets}
    assert unplayable
    assert not unplayable & set(all_track_ids(s, sim, q, market="US"))
    assert "market=US" in with_us["href"]
    from_token = search(s, sim, q=q, type="track", limit=50, market="from_token").json()
    assert from_token["tracks"]["total"] == with_us["total"]      # the owner's country: US
    assert search(s, sim, q=q, type="track", market="usa").status_code == 400


def test_results_ranked_by_hidden_popularity_across_pages(dev):
    sim, s = dev
    c = sim.catalog
    pops: list[int] = []
    ids: list[str] = []
    for offset in range(0, 60, 10):
        page = search(s, sim, q="run", type="track", limit=10, offset=offset).json()["tracks"]
        assert len(page["items"]) == 10
        assert all("popularity" not in item for item in page["items"])   # hidden in dev
        ids += [item["id"] for item in page["items"]]
        pops += [c.track_by_id[item["id"]].popularity for item in page["items"]]
    assert len(set(ids)) == 60                                 # pages do not overlap
    assert pops == sorted(pops, reverse=True)
    assert pops[0] > pops[-1]
    assert ids == expected(c, lambda t: "run" in text_words(c, t))[:60]


# ---------------------------------------------------------------- parameter validation
@pytest.mark.parametrize(("profile", "ok", "bad", "default"),
                         [("development", (0, 1, 10), (11, 50, -1), 5),
                          ("extended", (0, 11, 50), (51, -1), 20)])
def test_limit_range_per_profile(simulator_factory, profile, ok, bad, default):
    sim = simulator_factory(profile=profile)
    s = api_session(sim)
    for limit in ok:
        response = search(s, sim, q="fire", type="track", limit=limit)
        assert response.status_code == 200, (limit, response.text)
        page = response.json()["tracks"]
        assert page["limit"] == limit
        assert len(page["items"]) == limit
    for limit in bad:
        response = search(s, sim, q="fire", type="track", limit=limit)
        assert response.status_code == 400, limit
        assert response.json() == {"error": {"status": 400, "message": "Invalid limit"}}
    assert search(s, sim, q="fire", type="track").json()["tracks"]["limit"] == default


@pytest.mark.parametrize("limit", ["ten", "5.0", ""])
def test_non_integer_limit_is_400(dev, limit):
    sim, s = dev
    response = search(s, sim, q="fire", type="track", limit=limit)
    assert response.status_code == 400
    assert response.json()["error"] == {"status": 400, "message": "Invalid limit"}


def test_offset_plus_limit_over_1000_is_400(dev):
    sim, s = dev
    assert search(s, sim, q="run", type="track", limit=10, offset=990).status_code == 200
    for offset, limit in ((991, 10), (995, 10), (1000, 1), (1001, 0)):
        response = search(s, sim, q="run", type="track", limit=limit, offset=offset)
        assert response.status_code == 400, (offset, limit)
        assert response.json()["error"]["status"] == 400
    assert search(s, sim, q="run", type="track", offset=-1).status_code == 400


@pytest.mark.parametrize("params", [{"type": "track"}, {"q": "", "type": "track"},
                                    {"q": "fire"}, {"q": "fire", "type": ""},
                                    {"q": "fire", "type": "song"},
                                    {"q": "fire", "type": "track,tracks"}])
def test_missing_query_or_bad_type_is_400(dev, params):
    sim, s = dev
    response = s.get(f"{sim.spotify_api_base_url}/search", params=params, timeout=10)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["status"] == 400
    assert isinstance(error["message"], str)
    assert error["message"]


# ---------------------------------------------------------------- paging
def test_total_and_absolute_page_links(dev):
    sim, s = dev
    c = sim.catalog
    first = search(s, sim, q="fire", type="track", limit=10).json()["tracks"]
    assert first["total"] == len(expected(c, lambda t: "fire" in text_words(c, t)))
    assert first["offset"] == 0
    assert first["previous"] is None
    for link in (first["href"], first["next"]):
        parts = urlsplit(link)
        assert link.startswith(sim.spotify_api_base_url + "/search?")
        query = parse_qs(parts.query)
        assert query["type"] == ["track"]
        assert query["limit"] == ["10"]
    assert parse_qs(urlsplit(first["next"]).query)["offset"] == ["10"]
    second = search(s, sim, q="fire", type="track", limit=10, offset=10).json()["tracks"]
    assert second["previous"].startswith(sim.spotify_api_base_url + "/search?")
    assert parse_qs(urlsplit(second["previous"]).query)["offset"] == ["0"]
    last_offset = (first["total"] - 1) // 10 * 10
    last = search(s, sim, q="fire", type="track", limit=10, offset=last_offset).json()["tracks"]
    assert last["next"] is None
    assert len(last["items"]) == first["total"] - last_offset


def test_following_next_and_previous_returns_the_neighbouring_pages(dev):
    sim, s = dev
    first = search(s, sim, q="fire", type="track", limit=10).json()["tracks"]
    response = s.get(first["next"], timeout=10)
    assert response.status_code == 200, response.text
    second = response.json()["tracks"]
    explicit = search(s, sim, q="fire", type="track", limit=10, offset=10).json()["tracks"]
    assert second["offset"] == 10
    assert [i["id"] for i in second["items"]] == [i["id"] for i in explicit["items"]]
    back = s.get(second["previous"], timeout=10).json()["tracks"]
    assert [i["id"] for i in back["items"]] == [i["id"] for i in first["items"]]


# ---------------------------------------------------------------- playlists and artists
def test_playlist_search_has_null_entries_when_null_rate_is_set(simulator_factory):
    noisy = simulator_factory(profile="extended", null_rate=0.5)
    page = search(api_session(noisy), noisy, q="pace", type="playlist",
                  limit=50).json()["playlists"]
    items = page["items"]
    assert page["total"] == len(items) > 10            # nulls count towards total
    nulls = sum(item is None for item in items)
    assert 0 < nulls < len(items)
    c = noisy.catalog
    for item in items:
        if item is not None:
            assert "pace" in words(c.playlists[item["id"]].description or "")

    clean = simulator_factory(profile="extended", null_rate=0.0)
    page = search(api_session(clean), clean, q="pace", type="playlist",
                  limit=50).json()["playlists"]
    assert page["total"] == len(items)
    assert all(item is not None for item in page["items"])


def test_playlist_search_ranks_editorial_first_and_unknown_words_find_nothing(ext):
    sim, s = ext
    page = search(s, sim, q="workout", type="playlist", limit=50).json()["playlists"]
    found = [p for p in page["items"] if p is not None]
    assert found
    editorial = [p["owner"]["id"] == "spotify" for p in found]
    assert editorial == sorted(editorial, reverse=True)        # all editorial hits first
    assert any(editorial)
    assert search(s, sim, q="zzqx", type="playlist").json()["playlists"]["total"] == 0


def test_type_artist(ext):
    sim, s = ext
    c = sim.catalog
    response = search(s, sim, q="wolves", type="artist", limit=50)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"artists"}
    items = body["artists"]["items"]
    want = sorted((a for a in c.artists
                   if "wolves" in words(a.name) | {w for g in a.genres for w in words(g)}),
                  key=lambda a: (-a.popularity, a.id))
    assert body["artists"]["total"] == len(want) > 0
    assert [a["id"] for a in items] == [a.id for a in want[:50]]
    for item in items:
        assert item["type"] == "artist"
        assert "wolves" in words(item["name"])
    pops = [item["popularity"] for item in items]
    assert pops == sorted(pops, reverse=True)

    both = search(s, sim, q="wolves", type="track,artist", limit=5).json()
    assert set(both) == {"tracks", "artists"}
    assert both["tracks"]["total"] == len(expected(c, lambda t: "wolves" in text_words(c, t)))
