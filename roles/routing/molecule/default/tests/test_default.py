"""Routes from the central jump to the backends' container subnets, checked by reaching an inner
container (nested Incus) of each backend over SSH through the jump."""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], "../../tests/molecule"))
from fleet_ssh import address, key, ssh  # noqa: E402

testinfra_hosts = ["jump_servers"]
SUBNETS = {"mol-routing-b1": "10.0.3.0/24", "mol-routing-b2": "10.0.4.0/24"}


def routes(host) -> str:
    return host.check_output("ip -4 route show proto 177")


def inner_address(backend: str) -> str:
    """IPv4 of the inner container, read on the backend itself."""
    result = ssh(f"molecule@{address(backend)}",
                 f"sudo incus list mol-inner-{backend[-2:]} --format csv --columns 4",
                 identity=key("id_ed25519"))
    assert result.returncode == 0, result.stderr
    return result.stdout.split(" ")[0]


def test_jump_has_a_route_to_each_backend_subnet(host):
    table = routes(host)
    for backend, subnet in SUBNETS.items():
        assert f"{subnet} via {address(backend)} " in table + " "


def test_ssh_through_the_route_reaches_a_container_inside_each_backend():
    for backend, subnet in SUBNETS.items():
        inner = inner_address(backend)
        assert inner.startswith(subnet.rsplit(".", 1)[0] + "."), inner
        # From the controller via the jump: the jump forwards to 10.0.x.y, its route sends the
        # packets to the backend, which forwards them to its bridge (no NAT anywhere).
        result = ssh(f"root@{inner}", "hostname", identity=key("id_ed25519"),
                     jump=f"molecule@{address('mol-routing-jump')}")
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == f"mol-inner-{backend[-2:]}"


def test_backends_forward(host):
    for backend in SUBNETS:
        result = ssh(f"molecule@{address(backend)}", "cat /proc/sys/net/ipv4/ip_forward",
                     identity=key("id_ed25519"))
        assert result.stdout.strip() == "1"


def test_routes_come_back_at_boot_and_a_departed_backend_loses_its_route(host):
    # The unit restores lost routes (what happens at boot)...
    host.run_expect([0], "sudo ip -4 route flush proto 177")
    assert routes(host).strip() == ""
    host.run_expect([0], "sudo systemctl restart containarium-routes.service")
    assert all(subnet in routes(host) for subnet in SUBNETS.values())
    # ...and a route of ours that is no longer wanted (a backend that left) is removed.
    host.run_expect([0], f"sudo ip -4 route add 10.0.9.0/24 via {address('mol-routing-b1')} proto 177")
    host.run_expect([0], "sudo /usr/local/sbin/containarium-routes")
    assert "10.0.9.0/24" not in routes(host)
    assert all(subnet in routes(host) for subnet in SUBNETS.values())
