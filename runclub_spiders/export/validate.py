"""Check an export directory against the brief's contract: ``scrapy validate-export DIR``.

Eleven named checks, each a :class:`Check`: the files are there, are clean UTF-8 JSON Lines,
their gzip twins hold the same bytes, every row matches its schema in ``schemas/``, the
manifest's hashes and totals are right, IDs are unique, and the acceptance criteria hold
(no track over 6 minutes, features and release years covered, the four files agree with each
other). The row files are streamed, never read whole: parsed once, line by line; then read
beside their ``.gz`` twins by the gzip check, which hashes them on the way, so the hash check
reads only the other files (and a ``.jsonl`` whose twin differs). Each schema is loaded once,
as a jsonschema validator and as fastjsonschema's compiled one (see "Schemas" below), so an
export of 40,000 tracks validates in about three seconds, not fifty.

A check's detail names the file, the line and the problem: the first few examples and how
many more, because one systematic bug would otherwise print 40,000 lines.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import re
import sys
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TextIO

import fastjsonschema
import orjson
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, best_match
from scrapy.commands import ScrapyCommand
from scrapy.exceptions import UsageError

from runclub_spiders.export.feeds import DATA_FILES, MANIFEST
from runclub_spiders.utils.files import sha256_file

SCHEMAS_DIR = Path(__file__).resolve().parents[2] / "schemas"

WIDE = "catalog_wide.jsonl"
TRACKS = "cached_tracks.jsonl"
FEATURES = "audio_features.jsonl"
ARTISTS = "cached_artists.jsonl"
ROW_FILES = (WIDE, TRACKS, FEATURES, ARTISTS)
REQUIRED_FILES = (*DATA_FILES, MANIFEST)        # what the exporter writes, less its reports

# The brief's acceptance criteria.
MAX_DURATION_MS = 360_000          # "no tracks > 6 minutes"
MIN_FEATURES_SHARE = 0.95          # ">= 95% of exported tracks have ReccoBeats features"
MIN_YEAR_SHARE = 0.90              # ">= 90% tracks have albumReleaseYear and a derived decade"

EXAMPLES = 3                       # problems quoted per check; the rest are counted
MESSAGE_CHARS = 120                # schema messages quote the offending value: keep them short
CHUNK = 1 << 20
BOM = b"\xef\xbb\xbf"

FILES_PRESENT = "files present"
ENCODING = "encoding"
GZIP = "gzip"
SCHEMA = "schema"
HASHES = "hashes"
UNIQUE_IDS = "unique IDs"
DURATION = "duration"
FEATURES_COVERAGE = "features coverage"
YEARS = "release year and decade"
TOTALS = "totals"
CONSISTENCY = "consistency"
CHECK_NAMES = (FILES_PRESENT, ENCODING, GZIP, SCHEMA, HASHES, UNIQUE_IDS, DURATION,
               FEATURES_COVERAGE, YEARS, TOTALS, CONSISTENCY)

# The brief's splitter mapping (catalog_wide key -> cached_tracks key), less the join key
# spotify_track_id -> id; "[0]" takes the primary artist.
SPLITTER_FIELDS = (
    ("name", "name"),
    ("artist_ids[0]", "artistId"),
    ("artist_names[0]", "artistName"),
    ("duration_ms", "durationMs"),
    ("album_name", "albumName"),
    ("album_release_year", "albumReleaseYear"),
    ("popularity_snapshot", "popularity"),
    ("explicit", "explicit"),
)
_MISSING = object()                # a key the row lacks: the schema check reports it, not others


@dataclass(slots=True)
class Check:
    name: str
    ok: bool
    detail: str


class InputError(Exception):
    """Nothing to validate (no directory, no manifest, no schemas): one line saying what to do."""


@dataclass(slots=True)
class Findings:
    """Problems of one check: the first few verbatim, the rest only counted."""

    examples: list[str] = field(default_factory=list)
    count: int = 0

    def add(self, problem: str) -> None:
        self.count += 1
        if len(self.examples) < EXAMPLES:
            self.examples.append(problem)

    def summary(self) -> str:
        more = self.count - len(self.examples)
        return "; ".join(self.examples) + (f" (+{more} more)" if more else "")

    def check(self, name: str, ok_detail: str) -> Check:
        return Check(name, False, self.summary()) if self.count else Check(name, True, ok_detail)


def _short(text: str, limit: int = MESSAGE_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


# -- Schemas. jsonschema walks a wide row in about 0.8 ms: the rows of a 40,000-track export
# would take some 50 s. fastjsonschema compiles each schema to Python and takes about 2 s for
# them, so it says "valid"; jsonschema explains the rows it rejects, and has the last word on
# them. fastjsonschema implements draft 7 and reads a few things otherwise; schemas/ is draft
# 2020-12. So each schema is first rewritten (_draft_7) into one fastjsonschema reads as
# jsonschema reads the original: prefixItems, a $ref beside other keywords, a pattern's final
# "$", multipleOf on huge floats. A schema that uses more than that gets no fast test, and
# jsonschema checks each of its rows itself: slower, never wrong.

Test = Callable[[Any], bool]

# Keywords without a verdict. format among them: jsonschema asserts formats only when it is
# given a format checker (fastjsonschema is told not to assert them either), and the patterns
# next to each format say what is enforced.
_ANNOTATIONS = frozenset({"$schema", "$comment", "$defs", "title", "description", "format",
                          "default", "examples", "deprecated", "readOnly", "writeOnly"})
# Keywords fastjsonschema reads as draft 2020-12 does, once rewritten by _draft_7.
_KEYWORDS = frozenset({
    "$ref", "type", "enum", "const", "pattern", "minLength", "maxLength", "minimum", "maximum",
    "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "prefixItems", "items", "minItems",
    "maxItems", "properties", "required", "additionalProperties", "propertyNames", "allOf",
    "anyOf", "oneOf", "not", "if", "then", "else"})
_SUBSCHEMA = ("items", "not", "if", "then", "else", "additionalProperties", "propertyNames")
_SUBSCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
_SUBSCHEMA_MAPS = ("properties", "$defs")
_LOCAL_REF = re.compile(r"#(/\$defs/[^/~%]+)?")     # what the rewrite keeps pointing right
_END = r"(?=\n?\Z)"                   # Python's "$": the end, or before a final newline
_EXACT = 2 ** 53                        # floats hold every integer below it


class _UnsupportedError(Exception):
    """A schema fastjsonschema would read otherwise: jsonschema then checks every row."""


def _pattern(pattern: str) -> str:
    """``pattern`` as jsonschema reads it, for fastjsonschema, which reads each "$" as "\\Z"."""
    body = pattern[:-1]
    if pattern.endswith("$") and (len(body) - len(body.rstrip("\\"))) % 2 == 0:
        pattern = body + _END
    if "$" in pattern:
        raise _UnsupportedError(f"pattern {pattern!r}: a $ other than a final anchor")
    return pattern


def _draft_7(schema: Any, root: bool = False, exact: bool = False) -> Any:
    """``schema`` (draft 2020-12, keywords in ``_KEYWORDS``) in draft 7, with the same verdicts.

    Where ``exact`` (under not, if and oneOf, where rejecting more can accept more, and in
    $defs) the draft 7 schema must reject what jsonschema rejects and no more; elsewhere it
    may reject more, since jsonschema has the last word on what the fast test rejects.
    """
    if isinstance(schema, bool):
        return schema
    if not isinstance(schema, dict):
        raise _UnsupportedError(f"schema {schema!r}")
    unknown = schema.keys() - _ANNOTATIONS - _KEYWORDS - ({"$id"} if root else set())
    if unknown:
        raise _UnsupportedError(", ".join(sorted(unknown)))
    step = schema.get("multipleOf", 1)
    if type(step) is not int or not 0 < step < _EXACT:     # float steps: the two round otherwise
        raise _UnsupportedError(f"multipleOf {step!r}")
    if "$ref" in schema and not _LOCAL_REF.fullmatch(schema["$ref"]):
        raise _UnsupportedError(f"$ref {schema['$ref']}")
    if exact and schema.get("$ref") == "#":             # the root is not rewritten exact
        raise _UnsupportedError("$ref # under not, if, oneOf or in $defs")
    draft7 = dict(schema)
    for key in _SUBSCHEMA:
        if key in draft7:
            draft7[key] = _draft_7(draft7[key], exact=exact or key in ("not", "if"))
    for key in _SUBSCHEMA_LISTS:
        if key in draft7:
            draft7[key] = [_draft_7(each, exact=exact or key == "oneOf") for each in draft7[key]]
    for key in _SUBSCHEMA_MAPS:             # a $defs entry may be used anywhere: exact
        if key in draft7:
            draft7[key] = {name: _draft_7(each, exact=exact or key == "$defs")
                           for name, each in draft7[key].items()}
    if "pattern" in draft7:
        draft7["pattern"] = _pattern(draft7["pattern"])
    if "prefixItems" in draft7:             # draft 7 spells prefixItems + items this way
        draft7["additionalItems"] = draft7.pop("items", True)
        draft7["items"] = draft7.pop("prefixItems")
    if "multipleOf" in draft7:
        # fastjsonschema divides a float by the step where jsonschema takes the remainder: the
        # two agree below 2**53 (1e23 is no multiple of 5, but 1e23 / 5 is 2e22). A multiple of
        # an integer is an integer, so this rejects no more than jsonschema below 2**53 and
        # leaves the larger numbers to it: where that cannot be exact, no fast test.
        if exact:
            raise _UnsupportedError("multipleOf under not, if, oneOf or in $defs")
        draft7["allOf"] = [*draft7.get("allOf", []), {"if": {"type": "number"}, "then": {
            "type": "integer", "exclusiveMinimum": -_EXACT, "exclusiveMaximum": _EXACT}}]
    if "$ref" in draft7 and draft7.keys() - _ANNOTATIONS - {"$ref"}:
        # Draft 7 ignores the keywords beside a $ref; 2020-12 applies them too.
        draft7["allOf"] = [*draft7.get("allOf", []), {"$ref": draft7.pop("$ref")}]
    return draft7


def compile_schema(schema: dict[str, Any]) -> Test | None:
    """fastjsonschema's validator of ``schema`` as a test that says whether a row is valid, or
    None when ``schema`` uses more than :func:`_draft_7` rewrites."""
    try:
        validate = fastjsonschema.compile(
            _draft_7(schema, root=True), use_default=False,      # never write defaults into rows
            use_formats=False)          # detailed_exceptions=False breaks on const (2.22.3)
    except (_UnsupportedError, fastjsonschema.JsonSchemaDefinitionException, re.error):
        return None

    def test(instance: Any) -> bool:
        try:
            validate(instance)
        except fastjsonschema.JsonSchemaValueException:
            return False
        return True
    return test


@dataclass(slots=True)
class Schema:
    """One schema file: fastjsonschema says "valid" fast, jsonschema says why not."""

    validator: Draft202012Validator
    fast: Test | None

    def problem(self, instance: Any) -> str | None:
        """The most relevant error as "JSON path: message", or None when valid."""
        if self.fast is not None and self.fast(instance):
            return None
        error = best_match(self.validator.iter_errors(instance))
        return None if error is None else f"{error.json_path}: {_short(error.message)}"

    def problems(self, instance: Any) -> Iterator[str]:
        for error in self.validator.iter_errors(instance):
            yield f"{error.json_path}: {_short(error.message)}"


def load_schemas(schemas_dir: Path) -> dict[str, Schema]:
    """One checker per schema, keyed by file name: ``cached_tracks.jsonl``, ``manifest.json``."""
    schemas = {}
    for name in (*ROW_FILES, MANIFEST):
        path = schemas_dir / f"{name.rsplit('.', 1)[0]}.schema.json"
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            Draft202012Validator.check_schema(document)
        except (OSError, ValueError, SchemaError) as exc:
            raise InputError(f"cannot use schema {path} ({_short(str(exc).splitlines()[0])}): "
                             f"pass --schemas DIR pointing at the project's schemas/ "
                             f"folder") from None
        schemas[name] = Schema(Draft202012Validator(document), compile_schema(document))
    return schemas


def read_rows(path: Path, problems: Findings) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) per line of a JSONL file; encoding problems go to ``problems``.

    A BOM or a missing final newline is reported but the row is still read, so that only the
    encoding check fails for it, not the totals and the coverage too.
    """
    name = path.name
    with path.open("rb") as lines:
        for number, raw in enumerate(lines, 1):
            line = raw
            if number == 1 and line.startswith(BOM):
                problems.add(f"{name}:1: starts with a UTF-8 BOM")
                line = line[len(BOM):]
            if line.endswith(b"\n"):
                line = line[:-1]
            else:
                problems.add(f"{name}:{number}: the last line does not end with a newline")
            row = _parse_line(name, number, line, problems)
            if row is not None:
                yield number, row


def _parse_line(name: str, number: int, line: bytes, problems: Findings) -> dict | None:
    if not line.strip():
        problems.add(f"{name}:{number}: blank line")
        return None
    try:
        line.decode("utf-8")                    # orjson checks too, but says less
    except UnicodeDecodeError as exc:
        problems.add(f"{name}:{number}: not UTF-8 ({exc.reason} at byte {exc.start})")
        return None
    try:
        row = orjson.loads(line)                # 2x json's speed; NaN and Infinity refused
    except orjson.JSONDecodeError as exc:
        problems.add(f"{name}:{number}: not one JSON value ({exc.msg} at column {exc.colno})")
        return None
    if not isinstance(row, dict):
        problems.add(f"{name}:{number}: a JSON {type(row).__name__}, not an object")
        return None
    return row


def _wide_value(row: dict[str, Any], key: str) -> Any:
    if not key.endswith("[0]"):
        return row.get(key, _MISSING)
    values = row.get(key[:-3])
    return values[0] if isinstance(values, list) and values else _MISSING


class _Scan:
    """One pass over the four row files, collecting what the row-level checks need.

    Files are read referenced-first (artists, tracks, wide, features), so each reference is
    checked the moment it is read and only IDs and the splitter fields stay in memory.
    """

    def __init__(self, directory: Path, schemas: dict[str, Schema]) -> None:
        self.directory = directory
        self.schemas = schemas
        self.findings = {name: Findings() for name in
                         (ENCODING, SCHEMA, UNIQUE_IDS, DURATION, CONSISTENCY)}
        self.rows: Counter[str] = Counter()
        self.seen: defaultdict[tuple[str, str], dict[str, int]] = defaultdict(dict)
        self.artists: set[str] = set()
        self.tracks: dict[str, tuple[int, tuple[Any, ...]]] = {}   # id -> line, splitter fields
        self.wide_ids: set[str] = set()
        self.with_tempo: set[str] = set()
        self.undated = Findings()
        self.cells: Counter[tuple[str, str]] = Counter()

    def run(self) -> _Scan:
        handlers: dict[str, Callable[[int, dict[str, Any]], None]] = {
            ARTISTS: self._artist, TRACKS: self._track, WIDE: self._wide, FEATURES: self._feature}
        for name, handle in handlers.items():
            path = self.directory / name
            if not path.is_file():
                continue                    # "files present" reports it
            schema = self.schemas[name]
            for number, row in read_rows(path, self.findings[ENCODING]):
                self.rows[name] += 1
                problem = schema.problem(row)
                if problem:
                    self.findings[SCHEMA].add(f"{name}:{number}: {problem}")
                handle(number, row)
        self._unpaired_tracks()
        return self

    def _unique(self, name: str, key: str, value: Any, number: int) -> None:
        if not isinstance(value, str):
            return                          # null or mistyped: not an ID to compare
        first = self.seen[name, key].setdefault(value, number)
        if first != number:
            self.findings[UNIQUE_IDS].add(f"{name}:{number}: {key} {value} repeats line {first}")

    def _duration(self, name: str, number: int, key: str, value: Any) -> None:
        if type(value) is int and value > MAX_DURATION_MS:
            minutes, seconds = divmod(round(value / 1000), 60)
            self.findings[DURATION].add(f"{name}:{number}: {key} {value} ({minutes}:{seconds:02d})"
                                        f" is over {MAX_DURATION_MS}")

    def _artist_ref(self, name: str, number: int, key: str, value: Any) -> None:
        if isinstance(value, str) and value not in self.artists:
            self.findings[CONSISTENCY].add(f"{name}:{number}: {key} {value} is not in {ARTISTS}")

    def _artist(self, number: int, row: dict[str, Any]) -> None:
        self._unique(ARTISTS, "id", row.get("id"), number)
        if isinstance(row.get("id"), str):
            self.artists.add(row["id"])

    def _track(self, number: int, row: dict[str, Any]) -> None:
        track_id = row.get("id")
        self._unique(TRACKS, "id", track_id, number)
        self._duration(TRACKS, number, "durationMs", row.get("durationMs"))
        self._artist_ref(TRACKS, number, "artistId", row.get("artistId"))
        if row.get("albumReleaseYear") is None or row.get("_decade") is None:
            self.undated.add(f"{TRACKS}:{number}")
        if isinstance(track_id, str) and track_id not in self.tracks:
            fields = tuple(row.get(key, _MISSING) for _, key in SPLITTER_FIELDS)
            self.tracks[track_id] = (number, fields)

    def _wide(self, number: int, row: dict[str, Any]) -> None:
        for key in ("id", "spotify_track_id", "isrc"):
            self._unique(WIDE, key, row.get(key), number)
        self._duration(WIDE, number, "duration_ms", row.get("duration_ms"))
        artist_ids = row.get("artist_ids")
        for artist_id in artist_ids if isinstance(artist_ids, list) else ():
            self._artist_ref(WIDE, number, "artist_ids", artist_id)
        self._count_cell(row)
        self._pair(number, row)

    def _count_cell(self, row: dict[str, Any]) -> None:
        extra = row.get("_extra")
        umbrellas = extra.get("umbrellas") if isinstance(extra, dict) else None
        decade = row.get("album_decade_label")
        if isinstance(umbrellas, list) and umbrellas and isinstance(decade, str):
            self.cells[str(umbrellas[0]), decade] += 1

    def _pair(self, number: int, row: dict[str, Any]) -> None:
        """The wide row against its cached_tracks row, field by splitter field."""
        track_id = row.get("spotify_track_id")
        if not isinstance(track_id, str):
            return
        self.wide_ids.add(track_id)
        if track_id not in self.tracks:
            self.findings[CONSISTENCY].add(
                f"{WIDE}:{number}: spotify_track_id {track_id} is not in {TRACKS}")
            return
        line, fields = self.tracks[track_id]
        for (wide_key, track_key), theirs in zip(SPLITTER_FIELDS, fields, strict=True):
            ours = _wide_value(row, wide_key)
            if _MISSING not in (ours, theirs) and ours != theirs:
                self.findings[CONSISTENCY].add(
                    f"{WIDE}:{number}: {wide_key} {_short(repr(ours), 40)} but {TRACKS}:{line} "
                    f"{track_key} {_short(repr(theirs), 40)}")

    def _feature(self, number: int, row: dict[str, Any]) -> None:
        track_id = row.get("trackId")
        self._unique(FEATURES, "trackId", track_id, number)
        if not isinstance(track_id, str):
            return
        if track_id not in self.tracks:
            self.findings[CONSISTENCY].add(
                f"{FEATURES}:{number}: trackId {track_id} is not in {TRACKS}")
        elif row.get("tempo") is not None:
            self.with_tempo.add(track_id)

    def _unpaired_tracks(self) -> None:
        if not (self.directory / WIDE).is_file():
            return
        for track_id, (line, _) in self.tracks.items():
            if track_id not in self.wide_ids:
                self.findings[CONSISTENCY].add(f"{TRACKS}:{line}: id {track_id} has no {WIDE} row")


def _load_manifest(directory: Path) -> tuple[dict[str, Any], str | None]:
    """The manifest and, when it is unusable, why (the other checks then see ``{}``)."""
    try:
        manifest = orjson.loads((directory / MANIFEST).read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        return {}, f"unreadable ({_short(str(exc))})"
    if not isinstance(manifest, dict):
        return {}, f"a JSON {type(manifest).__name__}, not an object"
    return manifest, None


def _first_difference(want: bytes, got: bytes) -> int:
    pairs = zip(want, got, strict=False)        # unequal lengths: the shorter one ends first
    return next((i for i, (a, b) in enumerate(pairs) if a != b), min(len(want), len(got)))


def _gzip_difference(plain: Path, packed: Path, digest: Any = None) -> str | None:
    """Where ``packed`` decompresses to other bytes than ``plain``, or None. ``digest`` (a
    hashlib object) is fed ``plain``'s bytes as they are read: all of them when None is
    returned."""
    try:
        with plain.open("rb") as expected, gzip.open(packed, "rb") as actual:
            offset = 0
            while True:
                want, got = expected.read(CHUNK), actual.read(CHUNK)
                if digest is not None:
                    digest.update(want)
                if want != got:
                    at = offset + _first_difference(want, got)
                    return (f"{packed.name} decompresses to other bytes than {plain.name} "
                            f"(from byte {at})")
                if not want:
                    return None
                offset += len(want)
    except (OSError, EOFError, zlib.error) as exc:
        return f"{packed.name}: not a readable gzip file ({_short(str(exc), 60)})"


def check_files_present(directory: Path) -> Check:
    missing = [name for name in REQUIRED_FILES if not (directory / name).is_file()]
    if missing:
        return Check(FILES_PRESENT, False, f"missing {', '.join(missing)}")
    return Check(FILES_PRESENT, True, f"all {len(REQUIRED_FILES)} files present")


def check_gzip(directory: Path, plain_hashes: dict[str, str] | None = None) -> Check:
    """Each .jsonl.gz against its .jsonl; the sha256 of each .jsonl read whole goes into
    ``plain_hashes``, for :func:`check_hashes`."""
    problems = Findings()
    for name in ROW_FILES:
        plain, packed = directory / name, directory / f"{name}.gz"
        if plain.is_file() and packed.is_file():
            digest = hashlib.sha256()
            difference = _gzip_difference(plain, packed, digest)
            if difference:
                problems.add(difference)
            elif plain_hashes is not None:
                plain_hashes[name] = digest.hexdigest()
    return problems.check(GZIP, "each .jsonl.gz decompresses to its .jsonl")


def check_schema(scan: _Scan, manifest: dict[str, Any], manifest_problem: str | None) -> Check:
    problems = scan.findings[SCHEMA]
    if manifest_problem:
        problems.add(f"{MANIFEST}: {manifest_problem}")
    else:
        for problem in scan.schemas[MANIFEST].problems(manifest):
            problems.add(f"{MANIFEST}: {problem}")
    rows = sum(scan.rows.values())
    return problems.check(SCHEMA, f"{rows} rows and {MANIFEST} match their schemas")


def check_hashes(directory: Path, manifest: dict[str, Any],
                 known: Mapping[str, str] | None = None) -> Check:
    """Every file's sha256 against ``fileHashes``; ``known`` holds hashes already computed
    (by :func:`check_gzip`), so those files are not read again."""
    known = known or {}
    hashes = manifest.get("fileHashes")
    if not isinstance(hashes, dict):
        return Check(HASHES, False, f"{MANIFEST} has no fileHashes object")
    problems = Findings()
    for name, expected in hashes.items():
        path = directory / name
        if Path(name).name != name or name in (".", ".."):
            problems.add(f"{MANIFEST} fileHashes lists {name!r}, which is not a file name")
        elif not path.is_file():
            problems.add(f"{name}: listed in {MANIFEST} fileHashes but missing")
        elif (actual := known.get(name) or sha256_file(path)) != expected:
            problems.add(f"{name}: sha256 is {actual[:12]}..., {MANIFEST} says "
                         f"{_short(str(expected), 15)}")
    for path in sorted(directory.iterdir()):
        listed = path.name in hashes or path.name == MANIFEST or path.name.startswith(".")
        if not listed and path.is_file():
            problems.add(f"{path.name}: not listed in {MANIFEST} fileHashes")
    return problems.check(HASHES, f"{len(hashes)} files match {MANIFEST} fileHashes")


def check_unique(scan: _Scan) -> Check:
    isrcs = len(scan.seen[WIDE, "isrc"])
    return scan.findings[UNIQUE_IDS].check(
        UNIQUE_IDS, f"no ID repeated in its file; {isrcs} ISRCs in {WIDE}, none repeated")


def check_duration(scan: _Scan) -> Check:
    return scan.findings[DURATION].check(
        DURATION, f"no track over {MAX_DURATION_MS} ms in {TRACKS} or {WIDE}")


def _share(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}% ({part}/{whole})"


def check_features_coverage(scan: _Scan) -> Check:
    tracks = len(scan.tracks)
    if not tracks:
        return Check(FEATURES_COVERAGE, False, f"{TRACKS} has no rows to measure")
    covered = len(scan.with_tempo)
    detail = (f"{_share(covered, tracks)} of {TRACKS} ids have a tempo in {FEATURES} "
              f"(need >= {MIN_FEATURES_SHARE:.0%})")
    if covered >= MIN_FEATURES_SHARE * tracks:
        return Check(FEATURES_COVERAGE, True, detail)
    missing = [f"{TRACKS}:{line}" for track_id, (line, _) in scan.tracks.items()
               if track_id not in scan.with_tempo]
    return Check(FEATURES_COVERAGE, False, f"{detail}; without: {', '.join(missing[:EXAMPLES])}")


def check_years(scan: _Scan) -> Check:
    rows = scan.rows[TRACKS]
    if not rows:
        return Check(YEARS, False, f"{TRACKS} has no rows to measure")
    dated = rows - scan.undated.count
    detail = (f"{_share(dated, rows)} of {TRACKS} rows have albumReleaseYear and _decade "
              f"(need >= {MIN_YEAR_SHARE:.0%})")
    if dated >= MIN_YEAR_SHARE * rows:
        return Check(YEARS, True, detail)
    return Check(YEARS, False, f"{detail}; without: {', '.join(scan.undated.examples)}")


def _declared_cells(by_cell: Any) -> dict[tuple[str, str], Any]:
    if not isinstance(by_cell, dict):
        return {}
    return {(str(umbrella), str(decade)): count
            for umbrella, decades in by_cell.items() if isinstance(decades, dict)
            for decade, count in decades.items() if count != 0}


def check_totals(scan: _Scan, manifest: dict[str, Any]) -> Check:
    totals = manifest.get("totals")
    if not isinstance(totals, dict):
        return Check(TOTALS, False, f"{MANIFEST} has no totals object")
    problems = Findings()
    for key, names in (("tracks", (TRACKS, WIDE)), ("artists", (ARTISTS,)),
                       ("audioFeatures", (FEATURES,))):
        for name in names:
            if totals.get(key) != scan.rows[name]:
                problems.add(f"{MANIFEST} totals.{key} is {totals.get(key)} but {name} has "
                             f"{scan.rows[name]} rows")
    declared = _declared_cells(totals.get("byUmbrellaAndDecade"))
    for umbrella, decade in sorted(declared.keys() | scan.cells.keys()):
        said, counted = declared.get((umbrella, decade), 0), scan.cells[umbrella, decade]
        if said != counted:
            problems.add(f"{MANIFEST} totals.byUmbrellaAndDecade[{umbrella}][{decade}] is "
                         f"{said} but {WIDE} has {counted}")
    return problems.check(TOTALS, f"{MANIFEST} totals match the files "
                                  f"({scan.rows[TRACKS]} tracks, {len(scan.cells)} cells)")


def check_consistency(scan: _Scan) -> Check:
    return scan.findings[CONSISTENCY].check(
        CONSISTENCY, f"{WIDE}, {FEATURES} and {ARTISTS} agree with {TRACKS}")


def _require_export(directory: Path) -> None:
    if not directory.exists():
        raise InputError(f"{directory} does not exist: pass the directory the export wrote "
                         f"(the one holding {MANIFEST})")
    if not directory.is_dir():
        raise InputError(f"{directory} is not a directory: pass the export's directory, not "
                         f"one of its files")
    if not (directory / MANIFEST).is_file():
        raise InputError(f"{directory} has no {MANIFEST}, so it is no finished export: pass "
                         f"the export's directory, or run the export (again)")


def validate_export(directory: Path, *, schemas_dir: Path | None = None) -> list[Check]:
    """Every check of ``directory``, in ``CHECK_NAMES`` order; InputError if there is none."""
    directory = Path(directory)
    _require_export(directory)
    schemas = load_schemas(schemas_dir or SCHEMAS_DIR)
    manifest, manifest_problem = _load_manifest(directory)
    scan = _Scan(directory, schemas).run()
    plain_hashes: dict[str, str] = {}
    return [
        check_files_present(directory),
        scan.findings[ENCODING].check(ENCODING, "UTF-8 JSON Lines: one object per line, no BOM"),
        check_gzip(directory, plain_hashes),
        check_schema(scan, manifest, manifest_problem),
        check_hashes(directory, manifest, plain_hashes),
        check_unique(scan),
        check_duration(scan),
        check_features_coverage(scan),
        check_years(scan),
        check_totals(scan, manifest),
        check_consistency(scan),
    ]


def format_check(check: Check) -> str:
    return f"{'ok' if check.ok else 'FAIL':<6}{check.name}: {check.detail}"


def run(directory: Path, *, schemas_dir: Path | None = None, out: TextIO | None = None,
        err: TextIO | None = None) -> int:
    """Print one line per check and a summary; the exit code: 0 all pass, 1 some fail, 2 no
    export to check."""
    out, err = out or sys.stdout, err or sys.stderr
    try:
        checks = validate_export(directory, schemas_dir=schemas_dir)
    except InputError as exc:
        print(f"error: {exc}", file=err)
        return 2
    for check in checks:
        print(format_check(check), file=out)
    failed = [check.name for check in checks if not check.ok]
    if failed:
        print(f"{directory}: {len(failed)} of {len(checks)} checks failed: {', '.join(failed)}",
              file=out)
        return 1
    print(f"{directory}: all {len(checks)} checks passed", file=out)
    return 0


def _add_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    parser.add_argument("--schemas", metavar="DIR", type=Path,
                        help=f"the JSON Schemas to check rows against [default {SCHEMAS_DIR}]")


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m runclub_spiders.export.validate DIR``, the same as the Scrapy command."""
    parser = argparse.ArgumentParser(prog="validate-export", description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path, help="the export directory")
    _add_arguments(parser)
    args = parser.parse_args(argv)
    return run(args.directory, schemas_dir=args.schemas)


class Command(ScrapyCommand):
    # Validating files needs no project settings and no crawler.
    requires_project = False
    requires_crawler_process = False
    default_settings: ClassVar[dict[str, Any]] = {"LOG_ENABLED": False}

    def syntax(self) -> str:
        return "DIR [options]"

    def short_desc(self) -> str:
        return "Check an export directory: files, schemas, hashes, totals, acceptance criteria"

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        _add_arguments(parser.add_argument_group("Validate"))

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        if len(args) != 1:
            raise UsageError("give exactly one export directory")
        self.exitcode = run(Path(args[0]), schemas_dir=opts.schemas)


if __name__ == "__main__":
    sys.exit(main())
