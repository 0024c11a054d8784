"""scale_out.yml's other shapes on the sandbox: independent jump servers behind a load balancer,
then the same fleet grown into the hybrid (the jumps in front of a backend).

Its own fleet (not central_fleet): FLEET_TOPO_NAME / FLEET_TOPO_PORT (default ``topo`` on 8131).
The tests run in order on one fleet: build 2 independent jumps with alice on jump 1 and bob on
jump 2, look at the world (each jump's Incus, HAProxy's configuration, the emulator's firewall
rules, each user's own ssh through the load balancer), re-run and --check, make bob's container
again after it was deleted, then grow to hybrid with a new user carol whose container lands on the
backend (FLEET_TOPO_HYBRID=0 skips that step, about 12 of the module's 33 minutes on a loaded 2-core
machine).
"""

from __future__ import annotations

import os
import subprocess

import pytest

from conftest import Canaries
from sandbox_fleet import BIN, REPO, SandboxFleet


def user_entry(fleet, user, **extra):
    """A fleet_users entry as the harness writes it (the key read from the state dir when the playbook runs)."""
    return dict({"name": user, "keys": ["{{ lookup('ansible.builtin.file', fleet_state_dir + '/%s.pub') }}" % user],
                 "identity_file": str(fleet.state / user)}, **extra)


@pytest.fixture(scope="module")
def topo_fleet():
    # up() makes carol's key too; she joins the fleet only when it grows to hybrid.
    fleet = SandboxFleet(os.environ.get("FLEET_TOPO_NAME", "topo"), os.environ.get("FLEET_TOPO_PORT", "8131"),
                         users=("alice", "bob", "carol"))
    fleet.overrides = {"fleet_topology": "independent", "fleet_jump_count": 2, "fleet_backend_count": 0,
                       "fleet_users": [user_entry(fleet, "alice", jump=1), user_entry(fleet, "bob", jump=2)]}
    fleet.up()
    fleet.users = ("alice", "bob")  # the users the canaries follow
    fleet.jumps = ["%s-jump-%d" % (fleet.name, i) for i in (1, 2)]
    fleet.lb = "%s-lb" % fleet.name
    try:
        fleet.playbook("scale_out.yml")
        yield fleet
    finally:
        if os.environ.get("FLEET_E2E_KEEP") != "1":
            fleet.down()


@pytest.fixture(scope="module")
def topo_canaries(topo_fleet):
    planted = Canaries(topo_fleet)
    planted.plant()
    return planted


def containers(fleet, vm):
    return set(fleet.host_incus(vm, "list", "--format", "csv", "-c", "n").stdout.split())


def in_vm(fleet, vm, *command):
    return subprocess.run(["incus", "exec", fleet.vm_container(vm), "--", *command], capture_output=True,
                          text=True, check=True).stdout


def address(fleet, vm):
    return fleet.compute("zones/us-central1-a/instances/%s" % vm)["networkInterfaces"][0]["networkIP"]


def firewall_rules(fleet):
    listed = fleet.compute("global/firewalls").get("items", [])
    return {rule["name"]: rule for rule in listed if rule["name"].startswith(fleet.name + "-")}


def api_writes(fleet, before):
    """Compute API calls other than GET since ``before`` (the emulator's stats)."""
    after = fleet.admin("stats")["by_route"]
    return {route: n - before.get(route, 0) for route, n in after.items()
            if not route.startswith("GET") and n != before.get(route, 0)}


def test_each_independent_jump_hosts_its_users_container(topo_fleet):
    jump1, jump2 = topo_fleet.jumps
    assert "alice-container" in containers(topo_fleet, jump1)
    assert "bob-container" in containers(topo_fleet, jump2)
    assert "bob-container" not in containers(topo_fleet, jump1)
    assert "alice-container" not in containers(topo_fleet, jump2)
    # The subnet repeats on every jump: users reach their container through their own jump.
    for jump in topo_fleet.jumps:
        assert "10.0.2.1/24" in in_vm(topo_fleet, jump, "ip", "-4", "addr", "show", "incusbr0")
    # No backends in this shape.
    assert not any("-backend-" in vm["name"] for vm in
                   topo_fleet.compute("zones/us-central1-a/instances").get("items", []))


def test_load_balancer_sends_ssh_to_both_jumps(topo_fleet):
    config = in_vm(topo_fleet, topo_fleet.lb, "cat", "/etc/haproxy/haproxy.cfg")
    for jump in topo_fleet.jumps:
        assert "server %s %s:22 check\n" % (jump, address(topo_fleet, jump)) in config, config
    assert "backup" not in config and "stick on src" in config
    # HAProxy holds port 22; the load balancer's own sshd moved to the admin port.
    listening = in_vm(topo_fleet, topo_fleet.lb, "ss", "-Hltnp")
    assert any(":22 " in line and "haproxy" in line for line in listening.splitlines()), listening
    assert any(":2222 " in line and "sshd" in line for line in listening.splitlines()), listening


def test_jumps_share_one_host_identity(topo_fleet):
    keys = {jump: in_vm(topo_fleet, jump, "cat", "/etc/ssh/ssh_host_ed25519_key.pub").split()[1]
            for jump in topo_fleet.jumps}
    assert len(set(keys.values())) == 1, keys


def test_users_ssh_through_the_load_balancer_into_their_container(topo_fleet, topo_canaries):
    lb = address(topo_fleet, topo_fleet.lb)
    for user in ("alice", "bob"):
        config = (topo_fleet.state / "clients" / user / "ssh_config").read_text()
        assert "HostName %s\n" % lb in config, config
        proc = topo_fleet.ssh(user, "%s-container" % user, "hostname; id -un")
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.split() == ["%s-container" % user, user]
    topo_canaries.check("independent scale-out")


def test_firewall_opens_ssh_to_the_load_balancer_only(topo_fleet):
    rules = firewall_rules(topo_fleet)
    name = topo_fleet.name
    assert set(rules) == {"%s-ssh-to-entry" % name, "%s-lb-to-jumps" % name, "%s-admin-to-jumps" % name,
                          "%s-admin-to-lb" % name}, sorted(rules)
    entry = rules["%s-ssh-to-entry" % name]
    assert entry["targetTags"] == ["fleet-lb"] and entry["sourceRanges"] == ["0.0.0.0/0"]
    assert entry["allowed"] == [{"IPProtocol": "tcp", "ports": ["22"]}]
    hop = rules["%s-lb-to-jumps" % name]
    assert hop["sourceTags"] == ["fleet-lb"] and hop["targetTags"] == ["fleet-jump"]
    assert rules["%s-admin-to-lb" % name]["allowed"] == [{"IPProtocol": "tcp", "ports": ["2222"]}]


def test_bad_shapes_fail_before_anything_changes(topo_fleet):
    before = topo_fleet.admin("stats")["by_route"]
    for extra, words in (({"fleet_backend_count": 1}, "fleet_backend_count must be 0"),
                         ({"fleet_topology": "hybrid", "fleet_backend_count": 0}, "hybrid topology needs"),
                         ({"fleet_jump_count": 0}, "fleet_jump_count must be a whole number >= 1"),
                         ({"fleet_topology": "mesh"}, "fleet_topology must be central, independent or hybrid")):
        run = topo_fleet.playbook("scale_out.yml", extra, check=False)
        assert run.returncode != 0 and words in run.output, (extra, run.tail())
    assert api_writes(topo_fleet, before) == {}


def hold_key(fleet, names, vm, container):
    """Add to the controller's known_hosts, under ``names`` (a known_hosts pattern), the host key of
    ``container`` on ``vm``."""
    key = fleet.host_incus(vm, "exec", container, "--", "cat", "/etc/ssh/ssh_host_ed25519_key.pub").stdout
    with open(fleet.state / "known_hosts", "a", encoding="utf-8") as handle:
        handle.write("%s %s\n" % (names, " ".join(key.split()[:2])))


def plant_bobs_key_under_alices_address(fleet):
    """The controller's known_hosts as after bob's container on jump 2 once had the address that alice's
    container on jump 1 has now (the jumps' container subnets repeat; seen in CI): bob's host key under it."""
    jump1, jump2 = fleet.jumps
    alices = fleet.host_incus(jump1, "list", "alice-container", "--format", "csv", "-c", "4").stdout.split()[0]
    subprocess.run(["ssh-keygen", "-R", alices, "-f", str(fleet.state / "known_hosts")], capture_output=True,
                   check=True)
    hold_key(fleet, alices, jump2, "bob-container")


def test_second_run_and_check_mode_change_nothing(topo_fleet, topo_canaries, tmp_path):
    # The re-run reaches alice's container by its address too: it must not take bob's key for hers. Its ssh
    # connections are new ones (an earlier run's persistent connection would skip the host key check).
    plant_bobs_key_under_alices_address(topo_fleet)
    run = topo_fleet.playbook("scale_out.yml", env={"ANSIBLE_SSH_CONTROL_PATH_DIR": str(tmp_path)})
    assert run.changed == {}, run.tail()
    before = topo_fleet.admin("stats")["by_route"]
    # --check asking for a third jump: reads everything, writes nothing.
    check = subprocess.run([str(BIN / "ansible-playbook"), "-i", str(topo_fleet.inventory),
                            str(REPO / "playbooks" / "scale_out.yml"), "--check", "-e", '{"fleet_jump_count": 3}'],
                           cwd=REPO, env=topo_fleet.env, capture_output=True, text=True, timeout=900, check=False)
    assert check.returncode == 0, check.stdout[-3000:]
    assert api_writes(topo_fleet, before) == {}, check.stdout[-3000:]
    assert "%s-jump-3" % topo_fleet.name not in {vm["name"] for vm in
                                                 topo_fleet.compute("zones/us-central1-a/instances")["items"]}
    topo_canaries.check("re-run")


def test_a_container_made_again_is_trusted_with_its_new_host_key(topo_fleet, topo_canaries, tmp_path):
    # bob's container is gone and the controller still holds a key for every address on jump 2 (as after
    # containers there came and went): the re-run makes his container again, on whatever address, and
    # reaches it with its new key.
    jump2 = topo_fleet.jumps[1]
    gone = topo_fleet.host_incus(jump2, "delete", "--force", "bob-container")
    assert gone.returncode == 0, gone.stderr
    hold_key(topo_fleet, jump2 + "/*", topo_fleet.jumps[0], "alice-container")
    topo_fleet.playbook("scale_out.yml", env={"ANSIBLE_SSH_CONTROL_PATH_DIR": str(tmp_path)})
    assert "bob-container" in containers(topo_fleet, jump2)
    del topo_canaries.sums["bob"]  # his new container gets a new canary; alice's must be untouched
    topo_canaries.plant()
    topo_canaries.check("bob's container made again")


@pytest.mark.skipif(os.environ.get("FLEET_TOPO_HYBRID") == "0", reason="FLEET_TOPO_HYBRID=0: independent only")
def test_grow_to_hybrid_puts_a_new_user_on_the_backend(topo_fleet, topo_canaries):
    users = [user_entry(topo_fleet, "alice", jump=1), user_entry(topo_fleet, "bob", jump=2),
             user_entry(topo_fleet, "carol")]
    topo_fleet.playbook("scale_out.yml", {"fleet_topology": "hybrid", "fleet_backend_count": 1, "fleet_users": users})
    backend = "%s-backend-1" % topo_fleet.name
    assert "carol-container" in containers(topo_fleet, backend)
    # Every jump routes the backend's subnet; the jump-to-backends firewall rule is now open.
    for jump in topo_fleet.jumps:
        assert "10.0.3.0/24 via %s" % address(topo_fleet, backend) in in_vm(topo_fleet, jump, "ip", "-4", "route")
    assert "%s-jump-to-backends" % topo_fleet.name in firewall_rules(topo_fleet)
    # carol, through the load balancer with her own ssh_config, and through each jump in turn
    # (the jumps share a host key, so her known_hosts entry for the load balancer fits them all).
    config = str(topo_fleet.state / "clients" / "carol" / "ssh_config")
    known = str(topo_fleet.state / "clients" / "carol" / "known_hosts")
    proc = topo_fleet.ssh("carol", "carol-container", "hostname")
    assert proc.returncode == 0 and proc.stdout.strip() == "carol-container", proc.stderr
    lb = address(topo_fleet, topo_fleet.lb)
    for jump in topo_fleet.jumps:
        hop = ("ssh -o BatchMode=yes -o IdentitiesOnly=yes -i %s -o UserKnownHostsFile=%s -o StrictHostKeyChecking=yes"
               " -o HostKeyAlias=%s -W %%h:%%p carol@%s" % (topo_fleet.state / "carol", known, lb, address(topo_fleet, jump)))
        proc = subprocess.run(["ssh", "-F", config, "-o", "BatchMode=yes", "-o", "ProxyCommand=" + hop,
                               "carol-container", "hostname"], capture_output=True, text=True, timeout=60, check=False)
        assert proc.returncode == 0 and proc.stdout.strip() == "carol-container", (jump, proc.stderr)
    topo_canaries.check("grow to hybrid")
