# ruff: noqa: N999 -- the module name is the command name users type
"""``scrapy spotify-probe``: what the Spotify Web API and ReccoBeats allow this app, now.

At most 12 Spotify calls (``runclub_spiders.probe`` lists them), through the same middlewares
and the same store as a crawl (so its calls count in the quota ledger, and a crawl running on
the store refuses it with the store lock's message). It prints one ``name: value`` line per
capability (``genre filter: honoured``, ``ignored`` or ``empty``...), then what the next
crawl will do with them. The results are kept in the store: the next crawl adapts to them and
writes them to the manifest; it probes again by itself once they are older than
``SPOTIFY_PROBE_INTERVAL_DAYS``.

Exit codes: 0 probed; 1 the probe got no answer at all (credentials refused, quota parked,
network), the log says why; 2 bad configuration (one line, as ``scrapy crawl``).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, ClassVar

from scrapy.commands import ScrapyCommand

from runclub_spiders.commands.crawl import FAILED_REASONS, ConfigError, preflight
from runclub_spiders.probe import adapt
from runclub_spiders.runs import crawler_stats
from runclub_spiders.seeds import load_plan

SPIDER = "spotify_probe"


class Command(ScrapyCommand):
    requires_project = True
    default_settings: ClassVar[dict[str, Any]] = {"LOG_LEVEL": "WARNING"}

    def syntax(self) -> str:
        return "[options]"

    def short_desc(self) -> str:
        return "Ask Spotify and ReccoBeats what this app may do (at most 12 Spotify calls)"

    def process_options(self, args: list[str], opts: argparse.Namespace) -> None:
        super().process_options(args, opts)
        assert self.settings is not None
        try:
            self.store_lock = preflight(self.settings, {}, "scrapy spotify-probe", spider=SPIDER)
        except ConfigError as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise SystemExit(2) from None

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        assert self.settings is not None and self.crawler_process is not None
        crawler = self.crawler_process.create_crawler(SPIDER)
        self.crawler_process.crawl(crawler)
        self.crawler_process.start()
        caps = getattr(crawler.spider, "capabilities", None)
        reason = crawler_stats(crawler).get("finish_reason")
        if caps is None or not caps.fresh or reason in FAILED_REASONS:
            print(f"error: the probe got no answer (the crawl closed {reason}); see the log "
                  "above (credentials, quota park or network); nothing was saved",
                  file=sys.stderr)
            self.exitcode = 1
            return
        print("\n".join(caps.lines()))
        plan = load_plan(self.settings["SEEDS_PLAN"], self.settings["SEEDS_UMBRELLAS"])
        extended = self.settings["SPOTIFY_API_PROFILE"] == "extended"
        adaptation = adapt(caps, plan, page_size=50 if extended else 10)
        print("the crawl will:")
        print("\n".join(f"  {line}" for line in adaptation.lines))
