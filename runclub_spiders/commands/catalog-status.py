# ruff: noqa: N999 -- the module name is the command name users type
"""``scrapy catalog-status``: where discovery stands, and when it should be done, from the store.

No API call and no network: it reads the store at ``CATALOG_STORE_PATH`` (and the seed plan
for its cells) through a read-only connection, takes no lock (a crawl may be running; SQLite's
WAL lets it read beside it) and writes nothing. It prints:

* candidates found per umbrella x decade cell against the cell target (``*``: discovery
  stopped spending there);
* per quota bucket: requests in the rolling ~24 h window (whole hours), the size Spotify
  taught (``quota_learned``), and whether it is parked;
* tracks waiting for enrichment;
* the projection (``catalog.projection``): tracks still wanted, requests needed, the bucket
  sizes it assumed and the projected finish date.

A missing or unreadable store, or a bad seed file, is one line on stderr and exit code 1.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from scrapy.commands import ScrapyCommand

from runclub_spiders import clock
from runclub_spiders.catalog.projection import (
    Projection,
    cell_counts,
    cell_targets,
    project_store,
    stopped_cells,
)
from runclub_spiders.quota import utc_iso
from runclub_spiders.seeds import SeedError, load_plan
from runclub_spiders.store import Store, StoreError

#: Buckets always listed, in this order; any other bucket the ledger knows follows.
BUCKETS = ("search", "albums", "album_tracks", "artists", "tracks", "playlists", "user")


SOURCES = {"learned": "learned", "SPOTIFY_DAILY_BUDGET": "SPOTIFY_DAILY_BUDGET",
           "default": "not learned, no budget: the default"}


def minute(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M")


class StatusError(Exception):
    """One line: why there is no status to print."""


class Command(ScrapyCommand):
    requires_project = True
    requires_crawler_process = False
    default_settings: ClassVar[dict[str, Any]] = {"LOG_ENABLED": False}

    def syntax(self) -> str:
        return "[options]"

    def short_desc(self) -> str:
        return "Show discovery's progress, quota use and projected finish (no API call)"

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        assert self.settings is not None
        try:
            print(status(self.settings))
        except StatusError as exc:
            print(f"error: {exc}", file=sys.stderr)
            self.exitcode = 1


def status(settings) -> str:
    path = Path(settings["CATALOG_STORE_PATH"])
    if not (path.is_file() and path.stat().st_size):
        raise StatusError(f"no crawl store at {path} (CATALOG_STORE_PATH): run a crawl "
                          f"first, or point CATALOG_STORE_PATH at the store")
    try:
        plan = load_plan(settings["SEEDS_PLAN"], settings["SEEDS_UMBRELLAS"])
    except SeedError as exc:
        raise StatusError(str(exc)) from None
    with read_only(path) as store:
        return report(store, settings, plan.cells(), path, clock.now())


class read_only:  # noqa: N801 -- used as a context manager, like open()
    """The store through a read-only connection; the -wal and -shm files SQLite creates
    beside a WAL database for a reader are removed again if they were not there before."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sidecars = [path.with_name(path.name + s) for s in ("-wal", "-shm")]
        self.existed = {p for p in self.sidecars if p.exists()}
        self.store: Store | None = None

    def __enter__(self) -> Store:
        try:
            Store.check(self.path)
            db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
        except (StoreError, sqlite3.DatabaseError) as exc:
            self._tidy()
            raise StatusError(str(exc)) from None
        db.row_factory = sqlite3.Row
        self.store = Store(db, self.path)
        return self.store

    def __exit__(self, *exc_info: object) -> None:
        if self.store is not None:
            self.store.close()
        self._tidy()

    def _tidy(self) -> None:
        for path in self.sidecars:
            if path not in self.existed:
                path.unlink(missing_ok=True)


def report(store: Store, settings, cells, path: Path, now: float) -> str:
    try:
        counts, total = cell_counts(store, cells)
        stopped = stopped_cells(store)
        use = store.quota_window_use(now)
        learned = store.learned_quota()
        parks = store.quota_parks()
        pending = store.counts()["pending"]
        projection = project_store(store, settings, cells, now, counts=counts,
                                   total_candidates=total)
    except sqlite3.DatabaseError as exc:        # a store of an older schema, say
        raise StatusError(f"{path} cannot be read ({exc}); run a crawl on it once "
                          f"to bring it up to date") from None
    target, cap = cell_targets(settings)
    lines = [f"catalog-status: {path} at {minute(now)} UTC (no API call)", "",
             f"Candidates per cell (found/target, * = discovery stopped there); "
             f"{total:,} in all, cap {cap:,}"]
    lines += cell_table(counts, stopped, target)
    lines += ["", "Quota buckets (24 h use, by whole hours; learned size: when, and the "
                  "wait Spotify gave):"]
    lines += bucket_table(use, learned, parks, now)
    lines += ["", f"Pending enrichment: {pending:,} tracks", ""]
    lines += projection_lines(projection)
    return "\n".join(line.rstrip() for line in lines)


def cell_table(counts: dict[tuple[str, str], int], stopped: dict[tuple[str, str], str],
               target: int) -> list[str]:
    umbrellas = list(dict.fromkeys(u for u, _ in counts))
    decades = list(dict.fromkeys(d for _, d in counts))
    texts = {cell: f"{n}/{target}" + ("*" if cell in stopped else " ")
             for cell, n in counts.items()}
    width = max([len(t) for t in texts.values()] + [len(d) + 1 for d in decades])
    name = max([len(u) for u in umbrellas] + [len("umbrella")])
    rows = ["  " + "umbrella".ljust(name) + "".join(f"  {d + ' ':>{width}}" for d in decades)]
    for u in umbrellas:
        rows.append("  " + u.ljust(name)
                    + "".join(f"  {texts[(u, d)]:>{width}}" for d in decades))
    reasons = sorted(set(stopped.values()))
    if reasons:
        rows.append(f"  * stopped: {', '.join(reasons)}")
    return rows


def bucket_table(use: dict[str, int], learned: dict[str, tuple[int, float | None, float]],
                 parks: dict[str, tuple[float, str]], now: float) -> list[str]:
    buckets = list(BUCKETS) + sorted((use.keys() | learned.keys() | parks.keys())
                                     - set(BUCKETS))
    texts = {}
    for bucket in buckets:
        if bucket in learned:
            size, retry_after, at = learned[bucket]
            wait = f"wait {retry_after / 3600:.1f} h" if retry_after is not None \
                else "no Retry-After"
            size_text = f"{size} ({minute(at)}, {wait})"
        else:
            size_text = "not learned"
        until = parks.get(bucket, (0.0, ""))[0]
        parked = f"until {utc_iso(until)}" if until > now else "open"
        texts[bucket] = (size_text, parked)
    width = max(len(size_text) for size_text, _ in texts.values())
    rows = [f"  {'bucket':<12} {'24 h use':>8}  {'learned size':<{width}}  parked"]
    rows += [f"  {bucket:<12} {use.get(bucket, 0):>8}  {size_text:<{width}}  {parked}"
             for bucket, (size_text, parked) in texts.items()]
    return rows


def projection_lines(p: Projection) -> list[str]:
    lines = ["Projection (yield over the whole history, so the date can come early; "
             "see catalog/projection.py):",
             f"  tracks still wanted:   {p.wanted:,} candidates in open cells"]
    if p.yield_per_request is not None:
        lines.append(f"  yield:                 {p.yield_per_request:.2f} new candidates per "
                     f"request ({p.candidates:,} / {p.requests_made:,} requests)")
    else:
        lines.append("  yield:                 not measured yet (no discovery request counted)")
    needed = f"{p.requests_needed:,}" if p.requests_needed is not None else "unknown"
    lines += [f"  requests still needed: {needed}",
              f"  requests a day:        {p.per_day:,}, the sizes of the buckets discovery "
              f"draws on:"]
    lines += [f"    {s.bucket:<20} {s.size:,} ({SOURCES[s.source]})" for s in p.sizes]
    left = (f"0 ({', '.join(p.parked)} parked: the rest waits for the next run)"
            if p.parked else f"{p.left_today:,} calls in the buckets' rolling windows")
    lines.append(f"  left today:            {left}")
    if p.days_needed is not None and p.finish is not None:
        lines += [f"  days needed:           {p.days_needed:.1f}",
                  f"  projected finish:      {p.finish.isoformat()} (UTC), the run that "
                  f"spends the last request"]
    else:
        lines += ["  days needed:           unknown", "  projected finish:      unknown"]
    return lines
