"""``scrapy crawl`` with a preflight check and exit codes that say how the crawl ended.

Bad configuration (missing credentials, an invalid market, a renamed or removed setting, a
damaged or foreign store, an unwritable export folder, a JOBDIR of another Scrapy version) is
reported as one line naming the variable or file and how to fix it, with exit code 2, before
anything starts: no traceback, nothing touched. So is a store another crawl is using
(``store_lock.py``): the lock is taken after the checks and held until this process exits.
After the crawl, a close reason that needs a human (``auth_failed``, ``missing_credentials``)
exits 1; ``quota_parked`` exits 0, because running the same command later is the plan, and the
log says when; ``shutdown`` (SIGTERM, Ctrl-C) exits 0 too: the same command continues.

``scrapy crawl spotify_catalog`` runs discovery and then, in the same process and under the
same lock, the ``catalog_export`` spider (``runs.crawl_catalog`` decides when); the exit code
follows discovery's close reason (the export's alone with ``-a mode=export``), so an export
that fails exits 0, as it did when the export ran inside discovery: the previous export stays
and the error is logged.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from scrapy.commands.crawl import Command as ScrapyCrawlCommand

from runclub_spiders import clock
from runclub_spiders.auth.credentials import CredentialsError, load_credentials
from runclub_spiders.export.build import source_date_epoch
from runclub_spiders.export.copies import check_formats
from runclub_spiders.extensions.jobdir_version import JobdirVersionError, check_jobdir
from runclub_spiders.pipelines.opendata import check_settings as check_open_data
from runclub_spiders.runs import (
    DISCOVERY,
    EXPORT,
    MODES,
    CatalogRun,
    crawl_catalog,
    crawler_stats,
    run_in_process,
)
from runclub_spiders.seeds import SeedError, load_plan
from runclub_spiders.store import Store, StoreError
from runclub_spiders.store_lock import StoreLock, StoreLockedError

FAILED_REASONS = {"auth_failed", "missing_credentials"}
# Settings that moved into a namespace of the project's own: an old name would be ignored
# silently (a crawl on the default store, say), so it is refused with its new name.
RENAMED_SETTINGS = {
    "STORE_PATH": "CATALOG_STORE_PATH",
    "PROGRESS_INTERVAL": "DISCOVERY_PROGRESS_INTERVAL",
    "ARTIST_LOOKUP_BUDGET": "DISCOVERY_ARTIST_LOOKUP_BUDGET",
    "RETRY_BACKOFF_BASE": "RATE_LIMIT_BACKOFF_BASE",
    "RETRY_BACKOFF_MAX": "RATE_LIMIT_BACKOFF_MAX",
}
# Settings that no longer exist, with what replaced them.
REMOVED_SETTINGS = {
    "QUOTA_STATE_FILE": "the quota ledger now lives in the store at CATALOG_STORE_PATH "
                        "(to keep its parks, move the file beside the store as "
                        "quota_state.json: it is imported once)",
}
TOKENS_LOGGER = "runclub_spiders.auth.tokens"


class ConfigError(Exception):
    """One line: what is wrong, where, and how to fix it."""


def preflight(settings, spider_args: dict[str, str] | None = None,
              command: str = "scrapy crawl", spider: str = DISCOVERY) -> StoreLock | None:
    """Check the configuration; lock the store. The lock is returned to be held until exit."""
    mode = "export" if spider == EXPORT else (spider_args or {}).get("mode", "full")
    for old, new in RENAMED_SETTINGS.items():
        if settings.get(old) is not None:
            raise ConfigError(f"{old} is now called {new}: rename it where you set it")
    for old, why in REMOVED_SETTINGS.items():
        if settings.get(old) is not None:
            raise ConfigError(f"{old} is no longer used: {why}; remove it where you set it")
    if mode not in MODES:
        raise ConfigError(f"-a mode={mode}: use full (crawl, then export), export (export "
                          f"the store, no API calls) or discover (crawl, no export)")
    if clock.offset() and not is_loopback(settings.get("SPOTIFY_API_BASE_URL") or ""):
        raise ConfigError(f"{clock.OFFSET_ENV} is set but SPOTIFY_API_BASE_URL is not the "
                          "simulator: the shifted clock is for dry runs only; unset it")
    market = settings.get("SPOTIFY_MARKET", "")
    if not re.fullmatch(r"[A-Z]{2}", market or ""):
        raise ConfigError(f"SPOTIFY_MARKET={market!r} is not an ISO 3166-1 alpha-2 country "
                          f"code; use two letters such as US or GB")
    profile = settings.get("SPOTIFY_API_PROFILE")
    if profile not in ("development", "extended"):
        raise ConfigError(f"SPOTIFY_API_PROFILE={profile!r} must be development or extended")
    if settings.getbool("SPOTIFY_AUTH_ENABLED") and mode != "export":
        try:
            with warnings_on_stderr(TOKENS_LOGGER):     # "changed it to 600", said once
                load_credentials(settings["SPOTIFY_TOKEN_FILE"])
        except CredentialsError as exc:
            raise ConfigError(str(exc)) from None
    if settings.get("JOBDIR"):
        try:
            check_jobdir(settings["JOBDIR"])
        except JobdirVersionError as exc:
            raise ConfigError(str(exc)) from None
    if settings.get("SEEDS_PLAN"):
        try:
            load_plan(settings["SEEDS_PLAN"], settings["SEEDS_UMBRELLAS"])
        except SeedError as exc:
            raise ConfigError(str(exc)) from None
    try:                # the open-data sources that are on (their pipeline runs in every mode)
        check_open_data(settings)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if settings.get("CATALOG_STORE_PATH"):
        check_store(Path(settings["CATALOG_STORE_PATH"]))
    if settings.getbool("EXPORT_ENABLED"):
        try:
            check_formats(settings.getlist("EXPORT_COPIES"))
        except ValueError as exc:
            raise ConfigError(f"EXPORT_COPIES: {exc}") from None
        # Even with -a mode=discover, which exports nothing: the next full run will.
        check_export_dir(Path(settings["EXPORT_DIR"]))
    try:
        source_date_epoch()
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    # Last, so a run refused for its configuration leaves no lock file behind. The checks
    # above only read, so they are safe while another crawl holds the store.
    store = settings.get("CATALOG_STORE_PATH")
    return lock_store(Path(store), command) if store else None


def lock_store(store: Path, command: str) -> StoreLock:
    """Refuse a store another crawl holds; otherwise hold it until this process exits."""
    lock = StoreLock(store)
    try:
        lock.acquire(command)
    except StoreLockedError as exc:
        raise ConfigError(str(exc)) from None
    return lock


@contextmanager
def warnings_on_stderr(name: str) -> Iterator[None]:
    """Logging is not set up yet: print ``name``'s warnings as ``warning: ...`` lines."""
    log = logging.getLogger(name)
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter("warning: %(message)s"))
    propagate, log.propagate = log.propagate, False
    log.addHandler(handler)
    try:
        yield
    finally:
        log.removeHandler(handler)
        log.propagate = propagate


def check_writable_parent(name: str, path: Path) -> None:
    """``path``'s folder, or the nearest one that exists (it is created), must be writable."""
    parent = path.resolve().parent
    existing = next((p for p in (parent, *parent.parents) if p.exists()), None)
    if existing is None or not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"{name}={path}: {existing or parent} is not a writable folder; fix "
                          f"its permissions or point {name} elsewhere")


def check_store(store: Path) -> None:
    """Refuse a store the crawl could not open, before ``Store.open`` writes to it."""
    if store.is_dir():
        raise ConfigError(f"CATALOG_STORE_PATH={store} is a folder; point CATALOG_STORE_PATH "
                          f"at the store's file (for example {store / 'catalog.sqlite'})")
    check_writable_parent("CATALOG_STORE_PATH", store)
    if not (store.exists() and store.stat().st_size):
        return
    if not os.access(store, os.R_OK | os.W_OK):
        raise ConfigError(f"CATALOG_STORE_PATH={store} is not readable and writable; fix its "
                          f"permissions or point CATALOG_STORE_PATH elsewhere")
    # A read-only SQLite connection to a WAL database creates -wal and -shm files and, not
    # being allowed to checkpoint, leaves them behind: remove the ones the check created.
    sidecars = [store.with_name(store.name + suffix) for suffix in ("-wal", "-shm")]
    existed = {path for path in sidecars if path.exists()}
    try:
        Store.check(store)
    except StoreError as exc:
        raise ConfigError(str(exc)) from None
    finally:
        for path in sidecars:
            if path not in existed:
                path.unlink(missing_ok=True)


def check_export_dir(export_dir: Path) -> None:
    """The export is staged beside EXPORT_DIR and swapped in: its parent must be writable."""
    check_writable_parent("EXPORT_DIR", export_dir)
    if export_dir.exists() and not export_dir.is_dir():
        raise ConfigError(f"EXPORT_DIR={export_dir} is a file, not a folder; move it aside or "
                          f"point EXPORT_DIR elsewhere")


class Command(ScrapyCrawlCommand):
    def process_options(self, args: list[str], opts: argparse.Namespace) -> None:
        super().process_options(args, opts)
        assert self.settings is not None
        # Before Scrapy builds the crawler process (and starts logging): one line, exit 2.
        try:
            # Held until the process exits: the kernel releases it however the crawl ends.
            self.store_lock = preflight(self.settings, opts.spargs,
                                        " ".join(["scrapy crawl", *args]),
                                        spider=args[0] if args else DISCOVERY)
        except ConfigError as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise SystemExit(2) from None

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        if len(args) != 1:
            super().run(args, opts)             # Scrapy's own usage errors
            return
        process = self.crawler_process
        assert process is not None
        if args[0] == DISCOVERY:
            # Discovery, then the export, as runs.crawl_catalog decides.
            spider_args = dict(opts.spargs)
            mode = spider_args.pop("mode", "full")
            run = CatalogRun()
            run_in_process(process, lambda: crawl_catalog(process, mode=mode, run=run,
                                                          **spider_args))
            reason = run.reason
        else:                       # catalog_export alone, or another spider
            crawler = process.create_crawler(args[0])
            process.crawl(crawler, **opts.spargs)
            process.start()
            reason = crawler_stats(crawler).get("finish_reason")
        # reason is None when the crawl never started (the error is logged)
        if process.bootstrap_failed or reason in FAILED_REASONS:
            self.exitcode = 1


def is_loopback(url: str) -> bool:
    """Is ``url`` served on this machine (the simulator)?"""
    return urlsplit(url).hostname in ("127.0.0.1", "::1", "localhost")
