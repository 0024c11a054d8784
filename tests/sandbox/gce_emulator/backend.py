"""What stands behind an emulated VM: an Incus container (IncusBackend) or nothing (NullBackend).

The emulator core calls these from operation worker threads only, never from a request thread.
"""
from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import os
import subprocess
import threading
import time

log = logging.getLogger("gce_emulator.backend")

POOL = "default"

# Runs inside the container (python3 is in fleet-base): creates the users named in `ssh-keys`
# metadata with sudo rights and writes their authorized_keys, as the GCE guest agent does; users
# the emulator added earlier but no longer listed lose their keys.
SSH_KEYS_SCRIPT = r'''
import json, os, pwd, subprocess, sys
wanted = json.load(sys.stdin)
state = "/var/lib/gce-emulator/users.json"
os.makedirs(os.path.dirname(state), exist_ok=True)
previous = json.load(open(state)) if os.path.exists(state) else []
subprocess.run(["groupadd", "-f", "google-sudoers"], check=True)
with open("/etc/sudoers.d/google_sudoers", "w") as fh:
    fh.write("%google-sudoers ALL=(ALL:ALL) NOPASSWD:ALL\n")
os.chmod("/etc/sudoers.d/google_sudoers", 0o440)
for user in set(previous) | set(wanted):
    keys = wanted.get(user, [])
    try:
        pw = pwd.getpwnam(user)
    except KeyError:
        if not keys:
            continue
        subprocess.run(["useradd", "-m", "-s", "/bin/bash", "-G", "google-sudoers", user], check=True)
        pw = pwd.getpwnam(user)
    if keys:
        subprocess.run(["usermod", "-a", "-G", "google-sudoers", user], check=True)
    ssh_dir = os.path.join(pw.pw_dir, ".ssh")
    os.makedirs(ssh_dir, mode=0o700, exist_ok=True)
    path = os.path.join(ssh_dir, "authorized_keys")
    with open(path, "w") as fh:
        fh.write("".join(k + "\n" for k in keys))
    os.chmod(path, 0o600)
    for p in (ssh_dir, path):
        os.chown(p, pw.pw_uid, pw.pw_gid)
json.dump(sorted(wanted), open(state, "w"))
'''


def container_name(instance: str, used_by_other: bool, qualifier: str) -> str:
    """`gce-<instance>`; hashed to fit 63 chars, or when another project/zone already took the name."""
    plain = f"gce-{instance}"
    if len(plain) <= 63 and not used_by_other:
        return plain
    digest = hashlib.sha256(f"{qualifier}/{instance}".encode()).hexdigest()[:8]
    return f"gce-{instance[:50].rstrip('-')}-{digest}"


def volume_name(disk: str) -> str:
    return f"gce-disk-{disk}"


class NullBackend:
    """--no-containers: nothing runs; addresses are synthetic (10.128.0.0/9, unique per instance)."""

    containers = False

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next = int(ipaddress.IPv4Address("10.128.0.2"))
        self._addresses: dict[str, str] = {}

    def create(self, name: str, image: str, cpus: int, memory_mb: int, nested: bool, address: str = "") -> None:
        if address:
            with self._lock:
                self._addresses[name] = address

    def start(self, name: str) -> str:
        """The VM's internal IP: allocated once, kept across stop/start as on GCE."""
        with self._lock:
            if name not in self._addresses:
                self._next += 1
                self._addresses[name] = str(ipaddress.IPv4Address(self._next))
            return self._addresses[name]

    def stop(self, name: str, force: bool = False) -> None:
        pass

    def delete(self, name: str) -> None:
        pass

    def state(self, name: str) -> str | None:
        return None

    def set_limits(self, name: str, cpus: int, memory_mb: int) -> None:
        pass

    def run_script(self, name: str, script: str, log_path: str) -> None:
        pass

    def install_ssh_keys(self, name: str, users: dict[str, list[str]]) -> None:
        pass

    def volume_create(self, disk: str, size_gb: int) -> None:
        pass

    def volume_delete(self, disk: str) -> None:
        pass

    def volume_from_snapshot(self, disk: str, source_disk: str, snapshot: str, size_gb: int) -> None:
        pass

    def volume_snapshot(self, disk: str, snapshot: str) -> None:
        pass

    def attach(self, name: str, device: str, disk: str) -> None:
        pass

    def detach(self, name: str, device: str) -> None:
        pass

    def list_containers(self) -> dict[str, str]:
        return {}


class BackendError(RuntimeError):
    pass


# Incus failures that mean the command never ran, seen on a loaded host (a CI run once failed an instance
# insert on the first): trying again is safe, and a real Compute Engine does not fail the operation for them.
TRANSIENT_INCUS_ERRORS = ("Failed to retrieve PID of executing child process",)
TRANSIENT_TRIES = 4


def is_transient(stderr: str) -> bool:
    return any(marker in stderr for marker in TRANSIENT_INCUS_ERRORS)


class IncusBackend(NullBackend):
    """Containers through the `incus` CLI (talks to /var/lib/incus/unix.socket)."""

    containers = True

    def __init__(self) -> None:
        super().__init__()
        self.host_cpus = os.cpu_count() or 1
        self.clean_stop_seconds = 30

    def _incus(self, *args: str, stdin: str | None = None, check: bool = True, timeout: float = 300) -> str:
        for attempt in range(1, TRANSIENT_TRIES + 1):
            proc = subprocess.run(["incus", *args], input=stdin, capture_output=True, text=True, timeout=timeout,
                                  check=False)
            if proc.returncode == 0 or attempt == TRANSIENT_TRIES or not is_transient(proc.stderr):
                break
            log.warning("incus %s (try %d): %s; trying again", " ".join(args[:2]), attempt, proc.stderr.strip())
            time.sleep(attempt)
        if check and proc.returncode != 0:
            raise BackendError(f"incus {' '.join(args[:3])}: {proc.stderr.strip() or proc.stdout.strip()}")
        return proc.stdout

    def limits(self, cpus: int, memory_mb: int) -> tuple[str, str]:
        # More vCPUs than the host has are capped (Incus refuses them otherwise).
        return str(max(1, min(cpus, self.host_cpus))), f"{memory_mb}MiB"

    def create(self, name: str, image: str, cpus: int, memory_mb: int, nested: bool, address: str = "") -> None:
        cpu, memory = self.limits(cpus, memory_mb)
        args = ["init", image, name, "-c", f"limits.cpu={cpu}", "-c", f"limits.memory={memory}",
                "-c", "user.gce-emulator=true"]
        if address:  # networkIP asked for: a static DHCP lease on the bridge
            args += ["-d", f"eth0,ipv4.address={address}"]
        if nested:
            args += ["-c", "security.nesting=true", "-c", "security.privileged=true"]
        self._incus(*args)

    def start(self, name: str) -> str:
        if self.state(name) != "Running":
            self._incus("start", name)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            info = json.loads(self._incus("list", name, "--format", "json"))
            for inst in info:
                if inst["name"] != name:
                    continue
                for iface, net in ((inst.get("state") or {}).get("network") or {}).items():
                    if iface == "lo":
                        continue
                    for addr in net.get("addresses", []):
                        if addr["family"] == "inet" and addr.get("scope") == "global":
                            return addr["address"]
            time.sleep(0.5)
        raise BackendError(f"container {name} got no IPv4 address within 90 s")

    def stop(self, name: str, force: bool = False) -> None:
        """A clean shutdown for up to clean_stop_seconds, then a forced one: Compute Engine's stop always ends
        with the VM down (a nested Incus host shutting its containers down can outlast the clean part on a busy box)."""
        if self.state(name) == "Running":
            self._incus("stop", name, *(["--force"] if force else ["--timeout", str(self.clean_stop_seconds)]),
                        check=False)
            if self.state(name) == "Running":
                self._incus("stop", name, "--force")

    def delete(self, name: str) -> None:
        if self.state(name) is not None:
            self._incus("delete", name, "--force")

    def state(self, name: str) -> str | None:
        out = self._incus("list", name, "--format", "json", "--columns", "ns")
        for inst in json.loads(out):
            if inst["name"] == name:
                return inst["status"]
        return None

    def set_limits(self, name: str, cpus: int, memory_mb: int) -> None:
        cpu, memory = self.limits(cpus, memory_mb)
        self._incus("config", "set", name, f"limits.cpu={cpu}", f"limits.memory={memory}")

    def run_script(self, name: str, script: str, log_path: str) -> None:
        wrapper = f'cat > /run/gce-script.$$ && bash /run/gce-script.$$ >> {log_path} 2>&1; rc=$?; rm -f /run/gce-script.$$; exit $rc'
        self._incus("exec", name, "--", "sh", "-c", wrapper, stdin=script, check=False, timeout=900)

    def install_ssh_keys(self, name: str, users: dict[str, list[str]]) -> None:
        self._incus("exec", name, "--", "python3", "-c", SSH_KEYS_SCRIPT, stdin=json.dumps(users))

    def volume_create(self, disk: str, size_gb: int) -> None:
        self._incus("storage", "volume", "create", POOL, volume_name(disk), "--type", "filesystem",
                    "user.gce-size-gb=" + str(size_gb))

    def volume_delete(self, disk: str) -> None:
        self._incus("storage", "volume", "delete", POOL, volume_name(disk), check=False)

    def volume_from_snapshot(self, disk: str, source_disk: str, snapshot: str, size_gb: int) -> None:
        """A disk restored from a snapshot gets the snapshot's files (an empty volume if the
        snapshot's source volume is gone: the sandbox keeps snapshots inside their volume)."""
        try:
            self._incus("storage", "volume", "copy",
                        f"{POOL}/{volume_name(source_disk)}/{snapshot}", f"{POOL}/{volume_name(disk)}")
        except BackendError as exc:
            log.warning("restoring %s from %s/%s: %s", disk, source_disk, snapshot, exc)
            self.volume_create(disk, size_gb)

    def volume_snapshot(self, disk: str, snapshot: str) -> None:
        self._incus("storage", "volume", "snapshot", "create", POOL, volume_name(disk), snapshot, check=False)

    def attach(self, name: str, device: str, disk: str) -> None:
        self._incus("config", "device", "add", name, device, "disk", f"pool={POOL}",
                    f"source={volume_name(disk)}", f"path=/mnt/disks/{device}")

    def detach(self, name: str, device: str) -> None:
        self._incus("config", "device", "remove", name, device, check=False)

    def list_containers(self) -> dict[str, str]:
        out = self._incus("list", "gce-", "--format", "json", "--columns", "ns")
        return {i["name"]: i["status"] for i in json.loads(out) if i["name"].startswith("gce-")}
