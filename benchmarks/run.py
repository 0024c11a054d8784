"""`make benchmarks`: run every benchmark in turn; each rewrites its own section of RESULTS.md.

Benchmarks are measurements, not tests: run them on a quiet machine (nothing else running) and
commit the updated RESULTS.md. `python benchmarks/run.py NAME...` runs only the named ones.
"""

from __future__ import annotations

import pathlib
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent
BENCHMARKS = ["incus_create", "incus_inventory", "gce_inventory", "gce_operation_delay", "scale_out",
              "resize_downtime", "failover", "spot_protection"]


def main(names):
    failed = []
    for name in names or BENCHMARKS:
        print("=== benchmark %s ===" % name, flush=True)
        if subprocess.call([sys.executable, str(HERE / (name + ".py"))], cwd=HERE) != 0:
            failed.append(name)
    if failed:
        print("failed: %s" % ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
