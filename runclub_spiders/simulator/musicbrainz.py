"""MusicBrainz's recording search (``/ws/2/recording?query=isrc:A OR isrc:B``) over the catalog.

A recording is an ISRC of the catalog: its releases are the Spotify albums that carry it (the
original album or single, remasters and deluxe editions in the original's release group,
greatest-hits compilations, Various Artists compilations). ``musicbrainz_coverage`` of ISRCs
are known (one draw per ISRC from the catalog seed, so raising it only adds recordings).

The quirks a client has to survive, each drawn per ISRC:

* ``musicbrainz_quirk_rate`` of recordings carry a wrong ``first-release-date``: half of them
  a late one (a later reissue's date, or years after), the other half an early one taken
  from a misdated Various Artists compilation listed among the releases. The regular
  releases (not typed Compilation, not credited to Various Artists) still give the truth.
* Various Artists compilations are typed ``Compilation`` only two times in three: the credit,
  not the type, is what marks the rest (as public reports found in the real data).
* A few ISRCs belong to a second recording (a remaster entered separately) whose releases are
  the reissues only: the year is the earliest over every recording of the ISRC.

``MusicBrainz.recording``/``truth`` are the ground truth; the crawler never reads them.
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from runclub_spiders import clock
from runclub_spiders.simulator.catalog import Album, Artist, Catalog, Track
from runclub_spiders.simulator.config import SimulatorConfig
from runclub_spiders.simulator.limits import default_agent
from runclub_spiders.simulator.wikidata import unit

NAMESPACE = uuid.UUID("0b7c1f5e-8d0a-4c43-9d8e-3f6d2b1a9c55")
VARIOUS_ARTISTS = {"id": "89ad4ac3-39f7-470e-963a-56509c546377", "name": "Various Artists",
                   "sort-name": "Various Artists", "disambiguation": "add compilations to this "
                                                                     "artist"}
OFFICIAL = "4e304316-386d-3409-af2e-78857eec5cfe"
PRIMARY_TYPE_IDS = {"Album": "f529b476-6e62-324f-b0aa-1f3e33d313fc",
                    "Single": "d6038452-8ee0-3f68-affc-2de9a1ede0b9"}
COMPILATION_ID = "dd2a21e1-0c00-3729-a7a0-de60b84eb5d1"
WORLDWIDE = {"id": "525d4e18-3d00-31b9-a58b-a146a916de8f", "name": "[Worldwide]",
             "sort-name": "[Worldwide]", "iso-3166-1-codes": ["XW"]}
HELP = "For usage, please see: https://musicbrainz.org/development/mmd"
RATE_TEXT = ("Your requests are exceeding the allowable rate limit. Please see "
             "https://musicbrainz.org/doc/XML_Web_Service/Rate_Limiting for more information.")
AGENT_TEXT = ("Your requests are being refused because they carry no meaningful User-Agent. "
              "Please see https://musicbrainz.org/doc/MusicBrainz_API/Rate_Limiting and send "
              "'Application/version ( contact-url-or-email )'.")
DOWN_HTML = ("<html>\r\n<head><title>503 Service Temporarily Unavailable</title></head>\r\n"
             "<body>\r\n<center><h1>503 Service Temporarily Unavailable</h1></center>\r\n"
             "<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n")
ISRC = re.compile(r"^[A-Z]{2}[A-Z0-9]{3}\d{7}$")
CLAUSE = re.compile(r'(?i)\bisrc:(?:\(([^)]*)\)|"([^"]*)"|([^\s()"]+))')
DUPLICATE_RATE = 0.03
UNTYPED_VARIOUS_RATE = 1 / 3


def mbid(*parts: object) -> str:
    return str(uuid.uuid5(NAMESPACE, ":".join(map(str, parts))))


@dataclass(slots=True)
class Release:
    id: str
    title: str
    date: str
    primary_type: str                         # Album | Single
    group_id: str
    group_title: str
    compilation: bool                         # typed Compilation (secondary type)
    credit: list[dict[str, Any]] | None       # None: the recording's own credit
    track_count: int
    position: int
    regular: bool                             # ground truth: a release a client should trust


@dataclass(slots=True)
class Recording:
    id: str
    isrc: str
    title: str
    length: int
    credit: list[dict[str, Any]]
    first_release_date: str
    releases: list[Release] = field(default_factory=list)
    quirk: str = ""                           # "" | late | compilation | duplicate


class MusicBrainz:
    def __init__(self, catalog: Catalog, config: SimulatorConfig) -> None:
        self.catalog, self.config = catalog, config
        self._by_isrc: dict[str, list[Track]] | None = None
        self._recordings: dict[str, list[Recording]] = {}

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/ws/2/recording", self.search),
                web.get("/ws/2/recording/", self.search)]

    # ---------------------------------------------------------------- the data
    @property
    def by_isrc(self) -> dict[str, list[Track]]:
        if self._by_isrc is None:
            found: dict[str, list[Track]] = {}
            for track in self.catalog.tracks:
                found.setdefault(track.isrc, []).append(track)
            self._by_isrc = found
        return self._by_isrc

    def known(self, isrc: str) -> bool:
        return (isrc in self.by_isrc
                and unit(self.catalog.seed, "mb-known", isrc) < self.config.musicbrainz_coverage)

    def recordings(self, isrc: str) -> list[Recording]:
        """Every recording carrying ``isrc`` (empty when MusicBrainz does not know it)."""
        isrc = isrc.upper()
        if isrc not in self._recordings:
            self._recordings[isrc] = self._build(isrc) if self.known(isrc) else []
        return self._recordings[isrc]

    def truth(self, track: Track) -> dict[str, Any]:
        """What MusicBrainz holds about ``track``'s recording, and what is true of it."""
        found = self.recordings(track.isrc)
        return {"known": bool(found), "original_year": track.original_year,
                "recordings": [r.id for r in found],
                "first_release_dates": [r.first_release_date for r in found],
                "quirks": [r.quirk for r in found if r.quirk]}

    def _artist_credit(self, artists: list[Artist]) -> list[dict[str, Any]]:
        credit = []
        for n, artist in enumerate(artists):
            entry: dict[str, Any] = {"name": artist.name,
                                     "artist": {"id": mbid("artist", artist.id),
                                                "name": artist.name,
                                                "sort-name": artist.name}}
            if n < len(artists) - 1:
                entry["joinphrase"] = " feat. "
            credit.append(entry)
        return credit

    def _release(self, album: Album, track: Track, recording_credit: list[dict[str, Any]],
                 original: Album | None) -> Release:
        seed = self.catalog.seed
        various = album.kind == "various"
        compilation = album.album_type == "compilation" and not (
            various and unit(seed, "mb-untyped", album.id) < UNTYPED_VARIOUS_RATE)
        if various:
            credit: list[dict[str, Any]] | None = [{"name": "Various Artists",
                                                    "artist": VARIOUS_ARTISTS}]
        else:
            own = self._artist_credit([self.catalog.artists[i] for i in album.artist_idxs])
            credit = None if own == recording_credit else own
        # Reissues are releases of the original's release group, as MusicBrainz files them.
        group = original if album.kind in ("remaster", "deluxe", "anniversary") and original \
            else album
        return Release(mbid("release", album.id), album.name, album.release_date,
                       "Single" if group.album_type == "single" else "Album",
                       mbid("release-group", group.id), group.name, compilation, credit,
                       len(album.track_idxs), track.track_number,
                       regular=album.album_type != "compilation")

    def _build(self, isrc: str) -> list[Recording]:
        seed = self.catalog.seed
        copies = sorted(self.by_isrc[isrc],
                        key=lambda t: (self.catalog.albums[t.album_idx].release_date, t.idx))
        first = next((t for t in copies if self.catalog.albums[t.album_idx].kind == "original"),
                     copies[0])
        original = self.catalog.albums[first.album_idx]
        credit = self._artist_credit([self.catalog.artists[i] for i in first.artist_idxs])
        # MusicBrainz measures lengths from its own sources: a second or so off Spotify's.
        length = first.duration_ms + int((unit(seed, "mb-length", isrc) - 0.5) * 2000)
        releases = [self._release(self.catalog.albums[t.album_idx], t, credit, original)
                    for t in copies]
        found: list[Recording] = []
        reissues = [r for r in releases if r.regular and r.date[:4] > str(original.year)]
        if reissues and unit(seed, "mb-duplicate", isrc) < DUPLICATE_RATE:
            # The same ISRC on a remaster entered as its own recording, with the reissues.
            found.append(Recording(mbid("recording", "remaster", isrc), isrc,
                                   f"{first.name} (remastered)", length, credit,
                                   min(r.date for r in reissues), reissues, "duplicate"))
            releases = [r for r in releases if r not in reissues]
        recording = Recording(mbid("recording", isrc), isrc, first.name, length, credit,
                              min(r.date for r in releases), releases)
        roll = unit(seed, "mb-quirk", isrc)
        if roll < self.config.musicbrainz_quirk_rate / 2:
            # Late: a reissue's date, or some years after when there is none.
            later = [r.date for r in releases if r.date[:4] > recording.first_release_date[:4]]
            year = min(2026, original.year + 1 + int(unit(seed, "mb-late", isrc) * 12))
            recording.first_release_date = max(later) if later else str(year)
            recording.quirk = "late"
        elif roll < self.config.musicbrainz_quirk_rate and original.year > 1955:
            # Early: a misdated Various Artists compilation listed among the releases.
            year = original.year - 1 - int(unit(seed, "mb-early", isrc) * 6)
            date = f"{year}-{original.release_date[5:7] or '01'}"
            typed = unit(seed, "mb-early-typed", isrc) >= UNTYPED_VARIOUS_RATE
            title = f"{year} Hits Collection"
            releases.append(Release(mbid("release", "early", isrc), title, date, "Album",
                                    mbid("release-group", "early", isrc), title, typed,
                                    [{"name": "Various Artists", "artist": VARIOUS_ARTISTS}],
                                    20, 1 + int(unit(seed, "mb-pos", isrc) * 20),
                                    regular=False))
            recording.first_release_date = date
            recording.quirk = "compilation"
        return [recording, *found]

    # ---------------------------------------------------------------- shapes
    def render(self, recording: Recording) -> dict[str, Any]:
        return {"id": recording.id, "score": 100, "title": recording.title,
                "length": recording.length, "video": None,
                "artist-credit": recording.credit,
                "first-release-date": recording.first_release_date,
                "releases": [self._render_release(recording, r) for r in recording.releases],
                "isrcs": [recording.isrc]}

    @staticmethod
    def _render_release(recording: Recording, release: Release) -> dict[str, Any]:
        group: dict[str, Any] = {"id": release.group_id,
                                 "type-id": PRIMARY_TYPE_IDS[release.primary_type],
                                 "primary-type-id": PRIMARY_TYPE_IDS[release.primary_type],
                                 "title": release.group_title,
                                 "primary-type": release.primary_type}
        if release.compilation:
            group["secondary-types"] = ["Compilation"]
            group["secondary-type-ids"] = [COMPILATION_ID]
        body: dict[str, Any] = {"id": release.id, "status-id": OFFICIAL, "count": 1,
                                "title": release.title, "status": "Official"}
        if release.credit is not None:          # only when it differs from the recording's
            body["artist-credit"] = release.credit
        body.update({"release-group": group, "date": release.date, "country": "XW",
                     "release-events": [{"date": release.date, "area": WORLDWIDE}],
                     "track-count": release.track_count,
                     "media": [{"position": 1, "format": "Digital Media",
                                "track": [{"id": mbid("track", release.id, recording.id),
                                           "number": str(release.position),
                                           "title": recording.title,
                                           "length": recording.length}],
                                "track-count": release.track_count,
                                "track-offset": release.position - 1}]})
        return body

    # ---------------------------------------------------------------- service rules
    def refused(self, request: web.Request) -> tuple[web.Response, str] | None:
        if self.config.musicbrainz_down:
            return web.Response(status=503, text=DOWN_HTML, content_type="text/html"), "down"
        if default_agent(request.headers.get("User-Agent", "")):
            return _error(403, AGENT_TEXT), "user agent"
        return None

    def rate_limited(self, retry_after: int) -> web.Response:
        response = _error(503, RATE_TEXT)
        if self.config.musicbrainz_send_retry_after:
            response.headers["Retry-After"] = str(retry_after)
        return response

    # ---------------------------------------------------------------- the endpoint
    async def search(self, request: web.Request) -> web.Response:
        accept = request.headers.get("Accept", "")
        if request.query.get("fmt") != "json" and "application/json" not in accept:
            # MusicBrainz would answer XML; the simulator serves JSON only.
            return web.Response(status=406, text="the simulator serves JSON only: add "
                                                 "fmt=json or Accept: application/json\n")
        query = request.query.get("query", "")
        isrcs = parse_isrc_query(query)
        if isinstance(isrcs, str):
            return _error(400, isrcs)
        try:
            limit = int(request.query.get("limit", "25"))
            offset = int(request.query.get("offset", "0"))
        except ValueError:
            return _error(400, "Invalid limit or offset: give whole numbers.")
        if not 1 <= limit <= 100:
            return _error(400, f"Invalid limit {limit}: only values between 1 and 100 (both "
                               "inclusive) are allowed.")
        if offset < 0:
            return _error(400, f"Invalid offset {offset}.")
        found = {r.id: r for isrc in isrcs for r in self.recordings(isrc)}
        # Every hit scores 100; ties fall in index order, not the query's: join on isrcs.
        ranked = sorted(found.values(), key=lambda r: r.id)
        created = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(clock.now()))
        body = {"created": created, "count": len(ranked), "offset": offset,
                "recordings": [self.render(r) for r in ranked[offset:offset + limit]]}
        return web.Response(body=orjson.dumps(body), content_type="application/json",
                            charset="utf-8")


def parse_isrc_query(query: str) -> list[str] | str:
    """The ISRCs of ``isrc:A OR isrc:B`` or ``isrc:(A OR B)``; a message when it is not one."""
    isrcs: list[str] = []
    for match in CLAUSE.finditer(query):
        inner = match.group(1) if match.group(1) is not None else (
            match.group(2) if match.group(2) is not None else match.group(3))
        isrcs += [w.strip('"').upper() for w in inner.split() if w.upper() != "OR"]
    rest = CLAUSE.sub(" ", query).split()
    if not isrcs or any(w != "OR" for w in rest):
        return ("Invalid query: the simulator serves isrc: searches only (isrc:A OR isrc:B, "
                f"or isrc:(A OR B)), not {query[:80]!r}.")
    return [i for i in dict.fromkeys(isrcs) if ISRC.match(i)]


def _error(status: int, message: str) -> web.Response:
    return web.Response(status=status, body=orjson.dumps({"error": message, "help": HELP}),
                        content_type="application/json", charset="utf-8")
