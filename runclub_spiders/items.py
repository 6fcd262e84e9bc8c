"""Items that flow through the pipeline chain.

A ``CandidateItem`` is a track the spider found (or found pending in the store on resume). The
store already holds its full record; the item carries what the cheap filters need so they run
without a store lookup, and the pipelines record their verdicts in the store.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runclub_spiders.store import TrackRecord


@dataclass
class CandidateItem:
    id: str                              # Spotify track ID
    isrc: str | None
    duration_ms: int
    is_playable: bool | None             # None: unknown (no market in the request)
    artist_ids: list[str] = field(default_factory=list)
    source: str = "search"               # search | playlist | store (resumed)
    query: str | None = None             # the seed query that found it, if any
    playlist_id: str | None = None
    # Set by the pipelines:
    rejected: str | None = None          # why the cheap filters set it aside (not exported)
    features: dict[str, float | int] | None = None
    enrichment: str | None = None        # done | miss | error | skipped

    @classmethod
    def from_record(cls, record: TrackRecord, *, source: str, query: str | None = None,
                    playlist_id: str | None = None) -> CandidateItem:
        """A track just found on a page."""
        return cls(id=record.id, isrc=record.isrc, duration_ms=record.duration_ms,
                   is_playable=record.is_playable, artist_ids=list(record.artist_ids),
                   source=source, query=query, playlist_id=playlist_id)

    @classmethod
    def from_row(cls, row: Any, *, source: str) -> CandidateItem:
        """A track the store holds (a ``tracks`` row), e.g. still pending on resume."""
        playable = row["is_playable"]
        return cls(id=row["id"], isrc=row["isrc"], duration_ms=row["duration_ms"],
                   is_playable=None if playable is None else bool(playable),
                   artist_ids=json.loads(row["artist_ids"]), source=source,
                   query=row["first_query"], playlist_id=row["first_playlist_id"])
