"""Instances as real Incus containers: limits, addresses, ssh keys, scripts, disks, stop/resize."""
from __future__ import annotations

import json
import time

import pytest

from emulator.conftest import incus, instance_body

pytestmark = pytest.mark.containers
ZONE = "us-west1-b"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHx3cxfakekeyfortestsonly0000000000000000000 emu@test"


def container(name: str) -> dict | None:
    found = [c for c in json.loads(incus("list", name, "--format", "json")) if c["name"] == name]
    return found[0] if found else None


def exec_in(name: str, *cmd: str) -> str:
    return incus("exec", name, "--", *cmd)


def test_instance_is_a_container_with_limits_keys_scripts_and_disks(container_api):
    _emu, api = container_api
    body = instance_body(
        "emu-c1", machine_type="e2-small", zone=ZONE,
        metadata={"items": [{"key": "ssh-keys", "value": f"emu-user:{KEY}"},
                            {"key": "startup-script", "value": "#!/bin/bash\necho booted > /tmp/startup-ran\n"},
                            {"key": "shutdown-script", "value": "#!/bin/bash\ndate > /mnt/disks/data/shutdown-ran\n"}]})
    body["disks"].append({"deviceName": "data", "autoDelete": False,
                          "initializeParams": {"diskName": "emu-c1-data", "diskSizeGb": "20"}})
    op = api.op("POST", f"zones/{ZONE}/instances", body)
    assert "error" not in op, op
    inst = api.get(f"zones/{ZONE}/instances/emu-c1")
    ct = container("gce-emu-c1")
    assert ct["status"] == "Running"
    assert ct["config"]["limits.cpu"] == "1" and ct["config"]["limits.memory"] == "2048MiB"
    ips = [a["address"] for a in ct["state"]["network"]["eth0"]["addresses"] if a["family"] == "inet"]
    assert inst["networkInterfaces"][0]["networkIP"] in ips
    assert inst["networkInterfaces"][0]["accessConfigs"][0]["natIP"] == inst["networkInterfaces"][0]["networkIP"]
    assert exec_in("gce-emu-c1", "cat", "/home/emu-user/.ssh/authorized_keys").strip() == KEY
    assert "google-sudoers" in exec_in("gce-emu-c1", "id", "-nG", "emu-user")
    exec_in("gce-emu-c1", "sh", "-c", "echo kept > /mnt/disks/data/hello")
    deadline = time.monotonic() + 90  # generous: the shared sandbox host can be very loaded
    while "booted" not in incus("exec", "gce-emu-c1", "--", "cat", "/tmp/startup-ran", check=False):
        assert time.monotonic() < deadline, "startup-script did not run"
        time.sleep(0.5)

    # The attached disk cannot be deleted while in use.
    busy = api.call("DELETE", f"zones/{ZONE}/disks/emu-c1-data", expect=400).body
    assert busy["error"]["errors"][0]["reason"] == "resourceInUseByAnotherResource"

    # Stop → container stopped (shutdown-script ran first); resize; start → nproc follows.
    api.op("POST", f"zones/{ZONE}/instances/emu-c1/stop")
    assert container("gce-emu-c1")["status"] == "Stopped"
    api.op("POST", f"zones/{ZONE}/instances/emu-c1/setMachineType",
           {"machineType": f"zones/{ZONE}/machineTypes/e2-standard-2"})
    api.op("POST", f"zones/{ZONE}/instances/emu-c1/start")
    assert exec_in("gce-emu-c1", "nproc").strip() == "2"
    assert exec_in("gce-emu-c1", "cat", "/mnt/disks/data/hello").strip() == "kept"
    assert exec_in("gce-emu-c1", "cat", "/mnt/disks/data/shutdown-ran").strip()

    # setMetadata replaces the keys inside the running container.
    md = api.get(f"zones/{ZONE}/instances/emu-c1")["metadata"]
    other = KEY.replace("emu@test", "emu2@test")
    api.op("POST", f"zones/{ZONE}/instances/emu-c1/setMetadata",
           {"fingerprint": md["fingerprint"], "items": [{"key": "ssh-keys", "value": f"emu-ops:{other}"}]})
    assert exec_in("gce-emu-c1", "cat", "/home/emu-ops/.ssh/authorized_keys").strip() == other
    assert exec_in("gce-emu-c1", "cat", "/home/emu-user/.ssh/authorized_keys").strip() == ""

    # A snapshot of the data disk restores into a new disk with the same files.
    api.op("POST", f"zones/{ZONE}/disks/emu-c1-data/createSnapshot", {"name": "emu-c1-snap"})
    api.op("POST", f"zones/{ZONE}/disks", {"name": "emu-c1-restored", "sourceSnapshot": "global/snapshots/emu-c1-snap"})
    assert api.get(f"zones/{ZONE}/disks/emu-c1-restored")["sizeGb"] == "20"
    api.op("POST", f"zones/{ZONE}/instances/emu-c1/attachDisk",
           {"source": f"zones/{ZONE}/disks/emu-c1-restored", "deviceName": "restored"})
    assert exec_in("gce-emu-c1", "cat", "/mnt/disks/restored/hello").strip() == "kept"
    api.op("POST", f"zones/{ZONE}/instances/emu-c1/detachDisk", deviceName="restored")
    assert "restored" not in exec_in("gce-emu-c1", "ls", "/mnt/disks")
    api.op("DELETE", f"zones/{ZONE}/disks/emu-c1-restored")

    # Delete: the container goes, the persistent disk (autoDelete false) and its volume stay.
    api.op("DELETE", f"zones/{ZONE}/instances/emu-c1")
    assert container("gce-emu-c1") is None
    disk = api.get(f"zones/{ZONE}/disks/emu-c1-data")
    assert "users" not in disk
    assert "gce-disk-emu-c1-data" in incus("storage", "volume", "list", "default", "--format", "csv", "-c", "n")
    api.op("DELETE", f"zones/{ZONE}/disks/emu-c1-data")
    assert "gce-disk-emu-c1-data" not in incus("storage", "volume", "list", "default", "--format", "csv", "-c", "n")


METADATA_PROBE = """
import sys, urllib.request
req = urllib.request.Request(sys.argv[1], headers={"Metadata-Flavor": "Google"})
print(urllib.request.urlopen(req, timeout=60).read().decode())
"""


def test_stop_and_preemption_end_with_the_vm_down_when_its_clean_shutdown_hangs(container_api):
    """Compute Engine forces a VM off after its clean shutdown time; the emulator did not, and left a VM
    whose shutdown outlasted it STOPPING for good (a nested Incus host on a busy box, preempted)."""
    emu, api = container_api
    emu.compute.backend.clean_stop_seconds = 2
    api.op("POST", f"zones/{ZONE}/instances", instance_body(
        "emu-c3", machine_type="e2-micro", zone=ZONE, scheduling={"provisioningModel": "SPOT", "instanceTerminationAction": "STOP"}))
    exec_in("gce-emu-c3", "sh", "-c",
            "printf '[Service]\\nType=oneshot\\nRemainAfterExit=yes\\nExecStart=/bin/true\\n"
            "ExecStop=/bin/sleep 600\\nTimeoutStopSec=infinity\\n' > /etc/systemd/system/slow-stop.service && "
            "systemctl daemon-reload && systemctl start slow-stop")
    op = api.op("POST", f"zones/{ZONE}/instances/emu-c3/stop")
    assert "error" not in op, op
    assert api.get(f"zones/{ZONE}/instances/emu-c3")["status"] == "TERMINATED"
    assert container("gce-emu-c3")["status"] == "Stopped"

    # A preemption stops the VM at the end of its notice, without waiting for a clean shutdown.
    emu.compute.backend.clean_stop_seconds = 120
    api.op("POST", f"zones/{ZONE}/instances/emu-c3/start")
    exec_in("gce-emu-c3", "systemctl", "start", "slow-stop")
    started = time.monotonic()
    api.admin("preempt", {"zone": ZONE, "instance": "emu-c3", "notice_seconds": 0})
    while api.get(f"zones/{ZONE}/instances/emu-c3")["status"] != "TERMINATED":
        assert time.monotonic() - started < 60, "a preempted VM waited for its clean shutdown"
        time.sleep(0.2)


def test_metadata_server_knows_the_vm_by_its_source_ip_and_restart_reconciles(container_api, emulator_factory,
                                                                              tmp_path):
    emu, api = container_api
    api.op("POST", f"zones/{ZONE}/instances", instance_body(
        "emu-c2", machine_type="e2-micro", zone=ZONE,
        metadata={"items": [{"key": "role", "value": "jump"}]},
        scheduling={"provisioningModel": "SPOT", "instanceTerminationAction": "STOP"}))
    base = api.bridge_base + "computeMetadata/v1/"
    name = exec_in("gce-emu-c2", "python3", "-c", METADATA_PROBE, base + "instance/name").strip()
    assert name == "emu-c2"
    assert exec_in("gce-emu-c2", "python3", "-c", METADATA_PROBE, base + "instance/attributes/role").strip() == "jump"
    assert exec_in("gce-emu-c2", "python3", "-c", METADATA_PROBE, base + "instance/preempted").strip() == "FALSE"

    api.admin("preempt", {"zone": ZONE, "instance": "emu-c2", "notice_seconds": 0})
    deadline = time.monotonic() + 180
    while api.get(f"zones/{ZONE}/instances/emu-c2")["status"] != "TERMINATED":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert container("gce-emu-c2")["status"] == "Stopped"

    # Restart on the same state while the world changed behind the emulator's back.
    api.op("POST", f"zones/{ZONE}/instances/emu-c2/start")
    emu.store.close()
    incus("stop", "gce-emu-c2", "--force")
    emu2, api2 = emulator_factory(containers=True, latency=0, state_dir=tmp_path / "state")
    assert api2.get(f"zones/{ZONE}/instances/emu-c2")["status"] == "TERMINATED"
    api2.op("POST", f"zones/{ZONE}/instances/emu-c2/start")
    assert container("gce-emu-c2")["status"] == "Running"
