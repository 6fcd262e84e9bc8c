"""UTC day helpers, a budget's window, and what a 429 says: a short wait, or a quota park
until when.

Spotify's Development Mode quota is per developer account, per endpoint bucket, with no
published numbers and lockouts of up to 24 hours that reportedly grow if a client keeps
calling (docs/simulator.md, "Rate limits and quotas"). A ``429`` is either a short rate-limit
answer (``Retry-After`` of a few seconds) or a quota lockout (``reason: QUOTA_EXCEEDED``, a
``Retry-After`` of hours, or none). :func:`quota_park` tells them apart; the pacing middleware
(short 429s) and the quota middleware (parks) both ask it, so they never disagree about a 429.

The per-day and per-hour counts and the parks themselves live in the store
(``Store.quota_*``).
"""

from __future__ import annotations

import gzip
import io
import json
import zlib
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from scrapy.http import Response

#: An error body is a few hundred bytes; a compressed one is read up to this size only.
MAX_ERROR_BODY = 64 * 1024


def utc_day(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d")


def utc_iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


#: Hours a ``SPOTIFY_DAILY_BUDGET`` looks back over. Spotify counts each bucket over a rolling
#: ~24 h window; the ledger counts requests by whole hours (``quota_hours``), and every request
#: of an hour has left Spotify's window 25 hours after that hour began.
BUDGET_WINDOW_HOURS = 25


def budget_window(hours: dict[int, int], now: float) -> dict[int, int]:
    """Of a bucket's requests per hour (epoch seconds // 3600), those of the hours a budget
    counts at ``now``: the current one and the 24 before it (as
    ``Store.quota_window_use(now, hours=BUDGET_WINDOW_HOURS)``; none later, should the
    quota clock have gone back)."""
    last = int(now // 3600)
    first = last - BUDGET_WINDOW_HOURS + 1
    return {hour: n for hour, n in hours.items() if first <= hour <= last and n > 0}


def budget_release(hours: dict[int, int], budget: int, now: float) -> float:
    """When a bucket whose window (``budget_window``) holds ``budget`` requests or more may
    send again: once enough of its oldest hours have left the window that the use is below
    the budget. A budget of 0 never frees: the bucket waits a day, then is checked again."""
    window = sorted(budget_window(hours, now).items())
    use = sum(n for _, n in window)
    for hour, n in window:
        use -= n
        if use < budget:
            return float((hour + BUDGET_WINDOW_HOURS) * 3600)
    return now + 86_400


def parse_retry_after(value: bytes | str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date."""
    if value is None:
        return None
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    text = text.strip()
    if not text:
        return None
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(text).timestamp() - now)
    except (TypeError, ValueError, IndexError):
        return None


def _body_text(response: Response) -> bytes:
    """The body, decompressed if it still is: the ``response_downloaded`` signal sees the
    response before ``HttpCompressionMiddleware`` has decoded it, ``process_response`` after."""
    body = response.body
    encoding = (response.headers.get("Content-Encoding") or b"").strip().lower()
    try:
        if encoding in (b"gzip", b"x-gzip") and body[:2] == b"\x1f\x8b":
            with gzip.GzipFile(fileobj=io.BytesIO(body)) as f:
                return f.read(MAX_ERROR_BODY)
        if encoding == b"deflate" and body and body[:1] not in (b"{", b"["):
            try:
                return zlib.decompressobj().decompress(body, MAX_ERROR_BODY)
            except zlib.error:
                return zlib.decompressobj(-zlib.MAX_WBITS).decompress(body, MAX_ERROR_BODY)
    except (OSError, EOFError, zlib.error):
        return b""
    return body


def quota_reason(response: Response) -> str | None:
    """``error.reason`` of a Spotify error body (``QUOTA_EXCEEDED``), if it has one."""
    try:
        body = json.loads(_body_text(response))
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    reason = error.get("reason") if isinstance(error, dict) else None
    return reason if isinstance(reason, str) else None


#: The ``error.reason`` of a spent quota bucket (a park's reason then, too).
QUOTA_EXCEEDED = "QUOTA_EXCEEDED"


class Park(NamedTuple):
    until: float        # epoch seconds
    reason: str


def quota_park(response: Response, bucket: str | None, *, now: float, max_wait: float,
               default_park: float) -> Park | None:
    """The quota park a ``429`` starts, or ``None`` when it is a short rate-limit answer.

    A park: the request has a quota ``bucket``, and the answer says ``QUOTA_EXCEEDED`` or asks
    to wait longer than ``max_wait`` (``RATE_LIMIT_MAX_WAIT``). It lasts ``Retry-After``
    seconds, or ``default_park`` (``QUOTA_PARK_DEFAULT``) without the header.
    """
    if response.status != 429 or not bucket:
        return None
    wait = parse_retry_after(response.headers.get("Retry-After"), now)
    reason = quota_reason(response)
    if reason != QUOTA_EXCEEDED and (wait is None or wait <= max_wait):
        return None
    return Park(now + (wait if wait is not None else default_park),
                reason or f"Retry-After {wait:.0f} s")
