"""The seed plan: every Spotify search discovery starts from, read from ``seeds/plan.yaml``.

The brief asks for a large, configurable set of search terms and playlist-name searches,
expanded across umbrellas and decades, deduplicated and capped per dimension, crawled in a
deterministic order. This module turns the user-editable plan into that list once, up front,
so the spider only iterates it and the manifest can report exactly what was planned.

Two kinds of seeds:

* free-text seeds (``SeedPlan.queries``): group templates expanded over keywords, decades and
  BPMs; normalised to lowercase with single spaces. "&", hyphens and apostrophes are kept as
  typed: playlist titles use them ("R&B Workout", "Hip-Hop Running") and Spotify's search
  tokenises them itself, whereas rewriting "r&b" to "r and b" would search for two
  one-letter words.
* cell-targeted field-filter seeds (``SeedPlan.cell_queries``): ``genre:"<genre>"
  year:<start>-<end>`` for an umbrella's representative genres in one decade, generated on
  demand so a thin cell can be asked for directly. The genre is quoted exactly as written in
  the umbrella file.

Every problem with either file is a one-line ``SeedError``: ``<file>: <key>: <what>``.
"""

from __future__ import annotations

import hashlib
import re
import string
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runclub_spiders.umbrellas import (
    SeedError,
    SeedFile,
    UmbrellaRules,
    describe,
    key_path,
    load_umbrellas,
)

__all__ = [
    "DECADES",
    "DECADE_YEARS",
    "KINDS",
    "SeedError",
    "SeedPlan",
    "SeedQuery",
    "load_plan",
]

DECADES: tuple[str, ...] = ("70s", "80s", "90s", "00s", "10s", "20s")
DECADE_YEARS: dict[str, tuple[int, int]] = {
    "70s": (1970, 1979), "80s": (1980, 1989), "90s": (1990, 1999),
    "00s": (2000, 2009), "10s": (2010, 2019), "20s": (2020, 2029),
}
KINDS = ("track", "playlist")
GROUP_KINDS = {"track": ("track",), "playlist": ("playlist",), "both": ("track", "playlist")}
CELL_FAMILY = "cell_genre"
GENRE_FILTER = re.compile(r'genre:"([^"]+)"')       # the genre of a field-filter query

PLAN_KEYS_REQUIRED = ("decades", "groups")
PLAN_KEYS_OPTIONAL = ("caps", "cell_queries")
CAP_KEYS = ("max_terms", "max_per_keyword", "max_per_decade")
DEFAULT_CAPS = {"max_terms": 300, "max_per_keyword": 12, "max_per_decade": 24}
CAP_LIMIT = 100_000
GROUP_KEYS = ("kind", "templates", "keywords", "bpms", *CAP_KEYS)
PLACEHOLDERS = ("keyword", "decade", "bpm")
CELL_PLACEHOLDERS = ("genre", "start", "end")
DEFAULT_CELL_TEMPLATE = 'genre:"{genre}" year:{start}-{end}'
DEFAULT_GENRES_PER_CELL = 4
BPM_RANGE = (100, 220)
GROUP_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class SeedQuery:
    """One search to send: text, search type, and the cell it aims at, if any."""

    family: str           # group name ("editorial", "cadence", ...) or "cell_genre"
    q: str                # the exact search string sent to Spotify
    kind: str             # "track" or "playlist"
    umbrella: str | None  # the umbrella the seed targets, if any
    decade: str | None    # the decade the seed targets, if any

    @property
    def search_types(self) -> str:
        """The search's ``type``: a cell query asks artists too, for the same one call
        (Spotify serves up to ``limit`` of each type): the artists its genre filter names
        are listed by the artists bucket (``frontier.expansion``)."""
        return "track,artist" if self.family == CELL_FAMILY and self.kind == "track" \
            else self.kind


@dataclass(frozen=True)
class SeedPlan:
    """The expanded plan: free-text seeds in crawl order plus what cell queries need."""

    queries: tuple[SeedQuery, ...]
    rules: UmbrellaRules
    decades: tuple[str, ...] = DECADES
    max_genres_per_cell: int = DEFAULT_GENRES_PER_CELL
    cell_template: str = DEFAULT_CELL_TEMPLATE
    sources: tuple[tuple[str, str], ...] = ()   # (file, sha256) of the plan and umbrella files

    def cells(self) -> tuple[tuple[str, str], ...]:
        """Every (umbrella, decade) cell: umbrellas in file order, decades in the app's."""
        return tuple((u, d) for u in self.rules.names() for d in self.decades)

    def cell_queries(self, umbrella: str, decade: str) -> tuple[SeedQuery, ...]:
        """Field-filter searches for one cell, then the free-text seeds tied to that cell.

        Raises ``KeyError`` for an unknown umbrella and ``ValueError`` for a decade label
        that is not one of ``DECADES``.
        """
        memo = self._cell_memo.get((umbrella, decade))
        if memo is not None:
            return memo
        genres = self.rules.get(umbrella).representative_genres
        if decade not in DECADE_YEARS:
            raise ValueError(f"unknown decade {decade!r}; use one of {', '.join(DECADES)}")
        start, end = DECADE_YEARS[decade]
        field_filters = tuple(
            SeedQuery(CELL_FAMILY, self.cell_template.format(genre=g, start=start, end=end),
                      "track", umbrella, decade)
            for g in genres[:self.max_genres_per_cell])
        tied = tuple(s for s in self.queries if s.umbrella == umbrella and s.decade == decade)
        self._cell_memo[umbrella, decade] = field_filters + tied
        return field_filters + tied

    def __post_init__(self) -> None:
        # cell_queries is asked for every cell on every planning step: each cell's answer is
        # built once (the plan is frozen; dataclasses.replace builds a new memo).
        object.__setattr__(self, "_cell_memo", {})

    def general_queries(self, kind: str = "track") -> tuple[SeedQuery, ...]:
        """Free-text seeds of ``kind`` not tied to a full cell (umbrella and decade)."""
        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r}; use 'track' or 'playlist'")
        return tuple(s for s in self.queries
                     if s.kind == kind and (s.umbrella is None or s.decade is None))

    def summary(self) -> dict[str, Any]:
        """JSON-ready counts per family and kind (cell searches over every cell included)."""
        counts: Counter[tuple[str, str]] = Counter((s.family, s.kind) for s in self.queries)
        for umbrella in self.rules.umbrellas:
            per_cell = len(umbrella.representative_genres[:self.max_genres_per_cell])
            counts[CELL_FAMILY, "track"] += per_cell * len(self.decades)
        families: dict[str, dict[str, int]] = {}
        for (family, kind), n in counts.items():
            if n:
                families.setdefault(family, {})[kind] = n
        totals = {kind: sum(n for (_, k), n in counts.items() if k == kind) for kind in KINDS}
        return {
            "families": {f: dict(sorted(k.items())) for f, k in families.items()},
            "totals": totals,
            "freeTextQueries": len(self.queries),
            "cellQueries": counts[CELL_FAMILY, "track"],
            "umbrellas": list(self.rules.names()),
            "decades": list(self.decades),
            "cells": len(self.cells()),
            "maxGenresPerCell": self.max_genres_per_cell,
            "files": {name: digest for name, digest in self.sources},
        }


# ------------------------------------------------------------------------------ loading
@dataclass(frozen=True)
class _Target:
    """What a keyword or template item ties its seeds to."""

    umbrella: str | None = None
    decade: str | None = None


@dataclass(frozen=True)
class _Item:
    text: str
    target: _Target
    where: str


def normalize_query(text: str) -> str:
    """Free-text seed normalisation: lowercase, whitespace collapsed, ends stripped."""
    return " ".join(text.lower().split())


def _placeholders(doc: SeedFile, text: str, where: str, allowed: tuple[str, ...]) -> set[str]:
    """The {names} used in a template; unknown names, positional {} and bad braces fail."""
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(text) if f is not None]
    except ValueError as exc:
        raise doc.error(where, f"bad template {text!r}: {exc}") from None
    names = ", ".join("{" + a + "}" for a in allowed)
    for name in fields:
        if name not in allowed:
            shown = "{" + name + "}"
            raise doc.error(where, f"unknown placeholder {shown} in {text!r}; use {names}")
    return set(fields)


def _as_text(value: object) -> object:
    """YAML reads a bare 1999 as a number; as a keyword or spelling it is still text."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


def _target(doc: SeedFile, value: object, where: str, umbrellas: tuple[str, ...]) -> _Target:
    if value is None:
        return _Target()
    if isinstance(value, str):
        return _Target(doc.umbrella(value, where, umbrellas))
    if isinstance(value, dict):
        entry = doc.mapping(value, where, optional=("umbrella", "decade"))
        umbrella = entry.get("umbrella")
        decade = entry.get("decade")
        if umbrella is not None:
            umbrella = doc.umbrella(umbrella, f"{where}.umbrella", umbrellas)
        if decade is not None:
            decade = doc.string(decade, f"{where}.decade")
            if decade not in DECADES:
                raise doc.error(f"{where}.decade", f"unknown decade {decade!r}; "
                                                   f"use one of {', '.join(DECADES)}")
        return _Target(umbrella, decade)
    raise doc.error(where, "must be an umbrella name, null or {umbrella: ..., decade: ...}, "
                           f"not {describe(value)}")


def _tagged_items(doc: SeedFile, value: object, where: str,
                  umbrellas: tuple[str, ...]) -> list[_Item]:
    """A list of texts or one-entry ``text: target`` mappings, or a ``text -> target`` map."""
    pairs: list[tuple[object, object, str]] = []
    if isinstance(value, dict):
        pairs = [(text, target, key_path(where, text)) for text, target in value.items()]
    elif isinstance(value, list):
        for i, item in enumerate(value):
            spot = f"{where}[{i}]"
            if isinstance(item, dict):
                if len(item) != 1:
                    raise doc.error(spot, "must be a text or one 'text: target' entry, "
                                          f"not a mapping with {len(item)} entries")
                (text, target), = item.items()
                pairs.append((text, target, spot))
            else:
                pairs.append((item, None, spot))
    else:
        raise doc.error(where, f"must be a list or a mapping, not {describe(value)}")
    items = []
    for text, target, spot in pairs:
        items.append(_Item(doc.string(_as_text(text), spot),
                           _target(doc, target, spot, umbrellas), spot))
    return items


def _merge(doc: SeedFile, where: str, what: str, *values: str | None) -> str | None:
    present = {v for v in values if v is not None}
    if len(present) > 1:
        raise doc.error(where, f"ties seeds to {what}s {' and '.join(sorted(present))}; "
                               "a seed can target only one")
    return present.pop() if present else None


def _expand_group(doc: SeedFile, name: str, raw: object, decades: dict[str, str],
                  caps: dict[str, int], umbrellas: tuple[str, ...]
                  ) -> list[tuple[str, str | None, str | None]]:
    """One group's (text, umbrella, decade) terms, capped, deduplicated within the group."""
    where = f"groups.{name}"
    group = doc.mapping(raw, where, required=("kind",), optional=GROUP_KEYS[1:])
    caps = dict(caps)
    for key in CAP_KEYS:
        if key in group:
            caps[key] = doc.integer(group[key], f"{where}.{key}", 1, CAP_LIMIT)

    keywords = (_tagged_items(doc, group["keywords"], f"{where}.keywords", umbrellas)
                if "keywords" in group else None)
    if "templates" in group:
        raw_templates = doc.items(group["templates"], f"{where}.templates",
                                  "a list of templates")
        if not raw_templates:
            raise doc.error(f"{where}.templates", "must list at least one template")
        templates = _tagged_items(doc, raw_templates, f"{where}.templates", umbrellas)
    elif keywords is not None:
        templates = [_Item("{keyword}", _Target(), f"{where}.templates")]
    else:
        raise doc.error(where, "needs keywords, templates or both")
    bpms: list[int] | None = None
    if "bpms" in group:
        raw_bpms = doc.items(group["bpms"], f"{where}.bpms", "a list of integers")
        bpms = [doc.integer(v, f"{where}.bpms[{i}]", *BPM_RANGE)
                for i, v in enumerate(raw_bpms)]

    used: set[str] = set()
    fields_of: list[set[str]] = []
    for template in templates:
        fields = _placeholders(doc, template.text, template.where, PLACEHOLDERS)
        fields_of.append(fields)
        used |= fields
    for source, placeholder in ((keywords, "keyword"), (bpms, "bpm")):
        key = f"{where}.{placeholder}s"
        if source is not None and placeholder not in used:
            raise doc.error(key, f"given, but no template uses {{{placeholder}}}")
        if source is None and placeholder in used:
            raise doc.error(f"{where}.templates",
                            f"a template uses {{{placeholder}}} but {key} is missing")
        if source is not None and not source:
            raise doc.error(key, "must not be empty")
    if "decade" in used and keywords:
        for item in keywords:
            if item.target.decade is not None:
                raise doc.error(item.where, "sets a decade, but this group's templates "
                                            "expand {decade}; tie it to an umbrella only")

    terms: list[tuple[str, str | None, str | None]] = []
    seen: set[str] = set()
    per_keyword: Counter[str] = Counter()
    per_decade: Counter[str] = Counter()
    for template, fields in zip(templates, fields_of, strict=True):
        for decade in (list(decades) if "decade" in fields else [None]):
            for keyword in (keywords if "keyword" in fields and keywords else [None]):
                for bpm in (bpms if "bpm" in fields and bpms else [None]):
                    if len(terms) >= caps["max_terms"]:
                        return terms
                    values = {"decade": decades[decade] if decade else "",
                              "keyword": keyword.text if keyword else "",
                              "bpm": bpm if bpm is not None else ""}
                    text = normalize_query(template.text.format(**values))
                    if not text:
                        raise doc.error(template.where, "expands to an empty search text")
                    if text in seen:
                        continue
                    kw_target = keyword.target if keyword else _Target()
                    spot = keyword.where if keyword else template.where
                    umbrella = _merge(doc, spot, "umbrella", template.target.umbrella,
                                      kw_target.umbrella)
                    term_decade = _merge(doc, spot, "decade", decade, template.target.decade,
                                         kw_target.decade)
                    if keyword and per_keyword[keyword.text] >= caps["max_per_keyword"]:
                        continue
                    if term_decade and per_decade[term_decade] >= caps["max_per_decade"]:
                        continue
                    seen.add(text)
                    if keyword:
                        per_keyword[keyword.text] += 1
                    if term_decade:
                        per_decade[term_decade] += 1
                    terms.append((text, umbrella, term_decade))
    return terms


def _sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def load_plan(plan_path: str | Path, umbrellas_path: str | Path) -> SeedPlan:
    """Load the umbrella file, then the plan, and expand every seed.

    The same two files always give the same plan, query for query, in the same order.
    Raises ``SeedError`` (one line naming file, key and problem) for anything unusable.
    """
    rules = load_umbrellas(umbrellas_path)
    umbrellas = rules.names()
    doc = SeedFile(plan_path)
    data = doc.mapping(doc.read(), "", required=PLAN_KEYS_REQUIRED,
                       optional=PLAN_KEYS_OPTIONAL)

    raw_decades = data["decades"]
    if not isinstance(raw_decades, dict):
        raise doc.error("decades", "must be a mapping of decade label to its spelling in "
                                   f"search text (00s: 2000s), not {describe(raw_decades)}")
    if not raw_decades:
        raise doc.error("decades", "must list at least one decade")
    decades: dict[str, str] = {}
    for label, spelling in raw_decades.items():
        label_text = str(label)
        spot = key_path("decades", label_text)
        if label_text not in DECADES:
            raise doc.error(spot, f"unknown decade {label_text!r}; use one of "
                                  f"{', '.join(DECADES)}")
        decades[label_text] = doc.string(_as_text(spelling), spot)
    # Always the app's order, whatever the file's: the crawl order must not depend on it.
    decades = {d: decades[d] for d in DECADES if d in decades}

    caps = dict(DEFAULT_CAPS)
    if data.get("caps") is not None:
        raw_caps = doc.mapping(data["caps"], "caps", optional=CAP_KEYS)
        for key, value in raw_caps.items():
            caps[key] = doc.integer(value, f"caps.{key}", 1, CAP_LIMIT)

    max_genres, cell_template = DEFAULT_GENRES_PER_CELL, DEFAULT_CELL_TEMPLATE
    if data.get("cell_queries") is not None:
        cell = doc.mapping(data["cell_queries"], "cell_queries",
                           optional=("max_genres_per_cell", "template"))
        if "max_genres_per_cell" in cell:
            max_genres = doc.integer(cell["max_genres_per_cell"],
                                     "cell_queries.max_genres_per_cell", 0, 100)
        if "template" in cell:
            cell_template = doc.string(cell["template"], "cell_queries.template")
            fields = _placeholders(doc, cell_template, "cell_queries.template",
                                   CELL_PLACEHOLDERS)
            if "genre" not in fields:
                raise doc.error("cell_queries.template", "must contain {genre}")

    raw_groups = data["groups"]
    if not isinstance(raw_groups, dict):
        raise doc.error("groups", f"must be a mapping of group name to group, "
                                  f"not {describe(raw_groups)}")
    if not raw_groups:
        raise doc.error("groups", "must list at least one group")
    queries: list[SeedQuery] = []
    sent: set[tuple[str, str]] = set()
    for name, raw in raw_groups.items():
        if not isinstance(name, str) or not GROUP_NAME.match(name) or name == CELL_FAMILY:
            raise doc.error(key_path("groups", name),
                            "group names are lowercase words joined by '_' "
                            f"(and not {CELL_FAMILY!r})")
        kind_value = raw.get("kind") if isinstance(raw, dict) else None
        if isinstance(raw, dict) and "kind" in raw and kind_value not in GROUP_KINDS:
            raise doc.error(f"groups.{name}.kind", "must be one of track, playlist, both, "
                                                   f"not {describe(kind_value)}")
        terms = _expand_group(doc, name, raw, decades, caps, umbrellas)
        for text, umbrella, decade in terms:
            for kind in GROUP_KINDS[raw["kind"]]:
                if (text, kind) not in sent:
                    sent.add((text, kind))
                    queries.append(SeedQuery(name, text, kind, umbrella, decade))

    sources = ((str(umbrellas_path), _sha256(umbrellas_path)),
               (str(plan_path), _sha256(plan_path)))
    return SeedPlan(tuple(queries), rules, tuple(decades), max_genres, cell_template, sources)
