"""Release year and decade of a recording, across every album it appears on.

Spotify dates an album, not a recording: the same ISRC sits on the original album, on a
remaster twenty years later, on a deluxe edition and on "Greatest Hits". The app filters by
decade, so a 1977 song found on a 2011 remaster must still be "70s". The rules, in order:

1. **regular release**: the earliest year among the ISRC's albums that are regular releases
   (``album`` or ``single``, and no reissue words in the album or track title);
2. **anniversary edition**: "(25th Anniversary Edition)" of 2002 says 1977;
3. **ISRC year**: the two digits after the registrant code give the year the recording was
   registered, which is the original release for most catalogue. Used only when no regular
   release is known, and only if it is not later than the album (ISRCs of old recordings
   are sometimes registered at reissue time, which can only make it later, never earlier);
4. **reissue or compilation**: the earliest album year we have, as a last resort.

Then **MusicBrainz** (``opendata/musicbrainz.py``): the earliest official, non-compilation,
non-"Various Artists" release of the ISRC there. The year is the earlier of the Spotify
rule's and MusicBrainz's: Spotify may only hold a remaster or a sampler of a recording whose
original MusicBrainz knows, and MusicBrainz's own dates run late as often as not (a remaster
gets its own ISRC), so a later MusicBrainz year never overrides Spotify's.

Every result says which rule decided it (``source``: one of the four, or ``musicbrainz``);
the rows' ``_extra.year_source`` says ``spotify`` or ``musicbrainz`` and ``_extra.year_rule``
the rule, and the manifest counts the rules (``classification.yearSources``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

REISSUE_WORDS = re.compile(
    r"\b(remaster(?:ed)?|deluxe|anniversary|greatest hits|best of|very best|the essential|"
    r"anthology|collection|expanded edition|reissue|gold)\b", re.IGNORECASE)
# In a track title only a remaster mark counts: "Gold" or "Best of You" are songs, not reissues.
TRACK_REISSUE_WORDS = re.compile(r"\bremaster(?:ed)?\b", re.IGNORECASE)
ANNIVERSARY = re.compile(r"\b(\d{1,3})(?:st|nd|rd|th) anniversary\b", re.IGNORECASE)
ISRC = re.compile(r"^[A-Z]{2}[A-Z0-9]{3}(\d{2})\d{5}$")


def release_year(release_date: str | None) -> int | None:
    """The year of a Spotify ``release_date`` at any precision; ``0000`` or junk gives None."""
    if not release_date or len(release_date) < 4 or not release_date[:4].isdigit():
        return None
    year = int(release_date[:4])
    return year if year > 0 else None


def decade_label(year: int | None) -> str | None:
    """1970-79 "70s" ... 2010-19 "10s", 2020 onwards "20s", anything else None."""
    if year is None or year < 1970:
        return None
    if year >= 2020:
        return "20s"
    return f"{year % 100 // 10 * 10:02d}s"


@dataclass(frozen=True, slots=True)
class AlbumAppearance:
    """One album a recording appears on (a stored track row sharing the ISRC)."""

    release_date: str | None
    album_type: str | None
    album_name: str
    track_name: str

    @property
    def year(self) -> int | None:
        return release_year(self.release_date)

    @property
    def regular(self) -> bool:
        if self.album_type not in ("album", "single"):
            return False            # compilation, appears_on, unknown
        return not (REISSUE_WORDS.search(self.album_name)
                    or TRACK_REISSUE_WORDS.search(self.track_name))


@dataclass(frozen=True, slots=True)
class YearVerdict:
    year: int | None
    source: str                 # regular_release | anniversary | isrc_year | reissue | none
                                # | musicbrainz
    # Of ``year``, worked out once: the balancer asks for it about ten times per candidate.
    decade: str | None = field(init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "decade", decade_label(self.year))


EARLIEST_ISRC_YEAR = 1950     # back-dated codes exist (GBAYE63... is 1963); 1915 is a misread


def isrc_year(isrc: str | None, not_after: int | None) -> int | None:
    """The registration year encoded in an ISRC, in the century that makes it <= not_after;
    None when neither reading is plausible."""
    if not isrc or not_after is None:
        return None
    match = ISRC.match(isrc.upper())
    if match is None:
        return None
    yy = int(match.group(1))
    year = 2000 + yy if 2000 + yy <= not_after else 1900 + yy
    return year if EARLIEST_ISRC_YEAR <= year <= not_after else None


MUSICBRAINZ = "musicbrainz"


def recording_year(appearances: Iterable[AlbumAppearance], isrc: str | None,
                   musicbrainz: int | None = None) -> YearVerdict:
    """The first release year of a recording: the earlier of what the albums it was seen on
    say (``spotify_year``) and MusicBrainz's year for its ISRC, when there is one."""
    verdict = spotify_year(appearances, isrc)
    if musicbrainz is not None and musicbrainz >= EARLIEST_MUSICBRAINZ_YEAR \
            and (verdict.year is None or musicbrainz < verdict.year):
        return YearVerdict(musicbrainz, MUSICBRAINZ)
    return verdict


EARLIEST_MUSICBRAINZ_YEAR = 1900


def year_source(verdict: YearVerdict) -> str:
    """``musicbrainz`` or ``spotify``: whose year the row carries (``_extra.year_source``)."""
    return MUSICBRAINZ if verdict.source == MUSICBRAINZ else "spotify"


def spotify_year(appearances: Iterable[AlbumAppearance], isrc: str | None) -> YearVerdict:
    """The first release year of a recording from all the albums it was seen on."""
    seen = [a for a in appearances if a.year is not None]
    if not seen:
        return YearVerdict(None, "none")
    regular = [a.year for a in seen if a.regular]
    if regular:
        return YearVerdict(min(regular), "regular_release")
    earliest = min(a.year for a in seen)
    anniversaries = []
    for a in seen:
        match = ANNIVERSARY.search(a.album_name)
        if match and a.year is not None:
            anniversaries.append(a.year - int(match.group(1)))
    if anniversaries and min(anniversaries) > 0:
        return YearVerdict(min(*anniversaries, earliest), "anniversary")
    registered = isrc_year(isrc, earliest)
    if registered is not None:
        return YearVerdict(registered, "isrc_year")
    return YearVerdict(earliest, "reissue")
