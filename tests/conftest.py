"""Shared fixtures: simulators on loopback, started in-process on their own thread.

Catalogs are cached per (size, seed) because building one is the slow part; a test that edits
playlists should ask ``simulator_factory`` for ``fresh_catalog=True``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import cache
from typing import Any

import pytest
import requests

from runclub_spiders.simulator import Catalog, Simulator

SMALL = 3000  # tracks: enough for every shape, quick to build


@cache
def cached_catalog(size: int = SMALL, seed: int = 1) -> Catalog:
    return Catalog(size, seed)


@pytest.fixture
def simulator_factory() -> Iterator[Callable[..., Simulator]]:
    started: list[Simulator] = []

    def start(fresh_catalog: bool = False, **overrides: Any) -> Simulator:
        overrides.setdefault("size", SMALL)
        catalog = None
        if not fresh_catalog and overrides.get("playlist_extras", True):
            catalog = cached_catalog(overrides["size"], overrides.get("seed", 1))
        simulator = Simulator(catalog=catalog, **overrides).start()
        started.append(simulator)
        return simulator

    yield start
    for simulator in started:
        simulator.stop()


@pytest.fixture
def dev_sim(simulator_factory) -> Simulator:
    return simulator_factory(profile="development")


@pytest.fixture
def ext_sim(simulator_factory) -> Simulator:
    return simulator_factory(profile="extended")


def access_token(simulator: Simulator) -> str:
    env = simulator.env()
    response = requests.post(f"{env['SPOTIFY_ACCOUNTS_BASE_URL']}/api/token",
                             data={"grant_type": "refresh_token",
                                   "refresh_token": env["SPOTIFY_REFRESH_TOKEN"]},
                             auth=(env["SPOTIFY_CLIENT_ID"], env["SPOTIFY_CLIENT_SECRET"]),
                             timeout=10)
    response.raise_for_status()
    return response.json()["access_token"]


def api_session(simulator: Simulator) -> requests.Session:
    """A blocking session with a fresh access token for the simulator's Spotify API."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {access_token(simulator)}"
    session.headers["User-Agent"] = "runclub-spiders tests"
    return session
