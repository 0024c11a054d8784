"""incus_instance_info and incus_host_info against a scripted Incus API."""

from __future__ import annotations

import pytest
from fake_incus import FakeIncus, run_module, sync


def listed(name, status, team, memory=0, cpu=None):
    config = {"user.team": team, "volatile.uuid": "x"}
    config.update({"limits.cpu": cpu} if cpu else {})
    return {"name": name, "type": "container", "status": status, "location": "none", "profiles": ["default"],
            "config": config, "expanded_config": config, "devices": {}, "snapshots": [{"name": "s1"}],
            "state": {"status": status, "memory": {"usage": memory, "usage_peak": memory},
                      "cpu": {"usage": 2500000000}, "disk": {"root": {"usage": 4096}}, "processes": 7,
                      "network": {"eth0": {"type": "broadcast", "addresses": [
                          {"family": "inet", "address": "10.0.3.5", "scope": "global"}]}}}}


@pytest.fixture
def server(tmp_path):
    fake = FakeIncus(tmp_path)
    fake.routes[("GET", "/1.0/instances")] = lambda q, b: sync(
        [listed("web-2", "Running", "a", 1024, cpu="2"), listed("web-1", "Stopped", "a", cpu="0-1,3"),
         listed("db-1", "Running", "b")]
        if q.get("recursion") in ("1", "2") else ["/1.0/instances/web-1"])
    yield fake
    fake.close()


def test_all_instances_in_one_recursive_call_filtered(server):
    result = run_module("incus_instance_info", {"endpoint": server.endpoint, "status": ["running"],
                                                "config": {"user.team": "a"}})
    assert not result["changed"]
    assert [i["name"] for i in result["instances"]] == ["web-2"]
    web = result["instances"][0]
    assert web["resources"] == {"cpu_seconds": 2.5, "memory_bytes": 1024, "memory_peak_bytes": 1024,
                                "disk_bytes": {"root": 4096}, "processes": 7}
    assert web["ipv4"] == "10.0.3.5" and web["snapshots"] == ["s1"] and "volatile.uuid" not in web["config"]
    assert [(r[0], r[1], r[2].get("recursion")) for r in server.api_requests()] == [("GET", "/1.0/instances", "2")]


def test_host_info_counts_and_percentages(server):
    server.routes.update({
        ("GET", "/1.0/resources"): lambda q, b: sync({"cpu": {"total": 8}, "memory": {"total": 1000, "used": 750}}),
        ("GET", "/1.0/storage-pools"): lambda q, b: sync([{"name": "default", "driver": "zfs"}]),
        ("GET", "/1.0/storage-pools/default/resources"): lambda q, b: sync({"space": {"total": 200, "used": 50}}),
    })
    result = run_module("incus_host_info", {"endpoint": server.endpoint})
    host = result["host"]
    assert host["cpu"] == {"total": 8}
    assert host["memory"] == {"total_bytes": 1000, "used_bytes": 750, "used_percent": 75.0}
    assert host["instances"] == {"total": 3, "running": 2, "stopped": 1, "frozen": 0}
    assert host["storage_pools"] == {"default": {"driver": "zfs", "total_bytes": 200, "used_bytes": 50,
                                                 "used_percent": 25.0}}
    assert host["server_name"] == "fake"
    listings = [r[2] for r in server.api_requests() if r[1] == "/1.0/instances"]
    assert [q.get("all-projects") for q in listings] == [None]  # the project's own instances


def test_copy_refuses_plain_http_target_before_connecting(server):
    result = run_module("incus_copy", {"name": "web-1", "endpoint": server.endpoint,
                                       "target_endpoint": "http://10.0.0.2:8443", "target_client_cert": "/c",
                                       "target_client_key": "/k"})
    assert result["failed"] and "https://" in result["msg"]
    assert server.requests == []
