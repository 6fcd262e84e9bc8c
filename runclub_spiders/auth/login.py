"""``scrapy spotify-auth``: the one-time Authorization Code grant that yields a refresh token.

It prints the authorize URL (and opens a browser unless ``--no-browser``), listens on the
loopback redirect URI for Spotify's redirect, checks ``state``, exchanges the code and stores
the refresh token in the token file (mode 0600). Where no listener can run (a remote box, the
port taken), ``--paste`` asks for the redirected URL instead. This command runs no crawl, so a
blocking HTTP client is fine here.
"""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import sys
import threading
import webbrowser
from http.server import BaseHTTPRequestHandler, HTTPServer
from ipaddress import ip_address
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlencode, urlsplit

import requests
from scrapy.commands import ScrapyCommand

from runclub_spiders.auth.tokens import TokenFile, fingerprint, printable
from runclub_spiders.env import env

SCOPES = "playlist-read-private playlist-read-collaborative"


class AuthError(Exception):
    """The grant failed; the message is one line that says what to do."""


def check_redirect_uri(uri: str) -> tuple[str, int, str]:
    """(host, port, path) of a loopback redirect URI, or AuthError saying what is wrong."""
    parts = urlsplit(uri)
    if not uri:
        raise AuthError("SPOTIFY_REDIRECT_URI is not set: use http://127.0.0.1:8888/callback "
                        "and register the same URI in your app's settings")
    if parts.hostname == "localhost":
        raise AuthError(f"SPOTIFY_REDIRECT_URI={uri} uses localhost, which Spotify rejects for "
                        f"new apps: use http://127.0.0.1:{parts.port or 8888}{parts.path or '/'} "
                        f"(and register that URI in your app's settings)")
    try:
        loopback = parts.scheme == "http" and ip_address(parts.hostname or "").is_loopback
    except ValueError:
        loopback = False
    if not loopback or not parts.port:
        raise AuthError(f"SPOTIFY_REDIRECT_URI={uri} must be http://127.0.0.1:PORT/PATH with an "
                        f"explicit port, so this command can receive Spotify's redirect")
    return parts.hostname or "127.0.0.1", parts.port, parts.path or "/"


def code_from_redirect(url: str, state: str) -> str:
    params = parse_qs(urlsplit(url.strip()).query, keep_blank_values=True)
    # State first, errors included (RFC 6749 4.1.2.1): a redirect without this attempt's
    # state did not come from our authorize request, whatever it says.
    if not secrets.compare_digest(params.get("state", [""])[0].encode(), state.encode()):
        raise AuthError("the redirect's state does not match this login attempt (possible "
                        "forgery, or an old browser tab); run `scrapy spotify-auth` again")
    if "error" in params:
        raise AuthError(f"Spotify refused the authorization: {printable(params['error'][0])}")
    code = params.get("code", [""])[0]
    if not code:
        raise AuthError("the redirect URL carries no code; paste the full URL from the "
                        "browser's address bar")
    return code


class _Listener(HTTPServer):
    result: str | None = None
    path_expected = "/"


class _Listener6(_Listener):
    address_family = socket.AF_INET6


class _Callback(BaseHTTPRequestHandler):
    server: _Listener
    # One connection at a time: a browser's speculative preconnect that never sends a request
    # must not hold the listener (and defeat --timeout) for ever.
    timeout = 5

    def do_GET(self) -> None:
        if urlsplit(self.path).path != self.server.path_expected:
            self.send_error(404)
            return
        self.server.result = f"http://{self.headers.get('Host', '')}{self.path}"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.end_headers()
        self.wfile.write(b"RunClub: authorization received. You can close this tab.\n")

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the query string holds the code: keep it off the terminal


def open_listener(host: str, port: int, path: str) -> _Listener:
    """Bind the redirect URI's address (OSError when it cannot), before anyone is sent there."""
    listener = (_Listener6 if ":" in host else _Listener)((host, port), _Callback)
    listener.path_expected = path
    listener.timeout = 0.5
    return listener


def wait_for_redirect(listener: _Listener, timeout: float) -> str:
    stop = threading.Event()
    timer = threading.Timer(timeout, stop.set)
    timer.start()
    try:
        while listener.result is None and not stop.is_set():
            listener.handle_request()
    finally:
        timer.cancel()
    if listener.result is None:
        raise AuthError(f"no redirect arrived within {timeout:.0f} s; run again, or use "
                        f"--paste to paste the redirected URL")
    return listener.result


class Command(ScrapyCommand):
    requires_project = True
    requires_crawler_process = False
    default_settings: ClassVar[dict[str, Any]] = {"LOG_ENABLED": False}

    def syntax(self) -> str:
        return "[options]"

    def short_desc(self) -> str:
        return "One-time Spotify login: store a refresh token for unattended crawls"

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        group = parser.add_argument_group("Login")
        group.add_argument("--no-browser", action="store_true",
                           help="print the authorize URL without opening a browser")
        group.add_argument("--paste", action="store_true",
                           help="paste the redirected URL instead of listening for it")
        group.add_argument("--token-file", metavar="PATH",
                           help="where to store the refresh token [default SPOTIFY_TOKEN_FILE]")
        group.add_argument("--timeout", type=float, default=300.0,
                           help="seconds to wait for the redirect [default 300]")

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        assert self.settings is not None
        try:
            self._login(opts)
        except AuthError as exc:
            print(f"spotify-auth: {exc}", file=sys.stderr)
            self.exitcode = 1

    def _login(self, opts: argparse.Namespace) -> None:
        client_id = os.environ.get("SPOTIFY_CLIENT_ID", "").strip()
        client_secret = os.environ.get("SPOTIFY_CLIENT_SECRET", "").strip()
        redirect_uri = os.environ.get("SPOTIFY_REDIRECT_URI", "").strip()
        missing = [n for n, v in (("SPOTIFY_CLIENT_ID", client_id),
                                  ("SPOTIFY_CLIENT_SECRET", client_secret)) if not v]
        if missing:
            raise AuthError(f"missing {', '.join(missing)}: set them in the environment or "
                            f".env (see .env.example)")
        host, port, path = check_redirect_uri(redirect_uri)
        accounts = env("SPOTIFY_ACCOUNTS_BASE_URL").rstrip("/")
        state = secrets.token_urlsafe(16)
        url = f"{accounts}/authorize?" + urlencode({
            "client_id": client_id, "response_type": "code", "redirect_uri": redirect_uri,
            "scope": SCOPES, "state": state})
        listener = None
        if not opts.paste:
            try:
                listener = open_listener(host, port, path)
            except OSError as exc:
                raise AuthError(f"cannot listen on {host}:{port} ({exc.strerror}); run again "
                                f"with --paste") from None
        try:
            print("Open this URL, log in as the app's owner and approve:", flush=True)
            print(f"  {url}", flush=True)
            if listener is None:
                print("Paste the full URL your browser was redirected to:", flush=True)
                redirected = sys.stdin.readline()
            else:
                if not opts.no_browser:
                    webbrowser.open(url)
                print(f"Waiting for the redirect on {redirect_uri} ...", flush=True)
                redirected = wait_for_redirect(listener, opts.timeout)
        finally:
            if listener is not None:
                listener.server_close()
        code = code_from_redirect(redirected, state)
        try:
            response = requests.post(f"{accounts}/api/token", auth=(client_id, client_secret),
                                     data={"grant_type": "authorization_code", "code": code,
                                           "redirect_uri": redirect_uri}, timeout=30)
        except requests.RequestException as exc:
            raise AuthError(f"cannot reach {accounts}: {type(exc).__name__}") from None
        try:
            body = response.json()
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        if response.status_code != 200 or "refresh_token" not in body:
            said = printable(f"{body.get('error', '')} {body.get('error_description', '')}",
                             (client_secret, code))
            raise AuthError(f"the token exchange failed: HTTP {response.status_code} "
                            f"{said}".strip())
        token_file = TokenFile(opts.token_file or self.settings["SPOTIFY_TOKEN_FILE"])
        try:
            token_file.write(body["refresh_token"], scope=body.get("scope", SCOPES))
        except OSError as exc:
            raise AuthError(f"cannot write {token_file.path} ({exc.strerror}); pass "
                            f"--token-file PATH to a writable place") from None
        print(f"Saved the refresh token ({fingerprint(body['refresh_token'])}) to "
              f"{token_file.path} (mode 600). It stays valid for 6 months from now; "
              f"`scrapy crawl spotify_catalog` uses it unattended.")
        if os.environ.get("SPOTIFY_REFRESH_TOKEN"):
            print("Note: SPOTIFY_REFRESH_TOKEN is set and overrides the file; unset it.")
