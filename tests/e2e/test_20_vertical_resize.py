"""vertical_resize.yml on the sandbox: a backend holding a user container grows to n2-standard-4.

The emulated VM is an Incus container whose limits follow its machine type, so the new size is
visible on the sandbox host; the user's container inside it must come back with its canary, and
the playbook's own report must say how long the VM and the containers were down.
"""

from __future__ import annotations

import json
import os
import subprocess

NEW_TYPE = "n2-standard-4"


def backends(fleet):
    listed = fleet.compute("zones/us-central1-a/instances")
    return sorted(i["name"] for i in listed.get("items", []) if i["labels"].get("fleet-role") == "backend")


def home_of(fleet, container):
    for backend in backends(fleet):
        if container in fleet.host_incus(backend, "list", "--format", "csv", "-c", "n").stdout.split():
            return backend
    raise AssertionError("%s is on no backend" % container)


def api_writes_during(fleet, run_playbook):
    """Run ``run_playbook()`` and return it with the emulator's non-GET request counts it caused."""
    before = fleet.admin("stats")["by_route"]
    run = run_playbook()
    after = fleet.admin("stats")["by_route"]
    writes = {route: n - before.get(route, 0) for route, n in after.items()
              if not route.startswith("GET") and n != before.get(route, 0)}
    return run, writes


def said(run, text):
    """``text`` in the playbook's output, whatever the line wrapping of its messages."""
    return " ".join(text.split()) in " ".join(run.output.split())


def vm_limit(fleet, vm, key):
    return subprocess.run(["incus", "config", "get", fleet.vm_container(vm), key], capture_output=True, text=True,
                          check=True).stdout.strip()


def test_resize_a_backend_with_a_user_container(central_fleet, canaries):
    fleet = central_fleet
    backend = home_of(fleet, "alice-container")
    assert fleet.compute("zones/us-central1-a/instances/%s" % backend)["machineType"].endswith("/e2-standard-2")
    run = fleet.playbook("vertical_resize.yml", {"resize_host": backend, "resize_machine_type": NEW_TYPE})

    vm = fleet.compute("zones/us-central1-a/instances/%s" % backend)
    assert vm["machineType"].endswith("/" + NEW_TYPE) and vm["status"] == "RUNNING"
    # n2-standard-4 = 4 vCPUs (capped at the sandbox's cores) and 16 GiB.
    assert vm_limit(fleet, backend, "limits.cpu") == str(min(4, os.cpu_count()))
    assert vm_limit(fleet, backend, "limits.memory") == "16384MiB"
    # The data disk was snapshotted first.
    snapshots = [s["name"] for s in fleet.compute("global/snapshots").get("items", [])]
    assert any(name.startswith("%s-data-resize-" % backend) for name in snapshots), snapshots
    # The user's container runs again inside the resized VM, and its canary is intact.
    state = fleet.host_incus(backend, "list", "alice-container", "--format", "csv", "-c", "s").stdout.strip()
    assert state == "RUNNING"
    canaries.check("vertical resize")

    report = json.loads((fleet.state / "reports" / ("vertical_resize-%s.json" % backend)).read_text())
    assert report["from"] == "e2-standard-2" and report["to"] == NEW_TYPE
    assert "alice-container" in report["containers"]
    assert 0 < report["ssh_downtime_seconds"] <= report["container_downtime_seconds"] < run.seconds
    print("\nvertical resize %s -> %s: SSH back after %.1f s, containers answering after %.1f s (playbook %.0f s)"
          % (report["from"], report["to"], report["ssh_downtime_seconds"], report["container_downtime_seconds"],
             run.seconds))


def test_same_size_again_changes_nothing(central_fleet, canaries):
    backend = home_of(central_fleet, "alice-container")
    run, writes = api_writes_during(central_fleet, lambda: central_fleet.playbook(
        "vertical_resize.yml", {"resize_host": backend, "resize_machine_type": NEW_TYPE}))
    assert run.changed == {}, run.tail()
    assert writes == {}, writes
    canaries.check("vertical resize re-run")


def test_memory_below_threshold_changes_nothing(central_fleet):
    backend = home_of(central_fleet, "alice-container")
    run, writes = api_writes_during(central_fleet, lambda: central_fleet.playbook(
        "vertical_resize.yml", {"resize_host": backend, "resize_memory_threshold": 100}))
    assert run.changed == {} and writes == {}, run.tail()
    assert said(run, "not above 100 %): nothing to do"), run.tail()


def test_top_of_the_ladder_fails_before_any_change(central_fleet):
    """Memory above a 0 % threshold asks for the next rung; a ladder ending at the current size has none."""
    backend = home_of(central_fleet, "alice-container")
    run, writes = api_writes_during(central_fleet, lambda: central_fleet.playbook(
        "vertical_resize.yml",
        {"resize_host": backend, "resize_memory_threshold": 0, "fleet_size_ladder": ["n2-standard-2", NEW_TYPE]},
        check=False))
    assert run.returncode != 0 and said(run, "add a backend with scale_out.yml instead"), run.tail()
    assert writes == {}, writes


def test_size_not_on_the_ladder_fails_before_any_change(central_fleet):
    backend = home_of(central_fleet, "alice-container")
    run, writes = api_writes_during(central_fleet, lambda: central_fleet.playbook(
        "vertical_resize.yml", {"resize_host": backend, "resize_machine_type": "n2-standard-6"}, check=False))
    assert run.returncode != 0 and said(run, "must be on the size ladder fleet_size_ladder"), run.tail()
    assert writes == {}, writes
    assert central_fleet.compute("zones/us-central1-a/instances/%s" % backend)["machineType"].endswith("/" + NEW_TYPE)


def test_unknown_host_fails_before_any_change(central_fleet):
    run, writes = api_writes_during(central_fleet, lambda: central_fleet.playbook(
        "vertical_resize.yml", {"resize_host": "no-such-vm", "resize_machine_type": NEW_TYPE}, check=False))
    assert run.returncode != 0 and said(run, "resize_host must be one of the fleet's VMs"), run.tail()
    assert writes == {}, writes
