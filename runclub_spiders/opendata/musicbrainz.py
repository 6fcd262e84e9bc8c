"""MusicBrainz: the original release year of recordings by ISRC, read without side effects.

One search call asks a batch of ISRCs (``/ws/2/recording?query=isrc:A OR isrc:B ...``,
``limit=100``, paged with ``offset`` while ``count`` says more: the next offset counts from
the offset asked, never the body's, and a batch reads at most ``pages_for`` the first page's
``count``, so a server that repeats a page or grows its count cannot keep a batch going).
Hits are ranked by score, not in the order asked, and one ISRC can sit on several
recordings, so a hit is joined back to the batch through its own ``isrcs`` list only: a
recording that does not carry an ISRC asked is ignored, whatever the search matched it on.

**The year.** A recording's ``first-release-date`` is the earliest release of *any* kind
that contains it: compilations, promos, bootlegs and "Various Artists" samplers included
(``enrichment-sources.md`` §1.1). So the year is computed from the recording's releases
instead: the earliest date among releases that are

* ``Official`` (not Promotion, Bootleg, Pseudo-Release, Withdrawn, Cancelled),
* in a release group that is not typed ``Compilation``,
* not credited to "Various Artists" (many hit samplers are not typed Compilation),

with a year of 1900 or later. ``first-release-date`` alone is **not** used when no release
qualifies: it then comes from exactly the releases the rule distrusts. A promo or bootleg can
predate the real release (a December promo of a January album flips a decade), and a
compilation-only answer can only say "no earlier than that compilation", which the Spotify
side's own rule knows as well. Such an ISRC is ``found`` with no year, and the Spotify year
stands.

Per ISRC asked: ``found`` (a recording carries it; the earliest trusted date over all its
recordings, which may be None) or ``none`` (no recording carries it).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

ISRC = re.compile(r"^[A-Z]{2}[A-Z0-9]{3}\d{7}$")
DATE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")
PAGE_LIMIT = 100                 # the search API's largest page
MAX_BATCH = 100                  # ISRCs per query; 30-50 is the safe start (§1.3)
EARLIEST_YEAR = 1900
VARIOUS_ARTISTS = "89ad4ac3-39f7-470e-963a-56509c546377"   # MusicBrainz's special artist


@dataclass(frozen=True, slots=True)
class IsrcAnswer:
    state: str                          # found | none
    date: str | None = None             # earliest trusted release, YYYY[-MM[-DD]]
    recording_id: str | None = None     # the recording that date belongs to (else the first)

    @property
    def year(self) -> int | None:
        return int(self.date[:4]) if self.date else None


@dataclass(frozen=True, slots=True)
class Page:
    count: int                          # hits the query has in all
    offset: int                         # the offset asked (the body's is not trusted)
    recordings: list[dict[str, Any]]

    @property
    def next_offset(self) -> int | None:
        """Where the next page starts, None when this was the last."""
        following = self.offset + len(self.recordings)
        return following if self.recordings and following < self.count else None


def askable(isrcs: Iterable[str]) -> list[str]:
    """Well-formed ISRCs, upper-cased and deduplicated, in the order given."""
    clean = (i.strip().upper() for i in isrcs if isinstance(i, str))
    return [i for i in dict.fromkeys(clean) if ISRC.match(i)]


def build_query(isrcs: Iterable[str]) -> str:
    isrcs = askable(isrcs)
    if not isrcs:
        raise ValueError("a MusicBrainz query needs at least one well-formed ISRC")
    if len(isrcs) > MAX_BATCH:
        raise ValueError(f"at most {MAX_BATCH} ISRCs per MusicBrainz query, not {len(isrcs)}")
    return " OR ".join(f"isrc:{i}" for i in isrcs)


def search_url(base: str, isrcs: Iterable[str], offset: int = 0) -> str:
    """``<base>/ws/2/recording?query=...&fmt=json&limit=100[&offset=N]``; ``base`` is the
    service root (``https://musicbrainz.org``)."""
    params = {"query": build_query(isrcs), "fmt": "json", "limit": PAGE_LIMIT}
    if offset:
        params["offset"] = offset
    return f"{base.rstrip('/')}/ws/2/recording?{urlencode(params)}"


def _int(value: Any, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def parse_page(body: Any, offset: int = 0) -> Page | str:
    """One page of a recording search asked at ``offset``, or why the body is unusable (a
    transient fault). The body's own ``offset`` is ignored: paging from it could go back."""
    if not isinstance(body, dict) or not isinstance(body.get("recordings"), list):
        return "a body without a 'recordings' list"
    recordings = [r for r in body["recordings"] if isinstance(r, dict)]
    return Page(_int(body.get("count"), len(recordings)), offset, recordings)


def pages_for(count: int) -> int:
    """The most pages a search of ``count`` hits takes (at least one)."""
    return max(1, math.ceil(count / PAGE_LIMIT))


def clean_date(value: Any) -> str | None:
    """A release date ``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD`` from 1900 on; else None
    (``""`` and ``????`` dates are common)."""
    match = DATE.match(value.strip()) if isinstance(value, str) else None
    if match is None or int(match.group(1)) < EARLIEST_YEAR:
        return None
    return match.group(0)


def _various_artists(release: dict[str, Any]) -> bool:
    for credit in release.get("artist-credit") or ():
        if not isinstance(credit, dict):
            continue
        artist = credit.get("artist") if isinstance(credit.get("artist"), dict) else {}
        if artist.get("id") == VARIOUS_ARTISTS:
            return True
        for name in (credit.get("name"), artist.get("name")):
            if isinstance(name, str) and name.strip().casefold() == "various artists":
                return True
    return False


def trusted(release: Any) -> bool:
    """Official, not a compilation release group, not credited to Various Artists."""
    if not isinstance(release, dict):
        return False
    status = release.get("status")
    if not isinstance(status, str) or status.casefold() != "official":
        return False
    group = release.get("release-group") if isinstance(release.get("release-group"),
                                                       dict) else {}
    secondary = group.get("secondary-types") or ()
    if any(isinstance(t, str) and t.casefold() == "compilation" for t in secondary):
        return False
    return not _various_artists(release)


def release_dates(release: dict[str, Any]) -> list[str]:
    """The release's own date and its release events' dates, cleaned."""
    dates = [release.get("date")]
    for event in release.get("release-events") or ():
        if isinstance(event, dict):
            dates.append(event.get("date"))
    return [d for d in (clean_date(v) for v in dates) if d]


def earliest(dates: Iterable[str]) -> str | None:
    """The earliest date; of equal years the less precise one sorts first, which only ever
    matters within one year (the year is what counts)."""
    return min(dates, default=None)


def recording_date(recording: dict[str, Any]) -> str | None:
    """The earliest trusted release date of one recording (see the module doc)."""
    return earliest(d for release in recording.get("releases") or ()
                    if trusted(release) for d in release_dates(release))


def recording_isrcs(recording: dict[str, Any]) -> set[str]:
    return set(askable(recording.get("isrcs") or ()))


def read_recordings(recordings: Iterable[dict[str, Any]], isrcs: Iterable[str]
                    ) -> tuple[dict[str, IsrcAnswer], int]:
    """Every ISRC asked with its answer, in the order asked; and how many recordings were
    stray (carrying none of the ISRCs asked)."""
    asked = askable(isrcs)
    wanted = set(asked)
    best: dict[str, tuple[str | None, str | None]] = {}      # isrc -> (date, recording)
    stray = 0
    for recording in recordings:
        carried = recording_isrcs(recording) & wanted
        if not carried:
            stray += 1
            continue
        date = recording_date(recording)
        rid = recording.get("id") if isinstance(recording.get("id"), str) else None
        for isrc in carried:
            known = best.get(isrc)
            if known is None or (date is not None and (known[0] is None or date < known[0])):
                best[isrc] = (date, rid)
    answers = {}
    for isrc in asked:
        if isrc in best:
            date, rid = best[isrc]
            answers[isrc] = IsrcAnswer("found", date, rid)
        else:
            answers[isrc] = IsrcAnswer("none")
    return answers, stray
