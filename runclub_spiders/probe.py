"""The live capability probe: what Spotify and ReccoBeats allow this app today, in <= 12 calls.

Spotify changed what a Development Mode app may do twice (2024, 2026) without a changelog for
every detail, and some of what discovery relies on is unverified for such apps: above all
whether search still honours ``genre:"..."``, the filter the cell queries and the search
genre evidence are built on. So rather than trusting a profile name, the crawl asks, at most
once per ``SPOTIFY_PROBE_INTERVAL_DAYS`` (``scrapy spotify-probe`` asks now), and adapts
(:func:`adapt`). What it found is kept in the store (``probe_results``) and written to the
manifest.

The Spotify calls (at most 11):

1. ``/search?q=year:2015-2016&type=track&limit=50``: 400 means pages of at most 10;
2. ``limit=10`` of the same: the baseline page. Its tracks say whether ``year:`` is honoured
   (every album released 2015-2016) and whether track objects carry ``external_ids.isrc``.
   When it is empty (a small or odd catalog) the same with ``year:1970-2029``, once;
3. and 4. ``genre:"<A>" year:...`` and ``genre:"<B>" year:...`` for two unrelated umbrellas'
   first genres: both empty while the baseline is not -> ``empty``; the same tracks for both
   (two unrelated genres cannot share their top tracks) -> ``ignored``; otherwise
   ``honoured``. A alone may equal the baseline with the filter honoured ("pop" is in most
   genres' names), so it is the two genres that are compared;
5. ``/artists/{id}`` of B's first artist: does it carry ``genres``?
6. ``/albums/{id}`` and 7. ``/artists/{id}/albums``: allowed, or refused (403);
8. ``/me``, 9. ``/me/playlists`` and 10. the first owned playlist's ``/items?limit=1``.

ReccoBeats (no Spotify quota): ``/audio-features`` for the baseline's tracks with our
User-Agent (and ``RECCOBEATS_API_KEY`` when set, as enrichment sends it: reachable?) and with
a library's default one (does it block those, as Cloudflare's rule 1010 has done?). Every call
goes through the crawl's own downloader middlewares (token, quota ledger, pacing, retries): a
parked bucket is reported as ``unknown``, never waited for. The close cuts a call short
(``CloseWatch``); a probe that judged nothing (no answer at all, or cut short) is not saved,
so the next crawl probes again.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from scrapy import Request

from runclub_spiders import clock
from runclub_spiders.pipelines.reccobeats import request_headers
from runclub_spiders.quota import utc_iso
from runclub_spiders.utils.closing import CloseWatch, SpiderClosing

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.http import Response
    from scrapy.settings import BaseSettings

    from runclub_spiders.seeds import SeedPlan
    from runclub_spiders.store import Store

logger = logging.getLogger(__name__)

YEARS = ((2015, 2016), (1970, 2029))     # the second only when the first finds nothing
UNKNOWN = "unknown"
#: A library's default User-Agent, as a client that never set its own sends it.
DEFAULT_USER_AGENT = "python-requests/2.32.3"
#: Every capability, in the order they are printed; printed names have spaces for "_".
NAMES = ("search_limit", "genre_filter", "year_filter", "track_isrc", "artist_genres",
         "albums", "artist_albums", "playlist_items", "reccobeats",
         "reccobeats_default_user_agent")


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What the probe found: ``values[name]`` is one word or number (``honoured``...)."""

    values: dict[str, str]
    details: dict[str, str]
    probed_at: str | None                       # ISO 8601 UTC; None: never probed
    fresh: bool = False                         # probed by this process (not read back)

    def get(self, name: str) -> str:
        return self.values.get(name, UNKNOWN)

    @property
    def genre_filter_trusted(self) -> bool:
        """May discovery build on ``genre:``? Unknown keeps the behaviour of before the probe."""
        return self.get("genre_filter") in ("honoured", UNKNOWN)

    @property
    def albums(self) -> bool:
        """May discovery read albums (``/albums/{id}``)? Unknown: yes."""
        return self.get("albums") != "forbidden"

    @property
    def artist_albums(self) -> bool:
        """May discovery list artists' albums? Unknown: yes."""
        return self.get("artist_albums") != "forbidden"

    @property
    def reccobeats(self) -> bool:
        """Is ReccoBeats there for enrichment and leads? Unknown: yes."""
        return self.get("reccobeats") in ("reachable", UNKNOWN)

    def lines(self) -> list[str]:
        """One ``name: value`` line per capability."""
        return [f"{name.replace('_', ' ')}: {self.get(name)}" for name in NAMES]

    @classmethod
    def from_store(cls, store: Store) -> Capabilities:
        rows = store.probe_results()
        return cls({r["name"]: r["value"] for r in rows},
                   {r["name"]: r["detail"] for r in rows if r["detail"]},
                   min((r["probed_at"] for r in rows), default=None))

    def save(self, store: Store) -> None:
        store.save_probe_results([(n, self.get(n), self.details.get(n), self.probed_at)
                                  for n in NAMES])

    def due(self, interval_days: float) -> bool:
        """Is a new probe due (never probed, or longer ago than ``interval_days``)?"""
        if self.probed_at is None:
            return True
        then = datetime.strptime(self.probed_at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        return datetime.fromtimestamp(clock.now(), UTC) - then >= timedelta(days=interval_days)

    def manifest(self) -> dict[str, Any] | None:
        if self.probed_at is None:
            return None
        return {"probedAt": self.probed_at,
                "capabilities": {n: self.get(n) for n in NAMES}}


@dataclass(frozen=True, slots=True)
class Adaptation:
    """What the crawl does differently because of the probe."""

    plan: SeedPlan
    page_size: int
    search_genres: bool            # genre evidence from search hits
    lines: tuple[str, ...]         # what the crawl will do, for people
    # Album reads, listings and leads: ``discovery_switches`` (the settings too).


def adapt(caps: Capabilities, plan: SeedPlan, *, page_size: int) -> Adaptation:
    """The plan and switches that fit ``caps``; ``unknown`` changes nothing."""
    lines = []
    trusted = caps.genre_filter_trusted
    if not trusted:
        plan = replace(plan, max_genres_per_cell=0)
        lines.append(f"cell queries: off (genre filter {caps.get('genre_filter')}); no genre "
                     "from search hits; umbrellas come from other artist genres (Wikidata, "
                     "when on) and the free-text seeds' targets")
    else:
        lines.append('cell queries: genre:"..." year:A-B searches; their hits\' sole artists '
                     "get the query's genre")
    limit = caps.get("search_limit")
    if limit in ("10", "50"):
        page_size = int(limit)
    lines.append(f"search pages: {page_size} results")
    albums, listings = caps.albums, caps.artist_albums
    lines.append("album reads: " + ("on" if albums else "off (refused)"))
    lines.append("artist album listings: " + ("on" if listings else "off (refused)"))
    if caps.get("playlist_items") == "forbidden":
        lines.append("owner playlists: their items are refused; discovery searches only")
    if caps.get("track_isrc") == "absent":
        lines.append("dedupe: tracks carry no ISRC; ReccoBeats' ISRC, else name + artist + "
                     "duration")
    leads = caps.reccobeats
    if not leads:
        lines.append("enrichment: ReccoBeats is unreachable now; tracks wait for a later run; "
                     "no ReccoBeats leads for the tracks bucket")
    return Adaptation(plan, page_size, trusted, tuple(lines))


def discovery_switches(settings: BaseSettings, caps: Capabilities
                       ) -> tuple[bool, bool, bool]:
    """Album reads, artist listings, ReccoBeats leads: each on when its setting is and the
    probe did not find it refused (the crawl's ``Frontier`` and the projection's buckets)."""
    return (settings.getbool("DISCOVERY_ALBUMS") and caps.albums,
            settings.getbool("DISCOVERY_ARTIST_ALBUMS") and caps.artist_albums,
            settings.getbool("DISCOVERY_RECCO_LEADS") and caps.reccobeats)


class ProbeError(Exception):
    """A probe call got no HTTP answer (refused, parked, network)."""


class Probe:
    """Runs the calls above through ``crawler.engine`` and judges the answers."""

    def __init__(self, crawler: Crawler, plan: SeedPlan) -> None:
        s = crawler.settings
        self.crawler = crawler
        self.api = s["SPOTIFY_API_BASE_URL"].rstrip("/")
        self.recco = (s.get("RECCOBEATS_BASE_URL") or "").rstrip("/")
        self.market = s["SPOTIFY_MARKET"]
        self.watch = CloseWatch(crawler)
        self.years = YEARS[0]
        umbrellas = plan.rules.umbrellas
        # Two unrelated umbrellas' first genres: broad ones, so an honoured filter finds some.
        self.genres = (umbrellas[0].representative_genres[0],
                       umbrellas[len(umbrellas) // 2].representative_genres[0])
        self.values: dict[str, str] = {}
        self.details: dict[str, str] = {}
        self.spotify_calls = 0

    async def run(self) -> Capabilities | None:
        """What the answers say; None when the probe judged nothing or the close cut it
        short (nothing to keep: the next crawl probes again)."""
        stats = self.crawler.stats
        try:
            for step in (self._search, self._lookups, self._playlists, self._reccobeats):
                await step()
        except SpiderClosing:
            return None
        finally:
            stats.set_value("probe/spotify_requests", self.spotify_calls)
        if not self.values:
            return None
        caps = Capabilities({n: self.values.get(n, UNKNOWN) for n in NAMES},
                            dict(self.details), utc_iso(clock.now()))
        for name in NAMES:
            stats.set_value(f"probe/{name}", caps.get(name))
        return caps

    # ---------------------------------------------------------------- the calls
    async def _get(self, url: str, *, spotify: bool = True,
                   headers: dict[str, str] | None = None) -> tuple[int, Any]:
        """Status and JSON body (None when not JSON) of one GET; ProbeError without answer."""
        request = Request(url, headers=headers, dont_filter=True,
                          meta={"handle_httpstatus_all": True})
        if spotify:
            self.spotify_calls += 1
        try:
            response: Response = await self.watch.run(
                self.crawler.engine.download_async(request))
        except SpiderClosing:
            raise
        except Exception as exc:           # parked bucket, DNS, refused connection...
            raise ProbeError(f"{type(exc).__name__}: {exc}"[:200]) from None
        try:
            body = json.loads(response.body)
        except ValueError:
            body = None
        return response.status, body

    def _search_url(self, q: str, limit: int) -> str:
        params = {"q": q, "type": "track", "limit": limit, "market": self.market}
        return f"{self.api}/search?{urlencode(params)}"

    async def _search(self) -> None:
        self.baseline: list[dict] = []
        try:
            status, _ = await self._get(self._search_url("year:2015-2016", 50))
            if status not in (200, 400):
                self.details["search_limit"] = f"HTTP {status}"
                return
            self.values["search_limit"] = "50" if status == 200 else "10"
            for years in YEARS:
                self.years = years
                status, body = await self._get(self._search_url(self._year_filter(), 10))
                self.baseline = _tracks(body)[:10] if status == 200 else []
                if self.baseline or status != 200:
                    break
            if not self.baseline:
                self.details["genre_filter"] = f"HTTP {status}, no track for any year filter"
                return
            self._judge_baseline()
            pages = []
            for genre in self.genres:
                q = f'genre:"{genre}" {self._year_filter()}'
                status, body = await self._get(self._search_url(q, 10))
                if status != 200:
                    self.details["genre_filter"] = f"HTTP {status} for genre:{genre!r}"
                    return
                pages.append([t.get("id") for t in _tracks(body)])
            self.values["genre_filter"] = _genre_verdict(pages)
            counts = [f"genre:{g!r} {len(p)} tracks"
                      for g, p in zip(self.genres, pages, strict=True)]
            self.details["genre_filter"] = "; ".join(
                [f"{self._year_filter()} {len(self.baseline)} tracks", *counts])
        except ProbeError as exc:
            self.details["search"] = str(exc)

    def _year_filter(self) -> str:
        return f"year:{self.years[0]}-{self.years[1]}"

    def _judge_baseline(self) -> None:
        if not self.baseline:
            return
        years = [_year(t) for t in self.baseline]
        low, high = self.years
        inside = sum(1 for y in years if y is not None and low <= y <= high)
        self.values["year_filter"] = "honoured" if inside == len(years) else "ignored"
        self.details["year_filter"] = f"{inside} of {len(years)} tracks released {low}-{high}"
        with_isrc = sum(1 for t in self.baseline
                        if isinstance(t.get("external_ids"), dict)
                        and t["external_ids"].get("isrc"))
        self.values["track_isrc"] = "present" if with_isrc else "absent"
        self.details["track_isrc"] = f"{with_isrc} of {len(self.baseline)} tracks"

    async def _lookups(self) -> None:
        track = self.baseline[0] if self.baseline else None
        artist = _first_artist(track)
        album = (track or {}).get("album") or {}
        market = urlencode({"market": self.market})
        calls = []
        if artist:
            calls.append(("artist_genres", f"{self.api}/artists/{artist}"))
        if album.get("id"):
            calls.append(("albums", f"{self.api}/albums/{album['id']}?{market}"))
        if artist:
            params = urlencode({"include_groups": "album,single", "limit": 10,
                                "market": self.market})
            calls.append(("artist_albums", f"{self.api}/artists/{artist}/albums?{params}"))
        for name, url in calls:
            try:
                status, body = await self._get(url)
            except ProbeError as exc:
                self.details[name] = str(exc)
                continue
            if name == "artist_genres":
                if status == 200 and isinstance(body, dict):
                    genres = body.get("genres")
                    present = isinstance(genres, list) and bool(genres)
                    self.values[name] = "present" if present else "absent"
                else:
                    self.details[name] = f"HTTP {status}"
            else:
                self.values[name] = _allowed(status)
                self.details[name] = f"HTTP {status}"

    async def _playlists(self) -> None:
        name = "playlist_items"
        try:
            status, me = await self._get(f"{self.api}/me")
            if status != 200 or not isinstance(me, dict):
                self.details[name] = f"/me: HTTP {status}"
                return
            status, body = await self._get(f"{self.api}/me/playlists?limit=50")
            if status != 200:
                self.details[name] = f"/me/playlists: HTTP {status}"
                return
            owned = [p for p in _items(body)
                     if ((p.get("owner") or {}).get("id")) == me.get("id") and p.get("id")]
            if not owned:
                self.values[name] = "no owned playlist"
                return
            params = urlencode({"limit": 1, "market": self.market})
            status, _ = await self._get(f"{self.api}/playlists/{owned[0]['id']}/items?{params}")
            self.values[name] = "readable" if status == 200 else \
                "forbidden" if status == 403 else UNKNOWN
            self.details[name] = f"HTTP {status}"
        except ProbeError as exc:
            self.details[name] = str(exc)

    async def _reccobeats(self) -> None:
        ids = [t["id"] for t in self.baseline[:5] if isinstance(t.get("id"), str)]
        if not self.recco or not ids:
            return
        url = f"{self.recco}/audio-features?{urlencode({'ids': ','.join(ids)})}"
        headers = request_headers()      # the key, when the owner has one, as the crawl's
        try:
            status, _ = await self._get(url, spotify=False, headers=headers)
        except ProbeError as exc:
            self.values["reccobeats"] = "unreachable"
            self.details["reccobeats"] = str(exc)
            return
        self.values["reccobeats"] = "reachable" if status == 200 else "unreachable"
        self.details["reccobeats"] = f"HTTP {status}"
        try:
            status, _ = await self._get(url, spotify=False,
                                        headers={**headers, "User-Agent": DEFAULT_USER_AGENT})
        except ProbeError as exc:
            self.details["reccobeats_default_user_agent"] = str(exc)
            return
        name = "reccobeats_default_user_agent"
        self.values[name] = "allowed" if status == 200 else \
            "blocked" if status in (403, 1010) else UNKNOWN
        self.details[name] = f"HTTP {status} for User-Agent {DEFAULT_USER_AGENT}"


def _tracks(body: Any) -> list[dict]:
    tracks = body.get("tracks") if isinstance(body, dict) else None
    return [t for t in _items(tracks) if isinstance(t, dict)]


def _items(page: Any) -> list[dict]:
    items = page.get("items") if isinstance(page, dict) else None
    return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []


def _year(track: dict) -> int | None:
    date = (track.get("album") or {}).get("release_date")
    return int(date[:4]) if isinstance(date, str) and date[:4].isdigit() else None


def _first_artist(track: dict | None) -> str | None:
    artists = (track or {}).get("artists")
    if isinstance(artists, list) and artists and isinstance(artists[0], dict):
        return artists[0].get("id")
    return None


def _allowed(status: int) -> str:
    return "allowed" if status == 200 else "forbidden" if status in (401, 403) else UNKNOWN


def _genre_verdict(pages: list[list]) -> str:
    """``honoured``, ``ignored`` or ``empty`` from two unrelated genres' pages (the year's
    page had tracks): nothing for either, or the same tracks for both, or neither."""
    if not any(pages):
        return "empty"
    if len({frozenset(page) for page in pages}) == 1:
        return "ignored"
    return "honoured"


async def capabilities(crawler: Crawler, store: Store, plan: SeedPlan, *,
                       force: bool = False) -> Capabilities:
    """The store's capabilities, probed again first when due (or ``force``) and enabled."""
    s = crawler.settings
    known = Capabilities.from_store(store)
    if not force and not (s.getbool("SPOTIFY_PROBE_ENABLED")
                          and known.due(s.getfloat("SPOTIFY_PROBE_INTERVAL_DAYS"))):
        return known
    caps = await Probe(crawler, plan).run()
    if caps is None:           # nothing judged (no answer, or the close cut it short)
        logger.warning("The capability probe got no answer; the crawl goes by %s",
                       "the last probe's findings" if known.probed_at else "the profile")
        return known
    # A capability this probe could not judge (a parked bucket, a network error) keeps what
    # an earlier probe found.
    caps = Capabilities({n: caps.get(n) if caps.get(n) != UNKNOWN else known.get(n)
                         for n in NAMES},
                        {**{n: d for n, d in known.details.items() if caps.get(n) == UNKNOWN},
                         **caps.details}, caps.probed_at, fresh=True)
    caps.save(store)
    for line in caps.lines():
        logger.info("Probe: %s", line)
    return caps
