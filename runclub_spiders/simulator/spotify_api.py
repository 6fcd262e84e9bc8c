"""The Spotify Web API over the synthetic catalog, in both quota profiles.

Shapes follow docs/simulator.md, "Response shapes", and Spotify's OpenAPI definition. The
``development`` profile applies the February 2026 rules: search ``limit`` at most 10, batch
``?ids=`` endpoints 403, playlist items only for playlists the owner owns or collaborates on,
editorial playlists 404, and no popularity, available_markets, linked_from, label, followers
or artist genres. ``extended`` is the older behaviour with every field. The capability knobs
(``search_max_limit``, ``track_isrc``, ``artist_genres``, ``album_endpoints``,
``owner_playlist_items``, ``genre_filter``, ``year_filter``) override single rules.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from runclub_spiders.simulator.catalog import (
    OWNER_ID,
    OWNER_NAME,
    Album,
    Artist,
    Catalog,
    Playlist,
    Track,
)
from runclub_spiders.simulator.config import SimulatorConfig
from runclub_spiders.simulator.hostile import HOSTILE_KEY, HostilePlan
from runclub_spiders.simulator.search import Query, SearchIndex

SPOTIFY_ID = re.compile(r"^[0-9A-Za-z]{22}$")
MARKET = re.compile(r"^[A-Z]{2}$")
VARIOUS_ARTISTS_ID = "0LyfQWJT6nXafLPZqxe9Of"
SEARCH_TYPES = ("album", "artist", "playlist", "track", "show", "episode", "audiobook")
# /artists/{id}/albums: the groups ``include_groups`` takes, in the order pages list them.
ALBUM_GROUPS = ("album", "single", "compilation", "appears_on")

# Endpoints the February 2026 migration removed for development-mode apps (403 there), and the
# ones removed for every new app in November 2024 (403 in both profiles).
REMOVED_2026 = ("/artists/{id}/top-tracks", "/users/{id}", "/users/{id}/playlists",
                "/browse/new-releases", "/browse/categories", "/browse/categories/{id}",
                "/markets")
REMOVED_2024 = ("/recommendations", "/audio-features", "/audio-features/{id}",
                "/audio-analysis/{id}", "/artists/{id}/related-artists",
                "/browse/featured-playlists", "/browse/categories/{id}/playlists")


def error(status: int, message: str, **extra: Any) -> web.Response:
    body = {"status": status, "message": message, **extra}
    return web.json_response({"error": body}, status=status)


def image(seed: str, size: int = 640) -> dict[str, Any]:
    digest = hashlib.sha1(seed.encode()).hexdigest()[:24]
    return {"url": f"https://i.scdn.co/image/ab67616d0000b273{digest}", "height": size,
            "width": size}


class SpotifyShapes:
    """Renders catalog entities as Spotify JSON objects for one profile."""

    def __init__(self, catalog: Catalog, config: SimulatorConfig, base_url: str) -> None:
        self.catalog, self.config, self.base = catalog, config, base_url
        self.extended = config.extended

    def _links(self, kind: str, id_: str) -> dict[str, Any]:
        return {"external_urls": {"spotify": f"https://open.spotify.com/{kind}/{id_}"},
                "href": f"{self.base}/{kind}s/{id_}", "id": id_, "type": kind,
                "uri": f"spotify:{kind}:{id_}"}

    def simplified_artist(self, artist: Artist | None) -> dict[str, Any]:
        if artist is None:
            return {**self._links("artist", VARIOUS_ARTISTS_ID), "name": "Various Artists"}
        return {**self._links("artist", artist.id), "name": artist.name}

    def artist(self, artist: Artist | None) -> dict[str, Any]:
        body = {**self.simplified_artist(artist),
                "images": [image(artist.id if artist else VARIOUS_ARTISTS_ID)]}
        if self.extended:
            body.update(popularity=artist.popularity if artist else 0,
                        followers={"href": None, "total": artist.followers if artist else 0})
        # Deprecated: absent from development-mode answers since August 2026 (artist_genres).
        served = self.config.artist_genres_served
        if served != "absent":
            body["genres"] = list(artist.genres) if artist and served == "present" else []
        return body

    def _album_artists(self, album: Album) -> list[dict[str, Any]]:
        if not album.artist_idxs:
            return [self.simplified_artist(None)]
        return [self.simplified_artist(self.catalog.artists[i]) for i in album.artist_idxs]

    def simplified_album(self, album: Album) -> dict[str, Any]:
        body = {"album_type": album.album_type, "total_tracks": len(album.track_idxs),
                **self._links("album", album.id), "images": [image(album.id)],
                "name": album.name, "release_date": album.release_date,
                "release_date_precision": album.precision, "artists": self._album_artists(album)}
        if self.extended:
            markets = sorted({m for i in album.track_idxs for m in self.catalog.tracks[i].markets})
            body["available_markets"] = markets
        return body

    def album(self, album: Album, market: str | None) -> dict[str, Any]:
        body = self.simplified_album(album)
        # The first 50 tracks; ``tracks.next`` points at /albums/{id}/tracks for the rest.
        body.update(copyrights=[{"text": f"(C) {album.year} {album.label}", "type": "C"}],
                    external_ids={"upc": album.upc}, genres=[],
                    tracks=self.page([self.simplified_track(self.catalog.tracks[i], market)
                                      for i in album.track_idxs[:50]],
                                     f"{self.base}/albums/{album.id}/tracks",
                                     {"market": market} if market else {}, 0, 50,
                                     len(album.track_idxs)))
        if self.extended:
            body.update(label=album.label, popularity=album.popularity)
        return body

    def _playability(self, track: Track, market: str | None, body: dict[str, Any]) -> None:
        if market is None:
            return
        playable = market in track.markets
        body["is_playable"] = playable
        if not playable:
            body["restrictions"] = {"reason": "market"}

    def simplified_track(self, track: Track, market: str | None) -> dict[str, Any]:
        body = {"artists": [self.simplified_artist(self.catalog.artists[i])
                            for i in track.artist_idxs],
                "disc_number": 1, "duration_ms": track.duration_ms, "explicit": track.explicit,
                **self._links("track", track.id), "name": track.name, "preview_url": None,
                "track_number": track.track_number, "is_local": False}
        if self.extended:
            body["available_markets"] = list(track.markets)
        self._playability(track, market, body)
        return body

    def track(self, track: Track, market: str | None) -> dict[str, Any]:
        album = self.catalog.albums[track.album_idx]
        body = {"album": self.simplified_album(album),
                **self.simplified_track(track, market),
                "external_ids": {"isrc": track.isrc}}
        if not self.config.track_isrc:
            del body["external_ids"]      # as the February 2026 migration first announced
        if self.extended:
            body["popularity"] = track.popularity
            body["preview_url"] = f"https://p.scdn.co/mp3-preview/{track.id.lower()}"
        return body

    def local_track(self, n: int) -> dict[str, Any]:
        # As recorded local files come (tests/fixtures/real/): album_type, ids, hrefs and URIs
        # null, external_ids empty, disc and track number 0.
        return {"album": {"album_type": None, "total_tracks": 0, "available_markets": [],
                          "external_urls": {}, "href": None, "id": None, "images": [],
                          "name": "", "release_date": "", "release_date_precision": "year",
                          "type": "album", "uri": None, "artists": []},
                "artists": [{"external_urls": {}, "href": None, "id": None, "name": "Home Demo",
                             "type": "artist", "uri": None}],
                "available_markets": [], "disc_number": 0, "duration_ms": 201000,
                "explicit": False, "external_ids": {}, "external_urls": {}, "href": None,
                "id": None, "is_local": True, "name": f"voice memo {n}", "popularity": 0,
                "preview_url": None, "track_number": 0, "type": "track",
                "uri": f"spotify:local:Home+Demo::voice+memo+{n}:201"}

    def episode(self, n: int) -> dict[str, Any]:
        show_id = "5CfCWKI5pZ28U0uOzXkDHe"
        episode_id = f"512ojhOuo1ktJprKbVcKy{n % 10}"
        # Recorded episodes among playlist items carry "episode": true and "track": false.
        return {"audio_preview_url": None, "description": "Coach talk.",
                "html_description": "<p>Coach talk.</p>", "duration_ms": 1_200_000,
                "episode": True, "track": False, "language": "en",
                "explicit": False, **self._links("episode", episode_id),
                "images": [image(episode_id)], "is_externally_hosted": False,
                "is_playable": True, "languages": ["en"], "name": f"Run Coach #{n}",
                "release_date": "2025-03-01", "release_date_precision": "day",
                "show": {"available_markets": ["US"], "copyrights": [],
                         "description": "Running coaching.", "explicit": False,
                         **self._links("show", show_id), "html_description": "<p>Running</p>",
                         "images": [image(show_id)], "is_externally_hosted": False,
                         "languages": ["en"], "media_type": "audio", "name": "Run Coach",
                         "publisher": "RunClub", "total_episodes": 40}}

    def owner(self, playlist: Playlist) -> dict[str, Any]:
        return {**self._links("user", playlist.owner_id), "display_name": playlist.owner_name}

    def simplified_playlist(self, playlist: Playlist) -> dict[str, Any]:
        items_ref = {"href": f"{self.base}/playlists/{playlist.id}/items",
                     "total": len(playlist.track_idxs) + len(playlist.extras)}
        return {"collaborative": playlist.collaborative,
                "description": playlist.description or "",
                **self._links("playlist", playlist.id),
                "images": [image(playlist.id)], "name": playlist.name,
                "owner": self.owner(playlist), "public": playlist.public,
                "snapshot_id": playlist.snapshot_id, "items": items_ref,
                "tracks": dict(items_ref, href=items_ref["href"].replace("/items", "/tracks"))}

    def playlist_item(self, playlist: Playlist, position: int, market: str | None,
                      types: set[str], legacy_key_only: bool = False) -> dict[str, Any]:
        tracks = playlist.track_idxs
        adder = {**self._links("user", playlist.owner_id)}
        if position < len(tracks):
            item: dict[str, Any] | None = self.track(self.catalog.tracks[tracks[position]], market)
            row = {"added_at": playlist.added_at[position], "added_by": adder, "is_local": False}
        else:
            extra = playlist.extras[position - len(tracks)]
            row = {"added_at": "2024-05-01T12:00:00Z", "added_by": adder,
                   "is_local": extra == "local"}
            if extra == "local":
                item = self.local_track(position)
            elif extra == "episode" and "episode" in types:
                item = self.episode(position)
            else:
                item = None           # an unavailable track, or an episode nobody asked for
        # Recorded rows carry these two, always empty, beside the item.
        row["primary_color"] = None
        row["video_thumbnail"] = {"url": None}
        if legacy_key_only:
            row["track"] = item
        else:
            row["item"] = item
            row["track"] = item       # deprecated alias, still sent during the transition
        return row

    def playlist(self, playlist: Playlist, market: str | None, types: set[str],
                 with_items: bool) -> dict[str, Any]:
        body = self.simplified_playlist(playlist)
        del body["tracks"]
        body["description"] = playlist.description
        body["followers"] = {"href": None, "total": 1000 if playlist.editorial else 3}
        if with_items:
            total = len(playlist.track_idxs) + len(playlist.extras)
            rows = [self.playlist_item(playlist, i, market, types) for i in range(min(100, total))]
            body["items"] = self.page(rows, f"{self.base}/playlists/{playlist.id}/items",
                                      {}, 0, 100, total)
        else:
            del body["items"]         # "the items field will be absent" for other users' lists
        return body

    def me(self) -> dict[str, Any]:
        body = {**self._links("user", OWNER_ID), "display_name": OWNER_NAME, "images": [],
                "account_id": "aB3dE5fG7h"}
        if self.extended:
            body.update(country=self.config.market, product="premium",
                        email="owner@example.invalid",
                        explicit_content={"filter_enabled": False, "filter_locked": False},
                        followers={"href": None, "total": 3})
        return body

    @staticmethod
    def page(items: list[Any], href: str, params: dict[str, Any], offset: int, limit: int,
             total: int) -> dict[str, Any]:
        def url(at: int) -> str:
            return f"{href}?{urlencode({**params, 'offset': at, 'limit': limit})}"

        has_next = offset + limit < total
        return {"href": url(offset), "items": items, "limit": limit,
                "next": url(offset + limit) if has_next else None, "offset": offset,
                "previous": url(max(0, offset - limit)) if offset > 0 else None, "total": total}


class SpotifyApi:
    """aiohttp handlers for ``/v1`` on the Spotify API service."""

    def __init__(self, catalog: Catalog, index: SearchIndex, config: SimulatorConfig,
                 base_url: str) -> None:
        self.catalog, self.index, self.config = catalog, index, config
        self.shapes = SpotifyShapes(catalog, config, base_url)
        self.base = base_url
        self.hostile = HostilePlan(config.fault_seed, config.hostile_rate)
        self._discography: dict[int, list[tuple[str, Album]]] | None = None

    def routes(self) -> list[web.RouteDef]:
        r = [web.get("/search", self.search),
             web.get("/tracks/{id}", self.get_track), web.get("/tracks", self.get_tracks),
             web.get("/artists/{id}", self.get_artist), web.get("/artists", self.get_artists),
             web.get("/artists/{id}/albums", self.get_artist_albums),
             web.get("/albums/{id}", self.get_album), web.get("/albums", self.get_albums),
             web.get("/albums/{id}/tracks", self.get_album_tracks),
             web.get("/playlists/{id}", self.get_playlist),
             web.get("/playlists/{id}/items", self.get_playlist_items),
             web.get("/playlists/{id}/tracks", self.get_playlist_tracks),
             web.get("/me", self.get_me), web.get("/me/playlists", self.get_my_playlists)]
        for path in REMOVED_2024:
            r.append(web.get(path, self.forbidden))
        for path in REMOVED_2026:
            r.append(web.get(path, self.removed_in_development))
        # Spotify answers every path with a trailing slash too; spotipy sends ``me/`` and
        # ``tracks/?ids=``.
        return r + [web.get(route.path + "/", route.handler) for route in r]

    # ---------------------------------------------------------------- helpers
    def _corrupt(self, request: web.Request, page: dict[str, Any], *, rows: bool) -> None:
        """Apply ``hostile_rate`` to a page; the request log records what was done."""
        applied = self.hostile.corrupt_page(page, f"{request.method} {request.path_qs}",
                                            rows=rows)
        if applied:
            request[HOSTILE_KEY] = applied

    def _limit(self, request: web.Request, default: int, maximum: int) -> int | web.Response:
        raw = request.query.get("limit", str(default))
        try:
            limit = int(raw)
        except ValueError:
            return error(400, "Invalid limit")
        if not 0 <= limit <= maximum:
            return error(400, "Invalid limit")
        return limit

    def _offset(self, request: web.Request, maximum: int | None = None) -> int | web.Response:
        try:
            offset = int(request.query.get("offset", "0"))
        except ValueError:
            return error(400, "Invalid offset")
        if offset < 0 or (maximum is not None and offset > maximum):
            return error(400, "Invalid offset")
        return offset

    def _market(self, request: web.Request) -> str | web.Response | None:
        market = request.query.get("market")
        if market is None:
            return None
        if market == "from_token":
            return self.config.market
        if not MARKET.match(market):
            return error(400, "Invalid market code")
        return market

    def _ids(self, request: web.Request, maximum: int) -> list[str] | web.Response:
        raw = request.query.get("ids")
        if not raw:
            return error(400, "invalid id")
        ids = [i for i in raw.split(",") if i]
        if len(ids) > maximum:
            return error(400, "Too many ids requested")
        for i in ids:
            if not SPOTIFY_ID.match(i):
                return error(400, f"Invalid base62 id: {i}")
        return ids

    def _lookup(self, request: web.Request, table: dict[str, Any]) -> Any:
        id_ = request.match_info["id"]
        if not SPOTIFY_ID.match(id_):
            return error(400, "Invalid base62 id")
        found = table.get(id_)
        return found if found is not None else error(404, "Resource not found")

    async def forbidden(self, request: web.Request) -> web.Response:
        return error(403, "Forbidden")

    async def removed_in_development(self, request: web.Request) -> web.Response:
        if self.config.extended:
            return error(404, "Service not found (not simulated)")
        return error(403, "Forbidden")

    # ---------------------------------------------------------------- search
    async def search(self, request: web.Request) -> web.Response:
        # ``query=`` is what Spotify's own href/next/previous links carry (shapes.page echoes it).
        q = request.query.get("q") or request.query.get("query")
        if not q:
            return error(400, "No search query")
        raw_types = request.query.get("type")
        if not raw_types:
            return error(400, "Missing parameter type")
        types = raw_types.split(",")
        if any(t not in SEARCH_TYPES for t in types):
            return error(400, "Bad search type field")
        limit = self._limit(request, 5 if not self.config.extended else 20,
                            self.config.search_limit_max)
        if isinstance(limit, web.Response):
            return limit
        offset = self._offset(request, 1000)
        if isinstance(offset, web.Response):
            return offset
        if offset + limit > 1000:
            return error(400, "Bad request.")
        market = self._market(request)
        if isinstance(market, web.Response):
            return market
        query = Query.parse(q)
        params = {"query": q, "type": raw_types}
        if market:
            params["market"] = market
        body: dict[str, Any] = {}
        for kind in types:
            href = f"{self.base}/search"
            if kind == "track":
                hits = self.index.tracks(query, self.config.genre_filter,
                                         self.config.year_filter)
                if market:
                    tracks = self.catalog.tracks
                    hits = [i for i in hits if market in tracks[i].markets]
                rows = [self.shapes.track(self.catalog.tracks[i], market)
                        for i in hits[offset:offset + limit]]
                body["tracks"] = self.shapes.page(rows, href, dict(params, type=kind), offset,
                                                  limit, len(hits))
                self._corrupt(request, body["tracks"], rows=False)
            elif kind == "artist":
                hits = self.index.artists(query, self.config.genre_filter)
                rows = [self.shapes.artist(self.catalog.artists[i])
                        for i in hits[offset:offset + limit]]
                body["artists"] = self.shapes.page(rows, href, dict(params, type=kind), offset,
                                                   limit, len(hits))
            elif kind == "playlist":
                found = self.index.playlists(query)
                rows = [self._maybe_null(p) for p in found[offset:offset + limit]]
                body["playlists"] = self.shapes.page(rows, href, dict(params, type=kind),
                                                     offset, limit, len(found))
            else:
                body[f"{kind}s"] = self.shapes.page([], href, dict(params, type=kind), offset,
                                                    limit, 0)
        return web.json_response(body)

    def _maybe_null(self, playlist: Playlist) -> dict[str, Any] | None:
        # Spotify answers some playlist hits with a bare null; which ones is stable per list.
        digest = hashlib.blake2b(f"{self.config.seed}:{playlist.id}".encode(), digest_size=4)
        if int.from_bytes(digest.digest(), "big") / 2**32 < self.config.null_rate:
            return None
        return self.shapes.simplified_playlist(playlist)

    # ---------------------------------------------------------------- tracks, artists, albums
    async def get_track(self, request: web.Request) -> web.Response:
        market = self._market(request)
        if isinstance(market, web.Response):
            return market
        track = self._lookup(request, self.catalog.track_by_id)
        if isinstance(track, web.Response):
            return track
        return web.json_response(self.shapes.track(track, market))

    async def get_tracks(self, request: web.Request) -> web.Response:
        if not self.config.extended:
            return error(403, "Forbidden")
        ids = self._ids(request, 50)
        if isinstance(ids, web.Response):
            return ids
        market = self._market(request)
        if isinstance(market, web.Response):
            return market
        found = [self.catalog.track_by_id.get(i) for i in ids]
        return web.json_response({"tracks": [self.shapes.track(t, market) if t else None
                                             for t in found]})

    async def get_artist(self, request: web.Request) -> web.Response:
        if request.match_info["id"] == VARIOUS_ARTISTS_ID:
            return web.json_response(self.shapes.artist(None))
        artist = self._lookup(request, self.catalog.artist_by_id)
        if isinstance(artist, web.Response):
            return artist
        return web.json_response(self.shapes.artist(artist))

    async def get_artists(self, request: web.Request) -> web.Response:
        if not self.config.extended:
            return error(403, "Forbidden")
        ids = self._ids(request, 50)
        if isinstance(ids, web.Response):
            return ids
        found = [self.catalog.artist_by_id.get(i) for i in ids]
        return web.json_response({"artists": [self.shapes.artist(a) if a else None
                                              for a in found]})

    def discography(self, artist: Artist) -> list[tuple[str, Album]]:
        """``(album_group, album)`` for every album of ``artist``: the albums, singles and
        compilations it is an album artist of (their ``album_type``), then ``appears_on``:
        albums with a track of the artist where it is not an album artist (compilations
        credited to Various Artists, other artists' albums it is featured on). Grouped in
        ``ALBUM_GROUPS`` order, newest first within a group. Built once, on first use."""
        if self._discography is None:
            found: dict[int, dict[int, str]] = {}
            for album in self.catalog.albums:
                for i in album.artist_idxs:
                    found.setdefault(i, {})[album.idx] = album.album_type
                for t in album.track_idxs:
                    for i in self.catalog.tracks[t].artist_idxs:
                        found.setdefault(i, {}).setdefault(album.idx, "appears_on")
            rank = {g: n for n, g in enumerate(ALBUM_GROUPS)}
            albums = self.catalog.albums
            self._discography = {
                i: sorted(((g, albums[a]) for a, g in groups.items()),
                          key=lambda ga: (rank[ga[0]], -ga[1].year, ga[1].id))
                for i, groups in found.items()}
        return self._discography.get(artist.idx, [])

    async def get_artist_albums(self, request: web.Request) -> web.Response:
        if not self.config.album_endpoints:
            return error(403, "Forbidden")
        artist = self._lookup(request, self.catalog.artist_by_id)
        if isinstance(artist, web.Response):
            return artist
        limit = self._limit(request, 5 if not self.config.extended else 20,
                            50 if self.config.extended else 10)
        if isinstance(limit, web.Response):
            return limit
        offset = self._offset(request)
        if isinstance(offset, web.Response):
            return offset
        raw_groups = request.query.get("include_groups", "")
        groups = set(raw_groups.split(",")) if raw_groups else set(ALBUM_GROUPS)
        if not groups <= set(ALBUM_GROUPS):
            return error(400, "Invalid include_groups")
        listed = [(g, a) for g, a in self.discography(artist) if g in groups]
        rows = []
        for group, album in listed[offset:offset + limit]:
            row = self.shapes.simplified_album(album)
            if self.config.extended:      # removed for development-mode apps in February 2026
                row["album_group"] = group
            rows.append(row)
        params = {"include_groups": raw_groups} if raw_groups else {}
        return web.json_response(self.shapes.page(
            rows, f"{self.base}/artists/{artist.id}/albums", params, offset, limit,
            len(listed)))

    async def get_album(self, request: web.Request) -> web.Response:
        if not self.config.album_endpoints:
            return error(403, "Forbidden")
        market = self._market(request)
        if isinstance(market, web.Response):
            return market
        album = self._lookup(request, self.catalog.album_by_id)
        if isinstance(album, web.Response):
            return album
        return web.json_response(self.shapes.album(album, market))

    async def get_albums(self, request: web.Request) -> web.Response:
        if not self.config.extended:
            return error(403, "Forbidden")
        ids = self._ids(request, 20)
        if isinstance(ids, web.Response):
            return ids
        market = self._market(request)
        if isinstance(market, web.Response):
            return market
        found = [self.catalog.album_by_id.get(i) for i in ids]
        return web.json_response({"albums": [self.shapes.album(a, market) if a else None
                                             for a in found]})

    async def get_album_tracks(self, request: web.Request) -> web.Response:
        if not self.config.album_endpoints:
            return error(403, "Forbidden")
        album = self._lookup(request, self.catalog.album_by_id)
        if isinstance(album, web.Response):
            return album
        limit = self._limit(request, 20, 50)
        if isinstance(limit, web.Response):
            return limit
        offset = self._offset(request)
        if isinstance(offset, web.Response):
            return offset
        market = self._market(request)
        if isinstance(market, web.Response):
            return market
        rows = [self.shapes.simplified_track(self.catalog.tracks[i], market)
                for i in album.track_idxs[offset:offset + limit]]
        params = {"market": market} if market else {}
        return web.json_response(self.shapes.page(
            rows, f"{self.base}/albums/{album.id}/tracks", params, offset, limit,
            len(album.track_idxs)))

    # ---------------------------------------------------------------- playlists and the user
    def _playlist(self, request: web.Request) -> Playlist | web.Response:
        playlist = self._lookup(request, self.catalog.playlists)
        if isinstance(playlist, web.Response):
            return playlist
        if playlist.editorial and not self.config.extended:
            return error(404, "Resource not found")
        return playlist

    def _items_readable(self, playlist: Playlist) -> bool:
        """Development: the owner's own and collaborative lists only; extended: every list.
        ``owner_playlist_items`` off: none at all."""
        return self.config.owner_playlist_items and (playlist.readable or self.config.extended)

    def _types(self, request: web.Request) -> set[str]:
        return set(request.query.get("additional_types", "track").split(","))

    async def get_playlist(self, request: web.Request) -> web.Response:
        playlist = self._playlist(request)
        if isinstance(playlist, web.Response):
            return playlist
        market = self._market(request)
        if isinstance(market, web.Response):
            return market
        with_items = self._items_readable(playlist)
        return web.json_response(self.shapes.playlist(playlist, market, self._types(request),
                                                      with_items))

    async def get_playlist_items(self, request: web.Request,
                                 legacy_key_only: bool = False) -> web.Response:
        playlist = self._playlist(request)
        if isinstance(playlist, web.Response):
            return playlist
        if not self._items_readable(playlist):
            return error(403, "Forbidden")
        limit = self._limit(request, 20, 50)
        if isinstance(limit, web.Response):
            return limit
        offset = self._offset(request)
        if isinstance(offset, web.Response):
            return offset
        market = self._market(request)
        if isinstance(market, web.Response):
            return market
        total = len(playlist.track_idxs) + (len(playlist.extras) if self.config.playlist_extras
                                            else 0)
        types = self._types(request)
        rows = [self.shapes.playlist_item(playlist, i, market, types, legacy_key_only)
                for i in range(offset, min(total, offset + limit))]
        params = {k: request.query[k] for k in ("market", "additional_types")
                  if k in request.query}
        suffix = "tracks" if legacy_key_only else "items"
        page = self.shapes.page(rows, f"{self.base}/playlists/{playlist.id}/{suffix}", params,
                                offset, limit, total)
        self._corrupt(request, page, rows=True)
        return web.json_response(page)

    async def get_playlist_tracks(self, request: web.Request) -> web.Response:
        if not self.config.extended:
            return error(403, "Forbidden")      # replaced by /items in February 2026
        return await self.get_playlist_items(request, legacy_key_only=True)

    async def get_me(self, request: web.Request) -> web.Response:
        return web.json_response(self.shapes.me())

    async def get_my_playlists(self, request: web.Request) -> web.Response:
        limit = self._limit(request, 20, 50)
        if isinstance(limit, web.Response):
            return limit
        offset = self._offset(request, 100_000)
        if isinstance(offset, web.Response):
            return offset
        mine = self.catalog.owner_playlists()
        rows = [self.shapes.simplified_playlist(p) for p in mine[offset:offset + limit]]
        return web.json_response(self.shapes.page(rows, f"{self.base}/me/playlists", {},
                                                  offset, limit, len(mine)))
