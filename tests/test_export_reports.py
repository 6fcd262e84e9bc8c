"""The export's reports and copies: coverage Markdown and heatmap, CSV and Parquet copies."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from jsonschema import Draft202012Validator
from PIL import Image

from runclub_spiders.catalog.selection import BalanceSettings, CellReport, Selection
from runclub_spiders.export.build import add_discovery
from runclub_spiders.export.copies import (
    COPY_FORMATS,
    parquet_schema,
    write_copies,
    write_csv,
    write_parquet,
)
from runclub_spiders.export.coverage import (
    GREEN,
    CoverageTable,
    cell_colour,
    render_markdown,
    render_png,
    write_coverage,
)
from runclub_spiders.export.manifest import cell_rows, largest_share
from runclub_spiders.export.rows import CatalogWideRow
from runclub_spiders.store import Store

DECADES = ["70s", "80s", "90s", "00s", "10s", "20s"]
UMBRELLAS = ["Pop", "R&B & Soul", "Drum | Bass"]


# ---------------------------------------------------------------------------------- coverage
def cell(umbrella: str, decade: str, home: int, backfilled: int = 0, *, minimum: int = 50,
         target: int = 100, why: str | None = None) -> dict[str, Any]:
    count = home + backfilled
    status = ("at_target" if count >= target else "at_min" if count >= minimum
              else "below_min")
    return {"umbrella": umbrella, "decade": decade, "count": count, "home": home,
            "backfilled": backfilled, "min": minimum, "target": target, "status": status,
            "why": why}


def coverage_table() -> CoverageTable:
    cells = [cell(umbrella, decade, 100) for umbrella in UMBRELLAS for decade in DECADES
             if (umbrella, decade) not in {("Pop", "80s"), ("R&B & Soul", "70s"),
                                           ("Drum | Bass", "20s")}]
    cells += [
        cell("Pop", "80s", 25, 12, why="seeds exhausted after 14 queries"),
        cell("R&B & Soul", "70s", 60),
        # ("Drum | Bass", "20s") is left out: a cell the plan does not have.
    ]
    return CoverageTable.from_dicts(UMBRELLAS, DECADES, cells)


def test_markdown_table_counts_totals_and_sections() -> None:
    text = render_markdown(coverage_table(), title="Coverage: demo",
                           summary_lines=["Tracks exported: 1,692", "Cells at target: 15/17"])
    lines = text.splitlines()
    assert lines[0] == "# Coverage: demo"
    assert "- Tracks exported: 1,692" in lines
    assert "| Umbrella | 70s | 80s | 90s | 00s | 10s | 20s | Total |" in lines
    pop = next(line for line in lines if line.startswith("| Pop |"))
    assert pop == ("| Pop | 100/100 | **37**/100 ⚠ (+12) | 100/100 | 100/100 | 100/100 | 100/100"
                   " | **537**/600 (+12) |")
    randb = next(line for line in lines if line.startswith("| R&B & Soul |"))
    assert randb.split(" | ")[1] == "60/100"
    # "|" in a name is escaped so the table keeps its columns; a missing cell shows "-".
    bass = next(line for line in lines if line.startswith("| Drum \\| Bass |"))
    assert bass.endswith("| - | **500**/500 |")
    totals = next(line for line in lines if line.startswith("| **Total** |"))
    assert totals == ("| **Total** | **260**/300 | **237**/300 (+12) | **300**/300 | **300**/300"
                      " | **300**/300 | **200**/200 | **1597**/1700 (+12) |")
    assert "Legend:" in lines
    below = lines[lines.index("## Cells below their minimum") + 2]
    assert below == ("- **Pop, 80s**: 37 of min 50 (target 100): seeds exhausted after 14"
                     " queries")
    backfill = lines[lines.index("## Backfill") + 2:]
    assert backfill[0] == "- **Pop, 80s**: +12 backfilled, 25 home, 37 in all"
    assert "12 backfilled tracks in 1 cells." in backfill


def test_markdown_without_shortfalls_says_so() -> None:
    table = CoverageTable.from_dicts(["Pop"], ["70s"], [cell("Pop", "70s", 100)])
    text = render_markdown(table, title="t", summary_lines=[])
    assert "None: every cell reached its minimum." in text
    assert "None: every cell holds home tracks only." in text


def test_table_rejects_inconsistent_cells() -> None:
    bad = cell("Pop", "70s", 10) | {"count": 11}
    with pytest.raises(ValueError, match="count 11 is not home 10"):
        CoverageTable.from_dicts(["Pop"], ["70s"], [bad])
    with pytest.raises(ValueError, match="unknown decade"):
        CoverageTable.from_dicts(["Pop"], ["70s"], [cell("Pop", "60s", 10)])


def test_markdown_reports_artist_variety_and_discovery() -> None:
    cells = [
        cell("Pop", "70s", 50) | {"top_artist": 5, "artist_cap": 5},
        cell("Pop", "80s", 30) | {"top_artist": 9, "artist_cap": 4, "over_artist_share": 5,
                                  "found": 120, "reachable": 180.4, "stopped": "exhausted"},
        cell("Pop", "90s", 10) | {"top_artist": 10, "artist_cap": 4, "over_artist_share": 6,
                                  "found": 12, "reachable": None, "stopped": None},
        cell("Pop", "00s", 19) | {"top_artist": 19, "artist_cap": 4, "over_artist_share": 15},
    ]
    table = CoverageTable.from_dicts(["Pop"], ["70s", "80s", "90s", "00s"], cells)
    best = table.largest_artist_share()
    assert best is not None and best.label == "Pop, 80s"      # 9/30; 10/10 and 19/19 < 20
    assert table.largest_artist_share(min_tracks=60) is None
    text = render_markdown(table, title="t", summary_lines=["first"])
    lines = text.splitlines()
    assert lines[2:4] == [
        "- first",
        "- largest share of one artist in a cell of at least 20 tracks: 30.0% (Pop, 80s: 9 of"
        " 30); 26 tracks over the artist cap in 3 cells that would otherwise stay below their"
        " minimum"]
    details = lines[lines.index("## Cells in detail") + 2:]
    assert details[0] == ("| Cell | Tracks | Target | Top artist | Cap | Over cap | Found |"
                          " Reachable | Discovery stopped |")
    assert details[2] == "| Pop, 70s | 50 | 100 | 5 (10%) | 5 |  |  |  |  |"   # no record
    assert details[3] == "| Pop, 80s | 30 | 100 | 9 (30%) | 4 | 5 | 120 | 180 | exhausted |"
    assert details[4] == "| Pop, 90s | 10 | 100 | 10 (100%) | 4 | 6 | 12 |  | not stopped |"
    # A table without the new keys (an older manifest's cells) still renders.
    plain = CoverageTable.from_dicts(["Pop"], ["70s"], [cell("Pop", "70s", 30)])
    assert plain.cells[0].found is None and plain.cells[0].top_artist == 0
    assert "| Pop, 70s | 30 | 100 | 0 (0%) | 0 |  |  |  |  |" in render_markdown(
        plain, title="t", summary_lines=[])
    with pytest.raises(ValueError, match="over the artist cap"):
        CoverageTable.from_dicts(["Pop"], ["70s"], [cell("Pop", "70s", 3) | {"top_artist": 4}])


def test_export_cells_carry_artist_share_and_discovery(tmp_path: Path) -> None:
    reports = {("Pop", "70s"): CellReport("Pop", "70s", home=40, top_artist=4, artist_cap=4),
               ("Pop", "80s"): CellReport("Pop", "80s", home=20, backfilled=5, top_artist=8,
                                          artist_cap=4, over_artist_share=4)}
    selection = Selection([], {}, Counter(), {}, reports, Counter(),
                          BalanceSettings(cell_min=30, cell_target=60))
    store = Store.open(tmp_path / "catalog.sqlite")
    try:
        add_discovery(selection, store)                 # an empty table: nothing changes
        assert reports["Pop", "80s"].found is None
        store.set_discovery_cell("Pop", "80s", found=77, reachable=90.5, stopped="low_yield",
                                 now="2026-01-01T00:00:00Z")
        store.set_discovery_cell("Jazz", "80s", found=1, reachable=None, stopped=None,
                                 now="2026-01-01T00:00:00Z")        # not a cell of the plan
        add_discovery(selection, store)
    finally:
        store.close()
    rows = cell_rows(selection)
    assert {k: rows[1][k] for k in (
        "count", "top_artist", "artist_cap", "over_artist_share", "found", "reachable",
        "stopped")} == {"count": 25, "top_artist": 8, "artist_cap": 4, "over_artist_share": 4,
                        "found": 77, "reachable": 90.5, "stopped": "low_yield"}
    assert (rows[0]["found"], rows[0]["reachable"], rows[0]["stopped"]) == (None, None, None)
    assert largest_share(["Pop"], ["70s", "80s"], rows) == {
        "umbrella": "Pop", "decade": "80s", "tracks": 8, "count": 25, "share": 0.32,
        "minCellTracks": 20}
    # The manifest's balance part with the new fields matches its schema.
    schema = json.loads(Path("schemas/manifest.schema.json").read_text(encoding="utf-8"))
    balance = {"cellMin": 30, "cellTarget": 60, "maxTracks": 100, "cellsAtMin": 1,
               "cellsAtTarget": 0, "maxArtistShare": 0.1, "maxArtistFloor": 4,
               "overArtistShare": 4, "cells": rows, "backfill": {},
               "largestArtistShare": largest_share(["Pop"], ["70s", "80s"], rows)}
    Draft202012Validator({"$defs": schema["$defs"], **schema["properties"]["balance"]}
                         ).validate(balance)


def test_png_decodes_and_is_deterministic() -> None:
    table = coverage_table()
    first = render_png(table, title="Coverage: demo")
    second = render_png(coverage_table(), title="Coverage: demo")
    assert hashlib.sha256(first).digest() == hashlib.sha256(second).digest()
    with Image.open(io.BytesIO(first)) as image:
        assert image.format == "PNG"
        assert image.size == (900, 700)
        assert not image.info.keys() - {"dpi"}          # no text or time chunks
        image.load()
        colours = {colour for _, colour in image.convert("RGB").getcolors(1 << 16) or []}
    # The below-min cell is drawn red, the at-target ones green, the at-min one amber.
    pop_80s, randb_70s = table.cell("Pop", "80s"), table.cell("R&B & Soul", "70s")
    assert {cell_colour(pop_80s), cell_colour(randb_70s), GREEN} <= colours
    assert cell_colour(pop_80s)[0] > 150 > cell_colour(pop_80s)[1]


def test_png_grows_for_many_umbrellas() -> None:
    umbrellas = [f"Umbrella {n}" for n in range(60)]
    table = CoverageTable.from_dicts(umbrellas, ["70s"], [cell(u, "70s", 5) for u in umbrellas])
    with Image.open(io.BytesIO(render_png(table, title="t"))) as image:
        assert image.size[0] == 900 and image.size[1] > 700


def test_write_coverage(tmp_path: Path) -> None:
    names = write_coverage(tmp_path, coverage_table(), title="t", summary_lines=["a"])
    assert names == ["coverage.md", "coverage.png"]
    assert (tmp_path / "coverage.md").read_bytes().startswith(b"# t\n")
    assert (tmp_path / "coverage.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ------------------------------------------------------------------------------------ copies
def wide_row(n: int) -> CatalogWideRow:
    return CatalogWideRow(
        id=f"00000000-0000-5000-8000-{n:012d}", spotify_track_id=f"track{n}",
        isrc=None if n % 2 else f"USRC{n:07d}", name=f"Song, \"{n}\"\nlive", duration_ms=200_000,
        explicit=bool(n % 3 == 0), album_name="Album é", album_release_date="1984-05-01",
        album_release_year=1984, album_decade_label="80s", album_image_url=None,
        popularity_snapshot=n % 100, popularity_bucket=None, available_us=True,
        available_primary_markets=["US", "GB"], preview_url=None,
        artist_ids=[f"artist{n}", "artistB"], artist_names=["A", "B & Co"],
        artist_genres=[["dance pop", "pop"], []], artist_image_urls=[None, "https://img/b"],
        source_playlist_id=None, source_playlist_name=None, source_playlist_owner=None,
        sources=[{"kind": "search", "q": "genre:pop", "at": "2024-01-01T00:00:00Z"}],
        recco_track_id=None, recco_features_version=None, recco_features_at=None,
        tempo=120.5 if n % 2 else None, energy=0.8, danceability=0.7, valence=0.5,
        loudness=-5.0, acousticness=0.1, instrumentalness=0.0, liveness=0.2, speechiness=0.05,
        key=5, mode=1, time_signature=None, created_at="2024-01-01T00:00:00Z",
        updated_at="2024-01-02T00:00:00Z", _extra={"z": 1, "a": {"first_release_year": 1984}},
    )


def write_wide(directory: Path, count: int) -> Path:
    path = directory / "catalog_wide.jsonl"
    with path.open("w", encoding="utf-8") as out:
        for n in range(count):
            out.write(json.dumps(dataclasses.asdict(wide_row(n)), ensure_ascii=False) + "\n")
    return path


def test_csv_round_trip(tmp_path: Path) -> None:
    source = write_wide(tmp_path, 7)
    target = tmp_path / "catalog_wide.csv"
    assert write_csv(source, target) == 7
    raw = target.read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf") and b"\r\n" not in raw
    with target.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 7
    assert list(rows[0]) == [f.name for f in dataclasses.fields(CatalogWideRow)]
    first, second = rows[0], rows[1]
    assert json.loads(first["artist_genres"]) == [["dance pop", "pop"], []]
    assert json.loads(first["artist_image_urls"]) == [None, "https://img/b"]
    assert first["_extra"] == '{"a":{"first_release_year":1984},"z":1}'   # keys sorted
    assert first["name"] == 'Song, "0"\nlive'
    assert first["explicit"] == "true" and second["explicit"] == "false"
    assert first["tempo"] == "" and second["tempo"] == "120.5"
    assert second["isrc"] == ""
    assert first["album_name"] == "Album é"


def test_csv_of_empty_file_has_header(tmp_path: Path) -> None:
    source = write_wide(tmp_path, 0)
    assert write_csv(source, tmp_path / "out.csv") == 0
    header = (tmp_path / "out.csv").read_text(encoding="utf-8")
    assert header.startswith("id,spotify_track_id,") and header.count("\n") == 1


def test_parquet_round_trip_and_determinism(tmp_path: Path) -> None:
    source = write_wide(tmp_path, 12)
    first, second = tmp_path / "a.parquet", tmp_path / "b.parquet"
    assert write_parquet(source, first) == 12
    write_parquet(source, second)
    assert first.read_bytes() == second.read_bytes()
    table = pq.read_table(first)
    assert table.num_rows == 12
    assert table.schema.equals(parquet_schema())
    assert table.schema.field("duration_ms").type == pa.int64()
    assert table.schema.field("tempo").type == pa.float64()
    assert table.schema.field("explicit").type == pa.bool_()
    assert table.schema.field("artist_ids").type == pa.list_(pa.string())
    assert table.schema.field("artist_genres").type == pa.list_(pa.list_(pa.string()))
    assert table.schema.field("sources").type == pa.string()
    row = table.slice(0, 1).to_pylist()[0]
    assert row["artist_genres"] == [["dance pop", "pop"], []]
    assert row["artist_image_urls"] == [None, "https://img/b"]
    assert row["tempo"] is None and row["time_signature"] is None
    assert json.loads(row["_extra"]) == {"a": {"first_release_year": 1984}, "z": 1}


def test_parquet_batches_into_row_groups(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("runclub_spiders.export.copies.PARQUET_BATCH_ROWS", 5)
    source = write_wide(tmp_path, 12)
    assert write_parquet(source, tmp_path / "a.parquet") == 12
    metadata = pq.ParquetFile(tmp_path / "a.parquet").metadata
    assert metadata.num_rows == 12 and metadata.num_row_groups == 3


def test_parquet_rejects_null_in_required_column(tmp_path: Path) -> None:
    row = dataclasses.asdict(wide_row(0)) | {"name": None}
    source = tmp_path / "catalog_wide.jsonl"
    source.write_text(json.dumps(row) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match="name is null in 1 rows"):
        write_parquet(source, tmp_path / "a.parquet")


def test_write_copies(tmp_path: Path) -> None:
    write_wide(tmp_path, 3)
    assert write_copies(tmp_path, COPY_FORMATS) == ["catalog_wide.csv", "catalog_wide.parquet"]
    assert (tmp_path / "catalog_wide.csv").stat().st_size > 0
    assert (tmp_path / "catalog_wide.parquet").stat().st_size > 0


def test_unknown_copy_format_raises_before_writing(tmp_path: Path) -> None:
    write_wide(tmp_path, 3)
    with pytest.raises(ValueError, match=r"'xlsx'.*allowed: csv, parquet"):
        write_copies(tmp_path, ["csv", "xlsx"])
    assert not (tmp_path / "catalog_wide.csv").exists()
