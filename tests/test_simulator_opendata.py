"""The simulator's open-data services over HTTP: Wikidata's SPARQL endpoint and MusicBrainz's
recording search, checked against the ground truth they are drawn from.
"""

from __future__ import annotations

import http.client
import json
import re
import uuid
from pathlib import Path

import pytest
import requests

from runclub_spiders.simulator import Simulator
from runclub_spiders.simulator import vocabulary as v

AGENT = {"User-Agent": "runclub-spiders-tests/1.0 (owner@example.org)"}


# ---------------------------------------------------------------- Wikidata
def sparql_query(ids: list[str]) -> str:
    values = " ".join(f'"{i}"' for i in ids)
    return ("SELECT ?spotify ?item ?genreLabel WHERE {\n"
            f"  VALUES ?spotify {{ {values} }}\n"
            "  ?item wdt:P1902 ?spotify .\n"
            "  OPTIONAL { ?item wdt:P136 ?genre . }\n"
            '  SERVICE wikibase:label { bd:serviceParam wikibase:language "en". }\n'
            "}")


def sparql(sim: Simulator, ids: list[str], *, post: bool = False,
           headers: dict[str, str] | None = None) -> requests.Response:
    if post:
        return requests.post(sim.wikidata_sparql_url, data={"query": sparql_query(ids)},
                             headers={**AGENT, "Accept": "application/sparql-results+json",
                                      **(headers or {})}, timeout=10)
    return requests.get(sim.wikidata_sparql_url,
                        params={"query": sparql_query(ids), "format": "json"},
                        headers={**AGENT, **(headers or {})}, timeout=10)


def answered(body: dict) -> dict[str, tuple[str, set[str]]]:
    """Spotify ID -> (item URI, genre labels) from SPARQL JSON bindings."""
    out: dict[str, tuple[str, set[str]]] = {}
    for row in body["results"]["bindings"]:
        item, labels = out.setdefault(row["spotify"]["value"], (row["item"]["value"], set()))
        assert row["item"]["value"] == item
        if "genreLabel" in row:
            labels.add(row["genreLabel"]["value"])
    return out


def test_wikidata_answers_the_truth_in_sparql_json(simulator_factory):
    sim = simulator_factory()
    truth = sim.wikidata.truth()
    artists = [a.id for a in sim.catalog.artists]
    seen: dict[str, tuple[str, set[str]]] = {}
    for start in range(0, len(artists), 100):          # POST first, then GET
        batch = artists[start:start + 100]
        response = sparql(sim, batch, post=start == 0)
        assert response.status_code == 200, response.text
        assert response.headers["Content-Type"] == "application/sparql-results+json;charset=utf-8"
        body = response.json()
        assert list(body) == ["head", "results"]
        assert body["head"] == {"vars": ["spotify", "item", "genreLabel"]}
        for row in body["results"]["bindings"]:
            assert set(row) <= {"spotify", "item", "genreLabel"}
            assert row["spotify"] == {"type": "literal", "value": row["spotify"]["value"]}
            assert row["item"]["type"] == "uri"
            assert row["item"]["value"].startswith("http://www.wikidata.org/entity/Q")
            if "genreLabel" in row:
                assert list(row["genreLabel"]) == ["xml:lang", "type", "value"]
                assert row["genreLabel"]["xml:lang"] == "en"
                assert row["genreLabel"]["type"] == "literal"
        seen.update(answered(body))
    # exactly the artists with an item, with exactly their labels
    expected = {a: ("http://www.wikidata.org/entity/" + t["item"], set(t["genres"]))
                for a, t in truth.items() if t["item"]}
    assert seen == expected
    # realistic gaps: ~70% have an item, some items carry no genre, all labels are known
    share = len(expected) / len(artists)
    assert 0.62 <= share <= 0.78, share
    with_genres = sum(1 for _, labels in expected.values() if labels) / len(artists)
    assert 0.5 <= with_genres <= 0.72, with_genres
    assert any(not labels for _, labels in expected.values())
    served = set().union(*(labels for _, labels in expected.values()))
    assert served <= set(v.WIKIDATA_LABELS)
    assert "hip hop music" in served and "rock music" in served
    # labels come from the artist's true genres, never from another umbrella
    for artist in sim.catalog.artists:
        for label in truth[artist.id]["genres"]:
            assert set(v.WIKIDATA_LABEL_GENRES[label]) & set(artist.genres)
            assert v.WIKIDATA_LABEL_UMBRELLA[label] in artist.umbrellas
    # the request log names the service
    assert {e.service for e in sim.requests()} == {"wikidata"}
    assert len(sim.requests(service="wikidata")) == -(-len(artists) // 100) >= 2


def test_wikidata_vocabulary_covers_every_simulated_genre():
    genres = {g for pool in v.UMBRELLA_GENRES.values() for g in pool}
    assert set(v.WIKIDATA_LABEL) == genres
    assert v.WIKIDATA_LABEL["hip hop"] == "hip hop music"
    assert v.WIKIDATA_LABEL["r&b"] == "contemporary R&B"
    assert v.WIKIDATA_LABEL["brostep"] == "dubstep"           # micro-genre to its parent
    assert set(v.WIKIDATA_LABELS) == set(v.WIKIDATA_LABEL.values())
    assert set(v.WIKIDATA_LABEL_UMBRELLA) == set(v.WIKIDATA_LABELS)


def test_wikidata_bad_input_rate_limit_user_agent_and_outage(simulator_factory):
    sim = simulator_factory(wikidata_rate_limit=3, wikidata_rate_window=30)
    ids = [a.id for a in sim.catalog.artists[:5]]
    unknown = sparql(sim, ["0000000000000000000000", "not an id"])
    assert unknown.status_code == 200 and unknown.json()["results"]["bindings"] == []
    no_values = requests.get(sim.wikidata_sparql_url, headers=AGENT, timeout=10,
                             params={"query": "SELECT ?item WHERE { ?item wdt:P1902 ?s }",
                                     "format": "json"})
    assert no_values.status_code == 400
    assert no_values.text.startswith("SPARQL-QUERY: queryStr=SELECT ?item")
    assert "MalformedQueryException" in no_values.text
    assert sparql(sim, ids).status_code == 200
    # the fourth query of this client in 30 s (errors count too, as on Wikidata)
    limited = sparql(sim, ids)
    assert limited.status_code == 429
    retry_after = int(limited.headers["Retry-After"])
    assert 1 <= retry_after <= 30
    assert limited.text == f"Too Many Requests - Please retry in {retry_after} seconds."
    other_client = sparql(sim, ids, headers={"User-Agent": "another-tool/2.0 (x@example.org)"})
    assert other_client.status_code == 200
    too_many = sparql(sim, [f"{n:022d}" for n in range(501)], post=True,
                      headers={"User-Agent": "third-tool/1.0 (x@example.org)"})
    assert too_many.status_code == 400 and "at most 500" in too_many.text
    statuses = [e.status for e in sim.requests(service="wikidata")]
    assert statuses == [200, 400, 200, 429, 200, 400]

    strict = simulator_factory(wikidata_block_default_ua=True)
    bare = requests.get(strict.wikidata_sparql_url, timeout=10,      # python-requests/x.y
                        params={"query": sparql_query(ids), "format": "json"})
    assert bare.status_code == 403 and "user-agent" in bare.text
    assert sparql(strict, ids).status_code == 200

    down = simulator_factory(wikidata_down=True)
    outage = sparql(down, ids)
    assert outage.status_code == 503 and "text/html" in outage.headers["Content-Type"]
    assert [e.fault for e in down.requests(service="wikidata")] == ["down"]


# ---------------------------------------------------------------- MusicBrainz
def mb_search(sim: Simulator, query: str, headers: dict[str, str] | None = None,
              **params) -> requests.Response:
    return requests.get(f"{sim.musicbrainz_base_url}/ws/2/recording",
                        params={"query": query, "fmt": "json", **params},
                        headers=AGENT if headers is None else headers, timeout=10)


def trusted_year(recordings: list[dict]) -> int | None:
    """A careful client's year: the earliest release that is neither typed Compilation nor
    credited to Various Artists, over every recording of the ISRC."""
    years = [int(release["date"][:4]) for recording in recordings
             for release in recording["releases"]
             if "Compilation" not in release["release-group"].get("secondary-types", [])
             and not any(c["name"] == "Various Artists"
                         for c in release.get("artist-credit", []))]
    return min(years) if years else None


def test_musicbrainz_answers_isrc_batches_with_the_truth(simulator_factory):
    sim = simulator_factory()
    catalog = sim.catalog
    first_of: dict[str, int] = {}
    for track in catalog.tracks:
        first_of.setdefault(track.isrc, track.original_year)
    isrcs = sorted(first_of)
    hits: dict[str, list[dict]] = {}
    for start in range(0, len(isrcs), 100):
        batch = isrcs[start:start + 100]
        query = (" OR ".join(f"isrc:{i}" for i in batch) if start % 200 == 0
                 else f"isrc:({' OR '.join(batch)})")
        response = mb_search(sim, query, limit=100)
        assert response.status_code == 200, response.text
        assert response.headers["Content-Type"] == "application/json; charset=utf-8"
        body = response.json()
        assert list(body) == ["created", "count", "offset", "recordings"]
        assert body["offset"] == 0 and re.match(r"^\d{4}-\d\d-\d\dT", body["created"])
        recordings = body["recordings"]
        if body["count"] > 100:                         # duplicates: page on with offset
            more = mb_search(sim, query, limit=100, offset=100).json()
            assert more["offset"] == 100
            recordings += more["recordings"]
        assert len(recordings) == body["count"]
        for recording in recordings:
            assert recording["score"] == 100 and recording["isrcs"][0] in batch
            hits.setdefault(recording["isrcs"][0], []).append(recording)
    # coverage: ~70% of ISRCs are known, exactly the ones the truth says
    assert set(hits) == {i for i in isrcs if sim.musicbrainz.known(i)}
    assert 0.65 <= len(hits) / len(isrcs) <= 0.75, len(hits) / len(isrcs)
    one = next(iter(hits.values()))[0]
    assert set(one) == {"id", "score", "title", "length", "video", "artist-credit",
                        "first-release-date", "releases", "isrcs"}
    assert uuid.UUID(one["id"]) and one["artist-credit"][0]["artist"]["id"]
    release = one["releases"][0]
    assert release["status"] == "Official" and release["release-group"]["primary-type"] in (
        "Album", "Single")
    # the truth: trusted releases give the original year of every known recording
    assert all(trusted_year(found) == first_of[isrc] for isrc, found in hits.items())
    # ...while first-release-date alone, or the earliest release of any kind, is wrong for
    # some (the quirks: late dates, misdated Various Artists compilations, some untyped)
    naive = [isrc for isrc, found in hits.items()
             if min(int(r["first-release-date"][:4]) for r in found) != first_of[isrc]]
    assert 0.05 <= len(naive) / len(hits) <= 0.15, len(naive) / len(hits)
    any_release = [isrc for isrc, found in hits.items()
                   if min(int(r["date"][:4]) for f in found for r in f["releases"])
                   != first_of[isrc]]
    assert 0 < len(any_release) < len(naive)
    releases = [r for found in hits.values() for f in found for r in f["releases"]]
    various = [r for r in releases if r.get("artist-credit", [{}])[0].get("name")
               == "Various Artists"]
    typed = [r for r in various if r["release-group"].get("secondary-types") == ["Compilation"]]
    assert various and 0 < len(typed) < len(various)
    assert any(len(found) == 2 for found in hits.values())       # an ISRC on two recordings
    # --truth carries the same
    track = next(t for t in catalog.tracks if t.isrc in hits)
    truth = sim.opendata_truth(track)["musicbrainz"]
    assert truth["known"] and truth["original_year"] == first_of[track.isrc]
    assert set(truth["recordings"]) == {r["id"] for r in hits[track.isrc]}
    assert len(sim.requests(service="musicbrainz")) >= len(isrcs) // 100


def test_musicbrainz_bad_input_user_agent_rate_and_outage(simulator_factory):
    sim = simulator_factory(musicbrainz_rate=1.0, musicbrainz_rate_window=3)
    isrc = sim.catalog.tracks[0].isrc
    for limit in (0, 101):
        bad = mb_search(sim, f"isrc:{isrc}", limit=limit)
        assert bad.status_code == 400 and "between 1 and 100" in bad.json()["error"]
    free_text = mb_search(sim, "artist:someone")
    assert free_text.status_code == 400 and "isrc:" in free_text.json()["error"]
    over = mb_search(sim, f"isrc:{isrc}")       # the fourth request in 3 s: over the rate
    assert over.status_code == 503
    assert over.json() == {
        "error": "Your requests are exceeding the allowable rate limit. Please see "
                 "https://musicbrainz.org/doc/XML_Web_Service/Rate_Limiting for more "
                 "information.",
        "help": "For usage, please see: https://musicbrainz.org/development/mmd"}
    assert 1 <= int(over.headers["Retry-After"]) <= 3
    other = {"User-Agent": "another-app/2.0 ( other@example.org )"}    # its own window
    assert mb_search(sim, f"isrc:{isrc}", headers=other).json()["count"] >= 0
    assert mb_search(sim, f"isrc:{isrc}", headers=other, fmt="xml").status_code == 406
    for agent in ("python-requests/2.32.3", "Scrapy/2.13 (+https://scrapy.org)", None):
        # None: requests sends no User-Agent of its own, urllib3 then sends its default
        refused = requests.get(f"{sim.musicbrainz_base_url}/ws/2/recording", timeout=10,
                               params={"query": f"isrc:{isrc}", "fmt": "json"},
                               headers={"User-Agent": agent})
        assert refused.status_code == 403, agent
        assert "User-Agent" in refused.json()["error"]
    bare = http.client.HTTPConnection("127.0.0.1", sim.port, timeout=10)   # no header at all
    bare.request("GET", f"/musicbrainz/ws/2/recording?query=isrc:{isrc}&fmt=json")
    assert bare.getresponse().status == 403
    bare.close()
    log = sim.requests(service="musicbrainz")
    assert [e.status for e in log] == [400, 400, 400, 503, 200, 406, 403, 403, 403, 403]
    assert log[3].fault == "rate limit" and log[3].retry_after == over.headers["Retry-After"]

    down = simulator_factory(musicbrainz_down=True)
    outage = mb_search(down, f"isrc:{isrc}")
    assert outage.status_code == 503 and "Service Temporarily Unavailable" in outage.text
    assert [e.fault for e in down.requests(service="musicbrainz")] == ["down"]


# ---------------------------------------------------------------- against recorded bodies
REAL = Path(__file__).parent / "fixtures" / "real"


def recorded(*keys: str) -> list[tuple[Path, dict]]:
    """Recorded real bodies (tests/fixtures/real/, see SOURCES.md) whose top level has
    ``keys``."""
    found = []
    for path in sorted(REAL.rglob("*.json")):
        try:
            body = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            continue
        if isinstance(body, dict) and set(keys) <= set(body):
            found.append((path, body))
    return found


def term_keys(body: dict) -> dict[str, set[frozenset[str]]]:
    """RDF term type -> the key sets its term objects come with, over every binding."""
    out: dict[str, set[frozenset[str]]] = {}
    for row in body["results"]["bindings"]:
        for term in row.values():
            out.setdefault(term["type"], set()).add(frozenset(term))
    return out


def test_wikidata_answers_have_the_structure_of_recorded_sparql_results(simulator_factory):
    bodies = recorded("head", "results")
    if not bodies:
        pytest.skip("no recorded SPARQL JSON results under tests/fixtures/real/")
    sim = simulator_factory()
    artist = next(a for a in sim.catalog.artists
                  if (e := sim.wikidata.entry(a)) is not None and e.genres)
    for path, real in bodies:
        names = real["head"]["vars"]
        served = set(names) & {"spotify", "item", "genre", "genreLabel"}
        if not served:
            continue
        query = sparql_query([artist.id]).replace(
            "SELECT ?spotify ?item ?genreLabel", "SELECT " + " ".join(f"?{n}" for n in names))
        ours = requests.post(sim.wikidata_sparql_url, data={"query": query, "format": "json"},
                             headers=AGENT, timeout=10).json()
        assert list(ours) == list(real) == ["head", "results"], path
        assert list(ours["head"]) == list(real["head"]) and ours["head"]["vars"] == names
        assert list(ours["results"]) == list(real["results"]) == ["bindings"]
        assert ours["results"]["bindings"], path
        mine, theirs = term_keys(ours), term_keys(real)
        for kind in set(mine) & set(theirs):
            assert mine[kind] <= theirs[kind], (path, kind)


def test_musicbrainz_answers_have_the_structure_of_recorded_search_results(simulator_factory):
    bodies = recorded("created", "count", "offset", "recordings")
    if not bodies:
        pytest.skip("no recorded MusicBrainz recording search under tests/fixtures/real/")
    sim = simulator_factory()
    isrc = next(t.isrc for t in sim.catalog.tracks if sim.musicbrainz.known(t.isrc))
    ours = mb_search(sim, f"isrc:{isrc}").json()
    for path, real in bodies:
        # Keys as a set: a recorded body may have been re-serialised with sorted keys
        # (musicbrainz_rs's is, see SOURCES.md), so its key order is not the service's.
        assert set(ours) == set(real), path
        mine, theirs = ours["recordings"][0], real["recordings"][0]
        assert set(mine) <= set(theirs), path
        # what a client reads is where the real service puts it
        for key in ("id", "score", "title", "first-release-date", "releases", "isrcs",
                    "artist-credit"):
            if key in theirs:
                assert type(mine[key]) is type(theirs[key]), (path, key)
        if theirs.get("releases"):
            # Real releases differ in which keys they carry (no date, country or events on
            # many digital ones), so ours are checked against every key a real one had.
            real_keys = set().union(*(r.keys() for r in theirs["releases"]))
            group_keys = set().union(*(r["release-group"].keys() for r in theirs["releases"]))
            for release in mine["releases"]:
                assert set(release) - {"artist-credit"} <= real_keys | {"media"}, path
                assert set(release["release-group"]) - {"secondary-types",
                                                        "secondary-type-ids"} \
                    <= group_keys | {"type-id", "primary-type-id"}, path
            # the fields the year rule reads come in the real body's types and shapes
            dated = next(r for r in theirs["releases"] if r.get("release-events"))
            credit = dated["artist-credit"][0]
            for release in mine["releases"]:
                for key in ("status", "date", "release-events", "artist-credit"):
                    if key in release:
                        assert type(release[key]) is type(dated[key]), (path, key)
                assert all(set(e) == set(dated["release-events"][0])
                           for e in release.get("release-events", [])), path
                assert all(set(c) <= set(credit) | {"joinphrase"}
                           and {"id", "name"} <= set(c["artist"])
                           for c in release.get("artist-credit", [])), path
