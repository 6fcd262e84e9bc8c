"""The frontier: the only owner of outstanding discovery work, backed by the store.

It decides what to ask next (the owner's playlists first, then the search ``Planner``, album
expansion and ReccoBeats leads, then artist lookups), knows what is outstanding (sent, or
held for a parked quota bucket), and where a refused or failed request goes back to.
Nothing else keeps requests aside: a request carries its ``Work`` (``meta["work"]``), and
its answer or failure ends at the frontier.

* The spider asks for requests when a page is answered (``answered``), when one fails
  (``failed``, its errback) and when the engine idles (``spider_idle``).
* The quota middleware refuses a request of a parked bucket with ``QuotaParked`` and sends
  ``bucket_parked`` / ``bucket_released``; the frontier holds that bucket's work and sends
  none until the park ends. A work is never planned twice: a held search page keeps its
  query busy, so the planner cannot pick the same page again.
* When only held work is left: the crawl waits if the earliest park ends within
  ``QUOTA_PARK_IDLE_WAIT``, else closes with reason ``quota_parked``. Held work is not
  saved: the store's ledgers say what was answered, and the next run plans the rest again.

Phases need no counters: the owner phase is open while an owner work is outstanding.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from scrapy import signals
from scrapy.exceptions import CloseSpider, DontCloseSpider, IgnoreRequest
from scrapy.spidermiddlewares.httperror import HttpError

from runclub_spiders import clock
from runclub_spiders import signals as project_signals
from runclub_spiders.exceptions import QuotaParked
from runclub_spiders.frontier.cells import CellBook
from runclub_spiders.frontier.expansion import Expansion
from runclub_spiders.frontier.leads import LEAD_KINDS, Leads
from runclub_spiders.frontier.planner import Planner
from runclub_spiders.frontier.progress import Progress
from runclub_spiders.frontier.work import (
    ALBUM,
    ALBUM_TRACKS,
    ARTIST_ALBUMS,
    ARTISTS,
    BUCKETS,
    ME,
    RECCO_ARTISTS,
    SEARCH,
    TRACK,
    Work,
)
from runclub_spiders.quota import QUOTA_EXCEEDED, Park, utc_iso
from runclub_spiders.utils.closing import SpiderClosing

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler

    from runclub_spiders.seeds import SeedPlan
    from runclub_spiders.spotify_objects import AlbumRef
    from runclub_spiders.store import Store, TrackRecord

logger = logging.getLogger(__name__)

LOST_AFTER = 60.0      # seconds idle with a request sent and no answer before it counts as lost
QUOTA_BOUND = "discovery_quota_bound"   # store meta: a Spotify bucket has been parked
RECCOBEATS = BUCKETS[RECCO_ARTISTS]     # not Spotify's quota
GONE = (400, 403, 404)  # an album, artist or track Spotify will not serve: not asked again


class Frontier:
    def __init__(self, crawler: Crawler, store: Store, plan: SeedPlan, *, page_size: int,
                 extended: bool, request_for: Callable[[Work], Request],
                 albums: bool = True, listings: bool = True, leads: bool = True) -> None:
        """``albums``/``listings``/``leads``: the discovery switches
        (``probe.discovery_switches``: the settings, and what the probe found refused)."""
        s = crawler.settings
        self.crawler, self.store, self.request_for = crawler, store, request_for
        self.extended = extended
        oversample = s.getfloat("DISCOVERY_OVERSAMPLE")
        self.planner = Planner(
            plan=plan, store=store, page_size=page_size,
            cell_target=max(1, round(s.getint("CATALOG_CELL_TARGET") * oversample)),
            max_candidates=round(s.getint("CATALOG_MAX_TRACKS") * oversample),
            min_new_per_page=max(1, s.getint("DISCOVERY_MIN_NEW_PER_PAGE") * page_size // 10),
            patience=s.getint("DISCOVERY_PATIENCE"),
            family_trial=s.getint("DISCOVERY_FAMILY_TRIAL"),
            family_min_yield=s.getfloat("DISCOVERY_FAMILY_MIN_YIELD"),
            include_playlist_search=extended,
            artist_cap=math.ceil(max(s.getint("CATALOG_MAX_ARTIST_FLOOR"),
                                     s.getfloat("CATALOG_MAX_ARTIST_SHARE")
                                     * s.getint("CATALOG_CELL_TARGET")) * oversample)
            if s.getfloat("CATALOG_MAX_ARTIST_SHARE") > 0 else 0)
        self.min_yield = s.getfloat("DISCOVERY_MIN_YIELD")
        self.expansion = Expansion(store, plan.rules, min_yield=self.min_yield,
                                   albums=albums, listings=listings)
        self.cells = CellBook(self.planner, self.expansion, store, self.min_yield)
        self.leads = Leads(store, on=leads,
                           min_worth=s.getfloat("DISCOVERY_LEAD_MIN_WORTH"),
                           min_ms=s.getint("CATALOG_MIN_DURATION_MS"),
                           max_ms=s.getint("CATALOG_MAX_DURATION_MS"),
                           market=s["SPOTIFY_MARKET"], batch=50 if extended else 1,
                           pages_per_candidate=s.getfloat(
                               "DISCOVERY_LEAD_PAGES_PER_CANDIDATE"))
        self.leads.named = self.expansion.named
        self.cells.leads_open = self.leads.open_for
        self.leads.need = self.cells.fill
        self.leads.room = self.planner.artist_room
        self.leads.counted_in = lambda cell, artist: self.planner.by_artist[(cell, artist)]
        self.leads.counted = lambda: self.planner.counted["lead"]     # one count: the planner's
        self.leads.candidates = self.planner.useful
        # A lead waits for its artist's album read only while the albums bucket can read it:
        # a parked bucket reads nothing before its park ends, and the tracks bucket's calls
        # not spent today are lost (a rolling window).
        self.leads.albums_pending = lambda artist: (
            self._album_reads_open() and self.expansion.to_read(artist))
        self.leads.unread = self.expansion.unread
        self.leads.to_list = self.expansion.to_list
        self.expansion.need = self.cells.fill
        self.expansion.room = self.planner.artist_room
        self.expansion.wanted = self.planner.wanted
        self.expansion.quota_bound = lambda: self.quota_bound
        self.expansion.learnt.counted = self.planner.counted      # one count, the planner's
        self.expansion.learnt.read(store)
        self._reprice()
        self.concurrency = s.getint("DISCOVERY_CONCURRENCY")
        # Never more sent than the downloader runs at once: with CONCURRENT_REQUESTS = 1 one
        # work is on its way at a time, chosen from the store as it is, so a run resumed
        # after any interruption chooses as the uninterrupted one did.
        self.max_in_flight = max(1, s.getint("CONCURRENT_REQUESTS"))
        self.artist_budget = s.getint("DISCOVERY_ARTIST_LOOKUP_BUDGET")
        self.idle_wait = s.getfloat("QUOTA_PARK_IDLE_WAIT")
        self.min_ms = s.getint("CATALOG_MIN_DURATION_MS")
        self.max_ms = s.getint("CATALOG_MAX_DURATION_MS")
        self.outstanding: dict[tuple, Work] = {}      # sent or held: the one owner
        self.held: dict[str, dict[tuple, Work]] = {}  # bucket -> works waiting for its park
        # bucket -> its park (until, epoch; and why); parks of earlier runs from the store
        # (the quota middleware's bucket_parked for them is sent before this frontier exists).
        self.parks: dict[str, Park] = {b: Park(*park) for b, park in
                                       store.quota_parks().items() if park[0] > clock.now()}
        # Does /albums/{id}/tracks share the albums bucket? Learnt from its first refusal
        # (``_learn_album_tracks``; a "shared" checked again weekly); None until then.
        self.album_tracks_shared: bool | None = None
        self._learn_album_tracks(recheck_after=s.getfloat("SPOTIFY_PROBE_INTERVAL_DAYS") * 86_400)
        self.album_tracks_answered = False            # this run: one answer, then in parallel
        self.wanted: set[str] = set()                 # parked buckets that have work to do
        # Has a Spotify bucket been parked (its quota, or SPOTIFY_DAILY_BUDGET), in this run
        # or an earlier one? Then a bucket's calls left unspent are lost
        # (``Expansion.quota_bound``). Kept in the store: a restart after the park ended
        # decides as the run that waited it out.
        self.quota_bound = False
        if store.get_meta(QUOTA_BOUND, False) or store.learned_quota() or any(
                bucket != RECCOBEATS for bucket in self.parks):
            self._become_quota_bound()
        self._idle_with_sent: dict[Work, float] = {}  # sent work seen at idle, and since when
        # The projection's open cells are the crawl's own verdicts, not the last close's.
        self.progress = Progress(crawler, store, self.planner,
                                 stopped=lambda: self.cells.review().keys())
        for handler, signal in ((self.spider_idle, signals.spider_idle),
                                (self.request_dropped, signals.request_dropped),
                                (self.request_scheduled, signals.request_scheduled),
                                (self.progress.close, signals.spider_closed),
                                (self.save_cells, signals.spider_closed),
                                (self.bucket_parked, project_signals.bucket_parked),
                                (self.bucket_released, project_signals.bucket_released)):
            crawler.signals.connect(handler, signal=signal)

    # ---------------------------------------------------------------- asking
    def start(self) -> list[Request]:
        """The first work of a run: who the owner is, then the owner's playlists."""
        return self._send([Work(ME, owner=True)])

    def answered(self, work: Work, follow: Iterable[Work] = ()) -> list[Request]:
        """``work`` got its answer; ``follow`` is the work it revealed (next pages...)."""
        self._end(work)
        self.album_tracks_answered |= work.kind == ALBUM_TRACKS
        return self._send(list(follow)) + self.take()

    def _end(self, work: Work) -> None:
        """``work`` is no longer outstanding (only this very work: one declared lost may have
        been planned again under the same key)."""
        if self.outstanding.get(work.key) is work:
            del self.outstanding[work.key]
        self._idle_with_sent.pop(work, None)

    def request_dropped(self, request: Request) -> None:
        """The scheduler refused a request (it never will be answered): its work is dropped."""
        if request.meta.get("work") is not None:
            self._end(request.meta["work"])

    def request_scheduled(self, request: Request) -> None:
        """A request of a work (a retry, say) is on its way again: not lost."""
        self._idle_with_sent.pop(request.meta.get("work"), None)

    def failed(self, failure) -> list[Request]:
        """The errback of every discovery request: hold, drop or replace its work."""
        work = failure.request.meta.get("work")
        if work is None:
            return []
        if failure.check(QuotaParked):
            if self._reroute(work, failure.value.bucket):
                return self.take()
            self._hold(work, failure.value.bucket, failure.value.until)
            return []
        self._end(work)                            # dropped: the next run plans it again
        status = failure.value.response.status if failure.check(HttpError) else None
        if work.kind in (ALBUM, ALBUM_TRACKS, ARTIST_ALBUMS) and status in GONE:
            self.expansion.gone(work, utc_iso(clock.now()))     # never asked again
        elif work.kind in LEAD_KINDS:                # what each failure means: Leads.failed
            self.leads.failed(work, status, now=utc_iso(clock.now()))
        if failure.check(SpiderClosing) or (work.kind == SEARCH and failure.check(IgnoreRequest)):
            return []                              # closing, or refused (no token): not now
        return self.take()

    def take(self, *, idle: bool = False) -> list[Request]:
        """New work up to capacity in every bucket once the owner phase is over: searches,
        albums, artist listings, leads (and their ReccoBeats pages), each bucket
        ``DISCOVERY_CONCURRENCY`` at a time and parked on its own; artist lookups when the
        engine idles with nothing else outstanding."""
        if self.owner_phase:
            return []
        works: list[Work] = []
        busy = set(self.outstanding)
        for kind, choose in ((SEARCH, self._next_search), (ALBUM, self._next_album),
                             (ALBUM_TRACKS, self._next_album_tracks),
                             (ARTIST_ALBUMS, self._next_listing), (TRACK, self._next_lead),
                             (RECCO_ARTISTS, self._next_recco)):
            while (self._drawing(BUCKETS[kind]) < self._concurrency(kind)
                   and self._in_flight() < self.max_in_flight):
                work = choose(busy)
                if work is None or self._parked(kind):
                    break
                works.append(work)
                busy.add(work.key)
                self.outstanding[work.key] = work
        if idle and not works and not self.outstanding:
            works = [w for w in [self._artist_work()] if w is not None]
        return self._send(works)

    @property
    def owner_phase(self) -> bool:
        """Reading who the owner is and the owner's playlists: no search yet."""
        return any(w.owner for w in self.outstanding.values())

    def _send(self, works: list[Work]) -> list[Request]:
        requests = []
        for work in works:
            self.outstanding[work.key] = work
            if self._parked(work.kind):
                self._hold(work, work.bucket, self._until(work.bucket))
            else:
                requests.append(self.request_for(work))
        return requests

    def _in_flight(self) -> int:
        """Works sent and not yet answered (held ones wait for their park)."""
        held = [works for works in self.held.values() if works]
        return sum(1 for key in self.outstanding if not any(key in works for works in held))

    def _drawing(self, bucket: str) -> int:
        return sum(1 for w in self.outstanding.values() if w.bucket == bucket)

    def _next_search(self, busy: set[tuple]) -> Work | None:
        # ``busy`` holds works' keys; a search's is (SEARCH, q, kind) (``Work.key``).
        chosen = self.planner.next_query(busy={key[1:] for key in busy if key[0] == SEARCH})
        if chosen is None:
            return None
        query, offset = chosen
        return Work(SEARCH, offset=offset, query=query)

    def _full(self) -> bool:
        return self.planner.full()

    def _next_album(self, busy: set[tuple]) -> Work | None:
        if self._park_active(BUCKETS[ALBUM]) and self._album_reads_open():
            return None        # read through /albums/{id}/tracks: not wanted of the albums park
        return self._best_album(busy)

    def _best_album(self, busy: set[tuple]) -> Work | None:
        return None if self._full() else self.expansion.next_album(self.cells.neediest(), busy)

    def _next_album_tracks(self, busy: set[tuple]) -> Work | None:
        """Once Spotify has said ``QUOTA_EXCEEDED`` to the albums bucket, albums are read
        through /albums/{id}/tracks (the album object is the store's): a 2026 report names
        Spotify's quota buckets per endpoint (``playlist_items`` beside
        ``playlist_snapshot``), so this endpoint may have a bucket of its own, a day's worth
        of album reads more (unmeasured). Whether it has is learnt from its first refusal
        (``_learn_album_tracks``); while it is known to share the albums bucket it is not
        asked (``_album_tracks_allowed``)."""
        if not self._park_active(BUCKETS[ALBUM]) or not self._album_tracks_allowed():
            return None
        work = self._best_album(busy)
        return None if work is None else Work(ALBUM_TRACKS, offset=work.offset,
                                              album_id=work.album_id)

    def _concurrency(self, kind: str) -> int:
        """``DISCOVERY_CONCURRENCY`` per bucket; the album-tracks endpoint one at a time
        until it answers in this run, so a bucket it shares with albums refuses one call,
        not a concurrent handful."""
        if kind == ALBUM_TRACKS and not self.album_tracks_answered:
            return 1
        return self.concurrency

    def _album_tracks_allowed(self) -> bool:
        """May album reads go through /albums/{id}/tracks: not known to share the albums
        bucket, and albums parked because Spotify said ``QUOTA_EXCEEDED``? Not after our
        own ``SPOTIFY_DAILY_BUDGET`` (a budget on album reads covers both endpoints), nor
        after a long rate-limit wait (the rate limit is the whole app's, not a bucket's)."""
        park = self.parks.get(BUCKETS[ALBUM])
        return not self.album_tracks_shared and park is not None and \
            park.reason == QUOTA_EXCEEDED

    def _album_reads_open(self) -> bool:
        """Can an album be read now, through either endpoint?"""
        return not self._park_active(BUCKETS[ALBUM]) or (
            self._album_tracks_allowed() and not self._park_active(BUCKETS[ALBUM_TRACKS]))

    def _learn_album_tracks(self, recheck_after: float | None = None) -> None:
        """The album-tracks endpoint shares the albums bucket when Spotify refused it with
        nothing served in its window (``quota_learned`` size 0): the calls it was refused
        were the albums bucket's. A size above 0 is a bucket of its own. Kept in the store,
        so this is learnt once per store, not once per run. At the start of a run
        (``recheck_after``: ``SPOTIFY_PROBE_INTERVAL_DAYS``, the capability probe's interval)
        a "shared" that old is unknown again, so one call checks it: another app of the
        account may have spent an own bucket first, or Spotify may have regrouped them."""
        learned = self.store.learned_quota().get(BUCKETS[ALBUM_TRACKS])
        if learned is None:
            return
        size, _, at = learned
        stale = recheck_after is not None and clock.now() - at >= recheck_after
        self.album_tracks_shared = None if size == 0 and stale else size == 0

    def _next_listing(self, busy: set[tuple]) -> Work | None:
        return None if self._full() else self.expansion.next_listing(self.cells.umbrellas(),
                                                                     busy)

    def _searching(self) -> bool:
        """Is a search on its way (sent, not held for a park)?"""
        held = self.held.get(BUCKETS[SEARCH], {})
        return any(w.kind == SEARCH and key not in held for key, w in self.outstanding.items())

    def _next_lead(self, busy: set[tuple]) -> Work | None:
        """Leads once search is parked or has nothing worth asking: its pages and the
        albums they reveal find most of a lead's tracks too, several a call, so a lead asked
        earlier is often a call for a track found anyway (on a small catalog without quota,
        92 such calls and 9 fewer tracks exported). A quota-bound day parks search within
        hours; the tracks bucket is spent after that."""
        if self._full() or self._searching():
            return None
        return self.leads.next_lead(self.cells.umbrellas(), busy)

    def _next_recco(self, busy: set[tuple]) -> Work | None:
        if self._full() or self._searching():
            return None
        return self.leads.next_recco(self.cells.umbrellas(), busy)

    def _reprice(self) -> None:
        """What prices a search page (``Planner.min_new``): ``DISCOVERY_MIN_YIELD``, the
        share of searched tracks that gets counted (each family's prior) and the share
        ReccoBeats knows. What ``Learnt`` holds is what the store holds (``Learnt.read``
        at the start, then kept up to date answer by answer), so a resumed crawl prices as
        the interrupted one."""
        learnt = self.expansion.learnt
        self.planner.min_yield = self.min_yield
        self.planner.search_share = learnt.share("search")
        self.planner.features_share = learnt.features_share

    def _artist_work(self) -> Work | None:
        """Extended: 50 artists per call. Development: one per call, within the budget."""
        limit = 50 if self.extended else min(1, self.artist_budget)
        ids = self.store.artists_without_details(limit) if limit > 0 else []
        if not ids or self._parked(ARTISTS):
            return None
        self.artist_budget -= not self.extended
        return Work(ARTISTS, artist_ids=tuple(ids))

    # ---------------------------------------------------------------- counting
    def place(self, records: list[TrackRecord], umbrella: str | None, *, source: str,
              albums: dict[str, AlbumRef] | None = None, now: str = "",
              family: str | None = None) -> int:
        """Count new tracks toward their cells (``Planner.place``: ``umbrella`` is the cell
        query's or the expanded album's, else the artist's genres decide); register the
        albums of the counted ones (``albums``: track ID -> its album) for expansion.
        Returns how many were counted."""
        placed = self.planner.place(records, umbrella, self.min_ms, self.max_ms, source,
                                    family)
        self.expansion.stored([r.album_id for r in records])
        self.expansion.learnt.new[source] += len(records)
        self._reprice()
        solo = {r.id for r in records if len(r.artist_ids) == 1}
        track_artist = {r.id: r.artist_ids[0] for r in records if r.artist_ids}
        for track_id, cells in placed.items():
            ref = (albums or {}).get(track_id)
            # Only on evidence naming the album's artist: the sole artist of a track a cell
            # query returned. A featured artist may be what matched the query's genre, and
            # expanding the lead's album would then fill the cell with another umbrella.
            if ref is not None and umbrella is not None and track_id in solo:
                self.expansion.see(ref, cells, now, list_artist=True)
                if source == "search" and ref.artist_id == track_artist.get(track_id):
                    self.leads.see(ref.artist_id, umbrella)
        return len(placed)

    def save_cells(self) -> None:
        """Per cell, found, reachable and why discovery stopped, for the reports."""
        with self.store.transaction():
            self.cells.save(utc_iso(clock.now()))

    # ---------------------------------------------------------------- parks
    def _until(self, bucket: str) -> float:
        """When the bucket's park ends (0: not parked)."""
        park = self.parks.get(bucket)
        return park.until if park is not None else 0.0

    def _extend(self, bucket: str, until: float, reason: str | None = None) -> None:
        """Park ``bucket`` until ``until`` at least; ``reason``: Spotify's (the
        ``bucket_parked`` signal's), else the park keeps the one it had."""
        park = self.parks.get(bucket)
        if reason is None:
            reason = park.reason if park is not None else ""
        self.parks[bucket] = Park(max(until, self._until(bucket)), reason)

    def _park_active(self, bucket: str) -> bool:
        return self._until(bucket) > clock.now()

    def _parked(self, kind: str) -> bool:
        """Is the bucket of ``kind`` parked? Noted as wanted when it is."""
        bucket = BUCKETS[kind]
        if self._park_active(bucket):
            self.wanted.add(bucket)
            return True
        return False

    def _reroute(self, work: Work, bucket: str) -> bool:
        """An album read that Spotify's ``QUOTA_EXCEEDED`` to the albums bucket refused is
        not held for that park (the next day) while /albums/{id}/tracks may still read it:
        it is dropped, and planned again through that endpoint from the same offset (the
        Expansion keeps each album's, so nothing is read twice)."""
        if work.kind != ALBUM or bucket != BUCKETS[ALBUM] or not self._album_reads_open():
            return False
        self._end(work)
        self.crawler.stats.inc_value("quota/rerouted/album_tracks")
        return True

    def _hold(self, work: Work, bucket: str, until: float) -> None:
        self.outstanding[work.key] = work
        if until <= clock.now():     # the park ended before its refusal came back: send now
            self.crawler.engine.crawl(self.request_for(work))
            return
        self._extend(bucket, until)
        self.held.setdefault(bucket, {})[work.key] = work
        self.crawler.stats.inc_value(f"quota/set_aside/{bucket}")

    def bucket_parked(self, bucket: str, until: float, reason: str = "") -> None:
        self._extend(bucket, until, reason)
        if bucket == BUCKETS[ALBUM_TRACKS]:
            self._learn_album_tracks()
        if bucket != RECCOBEATS:
            self._become_quota_bound()

    def _become_quota_bound(self) -> None:
        """From now on (and in every later run) the artists the cell queries' searches
        named are listed (``Expansion.list_hit_artists``)."""
        if self.quota_bound:
            return
        self.quota_bound = True
        with self.store.transaction():
            self.store.set_meta(QUOTA_BOUND, True)
            self.expansion.list_hit_artists()

    def bucket_released(self, bucket: str) -> None:
        self.parks.pop(bucket, None)
        self.wanted.discard(bucket)
        works = list(self.held.pop(bucket, {}).values())
        requests = [self.request_for(w) for w in works] + self.take()
        for request in requests:
            self.crawler.engine.crawl(request)
        if works:
            logger.info("Quota bucket %r released: %d held requests sent", bucket, len(works))

    def spider_idle(self) -> None:
        now = clock.now()
        for bucket in [b for b, park in self.parks.items() if park.until <= now]:
            self.bucket_released(bucket)               # ended without a signal (a restart)
        held = {key for works in self.held.values() for key in works}
        sent = [w for key, w in self.outstanding.items() if key not in held]
        self._idle_with_sent = {w: self._idle_with_sent.get(w, now) for w in sent}
        if sent and now - min(self._idle_with_sent.values()) < LOST_AFTER:
            # Sent and not yet answered: Scrapy 2.19 can call the spider idle while a refused
            # or answered request passes from the downloader to the scraper (neither counts
            # it then). Its callback or errback is on its way; planning it again would ask
            # the page twice.
            raise DontCloseSpider
        for work in sent:                      # nothing came back for a minute: lost
            logger.warning("Discovery work %r ended without an answer; planned again",
                           work.key)
            del self.outstanding[work.key]
        requests = self.take(idle=True)
        for request in requests:
            self.crawler.engine.crawl(request)
        if requests:
            raise DontCloseSpider
        waiting = {b for b, works in self.held.items() if works} | self.wanted
        ends = {b: self._until(b) for b in waiting if self._until(b) > now}
        if not ends:
            return
        if min(ends.values()) - now <= self.idle_wait:
            raise DontCloseSpider                      # the park ends soon: wait for it
        latest = utc_iso(max(ends.values()))
        if self.crawler.stats.get_value("quota/resume_after") != latest:
            self.crawler.stats.set_value("quota/resume_after", latest)
            logger.warning("Every remaining request needs a parked quota bucket (%s). Run the "
                           "same command again after %s UTC to continue.",
                           ", ".join(sorted(ends)), latest)
        raise CloseSpider("quota_parked")
