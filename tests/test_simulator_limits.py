"""The simulator's limits and faults, knob by knob, and its request log.

Every test talks real HTTP to a simulator on loopback with a blocking ``requests`` client and
asserts something that would not happen if the knob under test did nothing. Windows and locks
are kept at one or two seconds so the whole file stays quick.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pytest
import requests

from runclub_spiders import clock
from runclub_spiders.simulator import Simulator, SimulatorConfig
from runclub_spiders.simulator.limits import RollingQuota
from runclub_spiders.simulator.server import spotify_bucket
from tests.conftest import access_token, api_session, cached_catalog

CATALOG = cached_catalog()
TRACK_IDS = [t.id for t in CATALOG.tracks]
RECCO_IDS = [t.id for t in CATALOG.tracks if t.recco_known]
ARTIST_ID = CATALOG.artists[0].id
ALBUM_ID = CATALOG.albums[0].id
OWNED_PLAYLIST_ID = next(p.id for p in CATALOG.playlists.values() if p.readable)
SEARCH = "/search?q=run&type=track&limit=5"
UA = {"User-Agent": "runclub-spiders tests"}
SERVER_ERRORS = {500, 502, 503}


# ------------------------------------------------------------------------- helpers
def api(sim: Simulator, path: str) -> str:
    return sim.spotify_api_base_url + path


def recco(sim: Simulator, path: str) -> str:
    return sim.reccobeats_base_url + path


def token_request(sim: Simulator) -> requests.Response:
    env = sim.env()
    return requests.post(f"{env['SPOTIFY_ACCOUNTS_BASE_URL']}/api/token",
                         data={"grant_type": "refresh_token",
                               "refresh_token": env["SPOTIFY_REFRESH_TOKEN"]},
                         auth=(env["SPOTIFY_CLIENT_ID"], env["SPOTIFY_CLIENT_SECRET"]),
                         timeout=10)


def sturdy_token(sim: Simulator, attempts: int = 40) -> str:
    """An access token even when faults hit the token endpoint too: each retry is a new draw."""
    for _ in range(attempts):
        try:
            response = token_request(sim)
            if response.status_code == 200:
                return response.json()["access_token"]
        except (requests.ConnectionError, ValueError):
            pass
    raise AssertionError(f"no access token in {attempts} attempts")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **UA}


def track_statuses(sim: Simulator, token: str, ids: list[str]) -> list[int]:
    return [requests.get(api(sim, f"/tracks/{id_}"), headers=bearer(token), timeout=10)
            .status_code for id_ in ids]


def features_url(sim: Simulator, i: int) -> str:
    return recco(sim, f"/audio-features?ids={RECCO_IDS[i]}")


# ------------------------------------------------------------------------- rate window
def test_rate_limit_rejects_over_the_window_and_recovers(simulator_factory):
    sim = simulator_factory(rate_limit=5, rate_window=2)
    session = api_session(sim)
    # Neither the token endpoint nor ReccoBeats counts against the Web API window.
    for _ in range(3):
        assert token_request(sim).status_code == 200
    for i in range(8):
        assert requests.get(features_url(sim, i), headers=UA, timeout=10).status_code == 200

    first = time.monotonic()
    assert [session.get(api(sim, f"/tracks/{TRACK_IDS[i]}"), timeout=10).status_code
            for i in range(5)] == [200] * 5
    rejected = [session.get(api(sim, f"/tracks/{TRACK_IDS[i]}"), timeout=10)
                for i in range(5, 25)]
    assert {r.status_code for r in rejected} == {429}
    assert rejected[0].json() == {"error": {"status": 429, "message": "API rate limit exceeded"}}
    retry_afters = [r.headers["Retry-After"] for r in rejected]
    assert all(value.isdigit() and 1 <= int(value) <= 5 for value in retry_afters)
    assert len(set(retry_afters)) > 1          # drawn per request, not one constant
    log = sim.requests(service="spotify")
    assert [e.fault for e in log[-20:]] == ["rate limit"] * 20
    assert {e.status for e in log[-20:]} == {429}

    time.sleep(max(0.0, first + 2.2 - time.monotonic()))
    assert [session.get(api(sim, f"/tracks/{TRACK_IDS[i]}"), timeout=10).status_code
            for i in range(30, 36)] == [200] * 5 + [429]


def test_rate_limit_zero_never_rejects(simulator_factory):
    sim = simulator_factory(rate_limit=0, rate_window=2)
    session = api_session(sim)
    statuses = [session.get(api(sim, f"/tracks/{TRACK_IDS[i]}"), timeout=10).status_code
                for i in range(60)]
    assert statuses == [200] * 60


# ------------------------------------------------------------------------- quota buckets
def test_quota_locks_one_bucket_then_reopens(simulator_factory):
    sim = simulator_factory(quota={"search": 3}, quota_retry_after=2)
    session = api_session(sim)
    assert [session.get(api(sim, SEARCH), timeout=10).status_code
            for _ in range(3)] == [200] * 3
    locked = session.get(api(sim, SEARCH), timeout=10)
    locked_at = time.monotonic()
    assert locked.status_code == 429
    assert locked.json() == {"error": {"status": 429, "message": "Too many requests",
                                       "reason": "QUOTA_EXCEEDED"}}
    assert locked.headers["Retry-After"] == "2"
    assert sim.requests(service="spotify")[-1].fault == "quota"

    # Other buckets keep serving while search is locked.
    for path in (f"/tracks/{TRACK_IDS[0]}", f"/playlists/{OWNED_PLAYLIST_ID}",
                 f"/playlists/{OWNED_PLAYLIST_ID}/items", "/me/playlists", "/me",
                 f"/artists/{ARTIST_ID}", f"/albums/{ALBUM_ID}"):
        assert session.get(api(sim, path), timeout=10).status_code == 200, path
    again = session.get(api(sim, SEARCH), timeout=10)
    assert again.status_code == 429
    assert again.json()["error"]["reason"] == "QUOTA_EXCEEDED"
    assert again.headers["Retry-After"] in ("1", "2")

    time.sleep(max(0.0, locked_at + 2.1 - time.monotonic()))
    # The lock stands for a quota day: afterwards the budget starts again from zero.
    assert [session.get(api(sim, SEARCH), timeout=10).status_code
            for _ in range(4)] == [200, 200, 200, 429]


def test_quota_retry_after_header_can_be_omitted(simulator_factory):
    sim = simulator_factory(quota={"search": 1}, quota_retry_after=2,
                            quota_send_retry_after=False)
    session = api_session(sim)
    assert session.get(api(sim, SEARCH), timeout=10).status_code == 200
    locked = session.get(api(sim, SEARCH), timeout=10)
    assert locked.status_code == 429
    assert locked.json()["error"]["reason"] == "QUOTA_EXCEEDED"
    assert "Retry-After" not in locked.headers


def test_quota_long_lock_reports_its_remaining_seconds(simulator_factory):
    sim = simulator_factory(quota={"artists": 2}, quota_retry_after=86_400)
    session = api_session(sim)
    url = api(sim, f"/artists/{ARTIST_ID}")
    assert [session.get(url, timeout=10).status_code for _ in range(2)] == [200, 200]
    locked = session.get(url, timeout=10)
    assert locked.status_code == 429
    assert 86_390 <= int(locked.headers["Retry-After"]) <= 86_400


@pytest.mark.parametrize(("path", "bucket"), [
    (SEARCH, "search"),
    (f"/tracks/{TRACK_IDS[0]}", "tracks"),
    (f"/artists/{ARTIST_ID}", "artists"),
    (f"/albums/{ALBUM_ID}", "albums"),
    (f"/playlists/{OWNED_PLAYLIST_ID}", "playlists"),
    (f"/playlists/{OWNED_PLAYLIST_ID}/items", "playlists"),
    ("/me/playlists", "playlists"),
    ("/me", "user"),
])
def test_quota_bucket_of_each_endpoint(simulator_factory, path, bucket):
    sim = simulator_factory(quota={bucket: 1}, quota_retry_after=60)
    session = api_session(sim)
    assert session.get(api(sim, path), timeout=10).status_code == 200
    locked = session.get(api(sim, path), timeout=10)
    assert locked.status_code == 429
    assert locked.json()["error"]["reason"] == "QUOTA_EXCEEDED"
    assert [e.bucket for e in sim.requests(service="spotify")] == [bucket, bucket]


def test_playlist_endpoints_share_one_bucket(simulator_factory):
    sim = simulator_factory(quota={"playlists": 2}, quota_retry_after=60)
    session = api_session(sim)
    assert session.get(api(sim, "/me/playlists"), timeout=10).status_code == 200
    assert session.get(api(sim, f"/playlists/{OWNED_PLAYLIST_ID}"),
                       timeout=10).status_code == 200
    items = session.get(api(sim, f"/playlists/{OWNED_PLAYLIST_ID}/items"), timeout=10)
    assert items.status_code == 429
    assert session.get(api(sim, "/me"), timeout=10).status_code == 200   # user bucket


# ------------------------------------------------------------------------- rolling quota window
@pytest.fixture
def virtual_clock():
    """The process's quota clock (conftest's ``restore_quota_clock`` puts it back after the
    test)."""
    return clock


DAY = 86_400


def test_rolling_window_admits_size_refuses_next_and_reopens(simulator_factory, virtual_clock):
    sim = simulator_factory(bucket_size=3, quota_window=DAY)
    session = api_session(sim)
    # Three searches 100 s apart (virtual time): all admitted.
    statuses = []
    for step in (0, 100, 100):
        sim.advance_clock(step)
        statuses.append(session.get(api(sim, SEARCH), timeout=10).status_code)
    assert statuses == [200] * 3
    refused = session.get(api(sim, SEARCH), timeout=10)
    assert refused.status_code == 429
    assert refused.json() == {"error": {"status": 429, "message": "Too many requests",
                                        "reason": "QUOTA_EXCEEDED"}}
    # Until the oldest call (200 s ago) leaves the 86,400 s window.
    assert refused.headers["Retry-After"] == str(DAY - 200)
    assert sim.requests(service="spotify")[-1].fault == "quota"
    # Refusals are not counted: many more change nothing.
    for _ in range(5):
        assert session.get(api(sim, SEARCH), timeout=10).status_code == 429

    # One second short of the oldest leaving: still refused, one second to go.
    sim.advance_clock(DAY - 200 - 1)
    early = session.get(api(sim, SEARCH), timeout=10)
    assert (early.status_code, early.headers["Retry-After"]) == (429, "1")
    sim.advance_clock(1)
    # The oldest has left: exactly one call is admitted, then the next oldest sets the wait.
    assert session.get(api(sim, SEARCH), timeout=10).status_code == 200
    again = session.get(api(sim, SEARCH), timeout=10)
    assert again.status_code == 429
    assert again.headers["Retry-After"] == "100"
    sim.advance_clock(100)
    assert session.get(api(sim, SEARCH), timeout=10).status_code == 200


def test_rolling_window_one_bucket_exhausted_the_others_answer(simulator_factory,
                                                                virtual_clock):
    sim = simulator_factory(bucket_size=2, quota_window=DAY, quota={"artists": 1})
    session = api_session(sim)
    assert [session.get(api(sim, SEARCH), timeout=10).status_code
            for _ in range(3)] == [200, 200, 429]
    for path in (f"/tracks/{TRACK_IDS[0]}", f"/playlists/{OWNED_PLAYLIST_ID}",
                 "/me/playlists", "/me", f"/artists/{ARTIST_ID}", f"/albums/{ALBUM_ID}",
                 f"/albums/{ALBUM_ID}/tracks"):
        assert session.get(api(sim, path), timeout=10).status_code == 200, path
    # --quota overrides bucket_size; /artists/{id}/albums shares the artists bucket.
    shared = session.get(api(sim, f"/artists/{ARTIST_ID}/albums"), timeout=10)
    assert shared.status_code == 429
    assert shared.json()["error"]["reason"] == "QUOTA_EXCEEDED"
    # albums (/albums/{id} and /albums/{id}/tracks) is spent too, playlists too; search still.
    assert session.get(api(sim, f"/albums/{ALBUM_ID}"), timeout=10).status_code == 429
    assert session.get(api(sim, "/me/playlists"), timeout=10).status_code == 429
    assert session.get(api(sim, SEARCH), timeout=10).status_code == 429
    buckets = [e.bucket for e in sim.requests(service="spotify")]
    assert buckets[3:11] == ["tracks", "playlists", "playlists", "user", "artists",
                             "albums", "albums", "artists"]


def test_rolling_window_cuts_off_after_exactly_600(simulator_factory, virtual_clock):
    sim = simulator_factory(bucket_size=600, quota_window=DAY)
    session = api_session(sim)
    statuses = [session.get(api(sim, "/me"), timeout=10).status_code for _ in range(601)]
    assert statuses == [200] * 600 + [429]
    assert DAY - 60 <= int(session.get(api(sim, "/me"), timeout=10)
                           .headers["Retry-After"]) <= DAY
    assert session.get(api(sim, SEARCH), timeout=10).status_code == 200


def test_rolling_window_retry_after_can_be_omitted(simulator_factory, virtual_clock):
    sim = simulator_factory(bucket_size=1, quota_window=DAY, quota_send_retry_after=False)
    session = api_session(sim)
    assert session.get(api(sim, SEARCH), timeout=10).status_code == 200
    refused = session.get(api(sim, SEARCH), timeout=10)
    assert refused.status_code == 429
    assert refused.json()["error"]["reason"] == "QUOTA_EXCEEDED"
    assert "Retry-After" not in refused.headers


def test_without_bucket_size_nothing_is_refused(simulator_factory, virtual_clock):
    sim = simulator_factory(quota_window=DAY)
    session = api_session(sim)
    assert {session.get(api(sim, SEARCH), timeout=10).status_code for _ in range(30)} == {200}


def test_request_log_and_quota_read_the_shared_clock(simulator_factory, virtual_clock):
    sim = simulator_factory(bucket_size=1, quota_window=DAY)
    session = api_session(sim)
    assert session.get(api(sim, SEARCH), timeout=10).status_code == 200
    assert sim.advance_clock(3 * DAY) == pytest.approx(virtual_clock.offset())
    # The clock a crawl in this process reads moved too: the bucket is open again...
    assert session.get(api(sim, SEARCH), timeout=10).status_code == 200
    entries = sim.requests(service="spotify")
    # ...and the log's timestamps are virtual ones.
    assert entries[-1].t - entries[0].t == pytest.approx(3 * DAY, abs=30)
    assert entries[-1].t == pytest.approx(time.time() + virtual_clock.offset(), abs=30)


def test_rolling_quota_unit():
    quota = RollingQuota({"search": 2}, window=10)
    assert [quota.check("search", t) for t in (0.0, 0.5, 1.0)] == [0.0, 0.0, 9.0]
    assert quota.check("search", 9.2) == 1.0          # rounded up, at least one second
    assert quota.check("search", 10.0) == 0.0         # the call at 0 has left
    assert quota.check("search", 10.1) == 1.0         # the one at 0.5 leaves at 10.5
    assert quota.used("search", 10.1) == 2
    assert quota.check("tracks", 10.1) == 0.0         # a bucket without a size


def test_album_tracks_count_against_albums_unless_they_have_a_bucket_of_their_own():
    paths = ("/spotify/v1/albums/A1", "/spotify/v1/albums/A1/tracks",
             "/spotify/v1/artists/B2/albums", "/spotify/v1/me/playlists")
    assert [spotify_bucket(p) for p in paths] == ["albums", "albums", "artists", "playlists"]
    assert [spotify_bucket(p, album_tracks=True) for p in paths] \
        == ["albums", "album_tracks", "artists", "playlists"]


def test_config_bucket_sizes_and_validation():
    assert SimulatorConfig(bucket_size=600, quota={"search": 50}).bucket_sizes() == {
        "search": 50, "tracks": 600, "artists": 600, "albums": 600, "album_tracks": 600,
        "playlists": 600, "user": 600}
    assert SimulatorConfig().bucket_sizes() == {}
    with pytest.raises(ValueError, match="quota_window"):
        SimulatorConfig(quota_window=-1)
    with pytest.raises(ValueError, match="bucket sizes"):
        SimulatorConfig(bucket_size=-5)


# ------------------------------------------------------------------------- ReccoBeats limits
def test_recco_429_rate(simulator_factory):
    sim = simulator_factory(recco_429_rate=1.0)
    rejected = [requests.get(features_url(sim, i), headers=UA, timeout=10) for i in range(20)]
    assert {r.status_code for r in rejected} == {429}
    assert rejected[0].text == "Too Many Requests"
    assert rejected[0].headers["Content-Type"].startswith("text/plain")
    assert all(r.headers["Retry-After"].isdigit() and 1 <= int(r.headers["Retry-After"]) <= 3
               for r in rejected)
    assert {e.fault for e in sim.requests(service="reccobeats")} == {"recco 429"}
    # The Spotify API is not affected.
    assert api_session(sim).get(api(sim, f"/tracks/{TRACK_IDS[0]}"),
                                timeout=10).status_code == 200


def test_recco_429_rate_partial_and_retry_redraws(simulator_factory):
    sim = simulator_factory(recco_429_rate=0.5, fault_seed=3)
    statuses = [requests.get(features_url(sim, i), headers=UA, timeout=10).status_code
                for i in range(60)]
    assert set(statuses) == {200, 429}
    assert 10 <= statuses.count(429) <= 50
    retries = [requests.get(features_url(sim, 0), headers=UA, timeout=10).status_code
               for _ in range(20)]
    assert set(retries) == {200, 429}


def test_recco_rate_limit_window(simulator_factory):
    sim = simulator_factory(recco_rate_limit=3, rate_window=1)
    session = api_session(sim)
    first = time.monotonic()
    assert [requests.get(features_url(sim, i), headers=UA, timeout=10).status_code
            for i in range(3)] == [200] * 3
    # Spotify API requests are outside ReccoBeats' window.
    assert [session.get(api(sim, f"/tracks/{TRACK_IDS[i]}"), timeout=10).status_code
            for i in range(10)] == [200] * 10
    over = requests.get(features_url(sim, 3), headers=UA, timeout=10)
    assert over.status_code == 429
    assert over.text == "Too Many Requests"
    assert 1 <= int(over.headers["Retry-After"]) <= 3
    time.sleep(max(0.0, first + 1.2 - time.monotonic()))
    assert [requests.get(features_url(sim, i), headers=UA, timeout=10).status_code
            for i in range(4, 8)] == [200, 200, 200, 429]


def test_recco_without_limits_always_serves(simulator_factory):
    sim = simulator_factory()
    assert [requests.get(features_url(sim, i), headers=UA, timeout=10).status_code
            for i in range(40)] == [200] * 40


# ------------------------------------------------------------------------- server errors
def test_error_rate_share_and_statuses(simulator_factory):
    sim = simulator_factory(error_rate=0.3, fault_seed=11)
    token = sturdy_token(sim)
    responses = [requests.get(api(sim, f"/tracks/{id_}"), headers=bearer(token), timeout=10)
                 for id_ in TRACK_IDS[:200]]
    statuses = [r.status_code for r in responses]
    errors = [s for s in statuses if s != 200]
    assert set(errors) == SERVER_ERRORS
    assert 0.18 <= len(errors) / len(statuses) <= 0.42
    failed = next(r for r in responses if r.status_code != 200)
    assert failed.json()["error"]["status"] == failed.status_code
    logged = [e for e in sim.requests(service="spotify") if e.status != 200]
    assert {e.fault for e in logged} == {f"error {s}" for s in SERVER_ERRORS}
    # ReccoBeats gets them too, with a plain-text body.
    recco_statuses = [requests.get(features_url(sim, i), headers=UA, timeout=10)
                      for i in range(100)]
    recco_errors = [r for r in recco_statuses if r.status_code != 200]
    assert {r.status_code for r in recco_errors} <= SERVER_ERRORS
    assert 10 <= len(recco_errors) <= 50
    assert recco_errors[0].text == "upstream error"


def test_error_rate_zero_never_errors(simulator_factory):
    sim = simulator_factory(error_rate=0.0, fault_seed=11)
    assert set(track_statuses(sim, access_token(sim), TRACK_IDS[:200])) == {200}


def test_error_faults_are_reproducible_per_seed(simulator_factory):
    def run(seed: int) -> list[int]:
        sim = simulator_factory(error_rate=0.3, fault_seed=seed)
        token = sturdy_token(sim)
        spotify = track_statuses(sim, token, TRACK_IDS[:100])
        recco_ = [requests.get(features_url(sim, i), headers=UA, timeout=10).status_code
                  for i in range(50)]
        return spotify + recco_

    first, second, other = run(5), run(5), run(6)
    assert set(first) > {200}
    assert first == second
    assert first != other


def test_error_retry_of_same_url_gets_a_fresh_draw(simulator_factory):
    def attempts(seed: int) -> list[int]:
        sim = simulator_factory(error_rate=0.5, fault_seed=seed)
        token = sturdy_token(sim)
        return track_statuses(sim, token, [TRACK_IDS[0]] * 30)

    first = attempts(9)
    assert 200 in first
    assert set(first) & SERVER_ERRORS
    assert attempts(9) == first            # the n-th attempt at a URL is itself reproducible


# ------------------------------------------------------------------------- dropped connections
def test_drop_rate_closes_connections_without_response(simulator_factory, caplog):
    sim = simulator_factory(drop_rate=1.0)
    caplog.set_level(logging.DEBUG, logger="aiohttp")
    for url in (api(sim, f"/tracks/{TRACK_IDS[0]}"), features_url(sim, 0)):
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.get(url, headers=UA, timeout=10)
    with pytest.raises(requests.exceptions.ConnectionError):
        token_request(sim)
    log = sim.requests()
    assert [(e.service, e.fault, e.status) for e in log] == [
        ("spotify", "drop", 0), ("reccobeats", "drop", 0), ("accounts", "drop", 0)]
    # A planned drop is not a server bug: nothing is logged at ERROR level.
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_drop_rate_partial_then_a_retry_gets_through(simulator_factory):
    sim = simulator_factory(drop_rate=0.5, fault_seed=2)
    outcomes = []
    for _ in range(20):
        try:
            outcomes.append(requests.get(features_url(sim, 0), headers=UA,
                                         timeout=10).status_code)
        except requests.exceptions.ConnectionError:
            outcomes.append("drop")
    assert "drop" in outcomes
    assert 200 in outcomes
    assert [e.fault or e.status for e in sim.requests()] == outcomes


# ------------------------------------------------------------------------- slow responses
def test_slow_rate_delays_responses(simulator_factory):
    sim = simulator_factory(slow_rate=1.0, slow_seconds=0.5)
    started = time.monotonic()
    response = requests.get(features_url(sim, 0), headers=UA, timeout=10)
    assert response.status_code == 200
    assert time.monotonic() - started >= 0.5
    with pytest.raises(requests.exceptions.Timeout):
        requests.get(api(sim, f"/tracks/{TRACK_IDS[0]}"), headers=UA, timeout=0.2)


def test_no_slow_rate_is_fast(simulator_factory):
    sim = simulator_factory(slow_rate=0.0, slow_seconds=0.5)
    started = time.monotonic()
    for i in range(3):
        requests.get(features_url(sim, i), headers=UA, timeout=10)
    assert time.monotonic() - started < 0.5


# ------------------------------------------------------------------------- malformed bodies
def test_malformed_rate_truncates_json(simulator_factory):
    sim = simulator_factory(malformed_rate=1.0)
    response = requests.get(features_url(sim, 0), headers=UA, timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    with pytest.raises(ValueError):
        json.loads(response.content)
    # The token endpoint's JSON is hit as well.
    token = token_request(sim)
    assert token.status_code == 200
    with pytest.raises(ValueError):
        token.json()
    # Errors are never made malformed: only 200s are.
    bad = requests.get(recco(sim, "/audio-features"), headers=UA, timeout=10)
    assert bad.status_code == 400
    assert bad.json()["status"] == 4004
    assert {e.fault for e in sim.requests() if e.status == 200} == {"malformed"}


def test_malformed_rate_on_the_web_api(simulator_factory):
    sim = simulator_factory(malformed_rate=0.5, fault_seed=4)
    token = sturdy_token(sim)
    bodies = [requests.get(api(sim, f"/tracks/{id_}"), headers=bearer(token), timeout=10)
              for id_ in TRACK_IDS[:40]]
    assert {r.status_code for r in bodies} == {200}
    broken = 0
    for response in bodies:
        assert response.headers["Content-Type"].startswith("application/json")
        try:
            json.loads(response.content)
        except ValueError:
            broken += 1
    assert 5 <= broken <= 35
    logged = sim.requests(service="spotify")
    assert sum(e.fault == "malformed" for e in logged) == broken


# ------------------------------------------------------------------------- token expiry
def test_token_expire_every(simulator_factory):
    sim = simulator_factory(token_expire_every=3)
    token = access_token(sim)
    url = api(sim, f"/tracks/{TRACK_IDS[0]}")
    assert [requests.get(url, headers=bearer(token), timeout=10).status_code
            for _ in range(3)] == [200] * 3
    expired = requests.get(url, headers=bearer(token), timeout=10)
    assert expired.status_code == 401
    assert "invalid_token" in expired.headers["WWW-Authenticate"]
    assert expired.json()["error"]["status"] == 401
    # It stays dead; a fresh token works again, for its own three requests.
    assert requests.get(url, headers=bearer(token), timeout=10).status_code == 401
    fresh = access_token(sim)
    assert [requests.get(url, headers=bearer(fresh), timeout=10).status_code
            for _ in range(4)] == [200, 200, 200, 401]


def test_tokens_last_without_expire_every(simulator_factory):
    sim = simulator_factory(token_expire_every=0)
    session = api_session(sim)
    url = api(sim, f"/tracks/{TRACK_IDS[0]}")
    assert {session.get(url, timeout=10).status_code for _ in range(30)} == {200}


def test_access_token_ttl(simulator_factory):
    sim = simulator_factory(access_token_ttl=1)
    granted = token_request(sim).json()
    assert granted["expires_in"] == 1
    headers = bearer(granted["access_token"])
    url = api(sim, f"/tracks/{TRACK_IDS[0]}")
    assert requests.get(url, headers=headers, timeout=10).status_code == 200
    time.sleep(1.1)
    expired = requests.get(url, headers=headers, timeout=10)
    assert expired.status_code == 401
    assert "invalid_token" in expired.headers["WWW-Authenticate"]
    assert requests.get(url, headers=bearer(access_token(sim)), timeout=10).status_code == 200


# ------------------------------------------------------------------------- request log
def test_request_log_records_every_service(simulator_factory, tmp_path: Path):
    log_path = tmp_path / "requests.jsonl"
    sim = simulator_factory(request_log=str(log_path))
    token = access_token(sim)
    requests.get(api(sim, f"/tracks/{TRACK_IDS[0]}"), headers=bearer(token), timeout=10)
    requests.get(api(sim, "/tracks/zzz"), headers=bearer(token), timeout=10)
    requests.get(api(sim, "/me"), headers=UA, timeout=10)
    requests.get(api(sim, SEARCH), headers=bearer(token), timeout=10)
    requests.get(recco(sim, "/audio-features"), params={"ids": RECCO_IDS[0]}, headers=UA,
                 timeout=10)
    requests.get(recco(sim, "/audio-features"), headers=UA, timeout=10)
    requests.get(sim.accounts_base_url + "/authorize",
                 params={"client_id": sim.config.client_id, "response_type": "code",
                         "redirect_uri": "http://127.0.0.1:8888/callback"},
                 allow_redirects=False, timeout=10)

    expected = [
        ("accounts", "POST", "/accounts/api/token", "", 200, "accounts"),
        ("spotify", "GET", f"/spotify/v1/tracks/{TRACK_IDS[0]}", "", 200, "tracks"),
        ("spotify", "GET", "/spotify/v1/tracks/zzz", "", 400, "tracks"),
        ("spotify", "GET", "/spotify/v1/me", "", 401, "user"),
        ("spotify", "GET", "/spotify/v1/search", "q=run&type=track&limit=5", 200, "search"),
        ("reccobeats", "GET", "/reccobeats/v1/audio-features", f"ids={RECCO_IDS[0]}", 200,
         "reccobeats"),
        ("reccobeats", "GET", "/reccobeats/v1/audio-features", "", 400, "reccobeats"),
        ("accounts", "GET", "/accounts/authorize",
         f"client_id={sim.config.client_id}&response_type=code"
         "&redirect_uri=http://127.0.0.1:8888/callback", 302, "accounts"),
    ]
    log = sim.requests()
    assert [(e.service, e.method, e.path, e.query, e.status, e.bucket) for e in log] == expected
    assert {e.fault for e in log} == {""}
    times = [e.t for e in log]
    assert times == sorted(times)
    assert abs(times[-1] - time.time()) < 30
    assert [e.path for e in sim.requests(service="reccobeats")] == [
        "/reccobeats/v1/audio-features"] * 2
    assert len(sim.requests(since=5)) == 3

    # The admin route pages through the same log and is not logged itself.
    admin = f"{sim.origin}/_sim/requests"
    page = requests.get(admin, params={"since": 0}, timeout=10).json()
    assert page["requests"] == [e.as_dict() for e in log]
    assert page["next"] == len(expected)
    tail = requests.get(admin, params={"since": 5}, timeout=10).json()
    assert tail["requests"] == [e.as_dict() for e in log[5:]]
    assert tail["next"] == len(expected)
    empty = requests.get(admin, params={"since": tail["next"]}, timeout=10).json()
    assert empty == {"requests": [], "next": len(expected)}
    assert requests.get(admin, timeout=10).json()["next"] == len(expected)
    requests.get(features_url(sim, 1), headers=UA, timeout=10)
    newer = requests.get(admin, params={"since": empty["next"]}, timeout=10).json()
    assert [r["path"] for r in newer["requests"]] == ["/reccobeats/v1/audio-features"]
    assert newer["next"] == len(expected) + 1

    # The JSONL file holds one line per request, written as they happen.
    lines = log_path.read_text().splitlines()
    assert [json.loads(line) for line in lines] == [e.as_dict() for e in sim.requests()]
    sim.stop()
    assert len(log_path.read_text().splitlines()) == len(expected) + 1


def test_request_log_records_faults(simulator_factory, tmp_path: Path):
    log_path = tmp_path / "faults.jsonl"
    sim = simulator_factory(request_log=str(log_path), rate_limit=1, rate_window=30)
    session = api_session(sim)
    session.get(api(sim, f"/tracks/{TRACK_IDS[0]}"), timeout=10)
    session.get(api(sim, f"/tracks/{TRACK_IDS[1]}"), timeout=10)
    rows = [json.loads(line) for line in log_path.read_text().splitlines()]
    assert [(r["service"], r["status"], r["fault"]) for r in rows] == [
        ("accounts", 200, ""), ("spotify", 200, ""), ("spotify", 429, "rate limit")]
