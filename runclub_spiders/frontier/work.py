"""One unit of outstanding discovery work: a page the crawl means to ask, and its quota bucket.

A ``Work`` says what to ask, not how: the spider turns it into a request
(``SpotifyCatalogSpider.request_for``) and parses the answer. The frontier owns every work
from the moment it is planned until it is answered or dropped; a request carries its work in
``meta["work"]``, so a retry, a malformed-body retry or a refusal all point back to the same
work, never to a copy.
"""

from __future__ import annotations

from dataclasses import dataclass

from runclub_spiders.seeds import SeedQuery

ME, MY_PLAYLISTS, PLAYLIST_ITEMS, SEARCH, ARTISTS, ALBUM, ARTIST_ALBUMS, TRACKS = (
    "me", "my_playlists", "playlist_items", "search", "artists", "album", "artist_albums",
    "tracks")
# ReccoBeats leads (``frontier.leads``): artists' UUIDs, their track lists, and leads
# confirmed with /tracks/{id} (one) or, in Extended Quota, /tracks?ids= (up to 50).
# ReccoBeats has no Spotify quota; "reccobeats" is the bucket
# the quota middleware counts (and parks on a long Retry-After) and the frontier paces
# discovery's share of (DISCOVERY_CONCURRENCY at a time).
RECCO_ARTISTS, RECCO_ARTIST_TRACKS, TRACK = "recco_artists", "recco_artist_tracks", "track"
# An album read through /albums/{id}/tracks from its first page (the album object is the
# store's, from the track or listing that revealed it): a 2026 report names quota buckets
# per endpoint, so this one may have a bucket of its own (``Frontier._next_album_tracks``).
ALBUM_TRACKS = "album_tracks"
BUCKETS = {ME: "user", MY_PLAYLISTS: "playlists", PLAYLIST_ITEMS: "playlists",
           SEARCH: "search", ARTISTS: "artists", ALBUM: "albums", ARTIST_ALBUMS: "artists",
           TRACKS: "tracks", TRACK: "tracks", RECCO_ARTISTS: "reccobeats",
           RECCO_ARTIST_TRACKS: "reccobeats", ALBUM_TRACKS: "album_tracks"}


@dataclass(frozen=True, slots=True)
class Work:
    kind: str
    offset: int = 0
    query: SeedQuery | None = None          # search
    playlist_id: str | None = None          # playlist_items
    snapshot: str | None = None             # playlist_items: the snapshot being read
    owner: bool = False                     # part of the owner phase (read before any search)
    artist_ids: tuple[str, ...] = ()        # artists; track (a batch): each lead's artist
    album_id: str | None = None             # album: /albums/{id}, then /albums/{id}/tracks;
                                            # album_tracks: /albums/{id}/tracks only
    artist_id: str | None = None            # artist_albums, recco_artist_tracks, track's lead
    track_ids: tuple[str, ...] = ()         # tracks, track (extended: /tracks?ids=)
    recco_id: str | None = None             # recco_artist_tracks: the artist's UUID

    @property
    def bucket(self) -> str:
        """The Spotify quota bucket this work draws on (``services.spotify_bucket``)."""
        return BUCKETS[self.kind]

    @property
    def priority(self) -> int:
        """The owner phase first (who the owner is, then the playlists' pages), then the rest."""
        return {ME: 10, MY_PLAYLISTS: 10, PLAYLIST_ITEMS: 5}.get(self.kind, 0)

    @property
    def key(self) -> tuple:
        """Identity of the outstanding work: a search query pages one page at a time, so
        its key leaves out the offset (one page of a query outstanding at most)."""
        if self.kind == SEARCH:
            assert self.query is not None
            return (SEARCH, self.query.q, self.query.kind)
        if self.kind == PLAYLIST_ITEMS:
            return (PLAYLIST_ITEMS, self.playlist_id)
        if self.kind in (ALBUM, ALBUM_TRACKS):      # one read of an album at a time
            return (ALBUM, self.album_id)
        if self.kind in (ARTIST_ALBUMS, RECCO_ARTIST_TRACKS):
            return (self.kind, self.artist_id)
        return (self.kind, self.offset, self.artist_ids, self.track_ids)
