"""The sentinel forwards SSH/HTTPS/HTTP to live spot hosts, serves the maintenance page while none
answers, holds and pushes TLS certificates, and runs ansible-rulebook as a service that hears a
preemption from the (emulated) Compute API. Checked from the outside: ssh, HTTP, incus exec."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

sys.path.insert(0, os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], "../../tests/molecule"))
from fleet_ssh import address, key, ssh  # noqa: E402

testinfra_hosts = ["sentinels"]
SENTINEL = "mol-sentinel-1"
SPOTS = ("mol-sentinel-spot1", "mol-sentinel-spot2")
ADMIN_PORT = 2222
# fall 2 x inter 2s, plus one interval of slack (and the same for rise).
MARK_SECONDS = 8
EMULATOR = "http://127.0.0.1:8122/"
PROJECT = "sn-molecule"
ZONE = "us-central1-a"


def incus_exec(instance: str, command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["incus", "exec", instance, "--", "sh", "-c", command],
                          capture_output=True, text=True, check=check)


def http_get(port: int = 80) -> tuple[int, str]:
    """Status and body of GET / on the sentinel's port (errors are answers too)."""
    try:
        with urllib.request.urlopen(f"http://{address(SENTINEL)}:{port}/", timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def web_server(instance: str, action: str, port: int = 80, healthy: bool = True) -> None:
    """A transient web server on a port of a spot host, serving its name (and /fleet-health when healthy,
    as a spot host's ingress does while one of its containers serves)."""
    if action == "start":
        health = "echo ok > /srv/www/fleet-health" if healthy else "rm -f /srv/www/fleet-health"
        incus_exec(instance, f"mkdir -p /srv/www && hostname > /srv/www/index.html && {health} && "
                             f"systemd-run --unit mol-web-{port} python3 -m http.server {port} --directory /srv/www")
    else:
        incus_exec(instance, f"systemctl stop mol-web-{port}", check=False)


def emulator(method: str, path: str, body: dict | None = None) -> dict:
    request = urllib.request.Request(EMULATOR + path, method=method, data=json.dumps(body or {}).encode(),
                                     headers={"Authorization": "Bearer molecule-token",
                                              "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def test_haproxy_and_service_run_and_sshd_moved(host):
    host.run_expect([0], "sudo systemctl is-active haproxy")
    host.run_expect([0], "sudo haproxy -c -f /etc/haproxy/haproxy.cfg")
    assert host.run("sudo systemctl is-active fleet-sentinel").stdout.strip() == "active"
    assert host.run("sudo systemctl show -p Restart --value fleet-sentinel").stdout.strip() == "always"
    listening = host.run("sudo ss -Hltnp").stdout
    assert ":2222 " in listening and "sshd" in listening
    for port in (22, 80, 443):
        assert any(f":{port} " in line and "haproxy" in line for line in listening.splitlines()), port


def test_ssh_on_22_reaches_a_spot_host_and_the_sentinel_keeps_its_admin_port():
    result = ssh(f"molecule@{address(SENTINEL)}", "hostname", identity=key("id_ed25519"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() in SPOTS
    admin = ssh(f"molecule@{address(SENTINEL)}", "hostname", identity=key("id_ed25519"), port=ADMIN_PORT)
    assert admin.stdout.strip() == SENTINEL, admin.stderr


def test_http_is_forwarded_while_a_spot_host_serves_and_maintenance_page_while_none_does():
    status, body = http_get()
    assert status == 503 and "Back in a minute" in body
    web_server(SPOTS[0], "start", healthy=False)
    try:
        # Answering is not enough: the host's /fleet-health must pass.
        time.sleep(MARK_SECONDS)
        status, body = http_get()
        assert status == 503 and "Back in a minute" in body
        incus_exec(SPOTS[0], "echo ok > /srv/www/fleet-health")
        time.sleep(MARK_SECONDS)
        status, body = http_get()
        assert (status, body) == (200, SPOTS[0] + "\n")
    finally:
        web_server(SPOTS[0], "stop")
    time.sleep(MARK_SECONDS)
    status, body = http_get()
    assert status == 503 and "Back in a minute" in body


# Stands in for a spot host's ingress on 443 (plain HTTP here; the ingress ends TLS in real use): reads the
# PROXY v2 header the sentinel sends first and answers with the client address it carries.
PROXY_ECHO = r"""
import socket, socketserver, struct
class Echo(socketserver.StreamRequestHandler):
    def handle(self):
        head = self.rfile.read(16)
        assert head[:12] == b"\r\n\r\n\x00\r\nQUIT\n", head
        block = self.rfile.read(struct.unpack("!H", head[14:16])[0])
        source = socket.inet_ntoa(block[:4]) if head[13] >> 4 == 1 else "not IPv4"
        while self.rfile.readline() not in (b"\r\n", b""):
            pass
        self.wfile.write(b"HTTP/1.0 200 OK\r\n\r\n" + source.encode() + b"\n")
socketserver.TCPServer.allow_reuse_address = True
socketserver.TCPServer(("", 443), Echo).serve_forever()
"""


def test_https_is_passed_with_the_client_address_to_a_spot_host_whose_ingress_serves():
    """TCP pass-through to a spot host's 443 with the client's address in a PROXY v2 header, only while that
    host's /fleet-health on its HTTP port passes."""
    incus_exec(SPOTS[1], "cat > /root/proxy_echo.py <<'EOF'\n%sEOF\n"
                         "systemd-run --unit mol-proxy-echo python3 /root/proxy_echo.py" % PROXY_ECHO)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:  # our address as the sentinel sees it
        probe.connect((address(SENTINEL), 9))
        client = probe.getsockname()[0]
    try:
        time.sleep(MARK_SECONDS)
        with pytest.raises(OSError):  # no spot host counts: HAProxy closes the connection
            http_get(443)
        web_server(SPOTS[1], "start", port=80)
        try:
            time.sleep(MARK_SECONDS)
            assert http_get(443) == (200, client + "\n")
        finally:
            web_server(SPOTS[1], "stop", port=80)
    finally:
        incus_exec(SPOTS[1], "systemctl stop mol-proxy-echo", check=False)


def test_certificates_are_on_the_sentinel_and_on_every_spot_host(host):
    on_sentinel = host.run("sudo sha256sum /etc/fleet-sentinel/tls/fleet.crt").stdout.split()[0]
    for spot in SPOTS:
        listing = incus_exec(spot, "stat -c '%a %n' /etc/fleet-sentinel/tls/*").stdout
        assert "600 /etc/fleet-sentinel/tls/fleet.key" in listing and "600 /etc/fleet-sentinel/tls/fleet.pem" in listing
        assert incus_exec(spot, "sha256sum /etc/fleet-sentinel/tls/fleet.crt").stdout.split()[0] == on_sentinel


def test_the_service_hears_a_preemption_and_survives_a_kill(host):
    emulator("POST", f"compute/v1/projects/{PROJECT}/zones/{ZONE}/instances", {
        "name": "mol-spot-vm", "machineType": f"zones/{ZONE}/machineTypes/e2-small",
        "scheduling": {"provisioningModel": "SPOT", "preemptible": True, "instanceTerminationAction": "STOP"},
        "disks": [{"boot": True, "autoDelete": True,
                   "initializeParams": {"sourceImage": "projects/debian-cloud/global/images/family/debian-12"}}],
        "networkInterfaces": [{"network": "global/networks/default"}]})
    deadline = time.monotonic() + 60
    while emulator("GET", f"compute/v1/projects/{PROJECT}/zones/{ZONE}/instances/mol-spot-vm")["status"] != "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.5)
    # Once the service watches (its first poll wrote the watermark; JVM start-up takes a while under
    # load), kill ansible-rulebook outright: systemd starts it again, and the watermark keeps the event.
    deadline = time.monotonic() + 180
    while host.run("sudo test -s /var/lib/fleet-sentinel/gce_events.json").rc != 0:
        assert time.monotonic() < deadline, host.run("sudo journalctl -u fleet-sentinel --no-pager -n 40").stdout
        time.sleep(1)
    host.run_expect([0], "sudo systemctl kill --signal=KILL fleet-sentinel")
    emulator("POST", "_admin/preempt", {"project": PROJECT, "zone": ZONE, "instance": "mol-spot-vm", "notice_seconds": 0})
    deadline = time.monotonic() + 180
    while "PREEMPTED mol-spot-vm in us-central1-a" not in host.run("sudo journalctl -u fleet-sentinel --no-pager").stdout:
        assert time.monotonic() < deadline, host.run("sudo journalctl -u fleet-sentinel --no-pager -n 40").stdout
        time.sleep(1)
    assert host.run("sudo systemctl is-active fleet-sentinel").stdout.strip() == "active"
    assert host.run("sudo test -s /var/lib/fleet-sentinel/gce_events.json").rc == 0
