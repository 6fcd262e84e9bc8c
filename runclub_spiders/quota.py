"""Per-bucket request counts per UTC day and quota parks, kept across runs.

Spotify's Development Mode quota is per developer account, per endpoint bucket, with no
published numbers and lockouts of up to 24 hours that reportedly grow if a client keeps
calling. So the crawler remembers, in a small JSON file outside JOBDIR:

* how many requests each bucket has used on each UTC day (the manifest reports them, and an
  optional daily budget parks a bucket before Spotify does), and
* until when each bucket is parked, so a restart never calls a locked bucket again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from runclub_spiders.utils.files import write_atomic

KEEP_DAYS = 14
SAVE_EVERY = 25        # counts are flushed every N requests (and on park and close)


class QuotaStateError(Exception):
    """The state file is unreadable; the message names it and how to fix it."""


def utc_day(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d")


def utc_iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def next_utc_midnight(epoch: float) -> float:
    day = datetime.fromtimestamp(epoch, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return (day + timedelta(days=1)).timestamp()


class QuotaLedger:
    def __init__(self, path: str | Path, clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        self.clock = clock
        self.days: dict[str, dict[str, int]] = {}
        self.parks: dict[str, dict[str, Any]] = {}
        self._unsaved = 0
        self._load()

    def _load(self) -> None:
        if not self.path.exists():
            return
        try:
            state = json.loads(self.path.read_text(encoding="utf-8"))
            self.days = {str(d): {str(b): int(n) for b, n in counts.items()}
                         for d, counts in state.get("days", {}).items()}
            self.parks = {str(b): {"until": float(p["until"]), "reason": str(p["reason"])}
                          for b, p in state.get("parks", {}).items()}
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            raise QuotaStateError(f"{self.path} is not a valid quota state file; move it aside "
                                  f"(it only holds request counts and parks) and run again"
                                  ) from None

    def save(self) -> None:
        keep = sorted(self.days)[-KEEP_DAYS:]
        state = {"days": {d: self.days[d] for d in keep}, "parks": self.parks}
        write_atomic(self.path, json.dumps(state, indent=1, sort_keys=True).encode())
        self._unsaved = 0

    # ---------------------------------------------------------------- counts
    def count(self, bucket: str, n: int = 1) -> int:
        """Add ``n`` requests (``-1`` takes back one that was counted but never sent)."""
        day = self.days.setdefault(utc_day(self.clock()), {})
        day[bucket] = max(0, day.get(bucket, 0) + n)
        self._unsaved += 1
        if self._unsaved >= SAVE_EVERY:
            self.save()
        return day[bucket]

    def used_today(self, bucket: str) -> int:
        return self.days.get(utc_day(self.clock()), {}).get(bucket, 0)

    def today(self) -> dict[str, int]:
        return dict(self.days.get(utc_day(self.clock()), {}))

    # ---------------------------------------------------------------- parks
    def park(self, bucket: str, until: float, reason: str) -> None:
        current = self.parks.get(bucket, {}).get("until", 0.0)
        self.parks[bucket] = {"until": max(until, current), "reason": reason}
        self.save()

    def parked_until(self, bucket: str) -> float:
        park = self.parks.get(bucket)
        if park is None:
            return 0.0
        if park["until"] <= self.clock():
            del self.parks[bucket]
            self.save()
            return 0.0
        return park["until"]
