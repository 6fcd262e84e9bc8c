"""The simulator's open-data services over HTTP: Wikidata's SPARQL endpoint and MusicBrainz's
recording search, checked against the ground truth they are drawn from.
"""

from __future__ import annotations

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
