"""scale_out.yml on the sandbox: the fleet comes up reachable, re-runs change nothing, and it grows."""

from __future__ import annotations

import subprocess


def vm_status(fleet, vm):
    return fleet.compute("zones/us-central1-a/instances/%s" % vm)["status"]


def test_scale_out_builds_a_fleet_users_reach_through_the_jump(central_fleet, canaries):
    for vm in ("%s-jump-1" % central_fleet.name, "%s-backend-1" % central_fleet.name,
               "%s-backend-2" % central_fleet.name):
        assert vm_status(central_fleet, vm) == "RUNNING"
        state = subprocess.run(["incus", "list", central_fleet.vm_container(vm), "--format", "csv", "-c", "s"],
                               capture_output=True, text=True, check=True).stdout.strip()
        assert state == "RUNNING", "%s: container %r" % (vm, state)
    # Each user's container lives in a backend's own Incus, not on the sandbox host.
    homes = {}
    for backend in ("%s-backend-1" % central_fleet.name, "%s-backend-2" % central_fleet.name):
        listed = central_fleet.host_incus(backend, "list", "--format", "csv", "-c", "n").stdout.split()
        homes.update({name: backend for name in listed})
    assert {"%s-container" % u for u in central_fleet.users} <= set(homes)
    canaries.check("scale-out")


def test_second_run_changes_nothing(central_fleet, canaries):
    run = central_fleet.playbook("scale_out.yml")
    assert run.changed == {}, run.tail()
    canaries.check("scale-out re-run")


def test_negative_backend_count_fails_before_anything_changes(central_fleet):
    before = central_fleet.admin("stats")["by_route"]
    run = central_fleet.playbook("scale_out.yml", {"fleet_backend_count": -1}, check=False)
    assert run.returncode != 0 and "fleet_backend_count" in run.output
    after = central_fleet.admin("stats")["by_route"]
    writes = {route: n - before.get(route, 0) for route, n in after.items()
              if not route.startswith("GET") and n != before.get(route, 0)}
    assert writes == {}, "API writes after bad input: %s" % writes


def test_grow_to_three_backends(central_fleet, canaries):
    run = central_fleet.playbook("scale_out.yml", {"fleet_backend_count": 3})
    third = "%s-backend-3" % central_fleet.name
    assert vm_status(central_fleet, third) == "RUNNING"
    # The jump routes the third backend's container subnet (10.0.5.0/24) to it.
    jump = central_fleet.vm_container("%s-jump-1" % central_fleet.name)
    routes = subprocess.run(["incus", "exec", jump, "--", "ip", "-4", "route"], capture_output=True, text=True,
                            check=True).stdout
    assert "10.0.5.0/24" in routes, routes
    assert central_fleet.host_incus(third, "info").returncode == 0
    canaries.check("scale-out to 3 backends")


def test_site_yml_on_the_grown_fleet_changes_nothing(central_fleet, canaries):
    # site.yml with the central topology is scale_out.yml: this is also the re-run after growing.
    run = central_fleet.playbook("site.yml", {"fleet_backend_count": 3})
    assert run.changed == {}, run.tail()
    bad = central_fleet.playbook("site.yml", {"fleet_topology": "mesh"}, check=False)
    assert bad.returncode != 0 and "fleet_topology must be one of central, independent, hybrid or ha" in bad.output
    canaries.check("site.yml")
