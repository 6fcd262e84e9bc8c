"""The one rule that picks, among tracks sharing an ISRC, the one the catalog keeps.

Spotify lists one recording (one ISRC) under several track IDs: the original album, singles,
compilations, remasters. The catalog keeps one. Three stages ask which, each with what it
knows, and all three answer with :func:`isrc_rank`:

* planning, at discovery (``Store.claim_isrc_count``): of the tracks sharing an ISRC only
  the winner counts toward the planner's cells; a newcomer that wins displaces the holder;
* the cheap filter, before enrichment (``CheapFilterPipeline``): a track that loses to one
  stored before it is not sent to ReccoBeats (``duplicate_isrc``); a newcomer that beats a
  track already enriched is enriched all the same;
* the export (``catalog.selection.dedupe``): one track per ISRC among those that passed the
  export's filters.

The rule: **the earliest album year wins, then the smallest Spotify ID**; a track whose album
has no year comes after every dated one. Both are in every track object, so each stage
knows them (popularity comes only with the extended profile, features only after
enrichment), and neither changes when a track is seen again: the winner among given
competitors is the same whatever order they were found in, so an interrupted and resumed
crawl decides alike. The earliest album is the original release rather than a later
compilation or remaster, and its date is nearest the recording's year, which decides the
catalog's decade (``catalog.years``).

Not in the rule: popularity (the brief allows "most popular", but Spotify gives none in
Development Mode and it drifts between sightings), the order tracks were found in (it
depends on how requests interleave), and features (known only after the filter decides).

Who competes differs by stage only in what each can know: at discovery and in the cheap
filter, the tracks with the ISRC stored up to this one whose stored duration and playability
pass the cheap filters (``Store.isrc_competitors``: what was stored later cannot change a
verdict, so a resumed run judges a pending track alike); in the export, every track that
passed the export's filters. So the winner overall is never set aside and always holds the
planning count, and the export keeps it. Tracks without an ISRC are not concerned (the
export's title dedupe handles them).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from runclub_spiders.catalog.years import release_year

NO_YEAR = 10_000                    # an album without a year ranks after every dated one


def isrc_rank(track_id: str, album_year: int | None) -> tuple[int, str]:
    """The ordering key of the one ISRC rule: of tracks sharing an ISRC, the lowest wins."""
    return (album_year if album_year is not None else NO_YEAR, track_id)


def isrc_winner(contenders: Iterable[tuple[str, int | None]]) -> str | None:
    """The ID of the winner among ``(track ID, album year)`` pairs; None when there are none."""
    best = min(contenders, key=lambda c: isrc_rank(*c), default=None)
    return None if best is None else best[0]


def stored_contenders(rows: Iterable[Mapping]) -> list[tuple[str, int | None]]:
    """``(track ID, album year)`` of store rows that have ``id`` and ``release_date``."""
    return [(row["id"], release_year(row["release_date"])) for row in rows]


def isrc_wins(track_id: str, rows: Iterable[Mapping]) -> bool:
    """Does ``track_id`` win among the stored competitors ``rows`` (it may be among them)?
    True when there are none; False when it is not among them but others are (a track the
    store does not hold cannot be ranked, and the ones it holds stay)."""
    winner = isrc_winner(stored_contenders(rows))
    return winner is None or winner == track_id
