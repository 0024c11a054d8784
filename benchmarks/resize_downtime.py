"""vertical_resize.yml: how long a backend and its user containers are down during a resize.

A fleet ``bench-rs`` (own emulator on port 8125; 1 jump, 1 backend, users alice and bob) is built
(not timed), then its backend, an e2-standard-2 below the size ladder, is resized by the memory rule
with a 0 % threshold, so it steps to the first rung (n2-standard-4). The playbook's own report gives
the downtime from the stop request to SSH answering again and to every container answering SSH from
the jump server; the fleet is torn down afterwards. The seeds quote 2-3 minutes for a manual
stop / set-machine-type / start on GCE.

    .venv/bin/python benchmarks/resize_downtime.py [--no-write]
"""

from __future__ import annotations

import json
import sys

from fleet_bench import SandboxFleet, command_line, publish, table_row

HEADING = "## vertical_resize.yml: downtime of a backend resize"


def main():
    args = command_line(__doc__).parse_args()
    fleet = SandboxFleet("bench-rs", 8125).up()
    backend = "bench-rs-backend-1"
    try:
        fleet.playbook("scale_out.yml", {"fleet_backend_count": 1})
        run = fleet.playbook("vertical_resize.yml", {"resize_host": backend, "resize_memory_threshold": 0})
        report = json.loads((fleet.state / "reports" / ("vertical_resize-%s.json" % backend)).read_text())
        again = fleet.playbook("vertical_resize.yml", {"resize_host": backend, "resize_machine_type": report["to"]})
        assert again.changed == {}, "re-run changed %s" % again.changed
    finally:
        fleet.down()
    row = table_row("%s -> %s" % (report["from"], report["to"]), "%d" % len(report["containers"]),
                    "%.1f" % report["api_running_seconds"], "%.1f" % report["ssh_downtime_seconds"],
                    "%.1f" % report["container_downtime_seconds"], "%.0f" % run.seconds)
    body = ("One `ansible-playbook playbooks/vertical_resize.yml` on the sandbox (GCE emulator, the backend VM a "
            "nested-Incus container; memory rule with a 0 % threshold, so the backend below the ladder steps to its "
            "first rung). Times from the stop request, as the playbook's report gives them. Seed figure for a "
            "manual resize on GCE: 2-3 minutes. Re-run: `.venv/bin/python benchmarks/resize_downtime.py`.\n\n"
            "| date | machine | resize | containers | API: VM running again (s) | SSH back (s) | "
            "containers answering (s) | whole playbook (s) |\n|---|---|---|---|---|---|---|---|\n" + row)
    publish(args, HEADING, body, row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
