"""The simulator's HTTP server: Spotify API, Spotify Accounts, ReccoBeats and the open-data
services (Wikidata, MusicBrainz) on one loopback port.

Services live under their own prefixes so that one port serves them all:

* ``/spotify/v1``  the Web API           (SPOTIFY_API_BASE_URL)
* ``/accounts``    /authorize, /api/token (SPOTIFY_ACCOUNTS_BASE_URL)
* ``/reccobeats/v1`` ReccoBeats          (RECCOBEATS_BASE_URL)
* ``/wikidata/sparql`` Wikidata's SPARQL endpoint (WIKIDATA_SPARQL_URL)
* ``/musicbrainz/ws/2`` MusicBrainz's web service (MUSICBRAINZ_BASE_URL is ``/musicbrainz``)
* ``/_sim``        the simulator's own admin routes (request log, playlist edits); never
  called by the crawler.

The server runs its own asyncio loop in a background thread, so tests can talk to it with a
blocking client (spotipy, requests) as well as through Scrapy's downloader on the reactor.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections import Counter
from typing import Any

from aiohttp import web

from runclub_spiders import clock
from runclub_spiders.simulator.accounts import Accounts
from runclub_spiders.simulator.catalog import Catalog, Track
from runclub_spiders.simulator.config import SimulatorConfig
from runclub_spiders.simulator.hostile import HOSTILE_KEY, TRACK_KINDS
from runclub_spiders.simulator.limits import (
    ClientWindows,
    FaultPlan,
    LoggedRequest,
    QuotaBuckets,
    RateWindow,
    RequestLog,
    RollingQuota,
)
from runclub_spiders.simulator.musicbrainz import MusicBrainz
from runclub_spiders.simulator.reccobeats import ReccoBeats
from runclub_spiders.simulator.search import SearchIndex
from runclub_spiders.simulator.spotify_api import SpotifyApi
from runclub_spiders.simulator.wikidata import Wikidata

SPOTIFY_PREFIX, ACCOUNTS_PREFIX, RECCO_PREFIX, ADMIN_PREFIX = (
    "/spotify/v1", "/accounts", "/reccobeats/v1", "/_sim")
WIKIDATA_PREFIX, MUSICBRAINZ_PREFIX = "/wikidata", "/musicbrainz"
OPEN_DATA = ("wikidata", "musicbrainz")


# The quota bucket of each Web API path, by its first segment (``/me/playlists`` aside).
# Any path not listed (removed endpoints, unknown paths) counts against ``other``, which has
# no quota.
BUCKET_OF_HEAD = {
    "search": "search",          # /search
    "albums": "albums",          # /albums/{id}, /albums/{id}/tracks, /albums?ids=
    "artists": "artists",        # /artists/{id}, /artists/{id}/albums, /artists?ids=
    "tracks": "tracks",          # /tracks/{id}, /tracks?ids=
    "playlists": "playlists",    # /playlists/{id}, /playlists/{id}/items (and /tracks)
    "me": "user",                # /me; /me/playlists is "playlists"
}


def spotify_bucket(path: str, *, album_tracks: bool = False) -> str:
    """The quota bucket a Web API path counts against (``BUCKET_OF_HEAD``); with
    ``album_tracks`` (the ``album_tracks_bucket`` knob) ``/albums/{id}/tracks`` has its own."""
    parts = path[len(SPOTIFY_PREFIX):].strip("/").split("/")
    head = parts[0]
    if head == "me" and len(parts) > 1 and parts[1] == "playlists":
        return "playlists"
    if album_tracks and head == "albums" and parts[-1] == "tracks" and len(parts) == 3:
        return "album_tracks"
    return BUCKET_OF_HEAD.get(head, "other")


class Simulator:
    """Build the catalog, serve it on loopback, and expose what tests need to look at."""

    def __init__(self, config: SimulatorConfig | None = None, catalog: Catalog | None = None,
                 **overrides: Any) -> None:
        self.config = config or SimulatorConfig(**overrides)
        self.catalog = catalog or Catalog(self.config.size, self.config.seed,
                                          self.config.market, self.config.recco_coverage)
        if not self.config.playlist_extras:
            for playlist in self.catalog.playlists.values():
                playlist.extras = ()
        self.index = SearchIndex(self.catalog)
        self.log = RequestLog(self.config.request_log)
        self._answering: Counter[str] = Counter()    # requests arrived, not yet answered
        self.accounts = Accounts(self.config)
        self.rate = RateWindow(self.config.rate_limit, self.config.rate_window)
        self.recco_rate = RateWindow(self.config.recco_rate_limit, self.config.rate_window)
        self.wikidata = Wikidata(self.catalog, self.config)
        self.wikidata_rate = ClientWindows(self.config.wikidata_rate_limit,
                                           self.config.wikidata_rate_window)
        self.musicbrainz = MusicBrainz(self.catalog, self.config)
        self.musicbrainz_rate = ClientWindows(self.config.musicbrainz_window_limit(),
                                              self.config.musicbrainz_rate_window)
        sizes = self.config.bucket_sizes()
        self.quota: QuotaBuckets | RollingQuota = (
            RollingQuota(sizes, self.config.quota_window) if self.config.quota_window > 0
            else QuotaBuckets(sizes, self.config.quota_retry_after))
        self.faults = FaultPlan(self.config.fault_seed)
        self.port = 0
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._stop: asyncio.Event | None = None

    # ---------------------------------------------------------------- addresses
    @property
    def origin(self) -> str:
        host = f"[{self.config.host}]" if ":" in self.config.host else self.config.host
        return f"http://{host}:{self.port}"

    @property
    def spotify_api_base_url(self) -> str:
        return self.origin + SPOTIFY_PREFIX

    @property
    def accounts_base_url(self) -> str:
        return self.origin + ACCOUNTS_PREFIX

    @property
    def reccobeats_base_url(self) -> str:
        return self.origin + RECCO_PREFIX

    @property
    def wikidata_sparql_url(self) -> str:
        return self.origin + WIKIDATA_PREFIX + "/sparql"

    @property
    def musicbrainz_base_url(self) -> str:
        return self.origin + MUSICBRAINZ_PREFIX

    def env(self) -> dict[str, str]:
        """The environment a crawler needs to run against this simulator."""
        return {"SPOTIFY_API_BASE_URL": self.spotify_api_base_url,
                "SPOTIFY_ACCOUNTS_BASE_URL": self.accounts_base_url,
                "RECCOBEATS_BASE_URL": self.reccobeats_base_url,
                "WIKIDATA_SPARQL_URL": self.wikidata_sparql_url,
                "MUSICBRAINZ_BASE_URL": self.musicbrainz_base_url,
                "SPOTIFY_CLIENT_ID": self.config.client_id,
                "SPOTIFY_CLIENT_SECRET": self.config.client_secret,
                "SPOTIFY_REFRESH_TOKEN": self.config.refresh_token,
                "SPOTIFY_REDIRECT_URI": "http://127.0.0.1:8888/callback",
                "SPOTIFY_MARKET": self.config.market,
                "SPOTIFY_API_PROFILE": self.config.profile}

    # ---------------------------------------------------------------- application
    def make_app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        spotify = web.Application()
        spotify.add_routes(SpotifyApi(self.catalog, self.index, self.config,
                                      self.spotify_api_base_url).routes())
        accounts = web.Application()
        accounts.add_routes(self.accounts.routes())
        recco = web.Application()
        self.reccobeats = ReccoBeats(self.catalog, self.config)
        recco.add_routes(self.reccobeats.routes())
        wikidata = web.Application()
        wikidata.add_routes(self.wikidata.routes())
        musicbrainz = web.Application()
        musicbrainz.add_routes(self.musicbrainz.routes())
        admin = web.Application()
        admin.add_routes([web.get("/requests", self._admin_requests),
                          web.post("/playlists/{id}/edit", self._admin_edit_playlist),
                          web.post("/tokens/revoke", self._admin_revoke)])
        app.add_subapp(SPOTIFY_PREFIX, spotify)
        app.add_subapp(ACCOUNTS_PREFIX, accounts)
        app.add_subapp(RECCO_PREFIX, recco)
        app.add_subapp(WIKIDATA_PREFIX, wikidata)
        app.add_subapp(MUSICBRAINZ_PREFIX, musicbrainz)
        app.add_subapp(ADMIN_PREFIX, admin)
        return app

    def _service(self, path: str) -> str:
        for prefix, name in ((SPOTIFY_PREFIX, "spotify"), (ACCOUNTS_PREFIX, "accounts"),
                             (RECCO_PREFIX, "reccobeats"), (WIKIDATA_PREFIX, "wikidata"),
                             (MUSICBRAINZ_PREFIX, "musicbrainz"), (ADMIN_PREFIX, "admin")):
            if path == prefix or path.startswith(prefix + "/"):
                return name
        return "unknown"

    @web.middleware
    async def _middleware(self, request: web.Request, handler) -> web.StreamResponse:
        service = self._service(request.path)
        if service == "admin":
            return await handler(request)
        bucket = (spotify_bucket(request.path, album_tracks=self.config.album_tracks_bucket)
                  if service == "spotify"
                  else "reccobeats" if service == "reccobeats" else service)
        key = f"{request.method} {request.path_qs}"
        attempt = self.faults.attempt(key)
        fault = ""
        status = 0
        retry_after = ""
        self._answering[service] += 1
        try:
            response, fault = await self._respond(request, handler, service, bucket, key,
                                                  attempt)
            status = response.status
            retry_after = response.headers.get("Retry-After", "")
            return response
        except web.HTTPException as exc:      # redirects from /authorize, 404/405 from routing
            status = exc.status
            if exc.status in (404, 405) and service == "spotify":
                status = 404
                return _spotify_error(404, "Service not found")
            raise
        except _DroppedError:
            # The transport is already aborted, so aiohttp's write of this placeholder fails
            # as a quiet client disconnect; re-raising would log a traceback at ERROR instead.
            fault = "drop"
            return web.Response(status=499)
        finally:
            self._answering[service] -= 1
            # Corruptions count as served only when the body went out whole.
            hostile = tuple(request.get(HOSTILE_KEY, ())) if not fault else ()
            self.log.add(LoggedRequest(clock.now(), service, request.method, request.path,
                                       request.query_string, status, bucket,
                                       fault or ("hostile" if hostile else ""), retry_after,
                                       hostile))

    async def _respond(self, request: web.Request, handler, service: str, bucket: str,
                       key: str, attempt: int) -> tuple[web.StreamResponse, str]:
        cfg, plan = self.config, self.faults
        if service in OPEN_DATA:                          # outage, User-Agent policy
            refused = (self.wikidata if service == "wikidata" else self.musicbrainz).refused(
                request)
            if refused is not None:
                return refused
        injectable = (service in ("spotify", "reccobeats", *OPEN_DATA)
                      or request.path.endswith("/api/token"))
        if injectable:
            if plan.hit("drop", key, attempt, cfg.drop_rate):
                assert request.transport is not None
                request.transport.abort()
                raise _DroppedError
            if plan.hit("error", key, attempt, cfg.error_rate):
                status = (500, 502, 503)[int(plan.draw("which", key, attempt) * 3)]
                return _server_error(service, status), f"error {status}"
            if plan.hit("slow", key, attempt, cfg.slow_rate):
                await asyncio.sleep(cfg.slow_seconds)
            latency = {"reccobeats": cfg.recco_latency,
                       "wikidata": cfg.wikidata_latency,
                       "musicbrainz": cfg.musicbrainz_latency}.get(service, 0.0)
            if request.path.endswith("/api/token"):
                latency = cfg.token_latency
            if latency:
                await asyncio.sleep(latency)
        if service == "spotify":
            denied = self.accounts.check_bearer(request)
            if denied is not None:
                return denied, ""
            if plan.hit("spotify429", key, attempt, cfg.spotify_429_rate):
                response = _spotify_error(429, "API rate limit exceeded")
                response.headers["Retry-After"] = "1"
                return response, "429"
            if not self.rate.admit(time.time()):          # short windows: wall time
                retry_after = cfg.rate_retry_after or \
                    1 + int(plan.draw("retry-after", key, attempt) * 5)
                response = _spotify_error(429, "API rate limit exceeded")
                response.headers["Retry-After"] = str(retry_after)
                return response, "rate limit"
            locked_for = self.quota.check(bucket, clock.now())   # quota: the shared clock
            if locked_for:
                response = _spotify_error(429, "Too many requests", reason="QUOTA_EXCEEDED")
                if cfg.quota_send_retry_after:
                    response.headers["Retry-After"] = str(max(1, round(locked_for)))
                return response, "quota"
        elif service == "reccobeats":
            blocked = self.reccobeats.blocked(request)
            if blocked is not None:
                return blocked, "cloudflare"
            if (plan.hit("recco429", key, attempt, cfg.recco_429_rate)
                    or not self.recco_rate.admit(time.time())):
                retry_after = 1 + int(plan.draw("retry-after", key, attempt) * 3)
                return web.Response(status=429, text="Too Many Requests",
                                    headers={"Retry-After": str(retry_after)}), "recco 429"
        elif service == "wikidata":
            wait = self.wikidata_rate.admit(request.headers.get("User-Agent", ""), time.time())
            if wait:
                return self.wikidata.rate_limited(wait), "rate limit"
        elif service == "musicbrainz":
            wait = self.musicbrainz_rate.admit(request.headers.get("User-Agent", ""),
                                               time.time())
            if wait:
                return self.musicbrainz.rate_limited(wait), "rate limit"
        response = await handler(request)
        if (injectable and response.status == 200 and isinstance(response, web.Response)
                and plan.hit("malformed", key, attempt, cfg.malformed_rate)):
            body = response.body if isinstance(response.body, bytes) else b"{}"
            return web.Response(status=200, body=body[: max(1, len(body) // 2)],
                                content_type="application/json"), "malformed"
        return response, ""

    # ---------------------------------------------------------------- admin routes
    async def _admin_requests(self, request: web.Request) -> web.Response:
        since = int(request.query.get("since", "0"))
        entries = self.log.entries(since)
        return web.json_response({"requests": [e.as_dict() for e in entries],
                                  "next": since + len(entries)})

    async def _admin_edit_playlist(self, request: web.Request) -> web.Response:
        playlist_id = request.match_info["id"]
        if playlist_id not in self.catalog.playlists:
            return web.json_response({"error": "unknown playlist"}, status=404)
        playlist = self.catalog.edit_playlist(playlist_id, int(request.query.get("add", "5")),
                                              int(request.query.get("remove", "0")))
        return web.json_response({"id": playlist.id, "snapshot_id": playlist.snapshot_id})

    async def _admin_revoke(self, request: web.Request) -> web.Response:
        self.accounts.revoke_all()
        return web.json_response({"revoked": True})

    # ---------------------------------------------------------------- running
    def start(self) -> Simulator:
        """Listen on loopback and serve from a background thread; returns once ready."""
        family = socket.AF_INET6 if ":" in self.config.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.config.host, self.config.port))
        sock.listen(128)
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        ready = threading.Event()
        failure: list[BaseException] = []

        async def serve() -> None:
            self._stop = asyncio.Event()
            # A stopped simulator does not wait for answers it is still delaying (latency
            # knobs, slow faults): their clients have gone or will see a dropped connection.
            self._runner = web.AppRunner(self.make_app(), access_log=None,
                                         handle_signals=False, shutdown_timeout=0.5)
            await self._runner.setup()
            await web.SockSite(self._runner, sock).start()
            ready.set()
            await self._stop.wait()
            await self._runner.cleanup()
            # Handlers still sleeping past the shutdown timeout end here, quietly.
            pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            try:
                self._loop.run_until_complete(serve())
            except BaseException as exc:  # surfaced to start()'s caller
                failure.append(exc)
                ready.set()
            finally:
                self._loop.close()

        self._thread = threading.Thread(target=run, name="runclub-simulator", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        if self._loop and self._stop and self._thread and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(timeout=10)
        self.log.close()

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---------------------------------------------------------------- for tests
    @staticmethod
    def advance_clock(seconds: float) -> float:
        """Move the quota clock (``runclub_spiders.clock``) ``seconds`` ahead; returns the new
        offset. The clock is the process's: a crawl in this process sees the same shift (a
        crawl in a subprocess needs ``RUNCLUB_CLOCK_OFFSET`` set to ``clock.offset()``)."""
        clock.set_offset(clock.offset() + seconds)
        return clock.offset()

    def answering(self, service: str) -> int:
        """How many requests to ``service`` are being answered now (arrived, not yet logged):
        a slow answer (``token_latency``, say) shows here while the client waits for it."""
        return self._answering[service]

    def requests(self, since: int = 0, service: str | None = None) -> list[LoggedRequest]:
        """The log from position ``since`` of the whole log (all services), filtered after."""
        entries = self.log.entries(since)
        return [e for e in entries if service is None or e.service == service]

    def opendata_truth(self, track: Track) -> dict[str, Any]:
        """What the open-data services hold about ``track`` (tests and ``--truth`` only):
        each of its artists' Wikidata item and genre labels, and its recording in
        MusicBrainz."""
        artists = [self.catalog.artists[i] for i in track.artist_idxs]
        entries = [self.wikidata.entry(a) for a in artists]
        return {"wikidata": [{"artist": a.id, "item": e.item if e else None,
                              "genres": list(e.genres) if e else []}
                             for a, e in zip(artists, entries, strict=True)],
                "musicbrainz": self.musicbrainz.truth(track)}

    def hostile_served(self) -> Counter[str]:
        """How many of each ``hostile_rate`` corruption went out in a whole 200 response."""
        return Counter(kind for entry in self.log.entries() for kind in entry.hostile)

    def hostile_skips(self) -> Counter[str]:
        """The ``discovery/skipped/<reason>`` counts the corruptions served should cause."""
        served = self.hostile_served()
        skips: Counter[str] = Counter()
        for kind, reason in TRACK_KINDS.items():
            if reason is not None and served[kind]:
                skips[reason] += served[kind]
        return skips

    def edit_playlist(self, playlist_id: str, add: int = 5, remove: int = 0) -> str:
        """Edit a playlist on the simulator's own loop; returns the new snapshot_id."""
        def edit() -> str:
            return self.catalog.edit_playlist(playlist_id, add, remove).snapshot_id

        if self._loop is None:
            return edit()
        future = asyncio.run_coroutine_threadsafe(_call(edit), self._loop)
        return future.result(timeout=10)


class _DroppedError(Exception):
    """The connection was closed on purpose; aiohttp drops the half-finished response."""


async def _call(fn):
    return fn()


def _spotify_error(status: int, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": {"status": status, "message": message, **extra}},
                             status=status)


def _server_error(service: str, status: int) -> web.Response:
    if service == "spotify":
        return _spotify_error(status, {500: "Server error", 502: "Bad gateway",
                                       503: "Service unavailable"}[status])
    return web.Response(status=status, text="upstream error")
