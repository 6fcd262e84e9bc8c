"""ReccoBeats audio features for the candidates that passed the cheap filters, in batches.

Each item waits on a future while its Spotify ID sits in the open batch. A batch is sent when
it holds ``RECCOBEATS_BATCH_SIZE`` IDs (at most 40, the API's cap) or ``RECCOBEATS_BATCH_WAIT``
seconds after its first ID, whichever comes first; never from ``close_spider``, where the
engine can no longer download. Requests go through the engine (``download_async``), so the
service slot, the rate-limit middleware's retries and parks, and the stats all apply.

What is asked, and what is not:

* a track with stored features is never asked again (the item gets them from the store);
* a miss (ReccoBeats had no row) is asked again only after ``RECCOBEATS_MISS_TTL_DAYS``;
* an ID already waiting in a batch or in flight is not added twice; its items share the answer;
* ``/track?ids=`` (popularity, availableCountries) is asked alongside, only for tracks whose
  Spotify ``is_playable`` is unknown and whose ReccoBeats countries are not stored yet.

Rows are joined to the request through ``href`` only (``open.spotify.com/track/<22 chars>``):
ReccoBeats keys rows by its own UUID and returns them in no fixed order. Rows for IDs not
asked ("stray") and repeated rows are ignored and counted. A 400 "size must be between" splits
the batch in halves and retries them.

Outcomes, in the store and on the item (``item.enrichment``):

* ``done``: ``features`` row saved (with ReccoBeats' UUID, ISRC and ``fetched_at``), state
  ``done``; ``item.features`` holds the 11 features (``tempo`` 0 stored as unknown, NULL).
* ``miss``: state ``miss`` with ``enrich_retry_after`` = now + TTL (the TTL in force when
  the miss is recorded decides; lowering it later does not bring old misses forward).
* ``error``: HTTP failure after the middleware's retries, an exception, a 200 whose body is
  not ``{"content": [...]}`` (truncated, garbled: a transient fault, asked again up to
  ``RETRY_TIMES`` times, as discovery does), or the spider closing
  (``extensions/prompt_close.py``: an open batch is not sent, one in flight is cancelled, so
  any close is prompt). The store is not touched: the track stays ``pending`` and the next
  run (``Store.pending_enrichment``) asks again. Nothing is lost if the process dies either:
  a batch lives only in memory, but every track in it is still ``pending`` in the store.
  While the ``reccobeats`` quota bucket is parked, the middleware refuses these requests at
  once, so batches end as ``error`` (pending) until the park is over.

A failed ``/track`` request does not hold back the features: they are saved, the countries stay
NULL (counted in ``reccobeats/errors``), and that track is not asked ``/track`` again.

Playability from ReccoBeats: the store has no setter for ``is_playable`` and keeps Spotify's
answer (NULL) as it is; ``Store.set_recco_track`` records the countries in
``recco_countries``, and classification reads them when ``is_playable`` is NULL. The item's
``is_playable`` is filled in from them (``SPOTIFY_MARKET`` in the list) for later stages.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from scrapy import Request
from scrapy.downloadermiddlewares.retry import get_retry_request
from scrapy.http.request import NO_CALLBACK
from scrapy.utils.asyncio import call_later

from runclub_spiders.items import CandidateItem
from runclub_spiders.pipelines import StorePipeline, utc_now
from runclub_spiders.pipelines.reccobeats import (
    ERROR,
    FEATURES,
    REQUEST_META,
    TRACKS,
    Fetched,
    Outcome,
    Rows,
    content_of,
    is_size_error,
    join_rows,
    read_batch,
    request_headers,
    stored_countries,
)
from runclub_spiders.quota import utc_iso
from runclub_spiders.store import FEATURE_FIELDS
from runclub_spiders.utils.closing import CloseWatch

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.statscollectors import StatsCollector
    from scrapy.utils.asyncio import CallLaterResult


logger = logging.getLogger(__name__)

DOWNLOADER_META = ("download_latency", "download_slot")


@dataclass(eq=False)
class _Batch:
    futures: dict[str, asyncio.Future[Outcome]] = field(default_factory=dict)
    need_track: set[str] = field(default_factory=set)
    timer: CallLaterResult | None = None


class _Batches:
    """The open batch, the future of every ID waiting or in flight, and the batches being sent.

    ``send(ids, track_ids)`` asks for one batch and returns the outcomes by ID; an ID it leaves
    out, or every ID of a batch whose sending fails or is cancelled, ends as ``error``.
    """

    def __init__(self, size: int, wait: float, stats: StatsCollector,
                 send: Callable[[list[str], list[str]], Awaitable[dict[str, Outcome]]]) -> None:
        self.size, self.wait, self.stats, self.send = size, wait, stats, send
        self._batch: _Batch | None = None
        self._inflight: dict[str, asyncio.Future[Outcome]] = {}
        self._flushes: dict[asyncio.Task[None], _Batch] = {}     # batches being sent

    def add(self, track_id: str, need_track: bool) -> asyncio.Future[Outcome]:
        batch = self._batch
        future = self._inflight.get(track_id)
        if future is not None:
            if need_track and batch is not None and track_id in batch.futures:
                batch.need_track.add(track_id)
            self.stats.inc_value("reccobeats/deduplicated")
            return future
        if batch is None:
            batch = self._batch = _Batch()
            batch.timer = call_later(self.wait, self._timer_fired, batch)
        future = asyncio.get_running_loop().create_future()
        batch.futures[track_id] = future
        self._inflight[track_id] = future
        if need_track:
            batch.need_track.add(track_id)
        if len(batch.futures) >= self.size:
            self._launch(batch)
        return future

    def _timer_fired(self, batch: _Batch) -> None:
        if self._batch is batch:
            self.stats.inc_value("reccobeats/flush/timer")
            self._launch(batch)

    def _launch(self, batch: _Batch) -> None:
        if self._batch is batch:
            self._batch = None
        if batch.timer is not None:
            batch.timer.cancel()
        task = asyncio.ensure_future(self._flush(batch))
        self._flushes[task] = batch
        task.add_done_callback(lambda done: self._flushes.pop(done, None))

    def _resolve(self, batch: _Batch, outcomes: dict[str, Outcome]) -> None:
        for track_id, future in batch.futures.items():
            if self._inflight.get(track_id) is future:
                del self._inflight[track_id]
            if not future.done():
                future.set_result(outcomes.get(track_id, ERROR))

    async def _flush(self, batch: _Batch) -> None:
        outcomes: dict[str, Outcome] = {}
        try:
            outcomes = await self.send(list(batch.futures),
                                       [i for i in batch.futures if i in batch.need_track])
        finally:
            self._resolve(batch, outcomes)

    def drop_open(self) -> None:
        """End the open batch, unsent: its IDs get ``error``."""
        batch, self._batch = self._batch, None
        if batch is not None:
            if batch.timer is not None:
                batch.timer.cancel()
            self._resolve(batch, {})

    def give_up(self) -> int:
        """End every ID waiting or in flight as ``error``; returns how many there were."""
        waiting = len(self._inflight)
        self.drop_open()
        for task, flushing in list(self._flushes.items()):
            task.cancel()               # cancels its downloads
            # Resolved here, not only in _flush's finally: a task cancelled before its first
            # step never runs its body, and its items would wait for ever.
            self._resolve(flushing, {})
        return waiting


class ReccoBeatsEnrichmentPipeline(StorePipeline):
    MAX_BATCH = 40                              # the API answers 400 above this

    def __init__(self, crawler: Crawler) -> None:
        settings = crawler.settings
        super().__init__(crawler)
        self.stats = crawler.stats
        self.base = settings["RECCOBEATS_BASE_URL"].rstrip("/")
        self.batch_size = settings.getint("RECCOBEATS_BATCH_SIZE")
        if not 1 <= self.batch_size <= self.MAX_BATCH:
            raise ValueError(f"RECCOBEATS_BATCH_SIZE must be between 1 and {self.MAX_BATCH} "
                             f"(ReccoBeats refuses larger batches), not {self.batch_size}")
        self.wait = settings.getfloat("RECCOBEATS_BATCH_WAIT")
        if self.wait < 0:
            raise ValueError(f"RECCOBEATS_BATCH_WAIT must not be negative, not {self.wait}")
        self.miss_ttl = settings.getfloat("RECCOBEATS_MISS_TTL_DAYS") * 86_400
        self.market = (settings.get("SPOTIFY_MARKET") or "US").upper()
        self.headers = request_headers()
        self.batches = _Batches(self.batch_size, self.wait, self.stats, self._send)
        self.watch = CloseWatch(crawler, on_close=self._close_started)


    # ---------------------------------------------------------------- items
    async def process_item(self, item: Any) -> Any:
        if not isinstance(item, CandidateItem) or item.rejected:
            return item
        store = self.store
        stored = store.features(item.id)
        row = store.track(item.id)
        countries = stored_countries(row)
        if stored is not None:
            self.stats.inc_value("reccobeats/already_enriched")
            self._apply(item, Outcome("done", {f: stored[f] for f in FEATURE_FIELDS},
                                      countries))
            return item
        if (row is not None and row["enrich_state"] == "miss"
                and (row["enrich_retry_after"] or "") > utc_now()):
            self.stats.inc_value("reccobeats/miss_not_due")
            self._apply(item, Outcome("miss", None, countries))
            return item
        need_track = item.is_playable is None and countries is None
        outcome = await asyncio.shield(self._enqueue(item.id, need_track))
        if outcome.countries is None:
            outcome = Outcome(outcome.state, outcome.features, countries)
        self._apply(item, outcome)
        return item

    def _apply(self, item: CandidateItem, outcome: Outcome) -> None:
        item.enrichment = outcome.state
        if outcome.features is not None:
            item.features = dict(outcome.features)
        if item.is_playable is None and outcome.countries is not None:
            item.is_playable = self.market in outcome.countries

    def _enqueue(self, track_id: str, need_track: bool) -> asyncio.Future[Outcome]:
        if self.watch.closing:
            done = asyncio.get_running_loop().create_future()
            done.set_result(ERROR)
            return done
        return self.batches.add(track_id, need_track)

    def close_spider(self) -> None:
        # Never flush here: the engine cannot download any more. The scraper waits for the
        # items in flight before closing, so this only guards against a batch left behind.
        self.batches.drop_open()

    def _close_started(self) -> None:
        """Give up on what waits: the items end now, their tracks stay pending in the store."""
        waiting = self.batches.give_up()
        if waiting:
            self.stats.inc_value("reccobeats/given_up_on_close", waiting)
            logger.info("Closing: %d tracks waiting for ReccoBeats stay pending for the next "
                        "run", waiting)

    # ---------------------------------------------------------------- HTTP
    async def _send(self, ids: list[str], track_ids: list[str]) -> dict[str, Outcome]:
        """One batch: ``/audio-features`` for all, ``/track`` for ``track_ids``, stored."""
        try:
            fetches = [self._fetch(FEATURES, ids)]
            if track_ids:
                fetches.append(self._fetch(TRACKS, track_ids))
            return self._record(ids, *await asyncio.gather(*fetches))
        except Exception:
            logger.exception("ReccoBeats batch of %d IDs failed; they stay pending", len(ids))
            self.stats.inc_value("reccobeats/errors")
            return {}

    def request(self, endpoint: str, ids: list[str]) -> Request:
        return Request(f"{self.base}/{endpoint}?ids={','.join(ids)}", headers=self.headers,
                       callback=NO_CALLBACK, dont_filter=True, meta=dict(REQUEST_META))

    async def _fetch(self, endpoint: str, ids: list[str]) -> Fetched:
        """(rows joined by Spotify ID, IDs whose request failed) for one batch."""
        self.stats.inc_value("reccobeats/requests")
        self.stats.inc_value(f"reccobeats/requests/{endpoint}")
        request = self.request(endpoint, ids)
        while True:
            try:
                response = await self.crawler.engine.download_async(request)
            except Exception as exc:       # IgnoreRequest (a park), connection errors...
                return self._failed(endpoint, ids, f"{type(exc).__name__}: {exc}")
            if response.status != 200 or not isinstance(content_of(response), str):
                break
            # A truncated or garbled 200 is a transient fault, like a 5xx: asked again, up to
            # RETRY_TIMES (the same count the retry middleware gives it).
            retry = get_retry_request(getattr(response, "request", None) or request,
                                      spider=self.crawler.spider, reason="malformed_json",
                                      give_up_log_level=logging.WARNING)
            if retry is None:
                break
            for key in DOWNLOADER_META:    # they describe the failed attempt
                retry.meta.pop(key, None)
            request = retry
        if len(ids) > 1 and is_size_error(response):
            self.stats.inc_value("reccobeats/batch_splits")
            logger.warning("ReccoBeats refused %d IDs on /%s as too many; splitting the batch",
                           len(ids), endpoint)
            half = len(ids) // 2
            first, second = await asyncio.gather(self._fetch(endpoint, ids[:half]),
                                                 self._fetch(endpoint, ids[half:]))
            return {**first[0], **second[0]}, first[1] | second[1]
        content = content_of(response)
        if isinstance(content, str):
            return self._failed(endpoint, ids, content)
        return self._join(endpoint, content, ids), set()

    def _failed(self, endpoint: str, ids: list[str], why: str) -> Fetched:
        self.stats.inc_value("reccobeats/errors")
        logger.warning("ReccoBeats /%s for %d IDs failed (%s); the tracks stay pending for "
                       "the next run", endpoint, len(ids), why)
        return {}, set(ids)

    def _join(self, endpoint: str, content: list[Any], ids: list[str]) -> Rows:
        rows, ignored = join_rows(content, ids)
        for name, count in ignored.items():
            self.stats.inc_value(f"reccobeats/{name}", count)
        if endpoint == TRACKS:
            self.stats.inc_value("reccobeats/track_rows", len(rows))
        return rows

    # ---------------------------------------------------------------- store
    def _record(self, ids: list[str], features: Fetched, tracks: Fetched | None = None,
                ) -> dict[str, Outcome]:
        answer = read_batch(ids, features, tracks)
        now_epoch = time.time()
        now, retry_after = utc_iso(now_epoch), utc_iso(now_epoch + self.miss_ttl)
        with self.store.transaction():
            for track_id, (popularity, countries) in answer.tracks.items():
                self.store.set_recco_track(track_id, popularity, countries, now)
            for track_id, outcome in answer.outcomes.items():
                if outcome.state == "done":
                    self.store.save_features(track_id, answer.features[track_id], now)
                    self.stats.inc_value("reccobeats/features")
                elif outcome.state == "miss":
                    self.store.set_enrich_state(track_id, "miss", retry_after=retry_after,
                                                now=now)
                    self.stats.inc_value("reccobeats/misses")
        return answer.outcomes
