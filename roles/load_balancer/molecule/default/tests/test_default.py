"""HAProxy forwards SSH to a live jump server and skips a dead one, checked with real ssh."""
from __future__ import annotations

import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], "../../tests/molecule"))
from fleet_ssh import address, key, ssh  # noqa: E402

testinfra_hosts = ["load_balancers"]
LB_PORT = 2222
# fall 2 x inter 2s, plus one interval of slack, plus rise 2 x inter 2s for the way back.
MARK_DOWN_SECONDS = 8


def landed_on() -> str:
    """Which jump server answered an SSH login made through the load balancer."""
    result = ssh(f"molecule@{address('mol-lb-1')}", "hostname", identity=key("id_ed25519"),
                 port=LB_PORT)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def sshd(instance: str, action: str) -> None:
    subprocess.run(["incus", "exec", instance, "--", "systemctl", action, "ssh"], check=True)


def test_configuration_is_valid_and_haproxy_runs(host):
    # systemctl through sudo: the molecule account has no user bus for testinfra's service checks.
    host.run_expect([0], "sudo systemctl is-active haproxy")
    host.run_expect([0], "sudo systemctl is-enabled haproxy")
    host.run_expect([0], "sudo haproxy -c -f /etc/haproxy/haproxy.cfg")
    config = host.file("/etc/haproxy/haproxy.cfg").content_string
    assert "tcp-check expect rstring ^SSH-" in config
    assert "balance source" in config and "stick on src" in config


def test_traffic_goes_to_the_active_server_with_affinity():
    assert {landed_on() for _attempt in range(4)} == {"mol-lb-j1"}


def test_dead_server_is_skipped_and_a_recovered_one_is_used_again():
    sshd("mol-lb-j1", "stop")
    try:
        time.sleep(MARK_DOWN_SECONDS)
        assert {landed_on() for _attempt in range(4)} == {"mol-lb-j2"}
    finally:
        sshd("mol-lb-j1", "start")
    time.sleep(MARK_DOWN_SECONDS)
    # Affinity: the client stays on the standby it was moved to, even with j1 healthy again.
    assert landed_on() == "mol-lb-j2"
    # ...until that one dies too: j1 passed its rise checks and takes the traffic back.
    sshd("mol-lb-j2", "stop")
    try:
        time.sleep(MARK_DOWN_SECONDS)
        assert {landed_on() for _attempt in range(4)} == {"mol-lb-j1"}
    finally:
        sshd("mol-lb-j2", "start")
