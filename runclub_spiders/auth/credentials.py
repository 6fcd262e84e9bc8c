"""Spotify app credentials from the environment (and the token file), checked up front.

The refresh token comes from ``SPOTIFY_REFRESH_TOKEN`` or, when that is unset, from the token
file. Spotify may rotate it on any refresh, killing the old one at once; the crawl then
writes the new one to the token file with the fingerprints of the tokens it replaces
(:meth:`TokenFile.write`). A later start whose ``SPOTIFY_REFRESH_TOKEN`` is one of those (the
``.env`` was not edited, as it need not be) is handed the file's token instead: the same
command keeps working after any number of rotations. Any other ``SPOTIFY_REFRESH_TOKEN`` (a
new login, another account) wins over the file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from runclub_spiders.auth.tokens import TokenFile, TokenFileError, fingerprint


class CredentialsError(Exception):
    """Credentials are missing or unusable; the message is one line that says how to fix it."""


@dataclass(frozen=True)
class SpotifyCredentials:
    client_id: str
    client_secret: str = field(repr=False)
    refresh_token: str = field(repr=False)
    refresh_token_source: str = ""        # "SPOTIFY_REFRESH_TOKEN" or the token file's path
    # Fingerprints of the tokens this one replaced, oldest first (from the token file).
    replaces: tuple[str, ...] = ()
    # The fingerprint of a SPOTIFY_REFRESH_TOKEN that was replaced by the file's token.
    handed_over_from: str = ""


def load_credentials(token_file: str | os.PathLike[str]) -> SpotifyCredentials:
    client_id = os.environ.get("SPOTIFY_CLIENT_ID", "").strip()
    client_secret = os.environ.get("SPOTIFY_CLIENT_SECRET", "").strip()
    refresh_token = os.environ.get("SPOTIFY_REFRESH_TOKEN", "").strip()
    source, replaces, handed_over_from = "SPOTIFY_REFRESH_TOKEN", (), ""
    try:
        record = TokenFile(token_file).read()
    except TokenFileError as exc:
        if not refresh_token:
            raise CredentialsError(str(exc)) from None
        record = None           # the variable is used; a rotation rewrites the file whole
    if record is not None:
        listed = record.get("replaces")
        known = tuple(f for f in listed if isinstance(f, str)) if isinstance(listed, list) \
            else ()
        if not refresh_token or (fingerprint(refresh_token) in known
                                 and record["refresh_token"] != refresh_token):
            handed_over_from = fingerprint(refresh_token) if refresh_token else ""
            refresh_token, source, replaces = record["refresh_token"], str(token_file), known
    missing = [name for name, value in (("SPOTIFY_CLIENT_ID", client_id),
                                        ("SPOTIFY_CLIENT_SECRET", client_secret)) if not value]
    if not refresh_token:
        missing.append(f"a refresh token (SPOTIFY_REFRESH_TOKEN, or {Path(token_file)} "
                       f"written by `scrapy spotify-auth`)")
    if missing:
        raise CredentialsError(
            f"missing {', '.join(missing)}: set them in the environment or .env (see "
            f".env.example), or run `make demo` for an offline run against the simulator")
    return SpotifyCredentials(client_id, client_secret, refresh_token, source, replaces,
                              handed_over_from)
