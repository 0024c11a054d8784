"""containarium.fleet.incus inventory (run by ansible-inventory) against fake Incus servers on unix sockets."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest

from fake_incus_cluster import FakeCluster, serve

REPO = pathlib.Path(__file__).resolve().parents[4]
ANSIBLE_INVENTORY = pathlib.Path(sys.executable).parent / "ansible-inventory"


@pytest.fixture
def sources(tmp_path):
    cluster = FakeCluster(instances={"c1": "m1", "c2": "m2", "c3": "m2"})
    single = FakeCluster(members=(), instances={"web-1": "none"})
    servers = [serve(cluster, tmp_path / "cluster.socket"), serve(single, tmp_path / "single.socket")]
    yield tmp_path, cluster, single
    for server in servers:
        server.shutdown()
        server.server_close()


def inventory(config, text):
    config.write_text(text)
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_INVENTORY_UNPARSED_FAILED="True")
    proc = subprocess.run([str(ANSIBLE_INVENTORY), "-i", str(config), "--list"], cwd=REPO, env=env,
                          capture_output=True, text=True, check=False)
    return proc.returncode, (json.loads(proc.stdout) if proc.returncode == 0 else proc.stderr)


def fleet(tmp_path, extra=""):
    return inventory(tmp_path / "fleet.incus.yml", (
        "plugin: containarium.fleet.incus\n"
        "ssh_common_args: -F /tmp/ssh_config\n"
        "sources:\n"
        "  - {name: backend-1, endpoint: 'unix:%s/single.socket', ssh_host: 10.0.3.10, jump: 'jump@34.1.2.3', ssh_user: jump}\n"
        "  - name: eu\n    endpoint: 'unix:%s/cluster.socket'\n    jump: 'jump@34.1.2.3'\n    ssh_user: jump\n"
        "    members: {m1: 10.0.5.11, m2: 10.0.5.12, m3: 10.0.5.13}\n" % (tmp_path, tmp_path)) + extra)


def plain(value):
    """ansible-inventory --list marks template-unsafe strings as {"__ansible_unsafe": "..."}."""
    return value.get("__ansible_unsafe") if isinstance(value, dict) else value


def hosts(listing, group):
    return sorted(listing.get(group, {}).get("hosts", []))


def test_hosts_groups_and_jump_chain(sources):
    tmp_path, cluster, single = sources
    rc, listing = fleet(tmp_path, "keyed_groups:\n  - {key: incus_user.team, prefix: team}\n")
    assert rc == 0, listing
    assert sorted(listing["_meta"]["hostvars"]) == ["c1", "c2", "c3", "web-1"]
    assert hosts(listing, "incus_host_m2") == ["c2", "c3"]
    assert hosts(listing, "incus_host_eu") == ["c1", "c2", "c3"]
    assert hosts(listing, "incus_host_backend_1") == ["web-1"]
    assert len(hosts(listing, "incus_status_running")) == 4
    assert len(hosts(listing, "incus_user_team_blue")) == 4 and len(hosts(listing, "team_blue")) == 4
    c2 = {k: plain(v) for k, v in listing["_meta"]["hostvars"]["c2"].items()}
    assert c2["ansible_ssh_common_args"] == ("-o ProxyJump=jump@34.1.2.3,jump@10.0.5.12 -o HostKeyAlias=10.0.5.12/%s"
                                             " -F /tmp/ssh_config" % c2["ansible_host"])
    assert c2["incus_location"] == "m2" and c2["incus_source"] == "eu" and c2["ansible_host"].startswith("10.1.0.")
    web = {k: plain(v) for k, v in listing["_meta"]["hostvars"]["web-1"].items()}
    assert web["ansible_ssh_common_args"].startswith("-o ProxyJump=jump@34.1.2.3,jump@10.0.3.10")
    assert web["incus_location"] == "backend-1"
    # one request per host or cluster, nothing per instance
    assert len(cluster.requests) == 1 and len(single.requests) == 1


def test_cache_is_read_before_any_request(sources):
    tmp_path, cluster, single = sources
    cache = "cache: true\ncache_plugin: ansible.builtin.jsonfile\ncache_connection: %s/cache\n" % tmp_path
    assert fleet(tmp_path, cache)[0] == 0
    assert len(cluster.requests) == 1
    rc, again = fleet(tmp_path, cache)
    assert rc == 0 and len(cluster.requests) == 1 and len(single.requests) == 1
    assert sorted(again["_meta"]["hostvars"]) == ["c1", "c2", "c3", "web-1"]


def test_unreachable_source_fails_loudly(tmp_path):
    rc, error = inventory(tmp_path / "fleet.incus.yml", "plugin: containarium.fleet.incus\nsources:\n"
                                                        "  - {name: gone, endpoint: 'unix:%s/none.socket'}\n" % tmp_path)
    assert rc != 0 and "incus inventory source gone" in error and "cannot reach Incus" in error
