"""Turning Spotify JSON into store records, tolerating what the real API sends.

Search pages and playlist items carry ``null`` entries, episodes, local files, objects with
missing or mistyped fields, oversized or odd strings. Nothing here raises on bad input: a
parser returns ``(record, None)`` or ``(None, reason)`` and the caller counts the reason.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from runclub_spiders.store import TrackRecord

SPOTIFY_ID = re.compile(r"^[0-9A-Za-z]{22}$")
ISRC = re.compile(r"^[A-Z]{2}[A-Z0-9]{3}\d{7}$")
RELEASE_DATE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")
MARKET = re.compile(r"^[A-Z]{2}$")
MAX_TEXT = 300


def clean_text(value: Any, limit: int = MAX_TEXT) -> str | None:
    """A display string: control characters (NUL, RTL marks...) dropped, length capped."""
    if not isinstance(value, str):
        return None
    text = "".join(ch for ch in value if unicodedata.category(ch)[0] != "C")
    text = " ".join(text.split())
    return text[:limit] or None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _spotify_id(value: Any) -> str | None:
    return value if isinstance(value, str) and SPOTIFY_ID.match(value) else None


def _image(obj: Any) -> str | None:
    images = obj.get("images") if isinstance(obj, dict) else None
    if isinstance(images, list):
        for image in images:
            if isinstance(image, dict) and isinstance(image.get("url"), str) and \
                    image["url"].startswith("https://"):
                return image["url"][:500]
    return None


def parse_track(obj: Any) -> tuple[TrackRecord | None, str | None]:
    """A full TrackObject (search item or playlist item) as a record, or why it was skipped."""
    if obj is None:
        return None, "null"
    if not isinstance(obj, dict):
        return None, "not_an_object"
    if obj.get("type", "track") != "track":
        return None, "not_a_track"            # episodes among playlist items
    if obj.get("is_local"):
        return None, "local_file"
    track_id = _spotify_id(obj.get("id"))
    if track_id is None:
        return None, "bad_id"
    name = clean_text(obj.get("name"))
    duration = _int(obj.get("duration_ms"))
    if name is None or duration is None or duration <= 0:
        return None, "missing_fields"
    album = obj.get("album") if isinstance(obj.get("album"), dict) else {}
    artists = [a for a in obj.get("artists") or [] if isinstance(a, dict)]
    artist_ids, artist_names = [], []
    for artist in artists:
        artist_id, artist_name = _spotify_id(artist.get("id")), clean_text(artist.get("name"))
        if artist_id and artist_name and artist_id not in artist_ids:
            artist_ids.append(artist_id)
            artist_names.append(artist_name)
    if not artist_ids:
        return None, "no_artist"
    release_date = album.get("release_date")
    if not (isinstance(release_date, str) and RELEASE_DATE.match(release_date)):
        release_date = None
    precision = album.get("release_date_precision")
    external_ids = obj.get("external_ids") if isinstance(obj.get("external_ids"), dict) else {}
    isrc = external_ids.get("isrc")
    isrc = isrc.upper().replace("-", "") if isinstance(isrc, str) else None
    if isrc is not None and not ISRC.match(isrc):
        isrc = None
    playable = obj.get("is_playable")
    markets = obj.get("available_markets")
    if isinstance(markets, list):
        markets = tuple(sorted({m for m in markets if isinstance(m, str) and MARKET.match(m)}))
    else:
        markets = None
    preview = obj.get("preview_url")
    popularity = _int(obj.get("popularity"))
    return TrackRecord(
        id=track_id, name=name, isrc=isrc, duration_ms=duration,
        explicit=obj.get("explicit") is True,
        album_id=_spotify_id(album.get("id")),
        album_name=clean_text(album.get("name")) or "",
        album_type=album.get("album_type") if album.get("album_type") in (
            "album", "single", "compilation") else None,
        release_date=release_date,
        release_precision=precision if precision in ("year", "month", "day") else None,
        album_image_url=_image(album),
        artist_ids=tuple(artist_ids), artist_names=tuple(artist_names),
        is_playable=playable if isinstance(playable, bool) else None,
        available_markets=markets,
        popularity=popularity if popularity is not None and 0 <= popularity <= 100 else None,
        preview_url=preview[:500] if isinstance(preview, str) and preview.startswith(
            "https://") else None,
        track_number=_int(obj.get("track_number")), disc_number=_int(obj.get("disc_number")),
    ), None


def paging(body: Any, key: str | None = None) -> tuple[list[Any], int | None, str | None]:
    """(items, total, next URL) of a paging object, tolerating nonsense."""
    page = body.get(key) if key and isinstance(body, dict) else body
    if not isinstance(page, dict):
        return [], None, None
    items = page.get("items") if isinstance(page.get("items"), list) else []
    total = _int(page.get("total"))
    following = page.get("next") if isinstance(page.get("next"), str) else None
    return items, total, following
