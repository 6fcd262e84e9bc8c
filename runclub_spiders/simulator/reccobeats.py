"""ReccoBeats over the synthetic catalog, as docs/simulator.md, "ReccoBeats", describes it.

Batch endpoints take 1 to 40 IDs (Spotify IDs or ReccoBeats UUIDs, repeated ``ids=`` or
comma-separated), answer ``{"content": [...]}``, silently omit what they do not know, and key
rows by their own UUID: the Spotify ID appears only inside ``href``. No ``time_signature``.
"""

from __future__ import annotations

import random
import uuid
from typing import Any

from aiohttp import web

from runclub_spiders.simulator.catalog import RECCO_NAMESPACE, Catalog, Track
from runclub_spiders.simulator.config import SimulatorConfig
from runclub_spiders.simulator.limits import default_agent

MAX_IDS = 40


class ReccoBeats:
    def __init__(self, catalog: Catalog, config: SimulatorConfig) -> None:
        self.catalog, self.config = catalog, config

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/audio-features", self.audio_features),
                web.get("/track", self.tracks),
                web.get("/track/{id}", self.track),
                web.get("/track/{id}/audio-features", self.track_features)]

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

    def _rows(self, request: web.Request, ids: list[str], render) -> web.Response:
        found: dict[str, Track] = {}
        for id_ in ids:
            track = self._find(id_)
            if track is not None:
                found.setdefault(track.id, track)
        rows = [render(t) for t in found.values()]
        if self.config.recco_stray_rows and self.catalog.track_by_recco_id:
            stray = next(t for t in self.catalog.track_by_recco_id.values() if t.id not in found)
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
                "artists": [{"id": str(_uuid(a.id)), "name": a.name,
                             "href": f"https://open.spotify.com/artist/{a.id}"} for a in artists],
                "durationMs": track.duration_ms, "isrc": track.isrc, "ean": None, "upc": None,
                "href": self._href(track), "availableCountries": ",".join(track.markets),
                "popularity": track.popularity}

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


def _not_found(request: web.Request) -> web.Response:
    return web.json_response({"status": 404, "error": "Not Found", "path": request.path},
                             status=404)
