"""Hostile data from the API: a full crawl against a simulator that corrupts what it serves.

``hostile_rate`` makes the simulator serve, on search and playlist-item pages, tracks with a
5,000-character name or odd Unicode (RLM, RLO, a ZWJ emoji, NUL, a C1 control, a BOM, a lone
surrogate), tracks missing ``id``/``artists``/``album``/``duration_ms``, mistyped fields
(``duration_ms: "abc"``, ``artists: {...}``, ``explicit: "yes"``), copies of an earlier track
on the same page, a paging ``total`` of 10**12 and a ``next`` on another host. The simulator's
request log says which corruption went out in which response; the crawl must finish cleanly,
skip exactly the corrupted tracks it cannot trust (every skip counted per reason), repair and
keep the rest, publish an export that passes every check with no control character, no
oversized name and no duplicate ID, and never send a request anywhere but the simulator.
"""

from __future__ import annotations

import json
import sqlite3
import time
import unicodedata
from collections import Counter
from contextlib import closing
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from scrapy import signals
from scrapy.utils.defer import deferred_f_from_coro_f

from runclub_spiders.export.validate import ROW_FILES, validate_export
from runclub_spiders.runs import crawl_catalog
from runclub_spiders.simulator.hostile import REPAIR_NOTES, TRACK_KINDS
from runclub_spiders.spotify_objects import KEPT_FORMAT, MAX_TEXT
from tests.conftest import crawl_settings, use_credentials

SIZE = 6000
RATE = 0.05
SETTINGS = {"CATALOG_CELL_MIN": 4, "CATALOG_CELL_TARGET": 8, "CATALOG_MAX_TRACKS": 1200,
            "DISCOVERY_PROGRESS_INTERVAL": 0, "DISCOVERY_CONCURRENCY": 4}


def bad_characters(text: str) -> list[str]:
    """What clean_text promises never to let through."""
    bad = []
    for ch in text:
        category = unicodedata.category(ch)
        if category in ("Cc", "Cs") or (category == "Cf" and ch not in KEPT_FORMAT):
            bad.append(f"U+{ord(ch):04X}")
    return bad


def strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


@pytest.mark.slow
@deferred_f_from_coro_f
async def test_hostile_data_is_skipped_or_repaired_and_never_exported(
        simulator_factory, monkeypatch, tmp_path: Path, figures):
    # No playlist extras (null items, local files, episodes): every skip is then a corruption.
    sim = simulator_factory(size=SIZE, profile="development", hostile_rate=RATE, fault_seed=7,
                            playlist_extras=False)
    use_credentials(monkeypatch, sim)
    export = tmp_path / "exports" / "catalog"
    sent: list[str] = []

    def record_requests(crawler) -> None:          # both crawls: the export sends none
        crawler.signals.connect(lambda request, spider: sent.append(request.url),
                                signal=signals.request_reached_downloader, weak=False)

    started = time.monotonic()
    run = await crawl_catalog(crawl_settings(
        sim, tmp_path, CATALOG_STORE_PATH=str(tmp_path / "store.sqlite"), EXPORT_DIR=str(export),
        **SETTINGS), prepare=record_requests)
    seconds = time.monotonic() - started
    stats, exported = run.discovery_stats, run.export_stats

    # Nothing crashed.
    assert stats["finish_reason"] == "finished" == exported["finish_reason"]
    assert run.errors == 0

    # Every corruption was served, and every one the crawler cannot trust was skipped and
    # counted under its reason; nothing else was skipped.
    served = sim.hostile_served()
    assert set(served) == {*TRACK_KINDS, "huge_total", "foreign_next"}, served
    expected = sim.hostile_skips()
    skipped = {key.removeprefix("discovery/skipped/"): n for key, n in stats.items()
               if key.startswith("discovery/skipped/")}
    assert skipped == dict(expected), (skipped, expected)
    assert skipped and all(n > 0 for n in skipped.values()), skipped
    # The others were repaired and kept, and counted as such.
    repaired = {key.removeprefix("discovery/repaired/"): n for key, n in stats.items()
                if key.startswith("discovery/repaired/")}
    assert repaired == {note: served[kind] for kind, note in REPAIR_NOTES.items()}

    # Repaired names keep their valid odd Unicode (RLM, the ZWJ emoji) and lose the rest.
    with closing(sqlite3.connect(tmp_path / "store.sqlite")) as db:
        names = [row[0] for row in db.execute("SELECT name FROM tracks")]
    odd = [n for n in names if "\U0001f3c3\u200d\u2640\ufe0f" in n]
    assert odd and all(n.startswith("\u200f") and not bad_characters(n) for n in odd)
    assert max(len(n) for n in names) <= MAX_TEXT

    # The export is published and passes every check ...
    assert exported["export/published"] == 1
    checks = validate_export(export)
    failed = [f"{c.name}: {c.detail}" for c in checks if not c.ok]
    assert not failed, failed
    # ... and no row carries a control character, an override or an oversized string.
    rows = 0
    for name in ROW_FILES:
        with (export / name).open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, 1):
                rows += 1
                for text in strings(json.loads(line)):
                    assert len(text) <= MAX_TEXT, f"{name}:{number} has {len(text)} chars"
                    assert not bad_characters(text), f"{name}:{number}: {bad_characters(text)}"
    tracks = [json.loads(line) for line in (export / "cached_tracks.jsonl").open()]
    assert len({t["id"] for t in tracks}) == len(tracks) == exported["export/tracks"] > 0
    truncated = [t["name"] for t in tracks if t["name"].endswith("\u2026")]

    # The crawler computes its offsets: the foreign ``next`` links were never followed. Every
    # request the downloader sent went to the simulator, and the simulator's log holds
    # exactly those requests, path for path.
    hosts = Counter(urlsplit(url).hostname or urlsplit(url).scheme for url in sent)
    assert set(hosts) == {"127.0.0.1"}, hosts
    assert Counter(urlsplit(url).path for url in sent if url.startswith("http")) == \
        Counter(entry.path for entry in sim.requests())
    assert not any("steal" in entry.path for entry in sim.requests())

    figures("hostile corruptions served",
            ", ".join(f"{kind} {n}" for kind, n in sorted(served.items())))
    figures("hostile tracks served", sum(served[kind] for kind in TRACK_KINDS))
    figures("skipped per reason", ", ".join(f"{r} {n}" for r, n in sorted(skipped.items())))
    figures("repaired per note", ", ".join(f"{r} {n}" for r, n in sorted(repaired.items())))
    figures("requests sent (all to 127.0.0.1)", hosts["127.0.0.1"])
    figures("export", f"{exported['export/tracks']} tracks, {rows} rows, "
                      f"{len(truncated)} truncated names exported, all checks passed")
    figures("crawl seconds", round(seconds, 1))
