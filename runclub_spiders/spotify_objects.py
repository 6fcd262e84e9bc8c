"""Turning Spotify JSON into store records, tolerating what the real API sends.

Search pages and playlist items carry ``null`` entries, episodes, local files, objects with
missing or mistyped fields, oversized or odd strings. Nothing here raises on bad input: a
parser returns ``(None, reason)`` for what it skips and ``(record, note)`` for what it keeps
(``note`` None, or the repair made); :class:`PageTracks` counts both per page.

What counts as bad, decided once here:

* **Required fields** of a track: a base-62 ``id``, a non-empty ``name``, a positive integer
  ``duration_ms``, a boolean ``explicit`` (the app filters on it, so a missing or mistyped flag
  is not guessed to be False), an ``album`` object and an ``artists`` list with at least one
  artist that has an id and a name. Anything else is optional: a mistyped optional field
  becomes None, it never skips the track. Integers must be real ints (not bools, strings or
  floats) within SQLite's range; a boolean must be a real bool.
* **Text** (:func:`clean_text`): control characters (C0/C1, NUL included), lone surrogates,
  noncharacters and the bidi embeddings, overrides and isolates (U+202A-U+202E,
  U+2066-U+2069, which reorder the text around them) are dropped; other format characters
  are dropped too except those real titles need: ZWJ/ZWNJ (emoji sequences, Indic and
  Persian scripts), LRM/RLM/ALM (harmless direction marks in Hebrew and Arabic titles) and
  the tag characters of subdivision flags. Whitespace runs become one space. Emoji, RTL
  scripts and every other printable character are kept as sent. Text is capped at
  :data:`MAX_TEXT` characters (real track titles, long classical ones included, stay well
  under it): a longer string is cut at a character boundary that does not split a combining
  mark or an emoji sequence and ends in "…".
* **Repairs** are reported to the caller: a kept record comes back as ``(record, note)``
  where ``note`` is ``"truncated_text"`` when a name was cut or ``"control_chars"`` when
  characters were dropped (else None), so the crawler can count them without skipping.
* **Identifiers, codes and URLs** are matched whole (``fullmatch``: a trailing newline does
  not pass); a URL must be ``https://`` printable ASCII of at most 500 characters.
* **Paging** (:func:`paging`): ``total`` must be a non-negative int; a huge one is capped at
  :data:`MAX_TOTAL` (the planner never pages past offset 1,000 whatever it says). ``next`` is
  returned as sent, for logging only: the crawler computes its own offsets and never follows
  a URL the API hands it.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from runclub_spiders.store import TrackRecord

SPOTIFY_ID = re.compile(r"[0-9A-Za-z]{22}")
ISRC = re.compile(r"[A-Z]{2}[A-Z0-9]{3}\d{7}")
RELEASE_DATE = re.compile(r"\d{4}(-\d{2}(-\d{2})?)?")
MARKET = re.compile(r"[A-Z]{2}")
URL = re.compile(r"https://[\x21-\x7e]{1,492}")
TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z")
TOKEN = re.compile(r"[\x21-\x7e]{1,200}")
MAX_TEXT = 500                 # characters of a name (track, album, artist, playlist)
MAX_INT = 2**31 - 1            # durations, positions: far above any real value, fits SQLite
MAX_TOTAL = 10**9              # a paging total above this is nonsense; capped, not trusted
ELLIPSIS = "\u2026"

# Format characters (category Cf) real titles need; every other Cf character is dropped.
KEPT_FORMAT = frozenset("\u200c\u200d\u200e\u200f\u061c") | frozenset(
    chr(c) for c in range(0xE0020, 0xE0080))
# What may not end a cut string: it would join or modify the "…" appended after it.
JOINERS = frozenset("\u200c\u200d\u200e\u200f\u061c")


def _dropped(ch: str) -> bool:
    """Is ``ch`` a character no display string should carry?"""
    category = unicodedata.category(ch)
    if category in ("Cc", "Cs"):
        return True                      # controls (NUL, ESC, C1...), lone surrogates
    if category == "Cf":
        return ch not in KEPT_FORMAT     # bidi overrides/isolates, BOM, soft hyphen...
    code = ord(ch)
    return 0xFDD0 <= code <= 0xFDEF or (code & 0xFFFE) == 0xFFFE     # noncharacters


def clean(value: Any, limit: int = MAX_TEXT) -> tuple[str | None, str | None]:
    """``(text, note)``: the display string (None when nothing is left) and what was repaired.

    ``note`` is ``"truncated_text"`` when the text was cut to ``limit``, else
    ``"control_chars"`` when characters were dropped, else None. Whitespace runs (tabs and
    newlines included) become single spaces without counting as a repair.
    """
    if not isinstance(value, str):
        return None, None
    dropped = False
    kept = []
    for ch in value:
        if ch.isspace():
            kept.append(" ")
        elif _dropped(ch):
            dropped = True
        else:
            kept.append(ch)
    text = " ".join("".join(kept).split())
    if len(text) > limit:
        cut = limit - 1
        # Do not split a base character from its combining marks, nor an emoji sequence.
        while cut > 0 and (unicodedata.combining(text[cut]) or text[cut] in JOINERS
                           or text[cut] == "\ufe0f" or text[cut - 1] in JOINERS
                           or 0x1F3FB <= ord(text[cut]) <= 0x1F3FF
                           or 0xE0020 <= ord(text[cut]) <= 0xE007F):
            cut -= 1
        return (text[:cut].rstrip() + ELLIPSIS) or None, "truncated_text"
    return text or None, "control_chars" if dropped else None


def clean_text(value: Any, limit: int = MAX_TEXT) -> str | None:
    """A display string (see :func:`clean`), or None for a non-string or nothing left."""
    return clean(value, limit)[0]


def _int(value: Any, low: int = 0, high: int = MAX_INT) -> int | None:
    """A real int (not a bool, float or numeric string) within ``[low, high]``, else None."""
    if isinstance(value, int) and not isinstance(value, bool) and low <= value <= high:
        return value
    return None


def _spotify_id(value: Any) -> str | None:
    return value if isinstance(value, str) and SPOTIFY_ID.fullmatch(value) else None


def artist_ids(items: list[Any]) -> list[tuple[str, int]]:
    """``(artist ID, position)`` of a page of artist objects (a search's ``artists``),
    skipping nulls and objects without a valid ID."""
    return [(artist_id, position) for position, obj in enumerate(items)
            if isinstance(obj, dict) and (artist_id := _spotify_id(obj.get("id")))]


def _url(value: Any) -> str | None:
    return value if isinstance(value, str) and URL.fullmatch(value) else None


def timestamp(value: Any) -> str | None:
    """An ISO 8601 UTC timestamp as Spotify sends them (``added_at``), else None."""
    return value if isinstance(value, str) and TIMESTAMP.fullmatch(value) else None


def token(value: Any) -> str | None:
    """An opaque identifier (``snapshot_id``, a user id): 1-200 printable ASCII characters.

    Anything else is None: a lone surrogate in such a string would make SQLite raise.
    """
    return value if isinstance(value, str) and TOKEN.fullmatch(value) else None


def _image(obj: Any) -> str | None:
    images = obj.get("images") if isinstance(obj, dict) else None
    if isinstance(images, list):
        for image in images:
            url = _url(image.get("url")) if isinstance(image, dict) else None
            if url:
                return url
    return None


def _worse(note: str | None, other: str | None) -> str | None:
    """The note to report when a record had several repairs: truncation wins."""
    return "truncated_text" if "truncated_text" in (note, other) else note or other


def parse_track(obj: Any) -> tuple[TrackRecord | None, str | None]:
    """A full TrackObject (search item or playlist item) as a record, or why it was skipped.

    ``(None, reason)`` for a skipped object; ``(record, note)`` for a kept one, ``note`` being
    None or what :func:`clean` repaired in its names (``truncated_text``, ``control_chars``).
    """
    if obj is None:
        return None, "null"
    if not isinstance(obj, dict):
        return None, "not_an_object"
    if obj.get("type", "track") != "track":
        return None, "not_a_track"            # episodes among playlist items
    uri = obj.get("uri")
    if obj.get("is_local") or (isinstance(uri, str) and uri.startswith("spotify:local:")):
        # Real local files often say is_local only on the playlist row, not in the object.
        return None, "local_file"
    track_id = _spotify_id(obj.get("id"))
    if track_id is None:
        return None, "bad_id"
    name, note = clean(obj.get("name"))
    if name is None:
        return None, "bad_name"
    duration = _int(obj.get("duration_ms"), low=1)
    if duration is None:
        return None, "bad_duration"
    explicit = obj.get("explicit")
    if not isinstance(explicit, bool):
        return None, "bad_explicit"
    album = obj.get("album")
    if not isinstance(album, dict):
        return None, "bad_album"
    artists = obj.get("artists")
    artist_ids: list[str] = []
    artist_names: list[str] = []
    for artist in artists if isinstance(artists, list) else []:
        if not isinstance(artist, dict):
            continue
        artist_id = _spotify_id(artist.get("id"))
        artist_name, artist_note = clean(artist.get("name"))
        if artist_id and artist_name and artist_id not in artist_ids:
            artist_ids.append(artist_id)
            artist_names.append(artist_name)
            note = _worse(note, artist_note)
    if not artist_ids:
        return None, "no_artist"
    album_name, album_note = clean(album.get("name"))
    note = _worse(note, album_note)
    release_date = album.get("release_date")
    if not (isinstance(release_date, str) and RELEASE_DATE.fullmatch(release_date)):
        release_date = None
    precision = album.get("release_date_precision")
    external_ids = obj.get("external_ids") if isinstance(obj.get("external_ids"), dict) else {}
    isrc = external_ids.get("isrc")
    isrc = isrc.upper().replace("-", "") if isinstance(isrc, str) else None
    if isrc is not None and not ISRC.fullmatch(isrc):
        isrc = None
    playable = obj.get("is_playable")
    markets = obj.get("available_markets")
    if isinstance(markets, list):
        markets = tuple(sorted({m for m in markets if isinstance(m, str) and MARKET.fullmatch(m)}))
    else:
        markets = None
    popularity = _int(obj.get("popularity"), high=100)
    album_type = album.get("album_type")
    # Older real payloads (recommendations, some relinked tracks) spell it "ALBUM", "SINGLE".
    album_type = album_type.lower() if isinstance(album_type, str) else None
    return TrackRecord(
        id=track_id, name=name, isrc=isrc, duration_ms=duration, explicit=explicit,
        album_id=_spotify_id(album.get("id")),
        album_name=album_name or "",
        album_type=album_type if album_type in ("album", "single", "compilation") else None,
        release_date=release_date,
        release_precision=precision if precision in ("year", "month", "day") else None,
        album_image_url=_image(album),
        artist_ids=tuple(artist_ids), artist_names=tuple(artist_names),
        is_playable=playable if isinstance(playable, bool) else None,
        available_markets=markets,
        popularity=popularity,
        preview_url=_url(obj.get("preview_url")),
        track_number=_int(obj.get("track_number")), disc_number=_int(obj.get("disc_number")),
    ), note


class PageTracks:
    """:func:`parse_track` over the items of one page, every skip and repair counted.

    ``track(obj)`` gives the record to keep or None; ``stats`` (a Scrapy stats collector) gets
    ``discovery/skipped/<reason>`` for each skip, ``discovery/skipped/duplicate`` for a track
    already kept from the same page, and ``discovery/repaired/<note>`` for a kept track whose
    names were cut or cleaned. One instance per page.
    """

    def __init__(self, stats: Any) -> None:
        self.stats = stats
        self.seen: set[str] = set()

    def track(self, obj: Any) -> TrackRecord | None:
        record, note = parse_track(obj)
        if record is None:
            self.stats.inc_value(f"discovery/skipped/{note}")
            return None
        if record.id in self.seen:
            self.stats.inc_value("discovery/skipped/duplicate")
            return None
        self.seen.add(record.id)
        if note:
            self.stats.inc_value(f"discovery/repaired/{note}")
        return record


def paging(body: Any, key: str | None = None) -> tuple[list[Any], int | None, str | None]:
    """(items, total, next URL) of a paging object, tolerating nonsense.

    ``total`` is None unless a non-negative int, and capped at :data:`MAX_TOTAL`. ``next`` is
    for logging only: the crawler computes offsets itself and never requests a URL the API
    gave it (a ``next`` pointing at another host goes nowhere).
    """
    page = body.get(key) if key and isinstance(body, dict) else body
    if not isinstance(page, dict):
        return [], None, None
    items = page.get("items") if isinstance(page.get("items"), list) else []
    raw = page.get("total")
    valid = isinstance(raw, int) and not isinstance(raw, bool) and raw >= 0
    total = min(raw, MAX_TOTAL) if valid else None
    following = page.get("next") if isinstance(page.get("next"), str) else None
    return items, total, following


def playlist_items_total(obj: dict[str, Any]) -> int | None:
    """How many items a simplified playlist says it holds: ``items.total`` since the 2026
    rename, ``tracks.total`` in bodies from before it (and from apps still served the old
    name); None when neither is a count."""
    for key in ("items", "tracks"):
        ref = obj.get(key)
        if isinstance(ref, dict):
            total = _int(ref.get("total"))
            if total is not None:
                return total
    return None


def artist_details(body: Any, ids: tuple[str, ...]
                   ) -> list[tuple[str, list[str], int | None]]:
    """``(id, genres, popularity)`` for each asked artist, from ``/artists?ids=`` (a list under
    ``artists``) or ``/artists/{id}`` (one object); an artist missing from the answer gets no
    genres and no popularity, so it is not asked again."""
    objects = body.get("artists") if isinstance(body, dict) and "artists" in body else [body]
    by_id = {o["id"]: o for o in objects or [] if isinstance(o, dict)
             and isinstance(o.get("id"), str)}
    details = []
    for artist_id in ids:
        obj = by_id.get(artist_id, {})
        genres = obj.get("genres")
        popularity = obj.get("popularity")
        details.append((artist_id,
                        [g for g in genres if isinstance(g, str)] if isinstance(genres, list)
                        else [],
                        popularity if isinstance(popularity, int) else None))
    return details


@dataclass(frozen=True, slots=True)
class AlbumRef:
    """What a (simplified) album object says that album expansion needs."""

    id: str
    name: str
    album_type: str | None            # album | single | compilation (None: unknown)
    release_date: str | None
    release_precision: str | None
    total_tracks: int | None
    artist_id: str | None             # the first album artist
    image_url: str | None

    def as_album_object(self) -> dict[str, Any]:
        """The ``album`` a simplified track lacks, for :func:`parse_track`."""
        return {"id": self.id, "name": self.name, "album_type": self.album_type,
                "release_date": self.release_date,
                "release_date_precision": self.release_precision,
                "images": [{"url": self.image_url}] if self.image_url else []}


def album_ref(obj: Any) -> AlbumRef | None:
    """An album object (the ``album`` of a track, an item of ``/artists/{id}/albums``, or
    the body of ``/albums/{id}``) as an :class:`AlbumRef`; None when it has no valid ID."""
    if not isinstance(obj, dict):
        return None
    album_id = _spotify_id(obj.get("id"))
    if album_id is None:
        return None
    album_type = obj.get("album_type")
    album_type = album_type.lower() if isinstance(album_type, str) else None
    release_date = obj.get("release_date")
    if not (isinstance(release_date, str) and RELEASE_DATE.fullmatch(release_date)):
        release_date = None
    precision = obj.get("release_date_precision")
    artists = obj.get("artists") if isinstance(obj.get("artists"), list) else []
    first = artists[0] if artists and isinstance(artists[0], dict) else {}
    return AlbumRef(
        id=album_id, name=clean_text(obj.get("name")) or "",
        album_type=album_type if album_type in ("album", "single", "compilation") else None,
        release_date=release_date,
        release_precision=precision if precision in ("year", "month", "day") else None,
        total_tracks=_int(obj.get("total_tracks"), high=10_000),
        artist_id=_spotify_id(first.get("id")), image_url=_image(obj))
