"""An Incus host on its data disk: checked inside the nested host and on the controller's disk."""
from __future__ import annotations

import json
import time
from pathlib import Path

DATA_DISK = Path("/var/tmp/containarium-molecule/mol-incus-host-1-data")


def incus(host, *args):
    return host.check_output("sudo incus " + " ".join(args))


def test_var_lib_incus_is_the_data_disk(host):
    source = host.check_output("findmnt --noheadings --output SOURCE --mountpoint /var/lib/incus")
    assert "/mnt/disks/incus-data" in source or str(DATA_DISK) in source
    fstab = host.file("/etc/fstab").content_string
    assert "/mnt/disks/incus-data /var/lib/incus none bind,nofail 0 0" in fstab


def test_data_already_on_the_disk_was_kept(host):
    assert host.file("/var/lib/incus/was-here-before").content_string == "kept\n"


def test_file_written_under_var_lib_incus_survives_a_rerun_on_the_disk(host):
    # side_effect wrote it after converge; the idempotence run of the role came after that.
    assert host.file("/var/lib/incus/written-after-converge").exists
    assert (DATA_DISK / "written-after-converge").read_text() == "on the data disk\n"
    # Incus' own state lives there too.
    assert (DATA_DISK / "database").is_dir()


def test_bridge_is_on_the_host_subnet_without_nat(host):
    network = json.loads(incus(host, "query /1.0/networks/incusbr0"))
    assert network["config"]["ipv4.address"] == "10.0.3.1/24"
    assert network["config"]["ipv4.nat"] == "false"


def test_default_profile_autostarts_and_is_privileged_in_sandbox(host):
    profile = json.loads(incus(host, "query /1.0/profiles/default"))
    assert profile["config"]["boot.autostart"] == "true"
    assert profile["config"]["security.privileged"] == "true"
    assert profile["devices"]["root"]["pool"] == "default"


def test_incus_and_hook_enabled_at_boot_and_module_library_present(host):
    for unit in ("incus.socket", "incus-startup.service", "containarium-incus-shutdown.service"):
        host.run_expect([0], f"sudo systemctl is-enabled {unit}")
    host.run_expect([0], "python3 -c 'import pylxd'")


def test_container_gets_an_address_and_the_shutdown_hook_stops_it_in_time(host):
    assert "fleet-base" in incus(host, "image list --format csv --columns l")
    incus(host, "launch fleet-base mol-inner-1")
    try:
        address = ""
        for _attempt in range(30):
            address = incus(host, "list mol-inner-1 --format csv --columns 4").split(" ")[0]
            if address:
                break
            time.sleep(1)
        assert address.startswith("10.0.3."), address
        started = time.monotonic()
        host.run_expect([0], "sudo systemctl stop containarium-incus-shutdown.service")
        assert time.monotonic() - started < 30
        assert incus(host, "list mol-inner-1 --format csv --columns s").strip() == "STOPPED"
    finally:
        host.run("sudo systemctl start containarium-incus-shutdown.service")
        host.run("sudo incus delete --force mol-inner-1")
