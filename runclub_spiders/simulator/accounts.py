"""Spotify Accounts: ``/authorize`` and ``/api/token``, plus access-token checks for the API.

``/authorize`` approves at once and redirects to the caller's loopback redirect URI with a
``code`` and the caller's ``state``, so a login command can be tested end to end. The token
endpoint speaks the OAuth error shape (``{"error": "invalid_grant", ...}``), not the Web API one.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import time
from dataclasses import dataclass
from ipaddress import ip_address
from urllib.parse import urlencode, urlsplit

from aiohttp import web

from runclub_spiders.simulator.config import SimulatorConfig


@dataclass(slots=True)
class AccessToken:
    expires_at: float
    requests_left: int | None


def loopback_redirect_problem(uri: str) -> str | None:
    """Why Spotify would refuse ``uri`` as a redirect URI, or None when it is acceptable."""
    parts = urlsplit(uri)
    if parts.scheme == "https" and parts.hostname:
        return None
    if parts.scheme != "http" or not parts.hostname:
        return "redirect URI must be https, or http on a loopback IP literal"
    if parts.hostname == "localhost":
        return "localhost is not allowed as redirect URI; use http://127.0.0.1:PORT/..."
    try:
        if ip_address(parts.hostname).is_loopback:
            return None
    except ValueError:
        pass
    return "http redirect URIs must use a loopback IP literal (127.0.0.1 or [::1])"


class Accounts:
    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.refresh_tokens: set[str] = {config.refresh_token}
        self.codes: dict[str, str] = {}            # code -> redirect_uri
        self.access: dict[str, AccessToken] = {}
        self.token_grants = 0                      # access tokens issued, for tests

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/authorize", self.authorize), web.post("/api/token", self.token)]

    # ---------------------------------------------------------------- /authorize
    async def authorize(self, request: web.Request) -> web.Response:
        q = request.query
        if q.get("client_id") != self.config.client_id:
            return web.Response(status=400, text="INVALID_CLIENT: Invalid client")
        redirect_uri = q.get("redirect_uri", "")
        problem = loopback_redirect_problem(redirect_uri)
        if problem:
            return web.Response(status=400, text=f"INVALID_CLIENT: {problem}")
        if q.get("response_type") != "code":
            return web.Response(status=400, text="unsupported_response_type")
        code = secrets.token_urlsafe(24)
        self.codes[code] = redirect_uri
        params = {"code": code}
        if "state" in q:
            params["state"] = q["state"]
        separator = "&" if "?" in redirect_uri else "?"
        raise web.HTTPFound(f"{redirect_uri}{separator}{urlencode(params)}")

    # ---------------------------------------------------------------- /api/token
    @staticmethod
    def _oauth_error(code: str, description: str, status: int = 400) -> web.Response:
        return web.json_response({"error": code, "error_description": description},
                                 status=status)

    def _client_ok(self, request: web.Request, form: dict[str, str]) -> bool:
        header = request.headers.get("Authorization", "")
        if header.startswith("Basic "):
            try:
                decoded = base64.b64decode(header[6:], validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                return False
            client_id, _, secret = decoded.partition(":")
        else:
            client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        return (secrets.compare_digest(client_id, self.config.client_id)
                and secrets.compare_digest(secret, self.config.client_secret))

    def _issue(self, refresh_token: str | None) -> dict[str, object]:
        token = "BQ" + secrets.token_urlsafe(40)
        self.access[token] = AccessToken(time.time() + self.config.access_token_ttl,
                                         self.config.token_expire_every or None)
        self.token_grants += 1
        body: dict[str, object] = {"access_token": token, "token_type": "Bearer",
                                   "expires_in": self.config.access_token_ttl,
                                   "scope": "playlist-read-private playlist-read-collaborative"}
        if refresh_token:
            body["refresh_token"] = refresh_token
        return body

    async def token(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        if not self._client_ok(request, form):
            return self._oauth_error("invalid_client", "Invalid client")
        grant = form.get("grant_type")
        if grant == "authorization_code":
            code = form.get("code", "")
            expected = self.codes.pop(code, None)
            if expected is None:
                return self._oauth_error("invalid_grant", "Invalid authorization code")
            if form.get("redirect_uri") != expected:
                return self._oauth_error("invalid_grant", "Invalid redirect URI")
            refresh = "AQ" + secrets.token_urlsafe(48)
            self.refresh_tokens.add(refresh)
            return web.json_response(self._issue(refresh))
        if grant == "refresh_token":
            refresh = form.get("refresh_token", "")
            if refresh not in self.refresh_tokens:
                return self._oauth_error("invalid_grant", "Invalid refresh token")
            rotated = None
            if self.config.rotate_refresh_tokens:
                self.refresh_tokens.discard(refresh)
                rotated = "AQ" + secrets.token_urlsafe(48)
                self.refresh_tokens.add(rotated)
            return web.json_response(self._issue(rotated))
        return self._oauth_error("unsupported_grant_type",
                                 "grant_type must be authorization_code or refresh_token")

    def revoke_all(self) -> None:
        """What Spotify does six months after the grant: every refresh token stops working."""
        self.refresh_tokens.clear()

    # ---------------------------------------------------------------- API access checks
    def check_bearer(self, request: web.Request) -> web.Response | None:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            return self._unauthorized("No token provided", "invalid_request")
        token = self.access.get(header[7:])
        if token is None:
            return self._unauthorized("Invalid access token", "invalid_token")
        if token.expires_at <= time.time() or token.requests_left == 0:
            return self._unauthorized("The access token expired", "invalid_token")
        if token.requests_left is not None:
            token.requests_left -= 1
        return None

    @staticmethod
    def _unauthorized(message: str, code: str) -> web.Response:
        response = web.json_response({"error": {"status": 401, "message": message}}, status=401)
        response.headers["WWW-Authenticate"] = (
            f'Bearer realm="spotify", error="{code}", error_description="{message}"')
        return response
