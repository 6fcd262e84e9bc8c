"""Behaviour of the simulator's ReccoBeats service, against docs/simulator.md, "ReccoBeats"."""

from __future__ import annotations

import re
import uuid

import pytest
import requests

from runclub_spiders.simulator import Simulator
from runclub_spiders.simulator.catalog import RECCO_NAMESPACE, Track

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


def test_artist_tracks_pages_cover_every_known_credit(ordered):
    sim = ordered
    c = sim.catalog
    truth = credited(sim)
    # the artist with the most known tracks, so that paging really splits them
    idx = max(truth, key=lambda i: (len(truth[i]), -i))
    want = truth[idx]
    assert len(want) > 3
    uuid_ = artist_uuid(c.artists[idx].id)
    size = 3
    pages = []
    for page in range(0, 1000):
        response = get(sim, f"/artist/{uuid_}/track", {"page": page, "size": size})
        assert response.status_code == 200
        body = response.json()
        assert set(body) == {"content", "page", "size", "totalElements", "totalPages"}
        assert (body["page"], body["size"]) == (page, size)
        assert body["totalElements"] == len(want)
        assert body["totalPages"] == -(-len(want) // size)
        if not body["content"]:
            assert page == body["totalPages"]       # first empty page is the one past the end
            break
        assert len(body["content"]) == min(size, len(want) - page * size)
        pages.append(body["content"])
    rows = [row for content in pages for row in content]
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
    for params, name in (({"size": 51}, "size"), ({"size": 0}, "size"),
                         ({"size": "ten"}, "size"), ({"page": -1}, "page"),
                         ({"page": 1001}, "page"), ({"page": "1.5"}, "page")):
        response = get(sim, path, params)
        assert response.status_code == 400, params
        body = response.json()
        assert body["status"] == 4004
        assert body["errors"][0]["path"] == f"getArtistTracks.{name}", params
    assert get(sim, path, {"size": 50, "page": 1000}).status_code == 200
    for bad in (str(uuid.uuid4()), artist.id):       # unknown UUID; a Spotify ID in the path
        response = get(sim, f"/artist/{bad}/track")
        assert response.status_code == 404, bad
        assert response.json()["status"] == 404


def test_artist_routes_are_logged_blocked_and_limited(simulator_factory):
    sim = simulator_factory(recco_block_default_ua=True)
    artist = sim.catalog.artists[min(credited(sim))]
    paths = (f"/artist?ids={artist.id}", f"/artist/{artist_uuid(artist.id)}/track?size=5")
    for path in paths:
        assert raw_get(sim, path).status_code == 200
        blocked = raw_get(sim, path, headers={"User-Agent": "Python-urllib/3.11"})
        assert (blocked.status_code, blocked.text) == (403, "error code: 1010")
    logged = [(e.path, e.query, e.status, e.fault) for e in sim.requests(service="reccobeats")]
    assert logged == [
        ("/reccobeats/v1/artist", f"ids={artist.id}", 200, ""),
        ("/reccobeats/v1/artist", f"ids={artist.id}", 403, "cloudflare"),
        (f"/reccobeats/v1/artist/{artist_uuid(artist.id)}/track", "size=5", 200, ""),
        (f"/reccobeats/v1/artist/{artist_uuid(artist.id)}/track", "size=5", 403, "cloudflare")]
    limited = simulator_factory(recco_429_rate=1.0)
    for path in paths:
        response = raw_get(limited, path)
        assert response.status_code == 429
        assert response.headers["Retry-After"]
