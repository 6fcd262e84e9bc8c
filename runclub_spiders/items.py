"""Items that flow through the pipeline chain.

A ``CandidateItem`` is a track the spider found (or found pending in the store on resume). The
store already holds its full record; the item carries what the cheap filters need so they run
without a store lookup, and the pipelines record their verdicts in the store.
"""

from __future__ import annotations

from dataclasses import dataclass, field


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
