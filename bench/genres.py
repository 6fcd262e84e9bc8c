"""Genres and years the app can trust (issue 15): accuracy against the simulator's truth.

Run (not part of ``make test``): ``.venv/bin/python -m bench.genres [--size N] [--target N]
[--out BENCHMARKS.md]``.

One ``scrapy crawl spotify_catalog`` (subprocess, ``bench.crawl.run_crawl``) per case, each on
a fresh store against a simulator started in this process, with the capability probe on (so
the crawl adapts to the genre filter it finds). Cases: Spotify's ``genre:`` filter honoured,
ignored and empty, with the open-data sources (Wikidata genres, MusicBrainz years) on; and
honoured with both sources off, for the wall time and requests they add. For each case, from
the export and the simulator's ground truth:

* umbrella accuracy: the exported track's first umbrella (``_extra.umbrellas[0]``) is one of
  its lead artist's true umbrellas;
* decade accuracy: ``album_decade_label`` against the recording's first release, overall and
  over tracks exported from a reissue or compilation album;
* genre strings (``cached_artists.jsonl``): correct when the artist truly has that genre, or
  when the genre names the same Wikidata genre item as one the artist truly has (Wikidata
  files "perreo" under reggaeton: "reggaeton" is then right); precision over every exported
  string, recall over the true genres of exported artists, the share of exported artists
  with at least one genre;
* requests per exported track for each service, from the simulator's request log, and the
  crawl's wall time.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from bench.crawl import cell_settings, fast_slots, run_crawl, write_report
from runclub_spiders.simulator import Catalog, Simulator
from runclub_spiders.simulator.vocabulary import WIKIDATA_LABEL
from runclub_spiders.umbrellas import normalize_genre

CASES = (
    ("honoured", True), ("ignored", True), ("empty", True), ("honoured", False),
)


def rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def _label(genre: str) -> str | None:
    return WIKIDATA_LABEL.get(genre) or WIKIDATA_LABEL.get(normalize_genre(genre))


def genre_right(genre: str, truth: list[str]) -> bool:
    g = normalize_genre(genre)
    true = {normalize_genre(t) for t in truth}
    if g in true:
        return True
    label = _label(g)
    return label is not None and any(_label(t) == label for t in true)


def measure(catalog: Catalog, export: Path) -> dict[str, Any]:
    wide = rows(export / "catalog_wide.jsonl")
    umbrella_ok = decade_ok = reissued = reissued_ok = 0
    for row in wide:
        track = catalog.track_by_id[row["spotify_track_id"]]
        truth = catalog.truth(track)
        umbrella_ok += row["_extra"]["umbrellas"][0] in truth["umbrellas"]
        decade_ok += row["album_decade_label"] == truth["decade"]
        if catalog.albums[track.album_idx].kind != "original":
            reissued += 1
            reissued_ok += row["album_decade_label"] == truth["decade"]
    artists = rows(export / "cached_artists.jsonl")
    by_id = {a.id: a for a in catalog.artists}
    strings = right = true_total = true_found = with_genre = 0
    for row in artists:
        artist = by_id[row["id"]]
        genres = row.get("genres") or []
        with_genre += bool(genres)
        strings += len(genres)
        right += sum(genre_right(g, list(artist.genres)) for g in genres)
        true_total += len(artist.genres)
        true_found += sum(1 for t in artist.genres if any(genre_right(g, [t]) for g in genres))
    n = len(wide) or 1
    return {
        "exported": len(wide),
        "umbrella_accuracy": umbrella_ok / n, "decade_accuracy": decade_ok / n,
        "reissued": reissued, "reissued_decade_accuracy": reissued_ok / (reissued or 1),
        "artists": len(artists), "genre_strings": strings,
        "genre_precision": right / (strings or 1), "genre_recall": true_found / (true_total or 1),
        "artists_with_genre": with_genre / (len(artists) or 1),
    }


def run_case(catalog: Catalog, work: Path, mode: str, open_data: bool, target: int
             ) -> dict[str, Any]:
    folder = work / f"{mode}-{'open' if open_data else 'closed'}"
    # Both sources at their real pacing (one request a second each): the wall time they add
    # is one of the figures. MusicBrainz needs a contact in its User-Agent.
    settings: dict[str, Any] = {**cell_settings(target), **fast_slots(),
                                "SPOTIFY_PROBE_ENABLED": True,
                                "MUSICBRAINZ_CONTACT": "bench@example.invalid"}
    if not open_data:
        settings.update(WIKIDATA_ENABLED=False, MUSICBRAINZ_ENABLED=False)
    with Simulator(catalog=catalog, genre_filter=mode) as sim:
        mark = len(sim.log)
        result = run_crawl(sim, folder, settings)
        services = Counter(e.service for e in sim.requests(mark))
    exported = result["exported"] or 1
    return {"mode": mode, "open_data": open_data, "wall_s": result["wall_s"],
            "requests": dict(services),
            "per_track": {s: n / exported for s, n in sorted(services.items())},
            **measure(catalog, folder / "export")}


def report(results: list[dict[str, Any]], args: argparse.Namespace) -> str:
    lines = [f"### Genres and years against the truth ({args.size:,}-track catalog, target "
             f"{args.target:,})", "",
             "| genre filter | open data | exported | umbrella | decade (reissues) | genre "
             "strings right | genre recall | artists with a genre | requests / exported "
             "track | wall |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |"]
    for r in results:
        per = ", ".join(f"{s} {v:.3f}" for s, v in r["per_track"].items())
        lines.append(
            f"| {r['mode']} | {'on' if r['open_data'] else 'off'} | {r['exported']:,} | "
            f"{r['umbrella_accuracy']:.1%} | {r['decade_accuracy']:.1%} "
            f"({r['reissued_decade_accuracy']:.1%} of {r['reissued']}) | "
            f"{r['genre_precision']:.1%} of {r['genre_strings']:,} | {r['genre_recall']:.1%} | "
            f"{r['artists_with_genre']:.1%} of {r['artists']:,} | {per} | "
            f"{r['wall_s']:.0f} s |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=30_000)
    parser.add_argument("--target", type=int, default=3_000)
    parser.add_argument("--cases", default=",".join(f"{m}:{'on' if o else 'off'}"
                                                    for m, o in CASES),
                        help="comma list of MODE:on|off [default every case]")
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    catalog = Catalog(args.size, 1)
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-genres-") as tmp:
        for case in args.cases.split(","):
            mode, _, on = case.partition(":")
            result = run_case(catalog, Path(tmp), mode, on != "off", args.target)
            print(json.dumps(result), flush=True)
            results.append(result)
    write_report(report(results, args), args.out)


if __name__ == "__main__":
    main()
