"""scale_out.yml: adding 1 backend versus adding 3 to a running sandbox fleet.

The VMs are created in parallel (async gce_instance calls) and every later play runs on all new
hosts at once, so adding 3 should take about as long as adding 1. A fleet ``bench-so`` (own emulator
on port 8115) is built with 1 backend (not timed), grown to 2 (timed: +1), then to 5 (timed: +3),
then torn down. Each growth run is followed by a re-run that must report changed=0.

    .venv/bin/python benchmarks/scale_out.py [--no-write]
"""

from __future__ import annotations

import argparse
import datetime
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests" / "e2e"))

from results import machine, replace_section  # noqa: E402
from sandbox_fleet import SandboxFleet  # noqa: E402

HEADING = "## scale_out.yml: adding 1 backend versus adding 3"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    fleet = SandboxFleet("bench-so", 8115).up()
    try:
        base = fleet.playbook("scale_out.yml", {"fleet_backend_count": 1})
        grown = {}
        for added, count in ((1, 2), (3, 5)):
            grown[added] = fleet.playbook("scale_out.yml", {"fleet_backend_count": count})
            rerun = fleet.playbook("scale_out.yml", {"fleet_backend_count": count})
            assert rerun.changed == {}, "re-run at %d backends changed %s" % (count, rerun.changed)
            grown[added].rerun_seconds = rerun.seconds
    finally:
        fleet.down()
    row = "| %s | %s | %.0f | %.0f | %.0f | %.2f | %.0f |" % (
        datetime.date.today().isoformat(), machine(), base.seconds, grown[1].seconds, grown[3].seconds,
        grown[3].seconds / grown[1].seconds, grown[3].rerun_seconds)
    body = ("Whole `ansible-playbook playbooks/scale_out.yml` wall time on the sandbox (GCE emulator, VMs as "
            "nested-Incus containers, apt through the local cache): first a jump and 1 backend from nothing, then "
            "+1 backend, then +3. Re-run: `.venv/bin/python benchmarks/scale_out.py`.\n\n"
            "| date | machine | jump + 1 backend from nothing (s) | +1 backend (s) | +3 backends (s) | ratio +3/+1 | "
            "re-run at 5, changed=0 (s) |\n|---|---|---|---|---|---|---|\n" + row)
    print(row)
    if not args.no_write:
        replace_section(HEADING, body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
