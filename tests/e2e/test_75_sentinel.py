"""The sentinel topology built from nothing by playbooks/sentinel.yml, checked from the outside.

One on-demand sentinel and two spot hosts (fleet ``sn`` on emulator port 8121 unless FLEET_SN_NAME /
FLEET_SN_PORT say otherwise; FLEET_E2E_KEEP=1 keeps it for the next run). Users reach their
containers with their own ssh_config through the sentinel's port 22; HTTP on the sentinel shows the
maintenance page while no spot host serves and forwards once one does; fleet-sentinel.service runs,
hears the preemption of a spot host the zone has no spot capacity left for, and brings it back
on-demand on its data disk and its old internal address: HAProxy forwards to it, the certificates reach it, and every
user logs in through the sentinel again with each of their keys and finds their canary.

  FLEET_E2E_KEEP=1 .venv/bin/python -m pytest -x -q -p no:cacheprovider tests/e2e/test_75_sentinel.py -s
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from conftest import Canaries
from sandbox_fleet import PROJECT, ZONE, built_fleet, second_key

# HAProxy marks a spot host up or down after 2 checks 2 s apart; plus one interval of slack.
MARK_SECONDS = 8


@pytest.fixture(scope="module")
def fleet():
    with built_fleet("SN", "sn", 8121, "sentinel.yml", configure=second_key("alice")) as built:
        yield built


def sentinel_address(fleet):
    return fleet.instance("%s-sentinel" % fleet.name)["networkInterfaces"][0]["accessConfigs"][0]["natIP"]


def http_get(address, port=80):
    try:
        with urllib.request.urlopen("http://%s:%d/" % (address, port), timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def vm_exec(fleet, vm, command, check=True):
    return subprocess.run(["incus", "exec", fleet.vm_container(vm), "--", "sh", "-c", command],
                          capture_output=True, text=True, check=check)


def test_sentinel_is_on_demand_and_the_hosts_behind_it_are_spot(fleet):
    assert fleet.instance("%s-sentinel" % fleet.name)["scheduling"].get("provisioningModel", "STANDARD") != "SPOT"
    for index in (1, 2):
        assert fleet.instance("%s-spot-%d" % (fleet.name, index))["scheduling"]["provisioningModel"] == "SPOT"


def test_users_ssh_through_the_sentinel_into_their_containers(fleet):
    for user in fleet.users:
        proc = fleet.ssh(user, "%s-container" % user, "hostname; whoami")
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.split() == ["%s-container" % user, user]
    config = (fleet.state / "clients" / fleet.users[0] / "ssh_config").read_text()
    assert "HostName %s\n" % sentinel_address(fleet) in config


def test_rulebook_service_runs_on_the_sentinel(fleet):
    vm = "%s-sentinel" % fleet.name
    assert vm_exec(fleet, vm, "systemctl is-active fleet-sentinel").stdout.strip() == "active"
    unit = vm_exec(fleet, vm, "systemctl cat fleet-sentinel").stdout
    assert "Restart=always" in unit and "containarium.fleet.spot_protection" in unit
    assert vm_exec(fleet, vm, "test -d /opt/fleet-sentinel/collections/ansible_collections/containarium/fleet/playbooks",
                   check=False).returncode == 0


def test_http_maintenance_page_while_no_spot_host_serves_then_forwarded(fleet):
    address = sentinel_address(fleet)
    status, body = http_get(address)
    assert status == 503 and "Back in a minute" in body
    spot = "%s-spot-1" % fleet.name
    vm_exec(fleet, spot, "mkdir -p /srv/www && echo %s > /srv/www/index.html && " % spot +
                         "systemd-run --unit sn-web python3 -m http.server 80 --directory /srv/www")
    try:
        time.sleep(MARK_SECONDS)
        assert http_get(address) == (200, spot + "\n")
    finally:
        vm_exec(fleet, spot, "systemctl stop sn-web", check=False)
    time.sleep(MARK_SECONDS)
    status, body = http_get(address)
    assert status == 503 and "Back in a minute" in body


def test_certificates_reach_every_spot_host(fleet):
    sums = {vm_exec(fleet, vm, "sha256sum /etc/fleet-sentinel/tls/fleet.crt").stdout.split()[0]
            for vm in ["%s-sentinel" % fleet.name] + ["%s-spot-%d" % (fleet.name, i) for i in (1, 2)]}
    assert len(sums) == 1


def test_rerun_changes_nothing(fleet):
    rerun = fleet.playbook("sentinel.yml")
    assert rerun.changed == {}, rerun.tail()
    print("\nsentinel.yml re-run: changed=0 in %.0f s" % rerun.seconds)


def test_bad_input_fails_before_anything_is_created(fleet):
    before = {i["name"] for i in fleet.compute("aggregated/instances")["items"].get("zones/%s" % ZONE, {}).get("instances", [])}
    for extra, words in (({"fleet_spot_host_count": 0}, "fleet_spot_host_count >= 1"),
                         ({"sentinel_spot": True}, "sentinel_spot must be false")):
        run = fleet.playbook("sentinel.yml", extra_vars=extra, check=False)
        assert run.returncode != 0 and words in run.output, run.tail()
    after = {i["name"] for i in fleet.compute("aggregated/instances")["items"].get("zones/%s" % ZONE, {}).get("instances", [])}
    assert after == before


def test_preempted_spot_host_is_brought_back_by_the_sentinel(fleet):
    """No spot capacity left: fleet-sentinel.service recreates the host on-demand on its data disk."""
    canaries = Canaries(fleet)
    canaries.plant()
    sentinel, vm = "%s-sentinel" % fleet.name, "%s-spot-1" % fleet.name
    report = "/var/lib/fleet-sentinel/reports/spot_recover-%s.json" % vm
    vm_exec(fleet, sentinel, "rm -f %s" % report)
    old = fleet.instance(vm)
    fleet.admin("latency", {"seconds": 0.2})  # keeps the start's capacity error visible (see test_30)
    try:
        fleet.admin("fail_next_operation", {"reason": "ZONE_RESOURCE_POOL_EXHAUSTED", "operation_type": "start"})
        preempted_at = time.monotonic()
        fleet.admin("preempt", {"project": PROJECT, "zone": ZONE, "instance": vm, "notice_seconds": 0})
        deadline = time.monotonic() + 1200
        while vm_exec(fleet, sentinel, "test -s %s" % report, check=False).returncode != 0:
            assert time.monotonic() < deadline, vm_exec(
                fleet, sentinel, "journalctl -u fleet-sentinel --no-pager | tail -60", check=False).stdout
            time.sleep(5)
    finally:
        fleet.admin("latency", {"seconds": 0})
    done = json.loads(vm_exec(fleet, sentinel, "cat %s" % report).stdout)
    new = fleet.instance(vm)
    assert done["action"] == "recreated-on-demand", done
    assert new["id"] != old["id"] and new["status"] == "RUNNING"
    assert new["scheduling"].get("provisioningModel", "STANDARD") != "SPOT"
    # HAProxy on the sentinel forwards to the new address; the certificates reached the new boot disk.
    address = new["networkInterfaces"][0]["networkIP"]
    assert " %s:22 " % address in vm_exec(fleet, sentinel, "cat /etc/haproxy/haproxy.cfg").stdout
    test_certificates_reach_every_spot_host(fleet)
    logins = canaries.check_every_key("the recreation of %s" % vm)
    print("\n%s recreated on-demand and every user back (%d logins) %.0f s after the preemption; report %s"
          % (vm, logins, time.monotonic() - preempted_at, json.dumps(done)))
