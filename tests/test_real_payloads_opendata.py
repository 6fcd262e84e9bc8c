"""Open-data bodies recorded from the live services by others, through our parsers.

``tests/fixtures/real/SOURCES.md`` says where each comes from and under which licence
(``tests/test_real_payloads.py`` checks every file's SHA-256 there). Only a Wikidata query
service answer was found in a usable form: a recorded MusicBrainz recording search was found
but not copied (SOURCES.md says why); the MusicBrainz parser is tested on hand-written bodies
and against the simulator in ``tests/test_opendata.py``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from runclub_spiders.opendata import wikidata

REAL = Path(__file__).parent / "fixtures" / "real"
SPARQL = REAL / "wikibase-sdk" / "single_var_sparql_results.json"


def test_the_recorded_body_is_the_one_listed():
    sources = (REAL / "SOURCES.md").read_text(encoding="utf-8")
    digest = hashlib.sha256(SPARQL.read_bytes()).hexdigest()
    assert f"| `wikibase-sdk/single_var_sparql_results.json` | `{digest}` |" in sources
    assert (REAL / "LICENSES" / "MIT-wikibase-sdk.txt").stat().st_size > 1000


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
