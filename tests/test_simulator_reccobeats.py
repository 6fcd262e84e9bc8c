"""Behaviour of the simulator's ReccoBeats service, against docs/simulator.md, "ReccoBeats"."""

from __future__ import annotations

import re
import uuid

import pytest
import requests

from runclub_spiders.simulator import Simulator
from runclub_spiders.simulator.catalog import RECCO_NAMESPACE, Track
from tests.conftest import api_session

UA = {"User-Agent": "runclub-spiders tests (+https://example.invalid)",
      "Accept": "application/json"}
FEATURES = {"acousticness", "danceability", "energy", "instrumentalness", "key", "liveness",
            "loudness", "mode", "speechiness", "tempo", "valence"}
TRACK_KEYS = {"id", "trackTitle", "artists", "durationMs", "isrc", "ean", "upc", "href",
              "availableCountries", "popularity"}
HREF = re.compile(r"^https://open\.spotify\.com/track/([0-9A-Za-z]{22})$")
ARTIST_HREF = re.compile(r"^https://open\.spotify\.com/artist/([0-9A-Za-z]{22})$")


def size_error(method: str) -> dict:
    return {"status": 4004, "errors": [{"path": f"{method}.ids",
                                        "message": "size must be between 1 and 40"}]}


def known(sim: Simulator, n: int, start: int = 0) -> list[Track]:
    return [t for t in sim.catalog.tracks if t.recco_known][start:start + n]


def unknown(sim: Simulator, n: int) -> list[Track]:
    return [t for t in sim.catalog.tracks if not t.recco_known][:n]


def raw_get(sim: Simulator, path_and_query: str, headers: dict | None = None
            ) -> requests.Response:
    """GET with the query string sent exactly as written (literal commas stay commas)."""
    return requests.get(f"{sim.reccobeats_base_url}{path_and_query}",
                        headers=UA if headers is None else headers, timeout=10)


def get(sim: Simulator, path: str, params=None) -> requests.Response:
    return requests.get(f"{sim.reccobeats_base_url}{path}", params=params, headers=UA,
                        timeout=10)


def spotify_id(row: dict) -> str:
    match = HREF.match(row["href"])
    assert match, row["href"]
    return match.group(1)


@pytest.fixture
def sim(simulator_factory) -> Simulator:
    return simulator_factory(profile="development")


@pytest.fixture
def ordered(simulator_factory) -> Simulator:
    return simulator_factory(profile="development", recco_shuffle=False)


# ---------------------------------------------------------------- id parsing
@pytest.mark.parametrize("path", ["/audio-features", "/track"])
def test_id_list_forms_all_work(sim, path):
    tracks = known(sim, 40)
    ids = [t.id for t in tracks]
    want = {t.id for t in tracks}
    forms = {
        "comma": raw_get(sim, f"{path}?ids={','.join(ids)}"),
        "repeated": get(sim, path, [("ids", i) for i in ids]),
        "encoded": raw_get(sim, f"{path}?ids={'%2C'.join(ids)}"),
        "mixed": raw_get(sim, f"{path}?ids={','.join(ids[:20])}&ids={'%2C'.join(ids[20:])}"),
        "blanks": raw_get(sim, f"{path}?ids=%20{',%20'.join(ids)},,"),
    }
    for form, response in forms.items():
        assert response.status_code == 200, (form, response.text)
        rows = response.json()["content"]
        assert {spotify_id(r) for r in rows} == want, form
        assert len(rows) == 40, form
    single = get(sim, path, {"ids": ids[0]}).json()["content"]
    assert [spotify_id(r) for r in single] == [ids[0]]


@pytest.mark.parametrize(("path", "method"), [("/audio-features", "getAudioFeatures"),
                                              ("/track", "getTracks")])
def test_zero_or_41_ids_is_the_4004_body(sim, path, method):
    ids = [t.id for t in known(sim, 41)]
    for query in ("", "?ids=", "?ids=,,", f"?ids={','.join(ids)}",
                  "?" + "&".join(f"ids={i}" for i in ids)):
        response = raw_get(sim, f"{path}{query}")
        assert response.status_code == 400, query
        assert response.json() == size_error(method), query
    # 41 entries count even when some are unknown: the size check comes first
    forty_one = [t.id for t in known(sim, 20)] + ["0000000000000000000000"] * 21
    assert raw_get(sim, f"{path}?ids={','.join(forty_one)}").status_code == 400


@pytest.mark.parametrize("path", ["/audio-features", "/track"])
def test_spotify_ids_and_recco_uuids_both_accepted(sim, path):
    c = sim.catalog
    by_spotify, by_uuid = known(sim, 5), known(sim, 5, start=5)
    ids = [t.id for t in by_spotify] + [c.recco_id(t) for t in by_uuid]
    rows = get(sim, path, {"ids": ",".join(ids)}).json()["content"]
    assert {spotify_id(r) for r in rows} == {t.id for t in by_spotify + by_uuid}
    assert {r["id"] for r in rows} == {c.recco_id(t) for t in by_spotify + by_uuid}
    # the same track asked for twice (once per ID kind) comes back once
    twice = get(sim, path, {"ids": f"{by_spotify[0].id},{c.recco_id(by_spotify[0])}"})
    assert len(twice.json()["content"]) == 1


@pytest.mark.parametrize("path", ["/audio-features", "/track"])
def test_unknown_ids_are_silently_omitted(sim, path):
    c = sim.catalog
    good = known(sim, 3)
    missing = unknown(sim, 3)
    ids = ([t.id for t in good] + [t.id for t in missing] + [c.recco_id(t) for t in missing]
           + ["0000000000000000000000", str(uuid.uuid4()), "invalid-spotify-id-12345"])
    response = get(sim, path, {"ids": ",".join(ids)})
    assert response.status_code == 200
    assert {spotify_id(r) for r in response.json()["content"]} == {t.id for t in good}
    nothing = get(sim, path, {"ids": ",".join(t.id for t in missing)})
    assert nothing.status_code == 200
    assert nothing.json() == {"content": []}


# ---------------------------------------------------------------- row shapes
def test_feature_rows_have_exactly_id_href_isrc_and_eleven_features(sim):
    c = sim.catalog
    tracks = known(sim, 40)
    body = get(sim, "/audio-features", {"ids": ",".join(t.id for t in tracks)}).json()
    assert set(body) == {"content"}
    for row in body["content"]:
        assert set(row) == {"id", "href", "isrc"} | FEATURES
        assert "time_signature" not in row
        assert "duration_ms" not in row
        sid = spotify_id(row)
        track = c.track_by_id[sid]
        assert str(uuid.UUID(row["id"])) == row["id"] == c.recco_id(track)
        assert row["id"] != sid
        # the Spotify ID is only inside href
        assert [k for k, v in row.items() if isinstance(v, str) and sid in v] == ["href"]
        assert row["isrc"] == track.isrc
        assert {k: row[k] for k in FEATURES} == c.features(track)
        for name in FEATURES - {"key", "mode", "loudness", "tempo"}:
            assert 0 <= row[name] <= 1, name
        assert -1 <= row["key"] <= 11
        assert row["mode"] in (0, 1)
        assert -60 <= row["loudness"] <= 2
        assert 0 <= row["tempo"] <= 250


def test_track_rows_shape(sim):
    c = sim.catalog
    tracks = known(sim, 40)
    rows = get(sim, "/track", {"ids": ",".join(t.id for t in tracks)}).json()["content"]
    assert len(rows) == 40
    for row in rows:
        assert set(row) == TRACK_KEYS
        track = c.track_by_id[spotify_id(row)]
        assert row["id"] == c.recco_id(track)
        assert uuid.UUID(row["id"])
        assert row["trackTitle"] == track.name
        assert row["durationMs"] == track.duration_ms
        assert row["isrc"] == track.isrc
        assert row["ean"] is None
        assert row["upc"] is None
        assert row["availableCountries"].split(",") == list(track.markets)
        assert row["popularity"] == track.popularity
        assert [a["name"] for a in row["artists"]] == [c.artists[i].name
                                                       for i in track.artist_idxs]
        for artist, idx in zip(row["artists"], track.artist_idxs, strict=True):
            assert set(artist) == {"id", "name", "href"}
            assert uuid.UUID(artist["id"])
            assert artist["id"] != c.artists[idx].id
            assert artist["href"] == f"https://open.spotify.com/artist/{c.artists[idx].id}"


def test_single_track_routes_return_bare_objects(sim):
    c = sim.catalog
    track = known(sim, 1)[0]
    recco = c.recco_id(track)
    row = get(sim, f"/track/{recco}").json()
    assert set(row) == TRACK_KEYS
    assert row["id"] == recco
    assert spotify_id(row) == track.id
    features = get(sim, f"/track/{recco}/audio-features").json()
    assert "content" not in features
    assert features["id"] == recco
    assert spotify_id(features) == track.id
    assert FEATURES <= set(features) <= FEATURES | {"id", "href", "isrc"}
    assert {k: features[k] for k in FEATURES} == c.features(track)
    for path in (f"/track/{uuid.uuid4()}", f"/track/{uuid.uuid4()}/audio-features",
                 f"/track/{c.recco_id(unknown(sim, 1)[0])}",
                 f"/track/{c.recco_id(unknown(sim, 1)[0])}/audio-features"):
        response = get(sim, path)
        assert response.status_code == 404, path
        assert response.json()["status"] == 404


def test_unknown_route_is_404(sim):
    assert get(sim, "/nothing").status_code == 404
    assert get(sim, "/audio-analysis", {"ids": known(sim, 1)[0].id}).status_code == 404


def test_no_auth_needed_and_authorization_ignored(sim):
    ids = ",".join(t.id for t in known(sim, 3))
    response = requests.get(f"{sim.reccobeats_base_url}/audio-features", params={"ids": ids},
                            headers={**UA, "Authorization": "Bearer nonsense"}, timeout=10)
    assert response.status_code == 200
    assert len(response.json()["content"]) == 3


# ---------------------------------------------------------------- order and strays
def test_shuffle_changes_order_and_off_keeps_request_order(sim, ordered):
    tracks = known(sim, 40)
    ids = [t.id for t in reversed(tracks)]                   # not catalog order either
    shuffled = [spotify_id(r) for r in get(sim, "/audio-features",
                                          {"ids": ",".join(ids)}).json()["content"]]
    assert sorted(shuffled) == sorted(ids)
    assert shuffled != ids
    assert shuffled != ids[::-1]
    track_rows = [spotify_id(r) for r in get(sim, "/track",
                                            {"ids": ",".join(ids)}).json()["content"]]
    assert track_rows != ids

    first = [spotify_id(r) for r in get(ordered, "/audio-features",
                                       {"ids": ",".join(ids)}).json()["content"]]
    again = [spotify_id(r) for r in get(ordered, "/audio-features",
                                       {"ids": ",".join(ids)}).json()["content"]]
    assert first == again == ids


def test_stray_rows_add_an_unrequested_row(simulator_factory):
    sim = simulator_factory(recco_stray_rows=True, recco_shuffle=False)
    tracks = known(sim, 10)
    asked = {t.id for t in tracks}
    for path in ("/audio-features", "/track"):
        rows = get(sim, path, {"ids": ",".join(asked)}).json()["content"]
        got = [spotify_id(r) for r in rows]
        assert len(rows) == 11
        assert set(got) > asked
        stray = set(got) - asked
        assert len(stray) == 1
        assert sim.catalog.track_by_id[stray.pop()].recco_known
    # artist batches too: one known artist nobody asked for
    artist_ids = {sim.catalog.artists[t.artist_idxs[0]].id for t in tracks}
    rows = get(sim, "/artist", {"ids": ",".join(artist_ids)}).json()["content"]
    got = {ARTIST_HREF.match(r["href"]).group(1) for r in rows}
    assert len(rows) == len(artist_ids) + 1
    assert len(got - artist_ids) == 1
    clean = simulator_factory(recco_stray_rows=False)
    rows = get(clean, "/audio-features", {"ids": ",".join(asked)}).json()["content"]
    assert {spotify_id(r) for r in rows} == asked


# ---------------------------------------------------------------- coverage
def covered_share(sim: Simulator) -> tuple[float, set[str]]:
    ids = [t.id for t in sim.catalog.tracks]
    covered: set[str] = set()
    session = requests.Session()
    session.headers.update(UA)
    for start in range(0, len(ids), 40):
        batch = ids[start:start + 40]
        response = session.get(f"{sim.reccobeats_base_url}/audio-features",
                               params={"ids": ",".join(batch)}, timeout=10)
        assert response.status_code == 200
        rows = response.json()["content"]
        assert {spotify_id(r) for r in rows} <= set(batch)
        covered |= {spotify_id(r) for r in rows}
    return len(covered) / len(ids), covered


def test_coverage_matches_recco_coverage(sim, simulator_factory):
    share, covered = covered_share(sim)
    assert share == pytest.approx(0.6, abs=0.04)
    assert covered == {t.id for t in sim.catalog.tracks if t.recco_known}
    low = simulator_factory(fresh_catalog=True, recco_coverage=0.3)
    low_share, _ = covered_share(low)
    assert low_share == pytest.approx(0.3, abs=0.04)


# ---------------------------------------------------------------- Cloudflare 1010
def test_block_default_user_agent(simulator_factory):
    sim = simulator_factory(recco_block_default_ua=True)
    ids = ",".join(t.id for t in known(sim, 2))
    default = requests.get(f"{sim.reccobeats_base_url}/audio-features", params={"ids": ids},
                           timeout=10)
    assert default.request.headers["User-Agent"].startswith("python-requests/")
    assert default.status_code == 403
    assert default.text == "error code: 1010"
    urllib_like = raw_get(sim, f"/audio-features?ids={ids}",
                          headers={"User-Agent": "Python-urllib/3.11"})
    assert urllib_like.status_code == 403
    custom = raw_get(sim, f"/audio-features?ids={ids}")
    assert custom.status_code == 200
    assert len(custom.json()["content"]) == 2

    open_sim = simulator_factory(recco_block_default_ua=False)
    response = requests.get(f"{open_sim.reccobeats_base_url}/audio-features",
                            params={"ids": ids}, timeout=10)
    assert response.status_code == 200


# ---------------------------------------------------------------- artists


def artist_uuid(spotify_artist_id: str) -> str:
    """The artist's ReccoBeats UUID, derived independently of the answer under test (track rows'
    ``artists[].id`` use the same one: see the paging test)."""
    return str(uuid.uuid5(RECCO_NAMESPACE, f"artist:{spotify_artist_id}"))


def credited(sim: Simulator) -> dict[int, list[Track]]:
    """Ground truth: artist index -> recco-known tracks crediting it, catalog order."""
    out: dict[int, list[Track]] = {}
    for track in sim.catalog.tracks:
        if track.recco_known:
            for idx in set(track.artist_idxs):
                out.setdefault(idx, []).append(track)
    return out


def unknown_artists(sim: Simulator) -> list:
    known_idxs = credited(sim)
    return [a for a in sim.catalog.artists if a.idx not in known_idxs]


def test_artists_by_spotify_id_and_uuid(sim):
    c = sim.catalog
    known_artists = [c.artists[i] for i in sorted(credited(sim))][:10]
    by_spotify, by_uuid = known_artists[:5], known_artists[5:]
    ids = [a.id for a in by_spotify] + [artist_uuid(a.id) for a in by_uuid]
    response = raw_get(sim, f"/artist?ids={','.join(ids)}")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"content"}
    assert len(body["content"]) == 10
    for row in body["content"]:
        assert set(row) == {"id", "name", "href"}
        match = ARTIST_HREF.match(row["href"])
        assert match, row["href"]
        artist = c.artist_by_id[match.group(1)]
        assert row["id"] == artist_uuid(artist.id) == str(uuid.UUID(row["id"]))
        assert row["name"] == artist.name
        assert artist.id not in row["id"]
    assert {ARTIST_HREF.match(r["href"]).group(1) for r in body["content"]} == \
        {a.id for a in known_artists}
    # one row per artist, whichever ID kinds asked for it and however often
    a = by_spotify[0]
    twice = get(sim, "/artist", [("ids", a.id), ("ids", artist_uuid(a.id)), ("ids", a.id)])
    assert len(twice.json()["content"]) == 1


def test_artists_unknown_omitted_and_41_is_400(sim):
    c = sim.catalog
    good = [c.artists[i] for i in sorted(credited(sim))][:3]
    nobody = unknown_artists(sim)
    missing = nobody[:2] if nobody else []
    ids = ([a.id for a in good] + [a.id for a in missing] + [artist_uuid(a.id) for a in missing]
           + ["0000000000000000000000", str(uuid.uuid4()), known(sim, 1)[0].id])
    response = get(sim, "/artist", {"ids": ",".join(ids)})
    assert response.status_code == 200
    assert {r["id"] for r in response.json()["content"]} == {artist_uuid(a.id) for a in good}
    assert get(sim, "/artist", {"ids": str(uuid.uuid4())}).json() == {"content": []}
    forty_one = [c.artists[i].id for i in sorted(credited(sim))][:41]
    assert len(forty_one) == 41
    for query in ("", "?ids=", f"?ids={','.join(forty_one)}"):
        response = raw_get(sim, f"/artist{query}")
        assert response.status_code == 400, query
        assert response.json() == size_error("getArtists"), query


def test_artists_without_a_known_track_are_unknown(simulator_factory):
    # low coverage leaves many artists with no track ReccoBeats knows
    sim = simulator_factory(fresh_catalog=True, recco_coverage=0.1)
    nobody = unknown_artists(sim)
    assert nobody
    ids = [a.id for a in nobody[:20]] + [artist_uuid(a.id) for a in nobody[:20]]
    assert get(sim, "/artist", {"ids": ",".join(ids)}).json() == {"content": []}
    assert get(sim, f"/artist/{artist_uuid(nobody[0].id)}/track").status_code == 404


def read_pages(sim, path: str, total: int, size: int = 3) -> list[dict]:
    """Every row of a paged ReccoBeats list, ``size`` a page, each page's shape checked:
    ``total`` rows in all, the first empty page the one past the end."""
    rows: list[dict] = []
    for page in range(0, 1000):
        response = get(sim, path, {"page": page, "size": size})
        assert response.status_code == 200
        body = response.json()
        assert set(body) == {"content", "page", "size", "totalElements", "totalPages"}
        assert (body["page"], body["size"]) == (page, size)
        assert body["totalElements"] == total
        assert body["totalPages"] == -(-total // size)
        if not body["content"]:
            assert page == body["totalPages"]       # first empty page is the one past the end
            break
        assert len(body["content"]) == min(size, total - page * size)
        rows += body["content"]
    return rows


def test_artist_tracks_pages_cover_every_known_credit(ordered):
    sim = ordered
    c = sim.catalog
    truth = credited(sim)
    # the artist with the most known tracks, so that paging really splits them
    idx = max(truth, key=lambda i: (len(truth[i]), -i))
    want = truth[idx]
    assert len(want) > 3
    uuid_ = artist_uuid(c.artists[idx].id)
    rows = read_pages(sim, f"/artist/{uuid_}/track", len(want))
    got = [spotify_id(row) for row in rows]
    assert len(got) == len(set(got))                  # pages are disjoint
    assert got == [t.id for t in want]                # together every known credited track
    for row in rows:
        assert set(row) == TRACK_KEYS
        track = c.track_by_id[spotify_id(row)]
        assert row["id"] == c.recco_id(track)
        assert row["isrc"] == track.isrc and row["isrc"]
        assert uuid_ in {a["id"] for a in row["artists"]}
    # defaults: page 0, size 25; and the same answer each time
    first = get(sim, f"/artist/{uuid_}/track").json()
    assert (first["page"], first["size"]) == (0, 25)
    assert [spotify_id(r) for r in first["content"]] == [t.id for t in want[:25]]
    assert get(sim, f"/artist/{uuid_}/track").json() == first


def test_artist_tracks_bad_paging_and_unknown_ids(sim):
    c = sim.catalog
    idx = min(credited(sim))
    artist = c.artists[idx]
    path = f"/artist/{artist_uuid(artist.id)}/track"
    check_bad_paging(sim, path, "getArtistTracks")
    assert get(sim, path, {"size": 50, "page": 1000}).status_code == 200
    check_not_found(sim, "artist", (str(uuid.uuid4()), artist.id))  # unknown; a Spotify ID


def check_bad_paging(sim, path: str, method: str) -> None:
    """Out-of-range or non-integer paging: 400 naming the parameter, as ReccoBeats does."""
    for params, name in (({"size": 51}, "size"), ({"size": 0}, "size"),
                         ({"size": "ten"}, "size"), ({"page": -1}, "page"),
                         ({"page": 1001}, "page"), ({"page": "1.5"}, "page")):
        response = get(sim, path, params)
        assert response.status_code == 400, params
        body = response.json()
        assert body["status"] == 4004
        assert body["errors"][0]["path"] == f"{method}.{name}", params


def check_not_found(sim, kind: str, ids) -> None:
    """``/{kind}/{id}/track`` for IDs that are not a known UUID of that kind: 404."""
    for bad in ids:
        response = get(sim, f"/{kind}/{bad}/track")
        assert response.status_code == 404, bad
        assert response.json()["status"] == 404


def check_logged_blocked_limited(simulator_factory, kind: str, pick) -> None:
    """``/{kind}?ids=`` and ``/{kind}/{uuid}/track`` for the entity ``pick(sim)`` names
    (its Spotify ID and UUID): in the request log, behind the Cloudflare block of default
    User-Agents, and rate limited, like every ReccoBeats route."""
    sim = simulator_factory(recco_block_default_ua=True)
    spotify_id, recco_id = pick(sim)
    paths = (f"/{kind}?ids={spotify_id}", f"/{kind}/{recco_id}/track?size=5")
    for path in paths:
        assert raw_get(sim, path).status_code == 200
        blocked = raw_get(sim, path, headers={"User-Agent": "Python-urllib/3.11"})
        assert (blocked.status_code, blocked.text) == (403, "error code: 1010")
    logged = [(e.path, e.query, e.status, e.fault) for e in sim.requests(service="reccobeats")]
    assert logged == [
        (f"/reccobeats/v1/{kind}", f"ids={spotify_id}", 200, ""),
        (f"/reccobeats/v1/{kind}", f"ids={spotify_id}", 403, "cloudflare"),
        (f"/reccobeats/v1/{kind}/{recco_id}/track", "size=5", 200, ""),
        (f"/reccobeats/v1/{kind}/{recco_id}/track", "size=5", 403, "cloudflare")]
    limited = simulator_factory(recco_429_rate=1.0)
    for path in paths:
        response = raw_get(limited, path)
        assert response.status_code == 429
        assert response.headers["Retry-After"]


def test_artist_routes_are_logged_blocked_and_limited(simulator_factory):
    def pick(sim):
        artist = sim.catalog.artists[min(credited(sim))]
        return artist.id, artist_uuid(artist.id)
    check_logged_blocked_limited(simulator_factory, "artist", pick)


# ---------------------------------------------------------------- albums
ALBUM_KEYS = {"id", "albumType", "artists", "totalTracks", "href", "name", "availableCountries",
              "releaseDate", "releaseDateFormat", "isrc", "ean", "upc", "label", "popularity"}
ALBUM_HREF = re.compile(r"^https://open\.spotify\.com/album/([0-9A-Za-z]{22})$")


def album_uuid(spotify_album_id: str) -> str:
    """The album's ReccoBeats UUID, derived independently of the answer under test."""
    return str(uuid.uuid5(RECCO_NAMESPACE, f"album:{spotify_album_id}"))


def album_known(sim: Simulator) -> dict[int, list[Track]]:
    """Ground truth: album index -> its recco-known tracks in the album's order (albums with
    none left out)."""
    c = sim.catalog
    out = {a.idx: [c.tracks[i] for i in a.track_idxs if c.tracks[i].recco_known]
           for a in c.albums}
    return {idx: tracks for idx, tracks in out.items() if tracks}


def album_spotify_id(row: dict) -> str:
    match = ALBUM_HREF.match(row["href"])
    assert match, row["href"]
    return match.group(1)


def test_albums_by_spotify_id_and_uuid(sim):
    c = sim.catalog
    truth = album_known(sim)
    # both kinds of album credit: named artists and Various Artists
    various = [c.albums[i] for i in sorted(truth) if not c.albums[i].artist_idxs][:2]
    named = [c.albums[i] for i in sorted(truth) if c.albums[i].artist_idxs][:8]
    assert len(various) == 2
    wanted = named + various
    ids = [a.id for a in wanted[::2]] + [album_uuid(a.id) for a in wanted[1::2]]
    response = raw_get(sim, f"/album?ids={','.join(ids)}")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"content"}
    assert sorted(album_spotify_id(r) for r in body["content"]) == sorted(a.id for a in wanted)
    for row in body["content"]:
        assert set(row) == ALBUM_KEYS
        album = c.album_by_id[album_spotify_id(row)]
        assert row["id"] == album_uuid(album.id) == str(uuid.UUID(row["id"]))
        assert album.id not in row["id"]
        assert row["name"] == album.name
        assert row["albumType"] == album.album_type in ("album", "single", "compilation")
        assert row["totalTracks"] == len(album.track_idxs)
        assert row["releaseDate"] == album.release_date
        assert row["releaseDateFormat"] == album.precision in ("day", "month", "year")
        assert (row["isrc"], row["ean"], row["label"]) == (None, None, None)
        assert row["upc"] == album.upc
        assert row["popularity"] == album.popularity
        countries = row["availableCountries"].split(",")
        assert countries == sorted(set(countries))
        assert set(countries) == {m for i in album.track_idxs for m in c.tracks[i].markets}
        names = [a["name"] for a in row["artists"]]
        if album.artist_idxs:
            assert names == [c.artists[i].name for i in album.artist_idxs]
            # the same artist UUIDs as the artist batch and the track rows use
            assert [a["id"] for a in row["artists"]] == \
                [artist_uuid(c.artists[i].id) for i in album.artist_idxs]
        else:
            assert names == ["Various Artists"]
        for artist in row["artists"]:
            assert set(artist) == {"id", "name", "href"}
            assert artist["id"] == artist_uuid(ARTIST_HREF.match(artist["href"]).group(1))
    # one row per album, whichever ID kinds asked for it and however often
    a = named[0]
    twice = get(sim, "/album", [("ids", a.id), ("ids", album_uuid(a.id)), ("ids", a.id)])
    assert [r["id"] for r in twice.json()["content"]] == [album_uuid(a.id)]


def test_albums_unknown_omitted_and_41_is_400(simulator_factory):
    # low coverage leaves albums none of whose tracks ReccoBeats knows
    sim = simulator_factory(fresh_catalog=True, recco_coverage=0.1, recco_shuffle=False)
    c = sim.catalog
    truth = album_known(sim)
    good = [c.albums[i] for i in sorted(truth)][:3]
    nobody = [a for a in c.albums if a.idx not in truth][:20]
    assert nobody
    ids = ([a.id for a in good] + [a.id for a in nobody[:5]]
           + [album_uuid(a.id) for a in nobody[:5]]
           + ["0000000000000000000000", str(uuid.uuid4()), known(sim, 1)[0].id,
              artist_uuid(c.artists[0].id)])
    response = get(sim, "/album", {"ids": ",".join(ids)})
    assert response.status_code == 200
    assert [r["id"] for r in response.json()["content"]] == [album_uuid(a.id) for a in good]
    both = [a.id for a in nobody] + [album_uuid(a.id) for a in nobody]
    assert get(sim, "/album", {"ids": ",".join(both)}).json() == {"content": []}
    assert get(sim, f"/album/{album_uuid(nobody[0].id)}/track").status_code == 404
    forty_one = [a.id for a in c.albums][:41]
    for query in ("", "?ids=", "?ids=,,", f"?ids={','.join(forty_one)}",
                  "?" + "&".join(f"ids={i}" for i in forty_one)):
        response = raw_get(sim, f"/album{query}")
        assert response.status_code == 400, query
        assert response.json() == size_error("getAlbums"), query


def test_album_batch_shuffles_and_adds_strays(sim, simulator_factory):
    c = sim.catalog
    wanted = [c.albums[i].id for i in sorted(album_known(sim))][:40]
    rows = get(sim, "/album", {"ids": ",".join(wanted)}).json()["content"]
    got = [album_spotify_id(r) for r in rows]
    assert sorted(got) == sorted(wanted) and got != wanted
    stray_sim = simulator_factory(recco_stray_rows=True, recco_shuffle=False)
    rows = get(stray_sim, "/album", {"ids": ",".join(wanted[:10])}).json()["content"]
    got = [album_spotify_id(r) for r in rows]
    assert got[:10] == wanted[:10] and len(got) == 11
    assert stray_sim.catalog.album_by_id[got[10]].idx in album_known(stray_sim)


def test_album_tracks_pages_are_the_known_tracks_in_album_order(ordered):
    sim = ordered
    c = sim.catalog
    truth = album_known(sim)
    # the album with the most known tracks, some of its tracks unknown, so that paging
    # splits it and the unknown ones are visibly left out
    idx = max((i for i in truth if len(truth[i]) < len(c.albums[i].track_idxs)),
              key=lambda i: (len(truth[i]), -i))
    album, want = c.albums[idx], truth[idx]
    assert len(want) > 3
    uuid_ = album_uuid(album.id)
    rows = read_pages(sim, f"/album/{uuid_}/track", len(want))
    assert [spotify_id(r) for r in rows] == [t.id for t in want]
    for row in rows:
        assert set(row) == TRACK_KEYS
        track = c.track_by_id[spotify_id(row)]
        assert HREF.match(row["href"])
        assert track.album_idx == idx
        assert row["id"] == c.recco_id(track)
        assert row["isrc"] == track.isrc and row["isrc"]
    first = get(sim, f"/album/{uuid_}/track").json()
    assert (first["page"], first["size"]) == (0, 25)
    assert [spotify_id(r) for r in first["content"]] == [t.id for t in want[:25]]


def test_album_agrees_with_spotify_albums_endpoint(sim):
    c = sim.catalog
    truth = album_known(sim)
    session = api_session(sim)
    picks = [c.albums[i] for i in sorted(truth)]
    picks = picks[:3] + [a for a in picks if not a.artist_idxs][:1] \
        + [max(picks, key=lambda a: len(a.track_idxs))]
    rows = get(sim, "/album", {"ids": ",".join(a.id for a in picks)}).json()["content"]
    assert len(rows) == len(picks)
    for row in rows:
        album_id = album_spotify_id(row)
        spotify = session.get(f"{sim.spotify_api_base_url}/albums/{album_id}", timeout=10)
        assert spotify.status_code == 200
        body = spotify.json()
        assert row["totalTracks"] == body["total_tracks"] == body["tracks"]["total"]
        assert row["releaseDate"] == body["release_date"]
        assert row["releaseDateFormat"] == body["release_date_precision"]
        assert row["albumType"] == body["album_type"]
        assert row["name"] == body["name"]
        assert row["upc"] == body["external_ids"]["upc"]
        assert [ARTIST_HREF.match(a["href"]).group(1) for a in row["artists"]] == \
            [a["id"] for a in body["artists"]]
        assert [a["name"] for a in row["artists"]] == [a["name"] for a in body["artists"]]


def test_album_tracks_bad_paging_and_unknown_ids(sim):
    c = sim.catalog
    album = next(c.albums[i] for i in sorted(album_known(sim)) if c.albums[i].artist_idxs)
    path = f"/album/{album_uuid(album.id)}/track"
    check_bad_paging(sim, path, "getAlbumTracks")
    assert get(sim, path, {"size": 50, "page": 1000}).json()["content"] == []
    # an unknown UUID, a Spotify album ID in the path, another kind's UUID
    check_not_found(sim, "album", (str(uuid.uuid4()), album.id,
                                   artist_uuid(c.artists[album.artist_idxs[0]].id)))


def test_album_routes_are_logged_blocked_and_limited(simulator_factory):
    def pick(sim):
        album = sim.catalog.albums[min(album_known(sim))]
        return album.id, album_uuid(album.id)
    check_logged_blocked_limited(simulator_factory, "album", pick)
