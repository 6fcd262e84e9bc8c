"""The clock every quota decision reads: wall time, optionally shifted for dry runs of many days.

Spotify counts quota over a rolling ~24 h window per endpoint bucket, so what a crawl plan
costs is measured in days. ``RUNCLUB_CLOCK_OFFSET`` (seconds, from the environment) shifts
this clock: ``bench/days.py`` runs one crawl per virtual day against a simulator shifted the
same way (``Simulator.advance_clock``), so a week of quota windows takes minutes. Only quota
bookkeeping reads it (parks, the per-day and per-hour ledgers, the finish projection);
timestamps of tracks and exports keep the wall clock. The preflight refuses the offset unless
the API base URL is the simulator's (loopback): against the real Spotify it would end parks
early and call a locked bucket.
"""

from __future__ import annotations

import os
import time

OFFSET_ENV = "RUNCLUB_CLOCK_OFFSET"


def _read_offset() -> float:
    raw = os.environ.get(OFFSET_ENV, "").strip()
    if not raw:
        return 0.0
    try:
        return float(raw)
    except ValueError:
        raise SystemExit(f"{OFFSET_ENV}={raw!r} is not a number of seconds; unset it "
                         "(it is for dry runs on the simulator only)") from None


_state = {"offset": _read_offset()}


def offset() -> float:
    """Seconds this clock runs ahead of the wall clock (0 outside dry runs)."""
    return _state["offset"]


def set_offset(seconds: float) -> None:
    """Shift the clock (in-process dry runs and tests; a subprocess reads the environment)."""
    _state["offset"] = float(seconds)


def now() -> float:
    """Epoch seconds as quota bookkeeping sees them."""
    return time.time() + _state["offset"]
