"""``scrapy validate-export``: a hand-built valid export passes; each break fails its own check.

Each broken export breaks exactly one thing, written before the gzip twins, hashes and totals
are computed where those would otherwise fail too, so the test can insist that only the
check meant for it fails and that its detail names the file.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from jsonschema import Draft202012Validator

from runclub_spiders.catalog.cadence import best_cadence, tempo_bucket
from runclub_spiders.export.rows import CachedArtistRow, CatalogWideRow
from runclub_spiders.export.splitter import to_audio_feature, to_cached_track
from runclub_spiders.export.validate import (
    CHECK_NAMES,
    CONSISTENCY,
    DURATION,
    ENCODING,
    FEATURES_COVERAGE,
    FILES_PRESENT,
    GZIP,
    HASHES,
    SCHEMA,
    TOTALS,
    UNIQUE_IDS,
    YEARS,
    Check,
    Schema,
    compile_schema,
    load_schemas,
    run,
    validate_export,
)

REPO = Path(__file__).resolve().parents[1]
NOW = "2026-11-25T10:00:00Z"
UMBRELLAS = ("Rock", "Pop & Dance", "Country & Americana")
DECADES = ("70s", "80s", "90s", "00s", "10s", "20s")
TRACKS = 40                 # 1 in 40 is 2.5%: one row moves a share across no threshold alone
ARTISTS = 8

Rows = dict[str, list[dict[str, Any]]]


def spotify_id(kind: str, number: int) -> str:
    return f"{kind}{number}".rjust(22, "0")


def artist_row(i: int) -> CachedArtistRow:
    return CachedArtistRow(id=spotify_id("a", i), name=f"Artist {i}", genres=["rock", "hip hop"],
                           popularity=40 + i)


def wide_row(i: int) -> CatalogWideRow:
    track_id = spotify_id("t", i)
    artist = artist_row(i % ARTISTS)
    decade = DECADES[i % len(DECADES)]
    year = {"70s": 1975, "80s": 1985, "90s": 1995, "00s": 2005, "10s": 2015, "20s": 2022}[decade]
    umbrella = UMBRELLAS[i % len(UMBRELLAS)]
    search = i % 2 == 0
    playlist_id = None if search else spotify_id("p", i % 5)
    tempo = 160.0 + i % 20
    cadence = best_cadence(tempo)
    return CatalogWideRow(
        id=str(uuid.uuid5(uuid.NAMESPACE_URL, track_id)), spotify_track_id=track_id,
        isrc=f"USUM7{i:07d}", name=f"Song {i}: Ünïcode", duration_ms=180_000 + i * 1000,
        explicit=i % 7 == 0, album_name=f"Album {i}", album_release_date=f"{year}-05-01",
        album_release_year=year, album_decade_label=decade,
        album_image_url=f"https://i.scdn.co/image/{i}", popularity_snapshot=50,
        popularity_bucket=50, available_us=True, available_primary_markets=["US", "GB"],
        preview_url=None, artist_ids=[artist.id], artist_names=[artist.name],
        artist_genres=[artist.genres], artist_image_urls=None,
        source_playlist_id=playlist_id, source_playlist_name=None if search else "Run Mix",
        source_playlist_owner=None if search else "spotify",
        sources=[{"type": "search", "term": f"{decade} rock running"}] if search else
        [{"type": "playlist", "playlist_id": playlist_id, "owner": "spotify",
          "name": "Run Mix"}],
        recco_track_id=str(uuid.uuid5(uuid.NAMESPACE_DNS, track_id)),
        recco_features_version="1", recco_features_at=NOW, tempo=tempo, energy=0.7,
        danceability=0.6, valence=0.5, loudness=-6.1, acousticness=0.1, instrumentalness=0.0,
        liveness=0.1, speechiness=0.05, key=i % 12 - 1, mode=i % 2, time_signature=None,
        created_at=NOW, updated_at=NOW,
        _extra={"umbrellas": [umbrella], "year_source": "spotify",
                "year_rule": "regular_release", "genre_sources": {},
                "cell": [umbrella, decade], "backfill": None, "seed": "free-form keys are allowed",
                "ingest_source": "search" if search else "playlist",
                "ingest_query": f"{decade} rock running" if search else None,
                "tempo_bucket": tempo_bucket(tempo),
                "cadence_spm": cadence.spm if cadence else None,
                "cadence_match": cadence.match if cadence else None})


def make_rows(tracks: int = TRACKS) -> Rows:
    wide = [wide_row(i) for i in range(tracks)]
    return {
        "catalog_wide.jsonl": [dataclasses.asdict(row) for row in wide],
        "cached_tracks.jsonl": [dataclasses.asdict(to_cached_track(row, "US")) for row in wide],
        "audio_features.jsonl": [dataclasses.asdict(to_audio_feature(row)) for row in wide],
        "cached_artists.jsonl": [dataclasses.asdict(artist_row(i)) for i in range(ARTISTS)],
    }


def jsonl(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode()


def by_cell(wide: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    cells = Counter((row["_extra"]["umbrellas"][0], row["album_decade_label"]) for row in wide
                    if isinstance(row["_extra"], dict) and row["_extra"]["umbrellas"]
                    and row["album_decade_label"])
    out: dict[str, dict[str, int]] = {}
    for (umbrella, decade), count in sorted(cells.items()):
        out.setdefault(umbrella, {})[decade] = count
    return out


def manifest_for(directory: Path, rows: Rows) -> dict[str, Any]:
    files = sorted(p for p in directory.iterdir() if p.name != "manifest.json")
    tracks = len(rows["cached_tracks.jsonl"])
    return {
        "version": "2026.11.25-1a2b3c4d",
        "formatVersion": 1,
        "createdAt": NOW,
        "generator": {"name": "runclub-spiders", "version": "0.1.0", "scrapy": "2.19.0"},
        "spotify": {
            "market": "US", "profile": "development", "seedsSummary": {"terms": 12},
            "searchCounts": {"queries": 3, "requests": 9, "newTracks": 20,
                             "byFamily": {"decade": {"queries": 3, "requests": 9,
                                                     "newTracks": 20}},
                             "exhausted": {"no_more_results": 1}},
            "playlistCounts": {"seen": 5, "read": 5, "tracks": 20},
            "requestsByBucket": {"search": 9}, "requestsByDay": {"2026-11-25": {"search": 9}},
            "capabilities": None},
        "reccobeats": {"featureCoveragePct": 100.0, "errors": 0, "retries": 0, "misses": 0},
        "totals": {"tracks": tracks, "artists": len(rows["cached_artists.jsonl"]),
                   "audioFeatures": len(rows["audio_features.jsonl"]),
                   "byUmbrellaAndDecade": by_cell(rows["catalog_wide.jsonl"])},
        "balance": {"cellMin": 1, "cellTarget": 3, "maxTracks": 100, "cellsAtMin": 0,
                    "cellsAtTarget": 1,
                    "cells": [{"umbrella": "Rock", "decade": "70s", "count": 3, "home": 3,
                               "backfilled": 0, "min": 1, "target": 3, "status": "at_target",
                               "why": None}],
                    "backfill": {}},
        "filtersApplied": {"minDurationMs": 120_000, "maxDurationMs": 360_000,
                           "longTrackPolicy": "keep up to 6 min", "explicitPolicy": "retain",
                           "playabilityPolicy": "US or primary markets",
                           "dedupePolicy": "id, then isrc", "featuresPolicy": "keep misses"},
        "rejections": {"total": {"duration": 2}, "bySeed": {"70s rock running": {"duration": 2}}},
        "openData": {name: {"status": "off", "requests": 0, "answered": 0, "retries": 0,
                            "errors": 0, "asked": 0, "found": 0, "missing": 0, "toAsk": 0,
                            "parked": None, "disabled": f"{name.upper()}_ENABLED is off",
                            "lastRunAt": NOW, "licence": "CC0-1.0", **extra}
                     for name, extra in (("wikidata", {"genres": 0, "unmappedLabels": 0,
                                                       "topUnmappedLabels": {}}),
                                         ("musicbrainz", {"dated": 0}))},
        "classification": {"yearSources": {"regular_release": tracks},
                           "umbrellaSources": {"artist_genres": 1}},
        "files": {p.name: {"rows": None, "bytes": p.stat().st_size} for p in files},
        "fileHashes": {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in files},
        "notes": ["time_signature: no source provides it"],
    }


def make_export(
    directory: Path,
    *,
    rows: Callable[[Rows], None] | None = None,
    raw: Callable[[str, bytes], bytes] | None = None,
    tamper: Callable[[Path], None] | None = None,
    manifest: Callable[[dict[str, Any]], None] | None = None,
) -> Path:
    """A consistent export; each hook breaks one thing before what depends on it is computed.

    ``rows`` edits the rows before anything is written, ``raw`` a .jsonl's bytes before its
    gzip twin is made, ``tamper`` the directory before hashing, ``manifest`` the manifest.
    """
    directory.mkdir(parents=True, exist_ok=True)
    data = make_rows()
    if rows:
        rows(data)
    for name, file_rows in data.items():
        content = jsonl(file_rows)
        if raw:
            content = raw(name, content)
        (directory / name).write_bytes(content)
        (directory / f"{name}.gz").write_bytes(gzip.compress(content, mtime=0))
    (directory / "coverage.md").write_text("# Coverage\n", encoding="utf-8")
    (directory / "coverage.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    if tamper:
        tamper(directory)
    document = manifest_for(directory, data)
    if manifest:
        manifest(document)
    (directory / "manifest.json").write_text(json.dumps(document, indent=2) + "\n",
                                             encoding="utf-8")
    return directory


def failed(checks: list[Check]) -> dict[str, str]:
    return {check.name: check.detail for check in checks if not check.ok}


def only_failure(directory: Path, name: str) -> str:
    """The detail of check ``name``, which must be the only one failing."""
    failures = failed(validate_export(directory))
    assert set(failures) == {name}, failures
    return failures[name]


def test_valid_export_passes_every_check(tmp_path: Path) -> None:
    checks = validate_export(make_export(tmp_path / "export"))
    assert [check.name for check in checks] == list(CHECK_NAMES)
    assert failed(checks) == {}
    assert all(check.detail for check in checks)


def test_hidden_files_and_optional_analyst_files(tmp_path: Path) -> None:
    def extra_files(directory: Path) -> None:
        (directory / "catalog_wide.csv").write_text("id\n", encoding="utf-8")

    export = make_export(tmp_path / "export", tamper=extra_files)
    (export / ".DS_Store").write_bytes(b"\0")        # hidden: never listed, never a problem
    assert failed(validate_export(export)) == {}


def test_missing_file(tmp_path: Path) -> None:
    export = make_export(tmp_path / "export",
                         tamper=lambda d: (d / "catalog_wide.jsonl.gz").unlink())
    assert "catalog_wide.jsonl.gz" in only_failure(export, FILES_PRESENT)


def test_bom(tmp_path: Path) -> None:
    def bom(name: str, content: bytes) -> bytes:
        return b"\xef\xbb\xbf" + content if name == "cached_tracks.jsonl" else content

    detail = only_failure(make_export(tmp_path / "export", raw=bom), ENCODING)
    assert "cached_tracks.jsonl:1" in detail and "BOM" in detail


def test_missing_final_newline(tmp_path: Path) -> None:
    def chop(name: str, content: bytes) -> bytes:
        return content[:-1] if name == "cached_artists.jsonl" else content

    detail = only_failure(make_export(tmp_path / "export", raw=chop), ENCODING)
    assert f"cached_artists.jsonl:{ARTISTS}" in detail


def test_gz_differs(tmp_path: Path) -> None:
    def regzip(directory: Path) -> None:
        content = (directory / "audio_features.jsonl").read_bytes().replace(b"160.0", b"161.0")
        (directory / "audio_features.jsonl.gz").write_bytes(gzip.compress(content, mtime=0))

    detail = only_failure(make_export(tmp_path / "export", tamper=regzip), GZIP)
    assert "audio_features.jsonl.gz" in detail


def test_schema_violation_missing_camel_case_key(tmp_path: Path) -> None:
    def drop(data: Rows) -> None:
        del data["cached_tracks.jsonl"][4]["albumName"]

    detail = only_failure(make_export(tmp_path / "export", rows=drop), SCHEMA)
    assert "cached_tracks.jsonl:5" in detail and "albumName" in detail


def test_schema_violation_in_manifest(tmp_path: Path) -> None:
    def bad_profile(document: dict[str, Any]) -> None:
        document["spotify"]["profile"] = "premium"

    detail = only_failure(make_export(tmp_path / "export", manifest=bad_profile), SCHEMA)
    assert "manifest.json" in detail and "$.spotify.profile" in detail


def test_bad_hash(tmp_path: Path) -> None:
    export = make_export(tmp_path / "export")
    (export / "coverage.md").write_text("# Coverage, edited after the export\n",
                                        encoding="utf-8")
    assert "coverage.md" in only_failure(export, HASHES)


def test_bad_hash_of_row_file_whose_gzip_twin_agrees(tmp_path: Path) -> None:
    """The .jsonl's hash comes from the gzip check's read: it must still be checked."""
    export = make_export(tmp_path / "export")
    name = "cached_artists.jsonl"
    # The same JSON in other bytes: only the hashes can tell.
    content = (export / name).read_bytes().replace(b'"popularity": ', b'"popularity":  ', 1)
    (export / name).write_bytes(content)
    (export / f"{name}.gz").write_bytes(gzip.compress(content, mtime=0))
    detail = only_failure(export, HASHES)
    assert f"{name}: sha256" in detail and f"{name}.gz: sha256" in detail


def test_unlisted_file(tmp_path: Path) -> None:
    export = make_export(tmp_path / "export")
    (export / "catalog_wide.parquet").write_bytes(b"PAR1")
    detail = only_failure(export, HASHES)
    assert "catalog_wide.parquet" in detail and "not listed" in detail


def test_duplicate_isrc(tmp_path: Path) -> None:
    def same_isrc(data: Rows) -> None:
        wide = data["catalog_wide.jsonl"]
        wide[9]["isrc"] = wide[2]["isrc"]

    detail = only_failure(make_export(tmp_path / "export", rows=same_isrc), UNIQUE_IDS)
    assert "catalog_wide.jsonl:10" in detail and "isrc" in detail and "line 3" in detail


def test_track_over_six_minutes(tmp_path: Path) -> None:
    def long_track(data: Rows) -> None:
        data["catalog_wide.jsonl"][6]["duration_ms"] = 361_000
        data["cached_tracks.jsonl"][6]["durationMs"] = 361_000

    detail = only_failure(make_export(tmp_path / "export", rows=long_track), DURATION)
    assert "cached_tracks.jsonl:7" in detail and "catalog_wide.jsonl:7" in detail
    assert "6:01" in detail


def test_features_below_95_percent(tmp_path: Path) -> None:
    def no_tempo(data: Rows) -> None:            # 3 of 40: 92.5%
        for row in data["audio_features.jsonl"][:3]:
            row["tempo"] = None

    detail = only_failure(make_export(tmp_path / "export", rows=no_tempo), FEATURES_COVERAGE)
    assert "92.5%" in detail and "audio_features.jsonl" in detail
    assert "cached_tracks.jsonl:1" in detail


def test_features_at_95_percent_pass(tmp_path: Path) -> None:
    def two_missing(data: Rows) -> None:         # 38 of 40: exactly 95%
        del data["audio_features.jsonl"][:2]

    assert failed(validate_export(make_export(tmp_path / "export", rows=two_missing))) == {}


def test_years_below_90_percent(tmp_path: Path) -> None:
    def undated(data: Rows) -> None:             # 5 of 40: 87.5%
        for wide, track in zip(data["catalog_wide.jsonl"][:5], data["cached_tracks.jsonl"][:5],
                               strict=True):
            wide.update(album_release_year=None, album_decade_label=None)
            track.update(albumReleaseYear=None, _decade=None, _album_decade_label=None)

    detail = only_failure(make_export(tmp_path / "export", rows=undated), YEARS)
    assert "87.5%" in detail and "cached_tracks.jsonl" in detail


def test_totals_off_by_one(tmp_path: Path) -> None:
    def one_more(document: dict[str, Any]) -> None:
        document["totals"]["tracks"] += 1

    detail = only_failure(make_export(tmp_path / "export", manifest=one_more), TOTALS)
    assert "totals.tracks" in detail and "cached_tracks.jsonl" in detail


def test_totals_cell_off(tmp_path: Path) -> None:
    def cell(document: dict[str, Any]) -> None:
        document["totals"]["byUmbrellaAndDecade"]["Rock"]["70s"] += 1
        document["totals"]["byUmbrellaAndDecade"]["Rock"]["80s"] = 0  # zero: same as absent

    detail = only_failure(make_export(tmp_path / "export", manifest=cell), TOTALS)
    assert "[Rock][70s]" in detail and "catalog_wide.jsonl" in detail


def test_wide_disagrees_with_cached_tracks(tmp_path: Path) -> None:
    def rename(data: Rows) -> None:
        data["catalog_wide.jsonl"][3]["name"] = "Another Song"

    detail = only_failure(make_export(tmp_path / "export", rows=rename), CONSISTENCY)
    assert "catalog_wide.jsonl:4" in detail and "cached_tracks.jsonl:4" in detail


def test_unknown_artist_and_orphan_feature(tmp_path: Path) -> None:
    def orphans(data: Rows) -> None:
        data["cached_artists.jsonl"].pop()       # artist 7, primary artist of tracks 7, 15 ...
        data["audio_features.jsonl"].append(
            {**data["audio_features.jsonl"][0], "trackId": spotify_id("t", 999)})

    detail = only_failure(make_export(tmp_path / "export", rows=orphans), CONSISTENCY)
    assert "is not in cached_artists.jsonl" in detail
    assert "(+" in detail                        # more than the three examples, counted


@pytest.mark.parametrize("make, code", [
    (lambda tmp: make_export(tmp / "export"), 0),
    (lambda tmp: make_export(tmp / "export", manifest=lambda m: m["totals"].update(artists=1)),
     1),
    (lambda tmp: tmp / "missing", 2),
])
def test_command_exit_codes(tmp_path: Path, make: Callable[[Path], Path], code: int) -> None:
    directory = make(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "scrapy.cmdline", "validate-export", str(directory)],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == code, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    if code == 2:
        assert result.stdout == ""
        assert result.stderr.count("\n") == 1 and str(directory) in result.stderr
    else:
        lines = result.stdout.splitlines()
        assert len(lines) == len(CHECK_NAMES) + 1
        assert [line.split(":")[0].split()[-1] for line in lines[:3]] == \
            ["present", "encoding", "gzip"]
        assert ("FAIL  totals:" in result.stdout) == (code == 1)


def test_run_reports_no_manifest_as_usage_error(tmp_path: Path, capsys) -> None:
    assert run(tmp_path) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "no manifest.json" in captured.err


def test_garbage_rows_fail_without_crashing(tmp_path: Path) -> None:
    garbage = (b"[]\n", b"\n", b"NaN\n", b'{"id": ["x"], "artistId": 5}\n', b"\xff\xfe\n",
               b'{"id": 1} {"id": 2}\n', b'{"durationMs": 9999999, "albumReleaseYear": true}\n')

    def append(name: str, content: bytes) -> bytes:
        return content + b"".join(garbage) if name != "cached_artists.jsonl" else content

    def odd_wide(data: Rows) -> None:
        data["catalog_wide.jsonl"][0].update(_extra=[], artist_ids="x", isrc=["y"])

    export = make_export(tmp_path / "export", raw=append, rows=odd_wide)
    failures = failed(validate_export(export))
    assert {ENCODING, SCHEMA, DURATION} <= set(failures)
    assert "cached_tracks.jsonl:41: a JSON list, not an object" in failures[ENCODING]


# -- The fast schema tests (fastjsonschema, on each schema rewritten in draft 7) must give
# jsonschema's verdict, or a bad row could pass.

PROBES = (None, True, False, 0, -1, 1, 1.0, 1.5, 150, 361_000, "", "x", "70s", "half_time",
          "2026-11-25T10:00:00Z", "0" * 22, [], ["x"], [None], {}, {"type": "search"})
# jsonschema takes a millisecond per manifest, which has many paths: fewer probes there.
MANIFEST_PROBES = (None, True, -1, 1.5, "x", {})


def paths(document: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    children = document.items() if isinstance(document, dict) else (
        enumerate(document) if isinstance(document, list) else ())
    for key, child in children:
        yield from paths(child, (*prefix, key))


def variants(document: Any, probes: tuple[Any, ...] = PROBES) -> Iterator[Any]:
    """The document with each value swapped for each probe, and each key or item dropped."""
    for path in paths(document):
        for probe in (*probes, "drop"):
            if not path and probe == "drop":
                continue
            copy = orjson.loads(orjson.dumps(document))
            if not path:
                yield probe
                continue
            parent = copy
            for key in path[:-1]:
                parent = parent[key]
            if probe == "drop":
                del parent[path[-1]]
            else:
                parent[path[-1]] = probe
            yield copy
    for name in ("unknown", "_extra_key"):
        if isinstance(document, dict):
            yield {**document, name: 1}


def sample_documents(tmp_path: Path) -> dict[str, list[Any]]:
    export = make_export(tmp_path / "export")
    documents: dict[str, list[Any]] = {
        name: [orjson.loads(line) for line in (export / name).read_bytes().splitlines()[:2]]
        for name in ("catalog_wide.jsonl", "cached_tracks.jsonl", "audio_features.jsonl",
                     "cached_artists.jsonl")}
    documents["manifest.json"] = [json.loads((export / "manifest.json").read_text())]
    return documents


def test_compiled_schemas_agree_with_jsonschema(tmp_path: Path) -> None:
    schemas = load_schemas(REPO / "schemas")
    checked = invalid = 0
    for name, documents in sample_documents(tmp_path).items():
        schema = schemas[name]
        assert schema.fast is not None, f"{name}: no fast test: jsonschema checks each row"
        for document in documents:
            probes = MANIFEST_PROBES if name == "manifest.json" else PROBES
            for variant in variants(document, probes):
                expected = schema.validator.is_valid(variant)
                assert schema.fast(variant) is expected, (name, variant)
                checked += 1
                invalid += not expected
    assert checked > 1000 and invalid > checked // 2


@pytest.mark.parametrize("schema, instances", [
    # fastjsonschema alone (draft 7) ignores prefixItems: it took [None, "70s"] for catalog_wide's
    # _extra.cell.
    ({"type": "array", "prefixItems": [{"type": "string"}, {"enum": ["70s"]}],
      "items": {"type": "integer"}},
     (["Rock", "70s"], ["Rock", "70s", 1], [None, "70s"], ["Rock", "80s"], ["Rock", "70s", "x"])),
    ({"type": "array", "prefixItems": [{"type": "string"}]}, (["Rock", 1], [1])),
    # ... and the keywords beside a $ref.
    ({"$defs": {"n": {"type": "integer"}}, "$ref": "#/$defs/n", "minimum": 0}, (3, -1, "x")),
    ({"properties": {"a": {"$ref": "#", "type": "object"}}},
     ({"a": {}}, {"a": 1}, {"a": {"a": 1}})),
    # ... and its "$" matches no final newline (Python's does) ...
    ({"pattern": "^[a-z]{2}$"}, ("ab", "ab\n", "ab\n\n", "abc", 1)),
    ({"not": {"pattern": "^x$"}}, ("x\n", "x", "y")),
    # ... and it divides where jsonschema takes the remainder: 1e23 / 5 is 2e22.
    ({"type": ["integer", "null"], "multipleOf": 5},
     (10, 10.0, 7, 7.5, 1e22, 1e23, 2**60 + 4, 2**60 + 5, -(2**60) - 1, None, True)),
])
def test_fast_tests_read_draft_2020_12(schema: dict[str, Any], instances: tuple[Any, ...]) -> None:
    """What the fast test accepts is valid, and the verdict (fast, else jsonschema) is
    jsonschema's."""
    validator = Draft202012Validator(schema)
    checker = Schema(validator, compile_schema(schema))
    assert checker.fast is not None
    valid = [validator.is_valid(each) for each in instances]
    lenient = [each for each, ok in zip(instances, valid, strict=True)
               if checker.fast(each) and not ok]
    assert lenient == []
    assert [checker.problem(each) is None for each in instances] == valid
    assert not all(valid)


def test_fast_tests_write_no_defaults_into_rows() -> None:
    row: dict[str, Any] = {}
    assert compile_schema({"properties": {"a": {"type": "integer", "default": 1}}})(row)
    assert row == {}


def test_jsonschema_has_the_last_word_on_rejected_rows() -> None:
    # Where the fast test cannot be exact, it rejects more (multipleOf, floats from 2**53 on).
    schema = {"type": "integer", "multipleOf": 5}
    checker = Schema(Draft202012Validator(schema), compile_schema(schema))
    assert checker.fast(1e22) is False
    assert checker.problem(1e22) is None
    assert checker.problem(1e23) == "$: 1e+23 is not a multiple of 5"


def test_compile_schema_declines_what_it_does_not_implement() -> None:
    assert compile_schema({"type": "array", "uniqueItems": True}) is None
    assert compile_schema({"$ref": "https://example.org/other.json"}) is None
    assert compile_schema({"multipleOf": 0.1}) is None
    assert compile_schema({"not": {"multipleOf": 5}}) is None      # rejecting more accepts more
    assert compile_schema({"pattern": "^a$|^b$"}) is None
    assert compile_schema({"multipleOf": 5, "not": {"$ref": "#"}}) is None
    assert compile_schema({"unevaluatedProperties": False}) is None
    assert compile_schema({"dependentRequired": {"a": ["b"]}}) is None
    assert compile_schema({"items": {"$id": "https://example.org/item.json"}}) is None
    assert compile_schema({"type": "integer", "minimum": 0}) is not None
