"""The store's schema, its stamp, and the record types it keeps."""

from __future__ import annotations

from dataclasses import dataclass

APPLICATION_ID = 0x52434C42        # "RCLB": tells our store from any other SQLite file
SCHEMA_VERSION = 1
FEATURE_FIELDS = ("acousticness", "danceability", "energy", "instrumentalness", "key",
                  "liveness", "loudness", "mode", "speechiness", "tempo", "valence")

SCHEMA = """
CREATE TABLE IF NOT EXISTS tracks (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    isrc TEXT,
    duration_ms INTEGER NOT NULL,
    explicit INTEGER NOT NULL,
    album_id TEXT,
    album_name TEXT NOT NULL,
    album_type TEXT,
    release_date TEXT,
    release_precision TEXT,
    album_image_url TEXT,
    artist_ids TEXT NOT NULL,            -- JSON list, primary artist first
    artist_names TEXT NOT NULL,          -- JSON list, same order
    is_playable INTEGER,                 -- NULL: unknown (no market given)
    available_markets TEXT,              -- JSON list (extended profile) or NULL
    popularity INTEGER,                  -- Spotify popularity (extended) or NULL
    preview_url TEXT,
    track_number INTEGER,
    disc_number INTEGER,
    first_source TEXT NOT NULL,          -- search | playlist | lookup
    first_query TEXT,
    first_playlist_id TEXT,
    first_seen_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    enrich_state TEXT NOT NULL DEFAULT 'pending',  -- pending | done | miss | skipped
    enrich_reason TEXT,                  -- why skipped (duration, playability, duplicate)
    enrich_retry_after TEXT,             -- a miss may be asked again after this time
    enriched_at TEXT,
    recco_popularity INTEGER,
    recco_countries TEXT,
    recco_fetched_at TEXT,               -- when ReccoBeats /track answered for it
    planning_cells TEXT                  -- JSON [[umbrella, decade], ...] counted at discovery
);
CREATE INDEX IF NOT EXISTS tracks_isrc ON tracks (isrc);
CREATE INDEX IF NOT EXISTS tracks_enrich ON tracks (enrich_state);
-- "Has this artist a solo track stored?" (the search_common genre rule, on every genre page):
-- without it each question scanned the table (138 ms a page on a 90,000-track store).
CREATE INDEX IF NOT EXISTS tracks_artist_ids ON tracks (artist_ids);
CREATE TABLE IF NOT EXISTS artists (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    genres TEXT,                         -- JSON list from Spotify, NULL when never fetched
    inferred_genres TEXT NOT NULL DEFAULT '[]',  -- from genre:"..." queries that found them
    popularity INTEGER,
    image_url TEXT,
    fetched_at TEXT,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS features (
    track_id TEXT PRIMARY KEY,
    recco_id TEXT,
    isrc TEXT,
    acousticness REAL, danceability REAL, energy REAL, instrumentalness REAL, key INTEGER,
    liveness REAL, loudness REAL, mode INTEGER, speechiness REAL, tempo REAL, valence REAL,
    fetched_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS seeds (
    q TEXT NOT NULL,
    kind TEXT NOT NULL,
    family TEXT NOT NULL,
    umbrella TEXT,
    decade TEXT,
    next_offset INTEGER NOT NULL DEFAULT 0,
    total INTEGER,
    exhausted TEXT,                      -- NULL while open; else why it stopped
    requests INTEGER NOT NULL DEFAULT 0,
    new_tracks INTEGER NOT NULL DEFAULT 0,
    known_tracks INTEGER NOT NULL DEFAULT 0,
    low_pages INTEGER NOT NULL DEFAULT 0,  -- consecutive pages below the yield threshold
    last_seen_at TEXT,
    PRIMARY KEY (q, kind)
);
CREATE TABLE IF NOT EXISTS seed_tracks (
    q TEXT NOT NULL,
    kind TEXT NOT NULL,
    track_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    PRIMARY KEY (q, kind, track_id)
);
CREATE INDEX IF NOT EXISTS seed_tracks_track ON seed_tracks (track_id);
-- Artists a cell query's search returned (type=track,artist): its genre filter named them.
CREATE TABLE IF NOT EXISTS seed_artists (
    q TEXT NOT NULL,
    kind TEXT NOT NULL,
    artist_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    PRIMARY KEY (q, kind, artist_id)
);
CREATE TABLE IF NOT EXISTS playlists (
    id TEXT PRIMARY KEY,
    owner TEXT,
    name TEXT,
    snapshot_id TEXT,
    items_total INTEGER,
    first_seen_at TEXT NOT NULL,
    last_processed_at TEXT,
    last_snapshot_processed TEXT,
    next_offset INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS playlist_tracks (
    playlist_id TEXT NOT NULL,
    track_id TEXT NOT NULL,
    added_at TEXT,
    PRIMARY KEY (playlist_id, track_id)
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
-- The quota ledger (downloadermiddlewares/quota.py): requests per quota bucket per UTC day
-- (and per hour, ``quota_hours``), as they went out, and the buckets that must not be
-- called before ``until``.
CREATE TABLE IF NOT EXISTS quota_days (
    day TEXT NOT NULL,                   -- YYYY-MM-DD, UTC
    bucket TEXT NOT NULL,
    requests INTEGER NOT NULL,
    PRIMARY KEY (day, bucket)
);
CREATE TABLE IF NOT EXISTS quota_parks (
    bucket TEXT PRIMARY KEY,
    until REAL NOT NULL,                 -- epoch seconds
    reason TEXT NOT NULL
);
-- Requests per bucket per UTC hour, for the use over the rolling ~24 h window Spotify counts.
CREATE TABLE IF NOT EXISTS quota_hours (
    hour INTEGER NOT NULL,               -- epoch seconds // 3600 (runclub_spiders.clock)
    bucket TEXT NOT NULL,
    requests INTEGER NOT NULL,
    PRIMARY KEY (hour, bucket)
);
-- What each QUOTA_EXCEEDED taught: our count in the rolling window when it came, and for how
-- long Spotify said to wait. The latest row per bucket is its learned size.
CREATE TABLE IF NOT EXISTS quota_learned (
    bucket TEXT NOT NULL,
    at REAL NOT NULL,                    -- epoch seconds (runclub_spiders.clock)
    window_requests INTEGER NOT NULL,
    retry_after REAL,                    -- seconds, NULL without the header
    PRIMARY KEY (bucket, at)
);
-- Per umbrella x decade cell, what discovery last concluded (frontier): candidates found,
-- the estimated reachable total, and why it stopped spending there (NULL while it spends).
CREATE TABLE IF NOT EXISTS discovery_cells (
    umbrella TEXT NOT NULL,
    decade TEXT NOT NULL,
    found INTEGER NOT NULL,
    reachable REAL,
    stopped TEXT,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (umbrella, decade)
);
-- Album expansion (frontier): albums seen on tracks, and which were expanded or listed.
CREATE TABLE IF NOT EXISTS albums (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    artist_id TEXT,                      -- primary album artist
    album_type TEXT,
    release_date TEXT,
    release_precision TEXT,
    image_url TEXT,
    total_tracks INTEGER,
    umbrella TEXT,                       -- the cell it was found for, when a cell query
    decade TEXT,
    found_by TEXT NOT NULL,              -- track (a cell query's hit) | listing (its artist's)
    next_offset INTEGER NOT NULL DEFAULT 0,
    expanded TEXT,                       -- NULL: not yet; else when it was read to the end
    first_seen_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS artist_albums (
    artist_id TEXT PRIMARY KEY,
    umbrella TEXT,
    next_offset INTEGER NOT NULL DEFAULT 0,
    total INTEGER,
    listed TEXT                          -- NULL: not yet (or part way); else when finished
);
-- Why an artist has each genre it is exported with (issue 15): one row per piece of
-- evidence. source: spotify (the artist object) | search_sole (a genre query's hit whose
-- sole artist it is) | search_common (the artist common to several hits of one genre query)
-- | wikidata (P136 of the item whose P1902 is this artist). detail: the query or label.
CREATE TABLE IF NOT EXISTS genre_evidence (
    artist_id TEXT NOT NULL,
    genre TEXT NOT NULL,                 -- normalised, in Spotify's vocabulary
    source TEXT NOT NULL,
    detail TEXT,
    PRIMARY KEY (artist_id, genre, source)
);
-- What Wikidata answered per Spotify artist ID: never asked twice (state found | none).
CREATE TABLE IF NOT EXISTS wikidata_artists (
    artist_id TEXT PRIMARY KEY,
    state TEXT NOT NULL,                 -- found | none
    qid TEXT,
    labels TEXT,                         -- JSON list of Wikidata genre labels, as answered
    genres TEXT,                         -- JSON list, mapped to Spotify-style genre names
    asked_at TEXT NOT NULL
);
-- What MusicBrainz answered per ISRC: never asked twice (state found | none).
CREATE TABLE IF NOT EXISTS musicbrainz_isrcs (
    isrc TEXT PRIMARY KEY,
    state TEXT NOT NULL,                 -- found | none
    first_release_date TEXT,             -- earliest regular release, YYYY[-MM[-DD]]
    year INTEGER,
    recording_id TEXT,
    asked_at TEXT NOT NULL
);
-- ReccoBeats leads (frontier.leads): artists whose ReccoBeats track list is read (recco_id
-- NULL: not looked up yet; '' with listed 'unknown': ReccoBeats does not know them), and the
-- tracks on those lists that the store lacks, confirmed with /tracks/{id} (/tracks?ids= in
-- Extended Quota).
CREATE TABLE IF NOT EXISTS recco_artists (
    artist_id TEXT PRIMARY KEY,          -- Spotify artist ID
    umbrella TEXT NOT NULL,              -- the umbrella its cell-query votes name
    recco_id TEXT,
    next_page INTEGER NOT NULL DEFAULT 0,
    listed TEXT                          -- NULL: not yet (or part way); else when, or 'unknown'
);
CREATE TABLE IF NOT EXISTS leads (
    track_id TEXT PRIMARY KEY,           -- Spotify track ID (from ReccoBeats' href)
    artist_id TEXT NOT NULL,
    umbrella TEXT NOT NULL,
    isrc TEXT,
    duration_ms INTEGER,
    found_at TEXT NOT NULL,
    ended TEXT                           -- NULL: open; confirmed | known | gone
);
-- The live capability probe (scrapy spotify-probe): the latest value per capability.
CREATE TABLE IF NOT EXISTS probe_results (
    name TEXT PRIMARY KEY,               -- e.g. genre_filter
    value TEXT NOT NULL,                 -- e.g. honoured | ignored | empty
    detail TEXT,
    probed_at TEXT NOT NULL              -- ISO 8601 UTC (runclub_spiders.clock)
);
"""


class StoreError(Exception):
    """The store file cannot be used; the message names it and says how to fix it."""


@dataclass(frozen=True, slots=True)
class TrackRecord:
    """A Spotify track as the store keeps it (built by ``spotify_objects.parse_track``)."""

    id: str
    name: str
    isrc: str | None
    duration_ms: int
    explicit: bool
    album_id: str | None
    album_name: str
    album_type: str | None
    release_date: str | None
    release_precision: str | None
    album_image_url: str | None
    artist_ids: tuple[str, ...]
    artist_names: tuple[str, ...]
    is_playable: bool | None
    available_markets: tuple[str, ...] | None
    popularity: int | None
    preview_url: str | None
    track_number: int | None
    disc_number: int | None

