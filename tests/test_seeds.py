"""Seed plan and umbrella rules: brief coverage, expansion, caps, classification, errors.

The simulator's vocabulary is the synthetic catalog's ground truth; tests may compare the
crawler's umbrella rules with it, the crawler code itself never imports it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from runclub_spiders.seeds import (
    DECADE_YEARS,
    DECADES,
    SeedError,
    SeedPlan,
    SeedQuery,
    load_plan,
)
from runclub_spiders.simulator import Catalog
from runclub_spiders.simulator.vocabulary import UMBRELLA_GENRES
from runclub_spiders.umbrellas import Umbrella, UmbrellaRules, load_umbrellas, normalize_genre
from tests.conftest import cached_catalog

ROOT = Path(__file__).resolve().parent.parent
PLAN = ROOT / "seeds" / "plan.yaml"
UMBRELLAS = ROOT / "seeds" / "umbrellas.yaml"

# The brief's "Sourcing Strategy and Seed Keywords", verbatim.
EDITORIAL = ["workout", "running", "run mix", "cardio", "HIIT", "gym", "pump up",
             "training motivation", "beast mode", "treadmill", "power run", "marathon training",
             "tempo run", "sprint workout", "interval training"]
BRIEF_UMBRELLAS = ["Pop", "Rock", "Indie", "Hip-Hop", "R&B", "Electronic", "Latin", "Metal",
                   "Country", "Afrobeat", "K-pop", "Bollywood", "Reggaeton", "EDM", "House",
                   "Techno"]
UMBRELLA_PATTERNS = ["{u} workout", "{u} running", "{u} cardio", "{u} HIIT", "{u} pump up",
                     "{u} gym", "{u} power run", "{u} interval", "fast {u}", "high energy {u}",
                     "{u} bangers", "uptempo {u}"]
BRIEF_DECADES = ["70s", "80s", "90s", "2000s", "2010s", "2020s"]
DECADE_PATTERNS = ["{d} hits", "best of {d}", "{d} pop hits", "{d} rock hits", "{d} dance hits",
                   "{d} throwbacks", "throwback hits", "nostalgia {d}", "club hits {d}",
                   "party hits {d}", "{d} workout", "{d} running"]
TREND_FEEDERS = ["Top 50 USA", "Viral 50 USA", "Top 50 Global", "Viral 50 Global",
                 "New Music Friday", "mint", "Dance Rising", "Fresh Finds", "Rock This",
                 "RapCaviar", "Pop Rising", "Viva Latino", "Today's Top Hits", "New Joints",
                 "New Music Pop", "New Music Rock"]
BPMS = [150, 155, 160, 165, 170, 175, 180]
CADENCE_PATTERNS = ["{b} bpm", "{b} bpm workout", "{b} bpm run mix", "cadence {b} running",
                    "{b} spm running"]
SUBGENRES = ["dance pop", "electropop", "hyperpop", "alternative rock", "indie rock",
             "pop punk", "emo", "punk rock", "house", "big room", "techno", "trance",
             "drum & bass", "dubstep", "electro house", "trap", "boom bap", "grime", "drill",
             "contemporary r&b", "reggaeton", "dembow", "latin pop", "urbano latino",
             "afrobeat", "amapiano", "bhangra", "bollywood", "k-pop", "j-pop", "metalcore",
             "hard rock", "hardcore punk", "nu disco", "funk", "disco"]
LONG_TAIL_PATTERNS = ["{s} workout", "{s} running", "{s} cardio", "fast {s}",
                      "high energy {s}"]
PLAYLIST_SEEDS = ["metal running playlist", "indie running", "country tempo run",
                  "house workout", "electronic running", "80s running mix"]
SEARCH_SEEDS = ["70s country", "1970s outlaw country", "90s alt rock", "drum and bass running",
                "latin reggaeton fast"]
# Display names for every umbrella the brief names, as this project spells them.
BRIEF_UMBRELLA_NAMES = {"Pop", "Rock", "Indie & Alternative", "Hip-Hop & Rap", "R&B & Soul",
                        "Electronic & EDM", "Latin", "Metal & Hard Rock", "Country & Americana",
                        "Afrobeats & Amapiano", "K-pop & J-pop", "Bollywood & Desi",
                        "Reggaeton", "House", "Techno", "Drum & Bass", "Punk & Emo",
                        "Funk & Disco"}


@pytest.fixture(scope="module")
def plan() -> SeedPlan:
    return load_plan(PLAN, UMBRELLAS)


@pytest.fixture(scope="module")
def plan_yaml() -> dict:
    return yaml.safe_load(PLAN.read_text(encoding="utf-8"))


def texts(plan: SeedPlan, kind: str | None = None) -> set[str]:
    return {s.q for s in plan.queries if kind is None or s.kind == kind}


# ------------------------------------------------------------------------ brief coverage
def test_every_brief_keyword_group_is_in_the_plan(plan):
    every = texts(plan)
    playlists = texts(plan, "playlist")
    assert {k.lower() for k in EDITORIAL} <= playlists
    assert {p.format(u=u).lower() for p in UMBRELLA_PATTERNS for u in BRIEF_UMBRELLAS} <= every
    assert {p.format(d=d) for p in DECADE_PATTERNS for d in BRIEF_DECADES} <= every
    assert {t.lower() for t in TREND_FEEDERS} <= playlists
    assert {f"{b} bpm" for b in BPMS} | {p.format(b=b) for p in CADENCE_PATTERNS
                                        for b in BPMS} <= every
    assert {p.format(s=s) for p in LONG_TAIL_PATTERNS for s in SUBGENRES} <= every
    assert set(PLAYLIST_SEEDS) <= playlists
    assert set(SEARCH_SEEDS) <= texts(plan, "track")
    # the brief's own examples of group 2
    assert {"rock running", "fast rock", "indie workout", "uptempo indie", "latin cardio",
            "reggaeton running", "electronic workout", "edm running", "house workout",
            "techno running", "hip-hop workout", "rap running", "metal workout",
            "punk running"} <= every


def test_default_plan_counts_per_family(plan):
    """Counts follow from the brief's lists; cross-family duplicates go to the first family."""
    summary = plan.summary()
    assert summary["families"] == {
        "search_terms": {"track": 5},
        "playlist_names": {"playlist": 6},
        "editorial": {"playlist": 15},
        # 20 keywords x 12 patterns; "drum and bass running" is already a search term and
        # "house workout", "electronic running", "indie running" already playlist names
        "umbrella_patterns": {"track": 239, "playlist": 237},
        "decade_refreshers": {"track": 67, "playlist": 67},   # 11 x 6 decades + throwback hits
        "trend_feeders": {"playlist": 16},
        "cadence": {"track": 35, "playlist": 35},              # 7 bpms x 5
        # 36 subgenres x 5, less house/techno/reggaeton/afrobeat/bollywood/k-pop x 5 already
        # produced by umbrella_patterns
        "long_tail": {"track": 145, "playlist": 145},
        "cell_text": {"track": 107},                            # 18 x 6, less "70s country"
        "cell_genre": {"track": 18 * 6 * 4},
    }
    assert summary["freeTextQueries"] == len(plan.queries) == 1119
    assert summary["totals"] == {"track": 1030, "playlist": 521}
    assert summary["cells"] == 108 and summary["decades"] == list(DECADES)
    assert set(summary["files"]) == {str(PLAN), str(UMBRELLAS)}


def test_queries_are_normalised_and_unique(plan):
    keys = [(s.q, s.kind) for s in plan.queries]
    assert len(keys) == len(set(keys))
    for seed in plan.queries:
        assert seed.q == " ".join(seed.q.lower().split())
        assert seed.kind in ("track", "playlist")
        assert seed.umbrella is None or seed.umbrella in plan.rules.names()
        assert seed.decade is None or seed.decade in DECADES
    assert "r&b workout" in texts(plan)   # "&" kept as typed in free text
    assert "hip-hop running" in texts(plan)


def test_two_loads_are_equal_and_in_file_order(plan):
    again = load_plan(PLAN, UMBRELLAS)
    assert again.queries == plan.queries
    assert again.summary() == plan.summary()
    families = list(dict.fromkeys(s.family for s in plan.queries))
    assert families == ["search_terms", "playlist_names", "editorial", "umbrella_patterns",
                        "decade_refreshers", "trend_feeders", "cadence", "long_tail",
                        "cell_text"]
    patterns = [s.q for s in plan.queries if s.family == "umbrella_patterns"]
    # template-major: every keyword's first template before any second template
    assert patterns[:4] == ["pop workout", "pop workout", "rock workout", "rock workout"]
    both = [s.kind for s in plan.queries if s.family == "cadence"][:2]
    assert both == ["track", "playlist"]


def test_brief_umbrella_keywords_and_subgenres_map_to_umbrellas(plan, plan_yaml):
    names = set(plan.rules.names())
    keywords = plan_yaml["groups"]["umbrella_patterns"]["keywords"]
    assert set(BRIEF_UMBRELLAS) <= set(keywords)
    subgenres = plan_yaml["groups"]["long_tail"]["keywords"]
    assert set(SUBGENRES) <= set(subgenres)
    cell_words = plan_yaml["groups"]["cell_text"]["keywords"]
    assert set(cell_words.values()) == names   # every umbrella gets free-text cell seeds
    for mapping in (keywords, subgenres, cell_words):
        for keyword, umbrella in mapping.items():
            assert umbrella in names
            # the explicit mapping agrees with the rules
            assert plan.rules.classify_genre(keyword) == umbrella, keyword
    by_text = {(s.q, s.kind): s for s in plan.queries}
    assert by_text["hip-hop workout", "track"].umbrella == "Hip-Hop & Rap"
    assert by_text["fast drum & bass", "track"].umbrella == "Drum & Bass"
    assert by_text["2000s pop hits", "track"].umbrella == "Pop"
    assert by_text["2000s pop hits", "track"].decade == "00s"
    assert by_text["80s running mix", "playlist"].decade == "80s"
    assert by_text["workout", "playlist"].umbrella is None


# ------------------------------------------------------------------------ umbrellas
def test_normalize_genre():
    assert normalize_genre("K-Pop") == "k pop"
    assert normalize_genre("Drum & Bass") == "drum and bass"
    assert normalize_genre("R&B") == "r and b"
    assert normalize_genre("  Post-Disco ") == "post disco"
    assert normalize_genre("hip-hop") == normalize_genre("Hip Hop") == "hip hop"


def test_umbrella_file_shape(plan):
    rules = plan.rules
    names = rules.names()
    assert 16 <= len(names) <= 20
    assert len(set(names)) == len(names)
    assert set(names) >= BRIEF_UMBRELLA_NAMES
    assert set(names) == set(UMBRELLA_GENRES)   # same names as the simulator's ground truth
    for umbrella in rules.umbrellas:
        assert umbrella.neighbours, umbrella.name
        assert umbrella.name not in umbrella.neighbours
        assert set(umbrella.neighbours) <= set(names)
        assert umbrella.representative_genres
        for genre in umbrella.representative_genres:
            assert genre == normalize_genre(genre)
            assert rules.classify_genre(genre) == umbrella.name
    assert rules.get("Latin").neighbours[0] == "Reggaeton"
    with pytest.raises(KeyError, match="unknown umbrella 'Latn'; did you mean 'Latin'"):
        rules.get("Latn")


@pytest.mark.parametrize("umbrella", list(UMBRELLA_GENRES))
def test_every_simulator_genre_classifies_into_its_umbrella(plan, umbrella):
    for genre in UMBRELLA_GENRES[umbrella]:
        assert plan.rules.classify_genre(genre) == umbrella, genre
        assert plan.rules.classify([genre]) == (umbrella,)


def test_artist_umbrellas_match_the_catalog_truth_primary_first(plan):
    for catalog in (cached_catalog(3000, 1), Catalog(3000, seed=11)):
        for artist in catalog.artists:
            expected = artist.umbrellas if artist.genres else ()
            assert plan.rules.classify(artist.genres) == expected, artist.genres


def test_matching_is_whole_words_first_rule_wins_genre_order():
    rules = UmbrellaRules(
        (Umbrella("Pop"), Umbrella("Punk & Emo"), Umbrella("K-pop & J-pop")),
        (("pop punk", "Punk & Emo"), ("k pop", "K-pop & J-pop"), ("pop", "Pop")))
    assert rules.classify_genre("dance pop") == "Pop"
    assert rules.classify_genre("Pop-Punk") == "Punk & Emo"
    assert rules.classify_genre("K-Pop boy group") == "K-pop & J-pop"
    assert rules.classify_genre("popular") is None
    assert rules.classify_genre("synthpop") is None
    assert rules.classify_genre("") is None
    # umbrellas follow the artist's genre order, not the rule order; duplicates collapse
    assert rules.classify(["dance pop", "k-pop", "pop", "jazz"]) == ("Pop", "K-pop & J-pop")
    assert rules.classify(["k-pop", "dance pop"]) == ("K-pop & J-pop", "Pop")
    assert rules.classify([]) == ()


def test_default_rules_resolve_cross_overs_as_documented(plan):
    classify = plan.rules.classify_genre
    assert classify("drum and bass") == "Drum & Bass"
    assert classify("future bass") == "Electronic & EDM"
    assert classify("latin pop") == "Latin"
    assert classify("pop punk") == "Punk & Emo"
    assert classify("nu disco") == "Funk & Disco"
    assert classify("indie pop") == classify("indie rock") == "Indie & Alternative"
    assert classify("outlaw country") == classify("country rock") == "Country & Americana"
    assert classify("electro house") == "Electronic & EDM"
    assert classify("deep house") == "House"
    assert classify("liquid funk") == "Drum & Bass"
    assert classify("pop rap") == "Hip-Hop & Rap"
    assert classify("edm") == "Electronic & EDM"


# ------------------------------------------------------------------------ cells
def test_cell_queries_field_filters_then_tied_seeds(plan):
    cell = plan.cell_queries("Country & Americana", "70s")
    assert [s.q for s in cell] == [
        'genre:"country" year:1970-1979',
        'genre:"outlaw country" year:1970-1979',
        'genre:"country rock" year:1970-1979',
        'genre:"contemporary country" year:1970-1979',
        "70s country",
        "1970s outlaw country",
    ]
    assert all(s.umbrella == "Country & Americana" and s.decade == "70s" for s in cell)
    assert [s.family for s in cell[:4]] == ["cell_genre"] * 4
    assert all(s.kind == "track" for s in cell[:4])
    pop_00s = [s.q for s in plan.cell_queries("Pop", "00s")]
    assert pop_00s[:2] == ['genre:"pop" year:2000-2009', 'genre:"dance pop" year:2000-2009']
    assert "2000s pop hits" in pop_00s and "2000s pop" in pop_00s
    assert plan.cell_queries("R&B & Soul", "20s")[0].q == 'genre:"r and b" year:2020-2029'
    for umbrella, decade in plan.cells():
        field_filters = [s for s in plan.cell_queries(umbrella, decade)
                         if s.family == "cell_genre"]
        start, end = DECADE_YEARS[decade]
        assert len(field_filters) == min(4, len(plan.rules.get(umbrella).representative_genres))
        assert all(re.fullmatch(rf'genre:"[a-z ]+" year:{start}-{end}', s.q)
                   for s in field_filters)
    with pytest.raises(ValueError, match="unknown decade '60s'"):
        plan.cell_queries("Pop", "60s")
    with pytest.raises(KeyError):
        plan.cell_queries("Polka", "70s")


def test_general_queries_exclude_cell_seeds(plan):
    tracks, playlists = plan.general_queries(), plan.general_queries("playlist")
    assert all(s.kind == "track" for s in tracks)
    assert all(s.kind == "playlist" for s in playlists)
    assert all(s.umbrella is None or s.decade is None for s in tracks + playlists)
    tied = sum(len(plan.cell_queries(u, d)) - sum(s.family == "cell_genre"
                                                  for s in plan.cell_queries(u, d))
               for u, d in plan.cells())
    assert len(tracks) + len(playlists) + tied == len(plan.queries)
    assert "70s country" not in {s.q for s in tracks}
    assert "rock workout" in {s.q for s in tracks}
    with pytest.raises(ValueError, match="unknown kind"):
        plan.general_queries("album")


def test_decade_years():
    assert DECADES == ("70s", "80s", "90s", "00s", "10s", "20s")
    assert DECADE_YEARS["70s"] == (1970, 1979)
    assert DECADE_YEARS["00s"] == (2000, 2009)
    assert DECADE_YEARS["20s"] == (2020, 2029)


def test_crawler_modules_do_not_import_the_simulator():
    imports = re.compile(r"^\s*(from|import)\s+\S*simulator", re.MULTILINE)
    for module in ("seeds.py", "umbrellas.py"):
        source = (ROOT / "runclub_spiders" / module).read_text(encoding="utf-8")
        assert not imports.search(source), module


# ------------------------------------------------------------------------ small plans
SMALL_UMBRELLAS = """\
umbrellas:
  - name: Rock
    neighbours: [Country & Americana]
    representative_genres: [rock, classic rock]
  - name: Country & Americana
    neighbours: [Rock]
    representative_genres: [country, outlaw country]
rules:
  - country: Country & Americana
  - rock: Rock
"""

SMALL_PLAN = """\
decades:
  70s: 70s
  00s: 2000s
groups:
  cadence:
    kind: both
    bpms: [160, 170]
    templates: ['{bpm} bpm']
  umbrella_patterns:
    kind: track
    templates: ['{keyword} running']
    keywords:
      Country: Country & Americana
"""


def write(tmp_path: Path, plan: str = SMALL_PLAN, umbrellas: str = SMALL_UMBRELLAS
          ) -> tuple[Path, Path]:
    plan_path, umbrellas_path = tmp_path / "plan.yaml", tmp_path / "umbrellas.yaml"
    plan_path.write_text(plan, encoding="utf-8")
    umbrellas_path.write_text(umbrellas, encoding="utf-8")
    return plan_path, umbrellas_path


def test_small_plan_defaults(tmp_path):
    plan = load_plan(*write(tmp_path))
    assert [(s.family, s.q, s.kind) for s in plan.queries] == [
        ("cadence", "160 bpm", "track"), ("cadence", "160 bpm", "playlist"),
        ("cadence", "170 bpm", "track"), ("cadence", "170 bpm", "playlist"),
        ("umbrella_patterns", "country running", "track"),
    ]
    assert plan.decades == ("70s", "00s")
    assert plan.cells() == (("Rock", "70s"), ("Rock", "00s"),
                            ("Country & Americana", "70s"), ("Country & Americana", "00s"))
    assert [s.q for s in plan.cell_queries("Rock", "00s")] == [
        'genre:"rock" year:2000-2009', 'genre:"classic rock" year:2000-2009']


def test_caps_per_group_keyword_and_decade(tmp_path):
    plan_text = """\
decades: {70s: 70s, 80s: 80s, 90s: 90s}
caps: {max_terms: 100, max_per_keyword: 2, max_per_decade: 3}
groups:
  patterns:
    kind: track
    templates: ['{keyword} workout', '{keyword} running', 'fast {keyword}']
    keywords: [rock, country, disco, punk]
  decades_group:
    kind: playlist
    templates: ['{decade} hits', 'best of {decade}', '{decade} gym', '{decade} party']
  capped:
    kind: track
    max_terms: 5
    max_per_keyword: 10
    templates: ['{keyword} a', '{keyword} b']
    keywords: [one, two, three, four]
  cells:
    kind: track
    max_per_decade: 1
    templates: ['{decade} {keyword}']
    keywords: {rock: Rock, country: Country & Americana}
"""
    plan = load_plan(*write(tmp_path, plan_text))
    by_family: dict[str, list[str]] = {}
    for seed in plan.queries:
        by_family.setdefault(seed.family, []).append(seed.q)
    # two templates per keyword, template-major
    assert by_family["patterns"] == ["rock workout", "country workout", "disco workout",
                                     "punk workout", "rock running", "country running",
                                     "disco running", "punk running"]
    # three per decade: the fourth template is dropped
    assert by_family["decades_group"] == ["70s hits", "80s hits", "90s hits", "best of 70s",
                                          "best of 80s", "best of 90s", "70s gym", "80s gym",
                                          "90s gym"]
    assert by_family["capped"] == ["one a", "two a", "three a", "four a", "one b"]
    # one per decade, and at most two per keyword (the top-level cap) leaves 90s to country
    assert by_family["cells"] == ["70s rock", "80s rock", "90s country"]
    assert [(s.umbrella, s.decade) for s in plan.queries if s.family == "cells"] == [
        ("Rock", "70s"), ("Rock", "80s"), ("Country & Americana", "90s")]


def test_dedupe_first_family_wins_and_kinds_are_separate(tmp_path):
    plan_text = """\
decades: {70s: 70s}
groups:
  first:
    kind: track
    keywords: ['Rock  Workout', rock workout, ROCK WORKOUT ]
  second:
    kind: both
    templates: ['{keyword} workout']
    keywords: {rock: Rock}
"""
    plan = load_plan(*write(tmp_path, plan_text))
    assert [(s.family, s.q, s.kind, s.umbrella) for s in plan.queries] == [
        ("first", "rock workout", "track", None),
        ("second", "rock workout", "playlist", "Rock"),
    ]
    assert plan.summary()["families"]["first"] == {"track": 1}


# Each case: (file to break, text to replace or None for the whole file, replacement,
# expected message after "<file>: ").
MALFORMED = [
    ("plan", None, "", "(top level): the file is empty; expected a mapping"),
    ("umbrellas", None, "# only a comment\n",
     "(top level): the file is empty; expected a mapping"),
    ("plan", "  70s: 70s\n", "  70s: [70s\n",
     "line 3, column 6: invalid YAML: expected ',' or ']', but got ':'"),
    ("umbrellas", "rules:\n", "rules: :\n",
     "line 8, column 8: invalid YAML: mapping values are not allowed here"),
    ("plan", None, "- just\n- a list\n", "(top level): must be a mapping, not a list"),
    ("plan", "templates: ['{bpm} bpm']", "templates: '{bpm} bpm'",
     "groups.cadence.templates: must be a list of templates, not '{bpm} bpm'"),
    ("umbrellas", "representative_genres: [rock, classic rock]",
     "representative_genres: rock",
     "umbrellas[0].representative_genres: must be a list of genres, not 'rock'"),
    ("plan", "kind: both", "kind: tracks",
     "groups.cadence.kind: must be one of track, playlist, both, not 'tracks'"),
    ("umbrellas", "neighbours: [Country & Americana]", "neighbours: [Country and Americana]",
     "umbrellas[0].neighbours[0]: unknown umbrella 'Country and Americana'; "
     "did you mean 'Country & Americana'?"),
    ("umbrellas", "neighbours: [Rock]", "neighbours: [Country & Americana]",
     "umbrellas[1].neighbours[0]: 'Country & Americana' cannot be its own neighbour"),
    ("plan", "Country: Country & Americana", "Country: Country and Americana",
     "groups.umbrella_patterns.keywords.Country: unknown umbrella 'Country and Americana'; "
     "did you mean 'Country & Americana'?"),
    ("plan", "Country: Country & Americana", "Country: {umbrella: Polka}",
     "groups.umbrella_patterns.keywords.Country.umbrella: unknown umbrella 'Polka'"),
    ("umbrellas", "  - name: Country & Americana", "  - name: Rock",
     "umbrellas[1].name: duplicate umbrella 'Rock' (first at umbrellas[0])"),
    ("plan", "Country: Country & Americana",
     "Country: Country & Americana\n      Country: Rock",
     "line 14, column 7: invalid YAML: duplicate key 'Country'"),
    ("plan", "groups:", "seeds: 1\ngroups:",
     "(top level): unknown key 'seeds'; expected one of: decades, groups, caps, cell_queries"),
    ("plan", "groups:", "group:",
     "(top level): unknown key 'group'; did you mean 'groups'?"),
    ("umbrellas", "rules:", "rule:", "(top level): unknown key 'rule'; did you mean 'rules'?"),
    ("plan", "    kind: track\n", "    kind: track\n    bpm: [160]\n",
     "groups.umbrella_patterns: unknown key 'bpm'; did you mean 'bpms'?"),
    ("plan", "bpms: [160, 170]", "bpms: [160, fast]",
     "groups.cadence.bpms[1]: must be an integer from 100 to 220, not 'fast'"),
    ("plan", "bpms: [160, 170]", "bpms: [160, 300]",
     "groups.cadence.bpms[1]: must be an integer from 100 to 220, not 300"),
    ("plan", "    kind: both\n", "",
     "groups.cadence: missing required key 'kind'"),
    ("plan", "decades:\n  70s: 70s\n  00s: 2000s\n", "",
     "(top level): missing required key 'decades'"),
    ("umbrellas", "    representative_genres: [country, outlaw country]\n", "",
     "umbrellas[1]: missing required key 'representative_genres'"),
    ("plan", "  70s: 70s", "  60s: 60s",
     "decades.60s: unknown decade '60s'; use one of 70s, 80s, 90s, 00s, 10s, 20s"),
    ("plan", "['{bpm} bpm']", "['{bmp} bpm']",
     "groups.cadence.templates[0]: unknown placeholder {bmp} in '{bmp} bpm'; "
     "use {keyword}, {decade}, {bpm}"),
    ("plan", "    templates: ['{keyword} running']\n", "    templates: ['running']\n",
     "groups.umbrella_patterns.keywords: given, but no template uses {keyword}"),
    ("plan", None, "decades: {70s: 70s}\ngroups: {}\n", "groups: must list at least one group"),
    ("plan", None, "decades: {70s: 70s}\ngroups:\n  cells:\n    kind: track\n"
                   "    templates: ['{decade} {keyword}']\n"
                   "    keywords: {country: {umbrella: Rock, decade: 70s}}\n",
     "groups.cells.keywords.country: sets a decade, but this group's templates "
     "expand {decade}; tie it to an umbrella only"),
    ("plan", "groups:", "caps: {max_terms: 0}\ngroups:",
     "caps.max_terms: must be an integer from 1 to 100000, not 0"),
    ("umbrellas", "  - rock: Rock", "  - rock: Rock\n  - classic rock: Rock",
     "rules[2]: 'classic rock' can never match: rules[1] 'rock' comes first and matches "
     "every genre it would; move it above that rule"),
    ("umbrellas", "  - rock: Rock", "  - rock: Rock\n  - Rock: Rock",
     "rules[2]: duplicate of rules[1]"),
    ("umbrellas", "  - rock: Rock", "  - rock",
     "rules[1]: must be one 'genre phrase: Umbrella' entry, not 'rock'"),
    ("umbrellas", "  - rock: Rock", "  - rock: Country & Americana",
     "umbrellas[0].name: no rule leads to 'Rock'; add one under rules"),
    ("umbrellas", "[rock, classic rock]", "[rock, country rock]",
     "umbrellas[0].representative_genres[1]: the rules classify 'country rock' as "
     "'Country & Americana', not 'Rock'; add a rule for it or pick another genre"),
]


@pytest.mark.parametrize(("which", "old", "new", "expected"), MALFORMED,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(MALFORMED)])
def test_malformed_files_give_one_line_errors(tmp_path, which, old, new, expected):
    texts_by_file = {"plan": SMALL_PLAN, "umbrellas": SMALL_UMBRELLAS}
    original = texts_by_file[which]
    if old is None:
        texts_by_file[which] = new
    else:
        assert old in original, old
        texts_by_file[which] = original.replace(old, new, 1)
    plan_path, umbrellas_path = write(tmp_path, texts_by_file["plan"],
                                      texts_by_file["umbrellas"])
    broken = plan_path if which == "plan" else umbrellas_path
    with pytest.raises(SeedError) as caught:
        load_plan(plan_path, umbrellas_path)
    message = str(caught.value)
    assert message == f"{broken}: {expected}"
    assert "\n" not in message


def test_missing_files(tmp_path):
    plan_path, umbrellas_path = write(tmp_path)
    with pytest.raises(SeedError, match=r"nowhere\.yaml: \(file\): not found$"):
        load_plan(plan_path, tmp_path / "nowhere.yaml")
    with pytest.raises(SeedError, match=r"nowhere\.yaml: \(file\): not found$"):
        load_plan(tmp_path / "nowhere.yaml", umbrellas_path)
    with pytest.raises(SeedError) as caught:
        load_umbrellas(tmp_path)                  # a directory
    assert str(caught.value).startswith(f"{tmp_path}: (file): cannot read: ")


def test_seed_query_is_hashable_and_frozen():
    seed = SeedQuery("cadence", "160 bpm", "track", None, None)
    assert {seed, SeedQuery("cadence", "160 bpm", "track", None, None)} == {seed}
    with pytest.raises(AttributeError):
        seed.q = "x"  # type: ignore[misc]
