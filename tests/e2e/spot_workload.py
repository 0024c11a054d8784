"""What the spot protection tests share: a ``spot-aware`` web deployment (its image on every Incus host of a
fleet), the view of a host's nested Incus, the standbys the rulebook's timer keeps, and probe loops.

Used by test_70 (central fleet, rulebook on the controller), test_75 (sentinel topology, rulebook on the
sentinel) and benchmarks/spot_protection.py.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time

from sandbox_fleet import wait_until

IMAGE = "spot-web"
# Every container of the deployment answers GET / with its own name (replica, standby or replacement).
WEB_UNIT = """[Unit]
Description=spot protection test web server
After=network-online.target
[Service]
ExecStartPre=/bin/sh -c 'hostname > /srv/www/index.html'
ExecStart=/usr/bin/python3 -m http.server 8000 --directory /srv/www
[Install]
WantedBy=multi-user.target
"""
WEB = {"name": "spotweb", "image": IMAGE, "replicas": 1, "cpu": 0.2, "memory": "128MiB",
       "labels": {"spot-aware": "enabled"}, "ingress_port": 8000,
       "health_check": {"type": "http", "port": 8000, "path": "/", "interval": 2, "timeout": 2, "unhealthy_threshold": 3}}
REPLACEMENT = "%s-1-spot-replacement" % WEB["name"]


def build_image(fleet, hosts):
    """The deployment's image on every host: fleet-base serving /srv/www on :8000 (systemd unit)."""
    for vm in hosts:
        if fleet.host_incus(vm, "image", "show", IMAGE).returncode == 0:
            continue
        fleet.host_incus(vm, "delete", "--force", "spot-web-build")
        steps = [("launch", "fleet-base", "spot-web-build"),
                 ("exec", "spot-web-build", "--", "sh", "-c",
                  "mkdir -p /srv/www /etc/systemd/system/multi-user.target.wants && "
                  "cat > /etc/systemd/system/web.service <<'EOF'\n%sEOF\n"
                  "ln -sf ../web.service /etc/systemd/system/multi-user.target.wants/web.service" % WEB_UNIT),
                 ("stop", "spot-web-build"),
                 ("publish", "spot-web-build", "--alias", IMAGE, "--compression", "none"),
                 ("delete", "spot-web-build")]
        for step in steps:
            proc = fleet.host_incus(vm, *step)
            assert proc.returncode == 0, "incus %s on %s: %s" % (step[0], vm, proc.stderr)


def instances_of(fleet, vm):
    """{name: {status, ipv4, config}} of the instances in a host's nested Incus ({} when it does not answer)."""
    listed = fleet.host_incus(vm, "list", "--format", "json")
    if listed.returncode != 0:
        return {}
    found = {}
    for item in json.loads(listed.stdout):
        nets = (item.get("state") or {}).get("network") or {}
        ipv4 = [a["address"] for a in (nets.get("eth0") or {}).get("addresses", []) if a["family"] == "inet"]
        found[item["name"]] = {"status": item["status"], "ipv4": ipv4[0] if ipv4 else None,
                               "config": item.get("config") or {}}  # null while Incus still creates it
    return found


def wait_for_standby(fleet, vm, name, original, timeout=240):
    """The stopped standby the rulebook's timer prepares for ``original`` on ``vm`` (spot_standby.yml)."""
    found = wait_until(lambda: instances_of(fleet, vm).get(name), timeout, interval=2,
                       done=lambda found: found and found["status"] == "Stopped"
                       and found["config"].get("user.fleet.standby-for") == original,
                       explain=lambda found: "no standby %s for %s on %s: %s" % (name, original, vm, found))
    assert "user.fleet.replaces" not in found["config"], found
    return found


# The rulebooks of the tests scale back after SCALE_DOWN_DELAY, long enough to outlast a recovery on a
# loaded machine; the test that kills the rulebook in the delay then brings the stored time forward.
SCALE_DOWN_DELAY = 900


def shorten_scale_back(fleet, vm, name, seconds):
    """Bring the scale-back time stored on replacement ``name`` on ``vm`` (user.fleet.scale-back-at) to at
    most ``seconds`` from now, as a shorter scale_down_delay would have set it; returns that time."""
    config = instances_of(fleet, vm)[name]["config"]
    due = min(int(config["user.fleet.scale-back-at"]), int(time.time()) + seconds)
    proc = fleet.host_incus(vm, "config", "set", name, "user.fleet.scale-back-at=%d" % due)
    assert proc.returncode == 0, proc.stderr
    return due


def wait_status(fleet, vm, status, timeout=300):
    wait_until(lambda: fleet.instance(vm)["status"], timeout, done=lambda answer: answer == status, interval=0.5,
               explain=lambda current: "%s stayed %s, expected %s" % (vm, current, status))
    return time.time()


def preempt_with_notice(fleet, project, zone, home, replacement_serves):
    """Give VM ``home`` GCE's 30 s notice and follow it through the preemption and the recovery's start:
    ``(notice time, {"at": first time replacement_serves() held, "home_status": home's status then},
    time home was TERMINATED, time it was RUNNING again)``."""
    notice_at = time.time()
    fleet.admin("preempt", {"project": project, "zone": zone, "instance": home, "notice_seconds": 30})
    while True:
        status = fleet.instance(home)["status"]
        if replacement_serves():
            served = {"at": time.time(), "home_status": status}
            break
        assert time.time() - notice_at < 180, "no replacement serves for %s" % WEB["name"]
        time.sleep(0.5)
    stopped_at = wait_status(fleet, home, "TERMINATED", 120)
    return notice_at, served, stopped_at, wait_status(fleet, home, "RUNNING", 300)


@contextlib.contextmanager
def preempted_at_once(fleet, project, zone, vms):
    """Every VM of ``vms`` preempted at the same moment (no notice), and the first start after that failing
    with ZONE_RESOURCE_POOL_EXHAUSTED, so that one of them comes back on-demand on a new boot disk; meanwhile
    every API call takes 0.2 s longer, which keeps that error visible (see test_30). Yields the moment."""
    fleet.admin("latency", {"seconds": 0.2})
    try:
        fleet.admin("fail_next_operation", {"reason": "ZONE_RESOURCE_POOL_EXHAUSTED", "operation_type": "start"})
        started = time.time()
        threads = [threading.Thread(target=fleet.admin, args=("preempt", {
            "project": project, "zone": zone, "instance": vm, "notice_seconds": 0})) for vm in vms]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        yield started
    finally:
        fleet.admin("latency", {"seconds": 0})


@contextlib.contextmanager
def preempted_foreign_vm(fleet, project, zone):
    """A spot VM inside the rulebook's name prefix but not of the fleet (another label), preempted: its
    name while it is TERMINATED; deleted afterwards."""
    foreign = "%s-foreign-1" % fleet.name
    body = {"name": foreign, "machineType": "zones/%s/machineTypes/e2-micro" % zone,
            "disks": [{"boot": True, "autoDelete": True,
                       "initializeParams": {"sourceImage": "projects/debian-cloud/global/images/family/debian-12"}}],
            "networkInterfaces": [{"network": "global/networks/default"}],
            "scheduling": {"provisioningModel": "SPOT", "instanceTerminationAction": "STOP"},
            "labels": {"fleet": "someone-else"}}
    fleet.compute("zones/%s/instances" % zone, method="POST", body=body)
    try:
        wait_status(fleet, foreign, "RUNNING")
        fleet.admin("preempt", {"project": project, "zone": zone, "instance": foreign, "notice_seconds": 0})
        wait_status(fleet, foreign, "TERMINATED")
        yield foreign
    finally:
        fleet.compute("zones/%s/instances/%s" % (zone, foreign), method="DELETE")


class Loop(threading.Thread):
    """Run ``probe()`` every ``pause`` seconds until stopped; keeps (time, ok, detail) of each try (a probe
    that raises counts as a failed try)."""

    def __init__(self, probe, pause):
        super().__init__(daemon=True)
        self.probe, self.pause = probe, pause
        self.tries = []
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            started = time.time()
            try:
                ok, detail = self.probe()
            except Exception as exc:  # e.g. ssh past its timeout: a failed try, not the end of the loop
                ok, detail = False, repr(exc)
            self.tries.append((started, ok, detail))
            self.halt.wait(self.pause)

    def stop(self):
        self.halt.set()
        self.join(timeout=90)
        return self.tries

    def failed(self, since=0.0):
        return [(started, detail) for started, ok, detail in self.tries if not ok and started >= since]

    def downtime(self):
        """Seconds from the first failed try to the next successful one (0 if none failed)."""
        failed = [started for started, ok, _detail in self.tries if not ok]
        if not failed:
            return 0.0
        back = [started for started, ok, _detail in self.tries if ok and started > failed[0]]
        return (back[0] if back else self.tries[-1][0]) - failed[0]

    def wait_ok_after(self, moment, timeout):
        """Until a try that started after ``moment`` succeeded."""
        wait_until(lambda: any(ok and started > moment for started, ok, _detail in self.tries), timeout,
                   explain=lambda _: "never back after %.0f: %s" % (moment, self.tries[-3:]))
