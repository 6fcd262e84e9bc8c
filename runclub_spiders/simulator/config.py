"""Every knob of the simulator, with the defaults ``scrapy simulator`` and the tests start from."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

PROFILES = ("development", "extended")
# What Spotify's search may do with a ``genre:`` filter for an app (unverified for Development
# Mode in 2026): honour it, ignore it (it matches everything) or answer nothing.
GENRE_FILTER_MODES = ("honoured", "ignored", "empty")
YEAR_FILTER_MODES = ("honoured", "ignored")
# artist ``genres``: auto = the profile's (development: absent, as reported in August 2026;
# extended: present), or forced present, absent, or an empty list.
ARTIST_GENRES_MODES = ("auto", "present", "absent", "empty")
QUOTA_BUCKETS = ("search", "tracks", "artists", "albums", "album_tracks", "playlists", "user")

# Demo credentials for the offline sandbox. They open nothing outside the simulator.
DEMO_CLIENT_ID = "runclubdemoclient0000000000000000"
DEMO_CLIENT_SECRET = "runclub-demo-client-secret"
DEMO_REFRESH_TOKEN = "runclub-demo-refresh-token"


def knob(default: Any, help: str) -> Any:
    """A config field whose help text ``scrapy simulator --help`` shows."""
    return field(default=default, metadata={"help": help})


@dataclass
class SimulatorConfig:
    host: str = knob("127.0.0.1", "loopback address to listen on (127.0.0.1 or ::1)")
    port: int = knob(0, "0 picks a free port")
    # catalog
    size: int = knob(100_000, "catalog size in tracks")
    seed: int = knob(1, "catalog seed: same seed and size, same catalog")
    market: str = knob("US", "the account owner's country")
    recco_coverage: float = knob(0.6, "share of tracks ReccoBeats has features for")
    # behaviour
    profile: str = knob("development", "development (Feb 2026 rules) | extended")
    genre_filter: str = knob("honoured", "search's genre:'...' filter: honoured | ignored "
                                         "(matches every track and artist) | empty (any "
                                         "query with it finds nothing)")
    year_filter: str = knob("honoured", "search's year:A-B filter: honoured | ignored "
                                        "(matches every year)")
    search_max_limit: int = knob(0, "largest search limit accepted, more is 400 Invalid limit "
                                    "(0: the profile's, development 10, extended 50)")
    track_isrc: bool = knob(True, "full track objects carry external_ids.isrc")
    artist_genres: str = knob("auto", "artist objects' genres: auto (development absent, "
                                      "extended present) | present | absent | empty")
    album_endpoints: bool = knob(True, "/albums/{id}, /albums/{id}/tracks and "
                                       "/artists/{id}/albums answer (else 403)")
    owner_playlist_items: bool = knob(True, "items of the owner's playlists are readable "
                                            "(else 403)")
    null_rate: float = knob(0.1, "null entries among playlist search results")
    playlist_extras: bool = knob(True, "local files, null items, episodes in owner lists")
    recco_shuffle: bool = knob(True, "ReccoBeats rows come back in no fixed order")
    recco_stray_rows: bool = knob(False, "ReccoBeats adds a row nobody asked for")
    recco_block_default_ua: bool = knob(False, "Cloudflare 1010 for library-default User-Agents")
    # accounts
    client_id: str = knob(DEMO_CLIENT_ID, "the only client the accounts service accepts")
    client_secret: str = knob(DEMO_CLIENT_SECRET, "its client secret")
    refresh_token: str = knob(DEMO_REFRESH_TOKEN, "a refresh token valid from the start")
    access_token_ttl: int = knob(3600, "expires_in of each access token, seconds")
    token_expire_every: int = knob(0, "an access token dies after N API requests (0 = never)")
    rotate_refresh_tokens: bool = knob(False, "the token endpoint returns a new refresh token")
    # limits
    rate_limit: int = knob(0, "requests per rolling window per app (0 = off)")
    rate_window: float = knob(30.0, "length of the rolling rate window, seconds")
    rate_retry_after: int = knob(0, "Retry-After of the rate window's 429, seconds (0: 1-5 s, "
                                    "drawn; reports show lockouts of many hours with that "
                                    "body and no QUOTA_EXCEEDED)")
    quota: dict[str, int] = field(default_factory=dict, metadata={
        "help": "BUCKET=N, size of one bucket (repeatable, overrides bucket_size); buckets "
                "are " + ", ".join(QUOTA_BUCKETS)})
    bucket_size: int = knob(0, "size of every bucket not given by --quota (0 = unlimited; "
                               "reports of 2026 suggest 600 with a 86,400 s window)")
    quota_window: float = knob(0.0, "0: an exhausted bucket is locked quota_retry_after s, "
                                    "then counts from zero; >0: rolling window, seconds (a "
                                    "bucket admits a call if fewer than its size were "
                                    "admitted in the last quota_window s)")
    quota_retry_after: int = knob(86_400, "quota_window 0: how long an exhausted bucket "
                                          "stays locked, seconds")
    quota_send_retry_after: bool = knob(True, "Spotify 'normally' sends Retry-After")
    album_tracks_bucket: bool = knob(False, "/albums/{id}/tracks counts against a bucket of "
                                            "its own (album_tracks), not albums: one report "
                                            "names buckets per endpoint (playlist_items "
                                            "beside playlist_snapshot); unverified for albums")
    recco_rate_limit: int = knob(0, "ReccoBeats requests per rolling window (0 = off)")
    # faults, drawn per (URL, attempt) from fault_seed so they are reproducible
    fault_seed: int = knob(0, "seed of the fault draws")
    error_rate: float = knob(0.0, "share of requests answered 500/502/503")
    drop_rate: float = knob(0.0, "share of connections closed without a response")
    slow_rate: float = knob(0.0, "share of responses delayed by slow_seconds")
    slow_seconds: float = knob(2.0, "delay of a slow response, seconds")
    recco_latency: float = knob(0.0, "every ReccoBeats answer takes this long, seconds")
    token_latency: float = knob(0.0, "every token endpoint answer takes this long, seconds")
    malformed_rate: float = knob(0.0, "share of 200s with a truncated JSON body")
    spotify_429_rate: float = knob(0.0, "share of Spotify API requests answered with a short "
                                        "429 (Retry-After: 1), besides any rate window")
    recco_429_rate: float = knob(0.0, "share of ReccoBeats requests answered 429")
    hostile_rate: float = knob(0.0, "share of tracks on search and playlist-item pages served "
                                    "corrupted (5,000-char or odd-Unicode names, missing or "
                                    "mistyped fields, duplicates); as often per page, a huge "
                                    "total and a next URL on another host")
    # open data: Wikidata's SPARQL endpoint (/wikidata/sparql)
    wikidata_coverage: float = knob(0.7, "share of artists with a Wikidata item")
    wikidata_no_genre_rate: float = knob(0.08, "share of those items without a genre (P136)")
    wikidata_rate_limit: int = knob(0, "Wikidata queries per rolling wikidata_rate_window "
                                       "per User-Agent, over it 429 (0 = off)")
    wikidata_rate_window: float = knob(60.0, "length of Wikidata's rate window, seconds")
    wikidata_down: bool = knob(False, "every Wikidata request answers 503")
    wikidata_block_default_ua: bool = knob(False, "403 for a missing or library-default "
                                                  "User-Agent (Wikimedia's policy)")
    wikidata_latency: float = knob(0.0, "every Wikidata answer takes this long, seconds")
    # open data: MusicBrainz's recording search (/musicbrainz/ws/2/recording)
    musicbrainz_coverage: float = knob(0.7, "share of ISRCs MusicBrainz knows")
    musicbrainz_quirk_rate: float = knob(0.1, "share of recordings whose first-release-date "
                                              "is wrong (late, or from a compilation)")
    musicbrainz_rate: float = knob(0.0, "requests per second per User-Agent, averaged over "
                                        "musicbrainz_rate_window; over it 503 (0 = off; "
                                        "MusicBrainz asks for 1)")
    musicbrainz_rate_window: float = knob(10.0, "window the MusicBrainz rate is counted over, "
                                                "seconds")
    musicbrainz_send_retry_after: bool = knob(True, "MusicBrainz's rate 503 carries "
                                                    "Retry-After")
    musicbrainz_down: bool = knob(False, "every MusicBrainz request answers 503")
    musicbrainz_latency: float = knob(0.0, "every MusicBrainz answer takes this long, seconds")
    request_log: str | None = knob(None, "also append every request to this JSONL file")

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise ValueError(f"profile must be one of {', '.join(PROFILES)}, not {self.profile!r}")
        for name, modes in (("genre_filter", GENRE_FILTER_MODES),
                            ("year_filter", YEAR_FILTER_MODES),
                            ("artist_genres", ARTIST_GENRES_MODES)):
            if getattr(self, name) not in modes:
                raise ValueError(f"{name} must be one of {', '.join(modes)}, "
                                 f"not {getattr(self, name)!r}")
        unknown = set(self.quota) - set(QUOTA_BUCKETS)
        if unknown:
            raise ValueError(f"unknown quota bucket(s) {sorted(unknown)}; "
                             f"known: {', '.join(QUOTA_BUCKETS)}")
        self._check_numbers()
        if self.host not in ("127.0.0.1", "::1"):
            raise ValueError("the simulator listens on loopback only (127.0.0.1 or ::1)")

    def _check_numbers(self) -> None:
        for f in fields(self):
            if (f.name.endswith(("_rate", "_coverage"))
                    and f.name not in ("rate_limit", "musicbrainz_rate")):
                value = getattr(self, f.name)
                if not 0.0 <= value <= 1.0:
                    raise ValueError(f"{f.name} must be between 0 and 1, not {value}")
        if self.bucket_size < 0 or any(n < 0 for n in self.quota.values()):
            raise ValueError("bucket sizes must be 0 or more")
        if self.quota_window < 0:
            raise ValueError(f"quota_window must be 0 or more seconds, not {self.quota_window}")
        for rate, window in (("wikidata_rate_limit", "wikidata_rate_window"),
                             ("musicbrainz_rate", "musicbrainz_rate_window")):
            if getattr(self, rate) < 0 or getattr(self, window) <= 0:
                raise ValueError(f"{rate} must be 0 or more and {window} more than 0 seconds")
        if self.search_max_limit < 0:
            raise ValueError(f"search_max_limit must be 0 or more, not {self.search_max_limit}")

    def musicbrainz_window_limit(self) -> int:
        """Requests one client may make per ``musicbrainz_rate_window`` (0 = no limit)."""
        if self.musicbrainz_rate <= 0:
            return 0
        return max(1, round(self.musicbrainz_rate * self.musicbrainz_rate_window))

    def bucket_sizes(self) -> dict[str, int]:
        """The size of every bucket that has one: ``quota`` over ``bucket_size``."""
        sizes = {b: self.bucket_size for b in QUOTA_BUCKETS} if self.bucket_size else {}
        return {**sizes, **self.quota}

    @property
    def extended(self) -> bool:
        return self.profile == "extended"

    @property
    def search_limit_max(self) -> int:
        """The largest search ``limit`` accepted: the knob, else the profile's."""
        return self.search_max_limit or (50 if self.extended else 10)

    @property
    def artist_genres_served(self) -> str:
        """present | absent | empty: what artist objects carry as ``genres``."""
        if self.artist_genres == "auto":
            return "present" if self.extended else "absent"
        return self.artist_genres
