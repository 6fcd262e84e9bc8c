"""OAuth for the Spotify Web API: refresh-token grant, Bearer header, one retry on 401.

Access tokens come from the Accounts service through the Scrapy engine
(``engine.download_async``), so the token request gets the same retries, slots and stats as
everything else and never blocks the reactor. One refresh runs at a time however many requests
wait; tokens are renewed shortly before they expire.

Secrets stay out of JOBDIR and logs: the ``Authorization`` header is added in
``process_request`` (after the scheduler, so never pickled) and removed again as the request
leaves the downloader (``request_left_downloader``, before any ``process_response``: the quota
middleware above this one may refuse the answer), and in ``process_response`` and
``process_exception`` for a request answered or refused without reaching it, all before any
middleware can copy the request for a retry or redirect. Token requests bypass the scheduler
entirely. Logs carry fingerprints only, and text from the token endpoint is logged with our
secrets masked (a broken proxy may echo the request). With ``HTTPCACHE_ENABLED`` the API
requests are not cached: Scrapy's filesystem cache writes each request's headers to disk, and a
cached 401 would answer every retry.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from scrapy import Request, signals
from scrapy.exceptions import IgnoreRequest, NotConfigured
from scrapy.http.request import NO_CALLBACK

from runclub_spiders import scrapy_compat
from runclub_spiders.auth.credentials import CredentialsError, SpotifyCredentials, load_credentials
from runclub_spiders.auth.tokens import TokenFile, fingerprint, printable
from runclub_spiders.services import SPOTIFY_ACCOUNTS, ServiceMap
from runclub_spiders.utils.closing import CloseWatch

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.http import Response

logger = logging.getLogger(__name__)

TOKEN_REQUEST = "_spotify_token_request"
TOKEN_GENERATION = "_spotify_token_generation"
AUTH_RETRIES = "_spotify_auth_retries"
MAX_AUTH_RETRIES = 5
TOKEN_ATTEMPTS = 4                  # token endpoint calls per refresh when answers are garbled


class SpotifyAuthError(Exception):
    """The Accounts service refused our credentials; a human has to act."""


class SpotifyAuthMiddleware:
    def __init__(self, crawler: Crawler) -> None:
        settings = crawler.settings
        if not settings.getbool("SPOTIFY_AUTH_ENABLED"):
            raise NotConfigured("SPOTIFY_AUTH_ENABLED is off")
        self.crawler = crawler                # crawler.engine is not available yet (2.18+)
        self.services = ServiceMap(settings)
        self.token_file = TokenFile(settings["SPOTIFY_TOKEN_FILE"])
        self.margin = settings.getfloat("SPOTIFY_TOKEN_REFRESH_MARGIN")
        self.no_cache = settings.getbool("HTTPCACHE_ENABLED")
        if self.no_cache:
            logger.warning("HTTPCACHE_ENABLED: Spotify API requests are not cached (the cache "
                           "would store their access tokens, and replay 401s)")
        self.credentials: SpotifyCredentials | None = None
        self.problem: str | None = None
        try:
            self.credentials = load_credentials(settings["SPOTIFY_TOKEN_FILE"])
        except CredentialsError as exc:
            self.problem = str(exc)
        self._token: str | None = None
        self._expires_at = 0.0
        self._generation = 0
        self._lock = asyncio.Lock()
        self.failed = False
        # A refresh in flight, and the requests waiting for it, end when the spider closes.
        self.watch = CloseWatch(crawler)
        crawler.signals.connect(self.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(self.request_left_downloader,
                                signal=signals.request_left_downloader)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> SpotifyAuthMiddleware:
        return cls(crawler)

    def spider_opened(self) -> None:
        if self.problem:
            # Before the first request: one line naming what is missing, then stop.
            self._fail("missing_credentials", self.problem)
        elif self.credentials is not None and self.credentials.handed_over_from:
            self.crawler.stats.set_value("spotify/auth/handed_over", 1)
            logger.info("SPOTIFY_REFRESH_TOKEN (%s) was rotated by Spotify in an earlier run: "
                        "using its successor %s from %s", self.credentials.handed_over_from,
                        fingerprint(self.credentials.refresh_token),
                        self.credentials.refresh_token_source)

    # ---------------------------------------------------------------- requests
    async def process_request(self, request: Request) -> None:
        if request.meta.get(TOKEN_REQUEST) or not self.services.is_spotify_api(request.url):
            return
        if self.failed:
            raise IgnoreRequest("Spotify credentials failed; see the error above")
        if self.no_cache:
            request.meta["dont_cache"] = True
        token, generation = await self.watch.run(self._access_token())
        request.headers["Authorization"] = f"Bearer {token}"
        request.meta[TOKEN_GENERATION] = generation

    def process_response(self, request: Request, response: Response) -> Request | Response:
        if TOKEN_GENERATION not in request.meta:
            return response
        request.headers.pop("Authorization", None)
        if response.status != 401:
            return response
        stats = self.crawler.stats
        if request.meta[TOKEN_GENERATION] == self._generation:
            self._token = None            # first 401 on this token: the next request refreshes
        # Each retry carries a newer token than the one refused. Requests take their token
        # before they wait in the slot queue, so under load a retry can meet a token that died
        # meanwhile; a few retries absorb that, while a broken grant surfaces as invalid_grant
        # on the refresh itself.
        used = request.meta.get(AUTH_RETRIES, 0)
        if used >= MAX_AUTH_RETRIES:
            stats.inc_value("spotify/auth/gave_up_401")
            return response
        stats.inc_value("spotify/auth/retried_401")
        retry = request.copy()
        retry.meta[AUTH_RETRIES] = used + 1
        del retry.meta[TOKEN_GENERATION]
        retry.dont_filter = True
        return retry

    def process_exception(self, request: Request, exception: Exception) -> None:
        if TOKEN_GENERATION in request.meta:
            request.headers.pop("Authorization", None)

    def request_left_downloader(self, request: Request) -> None:
        """The token goes with the wire: answered or failed, the request carries it no more."""
        if TOKEN_GENERATION in request.meta:
            request.headers.pop("Authorization", None)

    # ---------------------------------------------------------------- tokens
    async def _access_token(self) -> tuple[str, int]:
        async with self._lock:
            if self._token is None or time.monotonic() >= self._expires_at:
                await self._refresh()
            assert self._token is not None
            return self._token, self._generation

    async def _refresh(self) -> None:
        assert self.credentials is not None
        creds = self.credentials
        basic = base64.b64encode(f"{creds.client_id}:{creds.client_secret}".encode()).decode()
        request = Request(
            self.services.token_url, method="POST",
            body=urlencode({"grant_type": "refresh_token", "refresh_token": creds.refresh_token}),
            headers={"Authorization": f"Basic {basic}",
                     "Content-Type": "application/x-www-form-urlencoded"},
            meta={TOKEN_REQUEST: True, "dont_obey_robotstxt": True, "dont_cache": True,
                  "download_slot": SPOTIFY_ACCOUNTS, "handle_httpstatus_all": True},
            dont_filter=True, callback=NO_CALLBACK)
        for attempt in range(1, TOKEN_ATTEMPTS + 1):
            response = await self.crawler.engine.download_async(request)
            body = _json(response)
            # A cut-off body is a transient fault, not a verdict on the credentials: ask again
            # a little later. (5xx answers were retried already by the retry middleware.)
            transient = response.status == 200 and not body
            if not transient or attempt == TOKEN_ATTEMPTS:
                break
            self.crawler.stats.inc_value("spotify/auth/token_retries")
            logger.warning("Spotify token endpoint gave an unusable answer (HTTP %s); asking "
                           "again (%d/%d)", response.status, attempt, TOKEN_ATTEMPTS - 1)
            await self.watch.sleep(min(2.0 ** attempt * 0.25, 5.0))
            request = request.replace(dont_filter=True)
        if response.status == 200 and isinstance(body.get("access_token"), str):
            lifetime = float(body.get("expires_in") or 3600)
            self._token = body["access_token"]
            self._generation += 1
            # Renew a little early so no request carries a token that dies in flight.
            self._expires_at = time.monotonic() + lifetime - min(self.margin, lifetime / 2)
            self.crawler.stats.inc_value("spotify/auth/token_refreshes")
            rotated = body.get("refresh_token")
            if isinstance(rotated, str) and rotated and rotated != creds.refresh_token:
                self._store_rotated(rotated)
            return
        error = body.get("error") if isinstance(body.get("error"), str) else None
        if error == "invalid_grant":
            description = self._masked(body.get("error_description") or "invalid_grant")
            self._fail("auth_failed",
                       f"Spotify refused the refresh token from {creds.refresh_token_source} "
                       f"({description}): run `scrapy spotify-auth` again (refresh tokens "
                       f"expire 6 months after the grant)")
        elif error == "invalid_client":
            self._fail("auth_failed",
                       "Spotify refused the client credentials (invalid_client): check "
                       "SPOTIFY_CLIENT_ID and SPOTIFY_CLIENT_SECRET")
        else:
            self.crawler.stats.inc_value("spotify/auth/token_errors")
            logger.error("Spotify token endpoint answered HTTP %s%s", response.status,
                         f" ({self._masked(error)})" if error else "")
        raise IgnoreRequest("no Spotify access token")

    def _masked(self, text: object) -> str:
        """Text from the token endpoint, fit for a log line: our secrets (the access token,
        client secret, refresh token and their Basic header) hidden by :func:`printable`."""
        creds = self.credentials
        known = [self._token]
        if creds is not None:
            basic = base64.b64encode(f"{creds.client_id}:{creds.client_secret}".encode())
            known += [creds.client_secret, creds.refresh_token, basic.decode()]
        return printable(text, tuple(s for s in known if s))

    def _store_rotated(self, refresh_token: str) -> None:
        """Save a rotated refresh token, naming (by fingerprint) the tokens it replaces: the
        first of the line (what ``SPOTIFY_REFRESH_TOKEN`` or the login gave) and the one just
        before. A later start holding either in ``SPOTIFY_REFRESH_TOKEN`` is handed this one."""
        assert self.credentials is not None
        old = self.credentials
        previous = fingerprint(old.refresh_token)
        replaces = tuple(dict.fromkeys((*old.replaces[:1], previous)))
        self.token_file.write(refresh_token, replaces=replaces)
        self.credentials = SpotifyCredentials(old.client_id, old.client_secret, refresh_token,
                                              str(self.token_file.path), replaces)
        self.crawler.stats.inc_value("spotify/auth/refresh_token_rotated")
        logger.info("Spotify rotated the refresh token %s; saved its successor %s to %s",
                    previous, fingerprint(refresh_token), self.token_file.path)

    def _fail(self, reason: str, message: str) -> None:
        if self.failed:
            return
        self.failed = True
        logger.error(message)
        self.crawler.stats.set_value("spotify/auth/failure", reason)
        scrapy_compat.schedule_coro(self.crawler.engine.close_spider_async(reason=reason))


def _json(response: Response) -> dict:
    try:
        body = response.json()  # type: ignore[attr-defined]
    except (AttributeError, ValueError):
        return {}
    return body if isinstance(body, dict) else {}
