"""Event-driven spot protection on the sandbox: ansible-rulebook runs extensions/eda/rulebooks/spot_protection.yml
against a fleet of two spot backends (central topology: the sentinel of issue 7 is another helper's work;
here the rulebook runs on the controller, as it would on the sentinel, with the same inventory and variables).

What a user would see is what is asserted: a client loops ssh into a user container through the jump, another
loops HTTP to a ``spot-aware`` deployment from the jump server (trying the replicas it knows in turn, as a
health-checking load balancer would); the rulebook's timer prepares a stopped standby of the replica on the
other backend; the emulator sends a preemption notice, then preempts the backend that runs the deployment.
The event arrives, the standby is started and serves before that backend stops, the backend comes
back, every user logs in with each of their keys and finds their canary; ansible-rulebook is killed during
the scale-down delay and restarted, and the replacement is removed exactly once (a new standby takes its
place). Then two backends are
preempted at once (one of them with no spot capacity left, so it comes back on-demand on a new boot disk),
an event for a VM outside the fleet is skipped, and a rulebook without a project or credentials stops at once.

Run alone: FLEET_SP_NAME=sp FLEET_SP_PORT=8141 [FLEET_E2E_KEEP=1] .venv/bin/python -m pytest -x -q \
    -p no:cacheprovider tests/e2e/test_70_spot_protection.py -s      (needs `make eda`)
"""

from __future__ import annotations

import http.server
import json
import os
import signal
import subprocess
import threading
import time

import pytest
import yaml

from conftest import Canaries
from sandbox_fleet import PROJECT, REPO, ZONE, built_fleet, second_key, wait_until
from spot_workload import (REPLACEMENT, SCALE_DOWN_DELAY, WEB, Loop, build_image, instances_of, preempt_with_notice,
                           preempted_at_once, preempted_foreign_vm, shorten_scale_back, wait_for_standby)

EDA_VENV = REPO / "build" / "eda-venv"
RULEBOOK = REPO / "extensions" / "eda" / "rulebooks" / "spot_protection.yml"
JAVA_HOME = os.environ.get("JAVA_HOME", "/usr/lib/jvm/java-17-openjdk-amd64")
# Runs on the jump server: GET / on the first target that answers (targets = the replicas the test
# sees running, rewritten into /tmp/spot-targets each second), one JSON line per attempt.
HTTP_CLIENT = r"""
import json, sys, time, urllib.request
while True:
    try:
        targets = open('/tmp/spot-targets').read().split()
    except OSError:
        targets = []
    served = None
    for ip in targets:
        try:
            if urllib.request.urlopen('http://%s:8000/' % ip, timeout=1).status == 200:
                served = ip
                break
        except Exception:
            pass
    print(json.dumps({'t': time.time(), 'served': served, 'targets': targets}), flush=True)
    time.sleep(0.3)
"""


class Rulebook:
    """ansible-rulebook running spot_protection.yml for the fleet, as a process group we can kill."""

    def __init__(self, fleet, variables, env=None, label="rulebook"):
        self.fleet = fleet
        self.vars_file = fleet.root / ("%s-vars.yml" % label)
        self.vars_file.write_text(yaml.safe_dump(variables))
        self.log = fleet.root / "logs" / ("%s.log" % label)
        self.env = dict(fleet.env, JAVA_HOME=JAVA_HOME, PATH="%s:%s" % (EDA_VENV / "bin", fleet.env["PATH"]),
                        ANSIBLE_COLLECTIONS_PATH=str(REPO / "build" / "collections"),
                        GCP_ACCESS_TOKEN="sandbox-token", GCP_COMPUTE_ENDPOINT=fleet.endpoint)
        self.env.update(env or {})
        self.proc = None
        self.offset = 0

    def start(self):
        self.log.parent.mkdir(exist_ok=True)
        handle = open(self.log, "a", encoding="utf-8")  # pylint: disable=consider-using-with
        handle.write("\n=== ansible-rulebook started %s\n" % time.strftime("%H:%M:%S"))
        handle.flush()
        self.offset = handle.tell()
        self.proc = subprocess.Popen([str(EDA_VENV / "bin" / "ansible-rulebook"), "-r", str(RULEBOOK), "-i",
                                      str(self.fleet.inventory), "--vars", str(self.vars_file), "-v"],
                                     cwd=REPO, env=self.env, stdout=handle, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        handle.close()
        return self

    def kill(self):
        """SIGKILL the whole group: ansible-rulebook, Java, and any playbook it is running."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def output(self, whole=False):
        text = self.log.read_text(encoding="utf-8", errors="replace")
        return text if whole else text[self.offset:]

    def wait_for(self, text, timeout, whole=False):
        wait_until(lambda: self.alive() and text in self.output(whole), timeout, interval=0.5,
                   explain=lambda _: "no %r in the rulebook log after %d s:\n%s" % (
                       text, timeout, self.output()[-3000:]))
        return time.time()

    def alive(self):
        """True while ansible-rulebook runs; fails the test once it has ended."""
        assert self.proc.poll() is None, "ansible-rulebook ended (rc %s):\n%s" % (
            self.proc.returncode, self.output()[-3000:])
        return True


class Webhook(http.server.ThreadingHTTPServer):
    """The operators' alert endpoint: records every POST with its time and Authorization header."""

    def __init__(self):
        self.received = []
        received = self.received

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                received.append({"at": time.time(), "auth": self.headers.get("Authorization"),
                                 "event": json.loads(body or b"{}")})
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self):
        return "http://127.0.0.1:%d/alert" % self.server_address[1]

    def events(self, kind, instance=None):
        return [r for r in self.received if r["event"].get("kind") == kind
                and (instance is None or r["event"].get("instance") == instance)]


def backends(fleet):
    return ["%s-backend-1" % fleet.name, "%s-backend-2" % fleet.name]


def ssh_probe(fleet, user):
    """One login of ``user`` into their container through the jump: (worked, why not)."""
    proc = fleet.ssh(user, "%s-container" % user, "true", timeout=20)
    return proc.returncode == 0, proc.stderr[-200:]


@pytest.fixture(scope="module")
def spot_fleet():
    """Two spot backends and a jump, alice with two keys, canaries planted, a spot-aware deployment."""
    with built_fleet("SP", "sp", 8141, "scale_out.yml", configure=second_key("alice")) as fleet:
        fleet.canaries = Canaries(fleet)
        fleet.canaries.plant()
        build_image(fleet, backends(fleet))
        fleet.playbook("deploy.yml", {"deployments": [WEB]})
        yield fleet


@pytest.fixture(scope="module")
def webhook():
    server = Webhook()
    yield server
    server.shutdown()


@pytest.fixture(scope="module")
def rulebook(spot_fleet, webhook):
    fleet = spot_fleet
    variables = {
        "project": PROJECT, "instance_prefix": fleet.name + "-", "poll_interval": 1,
        "state_file": str(fleet.state / "gce_events.json"),
        "metadata_url": "http://127.0.0.1:%d/computeMetadata/v1/" % fleet.port,
        "notice_instances": ["%s/%s" % (ZONE, vm) for vm in backends(fleet)],
        "scale_up_delay": 0, "scale_down_delay": SCALE_DOWN_DELAY, "tick_interval": 30,
        "webhook_url": webhook.url, "webhook_token": "alert-token",
    }
    # A first start begins at "now": what an earlier session left in the watermark is not this test's.
    (fleet.state / "gce_events.json").unlink(missing_ok=True)
    book = Rulebook(fleet, variables).start()
    book.wait_for("watching project %s" % PROJECT, 120)
    yield book
    book.kill()


def test_bad_input_fails_at_once(spot_fleet, tmp_path):
    """No project, or no credentials: ansible-rulebook ends at once, saying why (no crash loop, no retry)."""
    # No Application Default Credentials: an empty home, no GCE metadata server (kept on loopback).
    bare = {"HOME": str(tmp_path), "GCP_ACCESS_TOKEN": "", "GCP_PROJECT": "", "NO_GCE_CHECK": "true",
            "GCE_METADATA_HOST": "127.0.0.1:9", "GCE_METADATA_IP": "127.0.0.1:9", "GOOGLE_APPLICATION_CREDENTIALS": ""}
    for case, variables, expected in (
            ("no project", {"webhook_url": ""}, "gce_events needs a project"),
            ("no credentials", {"project": PROJECT, "webhook_url": ""}, "gce_events cannot authenticate to project")):
        book = Rulebook(spot_fleet, variables, env=bare, label="rulebook-bad-input")
        started = time.monotonic()
        book.start()
        try:
            book.proc.wait(timeout=120)
        finally:
            book.kill()
        seconds = time.monotonic() - started
        assert book.proc.returncode != 0, case
        assert expected in book.output(), "%s: %s" % (case, book.output()[-2000:])
        print("\nrulebook with %s: exit %d after %.1f s" % (case, book.proc.returncode, seconds))


def http_from(fleet, vm_container, ip):
    """GET http://ip:8000/ from inside a VM (the controller has no route to the replicas)."""
    code = "import urllib.request\ntry:\n print(urllib.request.urlopen('http://%s:8000/', timeout=2).status)\n" \
           "except Exception as e:\n print(e)" % ip
    proc = subprocess.run(["incus", "exec", vm_container, "--", "python3", "-c", code], capture_output=True, text=True,
                          check=False)
    return proc.stdout.strip() == "200"


def deployment_targets(fleet):
    """IPv4s of the running replicas and replacements of the deployment, on the backends that answer."""
    ips = []
    for vm in backends(fleet):
        listed = fleet.host_incus(vm, "list", "--format", "csv", "-c", "ns4", WEB["name"] + "-")
        for line in sorted(listed.stdout.splitlines() if listed.returncode == 0 else []):
            name, status, ipv4 = (line.split(",") + ["", ""])[:3]
            if status == "RUNNING" and ipv4:
                ips.append(ipv4.split()[0])
    return ips


def test_notice_then_preemption_replacement_serves_users_come_back(spot_fleet, rulebook, webhook):
    fleet = spot_fleet
    home = next(vm for vm in backends(fleet) if "%s-1" % WEB["name"] in instances_of(fleet, vm))
    other = next(vm for vm in backends(fleet) if vm != home)
    replacement = REPLACEMENT
    users_on_home = [u for u in fleet.users if "%s-container" % u in instances_of(fleet, home)]
    jump = fleet.vm_container("%s-jump-1" % fleet.name)

    halt = threading.Event()

    def refresh_targets():
        while not halt.is_set():
            targets = " ".join(deployment_targets(fleet))
            subprocess.run(["incus", "exec", jump, "--", "sh", "-c", "echo '%s' > /tmp/t && mv /tmp/t /tmp/spot-targets"
                            % targets], check=False, capture_output=True)
            halt.wait(2)

    client = subprocess.Popen(["incus", "exec", jump, "--", "python3", "-u", "-c", HTTP_CLIENT],
                              stdout=subprocess.PIPE, text=True)
    http_tries = []
    helpers = [threading.Thread(target=lambda: [http_tries.append(json.loads(line)) for line in client.stdout],
                                daemon=True),
               threading.Thread(target=refresh_targets, daemon=True)]
    for thread in helpers:
        thread.start()
    ssh_user = users_on_home[0] if users_on_home else fleet.users[0]

    def replacement_serves():
        ip = (instances_of(fleet, other).get(replacement) or {}).get("ipv4")
        return bool(ip) and http_from(fleet, jump, ip)

    ssh_loop = Loop(lambda: ssh_probe(fleet, ssh_user), 2)
    report = fleet.state / "reports" / ("spot_recover-%s.json" % home)
    try:
        wait_until(lambda: any(t["served"] for t in http_tries), 60,
                   explain=lambda _: "the HTTP client never reached the deployment: %s" % http_tries[-3:])
        wait_for_standby(fleet, other, replacement, "%s/%s-1" % (home, WEB["name"]))
        ssh_loop.start()
        time.sleep(3)
        # The replacement answers HTTP from the jump while the original VM is still in its notice.
        notice_at, served_by_replacement, stopped_at, running_at = preempt_with_notice(
            fleet, PROJECT, ZONE, home, replacement_serves)
        # The rulebook's run ends with the report, once the containers answer from the jump again.
        wait_until(lambda: rulebook.alive() and report.exists() and report.stat().st_mtime > notice_at, 600,
                   explain=lambda _: "no recovery report:\n%s" % rulebook.output()[-3000:])
        wait_until(lambda: ssh_loop.tries[-1][0] >= running_at and ssh_loop.tries[-1][1], 120,
                   explain=lambda _: "ssh never came back: %s" % ssh_loop.tries[-3:])
    finally:
        ssh_loop.stop()
        halt.set()
        client.kill()
        subprocess.run(["incus", "exec", jump, "--", "pkill", "-f", "spot-targets"], check=False, capture_output=True)

    during = [t for t in http_tries if t["t"] >= notice_at]
    failed = [t for t in during if not t["served"]]
    # The notice and the preemption were alerted (bearer token), the notice within seconds.
    notices, preemptions = webhook.events("preemption_notice", home), webhook.events("preempted", home)
    assert notices and preemptions, [r["event"] for r in webhook.received]
    assert all(r["auth"] == "Bearer alert-token" for r in notices + preemptions)
    # Every user (alice with both keys) logs in and finds the canary; the original replica runs again.
    logins = fleet.canaries.check_every_key("the preemption of %s" % home)
    assert "%s-1" % WEB["name"] in instances_of(fleet, home)
    assert instances_of(fleet, home)["%s-1" % WEB["name"]]["status"] == "Running"
    config = instances_of(fleet, other)[replacement]["config"]
    assert config["user.fleet.replaces"] == "%s/%s-1" % (home, WEB["name"])
    assert int(config["user.fleet.scale-back-at"]) > time.time(), "the replacement is already due"
    timeline = {
        "host": home, "notice_to_webhook": round(notices[0]["at"] - notice_at, 1),
        "notice_to_replacement_serving": round(served_by_replacement["at"] - notice_at, 1),
        "notice_to_stopped": round(stopped_at - notice_at, 1),
        "stopped_to_running": round(running_at - stopped_at, 1),
        "ssh_downtime": round(ssh_loop.downtime(), 1), "ssh_user": ssh_user,
        "http_requests": len(during), "http_failed": len(failed), "logins_checked": logins,
    }
    print("\nspot protection timeline: %s" % json.dumps(timeline))
    # The replacement served while the original VM still ran, and the HTTP client never failed.
    assert served_by_replacement["home_status"] == "RUNNING", served_by_replacement
    assert during and not failed, "HTTP failed %d of %d times, first %s" % (len(failed), len(during), failed[:1])


def test_rulebook_killed_in_the_delay_scales_back_exactly_once(spot_fleet, rulebook):
    fleet = spot_fleet
    replacement = REPLACEMENT
    holder = next(vm for vm in backends(fleet) if replacement in instances_of(fleet, vm))
    due = shorten_scale_back(fleet, holder, replacement, 60)
    assert due > time.time() + 15, "too late to kill the rulebook inside the delay (due in %d s)" % (due - time.time())
    rulebook.kill()
    assert replacement in instances_of(fleet, holder), "the replacement went away with the rulebook"
    rulebook.start()
    rulebook.wait_for("watching project %s" % PROJECT, 120)
    while "user.fleet.replaces" in (instances_of(fleet, holder).get(replacement) or {}).get("config", {}):
        assert time.time() < due + 180, "the restarted rulebook did not scale back"
        time.sleep(2)
    removed_at = time.time()
    assert removed_at >= due, "removed %d s before its time" % (due - removed_at)
    # Two more ticks: the replacement does not come back (a stopped standby takes its place, ready for
    # the next notice), nothing is removed twice, the original still runs.
    time.sleep(65)
    home = next(vm for vm in backends(fleet) if vm != holder)
    wait_for_standby(fleet, holder, replacement, "%s/%s-1" % (home, WEB["name"]))
    deletions = rulebook.output(whole=True).count("changed: [%s] => (item=default/%s " % (holder, replacement))
    assert deletions == 1, "the replacement was deleted %d times" % deletions
    assert instances_of(fleet, home)["%s-1" % WEB["name"]]["status"] == "Running"
    print("\nscale-back %.0f s after its time (tick 30 s), once" % (removed_at - due))


def test_event_for_an_unknown_instance_is_skipped(spot_fleet, rulebook):
    fleet = spot_fleet
    rulebook.offset = len(rulebook.output(whole=True))
    with preempted_foreign_vm(fleet, PROJECT, ZONE) as foreign:
        rulebook.wait_for("skipped: %s not a VM of fleet %s" % (foreign, fleet.name), 240)
        rulebook.wait_for("PLAY RECAP", 240)
        assert rulebook.proc.poll() is None, "ansible-rulebook ended on an unknown instance"
        assert fleet.instance(foreign)["status"] == "TERMINATED", "a VM outside the fleet was started"


def test_two_backends_preempted_at_once_both_recovered(spot_fleet, rulebook):
    """Both backends at once, the second start finding no spot capacity: one comes back by restart, the
    other on-demand on a new boot disk; each has its own recovery report; every user and key works."""
    fleet = spot_fleet
    reports = {vm: fleet.state / "reports" / ("spot_recover-%s.json" % vm) for vm in backends(fleet)}
    before = {vm: path.stat().st_mtime if path.exists() else 0 for vm, path in reports.items()}
    old_ids = {vm: fleet.instance(vm)["id"] for vm in backends(fleet)}
    with preempted_at_once(fleet, PROJECT, ZONE, backends(fleet)) as started:
        wait_until(lambda: rulebook.alive() and all(reports[vm].exists() and reports[vm].stat().st_mtime > before[vm]
                                                    for vm in backends(fleet)), 1200, interval=3,
                   explain=lambda _: "not both recovered:\n%s" % rulebook.output()[-3000:])
    done = {vm: json.loads(reports[vm].read_text()) for vm in backends(fleet)}
    assert sorted(d["action"] for d in done.values()) == ["recreated-on-demand", "started"], done
    for vm, data in done.items():
        assert fleet.instance(vm)["status"] == "RUNNING"
        assert (fleet.instance(vm)["id"] != old_ids[vm]) == (data["action"] == "recreated-on-demand")
    fleet.canaries.check_every_key("two backends preempted at once")
    print("\ntwo at once, %.0f s: %s" % (time.time() - started, json.dumps(
        {vm: [d["action"], d["seconds"]] for vm, d in done.items()})))
