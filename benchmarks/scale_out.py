"""scale_out.yml: adding 1 backend versus adding 3 to a running sandbox fleet.

The VMs are created in parallel (async gce_instance calls) and every later play runs on all new
hosts at once, so adding 3 should take about as long as adding 1. A fleet ``bench-so`` (own emulator
on port 8115) is built with 1 backend (not timed), grown to 2 (timed: +1), then to 5 (timed: +3),
then torn down. Each growth run is followed by a re-run that must report changed=0.

    .venv/bin/python benchmarks/scale_out.py [--no-write]
"""

from __future__ import annotations

import sys

from fleet_bench import SandboxFleet, command_line, publish, table_row

HEADING = "## scale_out.yml: adding 1 backend versus adding 3"


def main():
    args = command_line(__doc__).parse_args()
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
    row = table_row("%.0f" % base.seconds, "%.0f" % grown[1].seconds, "%.0f" % grown[3].seconds,
                    "%.2f" % (grown[3].seconds / grown[1].seconds), "%.0f" % grown[3].rerun_seconds)
    body = ("Whole `ansible-playbook playbooks/scale_out.yml` wall time on the sandbox (GCE emulator, VMs as "
            "nested-Incus containers, apt through the local cache): first a jump and 1 backend from nothing, then "
            "+1 backend, then +3. Re-run: `.venv/bin/python benchmarks/scale_out.py`.\n\n"
            "| date | machine | jump + 1 backend from nothing (s) | +1 backend (s) | +3 backends (s) | ratio +3/+1 | "
            "re-run at 5, changed=0 (s) |\n|---|---|---|---|---|---|---|\n" + row)
    publish(args, HEADING, body, row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
