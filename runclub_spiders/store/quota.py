"""The quota ledger: requests per bucket per UTC day, and parked buckets, so a restart never
calls a locked bucket; and the run counts the manifest reports."""

from __future__ import annotations

import json
from typing import Any

from runclub_spiders.store.base import StoreBase


class QuotaLedger(StoreBase):
    # ---------------------------------------------------------------- meta
    def get_meta(self, key: str, default: Any = None) -> Any:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    def set_meta(self, key: str, value: Any) -> None:
        self.db.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO "
                        "UPDATE SET value = excluded.value", (key, json.dumps(value)))

    def add_run_counts(self, day: str, requests: dict[str, int],
                       totals: dict[str, int]) -> None:
        """At the end of a run, for the manifest: per-bucket requests per UTC day, and
        other counters (``run_totals``), each accumulated across runs."""
        with self.transaction():
            self.set_meta("requests_by_day", add_day_counts(
                self.get_meta("requests_by_day", {}), day, requests))
            previous = self.get_meta("run_totals", {})
            self.set_meta("run_totals", {k: previous.get(k, 0) + totals.get(k, 0)
                                         for k in sorted(previous.keys() | totals.keys())})

    # ---------------------------------------------------------------- quota ledger
    def quota_requests(self, day: str) -> dict[str, int]:
        """Requests per bucket on ``day`` (UTC, ``YYYY-MM-DD``)."""
        return dict(self.db.execute("SELECT bucket, requests FROM quota_days WHERE day = ? "
                                    "ORDER BY bucket", (day,)).fetchall())

    def add_quota_requests(self, day: str, bucket: str, n: int) -> None:
        """Add ``n`` (``-1``: one counted but never sent) to ``bucket``'s count on ``day``."""
        updated = self.db.execute("UPDATE quota_days SET requests = MAX(0, requests + ?) "
                                  "WHERE day = ? AND bucket = ?", (n, day, bucket)).rowcount
        if not updated:
            self.db.execute("INSERT INTO quota_days (day, bucket, requests) VALUES (?, ?, ?)",
                            (day, bucket, max(0, n)))

    def quota_parks(self) -> dict[str, tuple[float, str]]:
        """Every recorded park: bucket -> (until, reason)."""
        return {row[0]: (row[1], row[2]) for row in
                self.db.execute("SELECT bucket, until, reason FROM quota_parks ORDER BY bucket")}

    def set_quota_park(self, bucket: str, until: float, reason: str) -> None:
        self.db.execute("INSERT INTO quota_parks (bucket, until, reason) VALUES (?, ?, ?) "
                        "ON CONFLICT(bucket) DO UPDATE SET until = excluded.until, "
                        "reason = excluded.reason", (bucket, until, reason))

    def clear_quota_park(self, bucket: str) -> None:
        self.db.execute("DELETE FROM quota_parks WHERE bucket = ?", (bucket,))

    def has_quota_rows(self) -> bool:
        return self.db.execute("SELECT EXISTS (SELECT 1 FROM quota_days) OR "
                               "EXISTS (SELECT 1 FROM quota_parks)").fetchone()[0] == 1

    def import_quota(self, days: dict[str, dict[str, int]],
                     parks: dict[str, tuple[float, str]]) -> None:
        """Add a ledger from elsewhere (the JSON file of earlier versions), in one transaction."""
        with self.transaction():
            for day, counts in days.items():
                for bucket, n in counts.items():
                    self.add_quota_requests(day, bucket, n)
            for bucket, (until, reason) in parks.items():
                self.set_quota_park(bucket, until, reason)


def add_day_counts(days: dict[str, dict[str, int]], day: str,
                   counts: dict[str, int]) -> dict[str, dict[str, int]]:
    """``days`` (day -> bucket -> requests) with ``counts`` added to ``day``; a new dict."""
    merged = {d: dict(c) for d, c in days.items()}
    if counts:
        today = merged.setdefault(day, {})
        for bucket, n in counts.items():
            today[bucket] = today.get(bucket, 0) + n
    return merged
