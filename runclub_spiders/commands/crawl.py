"""``scrapy crawl`` with a preflight check and exit codes that say how the crawl ended.

Bad configuration (missing credentials, an invalid market, an unreadable state file) is
reported as one line naming the variable or file and how to fix it, with exit code 2, before
anything starts: no traceback, nothing touched. After the crawl, a close reason that needs a
human (``auth_failed``, ``missing_credentials``) exits 1; ``quota_parked`` exits 0, because
running the same command later is the plan, and the log says when.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

from scrapy.commands.crawl import Command as ScrapyCrawlCommand

from runclub_spiders.auth.credentials import CredentialsError, load_credentials
from runclub_spiders.export.build import source_date_epoch
from runclub_spiders.quota import QuotaLedger, QuotaStateError
from runclub_spiders.seeds import SeedError, load_plan
from runclub_spiders.store import Store, StoreError

FAILED_REASONS = {"auth_failed", "missing_credentials"}


class ConfigError(Exception):
    """One line: what is wrong, where, and how to fix it."""


def preflight(settings, spider_args: dict[str, str] | None = None) -> None:
    mode = (spider_args or {}).get("mode", "full")
    if mode not in ("full", "export", "discover"):
        raise ConfigError(f"-a mode={mode}: use full (crawl, then export), export (export "
                          f"the store, no API calls) or discover (crawl, no export)")
    market = settings.get("SPOTIFY_MARKET", "")
    if not re.fullmatch(r"[A-Z]{2}", market or ""):
        raise ConfigError(f"SPOTIFY_MARKET={market!r} is not an ISO 3166-1 alpha-2 country "
                          f"code; use two letters such as US or GB")
    profile = settings.get("SPOTIFY_API_PROFILE")
    if profile not in ("development", "extended"):
        raise ConfigError(f"SPOTIFY_API_PROFILE={profile!r} must be development or extended")
    if settings.getbool("SPOTIFY_AUTH_ENABLED") and mode != "export":
        try:
            load_credentials(settings["SPOTIFY_TOKEN_FILE"])
        except CredentialsError as exc:
            raise ConfigError(str(exc)) from None
    try:
        QuotaLedger(settings["QUOTA_STATE_FILE"])
    except QuotaStateError as exc:
        raise ConfigError(str(exc)) from None
    if settings.get("SEEDS_PLAN"):
        try:
            load_plan(settings["SEEDS_PLAN"], settings["SEEDS_UMBRELLAS"])
        except SeedError as exc:
            raise ConfigError(str(exc)) from None
    store = Path(settings.get("STORE_PATH") or "")
    if settings.get("STORE_PATH") and store.exists() and store.stat().st_size:
        try:
            Store.check(store)
        except StoreError as exc:
            raise ConfigError(str(exc)) from None
    if settings.getbool("EXPORT_ENABLED") and mode != "discover":
        check_export_dir(Path(settings["EXPORT_DIR"]))
    try:
        source_date_epoch()
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def check_export_dir(export_dir: Path) -> None:
    """The export is staged beside EXPORT_DIR and swapped in: its parent must be writable."""
    parent = export_dir.resolve().parent
    existing = next((p for p in (parent, *parent.parents) if p.exists()), None)
    if existing is None or not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"EXPORT_DIR={export_dir}: {existing or parent} is not a writable "
                          f"folder; fix its permissions or point EXPORT_DIR elsewhere")
    if export_dir.exists() and not export_dir.is_dir():
        raise ConfigError(f"EXPORT_DIR={export_dir} is a file, not a folder; move it aside or "
                          f"point EXPORT_DIR elsewhere")


class Command(ScrapyCrawlCommand):
    def process_options(self, args: list[str], opts: argparse.Namespace) -> None:
        super().process_options(args, opts)
        assert self.settings is not None
        # Before Scrapy builds the crawler process (and starts logging): one line, exit 2.
        try:
            preflight(self.settings, opts.spargs)
        except ConfigError as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise SystemExit(2) from None

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        if len(args) != 1:
            super().run(args, opts)             # Scrapy's own usage errors
            return
        assert self.crawler_process is not None
        crawler = self._create_crawler(args[0])
        self.crawler_process.crawl(crawler, **opts.spargs)
        self.crawler_process.start()
        reason = crawler.stats.get_value("finish_reason")
        if self.crawler_process.bootstrap_failed or reason in FAILED_REASONS:
            self.exitcode = 1
