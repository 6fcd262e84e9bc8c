"""`scrapy simulator` as a user runs it: a subprocess on loopback."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import orjson
import requests

REPO = Path(__file__).resolve().parents[1]


def scrapy(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "scrapy", "simulator", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120, check=False,
                          **kwargs)


def test_tour_walks_every_service():
    result = scrapy("--size", "3000", "--tour")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SPOTIFY_API_BASE_URL=http://127.0.0.1:" in result.stdout
    assert result.stdout.count("[ok]") >= 5 and "[FAIL]" not in result.stdout


def test_bad_knobs_give_one_clear_line_and_no_traceback():
    for args, message in [(("--quota", "foo=1"), "unknown quota bucket"),
                          (("--quota", "search"), "--quota takes BUCKET=N"),
                          (("--api-profile", "premium"), "profile must be one of"),
                          (("--error-rate", "2"), "error_rate must be between 0 and 1"),
                          (("--hostile-rate", "-0.1"), "hostile_rate must be between 0 and 1"),
                          (("--host", "0.0.0.0"), "loopback only")]:
        result = scrapy("--size", "100", *args)
        assert result.returncode == 2, args
        assert message in result.stderr, result.stderr
        assert "Traceback" not in result.stderr + result.stdout


def test_busy_port_is_reported():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        result = scrapy("--size", "100", "--port", str(taken.getsockname()[1]))
    assert result.returncode == 2
    assert "cannot listen on 127.0.0.1" in result.stderr
    assert "Traceback" not in result.stderr


def test_serves_until_terminated_and_writes_env_and_truth(tmp_path):
    env_file, truth = tmp_path / "sim.env", tmp_path / "truth.jsonl"
    process = subprocess.Popen(
        [sys.executable, "-m", "scrapy", "simulator", "--size", "2000", "--api-profile",
         "extended", "--env-file", str(env_file), "--truth", str(truth)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert process.stdout is not None
        lines = []
        for line in process.stdout:
            lines.append(line)
            if line.startswith("serving until Ctrl-C"):
                break
        values = dict(line.split("=", 1) for line in env_file.read_text().splitlines())
        assert values["SPOTIFY_API_PROFILE"] == "extended"
        token = requests.post(f"{values['SPOTIFY_ACCOUNTS_BASE_URL']}/api/token",
                              data={"grant_type": "refresh_token",
                                    "refresh_token": values["SPOTIFY_REFRESH_TOKEN"]},
                              auth=(values["SPOTIFY_CLIENT_ID"], values["SPOTIFY_CLIENT_SECRET"]),
                              timeout=10).json()["access_token"]
        me = requests.get(f"{values['SPOTIFY_API_BASE_URL']}/me",
                          headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert me.status_code == 200 and me.json()["country"] == "US"
        rows = [orjson.loads(line) for line in truth.read_bytes().splitlines()]
        assert len(rows) >= 2000
        assert {"id", "isrc", "original_year", "decade", "umbrellas", "recco_known",
                "playable"} <= set(rows[0])
    finally:
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=30)
    assert process.returncode == 0
    assert "simulator stopped" in out


def test_a_scrapy_start_does_not_load_the_simulator():
    """Scrapy imports every command module at each start (``scrapy crawl`` too): the
    simulator's commands import it, and aiohttp with it, only when they run."""
    script = ("import sys\n"
              "from scrapy.cmdline import _get_commands_dict\n"
              "from scrapy.utils.project import get_project_settings\n"
              "commands = _get_commands_dict(get_project_settings(), inproject=True)\n"
              "assert {'simulator', 'demo', 'crawl'} <= set(commands), sorted(commands)\n"
              "print(sorted(m for m in sys.modules if m.startswith(('aiohttp', "
              "'runclub_spiders.simulator'))))\n")
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True,
                            text=True, timeout=60, check=False,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
