"""One crawl per store: a second ``scrapy crawl`` on a store in use is refused at once (exit 2,
one ``error:`` line naming the store and the process holding it, nothing touched); a crawl
that dies (SIGKILL) leaves no lock behind."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from runclub_spiders.simulator import Simulator
from runclub_spiders.store_lock import lock_path
from tests.conftest import cached_catalog
from tests.reliability.scenario import REPO, SIZE, command

pytestmark = pytest.mark.slow


def start(sim, folder: Path, *spider_args: str) -> subprocess.Popen:
    argv, env = command(sim, folder)
    return subprocess.Popen([*argv, *spider_args], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def wait_until_opened(sim, folder: Path, process: subprocess.Popen,
                      timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    # Opened, done writing what it writes at opening (the JOBDIR's version record), and
    # waiting for its first token (20 s): the simulator is answering the token request. The
    # quota ledger counts a request only once it has its token (the quota middleware runs
    # after the auth one), so nothing more is written until the token comes.
    while not (any("Spider opened" in p.read_text() for p in folder.glob("crawl-*.log"))
               and (folder / "job" / "runclub_versions.json").exists()
               and sim.answering("accounts")):
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.1)


def snapshot(folder: Path) -> dict[str, tuple[int, int] | None]:
    """Every file under ``folder``: size and mtime, or None for the logs and SQLite's
    ``-shm`` index (only their names: the first crawl goes on logging, and every read
    transaction of its store marks the index; data written would change the store or its
    ``-wal``)."""
    return {str(p.relative_to(folder)): None if p.suffix == ".log" or p.name.endswith("-shm")
            else (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def slow_sim():
    # Every token answer takes 20 s: the first crawl holds the store, waiting, meanwhile.
    sim = Simulator(catalog=cached_catalog(SIZE), size=SIZE, token_latency=20).start()
    yield sim
    sim.stop()


def test_a_second_crawl_on_a_store_in_use_is_refused(slow_sim, tmp_path):
    first = start(slow_sim, tmp_path)
    try:
        wait_until_opened(slow_sim, tmp_path, first)
        before = snapshot(tmp_path)
        started = time.monotonic()
        argv, env = command(slow_sim, tmp_path)
        second = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True,
                                timeout=60, check=False)
        seconds = time.monotonic() - started
        assert second.returncode == 2
        lines = second.stderr.splitlines()
        assert len(lines) == 1, second.stderr
        store = tmp_path / "store.sqlite"
        assert lines[0].startswith(f"error: CATALOG_STORE_PATH={store} is in use by process "
                                   f"{first.pid} (scrapy crawl spotify_catalog, since ")
        assert seconds < 10                       # at once: Scrapy's start-up, no waiting
        assert snapshot(tmp_path) == before       # no new log, no store or JOBDIR write
        assert first.poll() is None               # the first crawl goes on
    finally:
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=30) == 0
    assert "Closing spider (shutdown)" in "".join(
        p.read_text() for p in tmp_path.glob("crawl-*.log"))


def test_a_killed_crawl_leaves_no_lock_behind(slow_sim, tmp_path):
    first = start(slow_sim, tmp_path)
    wait_until_opened(slow_sim, tmp_path, first)
    first.kill()                                  # SIGKILL: no clean-up of any kind runs
    assert first.wait(timeout=30) == -signal.SIGKILL
    assert lock_path(tmp_path / "store.sqlite").exists()      # the file stays; the lock not
    # The same store at once: an export of it (no API call) runs to the end.
    second = start(slow_sim, tmp_path, "-a", "mode=export")
    assert second.wait(timeout=60) == 0, second.stderr.read()[-2000:]
    logs = "".join(p.read_text() for p in tmp_path.glob("crawl-*.log"))
    assert "Spider closed (finished)" in logs
    assert "is in use by" not in second.stderr.read()
