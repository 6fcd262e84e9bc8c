"""Which service and quota bucket a request belongs to, from the configured base URLs.

Download slots are keyed by service, not by the URL's host, so that Spotify's API, its
Accounts service and ReccoBeats throttle independently even when all three are one simulator
on 127.0.0.1. The slot keys are the real hostnames, so ``DOWNLOAD_SLOTS`` reads naturally.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from scrapy.settings import BaseSettings

SPOTIFY_API, SPOTIFY_ACCOUNTS, RECCOBEATS = "api.spotify.com", "accounts.spotify.com", \
    "api.reccobeats.com"
# Spotify's quota buckets as far as anyone has observed them (docs/simulator.md, "Rate
# limits and quotas"); ReccoBeats is tracked like one so its long 429s park it the same way.
BUCKETS = ("search", "tracks", "artists", "albums", "playlists", "user", "reccobeats")


@dataclass(frozen=True, slots=True)
class Target:
    slot: str               # download slot key
    bucket: str | None      # quota bucket, None for the accounts service


def spotify_bucket(path: str) -> str:
    """The quota bucket of a Web API path relative to the API base (``/search``...)."""
    parts = path.strip("/").split("/")
    if parts[0] == "me":
        return "playlists" if len(parts) > 1 and parts[1] == "playlists" else "user"
    return parts[0] if parts[0] in BUCKETS else "user"


class ServiceMap:
    def __init__(self, settings: BaseSettings) -> None:
        self.api = settings["SPOTIFY_API_BASE_URL"].rstrip("/")
        self.accounts = settings["SPOTIFY_ACCOUNTS_BASE_URL"].rstrip("/")
        self.recco = settings["RECCOBEATS_BASE_URL"].rstrip("/")

    def target(self, url: str) -> Target | None:
        if url.startswith(self.api + "/"):
            return Target(SPOTIFY_API, spotify_bucket(urlsplit(url[len(self.api):]).path))
        if url.startswith(self.recco + "/"):
            return Target(RECCOBEATS, "reccobeats")
        if url.startswith(self.accounts + "/"):
            return Target(SPOTIFY_ACCOUNTS, None)
        return None

    def is_spotify_api(self, url: str) -> bool:
        return url.startswith(self.api + "/")

    @property
    def token_url(self) -> str:
        return f"{self.accounts}/api/token"
