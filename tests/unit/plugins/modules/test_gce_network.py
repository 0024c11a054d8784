"""gce_firewall, gce_route and gce_target_pool against the in-process emulator (and, for the update verbs
the emulator does not serve yet, against the scripted API to pin the exact calls)."""

from __future__ import annotations

import pytest
from gce_module_runner import PROJECT, ZONE, instance_args as create_args, run_module
from gce_scripted_api import Reply, ScriptedApi

REGION = "us-central1"


def test_firewall_create_rerun_delete(emulator):
    args = dict(name="gi-fw-ssh", allowed=[{"protocol": "tcp", "ports": ["22"]}], source_tags=["jump"],
                target_tags=["backend"])
    checked = run_module(emulator, "gce_firewall", args, check_mode=True)
    assert checked["changed"] is True and emulator.get("global/firewalls/gi-fw-ssh") is None
    made = run_module(emulator, "gce_firewall", args)
    assert made["changed"] is True, made
    world = emulator.get("global/firewalls/gi-fw-ssh")
    assert world["allowed"] == [{"IPProtocol": "tcp", "ports": ["22"]}]
    assert world["sourceTags"] == ["jump"] and world["targetTags"] == ["backend"]
    assert world["network"].endswith("/global/networks/default") and world["direction"] == "INGRESS"
    assert run_module(emulator, "gce_firewall", args)["changed"] is False
    assert run_module(emulator, "gce_firewall", dict(name="gi-fw-ssh", state="absent"))["changed"] is True
    assert emulator.get("global/firewalls/gi-fw-ssh") is None


def test_route_to_an_instance(emulator):
    run_module(emulator, "gce_instance", create_args("gi-backend-1"))
    args = dict(name="gi-containers-b1", dest_range="10.0.4.0/24", next_hop_instance="gi-backend-1",
                next_hop_instance_zone=ZONE, tags=["jump"])
    checked = run_module(emulator, "gce_route", args, check_mode=True)
    assert checked["changed"] is True and emulator.get("global/routes/gi-containers-b1") is None
    made = run_module(emulator, "gce_route", args)
    assert made["changed"] is True, made
    world = emulator.get("global/routes/gi-containers-b1")
    assert world["destRange"] == "10.0.4.0/24" and world["nextHopInstance"].endswith("/instances/gi-backend-1")
    assert run_module(emulator, "gce_route", args)["changed"] is False

    moved = dict(args, dest_range="10.0.5.0/24")
    refused = run_module(emulator, "gce_route", moved)
    assert refused.get("failed") and "cannot be changed in place" in refused["msg"]
    replaced = run_module(emulator, "gce_route", dict(moved, replace=True))
    assert replaced["changed"] is True and emulator.get("global/routes/gi-containers-b1")["destRange"] == "10.0.5.0/24"
    assert run_module(emulator, "gce_route", dict(name="gi-containers-b1", state="absent"))["changed"] is True
    assert emulator.get("global/routes/gi-containers-b1") is None


def test_target_pool_members(emulator):
    for name in ("gi-jump-1", "gi-jump-2"):
        run_module(emulator, "gce_instance", create_args(name))
    args = dict(name="gi-pool", region=REGION, instances=["%s/gi-jump-1" % ZONE], session_affinity="CLIENT_IP")
    checked = run_module(emulator, "gce_target_pool", args, check_mode=True)
    assert checked["changed"] is True and emulator.get("regions/%s/targetPools/gi-pool" % REGION) is None
    made = run_module(emulator, "gce_target_pool", args)
    assert made["changed"] is True, made
    assert run_module(emulator, "gce_target_pool", args)["changed"] is False

    both = dict(args, instances=["%s/gi-jump-1" % ZONE, "%s/gi-jump-2" % ZONE])
    grown = run_module(emulator, "gce_target_pool", both)
    assert grown["changed"] is True
    members = emulator.get("regions/%s/targetPools/gi-pool" % REGION)["instances"]
    assert sorted(m.rsplit("/", 1)[1] for m in members) == ["gi-jump-1", "gi-jump-2"]
    shrunk = run_module(emulator, "gce_target_pool", dict(args, instances=["%s/gi-jump-2" % ZONE]))
    assert shrunk["changed"] is True
    assert [m.rsplit("/", 1)[1] for m in emulator.get("regions/%s/targetPools/gi-pool" % REGION)["instances"]] == ["gi-jump-2"]
    bad = run_module(emulator, "gce_target_pool", dict(args, instances=["europe-west1-b/gi-jump-1"]))
    assert bad.get("failed") and "region us-central1" in bad["msg"]
    assert run_module(emulator, "gce_target_pool", dict(name="gi-pool", region=REGION, state="absent"))["changed"] is True


class _Endpoint:
    """Lets run_module talk to the scripted API."""

    def __init__(self, api):
        self.endpoint = api.endpoint


@pytest.fixture
def api():
    server = ScriptedApi()
    yield server
    server.close()


def _done(name):
    return Reply(200, {"kind": "compute#operation", "name": name, "status": "DONE",
                       "region": "projects/%s/regions/%s" % (PROJECT, REGION)})


def test_target_pool_health_check_and_backup_calls(api):
    pool = "projects/%s/regions/%s/targetPools/gi-pool" % (PROJECT, REGION)
    api.add("GET", pool, Reply(200, {"name": "gi-pool", "healthChecks": ["x/global/httpHealthChecks/old-check"],
                                     "instances": [], "sessionAffinity": "NONE"}))
    for verb in ("removeHealthCheck", "addHealthCheck", "setBackup"):
        api.add("POST", pool + "/" + verb, _done(verb))
    result = run_module(_Endpoint(api), "gce_target_pool",
                        dict(name="gi-pool", region=REGION, health_check="ssh-check", backup_pool="gi-spare",
                             failover_ratio=0.5))
    assert result["changed"] is True, result
    removed = api.calls("POST", pool + "/removeHealthCheck")[0]["body"]
    added = api.calls("POST", pool + "/addHealthCheck")[0]["body"]
    backup = api.calls("POST", pool + "/setBackup")[0]
    assert removed == {"healthChecks": [{"healthCheck": "projects/%s/global/httpHealthChecks/old-check" % PROJECT}]}
    assert added == {"healthChecks": [{"healthCheck": "projects/%s/global/httpHealthChecks/ssh-check" % PROJECT}]}
    assert backup["body"] == {"target": "projects/%s/regions/%s/targetPools/gi-spare" % (PROJECT, REGION)}
    assert backup["query"]["failoverRatio"] == "0.5" and backup["query"]["requestId"]


def test_firewall_update_patches_only_what_differs(api):
    rule = "projects/%s/global/firewalls/gi-fw" % PROJECT
    api.add("GET", rule, Reply(200, {"name": "gi-fw", "network": "x/global/networks/default", "direction": "INGRESS",
                                     "priority": 1000, "allowed": [{"IPProtocol": "tcp", "ports": ["22"]}],
                                     "sourceRanges": ["0.0.0.0/0"], "disabled": False}))
    api.add("PATCH", rule, _done("patch"))
    result = run_module(_Endpoint(api), "gce_firewall",
                        dict(name="gi-fw", allowed=[{"protocol": "tcp", "ports": ["22", "443"]}],
                             source_ranges=["0.0.0.0/0"]))
    assert result["changed"] is True, result
    assert api.calls("PATCH", rule)[0]["body"] == {"allowed": [{"IPProtocol": "tcp", "ports": ["22", "443"]}]}
    assert result["diff"]["after"] == {"allowed": [{"protocol": "tcp", "ports": ["22", "443"]}]}
