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

import argparse
import datetime
import json
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests" / "e2e"))

from results import machine, replace_section  # noqa: E402
from sandbox_fleet import SandboxFleet  # noqa: E402

HEADING = "## vertical_resize.yml: downtime of a backend resize"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
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
    row = "| %s | %s | %s -> %s | %d | %.1f | %.1f | %.1f | %.0f |" % (
        datetime.date.today().isoformat(), machine(), report["from"], report["to"], len(report["containers"]),
        report["api_running_seconds"], report["ssh_downtime_seconds"], report["container_downtime_seconds"],
        run.seconds)
    body = ("One `ansible-playbook playbooks/vertical_resize.yml` on the sandbox (GCE emulator, the backend VM a "
            "nested-Incus container; memory rule with a 0 % threshold, so the backend below the ladder steps to its "
            "first rung). Times from the stop request, as the playbook's report gives them. Seed figure for a "
            "manual resize on GCE: 2-3 minutes. Re-run: `.venv/bin/python benchmarks/resize_downtime.py`.\n\n"
            "| date | machine | resize | containers | API: VM running again (s) | SSH back (s) | "
            "containers answering (s) | whole playbook (s) |\n|---|---|---|---|---|---|---|---|\n" + row)
    print(row)
    if not args.no_write:
        replace_section(HEADING, body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
