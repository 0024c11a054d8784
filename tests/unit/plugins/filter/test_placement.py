"""pick_host: headroom, skipped members, least-loaded choice, clear failure."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.containarium.fleet.plugins.filter.placement import parse_bytes, pick_host

GIB = 1024 ** 3


def host(name, cpus=4, allocated=0, mem_gib=16, used_gib=0, instances=0, **extra):
    facts = {"name": name, "cpu": {"total": cpus, "allocated": allocated},
             "memory": {"total_bytes": mem_gib * GIB, "used_bytes": used_gib * GIB},
             "instances": {"total": instances}}
    facts.update(extra)
    return facts


def test_least_loaded_wins():
    assert pick_host([host("a", used_gib=8), host("b", used_gib=2), host("c", used_gib=4)], memory="1GiB") == "b"


def test_cpu_load_counts_too():
    hosts = [host("a", allocated=3, used_gib=1), host("b", allocated=0, used_gib=4)]
    assert pick_host(hosts, cpu=0) == "b"


def test_keeps_twenty_percent_headroom():
    # 16 GiB host with 12 GiB used: 2 GiB more is 87.5 % > 80 %; 0.5 GiB is 78 %.
    with pytest.raises(AnsibleFilterError, match="memory would be 88% used"):
        pick_host([host("a", used_gib=12)], memory="2GiB")
    assert pick_host([host("a", used_gib=12)], memory="512MiB") == "a"
    with pytest.raises(AnsibleFilterError, match="CPU would be 100% allocated"):
        pick_host([host("a", cpus=4, allocated=3)], cpu=1)


def test_skips_evacuated_offline_and_unhealthy_members():
    hosts = [host("m1", status="Evacuated"), host("m2", status="Offline"), host("m3", healthy=False, status="Online"),
             host("m4", status="Online", used_gib=10), host("standalone", used_gib=11)]
    assert pick_host(hosts) == "m4"
    with pytest.raises(AnsibleFilterError) as failure:
        pick_host(hosts[:3])
    message = str(failure.value)
    assert "m1: status Evacuated" in message and "m2: status Offline" in message
    assert "m3: failing its health check" in message


def test_cluster_members_and_standalone_hosts_alike():
    member = {"server_name": "backend-2", "status": "Online", "healthy": True,
              "cpu": {"total": 8, "allocated": 1}, "memory": {"total_bytes": 32 * GIB, "used_bytes": 2 * GIB}}
    standalone = {"server_name": "backend-1", "cpu": {"total": 8}, "memory": {"total_bytes": 32 * GIB, "used_bytes": 8 * GIB}}
    assert pick_host([standalone, member], memory="1GiB") == "backend-2"


def test_ties_break_on_instances_then_name():
    assert pick_host([host("b", instances=3), host("a", instances=3), host("c", instances=1)]) == "c"
    assert pick_host([host("b"), host("a")]) == "a"


def test_exclude_and_bad_input():
    assert pick_host([host("a"), host("b", used_gib=5)], exclude=["a"]) == "b"
    with pytest.raises(AnsibleFilterError, match="no hosts given"):
        pick_host([])
    with pytest.raises(AnsibleFilterError, match="cannot read memory size"):
        pick_host([host("a")], memory="lots")
    with pytest.raises(AnsibleFilterError, match="needs a name"):
        pick_host([{"cpu": {"total": 1}}])
    with pytest.raises(AnsibleFilterError, match="no CPU/memory figures"):
        pick_host([{"name": "x"}])


def test_parse_bytes():
    assert parse_bytes("2GiB") == 2 * GIB
    assert parse_bytes("1GB") == 10 ** 9
    assert parse_bytes("512MiB") == 512 * 1024 ** 2
    assert parse_bytes(1000) == 1000
