"""One crawl per store: an exclusive ``flock`` on ``<store>.lock``, held while the process runs.

Two crawls on one store would plan the same pages and fight over the rotated refresh token
(the second ends with ``auth_failed``); a cron run that overlaps a long crawl is ordinary. The
kernel releases a ``flock`` when its holder exits, however it exits (SIGKILL, a power cut on a
local disk), so a crash never blocks the next run and there is no stale-lock clean-up. The
lock file is left in place; its content (pid, start time, command) only names the holder in
the error message of the run that was refused. ``flock`` is advisory and may not work on
network file systems: keep the store on a local disk.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path


class StoreLockedError(Exception):
    """Another process holds the store; the message names it and what to do."""


def lock_path(store: str | os.PathLike[str]) -> Path:
    store = Path(store)
    return store.with_name(store.name + ".lock")


class StoreLock:
    def __init__(self, store: str | os.PathLike[str]) -> None:
        self.store = Path(store)
        self.path = lock_path(store)
        self._fd: int | None = None

    def acquire(self, command: str) -> None:
        """Take the lock, or raise :class:`StoreLockedError` at once (no waiting).

        ``command``: what this process runs, for the message of a process refused later."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _describe(_read(fd))
            os.close(fd)
            raise StoreLockedError(
                f"CATALOG_STORE_PATH={self.store} is in use by {holder}: wait for that crawl to "
                f"end (or stop it), or point CATALOG_STORE_PATH at another store") from None
        except OSError:
            os.close(fd)
            raise
        # Ours now: say who holds it, for the next process that is refused.
        record = {"pid": os.getpid(), "since": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                             time.gmtime()),
                  "command": command}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(record).encode() + b"\n", 0)
        self._fd = fd                   # held open, so locked, until the process exits


def _read(fd: int) -> dict:
    try:
        record = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def _describe(record: dict) -> str:
    pid = record.get("pid")
    if not isinstance(pid, int):
        return "another process (it has not said which yet)"
    command = record.get("command")
    since = record.get("since")
    return (f"process {pid}" + (f" ({command}" if isinstance(command, str) else " (")
            + (f", since {since})" if isinstance(since, str) else ")"))
