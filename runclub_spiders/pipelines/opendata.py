"""Wikidata genres and MusicBrainz original years, asked during the crawl, never in its way.

``OpenDataPipeline`` (after ReccoBeats) sees every enriched candidate and wants the answers
the store does not hold yet: Wikidata for each credited artist (by Spotify artist ID),
MusicBrainz for the track's ISRC (an album track's ISRC comes from ReccoBeats' row). Each
source (``_Source``) gathers what is wanted and asks it in batches, one request at a time, on
its own download slot, no faster than its interval (MusicBrainz: one request per second).
At the start of a run the source first wants what the store says is still to ask
(``Store.wikidata_to_ask`` / ``musicbrainz_to_ask``): what an earlier run could not ask.

**Nothing waits for them.** Items pass on at once; answers land in the store and are used by
the export (genres through ``genre_evidence``, years through ``catalog.years``). When the
crawl has nothing else to do, the spider is kept open while a source still has work, at most
``OPENDATA_IDLE_WAIT`` seconds; then (or on any close) what is left is not asked and stays to
ask next run. A source that fails is retried with backoff (``Retry-After`` honoured up to
``OPENDATA_MAX_WAIT``), and after ``OPENDATA_PARK_AFTER`` failed batches in a row, or one
answer that says "go away" (a 403, a ``Retry-After`` over the cap), it is parked: nothing
more is sent to it this run, the crawl goes on and closes with its own reason, and the
manifest says the source was missing. Requests carry ``dont_retry``: these retries are this
module's, so an optional source never logs an error.

What is asked once is never asked again: ``found`` and ``none`` answers are both kept
(``store/opendata.py``). Settings: ``WIKIDATA_*``, ``MUSICBRAINZ_*``, ``OPENDATA_*``
(``settings.py``). Stats: ``<source>/requests``, ``/answered``, ``/asked``, ``/found``,
``/none``, ``/retries``, ``/waited_seconds``, ``/errors``, ``/parked``,
``/left_for_next_run``; ``wikidata/genres``, ``wikidata/unmapped_labels``,
``musicbrainz/dated``, ``musicbrainz/pages``, ``musicbrainz/stray_recordings``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

from scrapy import Request, signals
from scrapy.exceptions import DontCloseSpider, NotConfigured
from scrapy.http.request import NO_CALLBACK

from runclub_spiders.downloadermiddlewares.retry import backoff
from runclub_spiders.export.manifest import package_version
from runclub_spiders.items import CandidateItem
from runclub_spiders.opendata import musicbrainz, wikidata
from runclub_spiders.opendata.mapping import GenreMapping, load_mapping
from runclub_spiders.opendata.report import META_STATE
from runclub_spiders.pipelines import StorePipeline, utc_now
from runclub_spiders.quota import parse_retry_after
from runclub_spiders.umbrellas import SeedError
from runclub_spiders.utils.closing import CloseWatch, SpiderClosing

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.http import Response

logger = logging.getLogger(__name__)

WIKIDATA, MUSICBRAINZ = "wikidata", "musicbrainz"
RETRY_STATUSES = {429, 500, 502, 503, 504, 408, 522, 524}
GONE_STATUSES = {401, 403}            # the service refuses us: asking again will not help
NO_CONTACT = "MUSICBRAINZ_CONTACT is not set"


class SourceFailedError(Exception):
    """A batch that got no usable answer after its retries."""


class SourceParkedError(Exception):
    """The source told us to stop (or failed too often): nothing more is sent this run."""


class _Source:
    """One open-data service: what waits to be asked, one batch at a time, retries, park."""

    name = ""
    stat_keys = "keys"

    def __init__(self, pipeline: OpenDataPipeline, *, batch_size: int, interval: float,
                 slot: str, user_agent: str) -> None:
        self.pipeline, self.crawler = pipeline, pipeline.crawler
        self.stats = pipeline.crawler.stats
        self.batch_size, self.interval, self.slot = batch_size, interval, slot
        self.user_agent = user_agent
        self.pending: dict[str, None] = {}        # wanted, not sent yet (ordered)
        self.seen: set[str] = set()               # wanted this run (sent, or pending)
        self.inflight: list[str] = []
        self.task: asyncio.Task[None] | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.flush = False                        # send part-full batches at once
        self.parked: str | None = None            # why, when parked for this run
        self.failures = 0                         # batches failed in a row
        self.last_sent = 0.0

    # ---------------------------------------------------------------- wanting
    def known(self, keys: list[str]) -> set[str]:
        raise NotImplementedError

    def want(self, keys: Iterable[str]) -> None:
        fresh = [k for k in dict.fromkeys(keys) if k not in self.seen]
        if not fresh or self.parked:
            return
        fresh = [k for k in fresh if k not in self.known(fresh)]
        for key in fresh:
            self.seen.add(key)
            self.pending[key] = None
        self.kick()

    @property
    def busy(self) -> bool:
        return not self.parked and bool(self.pending or self.inflight)

    def kick(self) -> None:
        """Start the sender when a batch is full (or ``flush``), else in ``batch_wait`` s."""
        if self.parked or self.pipeline.watch.closing or not self.pending:
            return
        if self.task is not None and not self.task.done():
            return                                # the running sender takes what waits
        if len(self.pending) >= self.batch_size or self.flush:
            if self.timer is not None:
                self.timer.cancel()
                self.timer = None
            self.task = asyncio.ensure_future(self._send_all())
        else:
            self._arm_timer()

    def _arm_timer(self) -> None:
        """Send a part-full batch ``batch_wait`` s from now (unless a timer is set)."""
        if self.timer is None and self.pending and not self.parked \
                and not self.pipeline.watch.closing:
            self.timer = asyncio.get_running_loop().call_later(
                self.pipeline.batch_wait, self._timer_fired)

    def _timer_fired(self) -> None:
        self.timer = None
        self.flush = True
        self.kick()

    async def _send_all(self) -> None:
        watch = self.pipeline.watch
        while self.pending and not self.parked and not watch.closing:
            if len(self.pending) < self.batch_size and not self.flush:
                break                             # a timer or the next item starts it again
            batch = list(self.pending)[:self.batch_size]
            for key in batch:
                del self.pending[key]
            self.inflight = batch
            try:
                await self._pace()
                await self.ask(batch)
                self.failures = 0
            except SpiderClosing:
                return
            except SourceParkedError as exc:
                self.park(str(exc))
            except Exception as exc:
                # A SourceFailedError, or a fault of ours (a body the parser did not expect,
                # a store error): either way one line, counted, and parked when it repeats,
                # never a traceback per batch.
                why = str(exc) if isinstance(exc, SourceFailedError) \
                    else f"{type(exc).__name__}: {exc}"
                self.failures += 1
                self.stats.inc_value(f"{self.name}/errors")
                logger.warning("%s: a batch of %d %s got no answer (%s); they stay to ask "
                               "next run", self.label, len(batch), self.stat_keys, why)
                if self.failures >= self.pipeline.park_after:
                    self.park(f"{self.failures} batches failed in a row, the last: {why}")
            finally:
                self.inflight = []
        if not self.pending:
            self.flush = False
        else:
            # Keys wanted while this sender ran found it busy (kick() left them to it) and
            # no timer set: without one they would wait for the idle signal, or for ever.
            self._arm_timer()

    async def _pace(self) -> None:
        """No request sooner than ``interval`` after the previous one (the download slot
        paces too; this holds whatever DOWNLOAD_SLOTS says)."""
        wait = self.last_sent + self.interval - time.monotonic()
        if wait > 0:
            await self.pipeline.watch.sleep(wait)
        self.last_sent = time.monotonic()

    def park(self, why: str) -> None:
        if self.parked:
            return
        self.parked = why
        self.stats.set_value(f"{self.name}/parked", 1)
        left = len(self.pending) + len(self.inflight)
        self.pending.clear()
        logger.warning("%s is parked for this run (%s): the crawl goes on without it; %d %s "
                       "stay to ask next run", self.label, why, left, self.stat_keys)

    def stop(self) -> int:
        """End everything (a close, or the idle wait is over); returns what was left."""
        left = len(self.pending) + len(self.inflight)
        self.pending.clear()
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.task is not None and not self.task.done():
            self.task.cancel()
        if left:
            self.stats.set_value(f"{self.name}/left_for_next_run", left)
        return left

    @property
    def label(self) -> str:
        return {WIKIDATA: "Wikidata", MUSICBRAINZ: "MusicBrainz"}.get(self.name, self.name)

    # ---------------------------------------------------------------- HTTP
    async def ask(self, batch: list[str]) -> None:
        raise NotImplementedError

    def _meta(self) -> dict[str, Any]:
        return {"download_slot": self.slot, "dont_retry": True, "dont_cache": True,
                "dont_obey_robotstxt": True, "autothrottle_dont_adjust_delay": True,
                "download_timeout": self.pipeline.timeout}

    async def fetch(self, request: Request) -> Any:
        """The decoded JSON body of ``request``'s answer, after retries; raises
        ``SourceFailedError`` (give this batch up) or ``SourceParkedError`` (give the source
        up)."""
        p, watch = self.pipeline, self.pipeline.watch
        why = "no attempt"
        for attempt in range(p.retries + 1):
            if attempt:
                self.stats.inc_value(f"{self.name}/retries")
            self.stats.inc_value(f"{self.name}/requests")
            wait: float | None = None
            try:
                response = await watch.run(self.crawler.engine.download_async(
                    request.replace(dont_filter=True)))
            except SpiderClosing:
                raise
            except Exception as exc:                 # refused, timed out, dropped
                why = f"{type(exc).__name__}: {exc}".strip()
            else:
                status = response.status
                if status == 200:
                    body = _json(response)
                    if body is not None:
                        self.stats.inc_value(f"{self.name}/answered")
                        return body
                    why = "a body that is not JSON"
                elif status in GONE_STATUSES or (400 <= status < 500
                                                 and status not in RETRY_STATUSES):
                    raise SourceParkedError(f"HTTP {status}")
                else:
                    why = f"HTTP {status}"
                    wait = parse_retry_after(response.headers.get("Retry-After"), time.time())
                    if wait is not None and wait > p.max_wait:
                        raise SourceParkedError(
                            f"HTTP {status} with Retry-After {wait:.0f} s, over "
                            f"OPENDATA_MAX_WAIT ({p.max_wait:.0f} s)")
            if attempt == p.retries:
                break
            if wait is None:
                wait = backoff(attempt + 1, p.backoff_base, p.backoff_max)
            self.stats.inc_value(f"{self.name}/waited_seconds", round(wait, 3))
            await watch.sleep(wait)
        raise SourceFailedError(f"{why}, after {p.retries} retries")


class _Wikidata(_Source):
    name, stat_keys = WIKIDATA, "artists"

    def __init__(self, pipeline: OpenDataPipeline, *, url: str, mapping: GenreMapping,
                 **kwargs: Any) -> None:
        super().__init__(pipeline, **kwargs)
        self.url, self.mapping = url, mapping
        self.unmapped: Counter[str] = Counter()     # label -> artists it was left off

    def known(self, keys: list[str]) -> set[str]:
        return self.pipeline.store.wikidata_known(keys)

    def request(self, batch: list[str]) -> Request:
        body = urlencode({"query": wikidata.build_query(batch), "format": "json"})
        return Request(self.url, method="POST", body=body, callback=NO_CALLBACK,
                       headers={"Accept": "application/sparql-results+json",
                                "Content-Type": "application/x-www-form-urlencoded",
                                "User-Agent": self.user_agent},
                       meta=self._meta(), dont_filter=True)

    async def ask(self, batch: list[str]) -> None:
        ids = wikidata.askable(batch)
        if not ids:
            return
        for attempt in range(self.pipeline.retries + 1):
            if attempt:
                await self._pace()                # a garbled answer: asked again, paced
            answers = wikidata.parse_answer(await self.fetch(self.request(ids)), ids)
            if not isinstance(answers, str):
                break
            self.stats.inc_value(f"{self.name}/malformed")
        else:
            raise SourceFailedError(answers)
        self.record(answers)

    def record(self, answers: dict[str, wikidata.ArtistAnswer]) -> None:
        store, now, stats = self.pipeline.store, utc_now(), self.stats
        with store.transaction():
            for artist_id, answer in answers.items():
                genres: list[str] = []
                for label in answer.labels:
                    mapped = self.mapping.genres(label)
                    if mapped is None:
                        stats.inc_value("wikidata/unmapped_labels")
                        self.unmapped[label] += 1
                        continue
                    for genre in mapped:
                        store.add_genre_evidence(artist_id, genre, WIKIDATA,
                                                 detail=f"{label} ({answer.qid})")
                        genres.append(genre)
                genres = list(dict.fromkeys(genres))
                store.save_wikidata(artist_id, state=answer.state, qid=answer.qid,
                                    labels=answer.labels, genres=genres, now=now)
                stats.inc_value(f"{self.name}/asked")
                stats.inc_value(f"{self.name}/{answer.state}")
                if genres:
                    stats.inc_value("wikidata/genres", len(genres))


class _MusicBrainz(_Source):
    name, stat_keys = MUSICBRAINZ, "ISRCs"

    def __init__(self, pipeline: OpenDataPipeline, *, base: str, **kwargs: Any) -> None:
        super().__init__(pipeline, **kwargs)
        self.base = base.rstrip("/")

    def known(self, keys: list[str]) -> set[str]:
        return self.pipeline.store.musicbrainz_known(keys)

    def request(self, batch: list[str], offset: int) -> Request:
        return Request(musicbrainz.search_url(self.base, batch, offset), callback=NO_CALLBACK,
                       headers={"Accept": "application/json", "User-Agent": self.user_agent},
                       meta=self._meta(), dont_filter=True)

    async def ask(self, batch: list[str]) -> None:
        isrcs = musicbrainz.askable(batch)
        if not isrcs:
            return
        recordings: list[dict[str, Any]] = []
        offset: int | None = 0
        pages, most = 0, 1
        while offset is not None:
            if offset:
                await self._pace()                # a further page is a request like any
            for attempt in range(self.pipeline.retries + 1):
                if attempt:
                    await self._pace()            # a garbled answer: asked again, paced
                page = musicbrainz.parse_page(
                    await self.fetch(self.request(isrcs, offset)), offset)
                if not isinstance(page, str):
                    break
                self.stats.inc_value(f"{self.name}/malformed")
            else:
                raise SourceFailedError(page)
            self.stats.inc_value("musicbrainz/pages")
            pages += 1
            if pages == 1:
                # The first page's count bounds the paging: a count that grows page by
                # page (or a server that repeats a page) cannot keep a batch going.
                most = musicbrainz.pages_for(page.count)
            recordings.extend(page.recordings)
            offset = page.next_offset if pages < most else None
        answers, stray = musicbrainz.read_recordings(recordings, isrcs)
        if stray:
            self.stats.inc_value("musicbrainz/stray_recordings", stray)
        self.record(answers)

    def record(self, answers: dict[str, musicbrainz.IsrcAnswer]) -> None:
        store, now, stats = self.pipeline.store, utc_now(), self.stats
        with store.transaction():
            for isrc, answer in answers.items():
                store.save_musicbrainz(isrc, state=answer.state, date=answer.date,
                                       year=answer.year, recording_id=answer.recording_id,
                                       now=now)
                stats.inc_value(f"{self.name}/asked")
                stats.inc_value(f"{self.name}/{answer.state}")
                if answer.year is not None:
                    stats.inc_value("musicbrainz/dated")


class OpenDataPipeline(StorePipeline):
    """Item pipeline (after ReccoBeats) that feeds the two sources; see the module doc."""

    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler)
        s = crawler.settings
        self.stats = crawler.stats
        self.batch_wait = s.getfloat("OPENDATA_BATCH_WAIT")
        self.idle_wait = s.getfloat("OPENDATA_IDLE_WAIT")
        self.retries = max(0, s.getint("OPENDATA_RETRIES"))
        self.park_after = max(1, s.getint("OPENDATA_PARK_AFTER"))
        self.max_wait = s.getfloat("OPENDATA_MAX_WAIT")
        self.timeout = s.getfloat("OPENDATA_TIMEOUT")
        self.backoff_base = s.getfloat("RATE_LIMIT_BACKOFF_BASE")
        self.backoff_max = s.getfloat("RATE_LIMIT_BACKOFF_MAX")
        self.sources: dict[str, _Source] = {}
        self.disabled: dict[str, str] = {}        # source -> why it is off this run
        agent = f"runclub-spiders/{package_version()}"
        contact = (s.get("MUSICBRAINZ_CONTACT") or "").strip()
        if s.getbool("WIKIDATA_ENABLED"):
            size = _batch_size(s, "WIKIDATA_BATCH_SIZE", wikidata.MAX_BATCH)
            # Wikimedia's User-Agent policy asks for a way to reach the operator: the
            # MusicBrainz contact serves both when it is set.
            self.sources[WIKIDATA] = _Wikidata(
                self, url=s["WIKIDATA_SPARQL_URL"], mapping=load_mapping(s["WIKIDATA_GENRE_MAP"]),
                batch_size=size, interval=s.getfloat("WIKIDATA_INTERVAL"),
                slot="query.wikidata.org",
                user_agent=f"{agent} ( {contact} )" if contact
                else f"{agent} (personal RunClub catalog builder)")
        else:
            self.disabled[WIKIDATA] = "WIKIDATA_ENABLED is off"
        if not s.getbool("MUSICBRAINZ_ENABLED"):
            self.disabled[MUSICBRAINZ] = "MUSICBRAINZ_ENABLED is off"
        elif not contact:
            # MusicBrainz throttles or refuses clients that do not say who runs them; a
            # made-up contact would misrepresent the owner. Off, with one line saying how.
            # Said in open_spider, only where the source would have been asked.
            self.disabled[MUSICBRAINZ] = NO_CONTACT
        else:
            size = _batch_size(s, "MUSICBRAINZ_BATCH_SIZE", musicbrainz.MAX_BATCH)
            self.sources[MUSICBRAINZ] = _MusicBrainz(
                self, base=s["MUSICBRAINZ_BASE_URL"], batch_size=size,
                interval=s.getfloat("MUSICBRAINZ_INTERVAL"), slot="musicbrainz.org",
                user_agent=f"{agent} ( {contact} )")
        for name in self.disabled:
            self.stats.set_value(f"{name}/disabled", self.disabled[name])
        if not self.sources and not self.disabled:
            raise NotConfigured
        self.watch = CloseWatch(crawler, on_close=self._close_started)
        self.active = False               # only the discovery crawl asks (see open_spider)
        self.idle_since: float | None = None
        self.left: dict[str, int] = {}
        crawler.signals.connect(self.spider_idle, signal=signals.spider_idle)

    # ---------------------------------------------------------------- spider
    def open_spider(self, spider: Any = None) -> None:
        spider = spider or self.crawler.spider
        # The discovery spider asks; its export-only mode makes no API call at all, and
        # other spiders (tests' probes) never open a backlog.
        self.active = getattr(spider, "name", None) == "spotify_catalog" \
            and getattr(spider, "mode", "full") != "export"
        if not self.active:
            return
        if self.disabled.get(MUSICBRAINZ) == NO_CONTACT:
            logger.warning("MusicBrainz is off for this run: set MUSICBRAINZ_CONTACT (an email "
                           "or URL where MusicBrainz can reach you, sent in the User-Agent it "
                           "requires) in .env or the environment to turn it on")
        for name, source in self.sources.items():
            backlog = (self.store.wikidata_to_ask() if name == WIKIDATA
                       else self.store.musicbrainz_to_ask())
            if backlog:
                logger.info("%s: %d %s still to ask from earlier runs", source.label,
                            len(backlog), source.stat_keys)
                source.flush = True
                source.want(backlog)

    async def process_item(self, item: Any) -> Any:
        if not self.active or not isinstance(item, CandidateItem) or item.rejected \
                or item.enrichment != "done":
            return item
        self.idle_since = None
        wiki = self.sources.get(WIKIDATA)
        if wiki is not None:
            wiki.want(wikidata.askable(item.artist_ids))
        brainz = self.sources.get(MUSICBRAINZ)
        if brainz is not None:
            row = self.store.track(item.id)
            isrc = (row["isrc"] if row is not None else None) or item.isrc
            if isrc:
                brainz.want(musicbrainz.askable([isrc]))
        return item

    def spider_idle(self) -> None:
        """Keep the spider open while a source has work, up to ``OPENDATA_IDLE_WAIT``."""
        busy = [s for s in self.sources.values() if s.busy]
        if not self.active or not busy or self.watch.closing:
            return
        now = time.monotonic()
        if self.idle_since is None:
            self.idle_since = now
        if now - self.idle_since > self.idle_wait:
            for source in busy:
                left = source.stop()
                logger.warning("%s: still busy after OPENDATA_IDLE_WAIT (%.0f s) with nothing "
                               "else to do; %d %s stay to ask next run", source.label,
                               self.idle_wait, left, source.stat_keys)
                self.left[source.name] = left
            return
        for source in busy:
            source.flush = True
            source.kick()
        raise DontCloseSpider

    def _close_started(self) -> None:
        for name, source in self.sources.items():
            left = source.stop()
            if left:
                self.left[name] = self.left.get(name, 0) + left

    def close_spider(self, spider: Any = None) -> None:
        if not self.active:
            return
        for source in self.sources.values():
            left = source.stop()
            if left:
                self.left[source.name] = self.left.get(source.name, 0) + left
        self._remember()

    def _remember(self) -> None:
        """Add this run's counts to the store's (for the manifest), with how the run went."""
        stats = self.stats.get_stats()
        runs: dict[str, Any] = self.store.get_meta(META_STATE, {})
        for name in (WIKIDATA, MUSICBRAINZ):
            entry = runs.setdefault(name, {})
            totals = entry.setdefault("totals", {})
            for key in ("requests", "answered", "retries", "errors"):
                totals[key] = totals.get(key, 0) + stats.get(f"{name}/{key}", 0)
            source = self.sources.get(name)
            if isinstance(source, _Wikidata) and source.unmapped:
                unmapped = Counter(entry.get("unmappedLabels") or {})
                unmapped.update(source.unmapped)
                entry["unmappedLabels"] = dict(sorted(unmapped.items()))
            entry["lastRun"] = {
                "enabled": source is not None,
                "disabled": self.disabled.get(name),
                "parked": source.parked if source is not None else None,
                "leftToAsk": self.left.get(name, 0),
                "at": utc_now(),
            }
        with self.store.transaction():
            self.store.set_meta(META_STATE, runs)


def _batch_size(settings: Any, name: str, cap: int) -> int:
    try:
        size = settings.getint(name)
    except (TypeError, ValueError):
        size = None
    if size is None or not 1 <= size <= cap:
        raise ValueError(f"{name}={settings.get(name)!r} must be a whole number from 1 to "
                         f"{cap}; set it in that range")
    return size


def _base_url(settings: Any, name: str) -> str:
    url = settings.get(name) or ""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{name}={url!r} is not an http(s) URL; set it to the service's "
                         f"address (see .env.example)")
    return url


def check_settings(settings: Any) -> None:
    """The open-data settings of every source that is on, each mistake one ``ValueError``
    line naming the setting and the fix (``scrapy crawl``'s preflight, before anything
    starts; the pipeline would otherwise fail as it is built, with a traceback)."""
    if settings.getbool("WIKIDATA_ENABLED"):
        _batch_size(settings, "WIKIDATA_BATCH_SIZE", wikidata.MAX_BATCH)
        _base_url(settings, "WIKIDATA_SPARQL_URL")
        try:
            load_mapping(settings["WIKIDATA_GENRE_MAP"])
        except SeedError as exc:
            raise ValueError(f"WIKIDATA_GENRE_MAP: {exc}; fix the file or point "
                             f"WIKIDATA_GENRE_MAP at seeds/wikidata_genres.yaml") from None
    if settings.getbool("MUSICBRAINZ_ENABLED") \
            and (settings.get("MUSICBRAINZ_CONTACT") or "").strip():
        _batch_size(settings, "MUSICBRAINZ_BATCH_SIZE", musicbrainz.MAX_BATCH)
        _base_url(settings, "MUSICBRAINZ_BASE_URL")


def _json(response: Response) -> Any:
    try:
        return response.json()  # type: ignore[attr-defined]
    except (AttributeError, ValueError):
        return None
