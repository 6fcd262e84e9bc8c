"""``scrapy crawl spotify_catalog``: discover run-worthy tracks into the store, then enrich them.

Sources, cheapest first:

* the owner's own and collaborative playlists (``/me/playlists`` then ``/items``), in both
  profiles; unchanged playlists (same ``snapshot_id``) are skipped;
* cell-targeted search: for the umbrella x decade cell furthest below its target, field-filter
  queries such as ``genre:"outlaw country" year:1970-1979``, then the free-text seeds;
* in the extended profile only: playlist-name search and other users' playlists, and
  ``/artists?ids=`` for genres. Development mode makes no per-artist call unless
  ``DISCOVERY_ARTIST_LOOKUP_BUDGET`` allows it; artists gain genres from the ``genre:``
  queries that found them instead.

Search and playlist items already carry full track objects, so no track is looked up again.
Every new track is stored first (state ``pending``) and then yielded as a ``CandidateItem`` to
the pipeline chain (cheap filters, ReccoBeats enrichment). A resumed run re-yields what is
still pending, so a crash loses nothing.

This spider only discovers and enriches. The export is its own spider, ``catalog_export``
(``spiders/catalog_export.py``), which ``runs.crawl_catalog`` runs after this one when it ended
with nothing left to discover or enrich (reason ``finished`` or ``quota_parked``).
``-a mode=export`` runs only the export (this spider does nothing then); ``-a mode=discover``
crawls without exporting.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from scrapy import Request, Spider, signals
from scrapy.downloadermiddlewares.retry import get_retry_request
from scrapy.exceptions import DontCloseSpider, IgnoreRequest
from scrapy.utils.asyncio import create_looping_call

from runclub_spiders.catalog.selection import duration_reason
from runclub_spiders.downloadermiddlewares.rate_limit import set_aside_by_park
from runclub_spiders.export.manifest import run_requests, run_totals
from runclub_spiders.extensions.store import crawler_store
from runclub_spiders.items import CandidateItem
from runclub_spiders.planner import Planner
from runclub_spiders.seeds import SeedQuery, load_plan
from runclub_spiders.spotify_objects import (
    PageTracks,
    clean_text,
    paging,
    playlist_items_total,
    timestamp,
    token,
)
from runclub_spiders.store import Store
from runclub_spiders.utils.closing import SpiderClosing

logger = logging.getLogger(__name__)

GENRE_FILTER = re.compile(r'genre:"([^"]+)"')
EDITORIAL_PREFIX = "37i9dQZ"
PLAYLIST_PAGE = 50
MODES = ("full", "export", "discover")
DOWNLOADER_META = ("download_latency", "download_slot")


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class SpotifyCatalogSpider(Spider):
    name = "spotify_catalog"
    # Requests are never queued to JOBDIR: the store is what a restart resumes from.
    custom_settings = {"SCHEDULER": "runclub_spiders.scheduler.StoreBackedScheduler"}

    @classmethod
    def from_crawler(cls, crawler, *args: Any, **kwargs: Any) -> SpotifyCatalogSpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        spider.setup(crawler)
        return spider

    def setup(self, crawler) -> None:
        s = crawler.settings
        self.mode = getattr(self, "mode", "full")
        if self.mode not in MODES:
            raise ValueError(f"-a mode={self.mode}: use one of {', '.join(MODES)}")
        self.owner_phase_open = True        # reading the owner's playlists; no search yet
        self.owner_listing_done = False
        self.owner_chains = 0               # owner playlists whose pages are being read
        self.api = s["SPOTIFY_API_BASE_URL"].rstrip("/")
        self.market = s["SPOTIFY_MARKET"]
        self.extended = s["SPOTIFY_API_PROFILE"] == "extended"
        self.page_size = 50 if self.extended else 10
        self.plan = load_plan(s["SEEDS_PLAN"], s["SEEDS_UMBRELLAS"])
        self.concurrency = s.getint("DISCOVERY_CONCURRENCY")
        self.min_ms = s.getint("CATALOG_MIN_DURATION_MS")
        self.max_ms = s.getint("CATALOG_MAX_DURATION_MS")
        self.artist_budget = s.getint("DISCOVERY_ARTIST_LOOKUP_BUDGET")
        self.active = 0                     # discovery requests in flight
        self.user_id: str | None = None
        self.artist_lookups_inflight = False
        self.artist_lookup_parked = False   # the in-flight lookup waits, set aside, for a park
        self.progress_interval = s.getfloat("DISCOVERY_PROGRESS_INTERVAL")
        self._progress = None
        crawler.signals.connect(self.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(self.spider_idle, signal=signals.spider_idle)
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)

    # ---------------------------------------------------------------- lifecycle
    @property
    def store(self) -> Store:
        return crawler_store(self.crawler)

    def spider_opened(self) -> None:
        s = self.crawler.settings
        oversample = s.getfloat("DISCOVERY_OVERSAMPLE")
        min_new = s.getint("DISCOVERY_MIN_NEW_PER_PAGE") * self.page_size // 10
        self.planner = Planner(
            plan=self.plan, store=self.store, page_size=self.page_size,
            cell_target=max(1, round(s.getint("CATALOG_CELL_TARGET") * oversample)),
            max_candidates=round(s.getint("CATALOG_MAX_TRACKS") * oversample),
            min_new_per_page=max(1, min_new), patience=s.getint("DISCOVERY_PATIENCE"),
            family_trial=s.getint("DISCOVERY_FAMILY_TRIAL"),
            family_min_yield=s.getfloat("DISCOVERY_FAMILY_MIN_YIELD"),
            include_playlist_search=self.extended)
        self.crawler.stats.set_value("discovery/profile", "extended" if self.extended
                                     else "development")
        if self.progress_interval > 0:
            self._progress = create_looping_call(self.log_progress)
            self._progress.start(self.progress_interval, now=False)

    def spider_closed(self) -> None:
        if self._progress is not None and self._progress.running:
            self._progress.stop()
        self.log_progress()
        stats = self.crawler.stats
        stats.set_value("discovery/cells_at_target", self.planner.cells_at_target())
        stats.set_value("discovery/cells", len(self.planner.counts))
        for key, value in self.store.counts().items():
            stats.set_value(f"store/{key}", value)
        for name, family in sorted(self.planner.families.items()):
            stats.set_value(f"discovery/family/{name}/requests", family.requests)
            stats.set_value(f"discovery/family/{name}/new_tracks", family.new_tracks)
        run = stats.get_stats()
        self.store.add_run_counts(utc_now()[:10], run_requests(run), run_totals(run))

    def log_progress(self) -> None:
        counts = self.store.counts()
        today = {k.rsplit("/", 1)[1]: v for k, v in self.crawler.stats.get_stats().items()
                 if k.startswith("quota/requests_today/")} or \
            run_requests(self.crawler.stats.get_stats())
        yields = ", ".join(f"{name} {family.per_request:.1f}"
                           for name, family in sorted(self.planner.families.items())
                           if family.requests)
        logger.info("progress: %d candidates, %d with features, %d misses, %d pending; "
                    "%d/%d cells at target; requests today: %s; new tracks per request: %s",
                    counts["tracks"], counts["features"], counts["misses"], counts["pending"],
                    self.planner.cells_at_target(), len(self.planner.counts),
                    ", ".join(f"{k}={v}" for k, v in sorted(today.items())) or "none",
                    yields or "none yet")

    async def start(self):
        if self.mode == "export":
            return                            # no API calls (runs.crawl_catalog exports)
        now = utc_now()
        for track_id in self.store.pending_enrichment(now):
            row = self.store.track(track_id)
            if row is not None:
                yield self._candidate(row, source="store")
        # The owner's playlists first (who we are decides which playlists' items are readable
        # in development mode); searching starts once they are read (_owner_phase_step), so
        # the planner always decides from the same counts, however a run was interrupted.
        yield Request(f"{self.api}/me", callback=self.parse_me, errback=self.failed,
                      dont_filter=True, priority=10,
                      meta={"owner_listing": True})

    def spider_idle(self) -> None:
        if self.artist_lookups_inflight and not self.artist_lookup_parked:
            raise DontCloseSpider
        if self.owner_phase_open and self.mode != "export":
            # Safety net: whatever stopped the playlist phase from closing, search now.
            self.owner_listing_done, self.owner_chains = True, 0
            requests = list(self._owner_phase_step())
            if requests:
                for request in requests:
                    self.crawler.engine.crawl(request)
                raise DontCloseSpider
        request = self._artist_request() \
            if self.mode != "export" and not self.artist_lookups_inflight else None
        if request is not None:
            self.artist_lookups_inflight = True
            self.crawler.engine.crawl(request)
            raise DontCloseSpider

    # ---------------------------------------------------------------- search
    def _fill(self) -> list[Request]:
        requests = []
        while self.active < self.concurrency:
            chosen = self.planner.next_query()
            if chosen is None:
                break
            query, offset = chosen
            self.active += 1
            requests.append(self._search_request(query, offset))
        return requests

    def _search_request(self, query: SeedQuery, offset: int) -> Request:
        params = {"q": query.q, "type": query.kind, "limit": self.page_size,
                  "offset": offset, "market": self.market}
        # dont_filter: the planner, not the dupefilter, decides what is asked.
        return Request(f"{self.api}/search?{urlencode(params)}", callback=self.parse_search,
                       errback=self.failed, dont_filter=True,
                       meta={"seed": [query.family, query.q, query.kind, query.umbrella,
                                      query.decade], "offset": offset})

    def parse_search(self, response):
        body = _json(response)
        if body is None:
            yield from self._retry_malformed(response)
            return
        self.active = max(0, self.active - 1)
        query = SeedQuery(*response.meta["seed"])
        offset = response.meta["offset"]
        if query.kind == "playlist":
            yield from self._playlist_hits(body, query, offset)
        else:
            yield from self._track_hits(body, query, offset)
        yield from self._fill()

    def _track_hits(self, body: Any, query: SeedQuery, offset: int):
        items, total, _ = paging(body, "tracks")
        now = utc_now()
        genre = GENRE_FILTER.search(query.q)
        new_rows, known, edges = [], 0, []
        page = PageTracks(self.crawler.stats)       # counts skips, repairs, duplicates
        with self.store.transaction():
            for position, obj in enumerate(items):
                record = page.track(obj)
                if record is None:
                    continue
                is_new = self.store.upsert_track(record, source="search", query=query.q,
                                                 now=now)
                edges.append((record.id, offset + position))
                if genre:
                    # The Development Mode substitute for artist genres: the filter matched
                    # the track, most likely through its primary artist.
                    self.store.add_inferred_genre(record.artist_ids[0], genre.group(1))
                if is_new:
                    new_rows.append(record)
                else:
                    known += 1
            self.store.add_edges(query.q, query.kind, edges)
            self.planner.record_page(query, offset, total, len(new_rows), known, now)
            # Inside the transaction: a track and the cells it counts toward land together.
            candidates = list(self._candidates(new_rows, source="search", query=query))
        self._count_family(query, len(new_rows), known)
        yield from candidates

    def _playlist_hits(self, body: Any, query: SeedQuery, offset: int):
        items, total, _ = paging(body, "playlists")
        now = utc_now()
        with self.store.transaction():
            requests = self._consider_playlists(items, now)
            self.planner.record_page(query, offset, total, len(requests), 0, now)
        self._count_family(query, len(requests), 0)
        yield from requests

    def _count_family(self, query: SeedQuery, new: int, known: int) -> None:
        stats = self.crawler.stats
        stats.inc_value(f"discovery/family/{query.family}/pages")
        stats.inc_value("discovery/new_tracks", new)
        stats.inc_value("discovery/known_tracks", known)

    # ---------------------------------------------------------------- playlists
    def parse_me(self, response):
        body = _json(response)
        if body is None:
            yield from self._retry_malformed(response)
            return
        self.user_id = token(body.get("id")) if isinstance(body, dict) else None
        yield self._my_playlists_request(0)

    def _owner_phase_step(self):
        """Start searching once the owner's playlist listing and every list's pages are read."""
        if self.owner_phase_open and self.owner_listing_done and self.owner_chains <= 0:
            self.owner_phase_open = False
            yield from self._fill()

    def parse_my_playlists(self, response):
        body = _json(response)
        if body is None:
            yield from self._retry_malformed(response)
            return
        items, total, _ = paging(body)
        with self.store.transaction():
            requests = self._consider_playlists(items, utc_now())
        self.owner_chains += len(requests)
        yield from requests
        offset = response.meta.get("offset", 0)
        if total and offset + PLAYLIST_PAGE < total and items:
            yield self._my_playlists_request(offset + PLAYLIST_PAGE)
        else:
            self.owner_listing_done = True
            yield from self._owner_phase_step()

    def _my_playlists_request(self, offset: int) -> Request:
        return Request(f"{self.api}/me/playlists?limit={PLAYLIST_PAGE}&offset={offset}",
                       callback=self.parse_my_playlists, errback=self.failed,
                       dont_filter=True, priority=10,
                       meta={"offset": offset, "owner_listing": True})

    def _consider_playlists(self, objects: list[Any], now: str) -> list[Request]:
        """Register every listed playlist; requests for those whose items are worth reading."""
        requests = (self._consider_playlist(obj, now) for obj in objects)
        return [r for r in requests if r is not None]

    def _consider_playlist(self, obj: Any, now: str) -> Request | None:
        stats = self.crawler.stats
        if not isinstance(obj, dict) or not isinstance(obj.get("id"), str):
            stats.inc_value("playlists/skipped/null")
            return None
        playlist_id = obj["id"]
        owner = obj.get("owner") if isinstance(obj.get("owner"), dict) else {}
        editorial = playlist_id.startswith(EDITORIAL_PREFIX) or owner.get("id") == "spotify"
        if editorial and not self.extended:
            # Development mode: Spotify-owned playlists answer 404; never ask.
            stats.inc_value("playlists/skipped/editorial")
            return None
        mine = owner.get("id") == self.user_id or obj.get("collaborative") is True
        if not (mine or self.extended):
            # Development mode: items of other users' playlists answer 403; never ask.
            stats.inc_value("playlists/skipped/not_owned")
            return None
        total = playlist_items_total(obj)
        snapshot = token(obj.get("snapshot_id"))
        previous = self.store.playlist(playlist_id)
        self.store.see_playlist(playlist_id, owner=clean_text(owner.get("id")),
                                name=clean_text(obj.get("name")), snapshot_id=snapshot,
                                items_total=total, now=now)
        if previous is not None and snapshot and previous["last_snapshot_processed"] == snapshot:
            stats.inc_value("playlists/unchanged")
            return None
        start = 0
        if previous is not None and previous["next_offset"]:
            # Resume a half-read list, or re-read only the tail of a changed one: Spotify
            # appends new items at the end.
            start = max(0, previous["next_offset"] - PLAYLIST_PAGE) \
                if previous["last_snapshot_processed"] else previous["next_offset"]
        stats.inc_value("playlists/read")
        return self._items_request(playlist_id, snapshot, start, owner=self.owner_phase_open)

    def _items_request(self, playlist_id: str, snapshot: str | None, offset: int, *,
                       owner: bool = False) -> Request:
        params = {"limit": PLAYLIST_PAGE, "offset": offset, "market": self.market,
                  "additional_types": "track"}
        return Request(f"{self.api}/playlists/{playlist_id}/items?{urlencode(params)}",
                       callback=self.parse_playlist_items, errback=self.failed,
                       dont_filter=True,
                       meta={"playlist": playlist_id, "snapshot": snapshot, "offset": offset,
                             "owner": owner},
                       priority=5)

    def parse_playlist_items(self, response):
        playlist_id, snapshot = response.meta["playlist"], response.meta["snapshot"]
        offset = response.meta["offset"]
        body = _json(response)
        if body is None:
            yield from self._retry_malformed(response)
            return
        items, total, _ = paging(body)
        now = utc_now()
        new_rows, rows = [], []
        page = PageTracks(self.crawler.stats)       # counts skips, repairs, duplicates
        with self.store.transaction():
            for row in items:
                if not isinstance(row, dict):
                    self.crawler.stats.inc_value("discovery/skipped/null")
                    continue
                obj = row.get("item") if "item" in row else row.get("track")
                record = page.track(obj)
                if record is None:
                    continue
                if self.store.upsert_track(record, source="playlist", playlist_id=playlist_id,
                                           now=now):
                    new_rows.append(record)
                added = timestamp(row.get("added_at"))
                rows.append((record.id, added))
            self.store.add_playlist_tracks(playlist_id, rows)
            following = offset + PLAYLIST_PAGE
            if total is not None and following < total and items:
                self.store.playlist_progress(playlist_id, following)
            else:
                self.store.finish_playlist(playlist_id, snapshot, now,
                                           processed=total if total is not None else following)
            candidates = list(self._candidates(new_rows, source="playlist",
                                               playlist_id=playlist_id))
        self.crawler.stats.inc_value("discovery/playlist_new_tracks", len(new_rows))
        yield from candidates
        if total is not None and following < total and items:
            yield self._items_request(playlist_id, snapshot, following,
                                      owner=response.meta.get("owner", False))
        elif response.meta.get("owner"):
            self.owner_chains -= 1
            yield from self._owner_phase_step()

    # ---------------------------------------------------------------- artists
    def _artist_request(self) -> Request | None:
        if self.extended:
            ids = self.store.artists_without_details(50)
            if ids:
                return Request(f"{self.api}/artists?ids={','.join(ids)}",
                               callback=self.parse_artists, errback=self.failed,
                               meta={"artist_ids": ids})
        elif self.artist_budget > 0:
            ids = self.store.artists_without_details(1)
            if ids:
                self.artist_budget -= 1
                return Request(f"{self.api}/artists/{ids[0]}", callback=self.parse_artists,
                               errback=self.failed,
                               meta={"artist_ids": ids})
        return None

    def parse_artists(self, response):
        body = _json(response)
        if body is None:
            return list(self._retry_malformed(response))
        self.artist_lookups_inflight = self.artist_lookup_parked = False
        objects = body.get("artists") if isinstance(body, dict) and "artists" in body \
            else [body]
        now = utc_now()
        by_id = {o["id"]: o for o in objects or [] if isinstance(o, dict)
                 and isinstance(o.get("id"), str)}
        with self.store.transaction():
            for artist_id in response.meta["artist_ids"]:
                obj = by_id.get(artist_id, {})
                genres = obj.get("genres")
                genres = [g for g in genres if isinstance(g, str)] if isinstance(genres, list) \
                    else None
                popularity = obj.get("popularity")
                self.store.set_artist_details(
                    artist_id, genres=genres if genres is not None else [],
                    popularity=popularity if isinstance(popularity, int) else None,
                    image_url=None, now=now)
        self.crawler.stats.inc_value("discovery/artist_lookups")
        return []

    # ---------------------------------------------------------------- shared
    def _candidates(self, records, *, source: str, query: SeedQuery | None = None,
                    playlist_id: str | None = None):
        # Only the primary artists' genres: a page must not reread every artist in the store.
        genres = self.store.genres_of(r.artist_ids[0] for r in records)
        for record in records:
            if self._counts_toward_cells(record):
                cell_query = query.umbrella if query and query.decade else None
                cells = self.planner.track_cells(record, genres.get(record.artist_ids[0], ()),
                                                 cell_query)
                self.planner.add_candidate(cells)
                self.store.set_planning_cells(record.id, cells)
            yield CandidateItem(id=record.id, isrc=record.isrc, duration_ms=record.duration_ms,
                                is_playable=record.is_playable,
                                artist_ids=list(record.artist_ids), source=source,
                                query=query.q if query else None, playlist_id=playlist_id)

    def _counts_toward_cells(self, record) -> bool:
        """Would the cheap filters keep it, and is it the track of its ISRC that counts (the
        one rule, ``catalog.isrc``; a winner takes an earlier loser's count over)? Decided
        once, at discovery, and stored with it."""
        return (not duration_reason(record.duration_ms, self.min_ms, self.max_ms)
                and record.is_playable is not False
                and self.store.claim_isrc_count(record.id, record.isrc, self.min_ms, self.max_ms))

    def _candidate(self, row, *, source: str) -> CandidateItem:
        playable = row["is_playable"]
        return CandidateItem(id=row["id"], isrc=row["isrc"], duration_ms=row["duration_ms"],
                             is_playable=None if playable is None else bool(playable),
                             artist_ids=json.loads(row["artist_ids"]), source=source,
                             query=row["first_query"], playlist_id=row["first_playlist_id"])

    def _retry_malformed(self, response):
        """A truncated or garbled body is a transient fault, not an empty result."""
        self.crawler.stats.inc_value("discovery/malformed_json")
        retry = get_retry_request(response.request, spider=self, reason="malformed_json")
        if retry is not None:
            # Meta set by the downloader stays behind (it describes the failed attempt).
            for key in DOWNLOADER_META:
                retry.meta.pop(key, None)
            yield retry
            return
        # Out of retries: let the query be picked again later rather than marked empty.
        yield from self._owner_phase_failed(response.meta)
        if "seed" in response.meta:
            self.active = max(0, self.active - 1)
            self.planner.release(SeedQuery(*response.meta["seed"]))
        if "artist_ids" in response.meta:
            self.artist_lookups_inflight = False

    def _owner_phase_failed(self, meta):
        """A playlist-phase request gave up: the phase goes on without it."""
        if meta.get("owner_listing"):
            self.owner_listing_done = True
            yield from self._owner_phase_step()
        elif meta.get("owner"):
            self.owner_chains -= 1
            yield from self._owner_phase_step()

    def failed(self, failure):
        request = failure.request
        if failure.check(SpiderClosing):
            return []      # given up as the spider closes: the next run plans it again
        if set_aside_by_park(failure):
            # The quota middleware keeps a copy to send when the park ends: that copy owns the
            # page now. Releasing the query here would plan the same page again, and both
            # would be asked (the page twice). It still counts as in flight.
            if "artist_ids" in request.meta:
                self.artist_lookup_parked = True
            return []
        owner_requests = list(self._owner_phase_failed(request.meta))
        if owner_requests:
            return owner_requests
        if "seed" in request.meta:
            self.active = max(0, self.active - 1)
            query = SeedQuery(*request.meta["seed"])
            self.planner.release(query)
            if failure.check(IgnoreRequest):
                return []                 # refused (no token): not worth a new page now
            return self._fill()
        if "artist_ids" in request.meta:
            self.artist_lookups_inflight = False
        return []


def _json(response) -> Any:
    """The decoded body, or None when it is not JSON at all (truncated, garbled)."""
    try:
        return json.loads(response.text)
    except (ValueError, AttributeError):
        return None
