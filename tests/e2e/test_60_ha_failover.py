"""Active/standby HA on the sandbox: ha_pair.yml, replicate.yml, failover.yml and failback.

Its own fleet (not central_fleet): FLEET_HA_NAME / FLEET_HA_PORT (default ``ha`` on 8112). The
tests run in order on one pair: build, replicate, lose the primary VM, fail over, bring the
primary back, fail back, and refuse a failover without a standby.
"""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from conftest import Canaries
from sandbox_fleet import built_fleet, wait_until

LATE_FILE = "written-after-replication.txt"
STANDBY_FILE = "written-on-standby.txt"


@pytest.fixture(scope="module")
def ha_fleet():
    with built_fleet("HA", "ha", 8112, "ha_pair.yml") as fleet:
        fleet.primary, fleet.standby, fleet.lb = ("%s-%s" % (fleet.name, vm) for vm in ("jump-a", "jump-b", "lb"))
        fleet.zones = {fleet.primary: "us-central1-a", fleet.standby: "us-central1-b", fleet.lb: "us-central1-c"}
        yield fleet


@pytest.fixture(scope="module")
def ha_canaries(ha_fleet):
    planted = Canaries(ha_fleet)
    planted.plant()
    return planted


def vm_status(fleet, vm):
    return fleet.compute("zones/%s/instances/%s" % (fleet.zones[vm], vm))["status"]


def power(fleet, vm, verb, want):
    """What Google (or an outage) does to a VM: POST instances/<vm>/stop|start, then wait for ``want``."""
    fleet.compute("zones/%s/instances/%s/%s" % (fleet.zones[vm], vm, verb), method="POST")
    wait_until(lambda: vm_status(fleet, vm), 180, done=lambda answer: answer == want, interval=2,
               explain=lambda current: "%s stayed %s, expected %s" % (vm, current, want))


def states(fleet, vm):
    """``{container: status}`` of the user containers in a jump's own Incus."""
    listed = fleet.host_incus(vm, "list", "--format", "csv", "-c", "ns").stdout.split()
    return dict(line.split(",", 1) for line in listed if line.endswith(("RUNNING", "STOPPED")))


def report(fleet):
    return json.loads((fleet.state / "reports" / ("failover-%s.json" % fleet.name)).read_text())


def user_containers(fleet):
    return {"%s-container" % user for user in fleet.users}


def test_pair_builds_and_users_reach_their_containers_through_the_load_balancer(ha_fleet, ha_canaries):
    for vm, zone in ha_fleet.zones.items():
        assert ha_fleet.compute("zones/%s/instances/%s" % (zone, vm))["status"] == "RUNNING"
    # The users' containers run in the primary jump's own Incus; the standby has none yet.
    assert {name for name, state in states(ha_fleet, ha_fleet.primary).items() if state == "RUNNING"} \
        >= user_containers(ha_fleet)
    assert not user_containers(ha_fleet) & set(states(ha_fleet, ha_fleet.standby))
    haproxy = subprocess.run(["incus", "exec", ha_fleet.vm_container(ha_fleet.lb), "--", "cat", "/etc/haproxy/haproxy.cfg"],
                             capture_output=True, text=True, check=True).stdout
    assert "server %s " % ha_fleet.primary in haproxy and "check backup" in haproxy, haproxy
    # Users' ssh_config dials the load balancer, not a jump.
    nic = ha_fleet.compute("zones/us-central1-c/instances/%s" % ha_fleet.lb)["networkInterfaces"][0]
    lb_address = nic["accessConfigs"][0]["natIP"]
    config = (ha_fleet.state / "clients" / "alice" / "ssh_config").read_text()
    assert "HostName %s" % lb_address in config, config
    ha_canaries.check("ha_pair")


def test_pair_rerun_changes_nothing(ha_fleet, ha_canaries):
    run = ha_fleet.playbook("ha_pair.yml")
    assert run.changed == {}, run.tail()


def test_replicate_leaves_stopped_stamped_replicas_on_the_standby(ha_fleet):
    def stamp():
        return ha_fleet.host_incus(ha_fleet.standby, "config", "get", "alice-container",
                                   "user.fleet.replicated-at").stdout.strip()

    ha_fleet.playbook("replicate.yml")  # first run: full copies
    first = stamp()
    ha_fleet.playbook("replicate.yml")  # then an incremental refresh of the existing replicas
    assert stamp() > first, (first, stamp())
    replicas = states(ha_fleet, ha_fleet.standby)
    assert {name: replicas.get(name) for name in user_containers(ha_fleet)} == \
        {name: "STOPPED" for name in user_containers(ha_fleet)}
    assert stamp().endswith("Z") and stamp().startswith("20"), stamp()


def test_failover_to_the_standby_after_losing_the_primary(ha_fleet, ha_canaries):
    # Written after the last refresh: a failover cannot have it (the data-loss window is real).
    proc = ha_fleet.ssh("alice", "alice-container", "echo late > %s" % LATE_FILE)
    assert proc.returncode == 0, proc.stderr
    time.sleep(5)
    power(ha_fleet, ha_fleet.primary, "stop", "TERMINATED")
    run = ha_fleet.playbook("failover.yml")
    ha_canaries.check("failover to the standby")
    assert ha_fleet.ssh("alice", "alice-container", "test ! -e %s" % LATE_FILE).returncode == 0
    facts = report(ha_fleet)
    assert facts["from"] == ha_fleet.primary and facts["to"] == ha_fleet.standby and not facts["planned"]
    assert 0 < float(facts["recovery_seconds"]) < run.seconds + 1
    assert float(facts["data_loss_window_seconds"]) >= 5
    running = states(ha_fleet, ha_fleet.standby)
    assert all(running[name] == "RUNNING" for name in user_containers(ha_fleet)), running
    ha_fleet.failover_report = facts
    again = ha_fleet.playbook("failover.yml")
    assert again.changed == {}, again.tail()
    assert report(ha_fleet) == facts  # a re-run switches nothing, so it reports nothing new


def test_failback_to_the_primary_keeps_what_was_written_on_the_standby(ha_fleet, ha_canaries):
    proc = ha_fleet.ssh("bob", "bob-container", "echo standby > %s" % STANDBY_FILE)
    assert proc.returncode == 0, proc.stderr
    power(ha_fleet, ha_fleet.primary, "start", "RUNNING")
    run = ha_fleet.playbook("failover.yml", {"failover_to": "primary"})
    ha_canaries.check("failback to the primary")
    proc = ha_fleet.ssh("bob", "bob-container", "cat %s" % STANDBY_FILE)
    assert proc.stdout.strip() == "standby", (proc.stdout, proc.stderr)
    facts = report(ha_fleet)
    assert facts["to"] == ha_fleet.primary and facts["planned"] and float(facts["data_loss_window_seconds"]) == 0
    assert 0 < float(facts["recovery_seconds"]) < run.seconds + 1
    assert {states(ha_fleet, ha_fleet.primary)[n] for n in user_containers(ha_fleet)} == {"RUNNING"}
    assert {states(ha_fleet, ha_fleet.standby)[n] for n in user_containers(ha_fleet)} == {"STOPPED"}
    ha_fleet.failback_report = facts
    again = ha_fleet.playbook("failover.yml", {"failover_to": "primary"})
    assert again.changed == {}, again.tail()


@pytest.mark.parametrize("standby", ["", "absent"])
def test_failover_without_a_standby_fails_before_any_change(ha_fleet, standby):
    before = ha_fleet.admin("stats")["by_route"]
    containers_before = [states(ha_fleet, vm) for vm in (ha_fleet.primary, ha_fleet.standby)]
    name = "%s-jump-z" % ha_fleet.name if standby else ""
    run = ha_fleet.playbook("failover.yml", {"ha_standby_vm": name}, check=False)
    assert run.returncode != 0 and "No standby" in run.output, run.tail()
    after = ha_fleet.admin("stats")["by_route"]
    writes = {route: n - before.get(route, 0) for route, n in after.items()
              if not route.startswith("GET") and n != before.get(route, 0)}
    assert writes == {}, "API writes after bad input: %s" % writes
    assert [states(ha_fleet, vm) for vm in (ha_fleet.primary, ha_fleet.standby)] == containers_before
