"""``scrapy demo``: the main job end to end, offline, against the built-in simulator.

Starts the simulator in-process on 127.0.0.1, points every address and credential at it, and
runs the catalog crawl as ``scrapy crawl spotify_catalog`` does (``runs.crawl_catalog``:
discovery, then the ``catalog_export`` spider) with its own store under ``.cache/demo/`` so a
real crawl's store, token file and quota ledger are never touched. The export publishes
``exports/demo/``; the demo then validates it (``scrapy validate-export``) and exits non-zero
if any check fails. ``make demo`` runs this.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path
from typing import Any, ClassVar

from scrapy.commands import ScrapyCommand

from runclub_spiders.export import validate
from runclub_spiders.export.feeds import MANIFEST
from runclub_spiders.runs import CatalogRun, crawl_catalog, run_in_process


class Command(ScrapyCommand):
    requires_project = True
    default_settings: ClassVar[dict[str, Any]] = {"LOG_LEVEL": "INFO"}

    def syntax(self) -> str:
        return "[options]"

    def short_desc(self) -> str:
        return "Run the whole crawl offline against the simulator"

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        group = parser.add_argument_group("Demo")
        group.add_argument("--size", type=int, default=30_000,
                           help="simulated catalog size in tracks [default 30000]")
        group.add_argument("--api-profile", default="development",
                           choices=("development", "extended"))
        group.add_argument("--dir", default=".cache/demo",
                           help="where the demo keeps its store and state [default .cache/demo]")
        group.add_argument("--export-dir", default="exports/demo",
                           help="where the export is published [default exports/demo]")
        group.add_argument("--keep", action="store_true",
                           help="keep the previous demo store (a second run then resumes)")

    def process_options(self, args: list[str], opts: argparse.Namespace) -> None:
        super().process_options(args, opts)
        assert self.settings is not None
        folder = Path(opts.dir)
        if not opts.keep and folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True, exist_ok=True)
        # Imported here, not at the top: Scrapy imports every command module at each start.
        from runclub_spiders.simulator import Simulator, SimulatorConfig  # noqa: PLC0415

        self.simulator = Simulator(SimulatorConfig(size=opts.size, profile=opts.api_profile))
        self.simulator.start()
        # Credentials are read from the environment by design; these are the simulator's.
        os.environ.update(self.simulator.env())
        fast = {"concurrency": 4, "delay": 0.0}
        self.settings.setdict({
            "SPOTIFY_API_BASE_URL": self.simulator.spotify_api_base_url,
            "SPOTIFY_ACCOUNTS_BASE_URL": self.simulator.accounts_base_url,
            "RECCOBEATS_BASE_URL": self.simulator.reccobeats_base_url,
            # The open-data sources, served by the simulator too (paced as for real: the
            # simulator's own limits are off, so loopback needs no 1 s spacing).
            "WIKIDATA_SPARQL_URL": self.simulator.wikidata_sparql_url,
            "MUSICBRAINZ_BASE_URL": self.simulator.musicbrainz_base_url,
            "MUSICBRAINZ_CONTACT": "runclub-demo@example.invalid",
            "WIKIDATA_INTERVAL": 0.0, "MUSICBRAINZ_INTERVAL": 0.0,
            "SPOTIFY_API_PROFILE": opts.api_profile,
            "CATALOG_STORE_PATH": str(folder / "catalog.sqlite"),
            "EXPORT_DIR": opts.export_dir,
            "SPOTIFY_TOKEN_FILE": str(folder / "spotify_token.json"),
            # Loopback has no rate limit to respect; a real crawl keeps settings.py's pacing.
            "AUTOTHROTTLE_ENABLED": False,
            "DOWNLOAD_SLOTS": {"api.spotify.com": fast, "accounts.spotify.com": fast,
                               "api.reccobeats.com": fast, "query.wikidata.org": fast,
                               "musicbrainz.org": fast},
            "DISCOVERY_CONCURRENCY": 4,
            # A 30,000-track sandbox holds about 120 exportable tracks per cell (21 to 365):
            # smaller targets than a real crawl's 400/600.
            "CATALOG_CELL_MIN": 40,
            "CATALOG_CELL_TARGET": 80,
            "CATALOG_MAX_TRACKS": 10_000,
            "DISCOVERY_PROGRESS_INTERVAL": 10,
        }, priority="cmdline")

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        process = self.crawler_process
        assert process is not None
        run = CatalogRun()
        try:
            run_in_process(process, lambda: crawl_catalog(process, run=run))
        finally:
            self.simulator.stop()
        stats = run.discovery_stats
        print(f"demo: {stats.get('finish_reason')}; {stats.get('store/tracks', 0):,} candidates "
              f"in {opts.dir}/catalog.sqlite, {stats.get('store/features', 0):,} with features")
        if stats.get("finish_reason") != "finished" or run.errors \
                or not run.export_stats.get("export/published"):
            print("demo: the crawl did not finish cleanly or published no export; see the log")
            self.exitcode = 1
            return
        export = Path(opts.export_dir)
        manifest = json.loads((export / MANIFEST).read_text(encoding="utf-8"))
        balance = manifest["balance"]
        print(f"demo: exported {manifest['totals']['tracks']:,} tracks, "
              f"{manifest['totals']['artists']:,} artists, "
              f"{manifest['reccobeats']['featureCoveragePct']}% with audio features; "
              f"{balance['cellsAtMin']}/{len(balance['cells'])} cells at their minimum "
              f"({balance['cellMin']}), {balance['cellsAtTarget']} at target "
              f"({balance['cellTarget']})")
        print(f"demo: validating {export} (scrapy validate-export {export})")
        self.exitcode = validate.run(export)
        if self.exitcode == 0:
            print(f"demo: done; coverage report in {export / 'coverage.md'} and "
                  f"{export / 'coverage.png'}")
