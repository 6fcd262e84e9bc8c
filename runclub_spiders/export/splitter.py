"""The brief's splitter: the canonical wide row to the app's three model shapes.

Field by field as the owner's brief ("Splitter: Field Mapping to App Models") lists it;
``tests/test_export.py`` checks each mapping: on a crawled export in
``test_splitter_maps_every_field_as_the_brief_lists``, on one row in
``test_splitter_functions_on_one_row``. Nothing here reads the store: every value comes from
the wide row, so the split files can never disagree with ``catalog_wide``.
"""

from __future__ import annotations

from runclub_spiders.export.rows import (
    AudioFeatureRow,
    CachedArtistRow,
    CachedTrackRow,
    CatalogWideRow,
)


def is_playable(wide: CatalogWideRow, primary_market: str) -> bool:
    """available_us OR (available_primary_markets contains the primary market)."""
    return wide.available_us or primary_market in wide.available_primary_markets


def to_cached_track(wide: CatalogWideRow, primary_market: str) -> CachedTrackRow:
    extra = wide._extra
    return CachedTrackRow(
        id=wide.spotify_track_id,
        name=wide.name,
        artistId=wide.artist_ids[0],
        artistName=wide.artist_names[0],
        durationMs=wide.duration_ms,
        albumName=wide.album_name,
        albumReleaseYear=wide.album_release_year,
        popularity=wide.popularity_snapshot,
        explicit=wide.explicit,
        addedAt=wide.created_at,
        isPlayable=is_playable(wide, primary_market),
        _ingestSource=extra["ingest_source"],
        _ingestQuery=extra["ingest_query"],
        _ingestPlaylistId=wide.source_playlist_id,
        _ingestDiscoveredAt=wide.created_at,
        _isrc=wide.isrc,
        _decade=wide.album_decade_label,
        _umbrellas=list(extra["umbrellas"]),
        _album_decade_label=wide.album_decade_label,
        _preview_url=wide.preview_url,
        _album_image_url=wide.album_image_url,
        _popularity_bucket=wide.popularity_bucket,
        _available_primary_markets=list(wide.available_primary_markets),
        _source_playlist_id=wide.source_playlist_id,
        _source_playlist_name=wide.source_playlist_name,
        _source_playlist_owner=wide.source_playlist_owner,
        _recco_features_version=wide.recco_features_version,
        _recco_features_at=wide.recco_features_at,
        _tempoBucket=extra["tempo_bucket"],
        _cadenceSpm=extra["cadence_spm"],
        _cadenceMatch=extra["cadence_match"],
    )


def to_audio_feature(wide: CatalogWideRow) -> AudioFeatureRow | None:
    """The features row, or None for a track ReccoBeats had nothing for (no row is written:
    an all-null row would only tell the app what a missing one already does)."""
    if wide.recco_track_id is None and wide.tempo is None:
        return None
    return AudioFeatureRow(
        trackId=wide.spotify_track_id, tempo=wide.tempo, energy=wide.energy,
        danceability=wide.danceability, valence=wide.valence, loudness=wide.loudness,
        key=wide.key, mode=wide.mode, timeSignature=wide.time_signature)


def to_cached_artists(wide: CatalogWideRow, popularity: dict[str, int | None]
                      ) -> list[CachedArtistRow]:
    """One row per credited artist, in credit order. Popularity is not in the wide row; it is
    emitted when artist enrichment fetched it, else null."""
    return [CachedArtistRow(id=artist_id, name=name, genres=list(genres),
                            popularity=popularity.get(artist_id))
            for artist_id, name, genres in zip(wide.artist_ids, wide.artist_names,
                                               wide.artist_genres, strict=True)]
