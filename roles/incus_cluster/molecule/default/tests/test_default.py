"""The three members form one cluster with a cluster-wide pool, bridge and default profile."""
from __future__ import annotations

import json

import pytest

testinfra_hosts = ["cl-mol-m1", "cl-mol-m2", "cl-mol-m3"]
MEMBERS = ["cl-mol-m1", "cl-mol-m2", "cl-mol-m3"]


def query(host, path):
    return json.loads(host.check_output("sudo incus query %s" % path))


def test_every_member_sees_three_online_members(host):
    members = query(host, "/1.0/cluster/members?recursion=1")
    assert sorted(m["server_name"] for m in members) == MEMBERS
    assert {m["status"] for m in members} == {"Online"}


@pytest.mark.parametrize("path", ["/1.0/storage-pools/default", "/1.0/networks/incusbr0"])
def test_pool_and_bridge_are_defined_on_every_member(host, path):
    item = query(host, path)
    assert item["status"] == "Created"
    assert sorted(item["locations"]) == MEMBERS


def test_bridge_subnet_stays_off_the_sandbox_bridge(host):
    assert query(host, "/1.0/networks/incusbr0")["config"]["ipv4.address"] == "10.78.1.1/24"
    assert host.interface("incusbr0").addresses[0] == "10.78.1.1"


def test_default_profile_is_privileged_with_root_and_eth0(host):
    profile = query(host, "/1.0/profiles/default")
    assert profile["config"]["security.privileged"] == "true"
    assert profile["devices"]["root"]["pool"] == "default"
    assert profile["devices"]["eth0"]["network"] == "incusbr0"


def test_api_listens_on_the_member_address(host):
    address = host.check_output("sudo incus config get core.https_address")
    assert address.endswith(":8443") and not address.startswith("10.78.")
