"""Crawler benchmarks against the simulator: request efficiency, rate-limit throughput, scale,
export alone, and the naive baseline. Writes a Markdown report.

Run (not part of ``make test``): ``make bench`` or
``.venv/bin/python -m bench.crawl [--quick] [--out BENCHMARKS.md]``.

Every crawl is the real ``scrapy crawl spotify_catalog`` in a subprocess, started through
``bench/peak_rss.py`` so that its peak RSS is its own, against a simulator started in this
process. Requests are counted from the simulator's request log, not from the crawler's own
stats. Sections 4 and 5 use a catalog of ``--scale-size`` tracks (200,000: one that holds
40,000 exportable recordings).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

from runclub_spiders import settings as project
from runclub_spiders.seeds import DECADES
from runclub_spiders.simulator import Catalog, Simulator
from runclub_spiders.umbrellas import load_umbrellas

REPO = Path(__file__).resolve().parents[1]
SIZE = 100_000
# Sections 4 and 5: the default catalog holds about 44,000 exportable recordings, unevenly
# over the cells, so a 40,000 target exports only ~27,000 there. Twice the size holds 40,000.
SCALE_SIZE = 200_000
# Every umbrella x decade cell the crawler balances (18 x 6 = 108 with the shipped seeds).
CELLS = len(load_umbrellas(REPO / project.SEEDS_UMBRELLAS).names()) * len(DECADES)


def cell_settings(target_tracks: int) -> dict[str, int]:
    """Per-cell minimum and soft target that spread ``target_tracks`` over every cell."""
    per_cell = max(10, target_tracks // CELLS)
    return {"CATALOG_MAX_TRACKS": target_tracks, "CATALOG_CELL_TARGET": per_cell,
            "CATALOG_CELL_MIN": max(5, per_cell * 2 // 3)}


def scale_cell_settings(target_tracks: int) -> dict[str, int]:
    """Per-cell minimum and soft target with room above the even share (x 0.8, x 1.2), so
    that a catalog that holds ``target_tracks`` exports that many."""
    share = target_tracks / CELLS
    return {"CATALOG_MAX_TRACKS": target_tracks, "CATALOG_CELL_TARGET": round(share * 1.2),
            "CATALOG_CELL_MIN": round(share * 0.8)}


class GroundTruth(NamedTuple):
    tracks: int                              # every track in the catalog
    searchable: int                          # playable in the market: what search returns
    passing: int                             # recordings (ISRCs) passing every export filter
    per_cell: Counter[tuple[str, str]]       # passing recordings by (umbrella, decade)


def ground_truth(catalog: Catalog) -> GroundTruth:
    """One pass over the catalog's ground truth (``Catalog.truth``, in the catalog's market,
    US). Searchable: playable in the market; the simulator drops the other tracks from search
    results before paging, as Spotify does with ``market=``. Passing: the export filters
    (duration within the project's CATALOG_MIN/MAX_DURATION_MS, playable, ReccoBeats
    features, a decade from 1970 on), one per ISRC, in the lead artist's primary umbrella."""
    low, high = project.CATALOG_MIN_DURATION_MS, project.CATALOG_MAX_DURATION_MS
    searchable = 0
    seen: set[str] = set()
    per_cell: Counter[tuple[str, str]] = Counter()
    for track in catalog.tracks:
        truth = catalog.truth(track)
        if not truth["playable"]:
            continue
        searchable += 1
        if not (low <= track.duration_ms <= high and truth["recco_known"] and truth["decade"]) \
                or track.isrc in seen:
            continue
        seen.add(track.isrc)
        per_cell[(truth["umbrellas"][0], truth["decade"])] += 1
    return GroundTruth(len(catalog.tracks), searchable, len(seen), per_cell)


def crawl_argv(folder: Path, settings: dict[str, object], *spider_args: str) -> list[str]:
    """``scrapy crawl spotify_catalog`` with everything it reads or writes in ``folder`` (store,
    export, token, log; never the repository's ``.cache``), then ``settings``
    over those, and ``-a`` spider arguments (``mode=export``)."""
    base = {
        "CATALOG_STORE_PATH": folder / "store.sqlite", "EXPORT_DIR": folder / "export",
        "SPOTIFY_TOKEN_FILE": folder / "token.json",
        "LOG_FILE": folder / "crawl.log", "LOG_LEVEL": "INFO", "DISCOVERY_PROGRESS_INTERVAL": 0,
    }
    argv = [sys.executable, "-m", "scrapy", "crawl", "spotify_catalog"]
    for arg in spider_args:
        argv += ["-a", arg]
    for name, value in {**base, **settings}.items():
        text = json.dumps(value) if isinstance(value, dict) else value
        argv += ["-s", f"{name}={text}"]
    return argv


def run_crawl(sim: Simulator, folder: Path, settings: dict[str, object]) -> dict[str, object]:
    """One crawl in a subprocess; what it cost and what it exported."""
    folder.mkdir(parents=True, exist_ok=True)
    mark = len(sim.log)
    wall, peak_mb = spawn(crawl_argv(folder, settings), {**os.environ, **sim.env()},
                          folder / "stderr.txt")
    log = sim.requests(mark)
    manifest = json.loads((folder / "export" / "manifest.json").read_text())
    spotify = [e for e in log if e.service == "spotify"]
    return {
        "wall_s": wall,
        "peak_rss_mb": peak_mb,
        "spotify_requests": len(spotify),
        "spotify_429": sum(1 for e in spotify if e.status == 429),
        "reccobeats_requests": sum(1 for e in log if e.service == "reccobeats"),
        "exported": manifest["totals"]["tracks"],
        "cells_at_target": manifest["balance"]["cellsAtTarget"],
        "cells_at_min": manifest["balance"]["cellsAtMin"],
        "cells": manifest["balance"]["cells"],
        "feature_pct": manifest["reccobeats"]["featureCoveragePct"],
        "spotify_times": [e.t for e in spotify if e.status != 429],
    }


def spawn(argv: list[str], env: dict[str, str], stderr: Path,
          stdout: Path | None = None) -> tuple[float, float]:
    """Run ``argv`` in the repository; its wall seconds and own peak RSS (MB), measured by
    ``bench/peak_rss.py`` (see there why not from this process). Its stderr goes to
    ``stderr``, its stdout to ``stdout`` (default: discarded). Raises ``RuntimeError`` with
    the tail of ``stderr`` if it (or the launcher) exits non-zero."""
    out = shlex.quote(str(stdout)) if stdout else "/dev/null"
    script = f"cd {shlex.quote(str(REPO))} && exec {shlex.join(argv)} " \
             f">{out} 2>{shlex.quote(str(stderr))}"
    peak_file = stderr.with_name(stderr.name + ".peak_rss_kb")
    peak_file.unlink(missing_ok=True)        # never report a figure from an earlier run
    launcher = [sys.executable, str(REPO / "bench" / "peak_rss.py"), str(peak_file), script]
    started = time.perf_counter()
    pid = os.posix_spawn(sys.executable, launcher, env)
    _, status, _ = os.wait4(pid, 0)
    wall = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        tail = stderr.read_text(errors="replace")[-2000:] if stderr.exists() else ""
        shown = shlex.join(argv[:6]) + (" ..." if len(argv) > 6 else "")
        raise RuntimeError(f"{shown} failed ({code}); "
                           f"stderr ({stderr}):\n{tail}")
    return wall, int(peak_file.read_text()) / 1024


def fast_slots(concurrency: int = 4) -> dict[str, object]:
    slot = {"concurrency": concurrency, "delay": 0.0}
    return {"AUTOTHROTTLE_ENABLED": False, "DISCOVERY_CONCURRENCY": concurrency,
            "DOWNLOAD_SLOTS": {"api.spotify.com": slot, "accounts.spotify.com": slot,
                               "api.reccobeats.com": slot}}


# ------------------------------------------------------------------------------ benchmarks
def efficiency(catalog: Catalog, target: int, work: Path) -> dict[str, object]:
    """Spotify requests per exported track against the floor: one search page holds 10
    tracks, so exporting a track costs at least 1 / (10 x the share of tracks that pass).
    The issue's floor takes that share over the whole catalog; search pages are drawn from
    US-playable tracks only, so the floor over those is the stricter (lower) one."""
    with Simulator(catalog=catalog) as sim:
        r = run_crawl(sim, work / f"efficiency-{target}", {**cell_settings(target),
                                                             **fast_slots()})
    truth = ground_truth(catalog)
    share = truth.passing / truth.tracks
    share_searchable = truth.passing / truth.searchable
    floor, floor_searchable = 1 / (10 * share), 1 / (10 * share_searchable)
    per_track = r["spotify_requests"] / r["exported"]
    per_cell = cell_settings(target)["CATALOG_CELL_TARGET"]
    fillable = {cell for cell, n in truth.per_cell.items() if n >= per_cell}
    at_target = {(c["umbrella"], c["decade"]) for c in r["cells"] if c["status"] == "at_target"}
    return {**r, "passing_share": share, "floor": floor,
            "us_playable_share": truth.searchable / truth.tracks,
            "passing_share_us_playable": share_searchable,
            "floor_us_playable": floor_searchable,
            "spotify_per_track": per_track, "x_floor": per_track / floor,
            "x_floor_us_playable": per_track / floor_searchable,
            "recco_per_track": r["reccobeats_requests"] / r["exported"],
            "fillable": len(fillable), "fillable_at_target": len(fillable & at_target)}


def throughput(catalog: Catalog, work: Path, limit: int = 300, window: float = 30.0,
               target: int = 3000) -> dict[str, object]:
    """With a rolling window of ``limit`` requests per ``window`` seconds, the crawler's
    Spotify request rate as a share of the ceiling, and the share of 429 answers."""
    with Simulator(catalog=catalog, rate_limit=limit, rate_window=window) as sim:
        # The project's own pacing (settings.py: AutoThrottle, slot delays), as shipped.
        r = run_crawl(sim, work / "throughput", {**cell_settings(target)})
    times = r["spotify_times"]
    # Answered (non-429) requests per second, from the first to the last Spotify request.
    span = (times[-1] - times[0]) if len(times) > 1 else 1.0
    ceiling = limit / window
    rate = (len(times) - 1) / span
    return {**r, "limit": limit, "window_s": window, "ceiling_rps": ceiling,
            "rate_rps": rate, "share_of_ceiling": rate / ceiling,
            "share_429": r["spotify_429"] / max(1, r["spotify_requests"])}


def scale(catalog: Catalog, targets: list[int], work: Path) -> list[dict[str, object]]:
    rows = []
    with Simulator(catalog=catalog) as sim:
        for target in sorted(targets):
            r = run_crawl(sim, work / f"scale-{target}", {**scale_cell_settings(target),
                                                          **fast_slots()})
            rows.append({"target": target, **r})
    return rows


def export_alone(folder: Path, target: int, runs: int = 3) -> dict[str, object]:
    """Re-export an existing store (``-a mode=export``): rows, gzip, reports, manifest;
    ``runs`` times, each in a fresh process including interpreter start and into a fresh
    export folder, so that every run does the same work. Also the longest the reactor went
    without running in each (``bench/reactor_lag.py``)."""
    walls, peaks, blocks = [], [], []
    for run in range(1, runs + 1):
        name = f"export-again-{run}"
        lag_file = folder / f"{name}-reactor-lag.jsonl"
        argv = crawl_argv(folder, {**scale_cell_settings(target),
                                   "EXPORT_DIR": folder / name, "LOG_FILE": folder / f"{name}.log",
                                   "LOG_LEVEL": "WARNING", "REACTOR_LAG_FILE": lag_file,
                                   "ADDONS": {"bench.reactor_lag.ReactorLagAddon": 0}},
                          "mode=export")
        wall, peak = spawn(argv, {**os.environ, "SPOTIFY_MARKET": "US"},
                           folder / f"{name}-stderr.txt")
        walls.append(wall)
        peaks.append(peak)
        blocks.append(max(json.loads(line)["max_block_ms"]
                          for line in lag_file.read_text().splitlines()))
    manifest = json.loads((folder / f"export-again-{runs}" / "manifest.json").read_text())
    return {"wall_s": walls, "peak_rss_mb": max(peaks), "tracks": manifest["totals"]["tracks"],
            "bytes": sum(f["bytes"] for f in manifest["files"].values()),
            "reactor_block_ms": blocks}


def baseline(catalog: Catalog, target: int, budget_s: float) -> dict[str, object]:
    from bench.naive_baseline import run_baseline  # noqa: PLC0415

    with Simulator(catalog=catalog) as sim:
        return run_baseline(sim.env(), target_tracks=target, time_budget_s=budget_s)


# ------------------------------------------------------------------------------ report
def report(results: dict[str, object], args: argparse.Namespace) -> str:
    e, t = results["efficiency"], results["throughput"]
    lines = [
        f"## Crawler benchmarks ({datetime.now(UTC):%Y-%m-%d})",
        "",
        f"`.venv/bin/python -m bench.crawl{' --quick' if args.quick else ''}`. Machine: "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{platform.system()} {platform.machine()}. Simulator: {args.size:,}-track catalog, "
        f"development profile, market US. Requests counted from the simulator's log.",
        "",
        f"### 1. Request efficiency ({e['exported']:,} tracks exported, target "
        f"{args.target:,})",
        "",
        "| figure | measured | target |",
        "| --- | ---: | ---: |",
        f"| catalog share passing every filter (ground truth) | {e['passing_share']:.3f} | |",
        f"| floor: 1 / (10 x share) Spotify requests per track | {e['floor']:.3f} | |",
        f"| US-playable share of the catalog (search pages hold only these) | "
        f"{e['us_playable_share']:.3f} | |",
        f"| share of US-playable tracks passing every filter | "
        f"{e['passing_share_us_playable']:.3f} | |",
        f"| floor over US-playable tracks: 1 / (10 x that share) | "
        f"{e['floor_us_playable']:.3f} | |",
        f"| Spotify requests per exported track | {e['spotify_per_track']:.3f} "
        f"({e['x_floor']:.2f} x floor; {e['x_floor_us_playable']:.2f} x the floor over "
        f"US-playable tracks, which search pages are drawn from) | <= 1.5 x floor |",
        f"| ReccoBeats requests per exported track | {e['recco_per_track']:.4f} | <= 0.07 |",
        f"| fillable cells at target | {e['fillable_at_target']} / {e['fillable']} "
        f"({e['fillable_at_target'] / max(1, e['fillable']):.0%}) | |",
        f"| cells at minimum / at target (all {CELLS}) | {e['cells_at_min']} / "
        f"{e['cells_at_target']} | |",
        f"| features coverage | {e['feature_pct']}% | >= 95% |",
        f"| wall time | {e['wall_s']:.0f} s | |",
        "",
    ]
    b = results.get("baseline")
    if b:
        b_per = b["spotify_requests"] / max(1, b["exported_tracks"])
        lines += [
            "### 2. Against the naive baseline (bench/naive_baseline.py)",
            "",
            "| figure | crawler | baseline | ratio |",
            "| --- | ---: | ---: | ---: |",
            f"| Spotify requests | {e['spotify_requests']:,} | {b['spotify_requests']:,} | |",
            f"| exported tracks | {e['exported']:,} | {b['exported_tracks']:,} | |",
            f"| Spotify requests per exported track | {e['spotify_per_track']:.3f} | "
            f"{b_per:.3f} | {e['spotify_per_track'] / b_per:.2f} |",
            f"| wall time (s) | {e['wall_s']:.0f} | {b['wall_seconds']:.0f} | "
            f"{e['wall_s'] / max(1e-9, b['wall_seconds']):.2f} |",
            f"| cells at target | {e['cells_at_target']} | not balanced | |",
            "",
            f"The baseline stopped because: {b['stopped_because']}.",
            "",
        ]
    lines += [
        f"### 3. Throughput under a rate limit ({t['limit']} requests per "
        f"rolling {t['window_s']:g} s)",
        "",
        "| figure | measured | target |",
        "| --- | ---: | ---: |",
        f"| Spotify request rate / window ceiling | {t['rate_rps']:.2f} / "
        f"{t['ceiling_rps']:.2f} req/s = {t['share_of_ceiling']:.0%} | >= 90% |",
        f"| share of 429 answers | {t['share_429']:.2%} ({t['spotify_429']} of "
        f"{t['spotify_requests']}) | < 1% |",
        "",
        f"### 4. Scale without limits ({args.scale_size:,}-track catalog)",
        "",
        "| target | exported | wall (s) | peak RSS (MB) | Spotify requests | targets |",
        "| ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in results["scale"]:
        lines.append(f"| {r['target']:,} | {r['exported']:,} | {r['wall_s']:.0f} | "
                     f"{r['peak_rss_mb']:.0f} | {r['spotify_requests']:,} | "
                     f"{'< 300 s, < 400 MB' if r['target'] >= 40_000 else ''} |")
    x = results["export"]
    walls = ", ".join(f"{w:.1f}" for w in x["wall_s"])
    lines += [
        "",
        "### 5. Export alone",
        "",
        f"`-a mode=export` of the largest store: {x['tracks']:,} tracks to every file, gzip, "
        f"coverage report and manifest; {len(x['wall_s'])} runs, each including interpreter "
        f"start: {walls} s (target < 15 s); peak RSS {x['peak_rss_mb']:.0f} MB; "
        f"{x['bytes'] / 1e6:.0f} MB written; longest reactor block "
        f"{', '.join(f'{b:.0f}' for b in x['reactor_block_ms'])} ms.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=SIZE)
    parser.add_argument("--target", type=int, default=15_000)
    parser.add_argument("--scale", default="5000,10000,40000")
    parser.add_argument("--scale-size", type=int, default=SCALE_SIZE,
                        help="catalog size for the scale and export-alone sections")
    parser.add_argument("--quick", action="store_true",
                        help="a 20,000-track catalog and small targets: a smoke run")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--baseline-budget", type=float, default=900)
    parser.add_argument("--out", help="append the report to this Markdown file")
    args = parser.parse_args()
    if args.quick:
        args.size, args.target, args.scale = 20_000, 2000, "1000,2000"
        args.scale_size = args.size
    catalog = Catalog(args.size, seed=1)
    results: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="runclub-bench-") as tmp:
        work = Path(tmp)
        results["efficiency"] = efficiency(catalog, args.target, work)
        print(json.dumps({k: v for k, v in results["efficiency"].items()
                          if k not in ("cells", "spotify_times")}), flush=True)
        if not args.no_baseline:
            results["baseline"] = baseline(catalog, args.target, args.baseline_budget)
            print(json.dumps({k: v for k, v in results["baseline"].items()
                              if k != "exported_ids"}), flush=True)
        results["throughput"] = throughput(catalog, work,
                                           target=min(args.target, 3000))
        print(json.dumps({k: v for k, v in results["throughput"].items()
                          if k not in ("cells", "spotify_times")}), flush=True)
        targets = [int(t) for t in args.scale.split(",")]
        big = catalog if args.scale_size == args.size else Catalog(args.scale_size, seed=1)
        results["scale"] = scale(big, targets, work)
        for r in results["scale"]:
            print(json.dumps({k: v for k, v in r.items() if k not in ("cells", "spotify_times")}),
                  flush=True)
        results["export"] = export_alone(work / f"scale-{max(targets)}", max(targets))
        print(json.dumps(results["export"]), flush=True)
    write_report(report(results, args), args.out)


def write_report(text: str, out: str | None) -> None:
    """Print a report; append it to ``out`` (BENCHMARKS.md) when given."""
    print(text)
    if out:
        with open(out, "a", encoding="utf-8") as file:
            file.write("\n" + text)


if __name__ == "__main__":
    main()
