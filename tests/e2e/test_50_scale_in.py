"""scale_in.yml on the sandbox: the fleet shrinks from 3 backends to 2 and nobody loses anything.

test_10 grows the shared fleet to 3 backends (when this file runs alone, it grows it here). A user
container is put on backend-3 first, as if placement had chosen it, so the drain has a user to move:
afterwards that user must reach the container on its new backend through a rewritten ssh_config,
with the canary file intact.
"""

from __future__ import annotations

import subprocess
import urllib.error

import pytest


def vm_exists(fleet, vm):
    try:
        fleet.compute("zones/us-central1-a/instances/%s" % vm)
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return False
        raise
    return True


def containers_on(fleet, vm):
    """{name: status} of the containers in a backend's own Incus."""
    listed = fleet.host_incus(vm, "list", "--format", "csv", "-c", "ns")
    assert listed.returncode == 0, listed.stderr
    return dict(line.split(",")[:2] for line in listed.stdout.splitlines() if line)


def api_writes_during(fleet, run_playbook):
    before = fleet.admin("stats")["by_route"]
    run = run_playbook()
    after = fleet.admin("stats")["by_route"]
    return run, {route: n - before.get(route, 0) for route, n in after.items()
                 if not route.startswith("GET") and n != before.get(route, 0)}


def move_by_hand(fleet, name, source, target, scratch):
    """incus export on one backend, incus import on another (test set-up only)."""
    tarball = "/root/%s.tar.gz" % name
    local = str(scratch / ("%s.tar.gz" % name))
    for argv in (["incus", "exec", fleet.vm_container(source), "--", "incus", "stop", name],
                 ["incus", "exec", fleet.vm_container(source), "--", "incus", "export", name, tarball,
                  "--instance-only"],
                 ["incus", "file", "pull", fleet.vm_container(source) + tarball, local],
                 ["incus", "file", "push", local, fleet.vm_container(target) + tarball],
                 ["incus", "exec", fleet.vm_container(target), "--", "incus", "import", tarball],
                 ["incus", "exec", fleet.vm_container(target), "--", "incus", "start", name],
                 ["incus", "exec", fleet.vm_container(source), "--", "incus", "delete", name],
                 ["incus", "exec", fleet.vm_container(source), "--", "rm", tarball],
                 ["incus", "exec", fleet.vm_container(target), "--", "rm", tarball]):
        proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=600)
        assert proc.returncode == 0, "%s: %s" % (" ".join(argv), proc.stderr)


@pytest.fixture(scope="module")
def three_backends(central_fleet, canaries, tmp_path_factory):
    fleet = central_fleet
    third = "%s-backend-3" % fleet.name
    if not vm_exists(fleet, third):
        fleet.playbook("scale_out.yml", {"fleet_backend_count": 3})
    homes = {vm: containers_on(fleet, vm) for vm in ("%s-backend-%d" % (fleet.name, i) for i in (1, 2, 3))}
    if "bob-container" not in homes[third]:
        source = next(vm for vm, held in homes.items() if "bob-container" in held)
        move_by_hand(fleet, "bob-container", source, third, tmp_path_factory.mktemp("move"))
    return third


def test_bad_requests_fail_before_any_change(central_fleet, three_backends):
    fleet = central_fleet
    run, writes = api_writes_during(fleet, lambda: fleet.playbook(
        "scale_in.yml", {"fleet_backend_count": -1}, check=False))
    assert run.returncode != 0 and "fleet_backend_count must be a whole number" in run.output, run.tail()
    assert writes == {}, writes
    # refuse: backend-3 holds bob's container, so nothing may happen.
    run, writes = api_writes_during(fleet, lambda: fleet.playbook(
        "scale_in.yml", {"fleet_backend_count": 2, "scale_in_drain": "refuse"}, check=False))
    assert run.returncode != 0 and "bob-container" in run.output and "scale_in_force" in run.output, run.tail()
    assert writes == {}, writes
    assert vm_exists(fleet, three_backends) and "bob-container" in containers_on(fleet, three_backends)


def test_scale_in_to_two_backends(central_fleet, canaries, three_backends):
    fleet = central_fleet
    third = three_backends
    moved = set(containers_on(fleet, third))
    assert "bob-container" in moved
    run = fleet.playbook("scale_in.yml", {"fleet_backend_count": 2})

    assert not vm_exists(fleet, third)
    disk = fleet.compute("zones/us-central1-a/disks/%s-data" % third)
    assert not disk.get("users"), "the kept data disk is still attached: %s" % disk.get("users")
    jump = fleet.vm_container("%s-jump-1" % fleet.name)
    routes = subprocess.run(["incus", "exec", jump, "--", "ip", "-4", "route"], capture_output=True, text=True,
                            check=True).stdout
    assert "10.0.5.0/24" not in routes, routes
    assert "10.0.3.0/24" in routes and "10.0.4.0/24" in routes, routes
    remaining = {}
    for vm in ("%s-backend-1" % fleet.name, "%s-backend-2" % fleet.name):
        remaining.update(containers_on(fleet, vm))
    assert {name: remaining.get(name) for name in moved} == {name: "RUNNING" for name in moved}
    # bob reaches his container on its new backend through his rewritten ssh_config; canary intact.
    canaries.check("scale-in")
    print("\nscale-in 3 -> 2 backends, moving %s: %.0f s" % (", ".join(sorted(moved)), run.seconds))


def test_scale_in_again_changes_nothing(central_fleet, canaries):
    run, writes = api_writes_during(central_fleet, lambda: central_fleet.playbook(
        "scale_in.yml", {"fleet_backend_count": 2}))
    assert run.changed == {}, run.tail()
    assert writes == {}, writes
    canaries.check("scale-in re-run")
