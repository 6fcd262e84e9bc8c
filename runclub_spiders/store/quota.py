"""The quota ledger: requests per bucket per UTC day and per hour, parked buckets (so a restart
never calls a locked bucket) and what each ``QUOTA_EXCEEDED`` taught about a bucket's size;
and the run counts the manifest reports."""

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

    def add_quota_hour(self, hour: int, bucket: str, n: int) -> None:
        """Add ``n`` to ``bucket``'s count in ``hour`` (epoch seconds // 3600, quota clock)."""
        updated = self.db.execute("UPDATE quota_hours SET requests = MAX(0, requests + ?) "
                                  "WHERE hour = ? AND bucket = ?", (n, hour, bucket)).rowcount
        if not updated:
            self.db.execute("INSERT INTO quota_hours (hour, bucket, requests) VALUES (?, ?, ?)",
                            (hour, bucket, max(0, n)))

    def quota_window_use(self, now: float, hours: int = 24) -> dict[str, int]:
        """Requests per bucket in Spotify's rolling ~24 h window ending at ``now``.

        Counted by whole hours: the current hour and the 23 before it (``hour > now_hour -
        24``), so it covers the last 23 to 24 hours; requests in the 24th hour back are left
        out, which can only make the use look smaller than Spotify's, by at most an hour's.
        ``hours=quota.BUDGET_WINDOW_HOURS``: the window a ``SPOTIFY_DAILY_BUDGET`` counts,
        which can only make it look larger."""
        hour = int(now // 3600)
        return dict(self.db.execute(
            "SELECT bucket, SUM(requests) FROM quota_hours WHERE hour > ? AND hour <= ? "
            "GROUP BY bucket ORDER BY bucket", (hour - hours, hour)).fetchall())

    def quota_hours_since(self, first_hour: int, bucket: str | None = None
                          ) -> dict[str, dict[int, int]]:
        """Per bucket (or only ``bucket``), its requests per hour from ``first_hour`` on
        (epoch seconds // 3600)."""
        result: dict[str, dict[int, int]] = {}
        for name, hour, n in self.db.execute(
                "SELECT bucket, hour, requests FROM quota_hours WHERE hour >= ? "
                "AND (? IS NULL OR bucket = ?) ORDER BY bucket, hour",
                (first_hour, bucket, bucket)):
            result.setdefault(name, {})[hour] = n
        return result

    def quota_requests_all_days(self) -> dict[str, int]:
        """Requests per bucket over every UTC day the ledger holds."""
        return dict(self.db.execute("SELECT bucket, SUM(requests) FROM quota_days "
                                    "GROUP BY bucket ORDER BY bucket").fetchall())

    def add_quota_learned(self, bucket: str, at: float, window_requests: int,
                          retry_after: float | None) -> None:
        """What a ``QUOTA_EXCEEDED`` taught: ``window_requests`` served in the rolling window
        before it, and Spotify's ``Retry-After`` (seconds; ``None`` without the header)."""
        self.db.execute("INSERT INTO quota_learned (bucket, at, window_requests, retry_after) "
                        "VALUES (?, ?, ?, ?) ON CONFLICT (bucket, at) DO UPDATE SET "
                        "window_requests = excluded.window_requests, "
                        "retry_after = excluded.retry_after",
                        (bucket, at, window_requests, retry_after))

    def learned_quota(self) -> dict[str, tuple[int, float | None, float]]:
        """bucket -> (size, retry_after, at) from the latest ``quota_learned`` row per bucket."""
        rows = self.db.execute(
            "SELECT bucket, window_requests, retry_after, at FROM quota_learned AS q "
            "WHERE at = (SELECT MAX(at) FROM quota_learned WHERE bucket = q.bucket) "
            "ORDER BY bucket").fetchall()
        return {row[0]: (row[1], row[2], row[3]) for row in rows}

    def discovered_candidates(self) -> int:
        """Candidates counted by the planner (``planning_cells`` set) that discovery's own
        requests found: the owner's playlists (``first_source = 'playlist'``) left out."""
        return self.db.execute("SELECT COUNT(*) FROM tracks WHERE planning_cells IS NOT NULL "
                               "AND first_source != 'playlist'").fetchone()[0]

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
                     parks: dict[str, tuple[float, str]],
                     hours: dict[int, dict[str, int]] | None = None) -> None:
        """Add a ledger from elsewhere (the JSON file of earlier versions), in one transaction:
        counts per UTC day, parks, and counts per hour (epoch seconds // 3600)."""
        with self.transaction():
            for day, counts in days.items():
                for bucket, n in counts.items():
                    self.add_quota_requests(day, bucket, n)
            for hour, counts in (hours or {}).items():
                for bucket, n in counts.items():
                    self.add_quota_hour(hour, bucket, n)
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
