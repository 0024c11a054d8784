"""failover.yml: recovery time and data-loss window of an active/standby pair losing its primary.

A pair ``bench-ha`` (own emulator on port 8145; users alice and bob) is built with ha_pair.yml and
replicated with replicate.yml (not timed); after a fixed pause (--gap seconds, the "writes since the
last refresh" a real outage would lose) the primary VM is stopped through the Compute API and
failover.yml promotes the standby. The playbook's own report gives the recovery time (start of the
playbook -> every user's container answers SSH through the load balancer) and the data-loss window
(start of the failover - last refresh); the fleet is torn down afterwards. The seeds expect the load
balancer to move users to the second jump and warn that container IPs may change (here they do not).

    .venv/bin/python benchmarks/failover.py [--gap 30] [--no-write]
"""

from __future__ import annotations

import json
import time

from fleet_bench import SandboxFleet, command_line, publish, table_row

HEADING = "## failover.yml: recovery time and data-loss window of an HA pair"


def stop_vm(fleet, vm, zone):
    fleet.compute("zones/%s/instances/%s/stop" % (zone, vm), method="POST")
    while fleet.compute("zones/%s/instances/%s" % (zone, vm))["status"] != "TERMINATED":
        time.sleep(1)


def main():
    parser = command_line(__doc__)
    parser.add_argument("--gap", type=int, default=30, help="seconds between the last refresh and the outage")
    args = parser.parse_args()
    fleet = SandboxFleet("bench-ha", 8145).up()
    try:
        fleet.playbook("ha_pair.yml")
        fleet.playbook("replicate.yml")
        time.sleep(args.gap)
        stop_vm(fleet, "bench-ha-jump-a", "us-central1-a")
        run = fleet.playbook("failover.yml")
        report = json.loads((fleet.state / "reports" / "failover-bench-ha.json").read_text())
        again = fleet.playbook("failover.yml")
        assert again.changed == {}, "re-run changed %s" % again.changed
    finally:
        fleet.down()
    row = table_row("%d" % len(report["addresses"]), "%d" % args.gap, "%.1f" % float(report["recovery_seconds"]),
                    "%.1f" % float(report["data_loss_window_seconds"]), "%.0f" % run.seconds)
    body = ("One unplanned `ansible-playbook playbooks/failover.yml` on the sandbox (GCE emulator; each jump a "
            "nested-Incus container, the load balancer HAProxy in a third). The primary VM is stopped through the "
            "Compute API `--gap` seconds after the last replicate.yml refresh. Recovery: start of the playbook -> "
            "every user's container answers SSH through the load balancer with the user's own ssh_config. Data-loss "
            "window: start of the failover - the replicas' `user.fleet.replicated-at`. Re-run: "
            "`.venv/bin/python benchmarks/failover.py`.\n\n"
            "| date | machine | containers | gap (s) | recovery (s) | data-loss window (s) | playbook wall (s) |\n"
            "|---|---|---|---|---|---|---|\n" + row)
    publish(args, HEADING, body, row)


if __name__ == "__main__":
    main()
