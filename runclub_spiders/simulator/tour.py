"""A short walk through every simulated service, as ``scrapy simulator --tour`` prints it.

It uses a plain blocking HTTP client on purpose: it shows what any Spotify client sees from
the simulator, independent of the crawler.
"""

from __future__ import annotations

import requests

from runclub_spiders.simulator.server import Simulator


def run_tour(simulator: Simulator) -> bool:
    env = simulator.env()
    api, recco = env["SPOTIFY_API_BASE_URL"], env["RECCOBEATS_BASE_URL"]
    session = requests.Session()
    session.headers["User-Agent"] = "runclub-spiders-tour/1.0 ( simulator tour )"
    token = session.post(f"{env['SPOTIFY_ACCOUNTS_BASE_URL']}/api/token",
                         data={"grant_type": "refresh_token",
                               "refresh_token": env["SPOTIFY_REFRESH_TOKEN"]},
                         auth=(env["SPOTIFY_CLIENT_ID"], env["SPOTIFY_CLIENT_SECRET"]), timeout=10)
    checks: list[tuple[str, bool, str]] = []
    checks.append(("token (refresh_token grant)", token.status_code == 200,
                   f"HTTP {token.status_code}, expires_in {token.json().get('expires_in')}"))
    if token.status_code != 200:
        return _report(checks)
    session.headers["Authorization"] = f"Bearer {token.json()['access_token']}"

    query = 'genre:"outlaw country" year:1970-1979'
    page = session.get(f"{api}/search", params={"q": query, "type": "track", "limit": 10,
                                                "market": env["SPOTIFY_MARKET"]}, timeout=10)
    tracks = page.json().get("tracks", {}) if page.ok else {}
    checks.append((f"search {query}", page.ok,
                   f"{tracks.get('total', 0)} tracks, {len(tracks.get('items', []))} on page 1"))
    too_big = session.get(f"{api}/search", params={"q": "rock", "type": "track", "limit": 50},
                          timeout=10)
    expected = 400 if env["SPOTIFY_API_PROFILE"] == "development" else 200
    checks.append(("search limit=50", too_big.status_code == expected,
                   f"HTTP {too_big.status_code} (expected {expected} in this profile)"))

    mine = session.get(f"{api}/me/playlists", params={"limit": 50}, timeout=10)
    lists = mine.json().get("items", []) if mine.ok else []
    checks.append(("/me/playlists", mine.ok, f"{len(lists)} playlists"))
    if lists:
        items = session.get(f"{api}/playlists/{lists[0]['id']}/items", params={"limit": 50},
                            timeout=10)
        checks.append((f"items of {lists[0]['name']!r}", items.ok,
                       f"{items.json().get('total', 0) if items.ok else 0} items"))

    ids = [t["id"] for t in tracks.get("items", []) if t]
    if ids:
        features = session.get(f"{recco}/audio-features", params={"ids": ",".join(ids)},
                               timeout=10)
        rows = features.json().get("content", []) if features.ok else []
        checks.append(("ReccoBeats audio-features", features.ok,
                       f"{len(rows)} of {len(ids)} tracks have features"))
    found = session.get(f"{api}/search", params={"q": "year:1990-1999", "type": "track",
                                                 "limit": 10}, timeout=10)
    _open_data(simulator, session, found.json()["tracks"]["items"] if found.ok else [], checks)
    return _report(checks)


def _open_data(simulator: Simulator, session: requests.Session, tracks: list,
               checks: list[tuple[str, bool, str]]) -> None:
    """One Wikidata query and one MusicBrainz search for ``tracks``."""
    env = simulator.env()
    artists = list(dict.fromkeys(a["id"] for t in tracks if t for a in t["artists"]))
    if artists:
        values = " ".join(f'"{a}"' for a in artists)
        query = (f"SELECT ?spotify ?item ?genreLabel WHERE {{ VALUES ?spotify {{ {values} }} "
                 "?item wdt:P1902 ?spotify . OPTIONAL { ?item wdt:P136 ?genre . } "
                 'SERVICE wikibase:label { bd:serviceParam wikibase:language "en". } }')
        answer = session.post(env["WIKIDATA_SPARQL_URL"], data={"query": query,
                                                                "format": "json"}, timeout=10)
        rows = answer.json()["results"]["bindings"] if answer.ok else []
        found = {r["spotify"]["value"] for r in rows}
        checks.append(("Wikidata SPARQL", answer.ok,
                       f"{len(found)} of {len(artists)} artists have an item, "
                       f"{sum('genreLabel' in r for r in rows)} genre labels"))
    isrcs = [t["external_ids"]["isrc"] for t in tracks if t and t.get("external_ids")]
    if isrcs:
        search = session.get(f"{env['MUSICBRAINZ_BASE_URL']}/ws/2/recording", timeout=10,
                             params={"query": " OR ".join(f"isrc:{i}" for i in isrcs),
                                     "fmt": "json", "limit": 100})
        count = search.json().get("count", 0) if search.ok else 0
        checks.append(("MusicBrainz ISRC search", search.ok,
                       f"{count} recordings for {len(isrcs)} ISRCs"))


def _report(checks: list[tuple[str, bool, str]]) -> bool:
    for name, ok, detail in checks:
        print(f"  [{'ok' if ok else 'FAIL'}] {name}: {detail}")
    return all(ok for _, ok, _ in checks)
