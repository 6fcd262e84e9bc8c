"""The items of the ``catalog_export`` spider: exported rows as their JSON lines.

One ``TrackExport`` per exported track carries its three rows (``catalog_wide``,
``cached_tracks`` and, when ReccoBeats knew the track, ``audio_features``); one
``ArtistExport`` per artist its ``cached_artists`` row. Each feed in ``FEEDS`` takes one item
class and writes one attribute (``export/feeds.py``), so the scraper handles one item per
track instead of three. The lines are serialised once (``exporters.json_line``), on the
build's worker thread (``ExportBuild.batches``): the ``.jsonl`` and ``.jsonl.gz`` feeds of a
file write the same bytes.

An item's ``repr`` is its Spotify ID only: Scrapy logs every item at DEBUG ("Scraped from"),
and a row's full text there would add some 100 MB to a 40,000-track export's DEBUG log.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True, frozen=True, repr=False)
class TrackExport:
    id: str                       # Spotify track ID
    wide: bytes                   # catalog_wide.jsonl line
    track: bytes                  # cached_tracks.jsonl line
    features: bytes | None        # audio_features.jsonl line; None: no row for this track

    def __repr__(self) -> str:
        return f"<TrackExport {self.id}>"


@dataclass(slots=True, frozen=True, repr=False)
class ArtistExport:
    id: str                       # Spotify artist ID
    artist: bytes                 # cached_artists.jsonl line

    def __repr__(self) -> str:
        return f"<ArtistExport {self.id}>"
