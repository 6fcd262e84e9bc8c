"""The exported row shapes: one dataclass per file, fields in file order.

These are the contract with the RunClub app (the owner's brief, "Outputs" and
"Splitter"): ``CachedTrackRow``, ``AudioFeatureRow`` and ``CachedArtistRow`` carry the
SwiftData models' camelCase fields exactly, plus ingestion-only fields prefixed with ``_``
that the app's importer ignores. ``CatalogWideRow`` is the canonical snake_case row with
every field the brief lists and an ``_extra`` object. ``schemas/`` holds the same shapes as
JSON Schemas; ``scrapy validate-export`` checks files against them.

Each feed in ``FEEDS`` writes one of these shapes, serialised to its JSON line by
``exporters.json_line``; the export spider's items carry those lines (``export/items.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class CatalogWideRow:
    """``catalog_wide.jsonl``: one exported track, denormalised, snake_case."""

    id: str                                   # UUID v5 of the Spotify track ID: stable
    spotify_track_id: str
    isrc: str | None
    name: str
    duration_ms: int
    explicit: bool
    album_name: str
    album_release_date: str | None            # as Spotify gives it: YYYY, YYYY-MM or date
    album_release_year: int | None            # the recording's first release (see _extra)
    album_decade_label: str | None            # "70s" ... "20s"
    album_image_url: str | None
    popularity_snapshot: int | None
    popularity_bucket: int | None
    available_us: bool
    available_primary_markets: list[str]
    preview_url: str | None
    artist_ids: list[str]                     # primary artist first
    artist_names: list[str]
    artist_genres: list[list[str]]            # normalised, per artist
    artist_image_urls: list[str | None] | None
    source_playlist_id: str | None
    source_playlist_name: str | None
    source_playlist_owner: str | None
    sources: list[dict[str, Any]]
    recco_track_id: str | None
    recco_features_version: str | None
    recco_features_at: str | None
    tempo: float | None
    energy: float | None
    danceability: float | None
    valence: float | None
    loudness: float | None
    acousticness: float | None
    instrumentalness: float | None
    liveness: float | None
    speechiness: float | None
    key: int | None
    mode: int | None
    time_signature: int | None                # no source provides it (manifest notes)
    created_at: str
    updated_at: str
    _extra: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class CachedTrackRow:
    """``cached_tracks.jsonl``: the app's ``CachedTrack``, then ``_`` ingestion fields."""

    id: str                                   # Spotify track ID
    name: str
    artistId: str
    artistName: str
    durationMs: int
    albumName: str
    albumReleaseYear: int | None
    popularity: int | None
    explicit: bool
    addedAt: str
    isPlayable: bool
    _ingestSource: str
    _ingestQuery: str | None
    _ingestPlaylistId: str | None
    _ingestDiscoveredAt: str
    _isrc: str | None
    _decade: str | None
    _umbrellas: list[str]
    _album_decade_label: str | None
    _preview_url: str | None
    _album_image_url: str | None
    _popularity_bucket: int | None
    _available_primary_markets: list[str]
    _source_playlist_id: str | None
    _source_playlist_name: str | None
    _source_playlist_owner: str | None
    _recco_features_version: str | None
    _recco_features_at: str | None
    _tempoBucket: int | None                  # tempo floored to 5 BPM
    _cadenceSpm: int | None                   # best running cadence, 150-190 steps/min
    _cadenceMatch: str | None                 # "1:1" (a step per beat) or "half_time" (two)


@dataclass(slots=True)
class AudioFeatureRow:
    """``audio_features.jsonl``: the app's ``AudioFeature``."""

    trackId: str
    tempo: float | None
    energy: float | None
    danceability: float | None
    valence: float | None
    loudness: float | None
    key: int | None
    mode: int | None
    timeSignature: int | None


@dataclass(slots=True)
class CachedArtistRow:
    """``cached_artists.jsonl``: the app's ``CachedArtist``."""

    id: str
    name: str
    genres: list[str]
    popularity: int | None


ROW_CLASSES = {
    "catalog_wide": CatalogWideRow,
    "cached_tracks": CachedTrackRow,
    "audio_features": AudioFeatureRow,
    "cached_artists": CachedArtistRow,
}
