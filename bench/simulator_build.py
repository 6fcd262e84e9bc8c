"""How long the simulator takes to build and start, and how much memory it holds.

Run: .venv/bin/python -m bench.simulator_build [size ...]
Each size runs in a fresh process, started through ``bench/peak_rss.py`` (by
``bench.crawl.spawn``) so that its peak RSS is its own: a child forked straight from this
process would start with this process's peak (see ``bench/peak_rss.py``).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

from runclub_spiders.simulator import Catalog, Simulator


def measure(size: int) -> dict[str, float]:
    started = time.perf_counter()
    catalog = Catalog(size, seed=1)
    built = time.perf_counter()
    with Simulator(catalog=catalog):
        serving = time.perf_counter()
    return {"size": size, "tracks": len(catalog.tracks), "catalog_s": built - started,
            "index_and_start_s": serving - built, "total_s": serving - started}


def main(sizes: list[int]) -> None:
    from bench.crawl import spawn  # noqa: PLC0415

    print("| size | tracks | catalog (s) | index + start (s) | total (s) | peak RSS (MB) |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    with tempfile.TemporaryDirectory(prefix="runclub-simbuild-") as tmp:
        for size in sizes:
            out = Path(tmp) / f"{size}.json"
            _, peak_mb = spawn([sys.executable, "-m", "bench.simulator_build", "--one", str(size)],
                               dict(os.environ), Path(tmp) / f"{size}-stderr.txt", stdout=out)
            r = json.loads(out.read_text())
            print(f"| {r['size']:,} | {r['tracks']:,} | {r['catalog_s']:.2f} | "
                  f"{r['index_and_start_s']:.2f} | {r['total_s']:.2f} | {peak_mb:.0f} |")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--one"]:
        print(json.dumps(measure(int(sys.argv[2]))))
    else:
        main([int(a) for a in sys.argv[1:]] or [10_000, 100_000])
