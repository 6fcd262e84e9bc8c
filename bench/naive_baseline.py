"""The naive baseline: the crawl a user following the original brief writes with spotipy.

Why it exists: the benchmark compares ``runclub_spiders`` against what the owner's brief (the
project's original written request, not part of this repository) leads a careful but
unoptimised user to write with spotipy and requests, run against the same simulator in
development mode. The brief's "Core Pipeline" is followed phase by phase, in order, with
nothing clever added:

1. Auth. spotipy has no parameter for the Accounts URL (``SpotifyOAuth.OAUTH_TOKEN_URL`` is
   a hard-coded class attribute), so the access token comes from one
   ``POST {accounts}/api/token`` (``grant_type=refresh_token``, client id and secret as HTTP
   Basic) and goes to ``spotipy.Spotify(auth=token)`` with ``sp.prefix`` pointed at the
   simulator. A 401 from the API refreshes the token and repeats the call.
2. Seed expansion. Every keyword and every pattern of the brief's "Sourcing Strategy and Seed
   Keywords" section: the editorial keywords, each "energy" pattern x each umbrella (plus the
   examples listed there), each decade pattern x each decade (with the optional workout
   angle), the trend-feeder names, each cadence pattern x each BPM, and each sub-genre
   pattern x each sub-genre. Lowercased, single-spaced, de-duplicated, in the brief's order.
3. Discovery. For each term, ``sp.search(q=term, type="track", limit=10, offset=...,
   market=market)`` paging by 10 (development mode's maximum) until ``next`` is None or the
   offset reaches 1,000. Unique track IDs are collected in first-seen order. Discovery stops
   once it holds ``3 * target_tracks`` candidates (headroom for the filters).
4. Canonical track resolution. ``GET /tracks?ids=`` answers 403 in development mode, so every
   candidate is looked up once with ``sp.track(id, market=market)``, as the brief's
   "Canonical Track Resolution" asks, even though the search page already held the object.
5. Artist metadata. ``sp.artist(id)`` once for each unique primary artist (``/artists?ids=``
   is 403 too; genres come back empty in development mode, but the brief asks for them).
6. ReccoBeats. ``GET {recco}/audio-features?ids=<40 Spotify IDs, comma-separated>`` for every
   candidate, rows mapped back through ``row["href"]`` (``open.spotify.com/track/<id>``).
7. Filters, at the end: 120,000 <= duration_ms <= 360,000, playable in the market
   (``is_playable`` true, or the market in ``available_markets``), dedupe by ISRC keeping the
   first seen, features present; then the first ``target_tracks`` rows are exported. No
   umbrella x decade balancing: that would be the optimisation the baseline does not have.

Robustness (a baseline must be correct, not fragile): 429 sleeps for Retry-After, 5xx,
dropped connections and truncated JSON are retried up to 4 times with exponential backoff,
other 4xx skip the item. spotipy's own urllib3 retry layer is not used (a plain
``requests.Session`` is passed in) so that every attempt is counted here and a Retry-After
that outlasts the time budget (a quota lockout says 86,400 s) ends the run instead of
sleeping for a day. The time budget covers the whole run; when it runs out the current phase
stops, later phases are skipped, and only tracks that finished every phase can be exported.

``stopped_because`` is ``target_candidates`` (3x the target found), ``seeds_exhausted`` (every
term searched first), ``time_budget (<phase>)`` or ``retry_after_beyond_budget (<phase>)``.
Request counts are every attempt this code made (retries included), per service; the extra
keys (``accounts_requests``, ``retries``, ``errors``, ``candidates``, ``resolved_tracks``,
``tracks_with_features``, ``seed_terms_planned``) explain them.

Run: ``.venv/bin/python -m bench.naive_baseline [size] [target_tracks]`` (defaults 100000 and
15000). It starts a simulator, runs the baseline, cross-checks the request counts with the
simulator's log and prints the result as JSON (``exported_ids`` is shortened to its length).
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

import requests
import spotipy

from runclub_spiders.simulator import Simulator

USER_AGENT = "runclub-baseline/1.0"
SEARCH_PAGE = 10                 # development mode: search limit at most 10
SEARCH_MAX_OFFSET = 1000         # Spotify: offset + limit <= 1000
RECCO_BATCH = 40
MIN_DURATION_MS, MAX_DURATION_MS = 120_000, 360_000
MAX_RETRIES = 4                  # per request, for 5xx / dropped connections / bad JSON
TIMEOUT_S = 10
TRACK_HREF = re.compile(r"open\.spotify\.com/track/([0-9A-Za-z]{22})")

# ------------------------------------------------------------------ the brief's seed lists
EDITORIAL = ["workout", "running", "run mix", "cardio", "HIIT", "gym", "pump up",
             "training motivation", "beast mode", "treadmill", "power run",
             "marathon training", "tempo run", "sprint workout", "interval training"]
UMBRELLAS = ["Pop", "Rock", "Indie", "Hip-Hop", "R&B", "Electronic", "Latin", "Metal",
             "Country", "Afrobeat", "K-pop", "Bollywood", "Reggaeton", "EDM", "House",
             "Techno"]
UMBRELLA_PATTERNS = ["{x} workout", "{x} running", "{x} cardio", "{x} HIIT", "{x} pump up",
                     "{x} gym", "{x} power run", "{x} interval", "fast {x}",
                     "high energy {x}", "{x} bangers", "uptempo {x}"]
UMBRELLA_EXAMPLES = ["rock running", "fast rock", "indie workout", "uptempo indie",
                     "latin cardio", "reggaeton running", "electronic workout", "edm running",
                     "house workout", "techno running", "hip-hop workout", "rap running",
                     "metal workout", "punk running"]
DECADES = ["70s", "80s", "90s", "2000s", "2010s", "2020s"]
DECADE_PATTERNS = ["{x} hits", "best of {x}", "{x} pop hits", "{x} rock hits",
                   "{x} dance hits", "{x} throwbacks", "throwback hits", "nostalgia {x}",
                   "club hits {x}", "party hits {x}", "{x} workout", "{x} running"]
TREND_FEEDERS = ["Top 50 USA", "Viral 50 USA", "Top 50 Global", "Viral 50 Global",
                 "New Music Friday", "mint", "Dance Rising", "Fresh Finds", "Rock This",
                 "RapCaviar", "Pop Rising", "Viva Latino", "Today's Top Hits", "New Joints",
                 "New Music Pop", "New Music Rock"]
BPMS = ["150", "155", "160", "165", "170", "175", "180"]
BPM_PATTERNS = ["{x} bpm", "{x} bpm workout", "{x} bpm run mix", "cadence {x} running",
                "{x} spm running"]
SUBGENRES = ["dance pop", "electropop", "hyperpop",
             "alternative rock", "indie rock", "pop punk", "emo", "punk rock",
             "house", "big room", "techno", "trance", "drum & bass", "dubstep", "electro house",
             "trap", "boom bap", "grime", "drill", "contemporary r&b",
             "reggaeton", "dembow", "latin pop", "urbano latino",
             "afrobeat", "amapiano", "bhangra", "bollywood", "k-pop", "j-pop",
             "metalcore", "hard rock", "hardcore punk",
             "nu disco", "funk", "disco"]
SUBGENRE_PATTERNS = ["{x} workout", "{x} running", "{x} cardio", "fast {x}",
                     "high energy {x}"]


def expand_seeds() -> list[str]:
    """Every keyword and pattern x value of the brief's sourcing section, deduplicated."""
    def fill(patterns: list[str], values: list[str]) -> list[str]:
        return [p.format(x=v) for v in values for p in patterns]

    raw = (EDITORIAL + fill(UMBRELLA_PATTERNS, UMBRELLAS) + UMBRELLA_EXAMPLES
           + fill(DECADE_PATTERNS, DECADES) + TREND_FEEDERS + fill(BPM_PATTERNS, BPMS)
           + fill(SUBGENRE_PATTERNS, SUBGENRES))
    return list(dict.fromkeys(" ".join(term.lower().split()) for term in raw))


class _OutOfTimeError(Exception):
    """The time budget ran out (or a Retry-After would outlast it)."""


class _Baseline:
    def __init__(self, env: dict[str, str], deadline: float) -> None:
        self.env, self.deadline = env, deadline
        self.counts = {"spotify": 0, "reccobeats": 0, "accounts": 0, "retries": 0,
                       "errors": 0}
        self.session = requests.Session()            # no urllib3 retry: every try is ours
        self.recco = requests.Session()
        self.recco.headers["User-Agent"] = USER_AGENT
        self.sp = spotipy.Spotify(auth=self._token(), requests_session=self.session,
                                  requests_timeout=TIMEOUT_S)
        self.sp.prefix = env["SPOTIFY_API_BASE_URL"].rstrip("/") + "/"

    # -------------------------------------------------------------- retry plumbing
    def _check_time(self) -> None:
        if time.monotonic() >= self.deadline:
            raise _OutOfTimeError

    def _sleep(self, seconds: float) -> None:
        if time.monotonic() + seconds >= self.deadline:
            raise _OutOfTimeError("retry_after_beyond_budget")
        time.sleep(seconds)

    def _wait_retry_after(self, headers: Any, failures: int) -> None:
        """A 429: count a retry and sleep for Retry-After (1 s if it says 0; 2 ** failures s
        if it is missing or unreadable). A 429 is not a failure: the caller's count stays."""
        try:
            seconds = max(0.0, float((headers or {}).get("Retry-After", "")))
        except ValueError:
            seconds = 2.0 ** failures
        self.counts["retries"] += 1
        self._sleep(seconds or 1.0)

    def _token(self) -> str:
        """A fresh access token from the refresh token (the brief's unattended-run grant)."""
        url = self.env["SPOTIFY_ACCOUNTS_BASE_URL"].rstrip("/") + "/api/token"
        data = {"grant_type": "refresh_token",
                "refresh_token": self.env["SPOTIFY_REFRESH_TOKEN"]}
        auth = (self.env["SPOTIFY_CLIENT_ID"], self.env["SPOTIFY_CLIENT_SECRET"])
        failures = 0
        while True:
            self._check_time()
            self.counts["accounts"] += 1
            try:
                response = self.session.post(url, data=data, auth=auth, timeout=TIMEOUT_S)
                if response.status_code == 429:
                    self._wait_retry_after(response.headers, failures)
                    continue
                if response.status_code < 500:
                    response.raise_for_status()      # 400 invalid_grant: nothing to retry
                    return response.json()["access_token"]
            except (requests.ConnectionError, requests.Timeout, ValueError, KeyError):
                pass
            failures += 1
            if not self._back_off(failures):
                raise RuntimeError("Spotify Accounts: no access token after retries")

    def _back_off(self, failures: int) -> bool:
        """Sleep before retry number ``failures``; False once the retries are spent."""
        if failures > MAX_RETRIES:
            return False
        self.counts["retries"] += 1
        self._sleep(0.5 * 2 ** (failures - 1))
        return True

    def spotify(self, call: Callable[[], Any]) -> Any:
        """One spotipy call with 401 refresh, 429 Retry-After and 5xx retries; None = skip."""
        failures = refreshes = 0
        while True:
            self._check_time()
            self.counts["spotify"] += 1
            try:
                result = call()
            except spotipy.SpotifyException as exc:
                if exc.http_status == 401 and refreshes < 3:
                    refreshes += 1
                    self.sp.set_auth(self._token())
                    continue
                if exc.http_status == 429:
                    self._wait_retry_after(exc.headers, failures)
                    continue
                if exc.http_status < 500:
                    self.counts["errors"] += 1        # 400/403/404: skip this item
                    return None
            except (requests.ConnectionError, requests.Timeout):
                pass
            else:
                if result is not None:
                    return result
                # spotipy turns a truncated JSON body into None: retry it like a 5xx
            failures += 1
            if not self._back_off(failures):
                self.counts["errors"] += 1
                return None

    def audio_features(self, ids: list[str]) -> list[dict[str, Any]] | None:
        url = self.env["RECCOBEATS_BASE_URL"].rstrip("/") + "/audio-features"
        failures = 0
        while True:
            self._check_time()
            self.counts["reccobeats"] += 1
            try:
                response = self.recco.get(url, params={"ids": ",".join(ids)},
                                          timeout=TIMEOUT_S)
                if response.status_code == 429:
                    self._wait_retry_after(response.headers, failures)
                    continue
                if response.status_code < 500:
                    if response.status_code != 200:
                        self.counts["errors"] += 1
                        return None
                    return response.json().get("content") or []
            except (requests.ConnectionError, requests.Timeout, ValueError):
                pass
            failures += 1
            if not self._back_off(failures):
                self.counts["errors"] += 1
                return None


def _batches(items: list[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def run_baseline(env: dict[str, str], *, target_tracks: int, market: str = "US",
                 time_budget_s: float = 600) -> dict:
    """Search, look up, enrich and filter the naive way; return what it cost and produced."""
    started = time.monotonic()
    terms = expand_seeds()
    want = 3 * target_tracks
    found: dict[str, None] = {}                      # unique track IDs, first-seen order
    details: dict[str, dict[str, Any]] = {}          # sp.track() objects
    artists: dict[str, dict[str, Any] | None] = {}   # sp.artist() objects
    features: dict[str, dict[str, Any]] = {}         # ReccoBeats rows by Spotify ID
    stats = {"search_terms": 0, "search_requests": 0, "track_lookups": 0,
             "artist_lookups": 0}
    stopped_because, phase = "seeds_exhausted", "search"
    base = None
    try:
        base = _Baseline(env, started + time_budget_s)
        sp = base.sp

        # 2-3. discovery: every term, every page, until 3x the target is in hand
        for term in terms:
            if len(found) >= want:
                break
            stats["search_terms"] += 1
            offset = 0
            while offset < SEARCH_MAX_OFFSET and len(found) < want:
                stats["search_requests"] += 1
                page = base.spotify(lambda t=term, o=offset: sp.search(
                    q=t, type="track", limit=SEARCH_PAGE, offset=o, market=market))
                tracks = (page or {}).get("tracks") or {}
                for item in tracks.get("items") or []:
                    if item and item.get("id"):
                        found.setdefault(item["id"], None)
                if not tracks.get("next"):
                    break
                offset += SEARCH_PAGE
        if len(found) >= want:
            stopped_because = "target_candidates"

        # 4. canonical track resolution, one by one (the batch endpoint is 403)
        phase = "track_lookups"
        for track_id in found:
            stats["track_lookups"] += 1
            track = base.spotify(lambda i=track_id: sp.track(i, market=market))
            if track and track.get("id"):
                details[track_id] = track

        # 5. artist metadata for each unique primary artist
        phase = "artist_lookups"
        for track in details.values():
            artist_id = ((track.get("artists") or [{}])[0] or {}).get("id")
            if artist_id and artist_id not in artists:
                stats["artist_lookups"] += 1
                artists[artist_id] = base.spotify(lambda a=artist_id: sp.artist(a))

        # 6. ReccoBeats audio features, 40 Spotify IDs a request
        phase = "reccobeats"
        for batch in _batches(list(found), RECCO_BATCH):
            asked = set(batch)
            for row in base.audio_features(batch) or []:
                match = TRACK_HREF.search(str((row or {}).get("href") or ""))
                if match and match.group(1) in asked:
                    features.setdefault(match.group(1), row)
        phase = "done"
    except _OutOfTimeError as exc:
        stopped_because = f"{exc.args[0] if exc.args else 'time_budget'} ({phase})"

    # 7. filters, in first-seen order, only over tracks that finished every phase
    exported: list[str] = []
    seen_isrc: set[str] = set()
    for track_id in found:
        track = details.get(track_id)
        if track is None or track_id not in features:
            continue
        duration = track.get("duration_ms")
        if not isinstance(duration, int) or not MIN_DURATION_MS <= duration <= MAX_DURATION_MS:
            continue
        if not (track.get("is_playable") is True
                or market in (track.get("available_markets") or [])):
            continue
        isrc = ((track.get("external_ids") or {}).get("isrc") or "").upper()
        if isrc:
            if isrc in seen_isrc:
                continue
            seen_isrc.add(isrc)
        exported.append(track_id)
        if len(exported) >= target_tracks:
            break

    counts = base.counts if base else {"spotify": 0, "reccobeats": 0, "accounts": 0,
                                       "retries": 0, "errors": 0}
    return {"spotify_requests": counts["spotify"],
            "reccobeats_requests": counts["reccobeats"],
            "exported_tracks": len(exported),
            "wall_seconds": round(time.monotonic() - started, 3),
            "stopped_because": stopped_because,
            **stats,
            "exported_ids": exported,
            # extras, for reading the numbers above
            "accounts_requests": counts["accounts"], "retries": counts["retries"],
            "errors": counts["errors"], "candidates": len(found),
            "resolved_tracks": len(details), "tracks_with_features": len(features),
            "seed_terms_planned": len(terms)}


def main(argv: list[str]) -> None:
    size = int(argv[0]) if argv else 100_000
    target = int(argv[1]) if len(argv) > 1 else 15_000
    with Simulator(size=size, profile="development") as sim:
        env = sim.env()
        result = run_baseline(env, target_tracks=target, market=env.get("SPOTIFY_MARKET", "US"))
        log = sim.requests()
    logged = {service: sum(1 for e in log if e.service == service)
              for service in ("spotify", "reccobeats", "accounts")}
    ours = {"spotify": result["spotify_requests"], "reccobeats": result["reccobeats_requests"],
            "accounts": result["accounts_requests"]}
    ids = result["exported_ids"]
    printable = {**result, "exported_ids": f"<{len(ids)} ids>", "size": size,
                 "target_tracks": target,
                 "cross_check": {"simulator_log": logged, "counters": ours,
                                 "match": logged == ours}}
    print(json.dumps(printable, indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
