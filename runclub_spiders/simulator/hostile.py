"""Hostile data: the ``hostile_rate`` knob corrupts what search and playlist-item pages carry.

Each track on a ``/search`` tracks page or a ``/playlists/{id}/items`` page is corrupted with
probability ``hostile_rate``, and each such page gets a lying ``total`` and a ``next`` on
another host with the same probability. The draws come from ``fault_seed`` and the request
(method and path with query), not from the attempt: a bad record is bad data, so asking again
serves the same corruption. The kinds a response carries are recorded in the request log
(``LoggedRequest.hostile``, ``fault == "hostile"``), so a test can compare what was served
with what the crawler counted. At rate 0 nothing is drawn and every body is as before.
"""

from __future__ import annotations

import copy
import hashlib
from typing import Any

from aiohttp import web

# Where a handler leaves the kinds it applied, for the request log.
HOSTILE_KEY = web.RequestKey("runclub_hostile", list[str])

LONG_NAME = 5_000
HUGE_TOTAL = 10**12
FOREIGN_HOST = "http://evil.example.com"
# Odd but valid text around a real name: RLM, RLO (flips what follows), a ZWJ emoji sequence,
# NUL, a C1 control, a BOM and a lone surrogate (JSON carries it as "\ud800").
ODD_PREFIX = "\u200f\u202e"
ODD_SUFFIX = " \U0001f3c3\u200d\u2640\ufe0f\x00\x85\ufeff\ud800"

# Per-track corruptions and the ``discovery/skipped/<reason>`` each must end in, None for
# those the crawler repairs and keeps (``discovery/repaired/<note>`` instead).
TRACK_KINDS: dict[str, str | None] = {
    "long_name": None,                  # a 5,000-character name: cut, "truncated_text"
    "odd_unicode": None,                # controls and overrides dropped, "control_chars"
    "missing_id": "bad_id",
    "missing_artists": "no_artist",
    "missing_album": "bad_album",
    "missing_duration": "bad_duration",
    "duration_string": "bad_duration",  # "abc"
    "artists_dict": "no_artist",        # an object where a list belongs
    "explicit_string": "bad_explicit",  # "yes"
    "duplicate": "duplicate",           # a copy of an earlier track on the same page
}
REPAIR_NOTES = {"long_name": "truncated_text", "odd_unicode": "control_chars"}
PAGE_KINDS = ("huge_total", "foreign_next")
KINDS = (*TRACK_KINDS, *PAGE_KINDS)


class HostilePlan:
    """Reproducible corruption of one page: the same request always gets the same damage."""

    def __init__(self, seed: int, rate: float) -> None:
        self.seed, self.rate = seed, rate

    def draw(self, what: str, key: str) -> float:
        digest = hashlib.blake2b(f"{self.seed}|hostile|{what}|{key}".encode(),
                                 digest_size=8).digest()
        return int.from_bytes(digest, "big") / 2**64

    def corrupt_page(self, page: dict[str, Any], key: str, *, rows: bool) -> list[str]:
        """Corrupt a paging object in place; returns the kinds applied, in item order.

        ``rows``: the items are playlist rows (``{"item": track, "track": track}``) rather
        than tracks.
        """
        if self.rate <= 0:
            return []
        items: list[Any] = page.get("items") or []
        pristine = [copy.deepcopy(item) for item in items]
        applied: list[str] = []
        kept: list[int] = []            # earlier positions the crawler keeps: duplicable
        for i, item in enumerate(items):
            track = _track_of(item, rows)
            if track is None:
                continue                # null items, episodes, local files: already odd
            if self.draw(f"item:{i}", key) >= self.rate:
                kept.append(i)
                continue
            kinds = list(TRACK_KINDS)
            kind = kinds[int(self.draw(f"kind:{i}", key) * len(kinds))]
            if kind == "duplicate":
                if not kept:
                    kept.append(i)      # nothing earlier to copy: served clean
                    continue
                source = kept[int(self.draw(f"source:{i}", key) * len(kept))]
                items[i] = copy.deepcopy(pristine[source])
            else:
                _damage(track, kind)
                if TRACK_KINDS[kind] is None:
                    kept.append(i)
            applied.append(kind)
        if self.draw("total", key) < self.rate:
            page["total"] = HUGE_TOTAL
            applied.append("huge_total")
        if self.draw("next", key) < self.rate:
            page["next"] = f"{FOREIGN_HOST}/v1/steal?offset={page.get('offset', 0)}"
            applied.append("foreign_next")
        return applied


def _track_of(item: Any, rows: bool) -> dict[str, Any] | None:
    track = (item.get("item") or item.get("track")) if rows and isinstance(item, dict) \
        else item
    if (isinstance(track, dict) and track.get("type") == "track" and not track.get("is_local")
            and track.get("id")):
        return track
    return None


def _damage(track: dict[str, Any], kind: str) -> None:
    """Corrupt one track object in place (a playlist row's ``track`` alias is the same dict)."""
    if kind == "long_name":
        track["name"] = (track["name"] + " " + "x" * LONG_NAME)[:LONG_NAME]
    elif kind == "odd_unicode":
        track["name"] = ODD_PREFIX + track["name"] + ODD_SUFFIX
    elif kind == "missing_id":
        del track["id"]
    elif kind == "missing_artists":
        del track["artists"]
    elif kind == "missing_album":
        del track["album"]
    elif kind == "missing_duration":
        del track["duration_ms"]
    elif kind == "duration_string":
        track["duration_ms"] = "abc"
    elif kind == "artists_dict":
        track["artists"] = track["artists"][0]
    elif kind == "explicit_string":
        track["explicit"] = "yes"
    else:
        raise ValueError(f"unknown hostile kind {kind!r}")
