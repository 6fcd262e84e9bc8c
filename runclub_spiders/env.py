"""Environment variables the project reads, their defaults, and ``.env`` loading.

Every external address is a setting that can also come from the environment under the same
name. Secrets (client secret, refresh token) are read from the environment by the components
that need them and are never copied into Scrapy settings, so ``scrapy settings`` and crawl
logs cannot show them.
"""

from __future__ import annotations

import os
from pathlib import Path

from dotenv import load_dotenv

# name -> (default, one-line description); .env.example and the README table follow this.
ADDRESSES: dict[str, tuple[str, str]] = {
    "SPOTIFY_API_BASE_URL": ("https://api.spotify.com/v1", "Spotify Web API base URL"),
    "SPOTIFY_ACCOUNTS_BASE_URL": ("https://accounts.spotify.com",
                                  "Spotify Accounts service (authorize and token endpoints)"),
    "RECCOBEATS_BASE_URL": ("https://api.reccobeats.com/v1", "ReccoBeats API base URL"),
    "SPOTIFY_MARKET": ("US", "primary market, ISO 3166-1 alpha-2, for playability"),
    "SPOTIFY_API_PROFILE": ("development",
                            "development (Feb 2026 Development Mode rules) or extended"),
    "WIKIDATA_SPARQL_URL": ("https://query.wikidata.org/sparql",
                            "Wikidata SPARQL endpoint (artist genres; CC0)"),
    "MUSICBRAINZ_BASE_URL": ("https://musicbrainz.org",
                             "MusicBrainz root; its web service is <root>/ws/2 (original "
                             "years; CC0)"),
    "MUSICBRAINZ_CONTACT": ("", "your email or URL for MusicBrainz's User-Agent rule; "
                                "MusicBrainz is off while it is empty"),
}
SECRETS: dict[str, str] = {
    "SPOTIFY_CLIENT_ID": "your app's Client ID (developer dashboard)",
    "SPOTIFY_CLIENT_SECRET": "your app's Client Secret; never commit it",
    "SPOTIFY_REFRESH_TOKEN": "overrides the token file that `scrapy spotify-auth` writes",
    "SPOTIFY_REDIRECT_URI": "must be http://127.0.0.1:PORT/... and registered for the app",
    "RECCOBEATS_API_KEY": "optional; sent only when set (ReccoBeats needs no key today)",
}


def load_env_file(path: str | os.PathLike[str] = ".env") -> bool:
    """Load ``path`` into the environment without overriding variables already set."""
    return load_dotenv(Path(path), override=False) if Path(path).is_file() else False


def env(name: str) -> str:
    """The environment's value for one of ``ADDRESSES``, or its default when unset or blank."""
    value = os.environ.get(name, "").strip()
    return value or ADDRESSES[name][0]
