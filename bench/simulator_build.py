"""How long the simulator takes to build and start, and how much memory it holds.

Run: .venv/bin/python -m bench.simulator_build [size ...]
Each size runs in a fresh process so peak RSS is that size's own.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time

from runclub_spiders.simulator import Catalog, Simulator


def measure(size: int) -> dict[str, float]:
    started = time.perf_counter()
    catalog = Catalog(size, seed=1)
    built = time.perf_counter()
    simulator = Simulator(catalog=catalog, size=size).start()
    serving = time.perf_counter()
    simulator.stop()
    return {"size": size, "tracks": len(catalog.tracks), "catalog_s": built - started,
            "index_and_start_s": serving - built, "total_s": serving - started,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main(sizes: list[int]) -> None:
    print("| size | tracks | catalog (s) | index + start (s) | total (s) | peak RSS (MB) |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for size in sizes:
        out = subprocess.run([sys.executable, "-m", "bench.simulator_build", "--one", str(size)],
                             capture_output=True, text=True, check=True).stdout
        r = json.loads(out)
        print(f"| {r['size']:,} | {r['tracks']:,} | {r['catalog_s']:.2f} | "
              f"{r['index_and_start_s']:.2f} | {r['total_s']:.2f} | {r['peak_rss_mb']:.0f} |")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--one"]:
        print(json.dumps(measure(int(sys.argv[2]))))
    else:
        main([int(a) for a in sys.argv[1:]] or [10_000, 100_000])
