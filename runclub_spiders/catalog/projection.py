"""When discovery will be done, projected from the store alone (no API call).

Read by ``scrapy catalog-status`` and by the progress line. The figures, and what each is
an estimate of:

* **Tracks still wanted**: for every umbrella x decade cell of the plan that discovery has
  not stopped (exhausted, low yield, at target: in a crawl, its own verdicts now,
  ``CellBook.review``; else ``discovery_cells.stopped``, saved at each close), the
  candidates it still lacks to reach the cell target (``CATALOG_CELL_TARGET`` x
  ``DISCOVERY_OVERSAMPLE``, as the frontier's planner computes it), counted as the planner
  counts them (``tracks.planning_cells``); summed, and capped by the room left under the
  total cap (``CATALOG_MAX_TRACKS`` x ``DISCOVERY_OVERSAMPLE``). A track counting toward two
  cells fills both, so the sum can overstate what is wanted.
* **Yield**: new candidates per discovery request over the store's whole history: the
  candidates discovery's own requests found (those of the owner's playlists left out) over
  every request the quota ledger counted in the buckets discovery draws on (``search``,
  ``albums``, ``album_tracks``, ``artists``, ``tracks``; ``quota_days``, every day).
  Whole history, not the last 24 h: both sides are then complete since the store began,
  and no wall-clock timestamp (``tracks.first_seen_at``) is compared with the quota clock
  (``runclub_spiders.clock``, which ``RUNCLUB_CLOCK_OFFSET`` shifts). Yield falls as cells
  fill, so the whole history is optimistic: the projection is a lower bound on requests.
* **Requests still needed**: tracks wanted / yield, rounded up.
* **Days needed**: requests needed / the summed daily size of the buckets discovery draws on
  under the settings and what the probe found (``discovery_buckets``: search always; albums
  and artists while album reads and artist listings are on and not refused; tracks while
  ReccoBeats leads are on and ReccoBeats reachable, or album tracks' full objects are asked
  in Extended Quota; album tracks, ``/albums/{id}/tracks``, while album reads are on in
  Development Mode). A bucket's
  size is the one Spotify taught (``quota_learned``, the latest), else its
  ``SPOTIFY_DAILY_BUDGET``, else :data:`DEFAULT_BUCKET_SIZE` (600, the cut-off one report
  saw); each size says which it is. Album tracks count only with a taught size or a budget:
  until Spotify refuses them, nobody knows whether they share the albums bucket (then
  Spotify teaches size 0). Summing assumes discovery can spend every bucket in
  full.
* **Left today**: the calls each bucket still has in Spotify's rolling window
  (``quota_window_use``: its size less its use in the last 24 h), summed; 0 while a
  bucket discovery draws on is parked (one with a size; the albums bucket only when album
  tracks have no open bucket of their own to read the albums through), unless the park
  ends within ``QUOTA_PARK_IDLE_WAIT`` (the crawl waits for it). Discovery spends its
  buckets side by side, each to its size on a full day (album tracks apart: they are read
  while the albums bucket is parked), so once one is parked the work still wanted needs it
  too: the crawl closes ``quota_parked`` and the rest waits for the next run. A bucket
  sized by its ``SPOTIFY_DAILY_BUDGET`` has what its budget's window leaves
  (``quota.BUDGET_WINDOW_HOURS``, the hours the quota middleware counts for it: up to an
  hour longer than Spotify's, so such a bucket frees up to an hour after the same time the
  next day).
* **Finish**: the UTC date of the run that spends the last request needed, for a crawl
  started again whenever its buckets free (README, "Running it every day"): a day's calls
  a day; today if what is left today covers it,
  else ``ceil((requests needed - left today) / requests a day)`` days after ``clock.now()``,
  and never before the last of those parks ends. A day's run spends a day's calls, and the
  calls a run made leave the rolling window by the same time the next day. Counting days
  rather than runs (``days needed`` after now) dated every benchmark crawl a day or two
  early: a last day that needs a few hundred calls is a day all the same, and a crawl
  parked today cannot finish today (BENCHMARKS.md, "the finish date counts daily runs").
  Nothing wanted: today.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

from runclub_spiders.probe import Capabilities, discovery_switches
from runclub_spiders.quota import BUDGET_WINDOW_HOURS

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings

    from runclub_spiders.store import Store

#: The buckets discovery's requests may draw on.
DISCOVERY_BUCKETS = ("search", "albums", "album_tracks", "artists", "tracks")
#: Buckets that add a day's calls only once Spotify showed they have a size of their own:
#: album tracks may share the albums bucket (``Frontier._next_album_tracks``).
PROVEN_ONLY = ("album_tracks",)
#: A bucket's daily size when neither Spotify nor SPOTIFY_DAILY_BUDGET says otherwise.
DEFAULT_BUCKET_SIZE = 600

Cell = tuple[str, str]


@dataclass(frozen=True, slots=True)
class BucketSize:
    bucket: str
    size: int
    source: str          # "learned" | "SPOTIFY_DAILY_BUDGET" | "default"


@dataclass(frozen=True, slots=True)
class Projection:
    wanted: int                      # candidates still wanted in open cells, within the cap
    candidates: int                  # discovered candidates the yield is measured on
    requests_made: int               # discovery-bucket requests the yield is measured on
    requests_needed: int | None      # None: no yield measured yet
    sizes: tuple[BucketSize, ...]
    days_needed: float | None        # requests needed / requests a day
    left_today: int                  # calls left in today's windows (0: a bucket is parked)
    parked: tuple[str, ...]          # the buckets of ``sizes`` whose parks close today
    finish: date | None

    @property
    def per_day(self) -> int:
        return sum(s.size for s in self.sizes)

    @property
    def yield_per_request(self) -> float | None:
        return self.candidates / self.requests_made if self.requests_made else None


def cell_targets(settings: BaseSettings) -> tuple[int, int]:
    """``(cell target, total cap)`` in candidates, as ``Frontier`` computes them."""
    oversample = settings.getfloat("DISCOVERY_OVERSAMPLE")
    return (max(1, round(settings.getint("CATALOG_CELL_TARGET") * oversample)),
            round(settings.getint("CATALOG_MAX_TRACKS") * oversample))


def cell_counts(store: Store, cells: Iterable[Cell]) -> tuple[dict[Cell, int], int]:
    """Candidates per plan cell and in total, as ``Planner.recount`` counts them."""
    counts = dict.fromkeys(cells, 0)
    total = 0
    for planning in store.planning_cells():
        if planning is None:
            continue
        total += 1
        for umbrella, decade in json.loads(planning or "[]"):
            if (umbrella, decade) in counts:
                counts[(umbrella, decade)] += 1
    return counts, total


def stopped_cells(store: Store) -> dict[Cell, str]:
    """Cells where discovery stopped spending, and why."""
    return {cell: row["stopped"] for cell, row in store.discovery_cells().items()
            if row["stopped"]}


def discovery_buckets(settings: BaseSettings, caps: Capabilities) -> tuple[str, ...]:
    """The buckets discovery draws on under ``settings`` and what the probe found (the
    switches of ``probe.adapt`` and ``Frontier``): a bucket nothing asks adds no day."""
    extended = settings.get("SPOTIFY_API_PROFILE") == "extended"
    albums, listings, leads = discovery_switches(settings, caps)
    used = {"search": True, "albums": albums, "album_tracks": albums and not extended,
            "artists": listings, "tracks": leads or (extended and albums)}
    return tuple(b for b in DISCOVERY_BUCKETS if used[b])


def bucket_sizes(learned: Mapping[str, tuple[int, float | None, float]],
                 budgets: Mapping[str, int],
                 buckets: Iterable[str] = DISCOVERY_BUCKETS) -> tuple[BucketSize, ...]:
    sizes = []
    for bucket in buckets:
        if bucket in learned:
            sizes.append(BucketSize(bucket, int(learned[bucket][0]), "learned"))
        elif bucket in budgets:
            sizes.append(BucketSize(bucket, int(budgets[bucket]), "SPOTIFY_DAILY_BUDGET"))
        elif bucket in PROVEN_ONLY:
            continue                    # may share another bucket: no day of its own yet
        else:
            sizes.append(BucketSize(bucket, DEFAULT_BUCKET_SIZE, "default"))
    return tuple(sizes)


def project(*, counts: Mapping[Cell, int], stopped: Collection[Cell], cell_target: int,
            total_candidates: int, max_candidates: int, candidates: int, requests_made: int,
            sizes: tuple[BucketSize, ...], now: float, use: Mapping[str, int],
            parks: Mapping[str, float]) -> Projection:
    """The projection from its inputs (the module doc says what each is): ``use``, each
    bucket's calls in the rolling window ending at ``now``; ``parks``, when each bucket's
    park ends, for the parks the crawl does not wait for."""
    shortfall = sum(max(0, cell_target - n) for cell, n in counts.items()
                    if cell not in stopped)
    # The global cap bounds the candidates that count toward a cell below its target (as
    # ``Planner.useful``), not those past a full cell's target.
    useful = sum(min(n, cell_target) for n in counts.values())
    wanted = max(0, min(shortfall, max_candidates - useful))
    per_day = sum(s.size for s in sizes)
    if wanted == 0:
        needed: int | None = 0
    elif candidates > 0 and requests_made > 0:
        needed = math.ceil(wanted * requests_made / candidates)
    else:
        needed = None
    days = needed / per_day if needed is not None and per_day > 0 else None
    parked = closing_parks(sizes, {b: until for b, until in parks.items() if until > now})
    left = 0 if parked else sum(max(0, s.size - use.get(s.bucket, 0)) for s in sizes)
    finish = None
    if needed == 0:
        finish = datetime.fromtimestamp(now, UTC).date()
    elif needed is not None and per_day > 0:
        runs_after = 0 if needed <= left else math.ceil((needed - left) / per_day)
        at = max([now + runs_after * 86_400, *(parks[b] for b in parked)])
        finish = datetime.fromtimestamp(at, UTC).date()
    return Projection(wanted=wanted, candidates=candidates, requests_made=requests_made,
                      requests_needed=needed, sizes=sizes, days_needed=days,
                      left_today=left, parked=parked, finish=finish)


def closing_parks(sizes: tuple[BucketSize, ...], parks: Mapping[str, float]
                  ) -> tuple[str, ...]:
    """The parked buckets that close discovery's day: those with a size (album tracks that
    share the albums bucket have 0); the albums bucket only when album tracks have no open
    bucket of their own (the frontier reads the albums through ``/albums/{id}/tracks``
    while it is parked)."""
    size = {s.bucket: s.size for s in sizes}
    rerouted = size.get("album_tracks", 0) > 0 and "album_tracks" not in parks
    return tuple(s.bucket for s in sizes if s.bucket in parks and s.size > 0
                 and not (s.bucket == "albums" and rerouted))


def project_store(store: Store, settings: BaseSettings, cells: Iterable[Cell], now: float, *,
                  counts: Mapping[Cell, int] | None = None,
                  total_candidates: int | None = None,
                  targets: tuple[int, int] | None = None,
                  stopped: Collection[Cell] | None = None) -> Projection:
    """The projection for ``store`` under ``settings``. ``counts`` and ``total_candidates``
    when the caller has them already (the planner), else counted from the store; ``targets``
    (cell target, total cap) when the caller has them, else from ``settings``; ``stopped``
    when the caller has the crawl's own verdicts (the store has those of the last close)."""
    cell_target, max_candidates = targets or cell_targets(settings)
    if counts is None or total_candidates is None:
        counts, total_candidates = cell_counts(store, cells)
    requests = store.quota_requests_all_days()
    budgets = {str(k): int(v) for k, v in settings.getdict("SPOTIFY_DAILY_BUDGET").items()}
    # A park ending within QUOTA_PARK_IDLE_WAIT is waited for in the run (Frontier).
    waited = now + settings.getfloat("QUOTA_PARK_IDLE_WAIT")
    parks = {bucket: until for bucket, (until, _) in store.quota_parks().items()
             if until > waited}
    if stopped is None:
        stopped = stopped_cells(store).keys()
    sizes = bucket_sizes(store.learned_quota(), budgets,
                         discovery_buckets(settings, Capabilities.from_store(store)))
    window = store.quota_window_use(now)
    budget_use = store.quota_window_use(now, hours=BUDGET_WINDOW_HOURS)
    use = {s.bucket: (budget_use if s.source == "SPOTIFY_DAILY_BUDGET" else window
                      ).get(s.bucket, 0) for s in sizes}
    return project(counts=counts, stopped=stopped,
                   cell_target=cell_target, total_candidates=total_candidates,
                   max_candidates=max_candidates,
                   candidates=store.discovered_candidates(),
                   requests_made=sum(requests.get(b, 0) for b in DISCOVERY_BUCKETS),
                   sizes=sizes, now=now, use=use, parks=parks)
