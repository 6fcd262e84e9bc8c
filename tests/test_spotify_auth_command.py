"""`scrapy spotify-auth` end to end: a subprocess against the simulator's accounts service.

The test plays the browser: it reads the authorize URL the command prints and GETs it; the
simulator approves at once and redirects to the command's loopback listener (or, for
``--paste``, the test pastes the redirect's Location into the command's stdin).
"""

from __future__ import annotations

import json
import os
import queue
import socket
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests

from runclub_spiders.auth.tokens import fingerprint

REPO = Path(__file__).resolve().parents[1]
COMMAND = "spotify-auth"
SCOPES = "playlist-read-private playlist-read-collaborative"
# Every variable the command reads: passed blank unless a test sets it, so neither the
# developer's environment nor a .env in the repo (loaded without override) can leak in.
SPOTIFY_VARIABLES = ("SPOTIFY_CLIENT_ID", "SPOTIFY_CLIENT_SECRET", "SPOTIFY_REDIRECT_URI",
                     "SPOTIFY_ACCOUNTS_BASE_URL", "SPOTIFY_REFRESH_TOKEN")
WAIT = 60  # seconds any single step may take before the test gives up


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def command_env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPOTIFY_")}
    env.update(dict.fromkeys(SPOTIFY_VARIABLES, ""))
    env.update(values)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def simulator_env(sim, redirect_uri: str, **overrides: str) -> dict[str, str]:
    return command_env(**{"SPOTIFY_CLIENT_ID": sim.config.client_id,
                          "SPOTIFY_CLIENT_SECRET": sim.config.client_secret,
                          "SPOTIFY_REDIRECT_URI": redirect_uri,
                          "SPOTIFY_ACCOUNTS_BASE_URL": sim.accounts_base_url, **overrides})


class Run:
    """A running ``scrapy spotify-auth``; threads drain its pipes so no read can hang."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.process = process
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.out: list[str] = []
        self.err: list[str] = []
        self.authorize_url = ""
        self.readers = [threading.Thread(target=self._drain, args=(process.stdout, self.out,
                                                                   self.lines), daemon=True),
                        threading.Thread(target=self._drain, args=(process.stderr, self.err,
                                                                   None), daemon=True)]
        for reader in self.readers:
            reader.start()

    @staticmethod
    def _drain(stream, into: list[str], lines: queue.Queue | None) -> None:
        for line in stream:
            into.append(line)
            if lines is not None:
                lines.put(line)
        if lines is not None:
            lines.put(None)

    @property
    def stdout(self) -> str:
        return "".join(self.out)

    @property
    def stderr(self) -> str:
        return "".join(self.err)

    def read_until(self, prefix: str) -> str:
        """The first stdout line (stripped) that starts with ``prefix``."""
        while True:
            try:
                line = self.lines.get(timeout=WAIT)
            except queue.Empty:
                line = None
            if line is None:
                self.finish()
                raise AssertionError(f"no line starting {prefix!r}; exit "
                                     f"{self.process.returncode}\nstdout: {self.stdout}\n"
                                     f"stderr: {self.stderr}")
            if line.strip().startswith(prefix):
                return line.strip()

    def read_authorize_url(self) -> str:
        self.authorize_url = self.read_until("http")
        return self.authorize_url

    @property
    def state(self) -> str:
        return parse_qs(urlsplit(self.authorize_url).query)["state"][0]

    def paste(self, url: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(url + "\n")
        self.process.stdin.flush()

    def finish(self) -> int:
        """Wait for the exit (killing the command after ``WAIT`` s) and all of its output."""
        if self.process.stdin and not self.process.stdin.closed:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=WAIT)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            for reader in self.readers:
                reader.join(timeout=WAIT)
        return self.process.returncode


@contextmanager
def spotify_auth(env: dict[str, str], *args: str) -> Iterator[Run]:
    process = subprocess.Popen(
        [sys.executable, "-m", "scrapy", COMMAND, "--no-browser", "--timeout", "20", *args],
        cwd=REPO, env=env, text=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE)
    run = Run(process)
    try:
        yield run
    finally:
        run.finish()


def run_to_end(env: dict[str, str], *args: str) -> Run:
    with spotify_auth(env, *args) as run:
        run.finish()
    return run


def assert_one_line_error(run: Run, *fragments: str) -> str:
    assert run.process.returncode == 1, run.stdout + run.stderr
    assert "Traceback" not in run.stdout + run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("spotify-auth: "), run.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def redirect_location(authorize_url: str) -> str:
    response = requests.get(authorize_url, allow_redirects=False, timeout=10)
    assert response.status_code == 302, response.text
    return response.headers["Location"]


def assert_token_stored(sim, token_file: Path, stdout: str) -> None:
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    record = json.loads(token_file.read_text())
    token = record["refresh_token"]
    assert token in sim.accounts.refresh_tokens
    assert token != sim.config.refresh_token            # a new grant, not the demo token
    assert str(token_file) in stdout and fingerprint(token) in stdout
    assert token not in stdout
    refreshed = requests.post(f"{sim.accounts_base_url}/api/token",
                              data={"grant_type": "refresh_token", "refresh_token": token},
                              auth=(sim.config.client_id, sim.config.client_secret), timeout=10)
    assert refreshed.status_code == 200 and refreshed.json()["access_token"]


@pytest.fixture
def sim(simulator_factory):
    return simulator_factory(size=100)


# ------------------------------------------------------------------------------ listener flow
def test_listener_flow_stores_a_working_refresh_token(sim, tmp_path):
    port = free_port()
    redirect_uri = f"http://127.0.0.1:{port}/callback"
    token_file = tmp_path / "cache" / "token.json"
    with spotify_auth(simulator_env(sim, redirect_uri), "--token-file", str(token_file)) as run:
        url = run.read_authorize_url()
        # Listening before the URL is shown: a browser opened at once must find the listener.
        # Off its path it answers 404 and keeps waiting.
        assert requests.get(f"http://127.0.0.1:{port}/favicon.ico", timeout=10).status_code == 404
        run.read_until("Waiting for the redirect")
        query = parse_qs(urlsplit(url).query)
        assert url.startswith(f"{sim.accounts_base_url}/authorize?")
        assert query["scope"] == [SCOPES] and query["response_type"] == ["code"]
        assert query["client_id"] == [sim.config.client_id]
        assert query["redirect_uri"] == [redirect_uri]
        assert len(run.state) >= 16
        # Bound to the redirect URI's address only, not to every (loopback) address.
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.2", port), timeout=2).close()
        # The browser: authorize, then follow the 302 to the command's listener.
        browser = requests.get(url, timeout=10)
        assert browser.status_code == 200 and "authorization received" in browser.text
        assert run.finish() == 0, run.stdout + run.stderr
    assert_token_stored(sim, token_file, run.stdout)
    assert browser.url.startswith(redirect_uri) and "code=" in browser.url
    code = parse_qs(urlsplit(browser.url).query)["code"][0]
    assert code not in run.stdout + run.stderr
    assert run.stderr == ""


def test_an_idle_connection_does_not_stall_the_listener(sim, tmp_path):
    """A browser's speculative preconnect sends nothing; the real redirect must still land."""
    port = free_port()
    token_file = tmp_path / "token.json"
    env = simulator_env(sim, f"http://127.0.0.1:{port}/callback")
    with spotify_auth(env, "--token-file", str(token_file)) as run:
        url = run.read_authorize_url()
        run.read_until("Waiting for the redirect")
        with socket.create_connection(("127.0.0.1", port), timeout=10):
            assert requests.get(url, timeout=15).status_code == 200
        assert run.finish() == 0, run.stdout + run.stderr
    assert_token_stored(sim, token_file, run.stdout)


def test_ipv6_loopback_redirect_uri(sim, tmp_path):
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    with socket.socket(socket.AF_INET6) as probe:
        try:
            probe.bind(("::1", 0))
        except OSError:
            pytest.skip("no ::1 on this machine")
        port = probe.getsockname()[1]
    token_file = tmp_path / "token.json"
    env = simulator_env(sim, f"http://[::1]:{port}/callback")
    with spotify_auth(env, "--token-file", str(token_file)) as run:
        url = run.read_authorize_url()
        run.read_until("Waiting for the redirect")
        assert requests.get(url, timeout=10).status_code == 200
        assert run.finish() == 0, run.stdout + run.stderr
    assert_token_stored(sim, token_file, run.stdout)


def test_forged_state_is_refused_and_nothing_is_stored(sim, tmp_path):
    port = free_port()
    token_file = tmp_path / "token.json"
    env = simulator_env(sim, f"http://127.0.0.1:{port}/callback")
    with spotify_auth(env, "--token-file", str(token_file)) as run:
        run.read_authorize_url()
        run.read_until("Waiting for the redirect")
        requests.get(f"http://127.0.0.1:{port}/callback?code=x&state=wrong", timeout=10)
        run.finish()
    assert_one_line_error(run, "state")
    assert not token_file.exists()
    assert sim.accounts.token_grants == 0


# ------------------------------------------------------------------------------ --paste flow
def test_paste_flow_stores_the_token(sim, tmp_path):
    # No listener runs with --paste, so the redirect URI's port need not be free.
    redirect_uri = f"http://127.0.0.1:{free_port()}/callback"
    token_file = tmp_path / "token.json"
    with spotify_auth(simulator_env(sim, redirect_uri), "--paste",
                      "--token-file", str(token_file)) as run:
        url = run.read_authorize_url()
        run.read_until("Paste the full URL")
        location = redirect_location(url)
        assert location.startswith(redirect_uri) and f"state={run.state}" in location
        run.paste(location)
        assert run.finish() == 0, run.stdout + run.stderr
    assert_token_stored(sim, token_file, run.stdout)


def test_pasted_refusal_is_reported(sim, tmp_path):
    redirect_uri = f"http://127.0.0.1:{free_port()}/callback"
    token_file = tmp_path / "token.json"
    with spotify_auth(simulator_env(sim, redirect_uri), "--paste",
                      "--token-file", str(token_file)) as run:
        run.read_authorize_url()
        run.read_until("Paste the full URL")
        run.paste(f"{redirect_uri}?{urlencode({'error': 'access_denied', 'state': run.state})}")
        run.finish()
    assert_one_line_error(run, "refused", "access_denied")
    assert not token_file.exists()


def test_wrong_client_secret_fails_the_exchange(sim, tmp_path):
    redirect_uri = f"http://127.0.0.1:{free_port()}/callback"
    token_file = tmp_path / "token.json"
    env = simulator_env(sim, redirect_uri, SPOTIFY_CLIENT_SECRET="not-the-secret")
    with spotify_auth(env, "--paste", "--token-file", str(token_file)) as run:
        run.read_authorize_url()
        run.read_until("Paste the full URL")
        run.paste(redirect_location(run.authorize_url))
        run.finish()
    line = assert_one_line_error(run, "token exchange failed", "invalid_client")
    assert "not-the-secret" not in line
    assert not token_file.exists()


def test_taken_port_suggests_paste(sim, tmp_path):
    token_file = tmp_path / "token.json"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        env = simulator_env(sim, f"http://127.0.0.1:{taken.getsockname()[1]}/callback")
        run = run_to_end(env, "--token-file", str(token_file))
    assert_one_line_error(run, "cannot listen on 127.0.0.1", "--paste")
    # It fails before sending anyone to the authorize page.
    assert "/authorize?" not in run.stdout
    assert not token_file.exists()


# ------------------------------------------------------------------------------ bad input
BAD_CONFIG = [
    pytest.param({"SPOTIFY_REDIRECT_URI": "http://localhost:8888/callback"},
                 ("localhost", "http://127.0.0.1:8888/callback"), id="localhost"),
    pytest.param({"SPOTIFY_REDIRECT_URI": "https://127.0.0.1:8888/callback"},
                 ("must be http://127.0.0.1:PORT/PATH",), id="https"),
    pytest.param({"SPOTIFY_REDIRECT_URI": "http://192.0.2.1:8888/callback"},
                 ("must be http://127.0.0.1:PORT/PATH",), id="non-loopback-ip"),
    pytest.param({"SPOTIFY_REDIRECT_URI": "http://example.com:8888/callback"},
                 ("must be http://127.0.0.1:PORT/PATH",), id="hostname"),
    pytest.param({"SPOTIFY_REDIRECT_URI": "http://127.0.0.1/callback"},
                 ("explicit port",), id="missing-port"),
    pytest.param({"SPOTIFY_CLIENT_SECRET": ""}, ("SPOTIFY_CLIENT_SECRET",),
                 id="missing-secret"),
    pytest.param({"SPOTIFY_REDIRECT_URI": ""}, ("SPOTIFY_REDIRECT_URI is not set",),
                 id="unset-redirect-uri"),
]


@pytest.mark.parametrize(("overrides", "fragments"), BAD_CONFIG)
def test_bad_configuration_gives_one_line(overrides, fragments, tmp_path):
    # No simulator needed: the command must stop before contacting anything.
    env = command_env(**{"SPOTIFY_CLIENT_ID": "client", "SPOTIFY_CLIENT_SECRET": "secret",
                         "SPOTIFY_REDIRECT_URI": "http://127.0.0.1:8888/callback",
                         "SPOTIFY_ACCOUNTS_BASE_URL": "http://127.0.0.1:9", **overrides})
    token_file = tmp_path / "token.json"
    run = run_to_end(env, "--token-file", str(token_file))
    line = assert_one_line_error(run, *fragments)
    if "SPOTIFY_CLIENT_SECRET" in overrides:
        assert "SPOTIFY_CLIENT_ID" not in line
    assert "/authorize?" not in run.stdout
    assert not token_file.exists()
