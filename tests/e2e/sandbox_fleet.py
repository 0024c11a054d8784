"""A whole fleet on the sandbox, for end-to-end tests and benchmarks.

``SandboxFleet(name, port)`` owns one GCE emulator (its own port and state directory, VMs as real
Incus containers named ``gce-<name>-...``), a copy of ``inventories/sandbox`` pointed at it, and the
fleet's keys. Tests drive it only the way a user would: ``ansible-playbook`` with that inventory,
``ssh -F <state>/clients/<user>/ssh_config`` into containers, and the emulator's admin API for what
Google would do to them (preempt). Several fleets with different names and ports can run at once.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import re
import shutil
import subprocess
import time
import urllib.request

import yaml
from playbook_output import failure_report

REPO = pathlib.Path(__file__).resolve().parents[2]
BIN = REPO / ".venv" / "bin"
RECAP_LINE = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)
USERS = ("alice", "bob")
PROJECT = "sandbox-project"
# The sandbox inventories put every VM of a fleet in this zone.
ZONE = "us-central1-a"


def wait_until(probe, timeout, done=bool, interval=1.0, explain=repr):
    """Call ``probe()`` every ``interval`` seconds until ``done(answer)`` holds, and return that answer; after
    ``timeout`` seconds fail the test with ``explain(answer)`` of the last answer. A probe may assert too."""
    deadline = time.monotonic() + timeout
    while True:
        answer = probe()
        if done(answer):
            return answer
        assert time.monotonic() < deadline, explain(answer)
        time.sleep(interval)


class PlaybookRun:
    """One ansible-playbook run: exit code, output, seconds, and its PLAY RECAP per host."""

    def __init__(self, args, returncode, output, seconds):
        self.args, self.returncode, self.output, self.seconds = args, returncode, output, seconds
        self.recap = {m.group(1): {"ok": int(m.group(2)), "changed": int(m.group(3)),
                                   "unreachable": int(m.group(4)), "failed": int(m.group(5))}
                      for m in RECAP_LINE.finditer(output)}

    @property
    def changed(self):
        """``{host: changed}`` for the hosts that changed anything."""
        return {host: counts["changed"] for host, counts in self.recap.items() if counts["changed"]}

    def tail(self, lines=60):
        return "\n".join(self.output.splitlines()[-lines:])

    def __repr__(self):
        return "<ansible-playbook %s: rc=%s in %.0f s>" % (" ".join(self.args), self.returncode, self.seconds)


class SandboxFleet:
    def __init__(self, name, port, users=USERS, overrides=None):
        self.name, self.port, self.users = name, int(port), tuple(users)
        self.root = REPO / "build" / ("fleet-%s" % name)
        self.inventory = self.root / "inventory"
        self.state = self.root / "state"
        self.emulator_state = self.root / "gce-emulator"
        self.endpoint = "http://127.0.0.1:%d/compute/v1/" % self.port
        self.overrides = dict(overrides or {})
        # Passed with -e to every playbook: what must outrank a playbook's vars_files (sentinel.yml's).
        self.extra_vars = {}
        self.env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_FORCE_COLOR="0",
                        ANSIBLE_NOCOLOR="1", PATH="%s:%s" % (BIN, os.environ.get("PATH", "")))

    # -- bring-up and tear-down -------------------------------------------------------------------

    def up(self):
        """Emulator running, inventory written, keys made. Idempotent."""
        self.state.mkdir(parents=True, exist_ok=True)
        self._emulator_script("gce_emulator_up.sh")
        self._write_inventory()
        for key in ("admin",) + self.users:
            if not (self.state / key).exists():
                subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "%s@%s" % (key, self.name),
                                "-f", str(self.state / key)], check=True)
        return self

    def down(self):
        """Forget the fleet: the emulator deletes its VMs and disks, then stops; files removed."""
        try:
            self.admin("reset", {})
        except OSError:
            pass
        self._emulator_script("gce_emulator_down.sh")
        leftovers = subprocess.run(["incus", "list", "--format", "csv", "--columns", "n"], capture_output=True,
                                   text=True, check=False).stdout.split()
        doomed = [n for n in leftovers if n.startswith("gce-%s-" % self.name)]
        if doomed:
            subprocess.run(["incus", "delete", "--force", *doomed], check=False, capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)

    def _emulator_script(self, script):
        env = dict(self.env, GCE_EMULATOR_PORT=str(self.port), GCE_EMULATOR_STATE_DIR=str(self.emulator_state))
        subprocess.run([str(REPO / "tests" / "sandbox" / script)], cwd=REPO, env=env, check=True,
                       capture_output=True, text=True)

    def _write_inventory(self):
        shutil.rmtree(self.inventory, ignore_errors=True)
        shutil.copytree(REPO / "inventories" / "sandbox", self.inventory)
        source = self.inventory / "10-fleet.gce.yml"
        config = yaml.safe_load(source.read_text())
        config.update(endpoint=self.endpoint, labels={"fleet": self.name})
        source.write_text(yaml.safe_dump(config, sort_keys=False))
        overrides = {
            "fleet_name": self.name,
            "fleet_state_dir": str(self.state),
            "fleet_gce_auth": {"project": PROJECT, "auth_kind": "accesstoken", "access_token": "sandbox-token",
                               "endpoint": self.endpoint},
            "fleet_users": [{"name": user, "keys": ["{{ lookup('ansible.builtin.file', fleet_state_dir + '/%s.pub') }}"
                                                    % user],
                             "identity_file": str(self.state / user)} for user in self.users],
        }
        overrides.update(self.overrides)
        # Loaded after the group_vars it overrides (files in a directory load in name order).
        (self.inventory / "group_vars" / "all" / "zz-fleet-under-test.yml").write_text(
            "---\n# Written by tests/e2e/sandbox_fleet.py for fleet %s.\n%s" % (self.name, yaml.safe_dump(overrides)))

    # -- driving it ---------------------------------------------------------------------------------

    def playbook(self, playbook, extra_vars=None, check=True, timeout=1800, env=None):
        """Run ``playbooks/<playbook>`` on this fleet's inventory (``env``: more environment variables); fails
        the test on error when ``check``."""
        args = [str(BIN / "ansible-playbook"), "-i", str(self.inventory), str(REPO / "playbooks" / playbook)]
        if self.extra_vars or extra_vars:
            args += ["-e", json.dumps(dict(self.extra_vars, **(extra_vars or {})))]
        log = self.root / "logs" / (pathlib.Path(playbook).stem + ".log")
        log.parent.mkdir(exist_ok=True)
        with open(log, "a", encoding="utf-8") as handle:
            # Streamed to the log as it runs, so a slow step can be watched with tail -f.
            handle.write("\n=== ansible-playbook %s\n" % " ".join(args[3:]))
            handle.flush()
            offset = handle.tell()
            started = time.monotonic()
            proc = subprocess.run(args, cwd=REPO, env=dict(self.env, **(env or {})), stdout=handle,
                                  stderr=subprocess.STDOUT, timeout=timeout, check=False)
        with open(log, encoding="utf-8") as handle:
            handle.seek(offset)
            output = handle.read()
        run = PlaybookRun(args[3:], proc.returncode, output, time.monotonic() - started)
        if check and run.returncode != 0:
            raise AssertionError("%r failed:\n%s" % (run, failure_report(run.output)))
        return run

    def ssh(self, user, host, command, timeout=60):
        """``ssh -F`` the user's own client config (ProxyJump chain, strict host keys) and run ``command``."""
        return subprocess.run(["ssh", "-F", str(self.state / "clients" / user / "ssh_config"),
                               "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", host, command],
                              capture_output=True, text=True, timeout=timeout, check=False)

    def admin(self, path, body=None):
        """The emulator's admin API (``/_admin/<path>``): what Google would do to the fleet."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request("http://127.0.0.1:%d/_admin/%s" % (self.port, path), data=data,
                                         method="GET" if body is None else "POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=120) as response:
            return json.load(response)

    def instance(self, vm):
        """The Compute API's view of one of the fleet's VMs."""
        return self.compute("zones/%s/instances/%s" % (ZONE, vm))

    def compute(self, path, method="GET", body=None):
        """Call the Compute API at a path below ``projects/<project>/`` (e.g. ``zones/us-central1-a/instances/x``)
        as any client would; returns the answer (for a change, its operation). HTTP errors raise."""
        headers = {"Authorization": "Bearer sandbox-token"}
        data = None
        if body is not None or method == "POST":
            data = json.dumps(body or {}).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(self.endpoint + "projects/%s/%s" % (PROJECT, path), data=data,
                                         method=method, headers=headers)
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.load(response)

    def vm_container(self, vm):
        """The Incus container behind VM ``vm`` (as the emulator names it)."""
        return "gce-%s" % vm

    def host_incus(self, vm, *args):
        """Run ``incus`` inside a backend VM (the nested Incus that holds user containers)."""
        return subprocess.run(["incus", "exec", self.vm_container(vm), "--", "incus", *args],
                              capture_output=True, text=True, check=False)


@contextlib.contextmanager
def built_fleet(env, name, port, playbook, configure=None, **fleet_args):
    """A fleet brought up and built with ``playbook`` (its run kept as ``fleet.build``), for a session fixture.

    FLEET_<env>_NAME / FLEET_<env>_PORT override name and port, so that parallel runs do not collide;
    ``configure(fleet)`` runs before bring-up (the fleet's state directory is known, nothing exists yet);
    the fleet is torn down afterwards, even when the build fails, unless FLEET_E2E_KEEP=1.
    """
    fleet = SandboxFleet(os.environ.get("FLEET_%s_NAME" % env, name), os.environ.get("FLEET_%s_PORT" % env, str(port)),
                         **fleet_args)
    try:
        if configure:
            configure(fleet)
        fleet.up()
        fleet.build = fleet.playbook(playbook)
        yield fleet
    finally:
        if os.environ.get("FLEET_E2E_KEEP") != "1":
            fleet.down()


def second_key(user):
    """A ``configure`` for built_fleet: ``user`` logs in with a second key pair, ``<user>-2``, as well."""

    def configure(fleet):
        fleet.state.mkdir(parents=True, exist_ok=True)
        if not (fleet.state / ("%s-2" % user)).exists():
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "%s-2@%s" % (user, fleet.name),
                            "-f", str(fleet.state / ("%s-2" % user))], check=True)
        fleet.overrides["fleet_users"] = [
            {"name": each, "identity_file": str(fleet.state / each),
             "keys": ["{{ lookup('ansible.builtin.file', fleet_state_dir + '/%s.pub') }}" % key
                      for key in ((each, "%s-2" % each) if each == user else (each,))]}
            for each in fleet.users]

    return configure
