"""Days of Spotify quota to a complete catalog, in virtual time.

Run (not part of ``make test``): ``.venv/bin/python -m bench.days [--scenario 15k]
[--bucket-size 600] [--baseline] [--max-days 40] [--repeat 3] [-s NAME=VALUE ...]
[--out BENCHMARKS.md]``.

A scenario is a catalog size, crawl settings (a target and its cells) and a Development Mode
quota: every Spotify bucket holds ``--bucket-size`` calls per rolling 86,400 s window (the
simulator's ``bucket_size`` and ``quota_window``). It runs one ``scrapy crawl
spotify_catalog`` per virtual day, all in ONE store folder: before day ``d`` this process
calls ``clock.set_offset(d * 86400)`` (the simulator here reads that clock) and the crawl
gets ``RUNCLUB_CLOCK_OFFSET=d * 86400`` (its own quota bookkeeping reads the same shift), so
every day starts with a full window. A day's crawl ends ``quota_parked`` when its buckets
are spent (the export still runs), or ``finished`` when discovery has nothing left worth
asking. The catalog is complete when a day's export reaches its target
(``CATALOG_MAX_TRACKS``), or discovery finished (all the catalog holds); the day count then
is the figure. Requests are counted from
the simulator's request log, per day and per bucket; what was exported from the day's
manifest and its ``cached_tracks.jsonl``.

Scenarios: ``15k`` (the 100,000-track catalog of ``bench/crawl.py`` section 1, target
15,000 with ``cell_settings``), ``40k`` (200,000 tracks, ``scale_cell_settings(40_000)``),
each at bucket sizes 600, 300 and 2,000; ``small`` (3,000 tracks, the project's default
cell settings, so no cell reaches its target: one crawl without quota, limited only by what
exists). ``--baseline`` turns album and artist-album discovery and ReccoBeats leads off
(search-only discovery, as before issue 14).

The same scenario does not give the same figure twice: several requests are in flight at
once, the order their answers arrive in steers the planner, and at 40k @ 600 the export
after day 7 has ranged over some 950 tracks across runs of one commit. ``--repeat N`` runs
each scenario N times, each in a fresh store, and reports every run and the spread of the
day counts; a claim of N days rests on all of them, not on the best.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.crawl import (
    SCALE_SIZE,
    SIZE,
    cell_settings,
    crawl_argv,
    fast_slots,
    scale_cell_settings,
    spawn,
    write_report,
)
from runclub_spiders import clock
from runclub_spiders.simulator import Catalog, Simulator

DAY = 86_400
BUCKETS = ("search", "tracks", "artists", "albums", "album_tracks", "playlists", "user")
BASELINE = {"DISCOVERY_ALBUMS": False, "DISCOVERY_ARTIST_ALBUMS": False,
            "DISCOVERY_RECCO_LEADS": False,
            "DISCOVERY_MIN_YIELD": 0}
SHARE_MIN_TRACKS = 20          # the largest artist share counts cells of at least this many


@dataclass
class Scenario:
    name: str
    size: int                         # catalog size, tracks
    target: int | None                # CATALOG_MAX_TRACKS (None: the project's default)
    settings: dict[str, Any]
    bucket_size: int = 0              # 0: no quota, a single run
    overrides: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        quota = f"{self.bucket_size:,}/bucket/day" if self.bucket_size else "no quota"
        return f"{self.name} @ {quota}"


def scenarios(names: list[str], bucket_sizes: list[int]) -> list[Scenario]:
    found = []
    for name in names:
        if name == "small":
            found.append(Scenario("small", 3_000, None, {}))
        elif name == "15k":
            found += [Scenario("15k", SIZE, 15_000, cell_settings(15_000), b)
                      for b in bucket_sizes]
        elif name == "40k":
            found += [Scenario("40k", SCALE_SIZE, 40_000, scale_cell_settings(40_000), b)
                      for b in bucket_sizes]
        else:
            raise SystemExit(f"unknown scenario {name!r}: small, 15k, 40k")
    return found


# ------------------------------------------------------------------------------ one day
def close_reason(log_file: Path) -> str | None:
    """Discovery's close reason: the first ``Spider closed (...)`` of the day's log (the
    export, when it runs, closes second)."""
    if not log_file.exists():
        return None
    for line in log_file.read_text(errors="replace").splitlines():
        marker = "] INFO: Spider closed ("
        if marker in line:
            return line.split(marker, 1)[1].rstrip(")").strip()
    return None


PROJECTED = re.compile(r"'discovery/projected_finish': '(\d{4}-\d\d-\d\d)'")


def projected_finish(log_file: Path) -> str | None:
    """The finish date discovery projected at its close (its stats, the first dump of the
    day's log: the export's comes second and has none)."""
    if not log_file.exists():
        return None
    found = PROJECTED.search(log_file.read_text(errors="replace"))
    return found.group(1) if found else None


def largest_artist_share(export: Path) -> dict[str, Any] | None:
    """The largest share one primary artist holds in any (umbrella, decade) cell of at
    least ``SHARE_MIN_TRACKS`` exported tracks, from ``cached_tracks.jsonl``."""
    path = export / "cached_tracks.jsonl"
    if not path.exists():
        return None
    cells: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    with path.open(encoding="utf-8") as rows:
        for line in rows:
            row = json.loads(line)
            umbrella = row["_umbrellas"][0] if row.get("_umbrellas") else "?"
            cells[(umbrella, row.get("_decade") or "?")][row["artistId"]] += 1
    best = None
    for (umbrella, decade), artists in cells.items():
        count = sum(artists.values())
        if count < SHARE_MIN_TRACKS:
            continue
        artist, tracks = artists.most_common(1)[0]
        share = tracks / count
        if best is None or share > best["share"]:
            best = {"share": share, "cell": f"{umbrella} x {decade}", "tracks": tracks,
                    "count": count, "artist": artist}
    return best


RECCO_WORDS = {"v1", "track", "audio-features", "artist", "album"}


def recco_endpoint(path: str) -> str:
    """A ReccoBeats path with its IDs as ``{id}`` (``/v1/artist/{id}/track``)."""
    tail = path.split("/v1/", 1)[-1]
    return "/v1/" + "/".join(part if part in RECCO_WORDS else "{id}"
                             for part in tail.split("/"))


def recco_use(entries: list) -> tuple[Counter[str], Counter[str]]:
    """ReccoBeats calls per endpoint, and the IDs its batch calls asked (``ids=a,b`` or
    repeated ``ids=``): which endpoint the ReccoBeats figure goes to, and how full the
    batches were."""
    calls: Counter[str] = Counter()
    ids: Counter[str] = Counter()
    for e in entries:
        if e.service != "reccobeats":
            continue
        endpoint = recco_endpoint(e.path)
        calls[endpoint] += 1
        for part in e.query.split("&"):
            key, _, value = part.partition("=")
            if key == "ids" and value:
                ids[endpoint] += len(value.split(","))
    return calls, ids


def run_day(sim: Simulator, folder: Path, settings: dict[str, Any], day: int
            ) -> dict[str, Any]:
    """Day ``day``'s crawl, with this process's clock and the crawl's shifted by that many
    days; what it cost (from the simulator's log) and how it ended."""
    offset = day * DAY
    clock.set_offset(offset)
    log_file = folder / f"day-{day:02d}.log"
    mark = len(sim.log)
    env = {**os.environ, **sim.env(), clock.OFFSET_ENV: str(offset)}
    wall, peak = spawn(crawl_argv(folder, {**settings, "LOG_FILE": log_file}), env,
                       folder / f"day-{day:02d}-stderr.txt")
    entries = sim.requests(mark)
    spotify = [e for e in entries if e.service == "spotify"]
    manifest_file = folder / "export" / "manifest.json"
    manifest = json.loads(manifest_file.read_text()) if manifest_file.exists() else None
    recco_calls, recco_ids = recco_use(entries)
    return {
        "day": day, "reason": close_reason(log_file),
        "projected": projected_finish(log_file), "wall_s": wall, "peak_rss_mb": peak,
        "spotify": Counter(e.bucket for e in spotify),
        "spotify_429": sum(1 for e in spotify if e.status == 429),
        "quota_429": sum(1 for e in spotify if e.fault == "quota"),
        "reccobeats": sum(1 for e in entries if e.service == "reccobeats"),
        "reccobeats_calls": recco_calls, "reccobeats_ids": recco_ids,
        "exported": manifest["totals"]["tracks"] if manifest else None,
        "cells_at_min": manifest["balance"]["cellsAtMin"] if manifest else None,
        "cells_at_target": manifest["balance"]["cellsAtTarget"] if manifest else None,
        "cells": len(manifest["balance"]["cells"]) if manifest else None,
        "manifest_share": manifest["balance"].get("largestArtistShare") if manifest else None,
    }


def run_scenario(scenario: Scenario, catalog: Catalog, work: Path, *, baseline: bool,
                 max_days: int, extra: dict[str, Any],
                 album_tracks_bucket: bool = False, run: int = 0) -> dict[str, Any]:
    """One scenario's daily crawls until complete; ``run`` (from 1, with ``--repeat``)
    names its own store folder."""
    settings = {**scenario.settings, **fast_slots(), **(BASELINE if baseline else {}), **extra}
    folder = work / (f"{scenario.name}-{scenario.bucket_size}"
                     f"{'-baseline' if baseline else ''}{f'-run{run}' if run else ''}")
    folder.mkdir(parents=True, exist_ok=True)
    quota = {"bucket_size": scenario.bucket_size, "quota_window": DAY,
             "album_tracks_bucket": album_tracks_bucket} if scenario.bucket_size else {}
    days: list[dict[str, Any]] = []
    started = time.perf_counter()
    before = clock.offset()
    # Day N's date: the first day's plus N, so that a benchmark running past midnight
    # (wall clock) does not skip a date.
    first = datetime.fromtimestamp(time.time(), UTC).date()
    try:
        with Simulator(catalog=catalog, profile="development", **quota) as sim:
            limit = max_days if scenario.bucket_size else 1
            for day in range(limit):
                try:
                    r = run_day(sim, folder, settings, day)
                    r["date"] = (first + timedelta(days=day)).isoformat()
                except RuntimeError as exc:        # the crawl exited non-zero
                    print(f"  day {day}: {exc}", file=sys.stderr, flush=True)
                    days.append({"day": day, "reason": "crashed", "spotify": Counter(),
                                 "spotify_429": 0, "quota_429": 0, "reccobeats": 0,
                                 "exported": None})
                    break
                days.append(r)
                print(json.dumps({"scenario": scenario.label, "baseline": baseline,
                                  **{k: v for k, v in r.items()}}), flush=True)
                target = settings.get("CATALOG_MAX_TRACKS")
                if r["reason"] == "finished" or (
                        target and (r["exported"] or 0) >= int(target)):
                    break               # complete: nothing left worth asking, or at target
                if r["reason"] not in ("quota_parked",):
                    print(f"  day {day}: closed {r['reason']!r}, not quota_parked: stop",
                          file=sys.stderr, flush=True)
                    break
    finally:
        clock.set_offset(before)
    wall = time.perf_counter() - started
    target = settings.get("CATALOG_MAX_TRACKS")
    complete = bool(days) and (days[-1]["reason"] == "finished" or bool(
        target and (days[-1]["exported"] or 0) >= int(target)))
    last = next((d for d in reversed(days) if d["exported"] is not None), None)
    per_bucket: Counter[str] = Counter()
    for d in days:
        per_bucket.update(d["spotify"])
    exported = last["exported"] if last else 0
    return {
        "scenario": scenario, "baseline": baseline, "run": run, "days": len(days),
        "complete": complete,
        "max_days": limit, "last_reason": days[-1]["reason"] if days else None,
        "spotify": per_bucket, "spotify_total": sum(per_bucket.values()),
        "spotify_429": sum(d["spotify_429"] for d in days),
        "quota_429": sum(d["quota_429"] for d in days),
        "reccobeats": sum(d["reccobeats"] for d in days),
        "exported": exported,
        "cells_at_min": last["cells_at_min"] if last else None,
        "cells": last["cells"] if last else None,
        "largest_share": largest_artist_share(folder / "export"),
        "manifest_share": last["manifest_share"] if last else None,
        "wall_s": wall, "per_day": days,
    }


# ------------------------------------------------------------------------------ report
def _per_track(n: int, exported: int) -> str:
    return f"{n / exported:.3f}" if exported else "-"


def _label(r: dict[str, Any]) -> str:
    """A result's scenario, with its run number when the scenario was repeated."""
    return r["scenario"].label + (f", run {r['run']}" if r["run"] else "")


def _days(r: dict[str, Any]) -> str:
    if r["complete"]:
        return str(r["days"])
    if r["last_reason"] == "quota_parked":
        return f">{r['max_days']}"
    return f"stopped day {r['days']}: {r['last_reason']}"


def spread(results: list[dict[str, Any]]) -> list[str]:
    """Per repeated scenario: every run's days, and the export at the end of each day."""
    groups: dict[tuple[str, bool], list[dict[str, Any]]] = defaultdict(list)
    for r in results:
        if r["run"]:
            groups[(r["scenario"].label, r["baseline"])].append(r)
    if not groups:
        return []
    lines = ["", "Repeated runs: days of each, and the export at the end of each day:", "",
             "| scenario | discovery | runs | days (each run) | export after each day |",
             "| --- | --- | ---: | --- | --- |"]
    for (label, baseline), runs in groups.items():
        exports = "; ".join(" / ".join(f"{d['exported']:,}" if d["exported"] is not None
                                       else "-" for d in r["per_day"]) for r in runs)
        lines.append(f"| {label} | {'search only' if baseline else 'default'} | {len(runs)} "
                     f"| {', '.join(_days(r) for r in runs)} | {exports} |")
    return lines


def report(results: list[dict[str, Any]], args: argparse.Namespace) -> str:
    album_tracks = "in a bucket of its own" if args.album_tracks_bucket \
        else "in the albums bucket"
    lines = [
        f"## Days of quota to a complete catalog ({datetime.now(UTC):%Y-%m-%d})",
        "",
        f"`{' '.join(['.venv/bin/python -m bench.days', *args.argv])}`.",
        f"Machine: {os.cpu_count()} cores, Python {platform.python_version()}. Simulator: "
        "development profile, market US, every bucket its size per rolling 86,400 s "
        f"window (`/albums/{{id}}/tracks` {album_tracks}); one crawl per virtual day in "
        "one store (`fast_slots`). Days: until a "
        "day's export reaches its target, or discovery closes `finished`. Requests from "
        "the simulator's log. Largest artist share: "
        f"in a cell (first umbrella x decade of `cached_tracks.jsonl`) of at least "
        f"{SHARE_MIN_TRACKS} exported tracks, primary artist; then the manifest's "
        "`balance.largestArtistShare`.",
        "",
        "| scenario | discovery | days | Spotify requests | per exported track | "
        "ReccoBeats / track | exported | cells at min | largest artist share | wall |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |",
    ]
    for r in results:
        n, days = r["exported"], _days(r)
        share = r["largest_share"]
        share_text = (f"{share['share']:.0%} ({share['tracks']}/{share['count']}, "
                      f"{share['cell']})" if share else "-")
        listed = r["manifest_share"]         # the export's own figure, by selection cell
        if listed:
            share_text += (f"; manifest: {listed['share']:.0%} ({listed['tracks']}/"
                           f"{listed['count']})")
        lines.append(
            f"| {_label(r)} | {'search only' if r['baseline'] else 'default'} | {days} | "
            f"{r['spotify_total']:,} | {_per_track(r['spotify_total'], n)} | "
            f"{_per_track(r['reccobeats'], n)} | {n:,} | "
            f"{r['cells_at_min'] if r['cells_at_min'] is not None else '-'} / "
            f"{r['cells'] if r['cells'] is not None else '-'} | {share_text} | "
            f"{r['wall_s']:.0f} s |")
    lines += ["", "Spotify requests per bucket (per exported track); 429s:", "",
              "| scenario | discovery | " + " | ".join(BUCKETS) + " | 429 (quota) |",
              "| --- | --- | " + " | ".join("---:" for _ in BUCKETS) + " | ---: |"]
    for r in results:
        n = r["exported"]
        cells = [f"{r['spotify'][b]:,} ({_per_track(r['spotify'][b], n)})" for b in BUCKETS]
        lines.append(f"| {_label(r)} | "
                     f"{'search only' if r['baseline'] else 'default'} | "
                     + " | ".join(cells) + f" | {r['spotify_429']:,} ({r['quota_429']:,}) |")
    lines += spread(results)
    lines += projections(results)
    lines.append("")
    return "\n".join(lines)


def projections(results: list[dict[str, Any]]) -> list[str]:
    """Per complete run: the day it finished, and the finish date each day's crawl
    projected at its close (``discovery/projected_finish``), with how many days early (-)
    or late (+) that was."""
    rows = []
    for r in results:
        days = r["per_day"]
        if not r["complete"] or not days or days[-1].get("date") is None:
            continue
        done = date.fromisoformat(days[-1]["date"])
        texts = []
        for d in days:
            if d.get("projected") is None:
                texts.append("-")
                continue
            off = (date.fromisoformat(d["projected"]) - done).days
            texts.append(f"{d['projected'][5:]} ({off:+d})")
        rows.append(f"| {_label(r)} | {'search only' if r['baseline'] else 'default'} | "
                    f"{done.isoformat()} | {' / '.join(texts)} |")
    if not rows:
        return []
    return ["", "Projected finish (`discovery/projected_finish` at each day's close) "
            "against the day the catalog was complete:", "",
            "| scenario | discovery | complete on | projected after each day (days off) |",
            "| --- | --- | --- | --- |", *rows]


def parse_settings(values: list[str]) -> dict[str, Any]:
    """``-s NAME=VALUE`` crawl settings, VALUE as JSON when it parses (numbers, booleans,
    objects), else as text."""
    found: dict[str, Any] = {}
    for value in values:
        name, sep, raw = value.partition("=")
        if not sep:
            raise SystemExit(f"-s takes NAME=VALUE, not {value!r}")
        try:
            found[name] = json.loads(raw)
        except ValueError:
            found[name] = raw
    return found


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="15k,40k,small",
                        help="comma list of small, 15k, 40k [default 15k,40k,small]")
    parser.add_argument("--bucket-size", default="600,300,2000",
                        help="comma list of bucket sizes for 15k and 40k "
                             "[default 600,300,2000]")
    parser.add_argument("--baseline", action="store_true",
                        help="search-only discovery: " + " ".join(
                            f"-s {k}={json.dumps(v)}" for k, v in BASELINE.items()))
    parser.add_argument("--album-tracks-bucket", action="store_true",
                        help="the simulator gives /albums/{id}/tracks a bucket of its own "
                             "(--bucket-size calls too), as one report's per-endpoint "
                             "buckets suggest; default: it shares the albums bucket")
    parser.add_argument("--max-days", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=1, metavar="N",
                        help="run each scenario N times, each in a fresh store, and report "
                             "the spread (answer order varies from run to run) [default 1]")
    parser.add_argument("-s", "--set", dest="settings", action="append", default=[],
                        metavar="NAME=VALUE", help="a crawl setting for every scenario")
    parser.add_argument("--keep", metavar="DIR",
                        help="keep the store folders (day logs, exports) under DIR")
    parser.add_argument("--out", help="append the report to this Markdown file")
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    chosen = scenarios(args.scenario.split(","),
                       [int(b) for b in args.bucket_size.split(",")])
    extra = parse_settings(args.settings)
    catalogs: dict[int, Catalog] = {}
    results = []
    with tempfile.TemporaryDirectory(prefix="runclub-days-") as tmp:
        work = Path(args.keep) if args.keep else Path(tmp)
        for scenario in chosen:
            if scenario.size not in catalogs:
                catalogs.clear()                 # one catalog in memory at a time
                catalogs[scenario.size] = Catalog(scenario.size, seed=1)
            for run in range(1, args.repeat + 1) if args.repeat > 1 else (0,):
                results.append(run_scenario(scenario, catalogs[scenario.size], work,
                                            baseline=args.baseline, max_days=args.max_days,
                                            extra=extra, run=run,
                                            album_tracks_bucket=args.album_tracks_bucket))
    write_report(report(results, args), args.out)


if __name__ == "__main__":
    main()
