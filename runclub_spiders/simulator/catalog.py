"""The simulator's synthetic music catalog: deterministic from a seed and a size.

Everything here is plain data built once at start-up; the HTTP layer renders it into Spotify
and ReccoBeats shapes. ``Track.truth`` style fields (original year, true umbrellas, whether
ReccoBeats knows a track) are ground truth for tests and benchmarks: the HTTP layer never
serves them, so the crawler cannot read them.
"""

from __future__ import annotations

import base64
import hashlib
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property

import orjson

from runclub_spiders.simulator import vocabulary as v

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
OWNER_ID = "runclub-owner"
OWNER_NAME = "RunClub Owner"
EDITORIAL_PREFIX = "37i9dQZF1DX"
RECCO_NAMESPACE = uuid.UUID("6f1c3c1e-2d6b-4f53-9a35-52a1c4c8e0b1")
FIRST_YEAR, LAST_YEAR = 1960, 2026
DECADE_WEIGHTS = {1960: 0.6, 1970: 1.5, 1980: 1.4, 1990: 1.3, 2000: 1.2, 2010: 1.2, 2020: 0.8}
REISSUE_KINDS = ("remaster", "deluxe", "anniversary")


@dataclass(slots=True)
class Artist:
    idx: int
    id: str
    name: str
    genres: tuple[str, ...]          # hidden in development mode, served in extended
    umbrellas: tuple[str, ...]       # ground truth, primary first
    popularity: int
    followers: int
    career_start: int


@dataclass(slots=True)
class Album:
    idx: int
    id: str
    name: str
    album_type: str                  # album | single | compilation
    # original | remaster | deluxe | anniversary | greatest_hits | various
    kind: str
    year: int
    release_date: str
    precision: str                   # year | month | day
    artist_idxs: tuple[int, ...]     # empty for "Various Artists"
    track_idxs: list[int] = field(default_factory=list)
    upc: str = ""
    label: str = ""
    popularity: int = 0


@dataclass(slots=True)
class Track:
    idx: int
    id: str
    name: str
    artist_idxs: tuple[int, ...]
    album_idx: int
    track_number: int
    duration_ms: int
    explicit: bool
    isrc: str
    popularity: int                  # hidden ranking signal; served only in extended
    markets: tuple[str, ...]         # where it is playable
    recco_known: bool                # ground truth: ReccoBeats has features for it
    original_year: int = 0           # ground truth: first release of this recording


@dataclass(slots=True)
class Playlist:
    id: str
    name: str
    description: str | None
    owner_id: str
    owner_name: str
    collaborative: bool
    public: bool
    readable: bool                   # the account owner owns or collaborates on it
    followed: bool                   # appears in /me/playlists
    track_idxs: list[int]
    added_at: list[str]
    version: int = 1
    extras: tuple[str, ...] = ()     # "local", "episode", "null" items mixed in

    @property
    def editorial(self) -> bool:
        return self.owner_id == "spotify"

    @property
    def snapshot_id(self) -> str:
        digest = hashlib.sha1(f"{self.id}:{self.version}".encode()).hexdigest()[:24]
        return base64.b64encode(f"{self.version},{digest}".encode()).decode().rstrip("=")


def normalize_genre(name: str) -> str:
    """The app's normalisation: lowercase, hyphen to space, "&" to "and"."""
    return " ".join(name.lower().replace("-", " ").replace("&", " and ").split())


def decade_label(year: int | None) -> str | None:
    if year is None or year < 1970:
        return None
    if year >= 2020:
        return "20s"
    return f"{year % 100 // 10 * 10:02d}s"


class Catalog:
    """A deterministic synthetic catalog of about ``size`` tracks."""

    def __init__(self, size: int = 100_000, seed: int = 1, market: str = "US",
                 recco_coverage: float = 0.6, unplayable_rate: float = 0.07) -> None:
        if size < 50:
            raise ValueError("catalog size must be at least 50 tracks")
        self.size, self.seed, self.market = size, seed, market
        self.recco_coverage, self.unplayable_rate = recco_coverage, unplayable_rate
        self.artists: list[Artist] = []
        self.albums: list[Album] = []
        self.tracks: list[Track] = []
        self.playlists: dict[str, Playlist] = {}
        self._ids: set[str] = set()
        self._isrcs: set[str] = set()
        rng = random.Random(f"catalog:{seed}")
        self._build_artists_and_originals(rng)
        self._build_reissues_and_compilations(rng)
        self._set_original_years()
        self._build_playlists(rng)
        self.track_by_id = {t.id: t for t in self.tracks}
        self.artist_by_id = {a.id: a for a in self.artists}
        self.album_by_id = {a.id: a for a in self.albums}
        self.track_by_recco_id = {self.recco_id(t): t for t in self.tracks if t.recco_known}

    # ---------------------------------------------------------------- building
    def _new_id(self, rng: random.Random, prefix: str = "") -> str:
        while True:
            candidate = prefix + "".join(rng.choices(BASE62, k=22 - len(prefix)))
            if candidate not in self._ids:
                self._ids.add(candidate)
                return candidate

    def _build_artists_and_originals(self, rng: random.Random) -> None:
        umbrellas = list(v.UMBRELLA_GENRES)
        weights = [v.UMBRELLA_WEIGHT[u] for u in umbrellas]
        decades = list(DECADE_WEIGHTS)
        decade_w = list(DECADE_WEIGHTS.values())
        original_budget = int(self.size * 0.82)
        while len(self.tracks) < original_budget:
            umbrella = rng.choices(umbrellas, weights)[0]
            first = v.UMBRELLA_FIRST_YEAR.get(umbrella, FIRST_YEAR)
            start = max(first, rng.choices(decades, decade_w)[0] + rng.randrange(10))
            start = min(start, 2025)
            artist = self._new_artist(rng, umbrella, start)
            span = min(LAST_YEAR - start, rng.choice((2, 4, 8, 12, 20, 30)))
            for _ in range(rng.choice((1, 1, 2, 2, 3, 4))):
                year = start + rng.randint(0, span)
                if rng.random() < 0.35:
                    self._new_album(rng, "single", "original", year, (artist.idx,),
                                    rng.randint(1, 3))
                else:
                    self._new_album(rng, "album", "original", year, (artist.idx,),
                                    rng.randint(8, 14))

    def _new_artist(self, rng: random.Random, umbrella: str, start: int) -> Artist:
        pool = v.UMBRELLA_GENRES[umbrella]
        genres = [pool[0]] if rng.random() < 0.5 else []
        genres += rng.sample(pool[1:], rng.randint(1, 2))
        umbrellas = [umbrella]
        if rng.random() < 0.2:
            other = rng.choice(v.NEIGHBOURS[umbrella])
            genres.append(rng.choice(v.UMBRELLA_GENRES[other]))
            umbrellas.append(other)
        if rng.random() < 0.08:           # real catalogues have unclassified artists
            genres = []
        seen: dict[str, None] = dict.fromkeys(genres)
        if rng.random() < 0.5:
            name = f"{rng.choice(v.NAME_FIRST)} {rng.choice(v.NAME_LAST)}"
        else:
            name = f"The {rng.choice(v.TITLE_WORDS)} {rng.choice(v.BAND_WORDS)}"
        popularity = min(100, int(rng.betavariate(2, 4) * 100))
        artist = Artist(len(self.artists), self._new_id(rng), name, tuple(seen),
                        tuple(umbrellas), popularity, int(popularity ** 3 * rng.uniform(1, 9)),
                        start)
        self.artists.append(artist)
        return artist

    def _release_date(self, rng: random.Random, year: int) -> tuple[str, str]:
        roll = rng.random()
        if (year < 1990 and roll < 0.3) or roll < 0.08:
            return str(year), "year"
        month = rng.randint(1, 12)
        if roll < 0.2:
            return f"{year}-{month:02d}", "month"
        return f"{year}-{month:02d}-{rng.randint(1, 28):02d}", "day"

    def _new_album(self, rng: random.Random, album_type: str, kind: str, year: int,
                   artist_idxs: tuple[int, ...], n_tracks: int = 0,
                   copies: list[Track] | None = None, name: str = "") -> Album:
        release_date, precision = self._release_date(rng, year)
        if not name:
            name = self._title(rng)
        album = Album(len(self.albums), self._new_id(rng), name, album_type, kind, year,
                      release_date, precision, artist_idxs,
                      upc=f"{rng.randrange(10**11, 10**12)}",
                      label=f"{rng.choice(v.BAND_WORDS)} Records",
                      popularity=rng.randint(0, 90))
        self.albums.append(album)
        if copies is not None:
            for number, source in enumerate(copies, 1):
                self._new_track(rng, album, number, copy_of=source)
        else:
            for number in range(1, n_tracks + 1):
                self._new_track(rng, album, number)
        return album

    def _title(self, rng: random.Random) -> str:
        return rng.choice(v.TITLE_PATTERNS).format(a=rng.choice(v.TITLE_WORDS),
                                                   b=rng.choice(v.TITLE_WORDS))

    def _duration(self, rng: random.Random) -> int:
        roll = rng.random()
        if roll < 0.05:
            return rng.randint(70_000, 119_999)
        if roll < 0.09:
            return rng.randint(360_001, 480_000)
        if roll < 0.17:
            return rng.randint(300_000, 360_000)
        return rng.randint(120_000, 299_999)

    def _isrc(self, rng: random.Random, year: int) -> str:
        while True:
            country = rng.choice(("US", "GB", "DE", "SE", "JP", "KR", "BR", "MX", "NG", "IN"))
            registrant = "".join(rng.choices("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", k=3))
            code = f"{country}{registrant}{year % 100:02d}{rng.randrange(100000):05d}"
            if code not in self._isrcs:
                self._isrcs.add(code)
                return code

    def _markets(self, rng: random.Random) -> tuple[str, ...]:
        chosen = [m for m in v.MARKETS if rng.random() < 0.9]
        if rng.random() < self.unplayable_rate:
            chosen = [m for m in chosen if m != self.market]
        elif self.market not in chosen:
            chosen.append(self.market)
        return tuple(sorted(chosen))

    def _new_track(self, rng: random.Random, album: Album, number: int,
                   copy_of: Track | None = None) -> Track:
        if copy_of is not None:
            # Same recording (ISRC, duration, artists) under a new track ID and a later year.
            name = copy_of.name
            if album.kind == "remaster":
                name = f"{name} - Remastered {album.year}"
            track = Track(len(self.tracks), self._new_id(rng), name, copy_of.artist_idxs,
                          album.idx, number, copy_of.duration_ms, copy_of.explicit,
                          copy_of.isrc, max(0, copy_of.popularity - rng.randint(5, 30)),
                          self._markets(rng), rng.random() < self.recco_coverage)
        else:
            artist_idxs = album.artist_idxs
            if rng.random() < 0.12 and len(self.artists) > 1:
                featured = self.artists[rng.randrange(len(self.artists))]
                if featured.idx not in artist_idxs:
                    artist_idxs = (*artist_idxs, featured.idx)
            lead = self.artists[artist_idxs[0]]
            explicit_rate = 0.45 if lead.umbrellas[0] in ("Hip-Hop & Rap", "Reggaeton") else 0.08
            popularity = max(0, min(100, lead.popularity + rng.randint(-25, 15)))
            track = Track(len(self.tracks), self._new_id(rng), self._title(rng), artist_idxs,
                          album.idx, number, self._duration(rng), rng.random() < explicit_rate,
                          self._isrc(rng, album.year), popularity, self._markets(rng),
                          rng.random() < self.recco_coverage)
        self.tracks.append(track)
        album.track_idxs.append(track.idx)
        return track

    def _build_reissues_and_compilations(self, rng: random.Random) -> None:
        originals = [a for a in self.albums if a.kind == "original"]
        by_artist: dict[int, list[Track]] = {}
        for t in self.tracks:
            by_artist.setdefault(t.artist_idxs[0], []).append(t)
        while len(self.tracks) < self.size:
            roll = rng.random()
            if roll < 0.5:
                source = rng.choice(originals)
                if source.year > LAST_YEAR - 8 or source.album_type != "album":
                    continue
                kind = rng.choice(REISSUE_KINDS)
                year = rng.randint(source.year + 5, LAST_YEAR)
                suffix = {"remaster": f" (Remastered {year})", "deluxe": " (Deluxe Edition)",
                          "anniversary": f" ({year - source.year}th Anniversary Edition)"}[kind]
                copies = [self.tracks[i] for i in source.track_idxs]
                self._new_album(rng, "album", kind, year, source.artist_idxs, copies=copies,
                                name=source.name + suffix)
            elif roll < 0.8:
                artist = self.artists[rng.randrange(len(self.artists))]
                pool = [t for t in by_artist.get(artist.idx, ()) if t.album_idx < len(self.albums)]
                if len(pool) < 4:
                    continue
                hits = sorted(pool, key=lambda t: -t.popularity)[: rng.randint(4, 12)]
                last = max(self.albums[t.album_idx].year for t in hits)
                if last >= LAST_YEAR:
                    continue
                year = rng.randint(last + 1, LAST_YEAR)
                name = rng.choice(("Greatest Hits", "The Essential {n}", "The Very Best of {n}",
                                   "Gold", "Anthology")).format(n=artist.name)
                self._new_album(rng, "compilation", "greatest_hits", year, (artist.idx,),
                                copies=hits, name=name)
            else:
                umbrella = rng.choice(list(v.UMBRELLA_GENRES))
                decade = rng.choice((1970, 1980, 1990, 2000, 2010))
                pool = [t for t in rng.sample(self.tracks, min(400, len(self.tracks)))
                        if self.artists[t.artist_idxs[0]].umbrellas[0] == umbrella
                        and decade <= self.albums[t.album_idx].year < decade + 10]
                if len(pool) < 3:
                    continue
                year = rng.randint(decade + 10, LAST_YEAR)
                theme = rng.choice(v.PLAYLIST_THEMES)
                name = f"{decade % 100:02d}s {umbrella.split(' & ')[0]} {theme}"
                self._new_album(rng, "compilation", "various", year, (), copies=pool[:20],
                                name=name)

    def _set_original_years(self) -> None:
        first: dict[str, int] = {}
        for t in self.tracks:
            year = self.albums[t.album_idx].year
            if year < first.get(t.isrc, 10_000):
                first[t.isrc] = year
        for t in self.tracks:
            t.original_year = first[t.isrc]

    def _build_playlists(self, rng: random.Random) -> None:
        by_umbrella: dict[str, list[int]] = {}
        by_decade: dict[int, list[int]] = {}
        for t in self.tracks:
            by_umbrella.setdefault(self.artists[t.artist_idxs[0]].umbrellas[0], []).append(t.idx)
            by_decade.setdefault(self.albums[t.album_idx].year // 10 * 10, []).append(t.idx)
        umbrellas = sorted(by_umbrella)

        def pick(pool: list[int], n: int) -> list[int]:
            return rng.sample(pool, min(n, len(pool)))

        def stamp() -> str:
            day = f"20{rng.randint(15, 26):02d}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
            return f"{day}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:00Z"

        def add(pid: str, name: str, owner: tuple[str, str], tracks: list[int], *,
                collaborative: bool = False, public: bool = True, readable: bool = False,
                followed: bool = False, extras: tuple[str, ...] = ()) -> None:
            description = None if rng.random() < 0.3 else f"{name}: picked for your pace."
            self.playlists[pid] = Playlist(pid, name, description, owner[0], owner[1],
                                           collaborative, public, readable, followed, tracks,
                                           [stamp() for _ in tracks], extras=extras)

        owner = (OWNER_ID, OWNER_NAME)
        for n in range(8):
            umbrella = umbrellas[n * 5 % len(umbrellas)]
            theme = v.PLAYLIST_THEMES[n % len(v.PLAYLIST_THEMES)]
            extras = ("local", "null", "episode") if n < 2 else ()
            add(self._new_id(rng), f"My {umbrella} {theme}", owner,
                pick(by_umbrella[umbrella], rng.randint(30, 120)), public=n % 3 != 0,
                readable=True, followed=True, extras=extras)
        for n in range(3):
            other = (v.PUBLIC_OWNERS[n], v.PUBLIC_OWNERS[n].title())
            decade = (1970, 1980, 1990)[n]
            add(self._new_id(rng), f"Club {decade % 100:02d}s {v.PLAYLIST_THEMES[n]}", other,
                pick(by_decade.get(decade, by_decade[min(by_decade)]), rng.randint(40, 100)),
                collaborative=True, public=False, readable=True, followed=True)
        for n in range(max(20, self.size // 250)):
            other = (rng.choice(v.PUBLIC_OWNERS), "")
            other = (other[0], other[0].title())
            if rng.random() < 0.5:
                umbrella = rng.choice(umbrellas)
                name = f"{umbrella.split(' & ')[0]} {rng.choice(v.PLAYLIST_THEMES)}"
                pool = by_umbrella[umbrella]
            else:
                decade = rng.choice(sorted(by_decade))
                name = f"{decade % 100:02d}s {rng.choice(v.PLAYLIST_THEMES)}"
                pool = by_decade[decade]
            add(self._new_id(rng), name, other, pick(pool, rng.randint(20, 100)),
                followed=n < 4)
        for n, name in enumerate(v.EDITORIAL_NAMES):
            add(self._new_id(rng, EDITORIAL_PREFIX), name, ("spotify", "Spotify"),
                pick(self.tracks_by_popularity_idx[:5000], 50), followed=n < 2)

    # ---------------------------------------------------------------- lookups
    @cached_property
    def tracks_by_popularity_idx(self) -> list[int]:
        return [t.idx for t in sorted(self.tracks, key=lambda t: (-t.popularity, t.id))]

    @cached_property
    def rank(self) -> list[int]:
        """Position of each track (by idx) in the hidden popularity order."""
        order = [0] * len(self.tracks)
        for position, idx in enumerate(self.tracks_by_popularity_idx):
            order[idx] = position
        return order

    def recco_id(self, track: Track) -> str:
        return str(uuid.uuid5(RECCO_NAMESPACE, f"{self.seed}:{track.id}"))

    def owner_playlists(self) -> list[Playlist]:
        return [p for p in self.playlists.values() if p.followed]

    def edit_playlist(self, playlist_id: str, add: int = 5, remove: int = 0) -> Playlist:
        """Edit a playlist as its owner would: new tracks appended, snapshot_id changes."""
        playlist = self.playlists[playlist_id]
        rng = random.Random(f"edit:{self.seed}:{playlist_id}:{playlist.version}")
        for _ in range(min(remove, len(playlist.track_idxs))):
            i = rng.randrange(len(playlist.track_idxs))
            del playlist.track_idxs[i], playlist.added_at[i]
        for idx in rng.sample(range(len(self.tracks)), add):
            playlist.track_idxs.append(idx)
            playlist.added_at.append(f"2026-11-{rng.randint(1, 28):02d}T12:00:00Z")
        playlist.version += 1
        return playlist

    def features(self, track: Track) -> dict[str, float | int]:
        """ReccoBeats audio features, drawn per track so they cost no memory until asked."""
        rng = random.Random(f"features:{self.seed}:{track.id}")
        umbrella = self.artists[track.artist_idxs[0]].umbrellas[0]
        low, high = {
            "Drum & Bass": (168, 178), "House": (118, 128), "Techno": (124, 142),
            "Electronic & EDM": (122, 150), "Hip-Hop & Rap": (80, 160), "Reggaeton": (88, 100),
            "Punk & Emo": (150, 200), "Metal & Hard Rock": (100, 190), "K-pop & J-pop": (95, 150),
            "Afrobeats & Amapiano": (100, 115), "Funk & Disco": (105, 125),
        }.get(umbrella, (70, 180))
        return {
            "acousticness": round(rng.random() ** 2, 4),
            "danceability": round(rng.uniform(0.3, 0.95), 3),
            "energy": round(rng.uniform(0.25, 0.99), 3),
            "instrumentalness": 0 if rng.random() < 0.4 else round(rng.random() ** 4, 5),
            "key": rng.randint(-1, 11),
            "liveness": round(rng.uniform(0.02, 0.6), 4),
            "loudness": round(rng.uniform(-18.0, 1.5), 3),
            "mode": rng.randint(0, 1),
            "speechiness": round(rng.uniform(0.02, 0.4), 4),
            "tempo": round(rng.uniform(low, high), 3),
            "valence": round(rng.random(), 3),
        }

    # ---------------------------------------------------------------- ground truth
    def truth(self, track: Track) -> dict[str, object]:
        """What a perfect crawler would conclude about ``track`` (tests/benchmarks only)."""
        lead = self.artists[track.artist_idxs[0]]
        return {"original_year": track.original_year,
                "decade": decade_label(track.original_year),
                "umbrellas": list(lead.umbrellas), "recco_known": track.recco_known,
                "playable": self.market in track.markets}

    def canonical_lines(self) -> Iterator[bytes]:
        """Every entity serialised in a fixed order: equal lines means an equal catalog."""
        for a in self.artists:
            yield orjson.dumps([a.id, a.name, a.genres, a.umbrellas, a.popularity, a.followers])
        for al in self.albums:
            yield orjson.dumps([al.id, al.name, al.album_type, al.kind, al.release_date,
                                al.precision, al.artist_idxs, al.track_idxs, al.upc])
        for t in self.tracks:
            yield orjson.dumps([t.id, t.name, t.artist_idxs, t.album_idx, t.duration_ms,
                                t.explicit, t.isrc, t.popularity, t.markets, t.recco_known,
                                t.original_year])
        for p in self.playlists.values():
            yield orjson.dumps([p.id, p.name, p.owner_id, p.collaborative, p.track_idxs,
                                p.added_at, p.snapshot_id])

    def fingerprint(self) -> str:
        digest = hashlib.sha256()
        for line in self.canonical_lines():
            digest.update(line + b"\n")
        return digest.hexdigest()
