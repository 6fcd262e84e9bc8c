"""``manifest.json``: what was exported, from what, under which policies, with file hashes.

Two halves. ``crawl_facts`` reads the store when the export is built (the discovery crawl has
added its request counts there as it closed: ``Store.add_run_counts``); ``build_manifest``
adds the files' counts and hashes once the feeds are closed. Keys follow the brief's
camelCase. ``NOTES`` lists every decision where the brief and today's Spotify API differ, and
where each rule came from.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from runclub_spiders.catalog.selection import PREFERRED_MAX_MS, Selection
from runclub_spiders.export.coverage import SHARE_MIN_TRACKS, CoverageTable
from runclub_spiders.opendata.report import open_data_facts, open_data_notes
from runclub_spiders.probe import Capabilities
from runclub_spiders.seeds import SeedPlan
from runclub_spiders.store import Store

FORMAT_VERSION = 1
GENERATOR = "runclub-spiders"
GENERATOR_VERSION = "0.1.0"

NOTES = (
    "Spotify API as of 2026 (Development Mode) versus the brief: search pages hold at most 10 "
    "results, batch lookups (/tracks?ids=, /artists?ids=) answer 403, and playlist items are "
    "readable only for the owner's playlists. Discovery therefore uses the full track objects "
    "that search and playlist items carry and never looks a found track up again; the "
    "Extended Quota profile uses 50-result pages, other users' playlists and /artists?ids=.",
    "Discovery spends each Spotify quota bucket (counted apart, over a rolling ~24 h): "
    "search (cell-targeted genre:/year: queries), albums (/albums/{id}: every track of an "
    "album whose artist the cell queries named, as the sole artist of their hits or among the "
    "artists the same search returned, type=track,artist) and artists "
    "(/artists/{id}/albums?include_groups=album,single for those artists; for those only the "
    "search's artists named, once a bucket has been parked). Album tracks come "
    "simplified, without ISRC: their ISRC is the one ReccoBeats' audio-features row gives "
    "(_ingestSource 'album'). The tracks bucket confirms ReccoBeats leads (/tracks/{id}, "
    "one a call; /tracks?ids=, 50 a call, in Extended Quota): tracks that ReccoBeats lists "
    "for those artists (/v1/artist/{uuid}/track, "
    "Spotify IDs in href) and the store lacks (_ingestSource 'lead'). No artist holds more "
    "than CATALOG_MAX_ARTIST_SHARE of a cell (balance.maxArtistShare), except where a cell "
    "would stay below its minimum.",
    "Popularity: Spotify removed track and artist popularity in Development Mode, so "
    "popularity_snapshot, popularity_bucket and CachedTrack.popularity are null there; "
    "CachedArtist.popularity is filled only where artist lookups returned it (extended). "
    "ReccoBeats' popularity is kept in _extra.recco_popularity and used only to rank tracks "
    "within a cell.",
    "Markets: available_markets is gone in Development Mode. Playability comes from Spotify's "
    "is_playable (every request carries market=), then available_markets (extended), then "
    "ReccoBeats availableCountries; a track no source answers for is exported only where a "
    "cell cannot reach its minimum otherwise. isPlayable follows the brief's splitter rule.",
    "Artist genres: Spotify returns none in Development Mode. An artist's genres are those "
    "Spotify gives (extended), Wikidata's (P136), and the genre of a genre:\"...\" search "
    "that returned a track whose sole artist it is (or of two such hits that only it "
    "explains); a search genre is exported only where its words can name no other genre "
    "(\"rock\" may be \"soft rock\"). _extra.genre_sources says where each came from. "
    "Umbrellas come from the artist's genres and the cell-targeted queries that found the "
    "track (_extra.umbrella_source).",
    "Release year: the earliest regular release of the ISRC across every album it was seen on; "
    "compilations and remaster/deluxe/anniversary/greatest-hits albums do not set the year "
    "while a regular release is known; then the anniversary number, then the ISRC's year of "
    "registration, then the earliest album. MusicBrainz's year for the ISRC (its earliest "
    "official release outside compilation release groups and not credited to Various "
    "Artists) replaces it when it is earlier. _extra.year_rule says which rule decided "
    "(counts under classification.yearSources), _extra.year_source whose year it is "
    "(spotify or musicbrainz). album_release_date stays the exported album's own date.",
    "timeSignature is null everywhere: ReccoBeats has no time_signature and Spotify's "
    "audio-features endpoint is gone for new apps.",
    "One track per ISRC, by one rule at every stage (discovery planning, the filter before "
    "ReccoBeats, the export): the earliest album year, then the smallest Spotify ID. Both are "
    "known at discovery and never change, so the choice does not depend on the order tracks "
    "were found in; the brief allows most popular or first seen, but popularity is absent in "
    "Development Mode and drifts, and the order found depends on how requests interleave. "
    "A kept track without its own features takes those of a track with the same ISRC (the "
    "same recording) and says so in _extra.features_source.",
    "audio_features.jsonl has a row for every exported track ReccoBeats knew; tracks it did "
    "not know have no row (the wide row's feature fields are null).",
    "Row id is UUID v5 of the Spotify track ID (namespace: UUID v5 of "
    "https://open.spotify.com/track/ in the URL namespace), stable across runs. addedAt is "
    "the time the crawl first saw the track. With SOURCE_DATE_EPOCH set, every timestamp is "
    "clamped to it.",
    "recco_features_version is 'reccobeats-v1' (the API version); ReccoBeats publishes no "
    "model version.",
)


def crawl_facts(store: Store, plan: SeedPlan, *, market: str, profile: str,
                stamp: Callable[[str | None], str | None] = lambda at: at) -> dict[str, Any]:
    """The manifest's ``spotify`` and ``reccobeats`` parts, from the store: every crawl's
    request counts and totals are there, this run's discovery included (it closed first).
    ``stamp`` clamps the stored times it reports (``Clock.stamp``: SOURCE_DATE_EPOCH)."""
    families: dict[str, dict[str, int]] = {}
    exhausted: Counter[str] = Counter()
    queries = requests = new_tracks = 0
    for row in store.seeds():
        family = families.setdefault(row["family"], {"queries": 0, "requests": 0,
                                                     "newTracks": 0})
        family["queries"] += 1
        family["requests"] += row["requests"]
        family["newTracks"] += row["new_tracks"]
        queries += 1
        requests += row["requests"]
        new_tracks += row["new_tracks"]
        if row["exhausted"]:
            exhausted[row["exhausted"]] += 1
    playlists = store.playlist_counts()
    # Every crawl's counts, added as it closed (Store.add_run_counts).
    by_day: dict[str, dict[str, int]] = store.get_meta("requests_by_day", {})
    by_bucket: Counter[str] = Counter()
    for counts in by_day.values():
        by_bucket.update(counts)
    totals = store.get_meta("run_totals", {})
    open_data = open_data_facts(store)
    for source in open_data.values():
        source["lastRunAt"] = stamp(source.get("lastRunAt"))
    known = Capabilities.from_store(store)
    probed = replace(known, probed_at=stamp(known.probed_at))
    recco = {
        "errors": totals.get("reccobeats_errors", 0),
        "retries": totals.get("reccobeats_retries", 0),
        "misses": store.counts()["misses"],
    }
    return {
        "spotify": {
            "market": market, "profile": profile, "seedsSummary": plan.summary(),
            "searchCounts": {"queries": queries, "requests": requests, "newTracks": new_tracks,
                             "byFamily": dict(sorted(families.items())),
                             "exhausted": dict(sorted(exhausted.items()))},
            "playlistCounts": playlists,
            "requestsByBucket": {b: n for b, n in sorted(by_bucket.items()) if b != "reccobeats"},
            "requestsByDay": {d: dict(sorted(c.items())) for d, c in sorted(by_day.items())},
            "capabilities": probed.manifest(),
        },
        "reccobeats": recco,
        "openData": open_data,
        "notes": [*probe_notes(probed), *open_data_notes(open_data)],
    }


def probe_notes(probed: Capabilities) -> list[str]:
    """What the capability probe found and what the crawl did about it, for the notes."""
    if probed.probed_at is None:
        return ["Capabilities: never probed (SPOTIFY_PROBE_ENABLED off and no scrapy "
                "spotify-probe run); discovery assumed the profile's rules."]
    found = "; ".join(probed.lines())
    notes = [f"Capabilities probed {probed.probed_at} (scrapy spotify-probe / the crawl's "
             f"weekly probe, manifest spotify.capabilities): {found}."]
    if not probed.genre_filter_trusted:
        notes.append(f"Search's genre: filter was {probed.get('genre_filter')}: cell queries "
                     "built on it were switched off, and no genre was taken from search hits "
                     "since (genres found while an earlier probe found it honoured stay, with "
                     "their source in _extra.genre_sources); new artist genres and umbrellas "
                     "come from the other sources.")
    return notes


def run_requests(stats: dict[str, Any]) -> dict[str, int]:
    """This run's requests per quota bucket."""
    return {k.rsplit("/", 1)[1]: v for k, v in stats.items()
            if k.startswith("quota/requests/")}


def run_totals(stats: dict[str, Any]) -> dict[str, int]:
    """This run's counters that the manifest adds up across runs."""
    return {"reccobeats_errors": stats.get("reccobeats/errors", 0),
            "reccobeats_retries": sum(v for k, v in stats.items() if k.startswith(
                ("retry/reccobeats/", "ratelimit/reccobeats/")))}


def explain_thin_cells(selection: Selection, store: Store, plan: SeedPlan) -> None:
    """Say why each cell below its minimum is there: its queries, its candidates."""
    states: dict[tuple[str, str], list[str | None]] = {}
    for row in store.seeds():
        if row["umbrella"] is not None and row["decade"] is not None:
            states.setdefault((row["umbrella"], row["decade"]), []).append(row["exhausted"])
    minimum = selection.settings.cell_min
    for cell, report in selection.cells.items():
        if report.count >= minimum:
            continue
        planned = len(plan.cell_queries(*cell))
        sent = states.get(cell, [])
        done = [s for s in sent if s]
        reasons = Counter(done)
        detail = ", ".join(f"{n} {r}" for r, n in sorted(reasons.items()))
        if len(done) >= planned:
            queries = f"all {planned} cell queries exhausted ({detail})"
        else:
            queries = (f"{len(done)} of {planned} cell queries exhausted"
                       + (f" ({detail})" if detail else "")
                       + "; discovery stopped before the rest (raise CATALOG_MAX_TRACKS or "
                         "run again)")
        report.why = (f"{report.candidates} candidates classified here, {report.eligible} "
                      f"passed filters and dedupe, {report.backfilled} backfilled; {queries}")


def build_manifest(*, selection: Selection, facts: dict[str, Any], created_at: str,
                   files: dict[str, dict[str, Any]], hashes: dict[str, str],
                   totals: dict[str, int], umbrellas: list[str], decades: list[str],
                   scrapy_version: str) -> dict[str, Any]:
    s = selection.settings
    by_cell: dict[str, dict[str, int]] = {u: dict.fromkeys(decades, 0) for u in umbrellas}
    for c in selection.chosen:
        by_cell[c.umbrellas[0]][c.decade] += 1
    cells = cell_rows(selection)
    wide_hash = hashes.get("catalog_wide.jsonl", "0" * 64)
    return {
        "version": f"{created_at[:10].replace('-', '.')}-{wide_hash[:8]}",
        "formatVersion": FORMAT_VERSION,
        "createdAt": created_at,
        "generator": {"name": GENERATOR, "version": package_version(),
                      "scrapy": scrapy_version},
        "spotify": facts["spotify"],
        "reccobeats": {
            "featureCoveragePct": round(100 * totals["audioFeatures"] / totals["tracks"], 2)
            if totals["tracks"] else 0.0,
            **facts["reccobeats"]},
        **({"openData": facts["openData"]} if "openData" in facts else {}),
        "totals": {"tracks": totals["tracks"], "artists": totals["artists"],
                   "audioFeatures": totals["audioFeatures"], "byUmbrellaAndDecade": by_cell},
        "balance": {
            "cellMin": s.cell_min, "cellTarget": s.cell_target, "maxTracks": s.max_tracks,
            "cellsAtMin": sum(1 for c in cells if c["count"] >= s.cell_min),
            "cellsAtTarget": sum(1 for c in cells if c["count"] >= s.cell_target),
            "maxArtistShare": s.max_artist_share, "maxArtistFloor": s.max_artist_floor,
            "overArtistShare": sum(c["over_artist_share"] for c in cells),
            "largestArtistShare": largest_share(umbrellas, decades, cells),
            "cells": cells, "backfill": dict(sorted(selection.backfill.items()))},
        "filtersApplied": filters_applied(selection),
        "rejections": {
            "total": dict(sorted(selection.rejections.items())),
            "bySeed": {seed: dict(sorted(r.items()))
                       for seed, r in sorted(selection.rejections_by_seed.items())}},
        "classification": {
            "yearSources": dict(sorted(selection.year_sources.items())),
            "umbrellaSources": dict(sorted(selection.umbrella_sources.items()))},
        "files": {name: files[name] for name in sorted(files)},
        "fileHashes": {name: hashes[name] for name in sorted(hashes)},
        "notes": [*NOTES, *facts.get("notes", ())],
    }


def cell_rows(selection: Selection) -> list[dict[str, Any]]:
    """Every cell's count against its minimum and target: the manifest's ``balance.cells``
    and the coverage report's input."""
    s = selection.settings
    return [{"umbrella": r.umbrella, "decade": r.decade, "count": r.count, "home": r.home,
             "backfilled": r.backfilled, "min": s.cell_min, "target": s.cell_target,
             "status": cell_status(r.count, s.cell_min, s.cell_target), "why": r.why,
             "top_artist": r.top_artist, "artist_cap": r.artist_cap,
             "over_artist_share": r.over_artist_share,
             "found": r.found, "reachable": r.reachable, "stopped": r.stopped}
            for r in selection.cells.values()]


def largest_share(umbrellas: list[str], decades: list[str], cells: list[dict[str, Any]]
                  ) -> dict[str, Any] | None:
    """The coverage report's largest share one artist holds in a cell of at least
    ``SHARE_MIN_TRACKS`` tracks, as the manifest's ``balance.largestArtistShare``."""
    best = CoverageTable.from_dicts(umbrellas, decades, cells).largest_artist_share()
    if best is None:
        return None
    return {"umbrella": best.umbrella, "decade": best.decade, "tracks": best.top_artist,
            "count": best.count, "share": round(best.top_artist_share, 4),
            "minCellTracks": SHARE_MIN_TRACKS}


def cell_status(count: int, minimum: int, target: int) -> str:
    if count >= target:
        return "at_target"
    return "at_min" if count >= minimum else "below_min"


def filters_applied(selection: Selection) -> dict[str, Any]:
    s = selection.settings
    return {
        "minDurationMs": s.min_duration_ms,
        "maxDurationMs": s.max_duration_ms,
        "longTrackPolicy": f"tracks over {PREFERRED_MAX_MS} ms (5 min) only where a cell is "
                           f"below its target; none over {s.max_duration_ms} ms",
        "explicitPolicy": "retained; the explicit flag is exported for the app to filter",
        "playabilityPolicy": "playable in the primary market by Spotify is_playable, else "
                             "available_markets (extended), else ReccoBeats "
                             "availableCountries; unknown only where a cell is below its "
                             "minimum; unplayable never",
        "dedupePolicy": "unique Spotify track ID; one track per ISRC (earliest album year, "
                        "then smallest ID); without ISRC, normalised title + primary artist "
                        "+ duration within 2 s (most popular, then earliest album year, "
                        "then smallest ID)",
        "featuresPolicy": f"tracks without ReccoBeats features only where a cell is below its "
                          f"minimum, at most {s.max_featureless_share:.0%} of the export",
        "artistSharePolicy": f"per umbrella x decade cell, one primary artist holds at most "
                             f"max({s.max_artist_floor}, floor({s.max_artist_share} x the "
                             f"cell's exported tracks)); more only where a cell would "
                             f"otherwise stay below its minimum (balance.cells "
                             f"over_artist_share)",
    }


def package_version() -> str:
    try:
        return version(GENERATOR)
    except PackageNotFoundError:
        return GENERATOR_VERSION


def dumps(manifest: dict[str, Any]) -> bytes:
    return (json.dumps(manifest, ensure_ascii=False, indent=2) + "\n").encode()
