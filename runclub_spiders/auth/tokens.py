"""The refresh-token file: written atomically with mode 0600, never logged.

Only the refresh token (and when it was obtained) is stored; access tokens live in memory.
Anything that must mention a token logs :func:`fingerprint` instead. After a rotation the file
also lists, as fingerprints, the tokens its token replaced (``replaces``: the first of the
line and the one just before), so a start that still holds one of them in
``SPOTIFY_REFRESH_TOKEN`` knows the file's token is its successor (``auth/credentials.py``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from runclub_spiders.utils.files import write_atomic

logger = logging.getLogger(__name__)


class TokenFileError(Exception):
    """The token file exists but cannot be used; the message says how to fix it."""


def fingerprint(secret: str) -> str:
    """A short, non-reversible tag for a secret, safe to log."""
    return "sha256:" + hashlib.sha256(secret.encode()).hexdigest()[:8]


def printable(text: object, hide: tuple[str, ...] = (), limit: int = 200) -> str:
    """Text from outside (a redirect, the token endpoint) fit for one log or terminal line:
    the strings in ``hide`` replaced by their fingerprints, control characters dropped,
    clipped to ``limit``."""
    text = str(text)
    for secret in sorted(filter(None, hide), key=len, reverse=True):
        text = text.replace(secret, fingerprint(secret))
    text = "".join(c if c.isprintable() else " " for c in text)
    return text if len(text) <= limit else text[:limit] + "..."


class TokenFile:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def read(self) -> dict[str, Any] | None:
        """The stored token record, or None when there is no file yet.

        A file readable by group or others is tightened to 0600 (and the fix is logged):
        refusing would strand an unattended crawl over a permission bit.
        """
        try:
            mode = stat.S_IMODE(self.path.stat().st_mode)
        except FileNotFoundError:
            return None
        if mode & 0o077:
            try:
                self.path.chmod(0o600)
            except OSError as exc:
                raise TokenFileError(
                    f"{self.path} is readable by others (mode {mode:o}) and cannot be fixed: "
                    f"{exc.strerror}; run `chmod 600 {self.path}`") from None
            logger.warning("%s was readable by others (mode %o); changed it to 600",
                           self.path, mode)
        try:
            record = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            raise TokenFileError(f"{self.path} is not a readable token file; delete it and run "
                                 f"`scrapy spotify-auth` again") from None
        if not isinstance(record, dict) or not isinstance(record.get("refresh_token"), str):
            raise TokenFileError(f"{self.path} has no refresh_token; delete it and run "
                                 f"`scrapy spotify-auth` again")
        return record

    def refresh_token(self) -> str | None:
        record = self.read()
        return record["refresh_token"] if record else None

    def write(self, refresh_token: str, *, replaces: tuple[str, ...] = (), **extra: Any) -> None:
        """Replace the file atomically: a crash leaves the old token or the new, never half.

        ``replaces``: fingerprints (never tokens) of the tokens this one succeeds.
        """
        record = {"refresh_token": refresh_token,
                  "saved_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), **extra}
        if replaces:
            record["replaces"] = list(replaces)
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_atomic(self.path, json.dumps(record).encode(), mode=0o600)
