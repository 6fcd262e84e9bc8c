"""Umbrella genres: names, neighbours, representative genres and genre-matching rules.

The app groups Spotify's thousands of micro-genres under a few umbrellas ("Rock",
"Country & Americana", ...) and recomputes them at runtime; the crawler needs its own copy of
that idea to aim discovery at every umbrella x decade cell and to report coverage. The rules
live in ``seeds/umbrellas.yaml`` so the owner can retune them without touching code.

Matching is deliberately simple so a user editing the file can predict it:

* genres are normalised as the app does (lowercase, hyphen to space, "&" to "and");
* a rule phrase matches a genre when the phrase's words appear as consecutive whole words of
  the genre ("pop" matches "dance pop", never "popular" or "k pop" unless a rule says so);
* rules are tried top to bottom and the first match wins, so specific phrases come first;
* an artist's umbrellas are the distinct umbrellas of its genres in the order of its genres:
  Spotify and the simulator list an artist's main genres first, so the first umbrella is the
  artist's primary one (ordering by rule position would let a cross-over genre such as
  "k pop" outrank the artist's own "dance pop").

``SeedError`` and the strict YAML helpers live here, the lower layer, because both this loader
and the seed-plan loader in ``runclub_spiders.seeds`` use them; ``seeds`` re-exports
``SeedError``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

UMBRELLA_KEYS = ("umbrellas", "rules")
UMBRELLA_ITEM_KEYS = ("name", "neighbours", "representative_genres")


class SeedError(Exception):
    """A seed or umbrella file is unusable; the one-line message names file, key and problem.

    Format: ``<file>: <dotted.key[index]>: <what is wrong>``. File-level problems use
    ``(file)``, ``(top level)`` or ``line N, column M`` in place of a key.
    """


def normalize_genre(name: str) -> str:
    """The app's genre normalisation: lowercase, "-" to space, "&" to " and ", single spaces."""
    return " ".join(name.lower().replace("-", " ").replace("&", " and ").split())


# ------------------------------------------------------------------------------ YAML helpers
class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate mapping keys instead of silently keeping the last.

    A user who pastes a keyword twice, or names an umbrella twice, would otherwise lose an
    entry without a word.
    """


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    # Only keys written in this mapping count: a "<<: *anchor" merge may be overridden.
    seen: set[Any] = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=True)
        try:
            duplicate = key in seen
        except TypeError:  # unhashable key; construct_mapping reports it properly
            break
        if duplicate:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=True)


_StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def describe(value: object) -> str:
    """A short, user-facing description of a YAML value for "not ..." messages."""
    if value is None:
        return "empty (null)"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+")


def key_path(parent: str, key: object) -> str:
    """``parent.key`` for simple keys (``decades.70s``), ``parent["key"]`` for other text."""
    text = str(key)
    if _PLAIN_KEY.fullmatch(text):
        return f"{parent}.{text}" if parent else text
    return f'{parent}["{text}"]'


def suggestion(word: str, choices: Iterable[str]) -> str:
    """"; did you mean 'x'?" for a close match, else ""; typos are the usual cause."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


class SeedFile:
    """One YAML file being validated: reads it and builds ``SeedError`` lines that name it."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.name = str(path)

    def error(self, where: str, what: str) -> SeedError:
        return SeedError(f"{self.name}: {where}: {what}")

    def read(self) -> dict[str, Any]:
        """The file's top-level mapping; every way of not having one is a ``SeedError``."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise self.error("(file)", "not found") from None
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise self.error("(file)", f"cannot read: {reason}") from None
        try:
            data = yaml.load(text, Loader=_StrictLoader)  # a SafeLoader subclass: no tags run
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(file)"
            problem = " ".join(str(exc.problem or exc.context or "unreadable").split())
            raise self.error(where, f"invalid YAML: {problem}") from None
        except yaml.YAMLError as exc:
            raise self.error("(file)", f"invalid YAML: {' '.join(str(exc).split())}") from None
        if data is None:
            raise self.error("(top level)", "the file is empty; expected a mapping")
        if not isinstance(data, dict):
            raise self.error("(top level)", f"must be a mapping, not {describe(data)}")
        return data

    def mapping(self, value: object, where: str, required: Iterable[str] = (),
                optional: Iterable[str] = ()) -> dict[str, Any]:
        """``value`` as a mapping with only known keys and every required key present."""
        if not isinstance(value, dict):
            raise self.error(where or "(top level)", f"must be a mapping, not {describe(value)}")
        required, optional = tuple(required), tuple(optional)
        known = required + optional
        for key in value:
            if key not in known:
                hint = suggestion(str(key), known) or f"; expected one of: {', '.join(known)}"
                raise self.error(where or "(top level)", f"unknown key {str(key)!r}{hint}")
        for key in required:
            if key not in value:
                raise self.error(where or "(top level)", f"missing required key {key!r}")
        return value

    def string(self, value: object, where: str) -> str:
        """A non-blank string, stripped."""
        if not isinstance(value, str) or not value.strip():
            raise self.error(where, f"must be a non-empty string, not {describe(value)}")
        return value.strip()

    def items(self, value: object, where: str, what: str = "a list") -> list[Any]:
        if not isinstance(value, list):
            raise self.error(where, f"must be {what}, not {describe(value)}")
        return value

    def integer(self, value: object, where: str, low: int, high: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise self.error(where, f"must be an integer from {low} to {high}, "
                                    f"not {describe(value)}")
        return value

    def umbrella(self, value: object, where: str, names: Iterable[str]) -> str:
        """A known umbrella name, spelled exactly as in the umbrella file."""
        names = tuple(names)
        name = self.string(value, where)
        if name not in names:
            raise self.error(where, f"unknown umbrella {name!r}{suggestion(name, names)}")
        return name


# ------------------------------------------------------------------------------ model
def _contains(words: tuple[str, ...], phrase: tuple[str, ...]) -> bool:
    """True when ``phrase`` occurs in ``words`` as consecutive whole words."""
    n = len(phrase)
    return any(words[i:i + n] == phrase for i in range(len(words) - n + 1))


@dataclass(frozen=True)
class Umbrella:
    """One umbrella genre: its display name, backfill neighbours and query genres."""

    name: str
    neighbours: tuple[str, ...] = ()            # ordered: first is the preferred backfill
    representative_genres: tuple[str, ...] = ()  # for genre:"..." field-filter searches


@dataclass(frozen=True)
class UmbrellaRules:
    """The umbrella list plus ordered (normalised phrase, umbrella name) rules."""

    umbrellas: tuple[Umbrella, ...]
    rules: tuple[tuple[str, str], ...]
    _compiled: tuple[tuple[tuple[str, ...], str], ...] = field(
        init=False, repr=False, compare=False)
    _by_name: dict[str, Umbrella] = field(init=False, repr=False, compare=False)
    _memo: dict[str, str | None] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Frozen: derived lookups are attached once here. The memo only grows with distinct
        # genre strings (a few thousand in a real crawl), which keeps classify cheap per artist.
        compiled = tuple((tuple(normalize_genre(p).split()), u) for p, u in self.rules)
        object.__setattr__(self, "_compiled", compiled)
        object.__setattr__(self, "_by_name", {u.name: u for u in self.umbrellas})
        object.__setattr__(self, "_memo", {})
        object.__setattr__(self, "_specific", {})
        # Every phrase a genre:"..." search for another umbrella's genre could match.
        object.__setattr__(self, "_phrases", tuple(
            (tuple(normalize_genre(g).split()), u.name) for u in self.umbrellas
            for g in u.representative_genres) + compiled)

    def specific(self, genre: str, umbrella: str) -> bool:
        """Does a ``genre:"..."`` search for ``genre`` name ``umbrella`` only? Spotify's filter
        matches an artist genre holding all its words, so "pop" also returns "latin pop" or
        "punjabi pop" artists; "dance pop" does not. False when a genre or rule phrase of
        another umbrella (representative genres, rules) holds every word of ``genre``."""
        key = (genre, umbrella)
        if key not in self._specific:      # asked once per hit: memoised (a pure function)
            words = set(normalize_genre(genre).split())
            self._specific[key] = not any(u != umbrella and words <= set(phrase)
                                          for phrase, u in self._phrases)
        return self._specific[key]

    def names(self) -> tuple[str, ...]:
        """Umbrella names in file order (the order coverage reports use)."""
        return tuple(u.name for u in self.umbrellas)

    def get(self, name: str) -> Umbrella:
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"unknown umbrella {name!r}{suggestion(name, self._by_name)}") \
                from None

    def classify_genre(self, genre: str) -> str | None:
        """The umbrella of the first rule whose phrase occurs in ``genre``, or None."""
        normalized = normalize_genre(genre)
        if normalized in self._memo:
            return self._memo[normalized]
        words = tuple(normalized.split())
        result = next((u for phrase, u in self._compiled if _contains(words, phrase)), None)
        self._memo[normalized] = result
        return result

    def classify(self, genres: Iterable[str]) -> tuple[str, ...]:
        """Distinct umbrellas of ``genres`` in the order of the genres (primary first)."""
        found: dict[str, None] = {}
        for genre in genres:
            umbrella = self.classify_genre(genre)
            if umbrella is not None:
                found.setdefault(umbrella)
        return tuple(found)


# ------------------------------------------------------------------------------ loading
def load_umbrellas(path: str | Path) -> UmbrellaRules:
    """Read and validate an umbrella file; raises ``SeedError`` naming file, key and problem.

    Beyond types, it rejects what would silently hurt a crawl: an unknown or duplicate
    umbrella, a neighbour that is itself or unknown, a rule that can never match because an
    earlier rule's phrase is contained in it, an umbrella no rule leads to, and a
    representative genre the rules would file under another umbrella (its cell queries would
    then fill the wrong cell).
    """
    doc = SeedFile(path)
    data = doc.mapping(doc.read(), "", required=UMBRELLA_KEYS)

    raw_umbrellas = doc.items(data["umbrellas"], "umbrellas", "a list of umbrellas")
    if not raw_umbrellas:
        raise doc.error("umbrellas", "must list at least one umbrella")
    names: list[str] = []
    for i, item in enumerate(raw_umbrellas):
        where = f"umbrellas[{i}]"
        entry = doc.mapping(item, where, required=("name", "representative_genres"),
                            optional=("neighbours",))
        name = doc.string(entry["name"], f"{where}.name")
        if name in names:
            raise doc.error(f"{where}.name",
                            f"duplicate umbrella {name!r} (first at umbrellas"
                            f"[{names.index(name)}])")
        names.append(name)

    umbrellas: list[Umbrella] = []
    for i, item in enumerate(raw_umbrellas):
        where = f"umbrellas[{i}]"
        neighbours: list[str] = []
        raw_neighbours = item.get("neighbours")
        raw_neighbours = [] if raw_neighbours is None else raw_neighbours
        for j, value in enumerate(doc.items(raw_neighbours, f"{where}.neighbours",
                                            "a list of umbrella names")):
            spot = f"{where}.neighbours[{j}]"
            neighbour = doc.umbrella(value, spot, names)
            if neighbour == names[i]:
                raise doc.error(spot, f"{neighbour!r} cannot be its own neighbour")
            if neighbour in neighbours:
                raise doc.error(spot, f"duplicate neighbour {neighbour!r}")
            neighbours.append(neighbour)
        genres: list[str] = []
        raw_genres = doc.items(item["representative_genres"], f"{where}.representative_genres",
                               "a list of genres")
        if not raw_genres:
            raise doc.error(f"{where}.representative_genres", "must list at least one genre")
        for j, value in enumerate(raw_genres):
            spot = f"{where}.representative_genres[{j}]"
            genre = doc.string(value, spot)
            if '"' in genre:
                raise doc.error(spot, "must not contain '\"' (it is quoted in genre:\"...\")")
            if genre in genres:
                raise doc.error(spot, f"duplicate genre {genre!r}")
            genres.append(genre)
        umbrellas.append(Umbrella(names[i], tuple(neighbours), tuple(genres)))

    rules: list[tuple[str, str]] = []
    raw_rules = doc.items(data["rules"], "rules", "a list of 'genre phrase: Umbrella' entries")
    for i, item in enumerate(raw_rules):
        where = f"rules[{i}]"
        if not isinstance(item, dict) or len(item) != 1:
            raise doc.error(where, "must be one 'genre phrase: Umbrella' entry, "
                                   f"not {describe(item)}")
        (phrase_value, umbrella_value), = item.items()
        phrase = normalize_genre(doc.string(phrase_value, where))
        umbrella = doc.umbrella(umbrella_value, where, names)
        words = tuple(phrase.split())
        for k, (earlier, _) in enumerate(rules):
            if _contains(words, tuple(earlier.split())):
                what = (f"duplicate of rules[{k}]" if earlier == phrase else
                        f"{phrase!r} can never match: rules[{k}] {earlier!r} comes first "
                        "and matches every genre it would; move it above that rule")
                raise doc.error(where, what)
        rules.append((phrase, umbrella))

    result = UmbrellaRules(tuple(umbrellas), tuple(rules))
    ruled = {u for _, u in rules}
    for i, umbrella in enumerate(umbrellas):
        if umbrella.name not in ruled:
            raise doc.error(f"umbrellas[{i}].name",
                            f"no rule leads to {umbrella.name!r}; add one under rules")
        for j, genre in enumerate(umbrella.representative_genres):
            got = result.classify_genre(genre)
            if got != umbrella.name:
                as_what = "no umbrella" if got is None else repr(got)
                raise doc.error(f"umbrellas[{i}].representative_genres[{j}]",
                                f"the rules classify {genre!r} as {as_what}, not "
                                f"{umbrella.name!r}; add a rule for it or pick another genre")
    return result
