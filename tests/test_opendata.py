"""Open data: Wikidata genres and MusicBrainz original years, asked beside the crawl.

Parsers are checked on small bodies here (recorded live bodies: ``test_real_payloads_opendata``);
the crawl tests run the real catalog crawl (discovery, enrichment, open data, export) against
the simulator's services over HTTP and assert what the store, the export and the manifest say,
against the simulator's ground truth: answers stored and used, nothing asked twice, a source
that is down, rate-limited or erroring never stalls or fails the crawl, and a source switched
off is never called.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from scrapy.utils.defer import deferred_f_from_coro_f
from scrapy.utils.test import get_crawler

from runclub_spiders.catalog.years import AlbumAppearance, recording_year, year_source
from runclub_spiders.export.validate import validate_export
from runclub_spiders.opendata import musicbrainz, wikidata
from runclub_spiders.opendata.mapping import load_mapping
from runclub_spiders.pipelines.opendata import _Source
from runclub_spiders.runs import crawl_catalog
from runclub_spiders.simulator import vocabulary as v
from runclub_spiders.store import Store
from runclub_spiders.umbrellas import SeedError, normalize_genre
from tests.conftest import crawl_settings, project_rules, use_credentials

REPO = Path(__file__).resolve().parents[1]
SIZE = 3000
SETTINGS = {"CATALOG_CELL_MIN": 5, "CATALOG_CELL_TARGET": 10, "CATALOG_MAX_TRACKS": 500,
            "DISCOVERY_PROGRESS_INTERVAL": 0, "DISCOVERY_CONCURRENCY": 4}
A, B, C = "A" * 22, "B" * 22, "C" * 22


# ---------------------------------------------------------------------------- parsers
def binding(spotify: str, item: str | None = None, label: str | None = None,
            lang: str = "en") -> dict:
    row = {"spotify": {"type": "literal", "value": spotify}}
    if item:
        row["item"] = {"type": "uri", "value": f"http://www.wikidata.org/entity/{item}"}
    if label:
        row["genreLabel"] = {"xml:lang": lang, "type": "literal", "value": label}
    return row


def test_wikidata_answers_join_on_the_spotify_id():
    body = {"head": {"vars": ["spotify", "item", "genreLabel"]}, "results": {"bindings": [
        binding(B, "Q20", "rock music"), binding(A, "Q7", "hip hop music"),
        binding(A, "Q7", "trap music"), binding(A, "Q7", "hip hop music"),
        binding(A, "Q7", "Hip-Hop", lang="de"),          # another language: left out
        binding(C, "Q9"),                                # an item without P136
        binding("D" * 22, "Q1", "pop music"),            # an ID not asked
        {"spotify": {"type": "literal", "value": B}, "item": {"type": "bnode", "value": "t1"}},
        "junk"]}}
    answers = wikidata.parse_answer(body, [A, B, C, "E" * 22, "not an id"])
    assert list(answers) == [A, B, C, "E" * 22]
    assert answers[A] == wikidata.ArtistAnswer("found", "Q7", ["hip hop music", "trap music"])
    assert answers[B] == wikidata.ArtistAnswer("found", "Q20", ["rock music"])
    assert answers[C] == wikidata.ArtistAnswer("found", "Q9", [])
    assert answers["E" * 22] == wikidata.ArtistAnswer("none")
    assert wikidata.parse_answer({"results": {}}, [A]) == "a body without results.bindings"
    assert isinstance(wikidata.parse_answer("<html>", [A]), str)


def test_wikidata_query_carries_only_plain_ids():
    query = wikidata.build_query([A, 'x" } ?s ?p ?o {', B, A])
    assert f'VALUES ?spotify {{ "{A}" "{B}" }}' in query
    assert "wdt:P1902" in query and "wdt:P136" in query and "?s ?p" not in query
    with pytest.raises(ValueError):
        wikidata.build_query(["bad"])
    with pytest.raises(ValueError, match="at most 500"):
        wikidata.build_query([f"{n:022d}" for n in range(501)])


def release(status="Official", date="1977-05-01", secondary=(), artist="Band", events=()):
    return {"status": status, "date": date, "artist-credit": [{"name": artist,
                                                               "artist": {"name": artist}}],
            "release-group": {"primary-type": "Album", "secondary-types": list(secondary)},
            "release-events": [{"date": d} for d in events]}


def test_musicbrainz_year_comes_from_trusted_releases_only():
    recording = {"id": "r1", "isrcs": ["GBAAA7700001"], "first-release-date": "1975",
                 "releases": [
                     release(date="1975", secondary=["Compilation"]),       # compilation
                     release(date="1974", artist="Various Artists"),        # sampler
                     release(status="Promotion", date="1976-12"),           # promo
                     release(status="Bootleg", date="1973"),
                     release(date="1979"), release(date="", events=["1977-06-01", ""]),
                     release(date="0000")]}
    stray = {"id": "r2", "isrcs": ["USXXX0000001"], "releases": [release(date="1960")]}
    other = {"id": "r3", "isrcs": ["gbaaa7700001"], "releases": [release(date="1978")]}
    answers, strays = musicbrainz.read_recordings([stray, other, recording],
                                                  ["GBAAA7700001", "GBAAA7700002"])
    assert strays == 1
    assert answers["GBAAA7700001"] == musicbrainz.IsrcAnswer("found", "1977-06-01", "r1")
    assert answers["GBAAA7700001"].year == 1977
    assert answers["GBAAA7700002"] == musicbrainz.IsrcAnswer("none")
    # Only untrusted releases: found, but no year (first-release-date is not used).
    only_compiled = {"id": "r4", "isrcs": ["GBAAA7700003"], "first-release-date": "1975",
                     "releases": [release(date="1975", secondary=["Compilation"])]}
    answers, _ = musicbrainz.read_recordings([only_compiled], ["GBAAA7700003"])
    assert answers["GBAAA7700003"] == musicbrainz.IsrcAnswer("found", None, "r4")


def test_musicbrainz_query_and_paging():
    url = musicbrainz.search_url("http://h/", ["gbaaa7700001", "bad", "USXXX0000001"], 200)
    assert url == ("http://h/ws/2/recording?query=isrc%3AGBAAA7700001+OR+isrc%3AUSXXX0000001"
                   "&fmt=json&limit=100&offset=200")
    page = musicbrainz.parse_page({"count": 250, "offset": 100, "recordings": [{}] * 100}, 100)
    assert page.next_offset == 200
    assert musicbrainz.parse_page({"count": 250, "offset": 200,
                                   "recordings": [{}] * 50}, 200).next_offset is None
    assert musicbrainz.parse_page({"count": 9, "recordings": []}).next_offset is None
    assert isinstance(musicbrainz.parse_page({"error": "x"}), str)
    # A body that says offset 0 on every page (a server repeating itself) still moves on
    # from the offset asked: paging never goes back.
    assert musicbrainz.parse_page({"count": 250, "offset": 0,
                                   "recordings": [{}] * 100}, 100).next_offset == 200
    assert [musicbrainz.pages_for(n) for n in (0, 1, 100, 101, 250)] == [1, 1, 1, 2, 3]


def test_keys_no_query_can_carry_are_not_left_to_ask(tmp_path):
    """A malformed artist ID or ISRC is never asked, so it must not stay "to ask" for ever
    (the manifest's toAsk could never reach 0); a lower-case ISRC is asked upper-cased."""
    store = Store.open(tmp_path / "store.sqlite")
    with store.transaction():
        store.db.execute(
            "INSERT INTO tracks (id, name, duration_ms, explicit, album_name, artist_ids, "
            "artist_names, first_source, first_seen_at, updated_at, isrc, enrich_state) "
            "VALUES (?, 'x', 1, 0, 'x', ?, '[]', 'search', 't', 't', ?, 'done')",
            ("T" * 22, json.dumps([A, "not-an-id"]), "gbaaa7700001"))
        store.db.execute(
            "INSERT INTO tracks (id, name, duration_ms, explicit, album_name, artist_ids, "
            "artist_names, first_source, first_seen_at, updated_at, isrc, enrich_state) "
            "VALUES (?, 'x', 1, 0, 'x', ?, '[]', 'search', 't', 't', ?, 'done')",
            ("U" * 22, json.dumps([B]), "junk"))
    assert store.wikidata_to_ask() == [A, B]
    assert store.musicbrainz_to_ask() == ["GBAAA7700001"]
    with store.transaction():
        store.save_wikidata(A, state="none", qid=None, labels=[], genres=[], now="t")
        store.save_wikidata(B, state="none", qid=None, labels=[], genres=[], now="t")
        store.save_musicbrainz("GBAAA7700001", state="none", date=None, year=None,
                               recording_id=None, now="t")
    assert store.wikidata_to_ask() == [] and store.musicbrainz_to_ask() == []
    store.close()


class _Flaky(_Source):
    """A source whose asking fails in a way of ours (not a SourceFailedError) when told."""
    name, stat_keys = "flaky", "keys"

    def __init__(self, pipeline, fail: bool, **kwargs):
        super().__init__(pipeline, **kwargs)
        self.fail, self.asked = fail, []

    def known(self, keys):
        return set()

    async def ask(self, batch):
        await asyncio.sleep(0.01)
        if self.fail:
            raise KeyError("a body shape nobody expected")
        self.asked.extend(batch)


def flaky(fail: bool):
    crawler = get_crawler()
    crawler.stats.open_spider()
    pipeline = SimpleNamespace(crawler=crawler, batch_wait=0.05, park_after=3,
                               watch=SimpleNamespace(closing=False, sleep=asyncio.sleep))
    return _Flaky(pipeline, fail, batch_size=2, interval=0.0, slot="s", user_agent="ua")


@deferred_f_from_coro_f
async def test_an_unexpected_fault_is_one_line_a_failure_and_parks(caplog):
    source = flaky(fail=True)
    for n in range(4):
        source.want([f"k{n}a", f"k{n}b"])
        await asyncio.sleep(0.05)
    assert source.parked and "KeyError" in source.parked
    assert source.stats.get_value("flaky/errors") == 3 and source.stats.get_value("flaky/parked")
    warned = [r for r in caplog.records if "got no answer" in r.getMessage()]
    assert len(warned) == 3 and all(r.exc_info is None for r in warned)   # no traceback
    assert "Traceback" not in caplog.text


@deferred_f_from_coro_f
async def test_keys_wanted_while_the_sender_runs_get_a_timer():
    source = flaky(fail=False)
    source.want(["a", "b"])               # a full batch: the sender starts
    await asyncio.sleep(0)
    source.want(["c"])                    # part-full, sender busy: no timer of its own
    await asyncio.sleep(0.3)              # the sender's end arms one (batch_wait 0.05 s)
    assert source.asked == ["a", "b", "c"] and not source.pending and source.timer is None


@pytest.mark.parametrize(("setting", "named"), [
    ("WIKIDATA_GENRE_MAP=/nonexistent.yaml", "WIKIDATA_GENRE_MAP"),
    ("WIKIDATA_BATCH_SIZE=0", "WIKIDATA_BATCH_SIZE"),
])
def test_a_bad_open_data_setting_stops_the_crawl_command_with_one_line(setting, named):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPOTIFY_")}
    env.update(SPOTIFY_CLIENT_ID="x", SPOTIFY_CLIENT_SECRET="y", SPOTIFY_REFRESH_TOKEN="z")
    result = subprocess.run(
        [sys.executable, "-m", "scrapy", "crawl", "spotify_catalog", "-s", setting],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {named}"), result.stderr
    assert "Traceback" not in result.stderr


def test_year_is_the_earlier_of_spotify_and_musicbrainz():
    remaster = [AlbumAppearance("2011-03-01", "album", "Hits (Remastered)", "Song")]
    original = [AlbumAppearance("1977-02-01", "album", "Songs", "Song")]
    verdict = recording_year(remaster, "GBAAA1100001", musicbrainz=1977)
    assert (verdict.year, verdict.source, verdict.decade) == (1977, "musicbrainz", "70s")
    assert year_source(verdict) == "musicbrainz"
    later = recording_year(original, None, musicbrainz=1980)     # later: Spotify's stands
    assert (later.year, later.source, year_source(later)) == (1977, "regular_release",
                                                             "spotify")
    assert recording_year(original, None).year == 1977


def test_mapping_covers_every_simulator_label_and_lands_in_umbrellas():
    mapping = load_mapping("seeds/wikidata_genres.yaml")
    rules = project_rules()
    for label in v.WIKIDATA_LABELS:
        genres = mapping.genres(label)
        assert genres, f"{label!r} is not mapped"
        # The label's genres all sit in one umbrella (the simulator's truth): so must ours.
        assert {rules.classify_genre(g) for g in genres} == {v.WIKIDATA_LABEL_UMBRELLA[label]}
    assert mapping.genres("Hip hop  MUSIC") == ("hip hop",)
    assert mapping.genres("rhythm and blues") == (normalize_genre("r&b"),)
    assert mapping.genres("singer-songwriter") == () and mapping.genres("jazz") is None


def test_mapping_mistakes_are_one_line_naming_file_and_label(tmp_path):
    path = tmp_path / "map.yaml"
    path.write_text("labels:\n  Pop Music: pop\n  pop music: dance pop\n")
    with pytest.raises(SeedError, match=r"map\.yaml: labels\['pop music'\]: .*listed twice"):
        load_mapping(path)
    path.write_text("labels: []\n")
    with pytest.raises(SeedError, match=r"map\.yaml: labels: must be a non-empty mapping"):
        load_mapping(path)


# ---------------------------------------------------------------------------- crawls
@pytest.fixture
def sim(simulator_factory, monkeypatch):
    def start(**knobs):
        simulator = simulator_factory(size=SIZE, profile="development", **knobs)
        use_credentials(monkeypatch, simulator)
        return simulator
    return start


def open_data(simulator, folder: Path, **overrides):
    """The catalog crawl's settings with both sources on, pointed at the simulator, unpaced
    (loopback)."""
    fast = {"concurrency": 1, "delay": 0.0}
    settings = crawl_settings(
        simulator, folder, WIKIDATA_ENABLED=True,
        WIKIDATA_SPARQL_URL=simulator.wikidata_sparql_url, WIKIDATA_INTERVAL=0.0,
        MUSICBRAINZ_ENABLED=True, MUSICBRAINZ_BASE_URL=simulator.musicbrainz_base_url,
        MUSICBRAINZ_CONTACT="owner@example.org", MUSICBRAINZ_INTERVAL=0.0,
        OPENDATA_BATCH_WAIT=0.2, OPENDATA_RETRIES=2, OPENDATA_IDLE_WAIT=30.0, **SETTINGS)
    settings["DOWNLOAD_SLOTS"] = {**settings["DOWNLOAD_SLOTS"], "query.wikidata.org": fast,
                                  "musicbrainz.org": fast}
    settings.update(overrides)
    return settings


def errors_logged(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def wide_rows(folder: Path) -> list[dict]:
    path = folder / "exports" / "catalog" / "catalog_wide.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def manifest(folder: Path) -> dict:
    return json.loads((folder / "exports" / "catalog" / "manifest.json").read_text())


def served(simulator, service: str, since: int = 0) -> list:
    return simulator.requests(since, service=service)


async def musicbrainz_corrects_late_years(simulator, tmp_path: Path, store: Store,
                                          wide: list[dict]) -> None:
    """Every trusted MusicBrainz year is the truth, and it wins where Spotify's dates run
    late: the export (run again from the store) has those tracks' original years."""
    catalog = simulator.catalog
    years = store.musicbrainz_years()
    original = {t.isrc: t.original_year for t in catalog.tracks}
    for isrc, year in years.items():       # every trusted year is the recording's truth
        assert year == original[isrc]
    # Spotify dates albums, not recordings: where every album the store knows for an
    # ISRC carries a later date (a digital re-release dated as new, made so here for 40
    # exported ISRCs), MusicBrainz's year must win.
    moved = [r for r in wide if r["isrc"] in years
             and r["_extra"]["year_rule"] == "regular_release"][:40]
    with store.transaction():
        for r in moved:
            store.db.execute("UPDATE tracks SET release_date = ? WHERE isrc = ?",
                             (f"{r['album_release_year'] + 25}-01-01", r["isrc"]))
    store.close()
    export = await crawl_catalog(open_data(simulator, tmp_path), mode="export")
    assert export.export_stats.get("export/published")
    again_wide = {r["isrc"]: r for r in wide_rows(tmp_path)}
    fixed = [again_wide[r["isrc"]] for r in moved if r["isrc"] in again_wide]
    assert len(fixed) >= 30
    for r in fixed:
        truth = catalog.truth(catalog.track_by_id[r["spotify_track_id"]])
        assert (r["album_release_year"], r["album_decade_label"],
                r["_extra"]["year_source"]) == (truth["original_year"], truth["decade"],
                                                "musicbrainz")
    decade_ok = sum(r["album_decade_label"] == catalog.truth(
        catalog.track_by_id[r["spotify_track_id"]])["decade"] for r in again_wide.values())
    assert decade_ok / len(again_wide) >= 0.97
    assert manifest(tmp_path)["classification"]["yearSources"]["musicbrainz"] >= 30



@deferred_f_from_coro_f
async def test_answers_are_stored_used_and_never_asked_twice(sim, tmp_path, caplog):
    simulator = sim()
    run = await crawl_catalog(open_data(simulator, tmp_path))
    stats = run.discovery_stats
    assert stats["finish_reason"] == "finished" and not errors_logged(caplog)
    assert run.export_stats.get("export/published")
    store = Store.open(tmp_path / "store.sqlite")
    truth = simulator.wikidata.truth()
    mapping = load_mapping("seeds/wikidata_genres.yaml")
    rows = store.db.execute("SELECT * FROM wikidata_artists").fetchall()
    assert len(rows) == stats["wikidata/asked"] > 50
    assert stats["wikidata/requests"] == stats["wikidata/answered"] >= 1
    assert "wikidata/parked" not in stats and store.wikidata_to_ask() == []
    for row in rows:                               # every answer is the truth
        expected = truth[row["artist_id"]]
        assert row["state"] == ("found" if expected["item"] else "none")
        assert row["qid"] == expected["item"]
        assert sorted(json.loads(row["labels"])) == sorted(expected["genres"])
        mapped = {g for label in expected["genres"] for g in mapping.genres(label)}
        assert set(json.loads(row["genres"])) == mapped
    evidence = store.db.execute("SELECT artist_id, genre, detail FROM genre_evidence "
                                "WHERE source = 'wikidata'").fetchall()
    assert evidence and all(" (Q" in r["detail"] for r in evidence)
    # The export uses them: rows name wikidata where an artist's genre came from it.
    wide = wide_rows(tmp_path)
    cited = [r for r in wide if "wikidata" in json.dumps(r["_extra"].get("genre_sources"))]
    assert cited, "no exported row credits a Wikidata genre"
    facts = manifest(tmp_path)["openData"]["wikidata"]
    assert facts["status"] == "complete" and facts["requests"] == stats["wikidata/requests"]
    assert facts["found"] + facts["missing"] == len(rows) and facts["toAsk"] == 0
    assert any("Wikidata" in n and "CC0" in n for n in manifest(tmp_path)["notes"])
    failed = [f"{c.name}: {c.detail}" for c in validate_export(tmp_path / "exports" / "catalog")
              if not c.ok]
    assert not failed, failed                   # the manifest's openData part included
    assert {r["_extra"]["year_source"] for r in wide} <= {"spotify", "musicbrainz"}
    assert store.musicbrainz_to_ask() == [] and stats["musicbrainz/asked"] > 50
    await musicbrainz_corrects_late_years(simulator, tmp_path, store, wide)
    store.close()

    # A second run over the same store: nothing the store knows is asked again.
    since = len(simulator.requests())
    again = await crawl_catalog(open_data(simulator, tmp_path))
    assert again.discovery_stats["finish_reason"] == "finished"
    assert served(simulator, "wikidata", since) == []
    assert served(simulator, "musicbrainz", since) == []
    assert "wikidata/requests" not in again.discovery_stats


SMALLER = {"CATALOG_MAX_TRACKS": 300}


@deferred_f_from_coro_f
async def test_a_source_that_is_down_never_stalls_the_crawl(sim, tmp_path, caplog):
    """Wikidata down (503 to everything); MusicBrainz off (no MUSICBRAINZ_CONTACT)."""
    simulator = sim(wikidata_down=True)
    run = await crawl_catalog(open_data(simulator, tmp_path, MUSICBRAINZ_CONTACT="",
                                        **SMALLER))
    stats = run.discovery_stats
    assert stats["finish_reason"] == "finished" and not errors_logged(caplog)
    assert run.export_stats.get("export/published")
    assert stats["wikidata/parked"] == 1 and "wikidata/answered" not in stats
    # Parked after OPENDATA_PARK_AFTER batches of 1 + OPENDATA_RETRIES attempts: no more.
    assert len(served(simulator, "wikidata")) == stats["wikidata/requests"] <= 3 * 3
    store = Store.open(tmp_path / "store.sqlite")
    assert len(store.wikidata_to_ask()) > 50              # remembered for the next run
    store.close()
    facts = manifest(tmp_path)["openData"]
    assert facts["wikidata"]["status"] == "missing" and facts["wikidata"]["toAsk"] > 50
    assert any("Wikidata was missing" in n for n in manifest(tmp_path)["notes"])
    # Switched off: never called, said once, and the manifest says so.
    assert served(simulator, "musicbrainz") == []
    assert stats["musicbrainz/disabled"] == "MUSICBRAINZ_CONTACT is not set"
    assert caplog.text.count("set MUSICBRAINZ_CONTACT") == 1
    assert facts["musicbrainz"]["status"] == "off"
    assert {r["_extra"]["year_source"] for r in wide_rows(tmp_path)} == {"spotify"}


@deferred_f_from_coro_f
async def test_a_rate_limited_source_is_waited_for_as_retry_after_says(sim, tmp_path, caplog):
    # One query per 1 s window per User-Agent: most queries meet a 429 with Retry-After.
    simulator = sim(wikidata_rate_limit=1, wikidata_rate_window=1.0)
    run = await crawl_catalog(open_data(simulator, tmp_path, MUSICBRAINZ_ENABLED=False,
                                        OPENDATA_RETRIES=4, **SMALLER))
    stats = run.discovery_stats
    assert stats["finish_reason"] == "finished" and not errors_logged(caplog)
    log = served(simulator, "wikidata")
    limited = [e for e in log if e.status == 429]
    assert limited and all(e.retry_after for e in limited)
    assert stats["wikidata/retries"] == len(limited) and "wikidata/parked" not in stats
    assert stats["wikidata/waited_seconds"] >= 0.5 * len(limited)
    store = Store.open(tmp_path / "store.sqlite")
    assert store.wikidata_to_ask() == []                  # everything answered in the end
    store.close()
    assert manifest(tmp_path)["openData"]["wikidata"]["status"] == "complete"


@deferred_f_from_coro_f
async def test_an_erroring_source_is_parked_and_the_export_completes(sim, tmp_path, caplog):
    """MusicBrainz answering 404 to everything (a wrong base URL); Wikidata off."""
    simulator = sim()
    run = await crawl_catalog(open_data(simulator, tmp_path, WIKIDATA_ENABLED=False,
                                        MUSICBRAINZ_BASE_URL=simulator.origin + "/nowhere",
                                        **SMALLER))
    stats = run.discovery_stats
    assert stats["finish_reason"] == "finished" and not errors_logged(caplog)
    assert run.export_stats.get("export/published")
    assert stats["musicbrainz/parked"] == 1 and stats["musicbrainz/requests"] == 1
    assert "MusicBrainz is parked for this run (HTTP 404)" in caplog.text
    store = Store.open(tmp_path / "store.sqlite")
    assert store.musicbrainz_to_ask() and store.db.execute(
        "SELECT COUNT(*) FROM musicbrainz_isrcs").fetchone()[0] == 0
    store.close()
    facts = manifest(tmp_path)["openData"]
    assert facts["musicbrainz"]["status"] == "missing" and facts["wikidata"]["status"] == "off"
    assert served(simulator, "wikidata") == []
    assert stats["wikidata/disabled"] == "WIKIDATA_ENABLED is off"


@deferred_f_from_coro_f
async def test_a_slow_source_times_out_and_never_stalls_the_crawl(sim, tmp_path, caplog):
    """MusicBrainz answering after 5 s, past OPENDATA_TIMEOUT (0.5 s); Wikidata off."""
    simulator = sim(musicbrainz_latency=5.0)
    started = time.monotonic()
    run = await crawl_catalog(open_data(simulator, tmp_path, WIKIDATA_ENABLED=False,
                                        OPENDATA_TIMEOUT=0.5, OPENDATA_RETRIES=1,
                                        **SMALLER))
    stats = run.discovery_stats
    assert stats["finish_reason"] == "finished" and not errors_logged(caplog)
    assert run.export_stats.get("export/published")
    assert stats["musicbrainz/parked"] == 1 and "musicbrainz/answered" not in stats
    # Parked after OPENDATA_PARK_AFTER batches of 1 + OPENDATA_RETRIES timed-out attempts:
    # a few seconds lost, not minutes.
    # (The simulator logs an answer when it is sent: the timed-out ones never were.)
    assert stats["musicbrainz/requests"] <= 3 * 2
    assert time.monotonic() - started < 30
    store = Store.open(tmp_path / "store.sqlite")
    assert len(store.musicbrainz_to_ask()) > 50           # remembered for the next run
    store.close()
    assert manifest(tmp_path)["openData"]["musicbrainz"]["status"] == "missing"
    assert {r["_extra"]["year_source"] for r in wide_rows(tmp_path)} == {"spotify"}
