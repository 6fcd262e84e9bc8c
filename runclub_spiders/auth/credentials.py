"""Spotify app credentials from the environment (and the token file), checked up front."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from runclub_spiders.auth.tokens import TokenFile, TokenFileError


class CredentialsError(Exception):
    """Credentials are missing or unusable; the message is one line that says how to fix it."""


@dataclass(frozen=True)
class SpotifyCredentials:
    client_id: str
    client_secret: str = field(repr=False)
    refresh_token: str = field(repr=False)
    refresh_token_source: str = ""        # "SPOTIFY_REFRESH_TOKEN" or the token file's path


def load_credentials(token_file: str | os.PathLike[str]) -> SpotifyCredentials:
    client_id = os.environ.get("SPOTIFY_CLIENT_ID", "").strip()
    client_secret = os.environ.get("SPOTIFY_CLIENT_SECRET", "").strip()
    refresh_token = os.environ.get("SPOTIFY_REFRESH_TOKEN", "").strip()
    source = "SPOTIFY_REFRESH_TOKEN"
    if not refresh_token:
        try:
            refresh_token = TokenFile(token_file).refresh_token() or ""
        except TokenFileError as exc:
            raise CredentialsError(str(exc)) from None
        source = str(token_file)
    missing = [name for name, value in (("SPOTIFY_CLIENT_ID", client_id),
                                        ("SPOTIFY_CLIENT_SECRET", client_secret)) if not value]
    if not refresh_token:
        missing.append(f"a refresh token (SPOTIFY_REFRESH_TOKEN, or {Path(token_file)} "
                       f"written by `scrapy spotify-auth`)")
    if missing:
        raise CredentialsError(
            f"missing {', '.join(missing)}: set them in the environment or .env (see "
            f".env.example), or run `make demo` for an offline run against the simulator")
    return SpotifyCredentials(client_id, client_secret, refresh_token, source)
