"""Secrets, pushed further than ``tests/test_secrets.py``: each test fails if the code leaks.

* One real ``scrapy crawl spotify_catalog`` (a subprocess: LOG_LEVEL=DEBUG into LOG_FILE,
  JOBDIR, refresh tokens rotating on every refresh, access tokens dying every 20 requests)
  that publishes an export. Every secret the simulator issued is searched for, raw,
  URL-encoded and base64 at each alignment, in every byte the crawl left behind (log,
  stdout/stderr, JOBDIR, the store and its -wal/-shm, the export with its .gz files
  decompressed, the stats dump) and, while it ran, in JOBDIR and the WAL.
* Token-endpoint failures (wrong client secret, a 500, a 500 that echoes the request) leave
  no secret in error lines, tracebacks, request failures or stats; nor does an HTTP cache.
* The token file is 0600 whatever the umask, before and after a rotation.
* The login command refuses a redirect whose ``state`` is wrong, missing or empty, before any
  token exchange, although the code it carries is real (without the check it would work).
* The simulator and the login listener listen on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import io
import json
import logging
import os
import re
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, quote, quote_plus, urlencode, urlsplit

import pytest
import requests
from aiohttp import web
from scrapy.downloadermiddlewares.httpcache import HttpCacheMiddleware
from scrapy.utils.defer import deferred_f_from_coro_f

from runclub_spiders.auth import login
from runclub_spiders.auth.tokens import TokenFile
from runclub_spiders.simulator import SimulatorConfig
from tests.conftest import crawl_settings, run_spider, use_credentials
from tests.spiders import ProbeSpider

REPO = Path(__file__).resolve().parents[2]
WRONG_SECRET = "wrong-client-secret-4f9c2a7e"
RECCOBEATS_KEY = "reccobeats-api-key-7d31e0b5c2"

# Every form a secret is searched in is made of these characters, so a secret occurs in a blob
# only inside a run of them: searching the blob's distinct runs is exact, and fast.
RUN = re.compile(rb"[A-Za-z0-9_\-+/=%.~]{16,}")


# ---------------------------------------------------------------------------- secret search
def base64_cores(data: bytes) -> set[bytes]:
    """What ``data`` looks like inside any base64 text, at each of the three alignments
    (standard and URL-safe alphabets): the groups that depend on ``data`` alone."""
    cores = set()
    for shift in range(3):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            text = encode(b"\0" * shift + data)
            cores.add(text[4 if shift else 0:-4])
    return cores


class Secrets:
    """Labelled search forms of every secret; ``found(blob)`` names those present."""

    def __init__(self) -> None:
        self.forms: dict[bytes, str] = {}
        self.labels: list[str] = []

    def add(self, label: str, secret: str, raw: bool = True) -> None:
        data = secret.encode()
        forms = base64_cores(data)
        if raw:
            forms |= {data, quote(secret, safe="").encode(), quote_plus(secret).encode()}
        for form in forms:
            assert RUN.fullmatch(form), (label, form)      # else the run search could miss it
            self.forms.setdefault(form, label)
        self.labels.append(label)

    def add_client(self, client_id: str, client_secret: str, label: str) -> None:
        self.add(label, client_secret)
        self.add(f"{label} (Basic header)", f"{client_id}:{client_secret}", raw=False)

    def found(self, blob: bytes | str, ignore: frozenset[str] = frozenset()) -> set[str]:
        if isinstance(blob, str):
            blob = blob.encode("utf-8", "surrogateescape")
        haystack = b"\n".join(set(RUN.findall(blob)))
        return {label for form, label in self.forms.items()
                if label not in ignore and form in haystack}


def record_issued(sim) -> dict[str, list[str]]:
    """Every access and refresh token the simulator hands out from now on, in order.

    (``sim.accounts.refresh_tokens`` forgets rotated-away tokens, which must not leak either.)
    """
    issued: dict[str, list[str]] = {"access": [], "refresh": []}
    original = sim.accounts._issue

    def issue(refresh_token):
        body = original(refresh_token)
        issued["access"].append(body["access_token"])
        if refresh_token:
            issued["refresh"].append(refresh_token)
        return body

    sim.accounts._issue = issue          # looked up per request, so patching the live one works
    return issued


def files_under(root: Path) -> list[Path]:
    """Files below ``root``, tolerating folders that vanish meanwhile (os.walk skips them)."""
    return [Path(folder, name) for folder, _, names in os.walk(root) for name in names]


def blobs(path: Path) -> list[bytes]:
    """A file's bytes, and for .gz its decompressed content too (empty if it vanished)."""
    try:
        data = path.read_bytes()
    except (FileNotFoundError, IsADirectoryError):
        return []
    out = [data]
    if path.suffix == ".gz":
        out.append(gzip.decompress(data))
    return out


def test_the_search_finds_every_form_it_claims(tmp_path):
    """The harness itself: a secret planted raw, URL-encoded, in base64 at any offset (also
    inside a Basic header) or in a gzip member is found; an unrelated token is not."""
    token, client = "AQ" + "x1_-Yz" * 9, "client-secret-value-1234"
    secrets = Secrets()
    secrets.add("token", token)
    secrets.add_client("someclient", client, "client")
    planted = [f'{{"refresh_token": "{token}"}}'.encode(),
               f"Bearer {token}\r\n".encode(),
               urlencode({"refresh_token": token}).encode(),
               *(b"x-header: " + base64.b64encode(b"p" * n + token.encode() + b"q" * n)
                 for n in range(3)),
               *(base64.urlsafe_b64encode(b"p" * n + token.encode()) for n in range(3))]
    for blob in planted:
        assert secrets.found(b"noise " + blob + b" noise") == {"token"}, blob
    basic = base64.b64encode(f"someclient:{client}".encode())
    assert secrets.found(b"Authorization: Basic " + basic) >= {"client (Basic header)"}
    packed = tmp_path / "x.jsonl.gz"
    packed.write_bytes(gzip.compress(f"{client}\n".encode() * 100))
    assert set().union(*(secrets.found(b) for b in blobs(packed))) == {"client"}
    assert secrets.found(("AQ" + "x1_-Yz" * 8 + "Q").encode()) == set()


# ---------------------------------------------------------------------------- 1. full crawl
SLOTS = {"api.spotify.com": {"concurrency": 4, "delay": 0.0},
         "accounts.spotify.com": {"concurrency": 1, "delay": 0.0},
         "api.reccobeats.com": {"concurrency": 4, "delay": 0.0}}


def crawl_command(folder: Path) -> list[str]:
    settings = {
        "LOG_LEVEL": "DEBUG", "LOG_FILE": folder / "crawl.log", "JOBDIR": folder / "job",
        "CATALOG_STORE_PATH": folder / "store.sqlite",
        "EXPORT_DIR": folder / "exports" / "catalog",
        "SPOTIFY_TOKEN_FILE": folder / "cache" / "spotify_token.json",
        "AUTOTHROTTLE_ENABLED": False, "DOWNLOAD_SLOTS": json.dumps(SLOTS),
        "CATALOG_CELL_MIN": 2, "CATALOG_CELL_TARGET": 3, "CATALOG_MAX_TRACKS": 2000,
        "DISCOVERY_CONCURRENCY": 4, "DISCOVERY_PROGRESS_INTERVAL": 0,
        "RATE_LIMIT_BACKOFF_BASE": 0.05, "RATE_LIMIT_BACKOFF_MAX": 0.5}
    command = [sys.executable, "-m", "scrapy", "crawl", "spotify_catalog"]
    for name, value in settings.items():
        command += ["-s", f"{name}={value}"]
    return command


def crawl_env(sim) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SPOTIFY_", "RECCOBEATS_"))}
    env.update(sim.env())
    env["SPOTIFY_REFRESH_TOKEN"] = ""            # the token file is used, and rotated
    env["RECCOBEATS_API_KEY"] = RECCOBEATS_KEY   # optional, but a secret when set
    env["PYTHONUNBUFFERED"] = "1"
    return env


class Sampler:
    """Scans JOBDIR and the store's -wal/-shm while the crawl runs: a pickled request or a WAL
    page is there only for a moment."""

    def __init__(self, folder: Path, secrets: Secrets, issued: dict[str, list[str]]) -> None:
        self.folder, self.secrets, self.issued = folder, secrets, issued
        self.known = {"access": 0, "refresh": 0}
        self.snapshots = self.bytes = self.queue_snapshots = self.wal_snapshots = 0
        self.leaks: dict[str, set[str]] = {}
        self.seen: dict[Path, tuple[int, int, int]] = {}

    def learn(self) -> None:
        """Add the tokens issued since the last call (those a file can hold by now)."""
        for kind in ("access", "refresh"):
            tokens = self.issued[kind][:]
            for n in range(self.known[kind], len(tokens)):
                self.secrets.add(f"{kind} token #{n + 1}", tokens[n])
            self.known[kind] = len(tokens)

    def sample(self, heavy: bool) -> None:
        """JOBDIR (small, its queue short-lived) every time; the rest when ``heavy``."""
        self.learn()
        paths = files_under(self.folder / "job")
        if heavy:
            paths += [self.folder / "store.sqlite-wal", self.folder / "store.sqlite-shm"]
        queued = wal = False
        for path in paths:
            try:
                info = path.stat()
            except FileNotFoundError:
                continue
            queued |= "requests.queue" in path.parts and path.name != "active.json" \
                and info.st_size > 0
            wal |= path.name.endswith("-wal") and info.st_size > 0
            # A file read is searched again once changed, or once more tokens are known (one
            # issued between learn() and the read may be in it).
            version = (info.st_size, info.st_mtime_ns, len(self.secrets.forms))
            if self.seen.get(path) == version:
                continue
            self.seen[path] = version
            for blob in blobs(path):
                self.bytes += len(blob)
                leaked = self.secrets.found(blob)
                if leaked:
                    self.leaks.setdefault(str(path.relative_to(self.folder)), set()).update(
                        leaked)
        self.snapshots += 1
        self.queue_snapshots += queued
        self.wal_snapshots += wal


def stat_values(log: str) -> dict[str, str]:
    """The crawl's stats from the log's "Dumping Scrapy stats" block."""
    block = log.split("Dumping Scrapy stats:", 1)[1]
    return dict(re.findall(r"'([^']+)': ([^,\n}]+)", block))


@pytest.mark.slow
def test_full_crawl_leaves_no_secret_anywhere(simulator_factory, tmp_path, figures):
    sim = simulator_factory(token_expire_every=20, rotate_refresh_tokens=True)
    issued = record_issued(sim)
    secrets = Secrets()
    secrets.add_client(sim.config.client_id, sim.config.client_secret, "client secret")
    secrets.add("initial refresh token", sim.config.refresh_token)
    secrets.add("ReccoBeats API key", RECCOBEATS_KEY)
    token_file = TokenFile(tmp_path / "cache" / "spotify_token.json")
    token_file.write(sim.config.refresh_token)
    sampler = Sampler(tmp_path, secrets, issued)

    started = time.monotonic()
    with (tmp_path / "stdout.txt").open("wb") as out, (tmp_path / "stderr.txt").open("wb") as err:
        process = subprocess.Popen(crawl_command(tmp_path), cwd=REPO, env=crawl_env(sim),
                                   stdout=out, stderr=err)
        try:
            tick = 0
            while process.poll() is None and time.monotonic() - started < 150:
                sampler.sample(heavy=tick % 20 == 0)
                tick += 1
                time.sleep(0.05)
        finally:
            if process.poll() is None:
                process.kill()
            process.wait()
    seconds = time.monotonic() - started
    log = (tmp_path / "crawl.log").read_text(encoding="utf-8")
    assert process.returncode == 0, log[-3000:] + (tmp_path / "stderr.txt").read_text()
    sampler.learn()

    # The crawl went through every path a token could leak by.
    stats = stat_values(log)
    assert stats["finish_reason"] == "'finished'" and stats["export/published"] == "1"
    assert "log_count/ERROR" not in stats and " ERROR: " not in log, log[-3000:]
    assert "Traceback" not in log
    assert "(finished)" in log
    assert " DEBUG: Crawled (200)" in log                             # DEBUG was really on
    assert int(stats["spotify/auth/retried_401"]) > 0                 # tokens died mid-crawl
    rotations = int(stats["spotify/auth/refresh_token_rotated"])
    assert rotations == len(issued["refresh"]) >= 10                  # the file was rewritten
    assert len(issued["access"]) >= 20
    assert int(stats.get("reccobeats/requests", "0")) > 0             # the API key was sent
    # Queued requests sit in JOBDIR only for moments (tests/test_secrets.py stops a crawl
    # to catch them for sure); the figure below says how often the sampler saw them.
    assert sampler.snapshots >= 5
    assert sampler.leaks == {}, sampler.leaks

    # Afterwards: every file, the token file apart (checked below).
    files = scanned = 0
    leaks: dict[str, set[str]] = {}
    for path in sorted(tmp_path.rglob("*")):
        if not path.is_file() or path == token_file.path:
            continue
        files += 1
        for blob in blobs(path):
            scanned += len(blob)
            if found := secrets.found(blob):
                leaks[str(path.relative_to(tmp_path))] = found
    assert leaks == {}, leaks
    assert (tmp_path / "exports" / "catalog" / "manifest.json").exists()
    assert list((tmp_path / "exports" / "catalog").glob("*.jsonl.gz"))

    # The token file holds the live refresh token and nothing else, mode 0600 after
    # every rotation; no temporary copy is left beside it.
    live = f"refresh token #{len(issued['refresh'])}"
    assert secrets.found(token_file.path.read_bytes()) == {live}
    assert token_file.refresh_token() == issued["refresh"][-1]
    assert stat.S_IMODE(token_file.path.stat().st_mode) == 0o600
    assert sorted(p.name for p in token_file.path.parent.iterdir()) == ["spotify_token.json"]

    figures("crawl seconds (subprocess, DEBUG)", f"{seconds:.1f}")
    figures("files scanned after the crawl", files)
    figures("bytes scanned after the crawl (.gz decompressed too)", f"{scanned:,}")
    figures("mid-crawl snapshots (JOBDIR; -wal/-shm every 20th)",
            f"{sampler.snapshots} ({sampler.queue_snapshots} with queued requests, "
            f"{sampler.wal_snapshots} with a WAL; {sampler.bytes:,} bytes)")
    figures("secrets checked", f"{len(secrets.labels)} ({len(issued['access'])} access "
            f"tokens, {len(issued['refresh']) + 1} refresh tokens, client secret and its "
            f"Basic header, ReccoBeats key) in {len(secrets.forms)} forms")
    figures("401 retries / refresh-token rotations",
            f"{stats['spotify/auth/retried_401']} / {rotations}")


# ---------------------------------------------------------------------------- 2. failures
class RecordingProbe(ProbeSpider):
    """ProbeSpider that keeps each failure's full text and traceback."""

    name = "probe_recording"

    def failed(self, failure):
        super().failed(failure)
        self.failure_texts = [*getattr(self, "failure_texts", []),
                              f"{failure.value!r} {failure.value}", failure.getTraceback()]


async def probe(sim, tmp_path, caplog, n: int = 3, **settings):
    paths = [f"/tracks/{t.id}" for t in sim.catalog.tracks[:n]]
    with caplog.at_level(logging.DEBUG):
        crawler, _ = await run_spider(
            RecordingProbe, crawl_settings(sim, tmp_path, LOG_LEVEL="DEBUG", **settings),
            paths=paths)
    return crawler


def everything_said(crawler, caplog) -> str:
    """Log lines as formatted (tracebacks included), failures and stats."""
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    lines = [formatter.format(r) for r in caplog.records]
    return "\n".join([*lines, *getattr(crawler.spider, "failure_texts", []),
                      repr(crawler.stats.get_stats())])


def client_secrets(sim) -> Secrets:
    secrets = Secrets()
    secrets.add_client(sim.config.client_id, sim.config.client_secret, "client secret")
    secrets.add_client(sim.config.client_id, WRONG_SECRET, "wrong client secret")
    secrets.add("refresh token", sim.config.refresh_token)
    return secrets


@deferred_f_from_coro_f
async def test_wrong_client_secret_fails_without_naming_it(simulator_factory, tmp_path,
                                                           monkeypatch, caplog, figures):
    sim = simulator_factory()
    issued = record_issued(sim)
    use_credentials(monkeypatch, sim)
    monkeypatch.setenv("SPOTIFY_CLIENT_SECRET", WRONG_SECRET)
    crawler = await probe(sim, tmp_path, caplog)
    stats = crawler.stats.get_stats()
    assert stats["finish_reason"] == "auth_failed"
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "invalid_client" in errors[0], errors
    assert issued["access"] == []
    said = everything_said(crawler, caplog)
    assert client_secrets(sim).found(said) == set()
    figures("wrong client secret: bytes of log, failures and stats checked", len(said))


def token_endpoint_fails(sim, echo: bool) -> None:
    """The token endpoint answers 500; with ``echo``, its body repeats the request (a broken
    proxy's debug page): the client secret, the refresh token, the Authorization header."""

    def fail(request, form):
        body = {"error": "server_error", "error_description": "try later"}
        if echo:
            body = {"error": f"server_error: {form}",
                    "error_description": f"Authorization: {request.headers['Authorization']}"
                                         f" client_secret={sim.config.client_secret}"}
        raise web.HTTPInternalServerError(text=json.dumps(body),
                                          content_type="application/json")

    sim.accounts._client_ok = fail


@pytest.mark.parametrize("echo", [False, True], ids=["plain", "echoing"])
@deferred_f_from_coro_f
async def test_token_endpoint_500_logs_no_secret(simulator_factory, tmp_path, monkeypatch,
                                                 caplog, echo):
    sim = simulator_factory()
    use_credentials(monkeypatch, sim)
    token_endpoint_fails(sim, echo)
    crawler = await probe(sim, tmp_path, caplog, RETRY_TIMES=1)
    stats = crawler.stats.get_stats()
    assert stats["finish_reason"] == "finished"
    assert stats["spotify/auth/token_errors"] == 3            # one per request, none got in
    assert not sim.requests(service="spotify")
    refused = [e for e in sim.requests(service="accounts") if e.status == 500]
    assert len(refused) == 6                                  # each tried twice (RETRY_TIMES=1)
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert sum("token endpoint answered HTTP 500" in e for e in errors) == 3, errors
    assert set(crawler.spider.failures.values()) == {"IgnoreRequest"}
    assert client_secrets(sim).found(everything_said(crawler, caplog)) == set()


@deferred_f_from_coro_f
async def test_http_cache_stores_no_bearer_token(simulator_factory, tmp_path, monkeypatch,
                                                 caplog):
    """Scrapy's filesystem cache writes each request's headers to disk; a developer turning
    it on (``-s HTTPCACHE_ENABLED=1``) must not find Bearer tokens there."""
    sim = simulator_factory(token_expire_every=3)
    issued = record_issued(sim)
    use_credentials(monkeypatch, sim)
    cache = tmp_path / "httpcache"
    crawler = await probe(sim, tmp_path, caplog, n=8, HTTPCACHE_ENABLED=True,
                          HTTPCACHE_DIR=str(cache))
    assert crawler.stats.get_value("finish_reason") == "finished"
    assert len(crawler.spider.statuses) == 8, crawler.spider.failures
    assert len(issued["access"]) >= 2
    # The cache really ran (so it saw every request) and the auth middleware said why it
    # stays empty: Spotify API requests (and token requests) are marked dont_cache.
    assert crawler.get_downloader_middleware(HttpCacheMiddleware) is not None
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert sum(w.startswith("HTTPCACHE_ENABLED: Spotify API requests are not cached")
               for w in warnings) == 1, warnings
    assert crawler.stats.get_value("httpcache/store", 0) == 0
    secrets = client_secrets(sim)
    for n, token in enumerate(issued["access"]):
        secrets.add(f"access token #{n + 1}", token)
    stored = [path for path in cache.rglob("*") if path.is_file()]
    for path in stored:
        assert secrets.found(path.read_bytes()) == set(), path
    assert stored == []


# ---------------------------------------------------------------------------- 3. token file
@pytest.fixture
def open_umask():
    """umask 000 for the test: modes must come from the code, not from the umask."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def test_token_file_is_0600_from_the_first_byte_and_after_rotations(tmp_path, monkeypatch,
                                                                    open_umask):
    real_replace = os.replace
    seen: list[int] = []

    def replace(src, dst, *args, **kwargs):
        # The temporary file already holds the token: it must never have been readable.
        seen.append(stat.S_IMODE(os.stat(src).st_mode))
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)
    token_file = TokenFile(tmp_path / "new" / "cache" / "token.json")
    token_file.write("AQ-first")
    assert stat.S_IMODE(token_file.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(token_file.path.parent.stat().st_mode) == 0o700
    token_file.path.chmod(0o644)                 # loosened by hand, then a rotation
    token_file.write("AQ-rotated", scope="x")
    assert stat.S_IMODE(token_file.path.stat().st_mode) == 0o600
    assert token_file.refresh_token() == "AQ-rotated"
    assert seen == [0o600, 0o600]
    assert [p.name for p in token_file.path.parent.iterdir()] == ["token.json"]


# ---------------------------------------------------------------------------- 4. login state
class Terminal(io.StringIO):
    """The login command's stdout and stdin; ``answer`` supplies the pasted line."""

    def __init__(self, answer=None) -> None:
        super().__init__()
        self.answer = answer
        self.location = ""
        self.lock = threading.Lock()

    def write(self, text: str) -> int:
        with self.lock:
            return super().write(text)

    def text(self) -> str:
        with self.lock:
            return self.getvalue()

    def authorize_url(self) -> str:
        return next(line.strip() for line in self.text().splitlines()
                    if "/authorize?" in line)

    def readline(self) -> str:                   # as sys.stdin
        return self.answer(self) + "\n"


def real_code(sim, redirect_uri: str) -> str:
    """An authorization code the simulator would exchange (for another login attempt)."""
    response = requests.get(f"{sim.accounts_base_url}/authorize", params={
        "client_id": sim.config.client_id, "response_type": "code",
        "redirect_uri": redirect_uri, "state": "someone-elses-state"},
        allow_redirects=False, timeout=10)
    return parse_qs(urlsplit(response.headers["Location"]).query)["code"][0]


def forged_query(case: str, code: str) -> str:
    return {"wrong": urlencode({"code": code, "state": "forged-state-value"}),
            "missing": urlencode({"code": code}),
            "empty": urlencode({"code": code, "state": ""}),
            # An error with no state did not come from our authorize request either.
            "error-without-state": urlencode({"error": "access_denied"})}[case]


def listening(port: int) -> list[str]:
    """Local addresses (as /proc/net shows them) of the sockets listening on ``port``."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table, encoding="ascii") as lines:
            next(lines)
            for line in lines:
                local, state = line.split()[1], line.split()[3]
                address, _, hex_port = local.rpartition(":")
                if state == "0A" and int(hex_port, 16) == port:
                    found.append(address)
    return found


@pytest.fixture
def login_env(simulator_factory, monkeypatch, tmp_path):
    sim = simulator_factory(size=100)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        number = probe.getsockname()[1]
    redirect_uri = f"http://127.0.0.1:{number}/callback"
    for name, value in (("SPOTIFY_CLIENT_ID", sim.config.client_id),
                        ("SPOTIFY_CLIENT_SECRET", sim.config.client_secret),
                        ("SPOTIFY_REDIRECT_URI", redirect_uri),
                        ("SPOTIFY_ACCOUNTS_BASE_URL", sim.accounts_base_url)):
        monkeypatch.setenv(name, value)
    return sim, redirect_uri, number, tmp_path / "cache" / "token.json"


def run_login(terminal: Terminal, paste: bool, token_file: Path, monkeypatch) -> None:
    monkeypatch.setattr(sys, "stdout", terminal)
    monkeypatch.setattr(sys, "stdin", terminal)
    opts = argparse.Namespace(paste=paste, no_browser=True, token_file=str(token_file),
                              timeout=15.0)
    login.Command()._login(opts)


def login_in_thread(terminal: Terminal, token_file: Path, monkeypatch) -> tuple:
    outcome: list[BaseException | None] = []

    def target():
        try:
            run_login(terminal, False, token_file, monkeypatch)
            outcome.append(None)
        except BaseException as exc:      # handed to the test
            outcome.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while "Waiting for the redirect" not in terminal.text():
        assert thread.is_alive() and time.monotonic() < deadline, terminal.text()
        time.sleep(0.02)
    return thread, outcome


def token_exchanges(sim) -> list:
    return [e for e in sim.requests(service="accounts") if e.path.endswith("/api/token")]


CASES = ["wrong", "missing", "empty", "error-without-state"]


@pytest.mark.parametrize("case", CASES)
def test_pasted_redirect_without_our_state_is_refused(login_env, monkeypatch, case):
    sim, redirect_uri, _, token_file = login_env
    code = real_code(sim, redirect_uri)
    terminal = Terminal(answer=lambda _: f"{redirect_uri}?{forged_query(case, code)}")
    with pytest.raises(login.AuthError, match="state"):
        run_login(terminal, True, token_file, monkeypatch)
    assert token_exchanges(sim) == [] and code in sim.accounts.codes    # never sent
    assert not token_file.exists()


@pytest.mark.parametrize("case", CASES)
def test_listener_redirect_without_our_state_is_refused(login_env, monkeypatch, case):
    sim, redirect_uri, port, token_file = login_env
    code = real_code(sim, redirect_uri)
    terminal = Terminal()
    thread, outcome = login_in_thread(terminal, token_file, monkeypatch)
    # The listener is up: on 127.0.0.1 only (section 5 checks the simulator the same way).
    assert listening(port) == ["0100007F"]
    requests.get(f"{redirect_uri}?{forged_query(case, code)}", timeout=10)
    thread.join(timeout=15)
    assert len(outcome) == 1 and isinstance(outcome[0], login.AuthError), outcome
    assert "state" in str(outcome[0])
    assert token_exchanges(sim) == [] and code in sim.accounts.codes
    assert not token_file.exists()
    assert listening(port) == []                                       # and closed again


def browser(terminal: Terminal) -> str:
    """Approve the printed authorize URL; the redirect's URL, as the user would paste it."""
    response = requests.get(terminal.authorize_url(), allow_redirects=False, timeout=10)
    terminal.location = response.headers["Location"]
    return terminal.location


@pytest.mark.parametrize("failure", ["wrong-secret", "echoing-500"])
def test_failed_exchange_names_no_secret(login_env, monkeypatch, failure):
    sim, _, _, token_file = login_env
    if failure == "wrong-secret":
        monkeypatch.setenv("SPOTIFY_CLIENT_SECRET", WRONG_SECRET)
    else:
        token_endpoint_fails(sim, echo=True)
    terminal = Terminal(answer=browser)
    with pytest.raises(login.AuthError, match="token exchange failed") as refused:
        run_login(terminal, True, token_file, monkeypatch)
    assert len(token_exchanges(sim)) == 1
    secrets = client_secrets(sim)
    secrets.add("authorization code", parse_qs(urlsplit(terminal.location).query)["code"][0])
    assert secrets.found(f"{refused.value}\n{terminal.text()}") == set()
    assert not token_file.exists()


@pytest.mark.parametrize("paste", [True, False], ids=["paste", "listener"])
def test_our_state_is_accepted_and_the_file_is_0600(login_env, monkeypatch, open_umask, paste):
    """The control: the same flows with the right state exchange the code exactly once, and
    the token file is 0600 under umask 000, also over a loose file left from before."""
    sim, _, _, token_file = login_env
    token_file.parent.mkdir(parents=True)
    token_file.write_text('{"refresh_token": "AQ-old"}')
    token_file.chmod(0o644)
    terminal = Terminal(answer=browser)
    if paste:
        run_login(terminal, True, token_file, monkeypatch)
    else:
        thread, outcome = login_in_thread(terminal, token_file, monkeypatch)
        assert requests.get(terminal.authorize_url(), timeout=10).status_code == 200
        thread.join(timeout=15)
        assert outcome == [None]
    assert len(token_exchanges(sim)) == 1
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    stored = TokenFile(token_file).refresh_token()
    assert stored in sim.accounts.refresh_tokens and stored not in terminal.text()


# ---------------------------------------------------------------------------- 5. binding
def test_simulator_listens_on_127_0_0_1_only(simulator_factory):
    sim = simulator_factory(size=100)
    assert listening(sim.port) == ["0100007F"]          # not 00000000, not in tcp6 as ::
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.2", sim.port), timeout=2).close()
    for host in ("0.0.0.0", "::", "", "localhost", "127.0.0.2", "192.0.2.1"):
        with pytest.raises(ValueError, match="loopback only"):
            SimulatorConfig(host=host)


def test_login_listener_binds_127_0_0_1_only():
    listener = login.open_listener("127.0.0.1", 0, "/callback")
    try:
        host, port = listener.server_address[:2]
        assert host == "127.0.0.1"
        assert listening(port) == ["0100007F"]
    finally:
        listener.server_close()
    for uri in ("http://0.0.0.0:8888/callback", "http://[::]:8888/callback",
                "http://192.0.2.1:8888/callback"):
        with pytest.raises(login.AuthError, match=r"127\.0\.0\.1:PORT"):
            login.check_redirect_uri(uri)


def test_simulator_command_refuses_a_wildcard_host():
    # "::" and the rest are refused by the same SimulatorConfig check (tested above).
    result = subprocess.run([sys.executable, "-m", "scrapy", "simulator", "--size", "100",
                             "--host", "0.0.0.0"], cwd=REPO, capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "loopback only" in result.stderr and "serving" not in result.stdout
