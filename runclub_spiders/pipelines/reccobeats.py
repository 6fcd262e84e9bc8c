"""ReccoBeats' answers, read without side effects (``enrichment.py`` does the asking and storing).

ReccoBeats keys rows by its own UUID and returns them in no fixed order, so a row is joined
back to the Spotify ID asked through its ``href`` only (``open.spotify.com/track/<22 chars>``).
It says nothing about an ID it has no row for: an ID asked with no row joined is a miss.
``/audio-features`` rows carry the features; ``/track`` rows carry popularity and
``availableCountries``, and only give the outcomes their countries.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from runclub_spiders.store import FEATURE_FIELDS

if TYPE_CHECKING:
    from scrapy.http import Response

SPOTIFY_HREF = re.compile(r"open\.spotify\.com/(track|artist|album)/([A-Za-z0-9]{22})"
                          r"(?![A-Za-z0-9])")
# Every request to ReccoBeats: robots.txt is not ReccoBeats' API contract, and an HTTP cache
# would write the API key header to disk with the request.
REQUEST_META = {"dont_obey_robotstxt": True, "dont_cache": True}
COUNTRY = re.compile(r"^[A-Z]{2}$")
SIZE_ERROR = "size must be between"
FEATURES, TRACKS = "audio-features", "track"
INTEGER_FEATURES = {"key", "mode"}

Rows = dict[str, dict[str, Any]]                # ReccoBeats rows by the Spotify ID they join to
Fetched = tuple[Rows, set[str]]                 # rows, and the IDs whose request failed


@dataclass(slots=True)
class Outcome:
    state: str                                  # done | miss | error
    features: dict[str, Any] | None = None
    countries: list[str] | None = None          # from /track, when it was asked and known


ERROR = Outcome("error")


@dataclass(slots=True)
class BatchAnswer:
    """What the answers to one batch say, before anything is stored."""
    tracks: dict[str, tuple[int | None, list[str] | None]]   # /track: popularity, countries
    features: Rows                              # clean feature rows of the ``done`` IDs
    outcomes: dict[str, Outcome]                # every ID asked, in the order asked


def spotify_id(href: Any, kind: str = "track") -> str | None:
    """The Spotify ID in an ``open.spotify.com/{kind}/{id}`` link (ReccoBeats' only join
    to Spotify, for tracks, artists and albums alike), or None."""
    match = SPOTIFY_HREF.search(href) if isinstance(href, str) else None
    return match.group(2) if match and match.group(1) == kind else None


def spotify_id_of(row: Any) -> str | None:
    """The Spotify track ID inside a ReccoBeats row's ``href``, or None."""
    return spotify_id(row.get("href") if isinstance(row, dict) else None)


def request_headers() -> dict[str, str]:
    """JSON, and ``RECCOBEATS_API_KEY`` when the owner has one (the key is optional)."""
    headers = {"Accept": "application/json"}
    key = os.environ.get("RECCOBEATS_API_KEY", "").strip()
    if key:
        headers["x-api-key"] = key
    return headers


def _number(value: Any) -> float | int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value if math.isfinite(value) else None


def clean_features(row: dict[str, Any]) -> dict[str, Any]:
    """A feature row as the store takes it: numbers or None, ``tempo`` 0 as unknown."""
    clean: dict[str, Any] = {}
    for name in FEATURE_FIELDS:
        value = _number(row.get(name))
        if name in INTEGER_FEATURES and value is not None:
            value = int(value) if float(value).is_integer() else None
        clean[name] = value
    if clean["tempo"] is not None and clean["tempo"] <= 0:
        clean["tempo"] = None
    recco_id, isrc = row.get("id"), row.get("isrc")
    clean["id"] = recco_id if isinstance(recco_id, str) else None
    clean["isrc"] = isrc if isinstance(isrc, str) else None
    return clean


def parse_countries(value: Any) -> list[str] | None:
    """``availableCountries``: a comma-separated string (or a list) of ISO codes."""
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list):
        return None
    codes = {c.strip().upper() for c in value if isinstance(c, str)}
    return sorted(c for c in codes if COUNTRY.match(c))


def stored_countries(row: Any) -> list[str] | None:
    """``recco_countries`` of a stored track (a JSON list), or None when never fetched."""
    if row is None or row["recco_countries"] is None:
        return None
    try:
        return parse_countries(json.loads(row["recco_countries"]))
    except ValueError:
        return None


def is_size_error(response: Response) -> bool:
    """The 400 ReccoBeats gives a batch it finds too large."""
    return response.status == 400 and SIZE_ERROR in _text(response)


def content_of(response: Response) -> list[Any] | str:
    """The rows of an answer (``{"content": [...]}``), or why it has none."""
    if response.status != 200:
        return f"HTTP {response.status}"
    try:
        body = response.json()  # type: ignore[attr-defined]
    except (AttributeError, ValueError):
        body = None
    content = body.get("content") if isinstance(body, dict) else None
    if not isinstance(content, list):
        return "a body without a 'content' list"
    return content


def join_rows(content: list[Any], ids: list[str]) -> tuple[Rows, Counter[str]]:
    """The rows of ``content`` by the asked ID their ``href`` names, first row wins; and the
    rows left out, counted as ``stray_rows`` (no ID, or one not asked) or ``duplicate_rows``."""
    asked, rows, ignored = set(ids), {}, Counter[str]()
    for row in content:
        track_id = spotify_id_of(row)
        if track_id is None or track_id not in asked:
            ignored["stray_rows"] += 1
        elif track_id in rows:
            ignored["duplicate_rows"] += 1
        else:
            rows[track_id] = row
    return rows, ignored


def track_info(row: dict[str, Any]) -> tuple[int | None, list[str] | None]:
    """A ``/track`` row's popularity (0..100) and countries, each None when unusable."""
    popularity = row.get("popularity")
    if isinstance(popularity, bool) or not isinstance(popularity, int) \
            or not 0 <= popularity <= 100:
        popularity = None
    return popularity, parse_countries(row.get("availableCountries"))


def read_batch(ids: list[str], features: Fetched, tracks: Fetched | None = None
               ) -> BatchAnswer:
    """Each ID's outcome: ``error`` if its features request failed, ``done`` with a row,
    ``miss`` without one (ReccoBeats omits what it does not know). A failed ``/track``
    request only leaves the countries out."""
    rows, failed = features
    info = {track_id: track_info(row) for track_id, row in (tracks[0] if tracks else {}).items()}
    clean_rows: Rows = {}
    outcomes: dict[str, Outcome] = {}
    for track_id in ids:
        countries = info[track_id][1] if track_id in info else None
        if track_id in failed:
            outcomes[track_id] = Outcome("error", None, countries)
        elif track_id in rows:
            clean = clean_rows[track_id] = clean_features(rows[track_id])
            outcomes[track_id] = Outcome(
                "done", {f: clean[f] for f in FEATURE_FIELDS}, countries)
        else:
            outcomes[track_id] = Outcome("miss", None, countries)
    return BatchAnswer(info, clean_rows, outcomes)


def _text(response: Response) -> str:
    try:
        return response.text  # type: ignore[attr-defined]
    except AttributeError:
        return response.body.decode("utf-8", "replace")
