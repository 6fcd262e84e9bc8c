"""Cadence helpers for pacing: a tempo bucket and the running cadence a track suits.

Runners take 150-190 steps per minute. A track suits a cadence when its beat lands on every
step (1:1, tempo 170 for 170 spm) or on every other step ("half time": tempo 85 for 170 spm).
"""

from __future__ import annotations

from dataclasses import dataclass

CADENCE_MIN, CADENCE_MAX = 150, 190
BUCKET_BPM = 5


@dataclass(frozen=True, slots=True)
class Cadence:
    spm: int            # steps per minute, 150-190
    match: str          # "1:1" or "half_time"
    off_bpm: float      # how far the tempo (scaled) is from that cadence


def tempo_bucket(tempo: float | None) -> int | None:
    """The tempo floored to a 5 BPM step (172.4 -> 170)."""
    if tempo is None or tempo <= 0:
        return None
    return int(tempo // BUCKET_BPM * BUCKET_BPM)


def best_cadence(tempo: float | None) -> Cadence | None:
    """The nearest running cadence at 1:1 or half time; 1:1 wins a tie."""
    if tempo is None or tempo <= 0:
        return None
    best: Cadence | None = None
    for match, steps in (("1:1", tempo), ("half_time", tempo * 2)):
        spm = min(CADENCE_MAX, max(CADENCE_MIN, round(steps)))
        off = round(abs(float(steps) - spm), 1)
        if best is None or off < best.off_bpm:
            best = Cadence(spm, match, off)
    return best
