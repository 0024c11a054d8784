"""The sentinel topology built from nothing by playbooks/sentinel.yml, checked from the outside.

One on-demand sentinel and two spot hosts (fleet ``sn`` on emulator port 8121 unless FLEET_SN_NAME /
FLEET_SN_PORT say otherwise; FLEET_E2E_KEEP=1 keeps it for the next run). Users reach their containers
with their own ssh_config through the sentinel's port 22; HTTP on the sentinel shows the maintenance page
until a deployment serves, then reaches it through the spot hosts' ingress. Issue 7's done-when runs
here, with ansible-rulebook where it runs in production (fleet-sentinel.service on the sentinel): a client
loops HTTP through the sentinel to a ``spot-aware`` deployment and another loops ssh through it into a
user container; the emulator sends the notice, then preempts that host; the standby the rulebook's timer
keeps on the other host serves before the host stops, no HTTP request fails, the host comes back and every
user logs in with each key and finds their canary. The service is SIGKILLed inside the scale-down delay and
the replacement still goes exactly once. Then bad input (a rulebook without project or credentials stops
at once), an event for a VM outside the fleet (skipped), and both spot hosts preempted at once with no
spot capacity left for one: one restarted, one recreated on-demand on its data disk, both serving again.

  FLEET_E2E_KEEP=1 .venv/bin/python -m pytest -x -q -p no:cacheprovider tests/e2e/test_75_sentinel.py -s
"""

from __future__ import annotations

import json
import ssl
import subprocess
import time
import urllib.error
import urllib.request

import pytest
import yaml

from conftest import Canaries
from sandbox_fleet import PROJECT, ZONE, built_fleet, second_key, wait_until
from spot_workload import (REPLACEMENT, SCALE_DOWN_DELAY, WEB, Loop, build_image, instances_of, preempt_with_notice,
                           preempted_at_once, preempted_foreign_vm, shorten_scale_back, wait_for_standby)

# HAProxy marks a spot host up or down after 2 checks 2 s apart; plus one interval of slack.
MARK_SECONDS = 8


def configure(fleet):
    """alice with two keys; the sentinel's rulebook scales back after SCALE_DOWN_DELAY. It hears the spot
    hosts' notices as in production, through the relay on each (only a VM reads its own metadata server)."""
    second_key("alice")(fleet)
    # An extra var: sentinel.yml's vars_files outrank the inventory.
    fleet.extra_vars["sentinel_fleet_rulebook_vars"] = {
        "instance_prefix": fleet.name + "-", "poll_interval": 1, "webhook_url": "", "webhook_token": "",
        "scale_up_delay": 0, "scale_down_delay": SCALE_DOWN_DELAY, "tick_interval": 30}


@pytest.fixture(scope="module")
def fleet():
    with built_fleet("SN", "sn", 8121, "sentinel.yml", configure=configure) as built:
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
    # It hears each spot host's notice through the relay on that host (only a VM reads its own metadata).
    variables = yaml.safe_load(vm_exec(fleet, vm, "cat /etc/fleet-sentinel/vars.yml").stdout)
    for spot in spot_hosts(fleet):
        address = fleet.instance(spot)["networkInterfaces"][0]["networkIP"]
        assert {"instance": "%s/%s" % (ZONE, spot), "metadata_url": "http://%s:8089/computeMetadata/v1/" % address} \
            in variables["notice_instances"]
        assert vm_exec(fleet, spot, "systemctl is-active fleet-notice-relay").stdout.strip() == "active"


def spot_hosts(fleet):
    return ["%s-spot-%d" % (fleet.name, index) for index in (1, 2)]


def http_probe(address):
    """One GET through the sentinel: (served, body or error)."""
    try:
        status, body = http_get(address)
    except OSError as error:
        return False, str(error)
    return status == 200, body.strip() if status == 200 else "%s %s" % (status, body[:80])


def ingress_body(fleet, vm):
    """GET / on a spot host's ingress (as the sentinel's HAProxy does): the body, or '' (asked from here, so that
    the probe takes no CPU from the sentinel while it handles the notice)."""
    address = fleet.instance(vm)["networkInterfaces"][0]["networkIP"]
    try:
        with urllib.request.urlopen("http://%s/" % address, timeout=2) as response:
            return response.read().decode().strip()
    except OSError:
        return ""


def test_http_maintenance_page_until_a_deployment_serves_then_forwarded(fleet):
    """No container serves HTTP yet: the maintenance page. deploy.yml puts a spot-aware deployment with an
    ingress_port on a spot host: its ingress passes the sentinel's check and HTTP reaches the replica."""
    address = sentinel_address(fleet)
    status, body = http_get(address)
    assert status == 503 and "Back in a minute" in body
    build_image(fleet, spot_hosts(fleet))
    fleet.playbook("deploy.yml", {"deployments": [WEB]})
    wait_until(lambda: http_probe(address), 60, done=lambda answer: answer == (True, "%s-1" % WEB["name"]))


def test_https_ends_on_the_spot_hosts_with_the_pushed_certificate(fleet):
    """HTTPS through the sentinel (TCP pass-through) reaches the replica; TLS ends on the spot host's ingress
    with the certificate the sentinel pushed there (the client trusts that certificate and nothing else)."""
    context = ssl.create_default_context(
        cadata=vm_exec(fleet, "%s-sentinel" % fleet.name, "cat /etc/fleet-sentinel/tls/fleet.crt").stdout)
    context.check_hostname = False  # a self-signed certificate for <fleet>.sentinel.invalid, reached by address
    url = "https://%s/" % sentinel_address(fleet)

    def https_answer():
        try:
            with urllib.request.urlopen(url, timeout=10, context=context) as response:
                return response.read().decode().strip()
        except OSError as error:
            return str(error)

    wait_until(https_answer, 60, done=lambda answer: answer == ("%s-1" % WEB["name"]))


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


def ssh_probe(fleet, user):
    proc = fleet.ssh(user, "%s-container" % user, "true", timeout=20)
    return proc.returncode == 0, proc.stderr[-200:]


def sentinel_journal(fleet, since=""):
    return vm_exec(fleet, "%s-sentinel" % fleet.name, "journalctl -u fleet-sentinel --no-pager -o cat %s" % since,
                   check=False).stdout


def wait_for_report(fleet, vm, timeout=1200):
    """The JSON report spot_recover.yml writes on the sentinel once every user of ``vm`` answers again."""
    path = "/var/lib/fleet-sentinel/reports/spot_recover-%s.json" % vm
    wait_until(lambda: vm_exec(fleet, "%s-sentinel" % fleet.name, "test -s %s" % path, check=False).returncode == 0,
               timeout, interval=3,
               explain=lambda _: "no recovery report for %s:\n%s" % (vm, sentinel_journal(fleet)[-4000:]))
    return json.loads(vm_exec(fleet, "%s-sentinel" % fleet.name, "cat %s" % path).stdout)


def forget_reports(fleet):
    vm_exec(fleet, "%s-sentinel" % fleet.name, "rm -f /var/lib/fleet-sentinel/reports/spot_recover-*.json")


def test_notice_then_preemption_no_failed_http_request_and_users_come_back(fleet):
    """The done-when scenario: a client loops HTTP through the sentinel to the spot-aware deployment and
    another loops ssh through the sentinel into a user container on the same host; the emulator sends
    the notice, then preempts that host. The standby the sentinel's timer keeps on the other host serves
    before the host stops, no HTTP request fails, the host comes back and every user logs in with each key."""
    fleet.canaries = Canaries(fleet)
    fleet.canaries.plant()
    home = next(vm for vm in spot_hosts(fleet) if "%s-1" % WEB["name"] in instances_of(fleet, vm))
    other = next(vm for vm in spot_hosts(fleet) if vm != home)
    wait_for_standby(fleet, other, REPLACEMENT, "%s/%s-1" % (home, WEB["name"]))
    users_on_home = [u for u in fleet.users if "%s-container" % u in instances_of(fleet, home)]
    ssh_user = users_on_home[0] if users_on_home else fleet.users[0]
    forget_reports(fleet)
    address = sentinel_address(fleet)
    http_loop, ssh_loop = Loop(lambda: http_probe(address), 0.3), Loop(lambda: ssh_probe(fleet, ssh_user), 2)
    http_loop.start()
    ssh_loop.start()
    try:
        http_loop.wait_ok_after(time.time(), 30)
        notice_at, served_by_replacement, stopped_at, running_at = preempt_with_notice(
            fleet, PROJECT, ZONE, home, lambda: ingress_body(fleet, other) == REPLACEMENT)
        done = wait_for_report(fleet, home)
        ssh_loop.wait_ok_after(running_at, 180)
    finally:
        http_loop.stop()
        ssh_loop.stop()
    during = [t for t in http_loop.tries if t[0] >= notice_at]
    failed = http_loop.failed(since=notice_at)
    bodies = sorted({detail for _started, ok, detail in during if ok})
    logins = fleet.canaries.check_every_key("the preemption of %s" % home)
    timeline = {
        "host": home, "action": done["action"],
        "notice_to_replacement_serving": round(served_by_replacement["at"] - notice_at, 1),
        "notice_to_stopped": round(stopped_at - notice_at, 1), "stopped_to_running": round(running_at - stopped_at, 1),
        "ssh_downtime": round(ssh_loop.downtime(), 1), "ssh_user": ssh_user,
        "http_requests": len(during), "http_failed": len(failed), "served_by": bodies, "logins_checked": logins,
    }
    print("\nsentinel spot protection timeline: %s" % json.dumps(timeline))
    assert served_by_replacement["home_status"] == "RUNNING", served_by_replacement
    assert during and not failed, "HTTP through the sentinel failed %d of %d times, first %s" % (
        len(failed), len(during), failed[:3])
    assert REPLACEMENT in bodies, "the replacement never served a request through the sentinel: %s" % bodies


def test_rulebook_killed_in_the_delay_scales_back_exactly_once(fleet):
    """SIGKILL fleet-sentinel.service (ansible-rulebook, Java, any playbook) inside the scale-down delay
    (shortened to 60 s from now on the replacement): systemd restarts it, the replacement goes exactly once,
    at its time, and HTTP through the sentinel is served by the original replica on the recovered host again."""
    sentinel = "%s-sentinel" % fleet.name
    holder = next(vm for vm in spot_hosts(fleet)
                  if "user.fleet.replaces" in (instances_of(fleet, vm).get(REPLACEMENT) or {}).get("config", {}))
    home = next(vm for vm in spot_hosts(fleet) if vm != holder)
    due = shorten_scale_back(fleet, holder, REPLACEMENT, 60)
    assert due > time.time() + 15, "too late to kill the rulebook inside the delay (due in %d s)" % (due - time.time())
    restarts = int(vm_exec(fleet, sentinel, "systemctl show -p NRestarts --value fleet-sentinel").stdout)
    vm_exec(fleet, sentinel, "systemctl kill -s KILL fleet-sentinel")
    assert REPLACEMENT in instances_of(fleet, holder), "the replacement went away with the rulebook"
    wait_until(lambda: int(vm_exec(fleet, sentinel, "systemctl show -p NRestarts --value fleet-sentinel").stdout),
               60, done=lambda count: count > restarts, explain=lambda _: "systemd did not restart fleet-sentinel")
    wait_until(lambda: (instances_of(fleet, holder).get(REPLACEMENT) or {}).get("config", {}), due + 180 - time.time(),
               done=lambda config: "user.fleet.replaces" not in config, interval=2,
               explain=lambda _: "the restarted rulebook did not scale back:\n%s" % sentinel_journal(fleet)[-3000:])
    removed_at = time.time()
    assert removed_at >= due, "removed %d s before its time" % (due - removed_at)
    # Two more ticks: a stopped standby takes the replacement's place, nothing is removed twice.
    time.sleep(65)
    wait_for_standby(fleet, holder, REPLACEMENT, "%s/%s-1" % (home, WEB["name"]))
    deletions = sentinel_journal(fleet).count("changed: [%s] => (item=default/%s " % (holder, REPLACEMENT))
    assert deletions == 1, "the replacement was deleted %d times" % deletions
    assert instances_of(fleet, home)["%s-1" % WEB["name"]]["status"] == "Running"
    wait_until(lambda: http_probe(sentinel_address(fleet)), 30,
               done=lambda answer: answer == (True, "%s-1" % WEB["name"]))
    print("\nscale-back %.0f s after its time (tick 30 s), once, through a SIGKILL of fleet-sentinel" % (removed_at - due))


def test_rulebook_without_project_or_credentials_stops_at_once(fleet):
    """ansible-rulebook as the service runs it, without a project, then without credentials: it ends at
    once, saying why (systemd would restart it; the journal says the same thing each time)."""
    sentinel = "%s-sentinel" % fleet.name
    # No credentials anywhere: no sentinel.env, no ADC file, the metadata server kept on loopback.
    bare = ("cd /tmp && timeout 180 sudo -u fleet-sentinel env -i PATH=/opt/fleet-sentinel/venv/bin:/usr/bin:/bin HOME=/tmp NO_GCE_CHECK=true "
            "GCE_METADATA_HOST=127.0.0.1:9 GCE_METADATA_IP=127.0.0.1:9 "
            "ANSIBLE_COLLECTIONS_PATH=/opt/fleet-sentinel/collections /opt/fleet-sentinel/venv/bin/ansible-rulebook "
            "--rulebook containarium.fleet.spot_protection --inventory /etc/fleet-sentinel/inventory --vars %s")
    for case, variables, expected in (("no project", "{webhook_url: ''}", "gce_events needs a project"),
                                      ("no credentials", "{project: %s, webhook_url: ''}" % PROJECT,
                                       "gce_events cannot authenticate to project")):
        vm_exec(fleet, sentinel, "echo \"%s\" > /tmp/bad-vars.yml && chmod 644 /tmp/bad-vars.yml" % variables)
        started = time.monotonic()
        proc = vm_exec(fleet, sentinel, bare % "/tmp/bad-vars.yml", check=False)
        seconds = time.monotonic() - started
        assert proc.returncode not in (0, 124), "%s: rc %d" % (case, proc.returncode)
        assert expected in proc.stdout + proc.stderr, "%s: %s" % (case, (proc.stdout + proc.stderr)[-2000:])
        print("\nrulebook on the sentinel with %s: exit %d after %.1f s" % (case, proc.returncode, seconds))


def test_event_for_an_unknown_instance_is_skipped(fleet):
    journal_before = len(sentinel_journal(fleet))
    with preempted_foreign_vm(fleet, PROJECT, ZONE) as foreign:
        wait_until(lambda: sentinel_journal(fleet)[journal_before:], 240, interval=2,
                   done=lambda journal: "skipped: %s not a VM of fleet %s" % (foreign, fleet.name) in journal,
                   explain=lambda journal: journal[-3000:])
        assert vm_exec(fleet, "%s-sentinel" % fleet.name, "systemctl is-active fleet-sentinel").stdout.strip() == "active"
        assert fleet.instance(foreign)["status"] == "TERMINATED", "a VM outside the fleet was started"


def test_two_spot_hosts_preempted_at_once_both_brought_back(fleet):
    """Both spot hosts at once, the second start finding no spot capacity: the sentinel brings one back by
    a restart and the other on-demand on a new boot disk (its data disk, its old internal address), each
    with its own report; HAProxy forwards to both, the certificates reach the new boot disk, every user
    logs in through the sentinel with each key and finds their canary, and HTTP is served again."""
    forget_reports(fleet)
    old = {vm: fleet.instance(vm) for vm in spot_hosts(fleet)}
    with preempted_at_once(fleet, PROJECT, ZONE, spot_hosts(fleet)) as preempted_at:
        done = {vm: wait_for_report(fleet, vm) for vm in spot_hosts(fleet)}
    assert sorted(d["action"] for d in done.values()) == ["recreated-on-demand", "started"], done
    haproxy = vm_exec(fleet, "%s-sentinel" % fleet.name, "cat /etc/haproxy/haproxy.cfg").stdout
    for vm, data in done.items():
        new = fleet.instance(vm)
        assert new["status"] == "RUNNING"
        assert (new["id"] != old[vm]["id"]) == (data["action"] == "recreated-on-demand")
        if data["action"] == "recreated-on-demand":
            assert new["scheduling"].get("provisioningModel", "STANDARD") != "SPOT"
        # The same internal address (the users' ssh_config names it for their second hop), forwarded to.
        assert new["networkInterfaces"][0]["networkIP"] == old[vm]["networkInterfaces"][0]["networkIP"]
        assert " %s:22 " % new["networkInterfaces"][0]["networkIP"] in haproxy
    test_certificates_reach_every_spot_host(fleet)
    logins = fleet.canaries.check_every_key("two spot hosts preempted at once")
    wait_until(lambda: http_probe(sentinel_address(fleet)), 120, done=lambda answer: answer[0], interval=2)
    print("\nboth spot hosts back (%d logins) %.0f s after the preemption: %s" % (
        logins, time.time() - preempted_at, json.dumps({vm: [d["action"], d["seconds"]] for vm, d in done.items()})))
