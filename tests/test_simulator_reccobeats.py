"""Behaviour of the simulator's ReccoBeats service, against docs/simulator.md, "ReccoBeats"."""

from __future__ import annotations

import re
import uuid

import pytest
import requests

from runclub_spiders.simulator import Simulator
from runclub_spiders.simulator.catalog import Track

UA = {"User-Agent": "runclub-spiders tests (+https://example.invalid)",
      "Accept": "application/json"}
FEATURES = {"acousticness", "danceability", "energy", "instrumentalness", "key", "liveness",
            "loudness", "mode", "speechiness", "tempo", "valence"}
TRACK_KEYS = {"id", "trackTitle", "artists", "durationMs", "isrc", "ean", "upc", "href",
              "availableCountries", "popularity"}
HREF = re.compile(r"^https://open\.spotify\.com/track/([0-9A-Za-z]{22})$")


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
