"""Crash and resume: SIGKILL the crawl at five points in turn, run the same command again,
compare.

Each crawl is the real ``scrapy crawl spotify_catalog`` in a subprocess with a ``JOBDIR``,
against one simulator. ``tests/reliability/killswitch.py`` kills it with SIGKILL (no cleanup
runs at all) during discovery, during enrichment, inside a store transaction, while the
feeds are half written, and halfway through publishing. After each kill the previous export
must be exactly as it was (or, killed mid-publish, recoverable whole); the same command run
again must finish and publish files byte-identical to an uninterrupted run's, with
``SOURCE_DATE_EPOCH`` fixed.
"""

from __future__ import annotations

import json
import re
import signal
import time
from collections import Counter
from pathlib import Path

import pytest

from runclub_spiders.export.feeds import previous_dir, staging_dir
from tests.reliability.scenario import SIZE, export_hashes, run_command

KILL_POINTS = ["discovery:12", "enrichment:2", "store:20", "export:300", "publish:1"]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sim():
    from runclub_spiders.simulator import Simulator  # noqa: PLC0415
    from tests.conftest import cached_catalog  # noqa: PLC0415

    simulator = Simulator(catalog=cached_catalog(SIZE), size=SIZE,
                          profile="development").start()
    yield simulator
    simulator.stop()


def tree(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def reference(sim, tmp_path_factory):
    """The uninterrupted run's export hashes."""
    folder = tmp_path_factory.mktemp("uninterrupted")
    result = run_command(sim, folder)
    assert result.returncode == 0, result.stderr[-2000:]
    log = "".join(p.read_text() for p in folder.glob("crawl-full-*.log"))
    assert "Traceback" not in log
    assert "(finished)" in log and " ERROR: " not in log
    assert "'export/published': 1" in log
    return export_hashes(folder)


def test_crawl_killed_at_each_point_in_turn_resumes_to_the_uninterrupted_export(
        sim, reference, tmp_path, figures):
    """SIGKILLed at every point in turn, each kill in the run that resumed from the one
    before (discovery, enrichment, a store transaction, the feeds half written, the publish
    half done), then run once more: the previous export stays as it was after every kill (or,
    killed mid-publish, set aside whole), and the last run publishes the uninterrupted run's
    export, byte for byte. One chain, where a crawl per kill point cost four whole crawls
    more: each kill point still meets a crawl part way through, only not a fresh one."""
    export = tmp_path / "exports" / "catalog"
    export.mkdir(parents=True)
    (export / "manifest.json").write_text('{"previous": "export"}\n')
    (export / "catalog_wide.jsonl").write_text('{"previous": "row"}\n')
    previous = tree(export)

    started = time.monotonic()
    for kill_at in KILL_POINTS:         # publish last: only its kill moves the export
        killed = run_command(sim, tmp_path, kill_at)
        assert killed.returncode == -signal.SIGKILL, (kill_at, killed.stderr[-2000:])
        log = (sorted(tmp_path.glob(f"crawl-{kill_at}-*.log"))[-1]).read_text()
        assert "Traceback" not in log and " ERROR: " not in log, kill_at
        # The previous export is untouched, or (killed between the two renames of the
        # publish) set aside whole, where the next run's start puts it back.
        if export.exists():
            assert tree(export) == previous, kill_at
            assert not kill_at.startswith("publish")
        else:
            assert kill_at.startswith("publish")
            assert tree(previous_dir(export)) == previous
            # The real publish got as far as the second rename: the new export, manifest
            # last, is whole in the staging folder.
            assert (staging_dir(export) / "manifest.json").is_file()
        assert not (export / "coverage.md").exists()

    resumed = run_command(sim, tmp_path)
    seconds = time.monotonic() - started
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    log = "".join(p.read_text() for p in sorted(tmp_path.glob("crawl-full-*.log")))
    assert "Traceback" not in log
    assert "(finished)" in log and " ERROR: " not in log
    assert "'export/published': 1" in log
    assert export_hashes(tmp_path) == reference
    assert not staging_dir(export).exists() and not previous_dir(export).exists()
    figures(f"{len(KILL_POINTS)} kills in turn + resume, wall seconds", round(seconds, 1))


ROTATION_KILLS = ["discovery:6", "discovery:6", "enrichment:2"]


def test_restarts_with_the_same_environment_after_refresh_token_rotation(reference, tmp_path,
                                                                         figures):
    """Spotify rotates the refresh token on every refresh and the old one dies at once, while
    ``SPOTIFY_REFRESH_TOKEN`` keeps the first one (``.env`` unchanged). Killed three times and
    started again with the same command and environment, the crawl is handed the token file's
    successor each time (one log line) and ends with the uninterrupted run's export."""
    from runclub_spiders.auth.tokens import fingerprint  # noqa: PLC0415
    from runclub_spiders.simulator import Simulator  # noqa: PLC0415
    from tests.conftest import cached_catalog  # noqa: PLC0415

    sim = Simulator(catalog=cached_catalog(SIZE), size=SIZE, profile="development",
                    rotate_refresh_tokens=True, token_expire_every=40).start()
    try:
        for kill_at in ROTATION_KILLS:
            killed = run_command(sim, tmp_path, kill_at)
            assert killed.returncode == -signal.SIGKILL, (kill_at, killed.stderr[-2000:])
        resumed = run_command(sim, tmp_path)
        grants = sim.accounts.token_grants
    finally:
        sim.stop()
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    logs = [p.read_text() for p in sorted(tmp_path.glob("crawl-*.log"))]
    assert len(logs) == len(ROTATION_KILLS) + 1
    assert not any("auth_failed" in log or "Traceback" in log for log in logs)
    first = fingerprint(sim.config.refresh_token)
    handed = [line for log in logs for line in log.splitlines()
              if f"SPOTIFY_REFRESH_TOKEN ({first}) was rotated by Spotify" in line]
    assert len(handed) == len(ROTATION_KILLS)       # every start after the first, once each
    final = "".join(p.read_text() for p in tmp_path.glob("crawl-full-*.log"))
    assert "(finished)" in final and " ERROR: " not in final
    assert export_hashes(tmp_path) == reference
    record = json.loads((tmp_path / "cache" / "token.json").read_text())
    assert record["refresh_token"] != sim.config.refresh_token
    assert record["replaces"][0] == first and len(record["replaces"]) == 2
    figures("token rotation: kills + resume, token grants", grants)


# ---------------------------------------------------------------------------- leads
# ReccoBeats leads run only while search is parked (they wait while search has work), so this
# scenario gives the search bucket SEARCHES calls a day: after them the crawl confirms leads
# from the tracks bucket, then closes ``quota_parked`` (the park ends in hours) and exports.
# Each run has its own simulator: a quota window is the simulator's state.
SEARCHES = 120
LEAD_KILLS = ["leads:10", "lead_pages:5"]


def parked_search_sim():
    from runclub_spiders.simulator import Simulator  # noqa: PLC0415
    from tests.conftest import cached_catalog  # noqa: PLC0415

    return Simulator(catalog=cached_catalog(SIZE), size=SIZE, profile="development",
                     quota={"search": SEARCHES}, quota_window=86_400).start()


def closed_parked(folder: Path) -> str:
    """The resumed (or only) run's log, checked: discovery parked, export published."""
    log = "".join(p.read_text() for p in sorted(folder.glob("crawl-full-*.log")))
    assert "Traceback" not in log and " ERROR: " not in log
    assert "'finish_reason': 'quota_parked'" in log
    assert "'export/published': 1" in log
    return log


def confirmed(log: str) -> int:
    return int(re.search(r"'discovery/leads/confirmed': (\d+)", log).group(1))


@pytest.fixture(scope="module")
def parked_reference(tmp_path_factory):
    """The uninterrupted run of the parked-search day: its export hashes."""
    folder = tmp_path_factory.mktemp("parked-uninterrupted")
    sim = parked_search_sim()
    try:
        result = run_command(sim, folder)
    finally:
        sim.stop()
    assert result.returncode == 0, result.stderr[-2000:]
    # The day confirms leads, more than the kill points (the 10th) need.
    assert confirmed(closed_parked(folder)) >= 12
    return export_hashes(folder)


def test_killed_while_confirming_leads_resumes_to_the_uninterrupted_export(
        parked_reference, tmp_path, figures):
    """SIGKILLed while leads are confirmed (``/tracks/{id}``), then, in the run that resumed,
    while an artist's ReccoBeats track list is read, the same command run again goes on with
    the leads the store holds: no lead and no list page asked twice (only the one on the
    wire at each kill), and the export is the uninterrupted run's, byte for byte."""
    sim = parked_search_sim()
    try:
        started = time.monotonic()
        for kill_at in LEAD_KILLS:
            killed = run_command(sim, tmp_path, kill_at)
            assert killed.returncode == -signal.SIGKILL, (kill_at, killed.stderr[-2000:])
        resumed = run_command(sim, tmp_path)
        seconds = time.monotonic() - started
        log = sim.requests()
    finally:
        sim.stop()
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert confirmed(closed_parked(tmp_path)) >= 1      # the resumed run confirmed leads too
    assert export_hashes(tmp_path) == parked_reference
    for is_lead in (lambda e: "/v1/tracks/" in e.path,
                    lambda e: "/artist/" in e.path and e.path.endswith("/track")):
        asked = Counter((e.path, e.query) for e in log if is_lead(e) and e.status == 200)
        assert asked and sum(n - 1 for n in asked.values()) <= len(LEAD_KILLS), \
            asked.most_common(3)
    figures("leads and lead pages kills + resume (search parked), wall seconds",
            round(seconds, 1))
