"""Every close reason exits promptly, with work in flight, and leaves pending tracks pending.

Each case is the real ``scrapy crawl spotify_catalog`` in a subprocess, started on a store
that an earlier crawl, killed with SIGKILL during discovery, left with tracks still waiting
for ReccoBeats. The restarted crawl re-yields them at once, so enrichment batches are in
flight (the simulator answers ReccoBeats slowly) when the close begins:

* ``auth_failed``: the token endpoint refuses the refresh token a few seconds in (exit 1);
* ``shutdown`` by SIGTERM while batches and a token refresh are in flight (exit 0);
* ``shutdown`` by SIGINT (Ctrl-C) while every request sleeps in its retry backoff (exit 0);
* ``quota_parked``: the search bucket locks for a day (exit 0);
* ``finished``: ``-a mode=export`` on the same store (exit 0).

Before the fix (f08039f), ``auth_failed`` logged ``AlreadyCalledError`` and hung forever
between "Closing spider" and ``spider_closed``: items re-yielded from ``start()`` that end
after the close began were never followed by Scrapy's closing check.
"""

from __future__ import annotations

import re
import shutil
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from runclub_spiders.simulator import Simulator
from tests.conftest import cached_catalog
from tests.reliability.scenario import REPO, SIZE, command, run_command

pytestmark = pytest.mark.slow

PROMPT = 5.0            # seconds from the start of the close (or the signal) to the exit


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory) -> Path:
    """State of a crawl killed during discovery: tracks pending enrichment in the store."""
    folder = tmp_path_factory.mktemp("interrupted")
    sim = Simulator(catalog=cached_catalog(SIZE), size=SIZE).start()
    try:
        killed = run_command(sim, folder, "discovery:12")
    finally:
        sim.stop()
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert pending(folder) > 0
    return folder


def pending(folder: Path) -> int:
    with sqlite3.connect(f"file:{folder / 'store.sqlite'}?mode=ro", uri=True) as db:
        return db.execute("SELECT COUNT(*) FROM tracks WHERE enrich_state = 'pending'"
                          ).fetchone()[0]


def stat(log: str, name: str) -> float | None:
    found = re.search(rf"'{re.escape(name)}': ([0-9.]+)", log)
    return float(found.group(1)) if found else None


class Run:
    """The restarted crawl, in a copy of the interrupted state, against its own simulator."""

    def __init__(self, interrupted: Path, tmp_path: Path, *, env=None, spider_args=(),
                 settings=None, **knobs) -> None:
        self.folder = tmp_path / "state"
        shutil.copytree(interrupted, self.folder)
        self.pending_before = pending(self.folder)
        self.sim = Simulator(catalog=cached_catalog(SIZE), size=SIZE, **knobs).start()
        argv, environment = command(self.sim, self.folder, env=env, DISCOVERY_PROGRESS_INTERVAL=1,
                                    RATE_LIMIT_BACKOFF_BASE=20, RATE_LIMIT_BACKOFF_MAX=40,
                                    **(settings or {}))
        self.started = time.monotonic()
        self.process = subprocess.Popen([*argv, *spider_args], cwd=REPO, env=environment,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                        text=True)

    @property
    def log(self) -> str:
        return "".join(p.read_text() for p in sorted(self.folder.glob("crawl-full-*.log")))

    def wait_for_log(self, text: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.log:
            assert self.process.poll() is None, f"exited before {text!r}: {self.log[-2000:]}"
            assert time.monotonic() < deadline, f"no {text!r} in the log"
            time.sleep(0.1)

    def finish(self, timeout: float) -> tuple[int, float]:
        """(exit code, seconds); the process is killed and the test fails past ``timeout``."""
        try:
            code = self.process.wait(timeout=timeout)
            seconds = time.monotonic() - self.started
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            pytest.fail(f"still running after {timeout} s; log tail:\n{self.log[-3000:]}")
        finally:
            self.sim.stop()
        return code, seconds

    def shut_down(self, signum: int) -> None:
        """Send ``signum``; the crawl must exit 0 within PROMPT seconds, closed ``shutdown``
        cleanly, with no error logged."""
        self.process.send_signal(signum)
        signalled = time.monotonic()
        code, seconds = self.finish(timeout=60)
        assert self.started + seconds - signalled < PROMPT
        assert code == 0
        self.assert_clean_close("shutdown")
        assert " ERROR: " not in self.log

    def assert_clean_close(self, reason: str) -> None:
        log = self.log
        assert f"Closing spider ({reason})" in log
        assert f"Spider closed ({reason})" in log
        assert "Traceback" not in log and "AlreadyCalledError" not in log
        assert "Traceback" not in self.process.stderr.read()
        assert stat(log, "close/seconds") is not None
        assert stat(log, "close/seconds") < PROMPT


def test_auth_failed_exits_at_once_with_batches_in_flight(interrupted, tmp_path):
    run = Run(interrupted, tmp_path, env={"SPOTIFY_REFRESH_TOKEN": "a-token-spotify-refuses"},
              recco_latency=60, token_latency=3)
    code, seconds = run.finish(timeout=60)
    assert code == 1
    run.assert_clean_close("auth_failed")
    log = run.log
    assert log.count(" ERROR: ") == 1 and "Spotify refused the refresh token" in log
    # Batches were in flight (sent, unanswered) when the close began; they were given up.
    assert stat(log, "reccobeats/requests") >= 1
    assert stat(log, "reccobeats/given_up_on_close") >= 1
    assert seconds < 3 + PROMPT + 5          # the token answer, the close, Scrapy's start
    assert pending(run.folder) == run.pending_before      # nothing lost, nothing invented


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_shutdown_exits_promptly_with_work_in_flight(interrupted, tmp_path, signum):
    if signum == signal.SIGTERM:
        # Batches and a token refresh in flight, both answered only after a minute.
        run = Run(interrupted, tmp_path, recco_latency=60, token_latency=60)
    else:
        # Every answer a 5xx: the token request and the batches sleep in their backoff.
        run = Run(interrupted, tmp_path, error_rate=1.0)
    run.wait_for_log("Spider opened")
    time.sleep(2.5)                     # the first batch goes out after RECCOBEATS_BATCH_WAIT
    run.shut_down(signum)
    assert stat(run.log, "reccobeats/given_up_on_close") >= 1
    assert pending(run.folder) == run.pending_before


def test_quota_parked_exits_promptly(interrupted, tmp_path):
    run = Run(interrupted, tmp_path, quota={"search": 3}, quota_retry_after=86_400,
              recco_latency=0.2)
    code, _ = run.finish(timeout=120)
    assert code == 0
    run.assert_clean_close("quota_parked")
    log = run.log
    assert " ERROR: " not in log
    assert "Run the same command again after" in log
    assert stat(log, "quota/parks") == 1
    assert pending(run.folder) == 0        # the parked crawl still enriched what it had


def test_finished_exits_promptly(interrupted, tmp_path):
    run = Run(interrupted, tmp_path, spider_args=["-a", "mode=export"])
    code, _ = run.finish(timeout=60)
    assert code == 0
    run.assert_clean_close("finished")
    assert " ERROR: " not in run.log
    assert stat(run.log, "export/published") == 1
    assert pending(run.folder) == run.pending_before       # exporting asks nothing


def test_shutdown_exits_promptly_with_open_data_in_flight(interrupted, tmp_path):
    # Wikidata and MusicBrainz on, each answering only after a minute: their batches are
    # out when SIGTERM comes; the close gives them up (asked again next run).
    run = Run(interrupted, tmp_path, wikidata_latency=60, musicbrainz_latency=60,
              settings={"WIKIDATA_ENABLED": True, "MUSICBRAINZ_ENABLED": True,
                        "MUSICBRAINZ_CONTACT": "owner@example.org", "WIKIDATA_INTERVAL": 0,
                        "MUSICBRAINZ_INTERVAL": 0, "OPENDATA_BATCH_WAIT": 0.2})
    run.wait_for_log("Spider opened")
    # ReccoBeats answers the re-yielded tracks' first batch after RECCOBEATS_BATCH_WAIT (1 s);
    # their artists' Wikidata batch goes 0.2 s later and waits a minute for its answer.
    time.sleep(4)
    run.shut_down(signal.SIGTERM)
    assert stat(run.log, "wikidata/requests") >= 1
    assert "wikidata/answered" not in run.log
