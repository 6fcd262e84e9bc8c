"""``scrapy crawl spotify_catalog``: discover run-worthy tracks into the store, then enrich them.

What to ask, and when, is the frontier's (``runclub_spiders.frontier``: the owner's playlists,
then cell-targeted searches, then artist lookups where the profile allows). This spider turns
its work into requests, parses each answer into the store, and tells the frontier what the
answer revealed (next pages, playlists worth reading). Search and playlist items carry full
track objects, so no track is looked up again. Every new track is stored first (``pending``),
then yielded as a ``CandidateItem`` to the pipelines (cheap filters, ReccoBeats enrichment);
a resumed run re-yields what is still pending, so a crash loses nothing.

It only discovers and enriches: ``runs.crawl_catalog`` runs the ``catalog_export`` spider
after it when it ended with nothing left to do (``finished`` or ``quota_parked``).
``-a mode=export`` runs only the export; ``-a mode=discover`` crawls without exporting.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from scrapy import Request, Spider
from scrapy.downloadermiddlewares.retry import get_retry_request

from runclub_spiders.extensions.store import crawler_store
from runclub_spiders.frontier import Frontier
from runclub_spiders.frontier.expansion import ALBUM_PAGE
from runclub_spiders.frontier.leads import LEAD_KINDS, RECCO_PAGE
from runclub_spiders.frontier.playlists import PLAYLIST_PAGE, consider_playlist
from runclub_spiders.frontier.work import (
    ALBUM,
    ALBUM_TRACKS,
    ARTIST_ALBUMS,
    ARTISTS,
    MY_PLAYLISTS,
    PLAYLIST_ITEMS,
    RECCO_ARTIST_TRACKS,
    RECCO_ARTISTS,
    SEARCH,
    TRACK,
    TRACKS,
    Work,
)
from runclub_spiders.items import CandidateItem
from runclub_spiders.pipelines import utc_now
from runclub_spiders.pipelines.reccobeats import REQUEST_META, request_headers, spotify_id
from runclub_spiders.probe import adapt, capabilities, discovery_switches
from runclub_spiders.seeds import CELL_FAMILY, GENRE_FILTER, load_plan
from runclub_spiders.spotify_objects import (
    AlbumRef,
    PageTracks,
    album_ref,
    artist_details,
    artist_ids,
    paging,
    parse_track,
    timestamp,
    token,
)
from runclub_spiders.store import Store
from runclub_spiders.utils.closing import CloseWatch

MODES = ("full", "export", "discover")
DOWNLOADER_META = ("download_latency", "download_slot")


class SpotifyCatalogSpider(Spider):
    name = "spotify_catalog"
    # Do genre:"..." hits write genre evidence? The capability probe turns it off when
    # Spotify ignores or empties the filter (its hits then say nothing of genres).
    genre_evidence_from_search = True
    # Requests are never queued to JOBDIR: the store is what a restart resumes from.
    custom_settings = {"SCHEDULER": "runclub_spiders.scheduler.StoreBackedScheduler"}

    @classmethod
    def from_crawler(cls, crawler, *args: Any, **kwargs: Any) -> SpotifyCatalogSpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        spider.mode = getattr(spider, "mode", "full")
        if spider.mode not in MODES:
            raise ValueError(f"-a mode={spider.mode}: use one of {', '.join(MODES)}")
        s = crawler.settings
        spider.api = s["SPOTIFY_API_BASE_URL"].rstrip("/")
        spider.recco = s["RECCOBEATS_BASE_URL"].rstrip("/")
        spider.recco_headers = request_headers()
        spider.market = s["SPOTIFY_MARKET"]
        spider.extended = s["SPOTIFY_API_PROFILE"] == "extended"
        spider.page_size = 50 if spider.extended else 10
        spider.plan = load_plan(s["SEEDS_PLAN"], s["SEEDS_UMBRELLAS"])
        spider.user_id = None
        return spider

    @property
    def store(self) -> Store:
        return crawler_store(self.crawler)

    async def start(self):
        if self.mode == "export":
            return                  # no API call: runs.crawl_catalog runs only the export
        self.crawler.stats.set_value("discovery/profile",
                                     "extended" if self.extended else "development")
        # What Spotify allows this app today (probed at most once a week): the plan adapts.
        watch = CloseWatch(self.crawler)
        probed = await capabilities(self.crawler, self.store, self.plan)
        if watch.closing:
            return                  # closed while probing (Ctrl-C, auth_failed): no work
        adaptation = adapt(probed, self.plan, page_size=self.page_size)
        self.plan, self.page_size = adaptation.plan, adaptation.page_size
        self.genre_evidence_from_search = adaptation.search_genres
        albums, listings, leads = discovery_switches(self.crawler.settings, probed)
        self.frontier = Frontier(self.crawler, self.store, self.plan,
                                 page_size=self.page_size, extended=self.extended,
                                 request_for=self.request_for, albums=albums,
                                 listings=listings, leads=leads)
        for track_id in self.store.pending_enrichment(utc_now()):
            row = self.store.track(track_id)
            if row is not None:
                yield CandidateItem.from_row(row, source="store")
        # The owner's playlists first (who we are decides which playlists' items are readable
        # in development mode); searching starts once they are read, so the planner always
        # decides from the same counts, however a run was interrupted.
        for request in self.frontier.start():
            yield request

    def request_for(self, work: Work) -> Request:
        if work.kind == SEARCH:
            assert work.query is not None
            params = {"q": work.query.q, "type": work.query.search_types,
                      "limit": self.page_size,
                      "offset": work.offset, "market": self.market}
            url, callback = f"{self.api}/search?{urlencode(params)}", self.parse_search
        elif work.kind == PLAYLIST_ITEMS:
            params = {"limit": PLAYLIST_PAGE, "offset": work.offset, "market": self.market,
                      "additional_types": "track"}
            url = f"{self.api}/playlists/{work.playlist_id}/items?{urlencode(params)}"
            callback = self.parse_playlist_items
        elif work.kind in (ALBUM, ALBUM_TRACKS):
            url, callback = self._album_url(work), self.parse_album
        elif work.kind == ARTIST_ALBUMS:
            # Compilations and appears_on: other artists, other years (frontier.expansion).
            params = {"include_groups": "album,single", "limit": self.page_size,
                      "offset": work.offset, "market": self.market}
            url = f"{self.api}/artists/{work.artist_id}/albums?{urlencode(params)}"
            callback = self.parse_artist_albums
        elif work.kind == TRACKS:
            params = {"ids": ",".join(work.track_ids), "market": self.market}
            url, callback = f"{self.api}/tracks?{urlencode(params)}", self.parse_tracks
        elif work.kind == TRACK:
            if self.extended:        # leads in batches of 50
                params = {"ids": ",".join(work.track_ids), "market": self.market}
                url = f"{self.api}/tracks?{urlencode(params)}"
            else:
                url = f"{self.api}/tracks/{work.track_ids[0]}?market={self.market}"
            callback = self.parse_lead
        elif work.kind in (RECCO_ARTISTS, RECCO_ARTIST_TRACKS):
            return self._recco_request(work)
        elif work.kind == MY_PLAYLISTS:
            url = f"{self.api}/me/playlists?limit={PLAYLIST_PAGE}&offset={work.offset}"
            callback = self.parse_my_playlists
        elif work.kind == ARTISTS:
            ids = work.artist_ids
            url = f"{self.api}/artists?ids={','.join(ids)}" if self.extended \
                else f"{self.api}/artists/{ids[0]}"
            callback = self.parse_artists
        else:
            url, callback = f"{self.api}/me", self.parse_me
        # dont_filter: the frontier, not the dupefilter, decides what is asked. The work's
        # bucket is the request's: an album read through /albums/{id} reads its later pages
        # through /albums/{id}/tracks, and counts them where its first page went.
        return Request(url, callback=callback, errback=self.frontier.failed, dont_filter=True,
                       priority=work.priority,
                       meta={"work": work, "spotify_bucket": work.bucket})

    def _recco_request(self, work: Work) -> Request:
        """ReccoBeats for leads (``frontier.leads``): artists' UUIDs, then their tracks."""
        if work.kind == RECCO_ARTISTS:
            url = f"{self.recco}/artist?{urlencode({'ids': ','.join(work.artist_ids)})}"
            callback = self.parse_recco_artists
        else:
            params = {"page": work.offset, "size": RECCO_PAGE}
            url, callback = f"{self.recco}/artist/{work.recco_id}/track?{urlencode(params)}", \
                self.parse_recco_artist_tracks
        return Request(url, callback=callback, errback=self.frontier.failed, dont_filter=True,
                       headers=self.recco_headers, meta={"work": work, **REQUEST_META})

    def _album_url(self, work: Work) -> str:
        """The album object (its first 50 tracks) first, then its track pages; an
        ``album_tracks`` read asks the track pages only."""
        if work.kind == ALBUM and work.offset == 0:
            return f"{self.api}/albums/{work.album_id}?{urlencode({'market': self.market})}"
        params = {"limit": ALBUM_PAGE, "offset": work.offset, "market": self.market}
        return f"{self.api}/albums/{work.album_id}/tracks?{urlencode(params)}"

    # ---------------------------------------------------------------- parsing
    def parse_me(self, response):
        body = _json(response)
        if body is None:
            return self._retry_malformed(response)
        self.user_id = token(body.get("id")) if isinstance(body, dict) else None
        return self.frontier.answered(response.meta["work"], [Work(MY_PLAYLISTS, owner=True)])

    def parse_my_playlists(self, response):
        body, work = _json(response), response.meta["work"]
        if body is None:
            return self._retry_malformed(response)
        items, total, _ = paging(body)
        with self.store.transaction():
            follow = self._playlists(items)
        if total and work.offset + PLAYLIST_PAGE < total and items:
            follow.append(Work(MY_PLAYLISTS, offset=work.offset + PLAYLIST_PAGE, owner=True))
        return self.frontier.answered(work, follow)

    def _playlists(self, objects: list[Any]) -> list[Work]:
        works = (consider_playlist(o, store=self.store, stats=self.crawler.stats,
                                   user_id=self.user_id, extended=self.extended,
                                   owner_phase=self.frontier.owner_phase, now=utc_now())
                 for o in objects)
        return [w for w in works if w is not None]

    def parse_search(self, response):
        body, work = _json(response), response.meta["work"]
        if body is None:
            yield from self._retry_malformed(response)
            return
        query, offset, now = work.query, work.offset, utc_now()
        stats, follow = self.crawler.stats, []
        with self.store.transaction():
            if query.kind == "playlist":
                items, total, _ = paging(body, "playlists")
                follow = self._playlists(items)
                new_rows, known, albums, fresh = [], 0, {}, 0
            else:
                items, total, _ = paging(body, "tracks")
                new_rows, known, albums, fresh = self._track_hits(items, query, offset, now)
            if query.search_types != query.kind:        # a cell query: its artists too
                artists, _, _ = paging(body, "artists")
                hits = self.store.add_artist_hits(
                    query.q, query.kind,
                    [(a, offset + position) for a, position in artist_ids(artists)])
                for artist_id in hits:
                    self.frontier.expansion.artist_hit(artist_id, query)
                stats.inc_value("discovery/artist_hits", len(hits))
            # The query is judged on what is new to search: a track an album read found
            # first still says the query reaches tracks other queries did not.
            self.frontier.planner.record_page(query, offset, total,
                                              len(new_rows) + fresh or len(follow),
                                              known - fresh, now)
            # Inside the transaction: a track and the cells it counts toward land together.
            umbrella = query.umbrella if query.decade else None
            self.frontier.place(new_rows, umbrella, source="search", albums=albums, now=now,
                                family=query.family)
        stats.inc_value(f"discovery/family/{query.family}/pages")
        stats.inc_value("discovery/new_tracks", len(new_rows) or len(follow))
        stats.inc_value("discovery/known_tracks", known)
        for record in new_rows:
            yield CandidateItem.from_record(record, source="search", query=query.q)
        yield from self.frontier.answered(work, follow)

    def _track_hits(self, items: list[Any], query, offset: int, now: str):
        """Store a search page's tracks: the new ones, and how many were known."""
        genre = GENRE_FILTER.search(query.q)
        page = PageTracks(self.crawler.stats)       # counts skips, repairs, duplicates
        new_rows, edges, albums, fresh = [], [], {}, 0
        hits: list[tuple[str, ...]] = []
        for position, obj in enumerate(items):
            record = page.track(obj)
            if record is None:
                continue
            if self.store.track_source(record.id) == "album" and \
                    not self.store.searched_before(record.id):
                fresh += 1          # found by an album read, never by a search yet
            if self.store.upsert_track(record, source="search", query=query.q, now=now):
                new_rows.append(record)
                ref = album_ref(obj.get("album"))
                if ref is not None:
                    albums[record.id] = ref
            edges.append((record.id, offset + position))
            if query.family == CELL_FAMILY and len(record.artist_ids) == 1:
                self.frontier.expansion.vote(record.artist_ids[0], query)
            hits.append(tuple(record.artist_ids))
        self.store.add_edges(query.q, query.kind, edges)
        if genre and self.genre_evidence_from_search:
            # The Development Mode substitute for artist genres: the filter matched the track
            # through one of its artists, so only evidence that names one counts (the sole
            # artist of a hit, the artist common to several: Store.add_search_genre_hits).
            # After the edges: the common rule reads every hit of the genre's queries.
            self.store.add_search_genre_hits(genre.group(1), query.q, hits)
        return new_rows, len(edges) - len(new_rows), albums, fresh

    def parse_playlist_items(self, response):
        body, work = _json(response), response.meta["work"]
        if body is None:
            yield from self._retry_malformed(response)
            return
        items, total, _ = paging(body)
        now, playlist_id, stats = utc_now(), work.playlist_id, self.crawler.stats
        new_rows, rows = [], []
        page = PageTracks(stats)       # counts skips, repairs, duplicates
        with self.store.transaction():
            for row in items:
                if not isinstance(row, dict):
                    stats.inc_value("discovery/skipped/null")
                    continue
                record = page.track(row.get("item") if "item" in row else row.get("track"))
                if record is None:
                    continue
                if self.store.upsert_track(record, source="playlist", playlist_id=playlist_id,
                                           now=now):
                    new_rows.append(record)
                rows.append((record.id, timestamp(row.get("added_at"))))
            self.store.add_playlist_tracks(playlist_id, rows)
            following = work.offset + PLAYLIST_PAGE
            more = total is not None and following < total and bool(items)
            if more:
                self.store.playlist_progress(playlist_id, following)
            else:
                self.store.finish_playlist(playlist_id, work.snapshot, now,
                                           processed=total if total is not None else following)
            self.frontier.place(new_rows, None, source="playlist")
        stats.inc_value("discovery/playlist_new_tracks", len(new_rows))
        for record in new_rows:
            yield CandidateItem.from_record(record, source="playlist", playlist_id=playlist_id)
        follow = [Work(PLAYLIST_ITEMS, offset=following, playlist_id=playlist_id,
                       snapshot=work.snapshot, owner=work.owner)] if more else []
        yield from self.frontier.answered(work, follow)

    def parse_album(self, response):
        """An album's tracks: simplified (no ISRC, no album), so the album is put in each;
        ReccoBeats gives the ISRC with the features (``pipelines/enrichment.py``)."""
        body, work = _json(response), response.meta["work"]
        if body is None:
            yield from self._retry_malformed(response)
            return
        if work.kind == ALBUM and work.offset == 0:
            ref = album_ref(body)
            items, total, _ = paging(body, "tracks")
        else:
            row = self.store.album(work.album_id)
            ref = _stored_album(row) if row is not None else None
            items, total, _ = paging(body)
        now, stats = utc_now(), self.crawler.stats
        expansion = self.frontier.expansion
        new_rows = []
        page = PageTracks(stats)
        with self.store.transaction():
            album = ref.as_album_object() if ref is not None else None
            for obj in items if album is not None else []:
                record = page.track({**obj, "album": album} if isinstance(obj, dict) else obj)
                if record is not None and self.store.upsert_track(record, source="album",
                                                                  now=now):
                    new_rows.append(record)
            counted = self.frontier.place(new_rows, expansion.album_umbrella(work.album_id),
                                          source="album")
            more = expansion.album_read(work.album_id, work.offset + ALBUM_PAGE, total,
                                        len(new_rows), counted, now)
        stats.inc_value("discovery/album/pages")
        stats.inc_value("discovery/album/new_tracks", len(new_rows))
        for record in new_rows:
            yield CandidateItem.from_record(record, source="album")
        follow = [Work(work.kind, offset=work.offset + ALBUM_PAGE, album_id=work.album_id)] \
            if more and items else []
        if self.extended and new_rows:
            # Extended Quota: /tracks?ids= (the tracks bucket) gives the full objects, with
            # the popularity, ISRC and markets a simplified track lacks.
            follow.append(Work(TRACKS, track_ids=tuple(r.id for r in new_rows)))
        yield from self.frontier.answered(work, follow)

    def parse_tracks(self, response):
        """Full objects of album tracks already stored: what they add is merged in."""
        body, work = _json(response), response.meta["work"]
        if body is None:
            return self._retry_malformed(response)
        objects = body.get("tracks") if isinstance(body, dict) else None
        page, now = PageTracks(self.crawler.stats), utc_now()
        with self.store.transaction():
            for obj in objects if isinstance(objects, list) else []:
                record = page.track(obj)
                if record is not None and record.id in work.track_ids:
                    self.store.upsert_track(record, source="album", now=now)
        self.crawler.stats.inc_value("discovery/track_lookups")
        return self.frontier.answered(work)

    def parse_recco_artists(self, response):
        body, work = _json(response), response.meta["work"]
        content = body.get("content") if isinstance(body, dict) else None
        if not isinstance(content, list):
            # Not ReccoBeats' {"content": [...]}: a fault, not "none of them is known".
            return self._retry_malformed(response)
        found = {}
        for row in content:
            artist_id = spotify_id(row.get("href"), "artist") if isinstance(row, dict) \
                else None
            recco_id = row.get("id") if artist_id else None
            if artist_id in work.artist_ids and isinstance(recco_id, str) and recco_id:
                found[artist_id] = recco_id
        with self.store.transaction():
            self.frontier.leads.looked_up(work.artist_ids, found)
        self.crawler.stats.inc_value("discovery/leads/artist_lookups")
        return self.frontier.answered(work)

    def parse_recco_artist_tracks(self, response):
        body, work = _json(response), response.meta["work"]
        content = body.get("content") if isinstance(body, dict) else None
        pages = body.get("totalPages") if isinstance(body, dict) else None
        if isinstance(pages, float) and pages.is_integer():
            pages = int(pages)
        if not isinstance(content, list) or not isinstance(pages, int) \
                or isinstance(pages, bool):
            # Not a page of ReccoBeats' paged shape: a fault, not the end of the list.
            return self._retry_malformed(response)
        rows = [row for row in content if isinstance(row, dict)]
        with self.store.transaction():
            added = self.frontier.leads.listed(work.artist_id, work.offset, rows, pages,
                                               utc_now())
        stats = self.crawler.stats
        stats.inc_value("discovery/leads/pages")
        stats.inc_value("discovery/leads/found", added)
        return self.frontier.answered(work)

    def parse_lead(self, response):
        """Leads' full track objects: one (``/tracks/{id}``) or, in Extended Quota, a batch
        (``/tracks?ids=``: ``{"tracks": [...]}`` in the order asked, null for an ID Spotify
        does not serve). Each is stored like a searched track, its umbrella the one its
        artist's votes name."""
        body, work = _json(response), response.meta["work"]
        if self.extended:
            objects = body.get("tracks") if isinstance(body, dict) else None
        else:
            objects = [body]
        if body is None or not isinstance(objects, list) \
                or len(objects) != len(work.track_ids):
            yield from self._retry_malformed(response)
            return
        leads, now, stats = self.frontier.leads, utc_now(), self.crawler.stats
        new_rows, counted = [], 0
        with self.store.transaction():
            for (track_id, artist_id), obj in zip(leads.pairs(work), objects, strict=True):
                record, _ = parse_track(obj)
                # With market=, Spotify may answer with the market's relinked copy (another
                # ID, linked_from naming the one asked): that copy is the one that plays here.
                if record is not None and self.store.upsert_track(record, source="lead",
                                                                  now=now):
                    new_rows.append(record)
                    ref = album_ref(obj.get("album"))
                    counted += self.frontier.place(
                        [record], leads.umbrella_of(track_id), source="lead",
                        albums={record.id: ref} if ref is not None else None, now=now)
                leads.ended(track_id, artist_id, "confirmed" if record is not None else "gone")
                stats.inc_value("discovery/leads/confirmed" if record is not None
                                else "discovery/leads/unreadable")
        stats.inc_value("discovery/leads/counted", counted)
        for row in new_rows:
            yield CandidateItem.from_record(row, source="lead")
        yield from self.frontier.answered(work)

    def parse_artist_albums(self, response):
        body, work = _json(response), response.meta["work"]
        if body is None:
            return self._retry_malformed(response)
        items, total, _ = paging(body)
        # Extended answers say album_group; appears_on is another artist's album.
        refs = [ref for obj in items
                if isinstance(obj, dict) and obj.get("album_group") != "appears_on"
                and (ref := album_ref(obj)) is not None]
        with self.store.transaction():
            more = self.frontier.expansion.listing_read(
                work.artist_id, refs, work.offset + self.page_size, total, utc_now(),
                first=work.offset == 0)
        self.crawler.stats.inc_value("discovery/artist_albums/pages")
        follow = [Work(ARTIST_ALBUMS, offset=work.offset + self.page_size,
                       artist_id=work.artist_id)] if more and items else []
        return self.frontier.answered(work, follow)

    def parse_artists(self, response):
        body, work = _json(response), response.meta["work"]
        if body is None:
            return self._retry_malformed(response)
        now = utc_now()
        with self.store.transaction():
            for artist_id, genres, popularity in artist_details(body, work.artist_ids):
                self.store.set_artist_details(artist_id, genres=genres, popularity=popularity,
                                              image_url=None, now=now)
        self.crawler.stats.inc_value("discovery/artist_lookups")
        return self.frontier.answered(work)

    def _retry_malformed(self, response) -> list[Request]:
        """A truncated or garbled body is a transient fault, not an empty result."""
        self.crawler.stats.inc_value("discovery/malformed_json")
        retry = get_retry_request(response.request, spider=self, reason="malformed_json")
        if retry is None:
            # Out of retries: the work is dropped, to be planned again rather than marked empty
            # (a lead's work by the next run: planned again now, it would be asked at once).
            work = response.meta["work"]
            if work.kind in LEAD_KINDS:
                self.frontier.leads.failed(work, None, now=utc_now())
            return self.frontier.answered(work)
        for key in DOWNLOADER_META:      # they describe the failed attempt
            retry.meta.pop(key, None)
        return [retry]


def _stored_album(row) -> AlbumRef:
    return AlbumRef(id=row["id"], name=row["name"], album_type=row["album_type"],
                    release_date=row["release_date"], release_precision=row["release_precision"],
                    total_tracks=row["total_tracks"], artist_id=row["artist_id"],
                    image_url=row["image_url"])


def _json(response) -> Any:
    """The decoded body, or None when it is not JSON at all (truncated, garbled)."""
    try:
        return json.loads(response.text)
    except (ValueError, AttributeError):
        return None
