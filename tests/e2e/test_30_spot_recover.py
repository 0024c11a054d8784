"""spot_recover.yml on the sandbox: a preempted backend comes back with its containers, and when the
zone has no spot capacity it is recreated on-demand on the same data disk with nothing lost."""

from __future__ import annotations

import json
import subprocess
import threading
import time

from sandbox_fleet import PROJECT, ZONE
from spot_workload import wait_status


def api_writes(fleet, before):
    after = fleet.admin("stats")["by_route"]
    return {route: n - before.get(route, 0) for route, n in after.items()
            if not route.startswith("GET") and "operations.wait" not in route and n != before.get(route, 0)}


def running_containers(fleet, vm):
    listed = fleet.host_incus(vm, "list", "--format", "csv", "-c", "ns")
    assert listed.returncode == 0, "%s: nested Incus does not answer: %s" % (vm, listed.stderr)
    return {line.split(",")[0] for line in listed.stdout.split() if line.endswith(",RUNNING")}


def home_of(fleet, container):
    for backend in ("%s-backend-1" % fleet.name, "%s-backend-2" % fleet.name):
        if container in running_containers(fleet, backend):
            return backend
    raise AssertionError("no backend runs %s" % container)


def preempt(fleet, vm):
    fleet.admin("preempt", {"project": PROJECT, "zone": ZONE, "instance": vm, "notice_seconds": 0})
    wait_status(fleet, vm, "TERMINATED", 180)


def report(fleet, vm):
    with open(fleet.state / "reports" / ("spot_recover-%s.json" % vm), encoding="utf-8") as handle:
        return json.load(handle)


def check_report(fleet, vm, action):
    data = report(fleet, vm)
    assert data["host"] == vm and data["action"] == action, data
    seconds = data["seconds"]
    for phase in ("detected_to_running", "running_to_ssh", "ssh_to_containers", "total"):
        assert isinstance(seconds[phase], (int, float)) and seconds[phase] >= 0, data
    assert seconds["total"] > 0, data
    print("\nspot_recover %s (%s): %s" % (vm, action, json.dumps(seconds)))
    return data


def test_nothing_preempted_changes_nothing(central_fleet):
    before = central_fleet.admin("stats")["by_route"]
    run = central_fleet.playbook("spot_recover.yml")
    assert run.changed == {}, run.tail()
    assert api_writes(central_fleet, before) == {}
    assert "no preempted VM in fleet %s" % central_fleet.name in run.output
    print("\nspot_recover.yml with nothing preempted: %.1f s" % run.seconds)


def test_unknown_host_fails_before_any_change(central_fleet):
    before = central_fleet.admin("stats")["by_route"]
    run = central_fleet.playbook("spot_recover.yml", {"recover_hosts": ["%s-backend-9" % central_fleet.name]},
                                 check=False)
    assert run.returncode != 0
    assert "%s-backend-9, which is not a VM of fleet %s" % (central_fleet.name, central_fleet.name) in run.output, \
        run.tail()
    assert api_writes(central_fleet, before) == {}


def test_preempted_vm_outside_the_fleet_is_left_alone(central_fleet):
    foreign = "%s-foreign-1" % central_fleet.name
    body = {
        "name": foreign,
        "machineType": "zones/%s/machineTypes/e2-micro" % ZONE,
        "disks": [{"boot": True, "autoDelete": True,
                   "initializeParams": {"sourceImage": "projects/debian-cloud/global/images/family/debian-12"}}],
        "networkInterfaces": [{"network": "global/networks/default"}],
        "scheduling": {"provisioningModel": "SPOT", "instanceTerminationAction": "STOP"},
        "labels": {"fleet": "someone-else"},
    }
    central_fleet.compute("zones/%s/instances" % ZONE, method="POST", body=body)
    try:
        wait_status(central_fleet, foreign, "RUNNING", 180)
        preempt(central_fleet, foreign)
        run = central_fleet.playbook("spot_recover.yml")
        assert run.changed == {}, run.tail()
        assert central_fleet.instance(foreign)["status"] == "TERMINATED"
        named = central_fleet.playbook("spot_recover.yml", {"recover_hosts": [foreign]}, check=False)
        assert named.returncode != 0 and "which is not a VM of fleet" in named.output, named.tail()
        assert central_fleet.instance(foreign)["status"] == "TERMINATED"
    finally:
        central_fleet.compute("zones/%s/instances/%s" % (ZONE, foreign), method="DELETE")


def test_preempted_backend_is_started_with_its_containers(central_fleet, canaries):
    vm = home_of(central_fleet, "alice-container")
    before = running_containers(central_fleet, vm)
    preempt(central_fleet, vm)

    run = central_fleet.playbook("spot_recover.yml")

    assert central_fleet.instance(vm)["status"] == "RUNNING"
    assert central_fleet.instance(vm)["scheduling"]["provisioningModel"] == "SPOT"
    assert before <= running_containers(central_fleet, vm)
    canaries.check("spot recovery by restart")
    data = check_report(central_fleet, vm, "started")
    assert "alice-container" in data["containers"]["expected"]
    again = central_fleet.playbook("spot_recover.yml")
    assert again.changed == {}, again.tail()
    central_fleet.spot_restart = run


def test_no_spot_capacity_recreates_on_demand_on_the_same_data_disk(central_fleet, canaries):
    vm = home_of(central_fleet, "bob-container")
    old = central_fleet.instance(vm)
    old_data = sorted(d["source"] for d in old["disks"] if not d.get("boot"))
    before = running_containers(central_fleet, vm)
    # With no latency the emulator may answer the start call with its operation already DONE but not
    # yet carrying the error (it returns the live object); a short latency keeps the error visible.
    central_fleet.admin("latency", {"seconds": 0.2})
    try:
        central_fleet.admin("fail_next_operation", {"reason": "ZONE_RESOURCE_POOL_EXHAUSTED", "operation_type": "start"})
        preempt(central_fleet, vm)
        run = central_fleet.playbook("spot_recover.yml")
    finally:
        central_fleet.admin("latency", {"seconds": 0})

    new = central_fleet.instance(vm)
    assert new["status"] == "RUNNING"
    assert new["id"] != old["id"], "the VM was not recreated"
    assert new["scheduling"]["provisioningModel"] == "STANDARD" and not new["scheduling"]["preemptible"]
    assert sorted(d["source"] for d in new["disks"] if not d.get("boot")) == old_data
    assert new["labels"] == old["labels"] and new["metadata"].get("items") == old["metadata"].get("items")
    assert before <= running_containers(central_fleet, vm)
    # What lived on the lost boot disk is back: the jump server's account on the backend, forwarding.
    vm_container = central_fleet.vm_container(vm)
    account = subprocess.run(["incus", "exec", vm_container, "--", "getent", "passwd", "fleet"],
                             capture_output=True, text=True, check=False)
    assert account.returncode == 0, "the backend admin account did not come back"
    forwarding = subprocess.run(["incus", "exec", vm_container, "--", "sysctl", "-n", "net.ipv4.ip_forward"],
                                capture_output=True, text=True, check=True).stdout.strip()
    assert forwarding == "1"
    # Users reach their containers with their own keys and strict host keys, through the jump.
    canaries.check("spot recovery on-demand")
    data = check_report(central_fleet, vm, "recreated-on-demand")
    assert "bob-container" in data["containers"]["expected"] and data["spot_after"] is False
    again = central_fleet.playbook("spot_recover.yml")
    assert again.changed == {}, again.tail()
    central_fleet.spot_recreate = run


def test_spot_aware_container_gets_a_replacement_until_its_original_is_back(central_fleet):
    vm = home_of(central_fleet, "alice-container")
    other = next(b for b in ("%s-backend-1" % central_fleet.name, "%s-backend-2" % central_fleet.name) if b != vm)
    aware, replacement = "sr-aware", "sr-aware-spot-replacement"
    made = central_fleet.host_incus(vm, "launch", "fleet-base", aware, "-c", "user.spot-aware=enabled",
                                    "-c", "limits.cpu=1", "-c", "limits.memory=256MiB")
    assert made.returncode == 0, made.stderr
    seen = {}
    try:
        central_fleet.admin("preempt", {"project": PROJECT, "zone": ZONE, "instance": vm, "notice_seconds": 30})
        outcome = {}
        runner = threading.Thread(target=lambda: outcome.update(run=central_fleet.playbook(
            "spot_recover.yml", {"spot_notice_hosts": [vm], "spot_scale_down_delay": 5}, check=False)))
        runner.start()
        while runner.is_alive() and not seen:
            shown = central_fleet.host_incus(other, "query", "/1.0/instances/%s" % replacement)
            if shown.returncode == 0:
                config = json.loads(shown.stdout)["config"]
                seen = {"status": json.loads(shown.stdout)["status"], "original": central_fleet.instance(vm)["status"],
                        "replaces": config.get("user.fleet.replaces"),
                        "scale_back_at": config.get("user.fleet.scale-back-at"), "at": time.time()}
            time.sleep(1)
        runner.join()
        run = outcome["run"]
        assert run.returncode == 0, run.tail()
        # The replacement ran on the other backend while the original's VM was still going down,
        # and carried its own schedule.
        assert seen, "no replacement appeared on %s" % other
        assert seen["replaces"] == "%s/%s" % (vm, aware)
        assert int(seen["scale_back_at"]) > 0
        assert central_fleet.instance(vm)["status"] == "RUNNING"
        assert aware in running_containers(central_fleet, vm)
        # 5 s later, with the original running again, the run's scale-back phase removed it.
        assert central_fleet.host_incus(other, "info", replacement).returncode != 0, "replacement still there"
        data = check_report(central_fleet, vm, "started")
        assert data["replacements"] == [{"name": replacement, "host": other}], data
        print("replacement seen %s; up %.1f s after detection" % (seen, data["replacements_seconds_after_detection"]))
        again = central_fleet.playbook("spot_recover.yml")
        assert again.changed == {}, again.tail()
    finally:
        central_fleet.host_incus(vm, "delete", "--force", aware)
        central_fleet.host_incus(other, "delete", "--force", replacement)


def test_scale_back_schedule_survives_in_the_world(central_fleet):
    """A replacement whose time has not come stays; once due (and its original runs) a fresh process removes it."""
    vm = home_of(central_fleet, "alice-container")
    other = next(b for b in ("%s-backend-1" % central_fleet.name, "%s-backend-2" % central_fleet.name) if b != vm)
    replacement = "sr-orphan-spot-replacement"
    made = central_fleet.host_incus(other, "launch", "fleet-base", replacement, "-c", "limits.memory=128MiB",
                                    "-c", "user.fleet.replaces=%s/alice-container" % vm,
                                    "-c", "user.fleet.scale-back-at=%d" % (time.time() + 3600))
    assert made.returncode == 0, made.stderr
    try:
        early = central_fleet.playbook("spot_scale_back.yml")
        assert early.changed == {}, early.tail()
        assert central_fleet.host_incus(other, "info", replacement).returncode == 0
        assert central_fleet.host_incus(other, "config", "set", replacement,
                                        "user.fleet.scale-back-at=%d" % (time.time() - 1)).returncode == 0
        due = central_fleet.playbook("spot_scale_back.yml")
        assert due.changed == {other: 1}, due.tail()
        assert central_fleet.host_incus(other, "info", replacement).returncode != 0
    finally:
        central_fleet.host_incus(other, "delete", "--force", replacement)
