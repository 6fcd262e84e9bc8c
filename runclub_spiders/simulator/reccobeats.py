"""ReccoBeats over the synthetic catalog, as docs/simulator.md, "ReccoBeats", describes it.

Batch endpoints take 1 to 40 IDs (Spotify IDs or ReccoBeats UUIDs, repeated ``ids=`` or
comma-separated), answer ``{"content": [...]}``, silently omit what they do not know, and key
rows by their own UUID: the Spotify ID appears only inside ``href``. No ``time_signature``.
Paginated endpoints (``/artist/{uuid}/track``, ``/album/{uuid}/track``) answer ``{"content",
"page", "size", "totalElements", "totalPages"}`` and take only the UUID in the path.
"""

from __future__ import annotations

import math
import random
import re
import uuid
from collections.abc import Callable, Iterable
from functools import cached_property
from typing import Any

from aiohttp import web

from runclub_spiders.simulator.catalog import RECCO_NAMESPACE, Album, Artist, Catalog, Track
from runclub_spiders.simulator.config import SimulatorConfig
from runclub_spiders.simulator.limits import default_agent
from runclub_spiders.simulator.spotify_api import VARIOUS_ARTISTS_ID

MAX_IDS = 40
PAGE_MAX, SIZE_MAX, SIZE_DEFAULT = 1000, 50, 25


class ReccoBeats:
    def __init__(self, catalog: Catalog, config: SimulatorConfig) -> None:
        self.catalog, self.config = catalog, config

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/audio-features", self.audio_features),
                web.get("/track", self.tracks),
                web.get("/track/{id}", self.track),
                web.get("/track/{id}/audio-features", self.track_features),
                web.get("/artist", self.artists),
                web.get("/artist/{id}/track", self.artist_tracks),
                web.get("/album", self.albums),
                web.get("/album/{id}/track", self.album_tracks)]

    def blocked(self, request: web.Request) -> web.Response | None:
        """Cloudflare's browser-signature block on library-default User-Agents (a toggle)."""
        if self.config.recco_block_default_ua and \
                default_agent(request.headers.get("User-Agent", "")):
            return web.Response(status=403, text="error code: 1010")
        return None

    # ---------------------------------------------------------------- lookups
    def _find(self, id_: str) -> Track | None:
        track = self.catalog.track_by_id.get(id_)
        if track is not None:
            return track if track.recco_known else None
        return self.catalog.track_by_recco_id.get(id_)

    def _ids(self, request: web.Request, method: str) -> list[str] | web.Response:
        ids = [part.strip() for value in request.query.getall("ids", [])
               for part in value.split(",") if part.strip()]
        if not 1 <= len(ids) <= MAX_IDS:
            return web.json_response(
                {"status": 4004, "errors": [{"path": f"{method}.ids",
                                             "message": "size must be between 1 and 40"}]},
                status=400)
        return ids

    # ReccoBeats knows an artist when it knows at least one of the artist's tracks. Built on
    # first use: most runs never ask for artists, and the catalog may be shared by simulators.
    @cached_property
    def _known_tracks_by_artist(self) -> dict[int, list[Track]]:
        by_artist: dict[int, list[Track]] = {}
        for track in self.catalog.tracks:                 # catalog order: stable paging
            if track.recco_known:
                for idx in dict.fromkeys(track.artist_idxs):
                    by_artist.setdefault(idx, []).append(track)
        return by_artist

    @cached_property
    def _known_artist_by_uuid(self) -> dict[str, Artist]:
        return {str(_uuid(self.catalog.artists[idx].id)): self.catalog.artists[idx]
                for idx in self._known_tracks_by_artist}

    def _find_artist(self, id_: str) -> Artist | None:
        artist = self.catalog.artist_by_id.get(id_)
        if artist is not None:
            return artist if artist.idx in self._known_tracks_by_artist else None
        return self._known_artist_by_uuid.get(id_)

    # An album likewise, when it knows one of the album's tracks; those, in the album's order.
    @cached_property
    def _known_tracks_by_album(self) -> dict[int, list[Track]]:
        tracks = self.catalog.tracks
        by_album = {album.idx: [tracks[i] for i in album.track_idxs if tracks[i].recco_known]
                    for album in self.catalog.albums}
        return {idx: known for idx, known in by_album.items() if known}

    @cached_property
    def _known_album_by_uuid(self) -> dict[str, Album]:
        return {_album_uuid(self.catalog.albums[idx].id): self.catalog.albums[idx]
                for idx in self._known_tracks_by_album}

    def _find_album(self, id_: str) -> Album | None:
        album = self.catalog.album_by_id.get(id_)
        if album is not None:
            return album if album.idx in self._known_tracks_by_album else None
        return self._known_album_by_uuid.get(id_)

    def _rows(self, request: web.Request, ids: list[str], render) -> web.Response:
        return self._respond(ids, self._find, self.catalog.track_by_recco_id.values(), render)

    def _respond(self, ids: list[str], find: Callable[[str], Any], pool: Iterable[Any],
                 render: Callable[[Any], dict[str, Any]]) -> web.Response:
        """What ``find`` knows of ``ids``, once per thing however often or under whichever ID
        kind it was asked for, rendered; plus the quirks every batch answer has: a stray
        row from ``pool`` (things that have a Spotify ``id``) and no fixed order."""
        found: dict[str, Any] = {}
        for id_ in ids:
            thing = find(id_)
            if thing is not None:
                found.setdefault(thing.id, thing)
        rows = [render(x) for x in found.values()]
        if self.config.recco_stray_rows:
            stray = next((x for x in pool if x.id not in found), None)
            if stray is not None:
                rows.append(render(stray))
        if self.config.recco_shuffle:
            random.Random(",".join(ids)).shuffle(rows)
        return web.json_response({"content": rows})

    # ---------------------------------------------------------------- shapes
    def _href(self, track: Track) -> str:
        return f"https://open.spotify.com/track/{track.id}"

    def feature_row(self, track: Track) -> dict[str, Any]:
        return {"id": self.catalog.recco_id(track), "href": self._href(track),
                "isrc": track.isrc, **self.catalog.features(track)}

    def track_row(self, track: Track) -> dict[str, Any]:
        artists = [self.catalog.artists[i] for i in track.artist_idxs]
        return {"id": self.catalog.recco_id(track),
                "trackTitle": track.name,
                "artists": [self.artist_row(a) for a in artists],
                "durationMs": track.duration_ms, "isrc": track.isrc, "ean": None, "upc": None,
                "href": self._href(track), "availableCountries": ",".join(track.markets),
                "popularity": track.popularity}

    def artist_row(self, artist: Artist) -> dict[str, Any]:
        return _artist_ref(artist.id, artist.name)

    def album_row(self, album: Album) -> dict[str, Any]:
        """The album as Spotify's ``/albums/{id}`` has it (total, date, precision, UPC), in
        ReccoBeats' field names; ``availableCountries`` is the union of the tracks' markets."""
        # A compilation without album artists is credited to Spotify's "Various Artists".
        artists = ([self.artist_row(self.catalog.artists[i]) for i in album.artist_idxs]
                   or [_artist_ref(VARIOUS_ARTISTS_ID, "Various Artists")])
        row: dict[str, Any] = {
            "id": _album_uuid(album.id), "albumType": album.album_type, "artists": artists,
            "totalTracks": len(album.track_idxs),
            "href": f"https://open.spotify.com/album/{album.id}", "name": album.name}
        markets = sorted({m for i in album.track_idxs for m in self.catalog.tracks[i].markets})
        if markets:
            row["availableCountries"] = ",".join(markets)
        row.update(releaseDate=album.release_date, releaseDateFormat=album.precision,
                   isrc=None, ean=None, upc=album.upc or None, label=None,
                   popularity=album.popularity)
        return row

    # ---------------------------------------------------------------- handlers
    async def audio_features(self, request: web.Request) -> web.Response:
        ids = self._ids(request, "getAudioFeatures")
        if isinstance(ids, web.Response):
            return ids
        return self._rows(request, ids, self.feature_row)

    async def tracks(self, request: web.Request) -> web.Response:
        ids = self._ids(request, "getTracks")
        if isinstance(ids, web.Response):
            return ids
        return self._rows(request, ids, self.track_row)

    async def artists(self, request: web.Request) -> web.Response:
        ids = self._ids(request, "getArtists")
        if isinstance(ids, web.Response):
            return ids
        return self._respond(ids, self._find_artist, self._known_artist_by_uuid.values(),
                             self.artist_row)

    async def artist_tracks(self, request: web.Request) -> web.Response:
        artist = self._known_artist_by_uuid.get(request.match_info["id"])   # UUID only
        return self._track_page(request, "getArtistTracks",
                                None if artist is None
                                else self._known_tracks_by_artist[artist.idx])

    async def albums(self, request: web.Request) -> web.Response:
        ids = self._ids(request, "getAlbums")
        if isinstance(ids, web.Response):
            return ids
        return self._respond(ids, self._find_album, self._known_album_by_uuid.values(),
                             self.album_row)

    async def album_tracks(self, request: web.Request) -> web.Response:
        album = self._known_album_by_uuid.get(request.match_info["id"])     # UUID only
        return self._track_page(request, "getAlbumTracks",
                                None if album is None
                                else self._known_tracks_by_album[album.idx])

    def _track_page(self, request: web.Request, method: str,
                    tracks: list[Track] | None) -> web.Response:
        """A page of track rows; the parameters are checked before the path's ID (``None``:
        unknown, a 404)."""
        page = _bounded(request, method, "page", 0, 0, PAGE_MAX)
        if isinstance(page, web.Response):
            return page
        size = _bounded(request, method, "size", SIZE_DEFAULT, 1, SIZE_MAX)
        if isinstance(size, web.Response):
            return size
        if tracks is None:
            return _not_found(request)
        return web.json_response({
            "content": [self.track_row(t) for t in tracks[page * size:(page + 1) * size]],
            "page": page, "size": size, "totalElements": len(tracks),
            "totalPages": math.ceil(len(tracks) / size)})

    async def track(self, request: web.Request) -> web.Response:
        track = self.catalog.track_by_recco_id.get(request.match_info["id"])
        if track is None:
            return _not_found(request)
        return web.json_response(self.track_row(track))

    async def track_features(self, request: web.Request) -> web.Response:
        track = self.catalog.track_by_recco_id.get(request.match_info["id"])
        if track is None:
            return _not_found(request)
        row = self.feature_row(track)
        del row["isrc"]
        return web.json_response(row)


def _uuid(spotify_id: str) -> uuid.UUID:
    return uuid.uuid5(RECCO_NAMESPACE, f"artist:{spotify_id}")


def _artist_ref(spotify_id: str, name: str) -> dict[str, Any]:
    return {"id": str(_uuid(spotify_id)), "name": name,
            "href": f"https://open.spotify.com/artist/{spotify_id}"}


def _album_uuid(spotify_album_id: str) -> str:
    return str(uuid.uuid5(RECCO_NAMESPACE, f"album:{spotify_album_id}"))


def _bounded(request: web.Request, method: str, name: str, default: int, low: int,
             high: int) -> int | web.Response:
    """A paging parameter, or the 400 validation body (ReccoBeats' bean-validation shape)."""
    raw = request.query.get(name)
    if raw is None:
        return default
    if re.fullmatch(r"-?[0-9]{1,9}", raw) and low <= int(raw) <= high:
        return int(raw)
    return web.json_response(
        {"status": 4004, "errors": [{"path": f"{method}.{name}",
                                     "message": f"must be between {low} and {high}"}]},
        status=400)


def _not_found(request: web.Request) -> web.Response:
    return web.json_response({"status": 404, "error": "Not Found", "path": request.path},
                             status=404)
