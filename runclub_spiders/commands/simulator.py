"""``scrapy simulator``: serve the offline Spotify + ReccoBeats sandbox on loopback.

Every knob of :class:`~runclub_spiders.simulator.config.SimulatorConfig` is an option
(``--size``, ``--profile``, ``--rate-limit``, ``--quota search=200`` ...), so a seed plan can
be dry-run against any mix of limits and faults without spending a Spotify call.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any, ClassVar

import orjson
from scrapy.commands import ScrapyCommand
from scrapy.exceptions import UsageError


def _parse_quota(values: list[str]) -> dict[str, int]:
    quota: dict[str, int] = {}
    for value in values:
        bucket, sep, number = value.partition("=")
        if not sep or not number.isdigit():
            raise UsageError(f"--quota takes BUCKET=N (e.g. search=200), not {value!r}",
                             print_help=False)
        quota[bucket] = int(number)
    return quota


class Command(ScrapyCommand):
    requires_project = True
    requires_crawler_process = False
    default_settings: ClassVar[dict[str, Any]] = {"LOG_ENABLED": False}

    def syntax(self) -> str:
        return "[options]"

    def short_desc(self) -> str:
        return "Serve the offline Spotify + ReccoBeats simulator on 127.0.0.1"

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        # The simulator is imported only when this command runs: Scrapy imports every
        # command module at each start, and the simulator brings aiohttp (~0.15 s a start).
        from runclub_spiders.simulator.config import SimulatorConfig  # noqa: PLC0415

        super().add_options(parser)
        group = parser.add_argument_group("Simulator")
        for f in fields(SimulatorConfig):
            # --profile is Scrapy's own (cProfile); the API profile is --api-profile.
            name = "api_profile" if f.name == "profile" else f.name
            flag = "--" + name.replace("_", "-")
            help_text = f.metadata.get("help", "")
            if f.name == "quota":
                group.add_argument(flag, dest="sim_quota", action="append", default=[],
                                   metavar="BUCKET=N", help=help_text)
                continue
            default = f.default if f.default is not MISSING else None
            if isinstance(default, bool):
                group.add_argument(flag, dest=f"sim_{f.name}", default=default,
                                   action=argparse.BooleanOptionalAction, help=help_text)
            else:
                kind = type(default) if default is not None else str
                group.add_argument(flag, dest=f"sim_{f.name}", type=kind, default=default,
                                   help=f"{help_text} [default {default}]")
        group.add_argument("--env-file", metavar="PATH",
                           help="write the crawler's environment for this simulator to PATH")
        group.add_argument("--truth", metavar="PATH",
                           help="write the catalog's ground truth as JSONL to PATH "
                                "(for tests and benchmarks; the crawler never reads it)")
        group.add_argument("--tour", action="store_true",
                           help="start, walk every service once, print what came back, exit")

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        from runclub_spiders.simulator.config import SimulatorConfig  # noqa: PLC0415
        from runclub_spiders.simulator.server import Simulator  # noqa: PLC0415
        from runclub_spiders.simulator.tour import run_tour  # noqa: PLC0415

        values = {f.name: getattr(opts, f"sim_{f.name}") for f in fields(SimulatorConfig)
                  if f.name != "quota"}
        try:
            config = SimulatorConfig(**values, quota=_parse_quota(opts.sim_quota))
        except ValueError as exc:
            raise UsageError(str(exc), print_help=False) from None
        started = time.monotonic()
        try:
            simulator = Simulator(config).start()
        except OSError as exc:
            raise UsageError(f"cannot listen on {config.host}:{config.port}: {exc.strerror}",
                             print_help=False) from None
        catalog = simulator.catalog
        print(f"simulator: {len(catalog.tracks):,} tracks, {len(catalog.artists):,} artists, "
              f"{len(catalog.playlists):,} playlists (seed {config.seed}, {config.profile} "
              f"profile, built in {time.monotonic() - started:.1f} s)")
        for name, value in simulator.env().items():
            print(f"  {name}={value}")
        if opts.env_file:
            lines = [f"{k}={v}" for k, v in simulator.env().items()]
            Path(opts.env_file).write_text("\n".join(lines) + "\n", encoding="utf-8")
            print(f"wrote {opts.env_file}")
        if opts.truth:
            with Path(opts.truth).open("wb") as out:
                for track in catalog.tracks:
                    out.write(orjson.dumps({"id": track.id, "isrc": track.isrc,
                                            **catalog.truth(track),
                                            **simulator.opendata_truth(track)}) + b"\n")
            print(f"wrote ground truth for {len(catalog.tracks):,} tracks to {opts.truth}")
        if opts.tour:
            try:
                ok = run_tour(simulator)
            finally:
                simulator.stop()
            self.exitcode = 0 if ok else 1
            return
        print("serving until Ctrl-C", flush=True)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        try:
            while True:
                time.sleep(3600)
        except (KeyboardInterrupt, SystemExit):
            pass
        finally:
            simulator.stop()
            print("simulator stopped")
