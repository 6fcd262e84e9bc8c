"""Wikidata's SPARQL endpoint (query.wikidata.org/sparql) over the synthetic catalog.

Only the one query shape the crawler sends (``opendata/wikidata.py``, ``QUERY``) is
understood: artists by Spotify artist ID (property P1902) with their genres (P136) and those
genres' English ``rdfs:label``::

    SELECT ?spotify ?item ?genreLabel WHERE {
      VALUES ?spotify { "0TnOYISbd1XYRBk9myaseg" "..." }
      ?item wdt:P1902 ?spotify .
      OPTIONAL {
        ?item wdt:P136 ?genre .
        ?genre rdfs:label ?genreLabel .
        FILTER(LANG(?genreLabel) = "en")
      }
    }

The IDs come from the ``VALUES ?spotify { ... }`` list and the variables from ``SELECT`` (a
regex, not a SPARQL parser: the label service form, ``SERVICE wikibase:label``, gets the same
answer); the answer is SPARQL 1.1 JSON results, one binding per (artist, genre), an item
without P136 as one binding without ``genreLabel`` (the OPTIONAL left unbound), an unknown ID
as no binding.

Which artists have an item, and which genre labels it carries, is drawn per artist from the
catalog seed (the same artist always gets the same answer) and is ground truth for tests:
``Wikidata.entry``/``Wikidata.truth``. Labels are Wikidata's vocabulary
(``vocabulary.WIKIDATA_LABEL``), derived from the artist's true genres.
"""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from runclub_spiders.simulator import vocabulary as v
from runclub_spiders.simulator.catalog import Artist, Catalog
from runclub_spiders.simulator.config import SimulatorConfig
from runclub_spiders.simulator.limits import default_agent

MAX_VALUES = 500          # the simulator's cap on one VALUES list (Wikidata has none published)
ENTITY = "http://www.wikidata.org/entity/"
CONTENT_TYPE = "application/sparql-results+json;charset=utf-8"
VALUES = re.compile(r"VALUES\s+\?spotify\s*\{([^}]*)\}", re.IGNORECASE)
LITERAL = re.compile(r'"([^"\\]*)"')
SELECT = re.compile(r"SELECT\s+(?:DISTINCT\s+|REDUCED\s+)?((?:\?\w+\s*)+)", re.IGNORECASE)
DEFAULT_VARS = ("spotify", "item", "genreLabel")
# Wikimedia's answer to a User-Agent its policy (enforced from August 2025) refuses, when
# ``wikidata_block_default_ua`` is on: none at all, or a library's default (limits.py).
BLOCKED_TEXT = ("Please set a user-agent and respect our robot policy https://w.wiki/4wJS. "
                "See also https://phabricator.wikimedia.org/T400119.\n")
DOWN_HTML = ("<!DOCTYPE html><html lang=\"en\"><meta charset=\"utf-8\"><title>Wikimedia Error"
             "</title><p>Our servers are currently under maintenance or experiencing a "
             "technical issue. Please try again in a few minutes.</p></html>")


def unit(*parts: object) -> float:
    """A reproducible draw in [0, 1) from ``parts``."""
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def qid(*parts: object) -> str:
    return f"Q{1_000_000 + int(unit('qid', *parts) * 120_000_000)}"


@dataclass(frozen=True, slots=True)
class Entry:
    """An artist's Wikidata item: its Q-ID and the English labels of its P136 genres."""

    item: str
    genres: tuple[str, ...]          # empty: the item has no P136 statement


class Wikidata:
    def __init__(self, catalog: Catalog, config: SimulatorConfig) -> None:
        self.catalog, self.config = catalog, config
        self._entries: dict[int, Entry | None] = {}

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/sparql", self.sparql), web.post("/sparql", self.sparql)]

    # ---------------------------------------------------------------- ground truth
    def entry(self, artist: Artist) -> Entry | None:
        """The artist's item, or None when Wikidata has none (``wikidata_coverage``)."""
        if artist.idx in self._entries:
            return self._entries[artist.idx]
        seed = self.catalog.seed
        found: Entry | None = None
        # One draw per artist: raising the coverage only adds items, never moves them.
        if unit(seed, "wikidata-item", artist.id) < self.config.wikidata_coverage:
            labels: list[str] = []
            if artist.genres and (unit(seed, "wikidata-p136", artist.id)
                                  >= self.config.wikidata_no_genre_rate):
                for n, genre in enumerate(artist.genres):
                    label = v.WIKIDATA_LABEL[genre]
                    # Editors record fewer genres than Spotify tags: the first always, each
                    # further one four times in five.
                    if label not in labels and (
                            n == 0 or unit(seed, "wikidata-keep", artist.id, genre) < 0.8):
                        labels.append(label)
            found = Entry(qid(seed, artist.id), tuple(labels))
        self._entries[artist.idx] = found
        return found

    def truth(self) -> dict[str, dict[str, Any]]:
        """Artist ID -> ``{"item": Q-ID or None, "genres": [labels]}`` for every artist."""
        out = {}
        for artist in self.catalog.artists:
            entry = self.entry(artist)
            out[artist.id] = {"item": entry.item if entry else None,
                              "genres": list(entry.genres) if entry else []}
        return out

    # ---------------------------------------------------------------- service rules
    def refused(self, request: web.Request) -> tuple[web.Response, str] | None:
        """Outage and User-Agent refusals, checked before any query is read."""
        if self.config.wikidata_down:
            return web.Response(status=503, text=DOWN_HTML, content_type="text/html"), "down"
        if self.config.wikidata_block_default_ua and default_agent(
                request.headers.get("User-Agent", "")):
            return web.Response(status=403, text=BLOCKED_TEXT), "user agent"
        return None

    @staticmethod
    def rate_limited(retry_after: int) -> web.Response:
        # The Query Service's throttle: 429 with Retry-After in seconds and a one-line body.
        return web.Response(status=429, headers={"Retry-After": str(retry_after)},
                            text=f"Too Many Requests - Please retry in {retry_after} seconds.")

    # ---------------------------------------------------------------- the endpoint
    async def sparql(self, request: web.Request) -> web.Response:
        fmt = request.query.get("format", "")
        if request.method == "POST":
            if request.content_type == "application/sparql-query":
                query = await request.text()
            else:
                form = await request.post()
                query = str(form.get("query", ""))
                fmt = str(form.get("format", fmt))
        else:
            query = request.query.get("query", "")
        if not query.strip():
            return _malformed(query, "no query: give query= (GET parameter or POST form)")
        accept = request.headers.get("Accept", "")
        if fmt != "json" and "application/sparql-results+json" not in accept \
                and "application/json" not in accept:
            # Wikidata would answer SPARQL XML; the simulator serves JSON only.
            return web.Response(status=406, text="the simulator serves SPARQL JSON results "
                                                 "only: add format=json or Accept: "
                                                 "application/sparql-results+json\n")
        values = VALUES.search(query)
        if values is None:
            return _malformed(query, "the simulator answers only queries with a "
                                     "VALUES ?spotify { \"...\" } list")
        ids = LITERAL.findall(values.group(1))
        if len(ids) > MAX_VALUES:
            return _malformed(query, f"VALUES ?spotify lists {len(ids)} IDs; the simulator "
                                     f"accepts at most {MAX_VALUES} per query")
        select = SELECT.search(query)
        names = tuple(w.lstrip("?") for w in select.group(1).split()) if select else DEFAULT_VARS
        rows = [row for spotify_id in dict.fromkeys(ids) for row in self._bindings(spotify_id)]
        # Result order is the engine's, not the VALUES order: clients join on ?spotify.
        random.Random(query).shuffle(rows)
        body = {"head": {"vars": list(names)},
                "results": {"bindings": [{k: row[k] for k in names if k in row}
                                         for row in rows]}}
        return web.Response(body=orjson.dumps(body), headers={"Content-Type": CONTENT_TYPE})

    def _bindings(self, spotify_id: str) -> list[dict[str, dict[str, str]]]:
        artist = self.catalog.artist_by_id.get(spotify_id)
        entry = self.entry(artist) if artist is not None else None
        if entry is None:
            return []
        base = {"spotify": {"type": "literal", "value": spotify_id},
                "item": {"type": "uri", "value": ENTITY + entry.item}}
        if not entry.genres:
            return [base]
        return [{**base, "genre": {"type": "uri", "value": ENTITY + qid("genre", label)},
                 "genreLabel": {"xml:lang": "en", "type": "literal", "value": label}}
                for label in entry.genres]


def _malformed(query: str, message: str) -> web.Response:
    # Blazegraph's 400: the query echoed, then the Java exception, as plain text.
    return web.Response(status=400, text=(
        f"SPARQL-QUERY: queryStr={query}\njava.util.concurrent.ExecutionException: "
        f"org.openrdf.query.MalformedQueryException: {message}\n"))
