"""Analyst copies of ``catalog_wide.jsonl``: the same rows as CSV and as Parquet.

The JSONL file is the contract; the copies are conveniences for spreadsheets and notebooks,
written from it after the export so they can never hold a row the JSONL does not. Both are
streamed (the wide file has ~40,000 rows) and deterministic: the same JSONL gives the same
bytes.

CSV has no types, so nested values (arrays, ``sources``, ``_extra``) become compact JSON
strings, ``None`` an empty field and booleans ``true``/``false`` as in the JSONL. Parquet has
an explicit schema derived from ``CatalogWideRow``; only ``sources`` and ``_extra`` (free-form
objects) are stored as JSON strings.
"""

from __future__ import annotations

import csv
import json
import types
import typing
from collections.abc import Iterable, Iterator
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runclub_spiders.export.rows import CatalogWideRow

if TYPE_CHECKING:
    import pyarrow as pa

WIDE_NAME = "catalog_wide.jsonl"
COPY_FORMATS = ("csv", "parquet")
PARQUET_BATCH_ROWS = 5_000     # rows per read batch and per row group: memory stays flat
PARQUET_COMPRESSION = "zstd"
JSON_COLUMNS = ("sources", "_extra")   # free-form objects: JSON strings in Parquet too


def _json(value: Any) -> str:
    # Compact, key-sorted, UTF-8 as is: one spelling per value, so copies compare byte for byte.
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def _read_rows(jsonl_path: Path) -> Iterator[dict[str, Any]]:
    """Rows of a JSONL file one at a time; blank lines (a trailing newline) are skipped."""
    with jsonl_path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            row = json.loads(line)
            if not isinstance(row, dict):
                raise ValueError(f"{jsonl_path}: line {number}: not a JSON object")
            yield row


# --------------------------------------------------------------------------------------- CSV
def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):      # before int: bool is an int
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return _json(value)
    return str(value)


def write_csv(jsonl_path: Path, csv_path: Path) -> int:
    """``catalog_wide.csv`` from ``catalog_wide.jsonl``; returns the number of rows written.

    Columns are the first row's keys in order (the ``CatalogWideRow`` fields when the file is
    empty, so the header is still there). A later row with a key the header lacks is an
    error rather than a silently dropped value; a missing key gives an empty field.
    """
    rows = _read_rows(jsonl_path)
    first = next(rows, None)
    columns = list(first) if first is not None else [f.name for f in fields(CatalogWideRow)]
    written = 0
    # newline="" hands line endings to the csv module, which writes "\n" (lineterminator).
    with csv_path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        if first is None:
            return 0
        for row in _chain(first, rows):
            extra = [key for key in row if key not in columns]
            if extra:
                raise ValueError(f"{jsonl_path}: row {written + 1}: keys not in the first "
                                 f"row: {', '.join(extra)}")
            writer.writerow([_csv_value(row.get(column)) for column in columns])
            written += 1
    return written


def _chain(first: dict[str, Any], rest: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    yield first
    yield from rest


# ----------------------------------------------------------------------------------- Parquet
def _arrow_type(hint: Any) -> tuple[pa.DataType, bool]:
    """Arrow type and nullability of a ``CatalogWideRow`` annotation.

    An annotation this does not know raises, so a new field in ``rows.py`` with a new shape
    is noticed by the tests instead of being written as something arbitrary.
    """
    import pyarrow as pa  # noqa: PLC0415 - optional dependency, loaded for Parquet only

    nullable = False
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        args = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        nullable = len(args) < len(typing.get_args(hint))
        if len(args) != 1:
            raise TypeError(f"no Arrow type for {hint!r}")
        hint = args[0]
    scalars = {str: pa.string(), int: pa.int64(), float: pa.float64(), bool: pa.bool_()}
    if hint in scalars:
        return scalars[hint], nullable
    if typing.get_origin(hint) is list:
        (item,) = typing.get_args(hint)
        item_type, _ = _arrow_type(item)
        return pa.list_(item_type), nullable
    raise TypeError(f"no Arrow type for {hint!r}")


def parquet_schema() -> pa.Schema:
    """The Parquet schema of the wide file: ``CatalogWideRow``'s fields, in order."""
    import pyarrow as pa  # noqa: PLC0415 - optional dependency, loaded for Parquet only

    hints = typing.get_type_hints(CatalogWideRow)
    columns = []
    for field in fields(CatalogWideRow):
        if field.name in JSON_COLUMNS:
            columns.append(pa.field(field.name, pa.string(), nullable=False))
            continue
        arrow_type, nullable = _arrow_type(hints[field.name])
        columns.append(pa.field(field.name, arrow_type, nullable=nullable))
    return pa.schema(columns)


def _parquet_row(row: dict[str, Any], schema: pa.Schema, number: int) -> dict[str, Any]:
    extra = [key for key in row if schema.get_field_index(key) < 0]
    if extra:
        raise ValueError(f"row {number}: keys not in CatalogWideRow: {', '.join(extra)}")
    return {name: _json(row[name]) if name in JSON_COLUMNS and name in row else row.get(name)
            for name in schema.names}


def _check_required(table: pa.Table, where: str) -> None:
    # Arrow accepts nulls in a "not null" field without a word (even Table.validate does);
    # the Parquet file would then claim a required column that has gaps.
    for field, column in zip(table.schema, table.columns, strict=True):
        if not field.nullable and column.null_count:
            raise ValueError(f"{where}: {field.name} is null in {column.null_count} rows")


def _batches(jsonl_path: Path, size: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in _read_rows(jsonl_path):
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def write_parquet(jsonl_path: Path, parquet_path: Path) -> int:
    """``catalog_wide.parquet`` from ``catalog_wide.jsonl``; returns the number of rows.

    One row group per batch of ``PARQUET_BATCH_ROWS`` rows. The footer's ``created_by`` names
    the pyarrow version, so bytes are identical for the same input and pinned pyarrow; no
    timestamp or random value is written.
    """
    # pyarrow is optional (the Parquet copy only) and slow to import: load it on use.
    import pyarrow as pa  # noqa: PLC0415
    import pyarrow.parquet as pq  # noqa: PLC0415

    schema = parquet_schema()
    written = 0
    with pq.ParquetWriter(parquet_path, schema, compression=PARQUET_COMPRESSION,
                          write_statistics=True) as writer:
        for batch in _batches(jsonl_path, PARQUET_BATCH_ROWS):
            rows = [_parquet_row(row, schema, written + i) for i, row in enumerate(batch, 1)]
            where = f"{jsonl_path}: rows {written + 1}-{written + len(rows)}"
            try:
                table = pa.Table.from_pylist(rows, schema=schema)
            except (pa.ArrowException, ValueError, TypeError) as error:
                raise ValueError(f"{where}: {error}") from error
            _check_required(table, where)
            writer.write_table(table, row_group_size=PARQUET_BATCH_ROWS)
            written += len(rows)
    return written


# ---------------------------------------------------------------------------------- together
_WRITERS = {"csv": write_csv, "parquet": write_parquet}


def check_formats(formats: Iterable[str]) -> list[str]:
    """The asked copy formats, each once in the order asked; ValueError naming any unknown."""
    asked = list(dict.fromkeys(formats))
    unknown = [name for name in asked if name not in COPY_FORMATS]
    if unknown:
        raise ValueError(f"unknown copy format {', '.join(map(repr, unknown))}; allowed: "
                         f"{', '.join(COPY_FORMATS)}")
    return asked


def write_copies(directory: Path, formats: Iterable[str]) -> list[str]:
    """Write the asked copies of ``directory/catalog_wide.jsonl`` next to it; return names.

    Every format is checked before anything is written, so a typo does not leave half the
    copies behind. A format asked twice is written once.
    """
    asked = check_formats(formats)
    source = directory / WIDE_NAME
    names = []
    for name in asked:
        target = source.with_suffix(f".{name}")
        _WRITERS[name](source, target)
        names.append(target.name)
    return names
