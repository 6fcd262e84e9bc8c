"""Run a shell command and write its peak RSS (kB): ``python bench/peak_rss.py OUT SCRIPT``.

Why a launcher: Linux carries a process's peak RSS across ``exec``, and a child made by fork
or vfork (``posix_spawn``) from the benchmark process, which holds the simulator's catalog
(hundreds of MB), starts with that process's peak as its own: a 50 MB command measured from
an 800 MB parent reads 809 MB. Forked from this small launcher instead, the command's
``ru_maxrss`` is its own, give or take the launcher's 10 MB.
"""

from __future__ import annotations

import os
import sys


def main() -> int:
    out, script = sys.argv[1], sys.argv[2]
    pid = os.fork()
    if pid == 0:
        try:
            os.execv("/bin/sh", ["/bin/sh", "-c", script])
        finally:
            os._exit(127)
    _, status, usage = os.wait4(pid, 0)
    with open(out, "w", encoding="ascii") as handle:
        handle.write(f"{usage.ru_maxrss}\n")
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.exit(main())
