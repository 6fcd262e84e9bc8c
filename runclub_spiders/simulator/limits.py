"""Rate windows, quota buckets (locked-day and rolling-window models), seeded faults and the
request log.

Clocks: the quota models are given ``runclub_spiders.clock.now()`` by the server (shifted by
``RUNCLUB_CLOCK_OFFSET`` / ``Simulator.advance_clock``), as is the request log's ``t``; the
short rate windows (``RateWindow``) are given the wall clock.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

# User-Agents a client library sends when its user set none: Cloudflare (ReccoBeats),
# Wikimedia's User-Agent policy and MusicBrainz refuse them when the simulator's knob says so.
LIBRARY_AGENTS = ("python-requests/", "python-urllib", "scrapy/", "java/", "curl/",
                  "aiohttp/", "go-http-client/", "okhttp/", "wget/")


def default_agent(agent: str) -> bool:
    """No User-Agent at all, or a library's default one."""
    agent = agent.strip().lower()
    return not agent or agent.startswith(LIBRARY_AGENTS)


@dataclass(slots=True)
class LoggedRequest:
    t: float
    service: str          # spotify | accounts | reccobeats | wikidata | musicbrainz
    method: str
    path: str
    query: str
    status: int
    bucket: str
    fault: str            # "" or what was injected
    retry_after: str = ""  # the Retry-After header sent, if any
    hostile: tuple[str, ...] = ()  # hostile_rate: the corruptions served, one per item or page

    def as_dict(self) -> dict[str, Any]:
        return {"t": self.t, "service": self.service, "method": self.method, "path": self.path,
                "query": self.query, "status": self.status, "bucket": self.bucket,
                "fault": self.fault, "retry_after": self.retry_after,
                "hostile": list(self.hostile)}


class RequestLog:
    """Every request the simulator answered (or dropped), readable from any thread."""

    def __init__(self, path: str | None = None) -> None:
        self._entries: list[LoggedRequest] = []
        self._lock = threading.Lock()
        # Kept open for the server's lifetime and closed in close(): one append per request.
        self._file = Path(path).open("ab") if path else None  # noqa: SIM115

    def add(self, entry: LoggedRequest) -> None:
        with self._lock:
            self._entries.append(entry)
            if self._file:
                self._file.write(orjson.dumps(entry.as_dict()) + b"\n")
                self._file.flush()

    def entries(self, since: int = 0) -> list[LoggedRequest]:
        with self._lock:
            return self._entries[since:]

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def close(self) -> None:
        if self._file:
            self._file.close()


class RateWindow:
    """Spotify's rolling-window limit: at most ``limit`` accepted requests per ``window`` s."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit, self.window = limit, window
        self._times: deque[float] = deque()

    def admit(self, now: float) -> bool:
        if self.limit <= 0:
            return True
        while self._times and self._times[0] <= now - self.window:
            self._times.popleft()
        if len(self._times) >= self.limit:
            return False
        self._times.append(now)
        return True


class ClientWindows:
    """One ``RateWindow`` per client, as Wikidata and MusicBrainz count: the client is the
    User-Agent (on loopback every caller shares the IP). ``admit`` returns 0 when a request
    may proceed, else the whole seconds (at least 1) until the window admits again."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit, self.window = limit, window
        self._windows: dict[str, RateWindow] = {}
        self._lock = threading.Lock()

    def admit(self, client: str, now: float) -> int:
        if self.limit <= 0:
            return 0
        with self._lock:
            window = self._windows.setdefault(client, RateWindow(self.limit, self.window))
            if window.admit(now):
                return 0
            return max(1, math.ceil(window._times[0] + self.window - now))


class QuotaBuckets:
    """Per-bucket daily budgets; an exhausted bucket is locked for ``lock_seconds``.

    The lock stands in for Spotify's "day": when it expires the bucket's count starts again.
    """

    def __init__(self, budgets: dict[str, int], lock_seconds: int) -> None:
        self.budgets, self.lock_seconds = dict(budgets), lock_seconds
        self.used: dict[str, int] = {}
        self.locked_until: dict[str, float] = {}

    def check(self, bucket: str, now: float) -> float:
        """Count one request; return 0 when it may proceed, else the seconds left locked."""
        if bucket not in self.budgets:
            return 0.0
        until = self.locked_until.get(bucket, 0.0)
        if until > now:
            return until - now
        if until:
            del self.locked_until[bucket]
            self.used[bucket] = 0
        if self.used.get(bucket, 0) >= self.budgets[bucket]:
            self.locked_until[bucket] = now + self.lock_seconds
            return float(self.lock_seconds)
        self.used[bucket] = self.used.get(bucket, 0) + 1
        return 0.0


class RollingQuota:
    """Spotify's Development Mode quota as reported in August-September 2026: each bucket
    admits a call only if fewer than its size were admitted in the last ``window`` seconds.

    A refused call is not counted. The refusal's wait is the time until the oldest admitted
    call leaves the window (whole seconds, rounded up, at least 1), i.e. until the bucket
    admits again.
    """

    def __init__(self, sizes: dict[str, int], window: float) -> None:
        self.sizes, self.window = dict(sizes), float(window)
        self.admitted: dict[str, deque[float]] = {b: deque() for b in self.sizes}

    def check(self, bucket: str, now: float) -> float:
        """Count one request; return 0 when it may proceed, else the seconds to wait."""
        size = self.sizes.get(bucket)
        if size is None:
            return 0.0
        times = self.admitted[bucket]
        while times and times[0] <= now - self.window:
            times.popleft()
        if len(times) >= size:
            if not times:                       # a bucket of size 0 never admits
                return float(max(1, math.ceil(self.window)))
            return float(max(1, math.ceil(times[0] + self.window - now)))
        times.append(now)
        return 0.0

    def used(self, bucket: str, now: float) -> int:
        """Calls of ``bucket`` admitted in the window ending at ``now``."""
        times = self.admitted.get(bucket, ())
        return sum(1 for t in times if t > now - self.window)


class FaultPlan:
    """Reproducible fault draws: the n-th attempt at a URL always gets the same outcome."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._attempts: dict[str, int] = {}

    def attempt(self, key: str) -> int:
        n = self._attempts.get(key, 0)
        self._attempts[key] = n + 1
        return n

    def draw(self, kind: str, key: str, attempt: int) -> float:
        digest = hashlib.blake2b(f"{self.seed}|{kind}|{key}|{attempt}".encode(),
                                 digest_size=8).digest()
        return int.from_bytes(digest, "big") / 2**64

    def hit(self, kind: str, key: str, attempt: int, rate: float) -> bool:
        return rate > 0 and self.draw(kind, key, attempt) < rate


def now() -> float:
    return time.time()
