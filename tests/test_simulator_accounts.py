"""Behaviour of the simulator's Spotify Accounts service: /authorize, /api/token, bearer checks."""

from __future__ import annotations

import base64
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from runclub_spiders.simulator import Simulator
from tests.conftest import access_token

REDIRECT = "http://127.0.0.1:8888/callback"


def authorize(sim: Simulator, **overrides) -> requests.Response:
    params = {"client_id": sim.config.client_id, "response_type": "code",
              "redirect_uri": REDIRECT, "state": "st4te-xyz",
              "scope": "playlist-read-private playlist-read-collaborative"}
    params.update(overrides)
    params = {k: v for k, v in params.items() if v is not None}
    return requests.get(f"{sim.accounts_base_url}/authorize", params=params,
                        allow_redirects=False, timeout=10)


def code_for(sim: Simulator, redirect_uri: str = REDIRECT) -> str:
    response = authorize(sim, redirect_uri=redirect_uri)
    assert response.status_code == 302, response.text
    return parse_qs(urlsplit(response.headers["Location"]).query)["code"][0]


def token(sim: Simulator, form: dict[str, str], auth: tuple[str, str] | None = None,
          **kwargs) -> requests.Response:
    if auth is None:
        auth = (sim.config.client_id, sim.config.client_secret)
    return requests.post(f"{sim.accounts_base_url}/api/token", data=form, auth=auth,
                         timeout=10, **kwargs)


def refresh(sim: Simulator, refresh_token: str) -> requests.Response:
    return token(sim, {"grant_type": "refresh_token", "refresh_token": refresh_token})


def me(sim: Simulator, bearer: str | None) -> requests.Response:
    headers = {"Authorization": f"Bearer {bearer}"} if bearer is not None else {}
    return requests.get(f"{sim.spotify_api_base_url}/me", headers=headers, timeout=10)


def assert_oauth_error(response: requests.Response, code: str) -> None:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error"] == code
    assert isinstance(body["error_description"], str)
    assert body["error_description"]


# ---------------------------------------------------------------- /authorize
@pytest.mark.parametrize("redirect_uri", ["http://127.0.0.1:8888/callback",
                                          "http://127.0.0.1:43123/cb?from=cli",
                                          "http://[::1]:8888/callback",
                                          "https://example.org/callback"])
def test_authorize_redirects_with_code_and_state(dev_sim, redirect_uri):
    response = authorize(dev_sim, redirect_uri=redirect_uri)
    assert response.status_code == 302
    location = response.headers["Location"]
    parts = urlsplit(location)
    base = urlsplit(redirect_uri)
    assert (parts.scheme, parts.netloc, parts.path) == (base.scheme, base.netloc, base.path)
    query = parse_qs(parts.query)
    assert query["state"] == ["st4te-xyz"]
    assert len(query["code"]) == 1
    assert len(query["code"][0]) >= 16
    for key, values in parse_qs(base.query).items():
        assert query[key] == values                         # the URI's own query survives


def test_authorize_codes_are_unique(dev_sim):
    assert len({code_for(dev_sim) for _ in range(5)}) == 5


@pytest.mark.parametrize("redirect_uri", ["http://localhost:8888/callback",
                                          "http://example.org/callback",
                                          "http://192.168.1.20:8888/callback",
                                          "ftp://127.0.0.1/callback", "not a uri", ""])
def test_authorize_rejects_non_loopback_http_redirects(dev_sim, redirect_uri):
    response = authorize(dev_sim, redirect_uri=redirect_uri)
    assert response.status_code == 400
    assert "Location" not in response.headers


def test_authorize_rejects_wrong_client_and_response_type(dev_sim):
    for overrides in ({"client_id": "someoneelse0000000000000000000000"},
                      {"client_id": None}, {"response_type": "token"},
                      {"response_type": None}):
        response = authorize(dev_sim, **overrides)
        assert response.status_code == 400, overrides
        assert "Location" not in response.headers


# ---------------------------------------------------------------- authorization_code grant
def test_code_exchange_returns_tokens_that_open_the_api(dev_sim):
    code = code_for(dev_sim)
    response = token(dev_sim, {"grant_type": "authorization_code", "code": code,
                               "redirect_uri": REDIRECT})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == dev_sim.config.access_token_ttl
    assert "playlist-read-private" in body["scope"].split()
    assert body["access_token"]
    assert body["refresh_token"]
    assert body["refresh_token"] != dev_sim.config.refresh_token
    assert me(dev_sim, body["access_token"]).status_code == 200
    # the new refresh token works on its own
    again = refresh(dev_sim, body["refresh_token"])
    assert again.status_code == 200
    assert me(dev_sim, again.json()["access_token"]).status_code == 200
    # and the Basic header is really what authenticated the client
    raw = base64.b64encode(f"{dev_sim.config.client_id}:nope".encode()).decode()
    bad = requests.post(f"{dev_sim.accounts_base_url}/api/token",
                        data={"grant_type": "authorization_code", "code": code_for(dev_sim),
                              "redirect_uri": REDIRECT},
                        headers={"Authorization": f"Basic {raw}"}, timeout=10)
    assert_oauth_error(bad, "invalid_client")


def test_code_is_single_use(dev_sim):
    form = {"grant_type": "authorization_code", "code": code_for(dev_sim),
            "redirect_uri": REDIRECT}
    assert token(dev_sim, form).status_code == 200
    assert_oauth_error(token(dev_sim, form), "invalid_grant")


def test_code_exchange_with_other_redirect_uri_is_invalid_grant(dev_sim):
    code = code_for(dev_sim)
    response = token(dev_sim, {"grant_type": "authorization_code", "code": code,
                               "redirect_uri": "http://127.0.0.1:9999/callback"})
    assert_oauth_error(response, "invalid_grant")


def test_unknown_code_and_unknown_grant_type(dev_sim):
    assert_oauth_error(token(dev_sim, {"grant_type": "authorization_code", "code": "made-up",
                                       "redirect_uri": REDIRECT}), "invalid_grant")
    assert_oauth_error(token(dev_sim, {"grant_type": "client_credentials"}),
                       "unsupported_grant_type")


# ---------------------------------------------------------------- refresh_token grant
def test_refresh_grant_without_rotation_keeps_the_refresh_token(dev_sim):
    first = refresh(dev_sim, dev_sim.config.refresh_token)
    assert first.status_code == 200
    body = first.json()
    assert "refresh_token" not in body                    # "continue using the existing one"
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    second = refresh(dev_sim, dev_sim.config.refresh_token)
    assert second.status_code == 200
    assert second.json()["access_token"] != body["access_token"]
    assert me(dev_sim, body["access_token"]).status_code == 200
    assert me(dev_sim, second.json()["access_token"]).status_code == 200


def test_bad_client_credentials_are_invalid_client(dev_sim):
    form = {"grant_type": "refresh_token", "refresh_token": dev_sim.config.refresh_token}
    for auth in ((dev_sim.config.client_id, "wrong-secret"),
                 ("someoneelse0000000000000000000000", dev_sim.config.client_secret)):
        response = token(dev_sim, form, auth=auth)
        assert response.status_code == 400
        assert response.json() == {"error": "invalid_client",
                                   "error_description": "Invalid client"}
    no_auth = requests.post(f"{dev_sim.accounts_base_url}/api/token", data=form, timeout=10)
    assert_oauth_error(no_auth, "invalid_client")


def test_unknown_refresh_token_is_invalid_grant(dev_sim):
    assert_oauth_error(refresh(dev_sim, "AQ-not-a-token"), "invalid_grant")
    assert_oauth_error(refresh(dev_sim, ""), "invalid_grant")


def test_rotation_returns_a_new_refresh_token_and_retires_the_old(simulator_factory):
    sim = simulator_factory(rotate_refresh_tokens=True)
    first = refresh(sim, sim.config.refresh_token)
    assert first.status_code == 200
    rotated = first.json()["refresh_token"]
    assert rotated != sim.config.refresh_token
    assert_oauth_error(refresh(sim, sim.config.refresh_token), "invalid_grant")
    second = refresh(sim, rotated)
    assert second.status_code == 200
    assert second.json()["refresh_token"] not in (rotated, sim.config.refresh_token)
    assert_oauth_error(refresh(sim, rotated), "invalid_grant")


def test_revoke_kills_refresh_tokens_but_not_issued_access_tokens(dev_sim):
    bearer = access_token(dev_sim)
    assert refresh(dev_sim, dev_sim.config.refresh_token).status_code == 200
    response = requests.post(f"{dev_sim.origin}/_sim/tokens/revoke", timeout=10)
    assert response.status_code == 200
    assert_oauth_error(refresh(dev_sim, dev_sim.config.refresh_token), "invalid_grant")
    assert me(dev_sim, bearer).status_code == 200
    # a fresh login still works after the revocation
    code = code_for(dev_sim)
    login = token(dev_sim, {"grant_type": "authorization_code", "code": code,
                            "redirect_uri": REDIRECT})
    assert login.status_code == 200
    assert refresh(dev_sim, login.json()["refresh_token"]).status_code == 200


# ---------------------------------------------------------------- bearer checks on the API
@pytest.mark.parametrize(("bearer", "code"), [(None, "invalid_request"),
                                              ("", "invalid_request"),     # "Bearer " alone
                                              ("BQ-made-up-token", "invalid_token")])
def test_api_without_a_valid_token_is_401(dev_sim, bearer, code):
    response = me(dev_sim, bearer)
    assert response.status_code == 401
    body = response.json()
    assert body["error"]["status"] == 401
    assert body["error"]["message"]
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer ")
    assert 'realm="spotify"' in challenge
    assert f'error="{code}"' in challenge


def test_basic_auth_header_on_the_api_is_401(dev_sim):
    response = requests.get(f"{dev_sim.spotify_api_base_url}/me",
                            auth=(dev_sim.config.client_id, dev_sim.config.client_secret),
                            timeout=10)
    assert response.status_code == 401
    assert "WWW-Authenticate" in response.headers


def test_tokens_are_per_simulator(simulator_factory):
    one, two = simulator_factory(), simulator_factory()
    bearer = access_token(one)
    assert me(one, bearer).status_code == 200
    assert me(two, bearer).status_code == 401
