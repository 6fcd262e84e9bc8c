"""Wikidata: genre labels of artists by their Spotify artist ID, read without side effects.

One SPARQL query asks a batch of Spotify artist IDs at once (a ``VALUES`` list) for the items
that carry them as P1902 (Spotify artist ID) and the English labels of those items' P136
(genre). The answer is SPARQL 1.1 JSON (``head.vars``, ``results.bindings``); every binding
is a mapping of variable to ``{"type": "uri" | "literal" | "bnode", "value", "xml:lang"?}``.

Per ID asked: ``found`` (an item carries it; its genre labels, possibly none) or ``none`` (no
item does: the SPARQL service says nothing about an ID it has no row for). IDs that are not
22 base-62 characters never reach the query (they could not match, and the query text must
stay a list of plain literals).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

SPOTIFY_ID = re.compile(r"^[A-Za-z0-9]{22}$")
ENTITY = re.compile(r"^https?://www\.wikidata\.org/entity/(Q\d+)$")
MAX_BATCH = 500          # IDs per query: the simulator's cap, and well under WDQS's limits
LANGUAGE = "en"

QUERY = """SELECT ?spotify ?item ?genreLabel WHERE {{
  VALUES ?spotify {{ {values} }}
  ?item wdt:P1902 ?spotify .
  OPTIONAL {{
    ?item wdt:P136 ?genre .
    ?genre rdfs:label ?genreLabel .
    FILTER(LANG(?genreLabel) = "{language}")
  }}
}}"""


@dataclass(slots=True)
class ArtistAnswer:
    state: str                                  # found | none
    qid: str | None = None                      # the item (smallest QID when several)
    labels: list[str] = field(default_factory=list)   # genre labels, as answered, sorted


def askable(ids: Iterable[str]) -> list[str]:
    """The IDs a query may carry, deduplicated, in the order given."""
    return [i for i in dict.fromkeys(ids) if isinstance(i, str) and SPOTIFY_ID.match(i)]


def build_query(ids: Iterable[str]) -> str:
    """The SPARQL query for a batch of Spotify artist IDs (at most ``MAX_BATCH``)."""
    ids = askable(ids)
    if not ids:
        raise ValueError("a Wikidata query needs at least one Spotify artist ID")
    if len(ids) > MAX_BATCH:
        raise ValueError(f"at most {MAX_BATCH} Spotify artist IDs per Wikidata query, "
                         f"not {len(ids)}")
    values = " ".join(f'"{i}"' for i in ids)
    return QUERY.format(values=values, language=LANGUAGE)


def qid_of(value: Any) -> str | None:
    """``Q42`` from ``http://www.wikidata.org/entity/Q42``; None for anything else."""
    match = ENTITY.match(value) if isinstance(value, str) else None
    return match.group(1) if match else None


def bindings(body: Any) -> list[dict[str, dict[str, Any]]] | str:
    """The rows of a SPARQL JSON answer, or why it has none (a garbled or foreign body).
    Rows that are not mappings, and cells that are not ``{"type", "value"}`` mappings, are
    left out."""
    results = body.get("results") if isinstance(body, dict) else None
    rows = results.get("bindings") if isinstance(results, dict) else None
    if not isinstance(rows, list):
        return "a body without results.bindings"
    clean = []
    for row in rows:
        if not isinstance(row, dict):
            continue
        clean.append({var: cell for var, cell in row.items()
                      if isinstance(var, str) and isinstance(cell, dict)
                      and isinstance(cell.get("type"), str)
                      and isinstance(cell.get("value"), str)})
    return clean


def literal(cell: dict[str, Any] | None, language: str | None = None) -> str | None:
    """A literal cell's text (in ``language`` when given and the cell says one), else None."""
    if not cell or cell.get("type") != "literal":
        return None
    lang = cell.get("xml:lang")
    if language is not None and lang is not None and lang != language:
        return None
    text = " ".join(cell["value"].split())
    return text or None


def parse_answer(body: Any, ids: Iterable[str]) -> dict[str, ArtistAnswer] | str:
    """Every askable ID's answer, in the order asked; or why the body is unusable (a
    transient fault: nothing is concluded from it)."""
    rows = bindings(body)
    if isinstance(rows, str):
        return rows
    asked = askable(ids)
    wanted = set(asked)
    qids: dict[str, set[str]] = {}
    labels: dict[str, set[str]] = {}
    for row in rows:
        spotify = literal(row.get("spotify"))
        qid = qid_of((row.get("item") or {}).get("value")) \
            if (row.get("item") or {}).get("type") == "uri" else None
        if spotify not in wanted or qid is None:
            continue            # a row for an ID not asked, or an item that is no entity
        qids.setdefault(spotify, set()).add(qid)
        label = literal(row.get("genreLabel"), LANGUAGE)
        if label is not None:
            labels.setdefault(spotify, set()).add(label)
    answers = {}
    for artist_id in asked:
        if artist_id in qids:
            answers[artist_id] = ArtistAnswer(
                "found", min(qids[artist_id], key=lambda q: int(q[1:])),
                sorted(labels.get(artist_id, ())))
        else:
            answers[artist_id] = ArtistAnswer("none")
    return answers
