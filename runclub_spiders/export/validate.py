"""Check an export directory against the brief's contract: ``scrapy validate-export DIR``.

Eleven named checks, each a :class:`Check`: the files are there, are clean UTF-8 JSON Lines,
their gzip twins hold the same bytes, every row matches its schema in ``schemas/``, the
manifest's hashes and totals are right, IDs are unique, and the acceptance criteria hold
(no track over 6 minutes, features and release years covered, the four files agree with each
other). The row files are streamed, never read whole: parsed once, line by line; then read
beside their ``.gz`` twins by the gzip check, which hashes them on the way, so the hash check
reads only the other files (and a ``.jsonl`` whose twin differs). Each schema is loaded once,
as a jsonschema validator and as compiled plain-Python tests with the same verdict (see
"Schemas" below), so an export of 40,000 tracks validates in about three seconds, not forty.

A check's detail names the file, the line and the problem: the first few examples and how
many more, because one systematic bug would otherwise print 40,000 lines.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import operator
import re
import sys
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TextIO

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


# -- Schemas. jsonschema walks a wide row in about half a millisecond: 40,000 rows would take
# half a minute. So each schema is also compiled into plain-Python tests that give jsonschema's
# verdict for the keywords schemas/ uses; jsonschema only explains the rows they reject.

Test = Callable[[Any], bool]

# Keywords without a verdict. format among them: jsonschema asserts formats only when it is
# given a format checker, and the patterns next to each format say what is enforced.
_ANNOTATIONS = frozenset({"$schema", "$comment", "$defs", "title", "description", "format",
                          "default", "examples", "deprecated", "readOnly", "writeOnly"})
_COMPILED = frozenset({
    "$ref", "type", "enum", "const", "pattern", "minLength", "maxLength", "minimum", "maximum",
    "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "prefixItems", "items", "minItems",
    "maxItems", "properties", "required", "additionalProperties", "propertyNames", "allOf",
    "anyOf", "oneOf", "not", "if", "then", "else"})


class _UnsupportedError(Exception):
    """A schema feature the compiled tests lack: jsonschema then checks every row itself."""


def _always(value: Any) -> bool:
    return True


def _never(value: Any) -> bool:
    return False


# The tests take JSON as a decoder makes it (exact str, int, float, bool, None, list, dict), so
# type() is enough; bool is its own type, so it is never an integer or a number, as in JSON Schema.
_PYTHON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,), "integer": (int,), "number": (int, float), "boolean": (bool,),
    "null": (type(None),), "array": (list,), "object": (dict,)}


def _is_number(value: Any) -> bool:
    return type(value) in (int, float)


def _is_integer(value: Any) -> bool:
    # As jsonschema has it from draft 6 on: 1.0 is an integer too.
    return type(value) is int or (type(value) is float and value.is_integer())


def _type_test(names: list[str]) -> Test:
    if not set(names) <= _PYTHON_TYPES.keys():
        raise _UnsupportedError(f"type {names}")
    exact = frozenset(kind for name in names for kind in _PYTHON_TYPES[name])
    if "integer" in names and "number" not in names:
        return lambda value: type(value) in exact or _is_integer(value)
    return lambda value: type(value) in exact


def _all(tests: list[Test]) -> Test:
    if not tests:
        return _always
    if len(tests) == 1:
        return tests[0]

    def test(value: Any) -> bool:
        for each in tests:                      # noqa: SIM110 -- all() over a generator is slower
            if not each(value):
                return False
        return True
    return test


def _equals(constant: Any) -> Test:
    """jsonschema's enum/const equality for scalars: True is not 1, 1 is 1.0, strings exact."""
    if constant is None or isinstance(constant, bool):
        return lambda value: value is constant
    if isinstance(constant, str):
        return lambda value: type(value) is str and value == constant
    if _is_number(constant):
        return lambda value: _is_number(value) and value == constant
    raise _UnsupportedError(f"enum/const value {constant!r}")


def _enum_test(options: list[Any]) -> Test:
    if all(option is None or isinstance(option, str) for option in options):
        # The usual enum, strings and null: one set lookup.
        strings, null = frozenset(o for o in options if o is not None), None in options
        return lambda value: (value is None and null) or (type(value) is str and value in strings)
    tests = [_equals(option) for option in options]
    return lambda value: any(test(value) for test in tests)


class _Compiler:
    """One schema document to one test; a row the test accepts is valid."""

    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root
        self.refs: dict[str, Test | None] = {}    # None while compiling: a recursive $ref

    def compile(self, schema: Any) -> Test:
        if schema is True or schema is False:
            return _always if schema else _never
        if not isinstance(schema, dict):
            raise _UnsupportedError(f"schema {schema!r}")
        unknown = set(schema) - _ANNOTATIONS - _COMPILED - ({"$id"} if schema is self.root
                                                            else set())
        if unknown:
            raise _UnsupportedError(", ".join(sorted(unknown)))
        return _all([*self._ref(schema), *self._type(schema), *self._string(schema),
                     *self._number(schema), *self._array(schema), *self._object(schema),
                     *self._logic(schema)])

    def _ref(self, schema: dict[str, Any]) -> list[Test]:
        ref = schema.get("$ref")
        if ref is None:
            return []
        if ref not in self.refs:
            if not (ref == "#" or re.fullmatch(r"#/\$defs/[^/~%]+", ref)):
                raise _UnsupportedError(f"$ref {ref}")
            self.refs[ref] = None
            target = self.root if ref == "#" else self.root.get("$defs", {}).get(ref[8:])
            if target is None:
                raise _UnsupportedError(f"$ref {ref} points nowhere")
            self.refs[ref] = self.compile(target)
        test = self.refs[ref]
        if test is None:
            raise _UnsupportedError(f"recursive $ref {ref}")
        return [test]

    def _type(self, schema: dict[str, Any]) -> list[Test]:
        tests = []
        if "type" in schema:
            names = schema["type"]
            tests.append(_type_test(names if isinstance(names, list) else [names]))
        if "const" in schema:
            tests.append(_equals(schema["const"]))
        if "enum" in schema:
            tests.append(_enum_test(schema["enum"]))
        return tests

    def _string(self, schema: dict[str, Any]) -> list[Test]:
        tests = []
        if "pattern" in schema:
            search = re.compile(schema["pattern"]).search     # jsonschema uses re.search too
            tests.append(lambda value: type(value) is not str or search(value) is not None)
        low, high = schema.get("minLength", 0), schema.get("maxLength")
        if low or high is not None:
            tests.append(lambda value: type(value) is not str or (
                len(value) >= low and (high is None or len(value) <= high)))
        return tests

    def _number(self, schema: dict[str, Any]) -> list[Test]:
        bounds = [(schema.get(key), compare) for key, compare in (
            ("minimum", operator.ge), ("maximum", operator.le),
            ("exclusiveMinimum", operator.gt), ("exclusiveMaximum", operator.lt))]
        tests: list[Test] = [
            lambda value, bound=bound, compare=compare: (
                not _is_number(value) or compare(value, bound))
            for bound, compare in bounds if bound is not None]
        step = schema.get("multipleOf")
        if step is not None:
            if type(step) is not int:           # float steps: jsonschema rounds, this would not
                raise _UnsupportedError(f"multipleOf {step!r}")
            tests.append(lambda value: not _is_number(value) or not value % step)
        return tests

    def _array(self, schema: dict[str, Any]) -> list[Test]:
        keys = {"prefixItems", "items", "minItems", "maxItems"} & set(schema)
        if not keys:
            return []
        prefix = [self.compile(item) for item in schema.get("prefixItems", [])]
        rest = self.compile(schema["items"]) if "items" in schema else _always
        low, high = schema.get("minItems", 0), schema.get("maxItems")

        def test(value: Any) -> bool:
            if type(value) is not list:
                return True
            if len(value) < low or (high is not None and len(value) > high):
                return False
            for each, item in zip(prefix, value, strict=False):
                if not each(item):
                    return False
            return all(rest(item) for item in value[len(prefix):])
        return [test]

    def _object(self, schema: dict[str, Any]) -> list[Test]:
        keys = {"properties", "required", "additionalProperties", "propertyNames"} & set(schema)
        if not keys:
            return []
        properties = {key: self.compile(sub) for key, sub in schema.get("properties", {}).items()}
        required = tuple(schema.get("required", ()))
        additional = (self.compile(schema["additionalProperties"])
                      if "additionalProperties" in schema else _always)
        names = self.compile(schema["propertyNames"]) if "propertyNames" in schema else _always

        def test(value: Any) -> bool:
            if type(value) is not dict:
                return True
            for key in required:
                if key not in value:
                    return False
            for key, item in value.items():
                if not properties.get(key, additional)(item):
                    return False
            return names is _always or all(names(key) for key in value)
        return [test]

    def _logic(self, schema: dict[str, Any]) -> list[Test]:
        tests = [self.compile(sub) for sub in schema.get("allOf", [])]
        if "anyOf" in schema:
            anyof = [self.compile(sub) for sub in schema["anyOf"]]
            tests.append(lambda value: any(sub(value) for sub in anyof))
        if "oneOf" in schema:
            oneof = [self.compile(sub) for sub in schema["oneOf"]]
            tests.append(lambda value: sum(1 for sub in oneof if sub(value)) == 1)
        if "not" in schema:
            negated = self.compile(schema["not"])
            tests.append(lambda value: not negated(value))
        if "if" in schema:                      # then/else without if mean nothing
            condition = self.compile(schema["if"])
            then = self.compile(schema.get("then", True))
            otherwise = self.compile(schema.get("else", True))
            tests.append(lambda value: then(value) if condition(value) else otherwise(value))
        return tests


def compile_schema(schema: dict[str, Any]) -> Test | None:
    """A fast test with jsonschema's verdict, or None when the schema uses more keywords."""
    try:
        return _Compiler(schema).compile(schema)
    except _UnsupportedError:
        return None


@dataclass(slots=True)
class Schema:
    """One schema file: the compiled test says "valid" fast, jsonschema says why not."""

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
