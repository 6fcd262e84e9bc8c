"""The simulator's Spotify responses, in both profiles, against Spotify's published OpenAPI
definition as sonallux/spotify-web-api corrects it (``fixed-spotify-open-api.yml``,
``info.version`` 2026.5.31, vendored as ``tests/data/spotify-openapi.yml``; tests/data/README.md
says where it came from), validated by openapi-core over real HTTP.

Two edits are made to the published definition, each stated once below and each shown to be
necessary by a test of its own:

* ``PLAYLIST_ITEM_MAPPING`` (both profiles): the definition's ``item``/``track`` discriminator
  cannot be resolved as published, so no playlist item, Spotify's own included, could validate.
* ``DEVELOPMENT_REMOVED_REQUIRED`` (development profile only): fields the February 2026
  migration guide removes for development-mode apps that the schema still marks required.

Schema validation runs on simulators with ``null_rate=0, playlist_extras=False``: ``null``
entries among playlist search results and local-file or ``null`` playlist items are what Spotify
really sends (docs/simulator.md, "Response shapes"), but the published schema has no room
for them. ``test_published_schema_rejects_only_the_real_world_nulls`` shows that this is the
only thing those two knobs hide.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from jsonschema.exceptions import ValidationError
from openapi_core import OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse
from openapi_schema_validator import OAS30Validator

from runclub_spiders.simulator import Simulator
from runclub_spiders.simulator.catalog import OWNER_ID
from tests.conftest import api_session

SPEC_PATH = Path(__file__).resolve().parent / "data" / "spotify-openapi.yml"
PROFILES = ("development", "extended")

# The February 2026 migration guide ("Web API changes for development mode apps", listed in
# docs/simulator.md, "Sources") removes these fields for development-mode apps, yet the
# published schema still lists them as required. They are the ONLY relaxations: (schema, field).
DEVELOPMENT_REMOVED_REQUIRED: tuple[tuple[str, str], ...] = (
    ("AlbumBase", "available_markets"),               # MG: Album available_markets removed
    ("AlbumObject", "label"),                         # MG: Album label removed
    ("AlbumObject", "popularity"),                    # MG: Album popularity removed
    ("ArtistDiscographyAlbumObject", "album_group"),  # MG: album_group (artist albums) removed
)
PROFILE_RELAXATIONS = {"development": DEVELOPMENT_REMOVED_REQUIRED, "extended": ()}

# PlaylistTrackObject.item/.track carry ``discriminator: {propertyName: type}`` without a mapping.
# OpenAPI 3.0's implicit mapping then points at "#/components/schemas/track", which does not
# exist, so validation fails for every track item. This is the mapping the definition means; it
# relaxes nothing (each item must then validate as the object its ``type`` names).
PLAYLIST_ITEM_MAPPING = {"track": "#/components/schemas/TrackObject",
                         "episode": "#/components/schemas/EpisodeObject"}

UNKNOWN_ID = "0000000000000000000000"


# ---------------------------------------------------------------------------- the definition
@cache
def published_spec() -> dict[str, Any]:
    """The published definition, parsed once per test session (it is 286 KB)."""
    with SPEC_PATH.open(encoding="utf-8") as handle:
        return yaml.load(handle, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def _schema(spec: dict[str, Any], name: str) -> dict[str, Any]:
    return spec["components"]["schemas"][name]


def _drop_required(spec: dict[str, Any], schema_name: str, field: str) -> None:
    """Remove ``field`` from the one ``required`` list of ``schema_name`` that names it (the
    schema itself or one of its inline ``allOf`` parts); fail loudly if the spec has moved on."""
    schema = _schema(spec, schema_name)
    parts = [schema, *(p for p in schema.get("allOf", ()) if "$ref" not in p)]
    holders = [p for p in parts if field in p.get("required", ())]
    assert len(holders) == 1, f"{schema_name}.{field} is not required exactly once any more"
    holders[0]["required"].remove(field)
    if not holders[0]["required"]:
        del holders[0]["required"]          # OpenAPI 3.0 wants a non-empty list or none


@cache
def openapi(relaxations: tuple[tuple[str, str], ...] = (), fix_mapping: bool = True) -> OpenAPI:
    """An openapi-core validator for a variant of the definition, matching any simulator port."""
    spec = copy.deepcopy(published_spec())
    spec["servers"] = [{"url": "http://127.0.0.1:{port}/spotify/v1",
                        "variables": {"port": {"default": "80"}}}]
    if fix_mapping:
        for key in ("item", "track"):
            prop = _schema(spec, "PlaylistTrackObject")["properties"][key]
            prop["discriminator"]["mapping"] = dict(PLAYLIST_ITEM_MAPPING)
    for schema_name, field in relaxations:
        _drop_required(spec, schema_name, field)
    return OpenAPI.from_dict(spec)


def profile_api(profile: str) -> OpenAPI:
    return openapi(PROFILE_RELAXATIONS[profile])


def validate(api: OpenAPI, response: requests.Response) -> None:
    api.validate_response(RequestsOpenAPIRequest(response.request),
                          RequestsOpenAPIResponse(response))


def schema_messages(exc: BaseException) -> list[str]:
    """Every jsonschema message under an openapi-core validation error, nested ones included."""
    def walk(error: ValidationError) -> Iterator[str]:
        yield error.message
        for sub in error.context or ():
            yield from walk(sub)

    messages: list[str] = []
    cause: BaseException | None = exc
    while cause is not None:
        for error in getattr(cause, "schema_errors", ()):
            messages.extend(walk(error))
        cause = cause.__cause__
    return messages


def rejected(api: OpenAPI, response: requests.Response) -> list[str]:
    """The schema messages for a response that must NOT validate."""
    try:
        validate(api, response)
    except Exception as exc:  # openapi-core wraps the schema errors in its own exceptions
        messages = schema_messages(exc)
        assert messages, f"rejected, but not by the schema: {exc!r}"
        return messages
    pytest.fail(f"{response.request.path_url} validated but should not have")


def with_body(response: requests.Response, body: Any) -> requests.Response:
    """The same real response and request with a different JSON body."""
    forged = copy.copy(response)
    forged._content = json.dumps(body).encode()
    return forged


def error_envelope_validator() -> OAS30Validator:
    """The body schema every Spotify error response shares (components/responses/NotFound...)."""
    spec = published_spec()
    body = copy.deepcopy(
        spec["components"]["responses"]["NotFound"]["content"]["application/json"]["schema"])
    assert body["properties"]["error"] == {"$ref": "#/components/schemas/ErrorObject"}
    body["properties"]["error"] = _schema(spec, "ErrorObject")
    return OAS30Validator(body)


# ---------------------------------------------------------------------------- fixtures
def schema_sim(factory: Callable[..., Simulator], profile: str, **overrides: Any) -> Simulator:
    # null_rate=0 and playlist_extras=False: see the module docstring.
    return factory(profile=profile, null_rate=0, playlist_extras=False, **overrides)


def owned(sim: Simulator):
    return next(p for p in sim.catalog.playlists.values()
                if p.owner_id == OWNER_ID and p.readable)


def collaborative(sim: Simulator):
    return next(p for p in sim.catalog.playlists.values()
                if p.owner_id != OWNER_ID and p.readable and p.collaborative)


def others(sim: Simulator):
    return next(p for p in sim.catalog.playlists.values()
                if not p.readable and not p.editorial)


def editorial(sim: Simulator):
    return next(p for p in sim.catalog.playlists.values() if p.editorial)


def unplayable_track(sim: Simulator):
    return next(t for t in sim.catalog.tracks if sim.config.market not in t.markets)


def various_artists_album(sim: Simulator):
    return next(a for a in sim.catalog.albums if not a.artist_idxs)


def artist_with_genres(sim: Simulator):
    return next(a for a in sim.catalog.artists if a.genres)


def album_artist(sim: Simulator):
    """The main artist of the first album (an original, so never "Various Artists")."""
    return sim.catalog.artists[sim.catalog.albums[0].artist_idxs[0]]


@dataclass(frozen=True)
class Case:
    """One request; ``path`` gives (path and query, the id the body must carry or None)."""

    name: str
    path: Callable[[Simulator], tuple[str, str | None]]
    development: int = 200
    extended: int = 200

    def status(self, profile: str) -> int:
        return getattr(self, profile)


def _cat(sim: Simulator):
    return sim.catalog


CASES = (
    Case("search-track", lambda s: ("/search?q=rock&type=track", None)),
    Case("search-track-market", lambda s: ("/search?q=rock&type=track&limit=10&market=US", None)),
    Case("search-artist", lambda s: ("/search?q=rock&type=artist", None)),
    Case("search-playlist", lambda s: ("/search?q=running&type=playlist", None)),
    Case("search-combined", lambda s: ("/search?q=rock&type=track,artist,playlist", None)),
    Case("search-album-empty", lambda s: ("/search?q=rock&type=album", None)),
    Case("track", lambda s: (f"/tracks/{_cat(s).tracks[0].id}", _cat(s).tracks[0].id)),
    Case("track-market", lambda s: (f"/tracks/{_cat(s).tracks[0].id}?market=US",
                                    _cat(s).tracks[0].id)),
    Case("track-market-unplayable", lambda s: (f"/tracks/{unplayable_track(s).id}?market=US",
                                               unplayable_track(s).id)),
    Case("tracks-batch", lambda s: ("/tracks?ids=" + ",".join(
        t.id for t in _cat(s).tracks[:3]), None), development=403),
    Case("artist", lambda s: (f"/artists/{artist_with_genres(s).id}",
                              artist_with_genres(s).id)),
    Case("artists-batch", lambda s: ("/artists?ids=" + ",".join(
        a.id for a in _cat(s).artists[:3]), None), development=403),
    Case("artist-albums", lambda s: (f"/artists/{album_artist(s).id}/albums", None)),
    Case("album", lambda s: (f"/albums/{_cat(s).albums[0].id}", _cat(s).albums[0].id)),
    Case("album-various-artists", lambda s: (f"/albums/{various_artists_album(s).id}?market=US",
                                             various_artists_album(s).id)),
    Case("albums-batch", lambda s: ("/albums?ids=" + ",".join(
        a.id for a in _cat(s).albums[:3]), None), development=403),
    Case("album-tracks", lambda s: (f"/albums/{_cat(s).albums[0].id}/tracks?limit=5", None)),
    Case("playlist-owned", lambda s: (f"/playlists/{owned(s).id}", owned(s).id)),
    Case("playlist-collaborative", lambda s: (f"/playlists/{collaborative(s).id}",
                                              collaborative(s).id)),
    Case("playlist-others", lambda s: (f"/playlists/{others(s).id}", others(s).id)),
    Case("playlist-editorial", lambda s: (f"/playlists/{editorial(s).id}", editorial(s).id),
         development=404),
    Case("playlist-items-owned", lambda s: (f"/playlists/{owned(s).id}/items?limit=50", None)),
    Case("playlist-items-market", lambda s: (
        f"/playlists/{owned(s).id}/items?market=US&additional_types=track,episode", None)),
    Case("playlist-items-others", lambda s: (f"/playlists/{others(s).id}/items", None),
         development=403),
    Case("playlist-tracks-legacy", lambda s: (f"/playlists/{owned(s).id}/tracks", None),
         development=403),
    Case("me", lambda s: ("/me", OWNER_ID)),
    Case("me-playlists", lambda s: ("/me/playlists?limit=50", None)),
)
CASE_BY_NAME = {c.name: c for c in CASES}


def fetch(sim: Simulator, case: Case, session: requests.Session | None = None
          ) -> tuple[requests.Response, str | None]:
    path, expected_id = case.path(sim)
    session = session or api_session(sim)
    return session.get(sim.spotify_api_base_url + path, timeout=10), expected_id


def pages(body: Any) -> Iterator[dict[str, Any]]:
    """Every paging object inside a body."""
    if isinstance(body, dict):
        if {"items", "total", "limit", "offset"} <= body.keys():
            yield body
        for value in body.values():
            yield from pages(value)
    elif isinstance(body, list):
        for value in body:
            yield from pages(value)


# ---------------------------------------------------------------------------- the endpoints
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
@pytest.mark.parametrize("profile", PROFILES)
def test_response_matches_published_schema(simulator_factory, profile: str, case: Case) -> None:
    sim = schema_sim(simulator_factory, profile)
    response, expected_id = fetch(sim, case)
    assert response.status_code == case.status(profile), response.text[:300]
    body = response.json()
    if response.status_code == 404:
        # GET /playlists/{id} declares no 404 in the definition, though Spotify sends one for
        # editorial lists; the body still has to be the shared error shape.
        error_envelope_validator().validate(body)
        assert body == {"error": {"status": 404, "message": "Resource not found"}}
        return
    validate(profile_api(profile), response)
    if response.status_code != 200:
        assert body == {"error": {"status": response.status_code, "message": "Forbidden"}}
        return
    if expected_id is not None:
        assert body["id"] == expected_id
    found = list(pages(body))
    for page in found:      # validation of empty pages would prove little
        if page["href"].split("?")[0].endswith("/search") and "type=album" in page["href"]:
            assert page["items"] == [] and page["total"] == 0   # albums are not searchable
        else:
            assert page["items"], page["href"]
    if case.name.startswith(("search", "album-tracks", "playlist-items", "me-playlists")):
        assert found


@pytest.mark.parametrize("profile", PROFILES)
def test_playlist_items_key_follows_ownership(simulator_factory, profile: str) -> None:
    sim = schema_sim(simulator_factory, profile)
    session = api_session(sim)
    for case_name, readable in (("playlist-owned", True), ("playlist-collaborative", True),
                                ("playlist-others", False)):
        response, _ = fetch(sim, CASE_BY_NAME[case_name], session)
        body = response.json()
        if readable or profile == "extended":
            assert body["items"]["items"], case_name
            assert body["items"]["total"] == len(sim.catalog.playlists[body["id"]].track_idxs)
        else:
            assert "items" not in body     # MG: "the items field will be absent"


@pytest.mark.parametrize("profile", PROFILES)
def test_unauthorized_responses_match_schema(simulator_factory, profile: str) -> None:
    sim = schema_sim(simulator_factory, profile)
    api = profile_api(profile)
    bad = requests.Session()
    bad.headers["Authorization"] = "Bearer not-a-token"
    checked = []
    for case in CASES:
        for session in (bad, requests.Session()):        # a wrong token, then no token at all
            response, _ = fetch(sim, case, session)
            assert response.status_code == 401, (case.name, response.text)
            validate(api, response)
            assert response.json()["error"]["status"] == 401
            assert response.headers["WWW-Authenticate"].startswith('Bearer realm="spotify"')
            checked.append(case.name)
    assert len(checked) == 2 * len(CASES)


@pytest.mark.parametrize("profile", PROFILES)
def test_rate_limit_429_matches_schema(simulator_factory, profile: str) -> None:
    sim = schema_sim(simulator_factory, profile, rate_limit=1)
    api = profile_api(profile)
    session = api_session(sim)
    first, _ = fetch(sim, CASE_BY_NAME["track"], session)
    assert first.status_code == 200
    for name in ("track", "search-track", "playlist-owned", "me"):
        response, _ = fetch(sim, CASE_BY_NAME[name], session)
        assert response.status_code == 429
        validate(api, response)
        assert response.json() == {"error": {"status": 429,
                                             "message": "API rate limit exceeded"}}
        assert 1 <= int(response.headers["Retry-After"]) <= 5


@pytest.mark.parametrize("profile", PROFILES)
def test_quota_429_matches_schema(simulator_factory, profile: str) -> None:
    sim = schema_sim(simulator_factory, profile, quota={"search": 1})
    api = profile_api(profile)
    session = api_session(sim)
    assert fetch(sim, CASE_BY_NAME["search-track"], session)[0].status_code == 200
    locked, _ = fetch(sim, CASE_BY_NAME["search-artist"], session)
    assert locked.status_code == 429
    validate(api, locked)       # ``reason`` is not in ErrorObject, which allows extra keys
    assert locked.json()["error"] == {"status": 429, "message": "Too many requests",
                                      "reason": "QUOTA_EXCEEDED"}
    assert int(locked.headers["Retry-After"]) > 3600
    other, _ = fetch(sim, CASE_BY_NAME["track"], session)      # another bucket keeps serving
    assert other.status_code == 200
    validate(api, other)


@pytest.mark.parametrize("profile", PROFILES)
def test_undeclared_error_statuses_share_the_error_shape(simulator_factory, profile: str
                                                         ) -> None:
    """400 and 404 are not declared per operation; their bodies must still be ErrorObjects."""
    sim = schema_sim(simulator_factory, profile)
    session = api_session(sim)
    base = sim.spotify_api_base_url
    too_many = 11 if profile == "development" else 51
    expected = {
        f"/search?q=rock&type=track&limit={too_many}": (400, "Invalid limit"),
        "/search?q=rock&type=track&offset=995&limit=10": (400, "Bad request."),
        f"/tracks/{UNKNOWN_ID}": (404, "Resource not found"),
        f"/albums/{UNKNOWN_ID}": (404, "Resource not found"),
        "/tracks/not-an-id": (400, "Invalid base62 id"),
        "/no/such/endpoint": (404, "Service not found"),
    }
    validator = error_envelope_validator()
    for path, (status, message) in expected.items():
        response = session.get(base + path, timeout=10)
        assert response.status_code == status, path
        validator.validate(response.json())
        assert response.json() == {"error": {"status": status, "message": message}}, path
    with pytest.raises(ValidationError):      # the envelope check itself bites
        validator.validate({"error": {"status": 404}})


# ---------------------------------------------------------------------------- the edits
@pytest.mark.parametrize("relaxation", DEVELOPMENT_REMOVED_REQUIRED,
                         ids=[f"{s}.{f}" for s, f in DEVELOPMENT_REMOVED_REQUIRED])
def test_each_development_relaxation_is_needed(simulator_factory, relaxation) -> None:
    """Leave one relaxation out and a development response fails on exactly that field."""
    sim = schema_sim(simulator_factory, "development")
    others_ = tuple(r for r in DEVELOPMENT_REMOVED_REQUIRED if r != relaxation)
    case = CASE_BY_NAME["artist-albums" if relaxation[1] == "album_group" else "album"]
    response, _ = fetch(sim, case)
    assert response.status_code == 200
    validate(openapi(DEVELOPMENT_REMOVED_REQUIRED), response)
    messages = rejected(openapi(others_), response)
    assert set(messages) == {f"'{relaxation[1]}' is a required property"}


def test_development_fails_and_extended_passes_the_unrelaxed_schema(simulator_factory) -> None:
    unrelaxed = openapi()
    dev = schema_sim(simulator_factory, "development")
    ext = schema_sim(simulator_factory, "extended")
    for sim in (dev, ext):
        album, _ = fetch(sim, CASE_BY_NAME["album"])
        discography, _ = fetch(sim, CASE_BY_NAME["artist-albums"])
        if sim is ext:
            validate(unrelaxed, album)
            validate(unrelaxed, discography)
            continue
        assert set(rejected(unrelaxed, album)) == {
            f"'{field}' is a required property"
            for field in ("available_markets", "label", "popularity")}
        assert set(rejected(unrelaxed, discography)) == {
            f"'{field}' is a required property" for field in ("available_markets", "album_group")}


@pytest.mark.parametrize("profile", PROFILES)
def test_playlist_item_mapping_is_needed_and_still_strict(simulator_factory, profile: str
                                                          ) -> None:
    sim = schema_sim(simulator_factory, profile)
    relaxations = PROFILE_RELAXATIONS[profile]
    response, _ = fetch(sim, CASE_BY_NAME["playlist-items-owned"])
    messages = rejected(openapi(relaxations, fix_mapping=False), response)
    assert all("'#/components/schemas/track' could not be resolved" in m for m in messages)
    validate(openapi(relaxations), response)
    body = response.json()
    body["items"][3]["item"]["duration_ms"] = "3:21"       # now checked as a TrackObject
    assert "'3:21' is not of type 'integer'" in rejected(openapi(relaxations),
                                                         with_body(response, body))


BREAKAGES: dict[str, tuple[Callable[[dict[str, Any]], object], str]] = {
    "album-without-release-date": (
        lambda b: b["tracks"]["items"][0]["album"].pop("release_date"),
        "'release_date' is a required property"),
    "duration-as-string": (
        lambda b: b["tracks"]["items"][1].update(duration_ms="201000"),
        "'201000' is not of type 'integer'"),
    "paging-without-next": (
        lambda b: b["tracks"].pop("next"),
        "'next' is a required property"),
    "bad-precision": (
        lambda b: b["tracks"]["items"][0]["album"].update(release_date_precision="week"),
        "'week' is not one of ['year', 'month', 'day']"),
    "image-without-url": (
        lambda b: b["tracks"]["items"][2]["album"]["images"][0].pop("url"),
        "'url' is a required property"),
    "artist-type": (
        lambda b: b["tracks"]["items"][0]["artists"][0].update(type="band"),
        "'band' is not one of ['artist']"),
}


@pytest.mark.parametrize("breakage", BREAKAGES)
@pytest.mark.parametrize("profile", PROFILES)
def test_validator_rejects_broken_bodies(simulator_factory, profile: str, breakage: str) -> None:
    """Negative control: the same real response, broken in one place, no longer validates."""
    sim = schema_sim(simulator_factory, profile)
    api = profile_api(profile)
    response, _ = fetch(sim, CASE_BY_NAME["search-track"])
    validate(api, response)
    body = response.json()
    assert len(body["tracks"]["items"]) >= 3
    breaker, message = BREAKAGES[breakage]
    breaker(body)
    assert rejected(api, with_body(response, body)) == [message]


@pytest.mark.parametrize("profile", PROFILES)
def test_published_schema_rejects_only_the_real_world_nulls(simulator_factory, profile: str
                                                            ) -> None:
    """Why schema tests turn null_rate and playlist_extras off, and that nothing else hides."""
    api = profile_api(profile)
    sim = simulator_factory(profile=profile, null_rate=0.5)        # playlist_extras on
    session = api_session(sim)
    search, _ = fetch(sim, CASE_BY_NAME["search-playlist"], session)
    body = search.json()
    assert None in body["playlists"]["items"]
    assert "None is not of type 'object'" in rejected(api, search)
    body["playlists"]["items"] = [p for p in body["playlists"]["items"] if p is not None]
    validate(api, with_body(search, body))

    playlist = next(p for p in sim.catalog.playlists.values() if p.extras)
    total = len(playlist.track_idxs) + len(playlist.extras)
    items = session.get(f"{sim.spotify_api_base_url}/playlists/{playlist.id}/items",
                        params={"offset": total - 5, "limit": 5,
                                "additional_types": "track,episode"}, timeout=10)
    body = items.json()
    kinds = [("local" if row["is_local"] else row["item"]["type"] if row["item"] else None)
             for row in body["items"]]
    assert sorted(map(str, kinds)) == ["None", "episode", "local", "track", "track"]
    assert rejected(api, items)
    body["items"] = [row for row in body["items"]
                     if row["item"] is not None and not row["is_local"]]
    validate(api, with_body(items, body))        # episodes validate as EpisodeObject

    if profile == "extended":       # an unknown id in a batch comes back as null in its place
        ids = [sim.catalog.tracks[0].id, UNKNOWN_ID]
        batch = session.get(f"{sim.spotify_api_base_url}/tracks", params={"ids": ",".join(ids)},
                            timeout=10)
        body = batch.json()
        assert body["tracks"][0]["id"] == ids[0] and body["tracks"][1] is None
        assert "None is not of type 'object'" in rejected(api, batch)
        body["tracks"].pop()
        validate(api, with_body(batch, body))


# ---------------------------------------------------------------------------- field profiles
TRACK_ONLY_EXTENDED = ("popularity", "available_markets")
ALBUM_ONLY_EXTENDED = ("label", "popularity", "available_markets")
ME_ONLY_EXTENDED = ("country", "email", "explicit_content", "followers", "product")


@pytest.mark.parametrize("profile", PROFILES)
def test_fields_removed_for_development_mode(simulator_factory, profile: str) -> None:
    sim = schema_sim(simulator_factory, profile)
    session = api_session(sim)
    extended = profile == "extended"

    def body(name: str) -> Any:
        response, _ = fetch(sim, CASE_BY_NAME[name], session)
        assert response.status_code == 200
        return response.json()

    tracks = [body("track"), body("track-market"), *body("search-track")["tracks"]["items"],
              *(row["item"] for row in body("playlist-items-owned")["items"])]
    for track in tracks:
        assert "linked_from" not in track            # no relinking is simulated in either
        assert track["external_ids"]["isrc"]         # kept: the March 2026 reversal
        for field in TRACK_ONLY_EXTENDED:
            assert (field in track) is extended, field
        assert ("available_markets" in track["album"]) is extended
        assert "release_date" in track["album"]
    unplayable = body("track-market-unplayable")
    assert unplayable["is_playable"] is False
    assert unplayable["restrictions"] == {"reason": "market"}
    assert "is_playable" not in body("track")        # only with a market (relinking applied)
    album_tracks = body("album-tracks")["items"]
    assert all(("available_markets" in t) is extended for t in album_tracks)

    album = body("album")
    for field in ALBUM_ONLY_EXTENDED:
        assert (field in album) is extended, field
    assert album["genres"] == [] and album["external_ids"]["upc"]

    artist = body("artist")
    catalog_artist = sim.catalog.artist_by_id[artist["id"]]
    assert artist["images"]
    if extended:
        assert artist["genres"] == list(catalog_artist.genres) != []
        assert artist["popularity"] == catalog_artist.popularity
        assert artist["followers"] == {"href": None, "total": catalog_artist.followers}
    else:
        assert "genres" not in artist           # absent since August 2026 (artist_genres)
        assert "popularity" not in artist and "followers" not in artist
    for found in body("search-artist")["artists"]["items"]:
        assert ("popularity" in found) is extended
        assert ("genres" in found) is extended

    discography = body("artist-albums")["items"]
    assert all(("album_group" in a) is extended for a in discography)

    me = body("me")
    assert me["account_id"]
    for field in ME_ONLY_EXTENDED:
        assert (field in me) is extended, field
