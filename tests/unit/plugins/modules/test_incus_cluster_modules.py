"""incus_cluster / incus_cluster_member / incus_cluster_info run by ansible against a fake Incus
cluster on a unix socket (real HTTP; the module code and the client are not mocked)."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest

from fake_incus_cluster import FakeCluster, serve

REPO = pathlib.Path(__file__).resolve().parents[4]
ANSIBLE = pathlib.Path(sys.executable).parent / "ansible"


@pytest.fixture
def cluster(tmp_path):
    fake = FakeCluster(instances={"c1": "m1", "c2": "m2", "c3": "m3"})
    server = serve(fake, tmp_path / "incus.socket")
    yield fake, "unix:%s" % (tmp_path / "incus.socket")
    server.shutdown()
    server.server_close()


def run_module(module, args, check=False):
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
               ANSIBLE_STDOUT_CALLBACK="json", ANSIBLE_PYTHON_INTERPRETER=sys.executable)
    cmd = [str(ANSIBLE), "localhost", "-c", "local", "-i", "localhost,", "-m", "containarium.fleet." + module,
           "-a", json.dumps(args)] + (["--check"] if check else [])
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    return json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]


def test_remove_member_holding_instances_is_refused_before_any_change(cluster):
    fake, endpoint = cluster
    result = run_module("incus_cluster", {"endpoint": endpoint, "state": "absent", "member": "m3"})
    assert result["failed"]
    assert "member m3 still holds 1 instance(s) (c3): evacuate it first" in result["msg"]
    assert not any(method == "DELETE" for method, _url in fake.requests)
    assert "m3" in fake.members


def test_token_check_mode_issue_and_reuse(cluster):
    fake, endpoint = cluster
    args = {"endpoint": endpoint, "state": "token", "member": "m4"}
    checked = run_module("incus_cluster", args, check=True)
    assert checked["changed"] and checked["token"] is None and not fake.operations
    issued = run_module("incus_cluster", args)
    again = run_module("incus_cluster", args)
    assert issued["changed"] and not again["changed"]
    assert again["token"] == issued["token"] and len(fake.operations) == 1
    member = run_module("incus_cluster", dict(args, member="m1"))
    assert not member["changed"] and member["token"] is None


def test_bad_input_fails_before_any_request(cluster):
    fake, endpoint = cluster
    result = run_module("incus_cluster", {"endpoint": endpoint, "state": "joined", "server_name": "m4",
                                          "server_address": "10.0.0.4:8443", "cluster_token": "garbage"})
    assert result["failed"] and "not an Incus join token" in result["msg"]
    assert "garbage" not in json.dumps(result)
    result = run_module("incus_cluster_member", {"endpoint": endpoint, "name": "Bad_Name", "state": "evacuated"})
    assert result["failed"] and "RFC 1035" in result["msg"]
    assert fake.requests == []


def test_evacuate_check_diff_apply_rerun_restore(cluster):
    fake, endpoint = cluster
    args = {"endpoint": endpoint, "name": "m2", "state": "evacuated", "failure_domain": "zone-b"}
    checked = run_module("incus_cluster_member", args, check=True)
    assert checked["changed"] and fake.members["m2"]["status"] == "Online"
    assert fake.members["m2"]["failure_domain"] == "default"
    applied = run_module("incus_cluster_member", args)
    assert applied["changed"] and applied["member"]["status"] == "Evacuated" and applied["member"]["instances"] == []
    assert fake.members["m2"]["failure_domain"] == "zone-b" and fake.instances["c2"] != "m2"
    assert not run_module("incus_cluster_member", args)["changed"]
    restored = run_module("incus_cluster_member", {"endpoint": endpoint, "name": "m2", "state": "online"})
    assert restored["changed"] and fake.members["m2"]["status"] == "Online"


def test_info_shapes_members_like_host_info(cluster):
    fake, endpoint = cluster
    fake.members["m3"]["status"] = "Evacuated"
    result = run_module("incus_cluster_info", {"endpoint": endpoint, "resources": False})
    members = {m["name"]: m for m in result["members"]}
    assert result["cluster"] == {"enabled": True, "server_name": "m1"}
    assert members["m1"]["instances"]["total"] == 1 and members["m1"]["cpu"]["allocated"] == 2
    assert members["m3"]["healthy"] is False and members["m1"]["healthy"] is True


def test_groups_are_created_then_assigned(cluster):
    fake, endpoint = cluster
    args = {"endpoint": endpoint, "name": "m1", "groups": ["default", "spot"], "description": "spot backend"}
    result = run_module("incus_cluster_member", args)
    assert result["changed"]
    assert fake.groups == ["default", "spot"] and fake.members["m1"]["groups"] == ["default", "spot"]
    assert fake.members["m1"]["description"] == "spot backend"
    assert not run_module("incus_cluster_member", args)["changed"]
