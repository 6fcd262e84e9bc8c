"""Open-data bodies recorded from the live services by others, through our parsers.

``tests/fixtures/real/SOURCES.md`` says where each comes from and under which licence
(``tests/test_real_payloads.py`` checks every file's SHA-256 there): a Wikidata query service
answer (wikibase-sdk) and a MusicBrainz recording search for one ISRC (musicbrainz_rs). The
MusicBrainz year is checked against the rule computed here from the raw JSON, independently
of the parser; ``tests/test_opendata.py`` checks the same rules on hand-written bodies.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from pathlib import Path
from typing import Any

from runclub_spiders.opendata import musicbrainz, wikidata

REAL = Path(__file__).parent / "fixtures" / "real"
SPARQL = REAL / "wikibase-sdk" / "single_var_sparql_results.json"
MB_SEARCH = REAL / "musicbrainz_rs" / "isrc_GBAHT1600302.json"


def test_the_recorded_bodies_are_the_ones_listed():
    sources = (REAL / "SOURCES.md").read_text(encoding="utf-8")
    for path, licence in ((SPARQL, "MIT-wikibase-sdk.txt"),
                          (MB_SEARCH, "MIT-musicbrainz_rs.txt")):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        assert f"| `{path.relative_to(REAL).as_posix()}` | `{digest}` |" in sources, path
        assert (REAL / "LICENSES" / licence).stat().st_size > 1000


def test_a_recorded_sparql_answer_reads_cell_by_cell():
    body = json.loads(SPARQL.read_bytes())
    rows = wikidata.bindings(body)
    assert not isinstance(rows, str)
    assert len(rows) == 5 and all(set(r) == {"genre"} for r in rows)
    entities = [wikidata.qid_of(r["genre"]["value"]) for r in rows
                if r["genre"]["type"] == "uri"]
    assert entities == ["Q112983", "Q185598", "Q3879286", "Q1473346"]
    # The "unknown value" blank node is no entity and no label.
    blank = next(r["genre"] for r in rows if r["genre"]["type"] == "bnode")
    assert wikidata.qid_of(blank["value"]) is None and wikidata.literal(blank) is None


def test_a_recorded_answer_without_our_variables_concludes_nothing_wrong():
    """An answer naming no ?spotify and no ?item (another query's) must not invent an item
    for anyone asked: every ID asked is ``none``, nothing raises."""
    body = json.loads(SPARQL.read_bytes())
    ids = ["0TnOYISbd1XYRBk9myaseg", "1Xyo4u8uXC1ZmMpatF05PJ"]
    answers = wikidata.parse_answer(body, ids)
    assert answers == {i: wikidata.ArtistAnswer("none") for i in ids}


# ---------------------------------------------------------------- MusicBrainz
VARIOUS = "89ad4ac3-39f7-470e-963a-56509c546377"


def mb_body() -> dict[str, Any]:
    return json.loads(MB_SEARCH.read_bytes())


def rule_date(recording: dict[str, Any]) -> str | None:
    """The year rule written out again from the raw JSON, not through the parser: the
    earliest ``YYYY[-MM[-DD]]`` date (the release's own or an event's) of a release that is
    Official, not in a Compilation release group, not credited to Various Artists."""
    dates = []
    for release in recording.get("releases", []):
        if release.get("status") != "Official":
            continue
        if "Compilation" in release["release-group"].get("secondary-types", []):
            continue
        if any(c["artist"]["id"] == VARIOUS or c["name"] == "Various Artists"
               for c in release.get("artist-credit", [])):
            continue
        for date in [release.get("date")] + [e.get("date")
                                             for e in release.get("release-events", [])]:
            if date and re.fullmatch(r"\d{4}(-\d{2}(-\d{2})?)?", date) and date >= "1900":
                dates.append(date)
    return min(dates, default=None)


def test_a_recorded_recording_search_reads_isrc_by_isrc():
    body = mb_body()
    page = musicbrainz.parse_page(body)
    assert not isinstance(page, str)
    assert (page.count, page.offset, len(page.recordings), page.next_offset) == (1, 0, 1, None)
    recording = body["recordings"][0]
    carried = recording["isrcs"]
    assert carried == ["GBAHT1600302", "DEUM71601954"]      # the one asked, and another
    # What the body holds, as the service typed it: the rule has something to reject.
    statuses = {r["status"] for r in recording["releases"]}
    assert statuses == {"Official", "Promotion", "Withdrawn"}
    assert sum(any(c["artist"]["id"] == VARIOUS for c in r["artist-credit"])
               for r in recording["releases"]) == 4
    assert sum("date" not in r for r in recording["releases"]) > 0
    expected = rule_date(recording)
    assert expected == "2016-08-26" == recording["first-release-date"]

    # Asked in a batch with an ISRC the body does not carry, and one lower-cased.
    asked = ["gbaht1600302", "DEUM71601954", "USUM71700001"]
    answers, strays = musicbrainz.read_recordings(page.recordings, asked)
    assert strays == 0
    assert list(answers) == ["GBAHT1600302", "DEUM71601954", "USUM71700001"]
    for isrc in carried:
        assert answers[isrc] == musicbrainz.IsrcAnswer("found", expected, recording["id"])
        assert answers[isrc].year == 2016
    assert answers["USUM71700001"] == musicbrainz.IsrcAnswer("none")
    # Asked only for an ISRC it does not carry, the recording is a stray.
    answers, strays = musicbrainz.read_recordings(page.recordings, ["USUM71700001"])
    assert (answers, strays) == ({"USUM71700001": musicbrainz.IsrcAnswer("none")}, 1)


def test_the_recorded_search_without_its_single_skips_promo_and_compilations():
    """The recorded body's earliest trusted release is the worldwide single of the same day
    as the US promo, so the rule and ``first-release-date`` agree. Without that one release
    (everything else as recorded) the promo (2016-08-26) and the Various Artists compilation
    (2016-12-02) are still listed; the year must be 2017 (the EP of 2017-04-21, and a Russian
    CD dated "2017" only, which sorts first: same year)."""
    body = mb_body()
    recording = body["recordings"][0]
    single = [r for r in recording["releases"]
              if r["status"] == "Official" and r["release-group"]["primary-type"] == "Single"]
    assert [r["id"] for r in single] == ["383be31c-37a0-4e08-8cda-cbcbbc587ae5"]
    recording["releases"].remove(single[0])
    expected = rule_date(recording)
    assert expected == "2017"
    untrusted = [d for r in recording["releases"] if not musicbrainz.trusted(r)
                 for d in musicbrainz.release_dates(r)]
    assert min(untrusted) == "2016-08-26" < expected        # what the rule turns down
    answers, _ = musicbrainz.read_recordings(body["recordings"], ["GBAHT1600302"])
    assert answers["GBAHT1600302"].date == expected and answers["GBAHT1600302"].year == 2017


def test_the_recorded_search_without_releases_or_dates_has_no_year():
    """Stripped of its releases, or of every date (the service's missing keys and ``""``),
    the recording is still found and no year is invented from ``first-release-date``."""
    body = mb_body()
    bare = copy.deepcopy(body["recordings"][0])
    del bare["releases"]
    undated = copy.deepcopy(body["recordings"][0])
    for release in undated["releases"]:
        release.pop("date", None)
        for event in release.get("release-events", []):
            event["date"] = ""
    for recording in (bare, undated):
        assert rule_date(recording) is None
        answers, strays = musicbrainz.read_recordings([recording], ["GBAHT1600302"])
        assert strays == 0
        assert answers["GBAHT1600302"] == musicbrainz.IsrcAnswer("found", None,
                                                                 recording["id"])
