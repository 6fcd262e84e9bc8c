"""Bad input stops ``scrapy crawl spotify_catalog`` cleanly: one line, non-zero exit, no harm.

Each test runs the real command in a subprocess against one shared simulator, with a sentinel
store (a real store with rows) and a sentinel previous export (a folder with a
``manifest.json``) in place, and checks afterwards: the exit code (2 for configuration,
refused by the preflight before anything starts; 1 for a failure found while crawling),
exactly one error line that names the file, key or variable, no traceback, and the store's
and the previous export's bytes unchanged.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import scrapy
from scrapy.utils.test import get_crawler

from runclub_spiders.extensions.jobdir_version import (
    VERSIONS_FILE,
    JobdirVersionError,
    JobdirVersionRecorder,
    check_jobdir,
)
from runclub_spiders.simulator import Simulator
from runclub_spiders.store import Store
from tests.conftest import SMALL, cached_catalog

REPO = Path(__file__).resolve().parents[2]
OTHER_SCRAPY = "2.11.2"


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    simulator = Simulator(catalog=cached_catalog(SMALL, 1), size=SMALL).start()
    yield simulator
    simulator.stop()


def snapshot(root: Path) -> dict[str, str]:
    """Every file and folder under ``root`` (or ``root`` itself): sha256 of bytes, or "dir"."""
    if root.is_file():
        return {root.name: hashlib.sha256(root.read_bytes()).hexdigest()}
    found = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs:
            found[os.path.relpath(Path(folder, name), root)] = "dir"
        for name in files:
            path = Path(folder, name)
            found[os.path.relpath(path, root)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


@dataclass
class Job:
    """One bad run's paths, settings and environment, with the sentinels in place."""

    root: Path
    env: dict[str, str]
    settings: dict[str, str] = field(default_factory=dict)

    @property
    def store(self) -> Path:
        return Path(self.settings["CATALOG_STORE_PATH"])

    @property
    def export_dir(self) -> Path:
        return Path(self.settings["EXPORT_DIR"])

    def guarded(self) -> dict[str, dict[str, str]]:
        """What no bad run may change: the store's folder and the exports' parent folder."""
        return {"store": snapshot(self.store.parent),
                "exports": snapshot(self.export_dir.parent)}

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "scrapy.cmdline", "crawl", "spotify_catalog"]
        for name, value in self.settings.items():
            command += ["-s", f"{name}={value}"]
        return subprocess.run([*command, *args], cwd=REPO, env=self.env, capture_output=True,
                              text=True, timeout=60, check=False)


def make_job(sim: Simulator, tmp_path: Path) -> Job:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SPOTIFY_", "RECCOBEATS_")) and k != "SOURCE_DATE_EPOCH"}
    env.update(sim.env())
    job = Job(tmp_path, env, {
        "CATALOG_STORE_PATH": str(tmp_path / "state" / "catalog.sqlite"),
        "EXPORT_DIR": str(tmp_path / "exports" / "catalog"),
        "SPOTIFY_TOKEN_FILE": str(tmp_path / "cache" / "spotify_token.json"),
        "SPOTIFY_API_PROFILE": sim.config.profile,
        "LOG_LEVEL": "INFO",
    })
    store = Store.open(job.store)
    try:
        store.see_playlist("sentinel", owner="me", name="Sentinel", snapshot_id="s1",
                           items_total=3, now="2025-01-01T00:00:00Z")
        store.add_run_counts("2025-01-01", {"search": 7, "reccobeats": 2}, {})
    finally:
        store.close()
    job.export_dir.mkdir(parents=True)
    (job.export_dir / "manifest.json").write_text('{"sentinel": true}\n')
    (job.export_dir / "catalog_wide.jsonl").write_text('{"id": "sentinel"}\n')
    return job


@pytest.fixture
def job(sim: Simulator, tmp_path: Path) -> Job:
    return make_job(sim, tmp_path)


def requests_recorded(store: Path) -> int:
    """Requests the store says were sent, over all days and buckets (for the manifest)."""
    with closing(Store.open(store)) as opened:
        days = opened.get_meta("requests_by_day", {})
    return sum(sum(buckets.values()) for buckets in days.values())


def check_refused(job: Job, figures, *names: str, args: tuple[str, ...] = ()) -> str:
    """Run ``job``; the preflight must refuse it: exit 2, its one ``error:`` line naming
    ``names`` and nothing else on stdout or stderr, and not one file created or changed."""
    before, everything = job.guarded(), snapshot(job.root)
    result = job.run(*args)
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    assert result.returncode == 2, output
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and output.strip() == errors[0], output
    for name in names:
        assert name in errors[0], errors[0]
    assert job.guarded() == before                  # the store and the previous export
    assert snapshot(job.root) == everything         # and nothing else either
    figures("says", errors[0])
    return errors[0]


# ------------------------------------------------------------------------------ 1. seed files
@pytest.mark.parametrize("text", ["groups: [unclosed\n", "decades:\n  70s: 70s\n\t- x\n", ""],
                         ids=["unclosed", "tab", "empty"])
def test_malformed_or_empty_seed_file(job, figures, text):
    plan = job.root / "plan.yaml"
    plan.write_text(text)
    job.settings["SEEDS_PLAN"] = str(plan)
    check_refused(job, figures, str(plan))


# ------------------------------------------------------------------- 2. unknown umbrella
def test_seed_with_unknown_umbrella(job, figures):
    plan = job.root / "plan.yaml"
    text = (REPO / "seeds" / "plan.yaml").read_text()
    assert "drum and bass running: Drum & Bass\n" in text
    plan.write_text(text.replace("drum and bass running: Drum & Bass\n",
                                 "drum and bass running: Drum & Bas\n"))
    job.settings["SEEDS_PLAN"] = str(plan)
    line = check_refused(job, figures, str(plan), "Drum & Bas", "drum and bass running")
    assert "Drum & Bass" in line                                # the suggestion


# ------------------------------------------------------------------------ 3. market code
@pytest.mark.parametrize("market", ["USA", "u1"])
def test_invalid_market(job, figures, market):
    job.env["SPOTIFY_MARKET"] = market
    check_refused(job, figures, "SPOTIFY_MARKET", repr(market.upper()))


# ------------------------------------------------------------------------- 4. credentials
def test_missing_client_secret(job, figures):
    del job.env["SPOTIFY_CLIENT_SECRET"]
    line = check_refused(job, figures, "SPOTIFY_CLIENT_SECRET", "make demo")
    assert "SPOTIFY_CLIENT_ID" not in line


@dataclass
class WrongSecretRun:
    job: Job
    result: subprocess.CompletedProcess[str]
    before: dict[str, dict[str, str]]
    data_before: dict[str, list[tuple]]
    requests_before: int


@pytest.fixture(scope="module")
def wrong_secret(sim: Simulator, tmp_path_factory) -> WrongSecretRun:
    """One crawl with a wrong client secret, shared by the tests that check it."""
    job = make_job(sim, tmp_path_factory.mktemp("wrong-secret"))
    job.env["SPOTIFY_CLIENT_SECRET"] = "not-the-secret"
    requests_before = requests_recorded(job.store)
    with closing(Store.open(job.store)) as store:
        data_before = store.dump()
    before = job.guarded()
    return WrongSecretRun(job, job.run(), before, data_before, requests_before)


@pytest.mark.slow
def test_wrong_client_secret_fails_at_the_token_endpoint(wrong_secret, figures):
    """Found while crawling: close reason auth_failed, exit 1, one ERROR line, no export."""
    result, job = wrong_secret.result, wrong_secret.job
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    assert result.returncode == 1, output
    errors = [line for line in output.splitlines() if " ERROR: " in line]
    assert len(errors) == 1, output
    assert "invalid_client" in errors[0] and "SPOTIFY_CLIENT_SECRET" in errors[0]
    assert "'finish_reason': 'auth_failed'" in output
    assert "not-the-secret" not in output
    assert job.guarded()["exports"] == wrong_secret.before["exports"]     # nothing published
    # The crawl opened the store (Store.open writes its header), so its bytes change; what
    # it holds must not.
    with closing(Store.open(job.store)) as store:
        assert store.dump() == wrong_secret.data_before
    figures("says", errors[0].split(" ERROR: ", 1)[1])


@pytest.mark.slow
def test_wrong_client_secret_counts_no_requests(wrong_secret):
    """No request reached Spotify's API, so the store must not record any."""
    assert requests_recorded(wrong_secret.job.store) == wrong_secret.requests_before


# ------------------------------------------------------------------- 5. export folder
def test_export_parent_not_writable(job, figures):
    parent = job.export_dir.parent
    parent.chmod(0o500)
    try:
        if os.access(parent, os.W_OK):
            pytest.skip("running as root: a 0500 folder is still writable")
        check_refused(job, figures, "EXPORT_DIR", str(parent))
    finally:
        parent.chmod(0o700)


def test_export_parent_is_a_file(job, figures):
    blocker = job.root / "exports-file"
    blocker.write_text("not a folder\n")
    job.settings["EXPORT_DIR"] = str(blocker / "catalog")
    check_refused(job, figures, "EXPORT_DIR", str(blocker))


def test_export_dir_is_a_file(job, figures):
    target = job.export_dir.parent / "catalog.txt"
    target.write_text("not a folder\n")
    job.settings["EXPORT_DIR"] = str(target)
    check_refused(job, figures, "EXPORT_DIR", str(target))


# ------------------------------------------------------------------------------ 6. store
def corrupt_header(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[:100] = b"\x5a" * 100
    path.write_bytes(bytes(data))


def corrupt_pages(path: Path) -> None:
    data = bytearray(path.read_bytes())
    page = int.from_bytes(data[16:18], "big") or 65536
    assert len(data) > 2 * page
    data[page:] = bytes((i * 37 + 11) % 256 for i in range(len(data) - page))
    path.write_bytes(bytes(data))


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 3 + 7])


def foreign(path: Path) -> None:
    path.unlink()
    db = sqlite3.connect(path)
    db.execute("PRAGMA application_id = 1234")
    db.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
    db.execute("INSERT INTO notes (body) VALUES ('someone else''s data')")
    db.commit()
    db.close()


def foreign_plain(path: Path) -> None:
    """Another app's SQLite file without an application_id (most of them)."""
    path.unlink()
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE moz_places (id INTEGER PRIMARY KEY, url TEXT)")
    db.commit()
    db.close()


@pytest.mark.parametrize("damage", [corrupt_header, corrupt_pages, truncate, foreign,
                                    foreign_plain], ids=lambda f: f.__name__)
def test_damaged_or_foreign_store(job, figures, damage):
    damage(job.store)
    check_refused(job, figures, str(job.store))


def corrupt_quietly(path: Path) -> None:
    """A wrong fragment count in one page's header: readable, but ``quick_check`` reports it."""
    with closing(sqlite3.connect(path)) as db:
        root = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'playlists'"
                          ).fetchone()[0]
    data = bytearray(path.read_bytes())
    page_size = int.from_bytes(data[16:18], "big")
    data[(root - 1) * page_size + 7] = 9
    path.write_bytes(bytes(data))


@pytest.mark.slow
def test_quietly_corrupted_store(job, figures):
    corrupt_quietly(job.store)
    check_refused(job, figures, str(job.store),
                  args=("-a", "mode=discover", "-s", "CLOSESPIDER_PAGECOUNT=1"))


@pytest.mark.parametrize("where", ["under_a_file", "a_folder"])
def test_unusable_store_path(job, figures, where):
    if where == "under_a_file":
        blocker = job.root / "state-file"
        blocker.write_text("not a folder\n")
        job.settings["CATALOG_STORE_PATH"] = str(blocker / "catalog.sqlite")
        check_refused(job, figures, "CATALOG_STORE_PATH", str(blocker))
    else:
        job.settings["CATALOG_STORE_PATH"] = str(job.store.parent)
        check_refused(job, figures, "CATALOG_STORE_PATH", "folder")


def test_unknown_export_copy_format(job, figures):
    job.settings["EXPORT_COPIES"] = "csv,xlsx"
    check_refused(job, figures, "EXPORT_COPIES", "xlsx")


# ------------------------------------------------------------------------------ 7. JOBDIR
def test_jobdir_of_another_scrapy_version(job, figures):
    jobdir = job.root / "job"
    (jobdir / "requests.queue").mkdir(parents=True)
    (jobdir / "requests.seen").write_text("0" * 40 + "\n")
    (jobdir / "requests.queue" / "active.json").write_text("[]")
    (jobdir / VERSIONS_FILE).write_text(json.dumps({"scrapy": OTHER_SCRAPY,
                                                    "python": "3.11.4"}))
    job.settings["JOBDIR"] = str(jobdir)
    line = check_refused(job, figures, "JOBDIR", str(jobdir), f"Scrapy {OTHER_SCRAPY}",
                         scrapy.__version__)
    assert "delete the JOBDIR" in line and "store keeps all progress" in line


def test_jobdir_stamp_is_written_once_and_checked(tmp_path):
    jobdir = tmp_path / "job"
    check_jobdir(jobdir)                                    # a new JOBDIR is fine
    crawler = get_crawler(settings_dict={"JOBDIR": str(jobdir)})
    recorder = JobdirVersionRecorder.from_crawler(crawler)
    jobdir.mkdir(exist_ok=True)                             # Scrapy's scheduler makes it
    recorder.spider_opened()
    stamp = json.loads((jobdir / VERSIONS_FILE).read_text())
    assert stamp["scrapy"] == scrapy.__version__ and stamp["python"].count(".") == 2
    check_jobdir(jobdir)                                    # this version may resume it
    (jobdir / VERSIONS_FILE).write_text(json.dumps({"scrapy": OTHER_SCRAPY}))
    recorder.spider_opened()                                # never rewritten
    with pytest.raises(JobdirVersionError, match=f"finish it with Scrapy {OTHER_SCRAPY}"):
        check_jobdir(jobdir)
    (jobdir / VERSIONS_FILE).write_text("{broken")
    with pytest.raises(JobdirVersionError, match="delete the JOBDIR"):
        check_jobdir(jobdir)
    afile = tmp_path / "job.txt"
    afile.write_text("")
    with pytest.raises(JobdirVersionError, match="is a file"):
        check_jobdir(afile)


# -------------------------------------------------------------------- 8. token file mode
@pytest.mark.slow
def test_token_file_readable_by_others_is_fixed_and_said(job, figures, sim):
    """Fixed, not refused (an unattended resume must not stall on a permission bit)."""
    token_file = Path(job.settings["SPOTIFY_TOKEN_FILE"])
    token_file.parent.mkdir(parents=True)
    token_file.write_text(json.dumps({"refresh_token": sim.config.refresh_token}))
    token_file.chmod(0o644)
    del job.env["SPOTIFY_REFRESH_TOKEN"]
    jobdir = job.root / "job"
    job.settings.update(JOBDIR=str(jobdir), CLOSESPIDER_PAGECOUNT="2")
    exports = job.guarded()["exports"]
    result = job.run("-a", "mode=discover")
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    assert result.returncode == 0, output
    said = [line for line in output.splitlines() if str(token_file) in line]
    assert len(said) == 1, output
    assert said[0].startswith("warning: ") and "644" in said[0] and "600" in said[0]
    assert not [line for line in output.splitlines() if line.startswith("error:")]
    assert " ERROR: " not in output, output
    assert "'finish_reason': 'closespider_pagecount'" in output, output
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert sim.config.refresh_token not in output
    assert job.guarded()["exports"] == exports              # discover mode: no export
    # The same real run stamped its JOBDIR (the extension is registered in settings.py).
    assert json.loads((jobdir / VERSIONS_FILE).read_text())["scrapy"] == scrapy.__version__
    figures("said", said[0])
