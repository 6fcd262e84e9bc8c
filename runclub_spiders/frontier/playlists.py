"""Which listed playlists are worth reading, and from which offset.

Development Mode answers 404 for Spotify's editorial playlists and 403 for the items of other
users' playlists, so those are never asked; a playlist whose ``snapshot_id`` is the one last
read completely is unchanged and skipped; a half-read one resumes where it stopped, and a
changed one is re-read from its tail only (Spotify appends new items at the end).
"""

from __future__ import annotations

from typing import Any

from runclub_spiders.frontier.work import PLAYLIST_ITEMS, Work
from runclub_spiders.spotify_objects import clean_text, playlist_items_total, token
from runclub_spiders.store import Store

EDITORIAL_PREFIX = "37i9dQZ"
PLAYLIST_PAGE = 50


def consider_playlist(obj: Any, *, store: Store, stats, user_id: str | None, extended: bool,
                      owner_phase: bool, now: str) -> Work | None:
    """Register a listed playlist in the store; the work of reading it, when worth it."""
    if not isinstance(obj, dict) or not isinstance(obj.get("id"), str):
        stats.inc_value("playlists/skipped/null")
        return None
    playlist_id = obj["id"]
    owner = obj.get("owner") if isinstance(obj.get("owner"), dict) else {}
    editorial = playlist_id.startswith(EDITORIAL_PREFIX) or owner.get("id") == "spotify"
    if editorial and not extended:
        stats.inc_value("playlists/skipped/editorial")
        return None
    mine = owner.get("id") == user_id or obj.get("collaborative") is True
    if not (mine or extended):
        stats.inc_value("playlists/skipped/not_owned")
        return None
    snapshot = token(obj.get("snapshot_id"))
    previous = store.playlist(playlist_id)
    store.see_playlist(playlist_id, owner=clean_text(owner.get("id")),
                       name=clean_text(obj.get("name")), snapshot_id=snapshot,
                       items_total=playlist_items_total(obj), now=now)
    if previous is not None and snapshot and previous["last_snapshot_processed"] == snapshot:
        stats.inc_value("playlists/unchanged")
        return None
    start = 0
    if previous is not None and previous["next_offset"]:
        start = max(0, previous["next_offset"] - PLAYLIST_PAGE) \
            if previous["last_snapshot_processed"] else previous["next_offset"]
    stats.inc_value("playlists/read")
    return Work(PLAYLIST_ITEMS, offset=start, playlist_id=playlist_id, snapshot=snapshot,
                owner=owner_phase)
