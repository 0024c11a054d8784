"""Disks, snapshots, snapshot schedules, firewalls, routes, target pools, health checks, forwarding rules."""
from __future__ import annotations

from emulator.conftest import instance_body

ZONE = "europe-west4-a"
REGION = "europe-west4"


def test_disks_snapshots_and_snapshot_schedules(api):
    policy = {"name": "emu-daily", "snapshotSchedulePolicy": {
        "schedule": {"dailySchedule": {"daysInCycle": 1, "startTime": "04:00"}},
        "retentionPolicy": {"maxRetentionDays": 7, "onSourceDiskDelete": "KEEP_AUTO_SNAPSHOTS"}}}
    assert "error" not in api.op("POST", f"regions/{REGION}/resourcePolicies", policy)
    got = api.get(f"regions/{REGION}/resourcePolicies/emu-daily")
    assert got["snapshotSchedulePolicy"]["retentionPolicy"]["maxRetentionDays"] == 7 and got["status"] == "READY"
    bad = dict(policy, name="emu-bad")
    bad["snapshotSchedulePolicy"] = {"schedule": {"dailySchedule": {"daysInCycle": 1, "startTime": "04:30"}}}
    api.call("POST", f"regions/{REGION}/resourcePolicies", bad, expect=400)

    api.op("POST", f"zones/{ZONE}/disks", {"name": "emu-data", "sizeGb": "50"})
    disk = api.get(f"zones/{ZONE}/disks/emu-data")
    assert disk["status"] == "READY" and disk["sizeGb"] == "50"
    api.op("POST", f"zones/{ZONE}/disks/emu-data/addResourcePolicies", {"resourcePolicies": [got["selfLink"]]})
    assert api.get(f"zones/{ZONE}/disks/emu-data")["resourcePolicies"] == [got["selfLink"]]
    api.op("POST", f"zones/{ZONE}/disks/emu-data/removeResourcePolicies", {"resourcePolicies": [got["selfLink"]]})
    assert "resourcePolicies" not in api.get(f"zones/{ZONE}/disks/emu-data")

    api.call("POST", f"zones/{ZONE}/disks/emu-data/resize", {"sizeGb": "10"}, expect=400)
    api.op("POST", f"zones/{ZONE}/disks/emu-data/resize", {"sizeGb": "100"})
    assert api.get(f"zones/{ZONE}/disks/emu-data")["sizeGb"] == "100"

    api.op("POST", f"zones/{ZONE}/disks/emu-data/createSnapshot", {"name": "emu-snap-1"})
    snap = api.get("global/snapshots/emu-snap-1")
    assert snap["status"] == "READY" and snap["sourceDisk"].endswith("/disks/emu-data")
    op = api.op("POST", "global/snapshots", {"name": "emu-snap-2", "sourceDisk": disk["selfLink"]})
    assert "zone" not in op and op["targetLink"].endswith("/global/snapshots/emu-snap-2")
    assert [s["name"] for s in api.get("global/snapshots")["items"]] == ["emu-snap-1", "emu-snap-2"]
    agg = api.get("aggregated/disks")
    assert [d["name"] for d in agg["items"][f"zones/{ZONE}"]["disks"]] == ["emu-data"]

    # attach / detach and delete refused while attached
    api.op("POST", f"zones/{ZONE}/instances", instance_body("emu-vm", zone=ZONE))
    api.op("POST", f"zones/{ZONE}/instances/emu-vm/attachDisk",
           {"source": f"zones/{ZONE}/disks/emu-data", "deviceName": "data"})
    inst = api.get(f"zones/{ZONE}/instances/emu-vm")
    assert [d["deviceName"] for d in inst["disks"]] == ["persistent-disk-0", "data"]
    busy = api.call("DELETE", f"zones/{ZONE}/disks/emu-data", expect=400).body
    assert busy["error"]["errors"][0]["reason"] == "resourceInUseByAnotherResource"
    api.op("DELETE", f"zones/{ZONE}/instances/emu-vm")
    assert "users" not in api.get(f"zones/{ZONE}/disks/emu-data")  # survives its instance
    api.op("DELETE", f"zones/{ZONE}/disks/emu-data")
    api.op("DELETE", "global/snapshots/emu-snap-1")
    api.op("DELETE", "global/snapshots/emu-snap-2")
    api.call("GET", "global/snapshots/emu-snap-1", expect=404)


def test_firewalls_routes_health_checks_target_pools_forwarding_rules(api):
    api.op("POST", f"zones/{ZONE}/instances", instance_body("emu-lb1", zone=ZONE))
    api.op("POST", f"zones/{ZONE}/instances", instance_body("emu-lb2", zone=ZONE))
    vm1 = api.get(f"zones/{ZONE}/instances/emu-lb1")

    api.op("POST", "global/firewalls", {"name": "emu-ssh", "network": "global/networks/default",
                                        "allowed": [{"IPProtocol": "tcp", "ports": ["22"]}],
                                        "sourceRanges": ["0.0.0.0/0"], "targetTags": ["jump"]})
    assert api.get("global/firewalls/emu-ssh")["direction"] == "INGRESS"
    api.call("POST", "global/firewalls", {"name": "emu-none"}, expect=400)

    # priority as a string: accepted as GCE's JSON parser does, stored as the integer it is.
    loose = api.raw("POST", f"{api.base}compute/v1/projects/{api.project}/global/routes",
                    {"name": "emu-r1", "destRange": "10.200.0.0/24", "priority": "100",
                     "nextHopInstance": vm1["selfLink"], "network": "global/networks/default"},
                    {"Authorization": "Bearer t"})
    assert loose.status == 200, loose
    api.wait(loose.body)
    route = api.get("global/routes/emu-r1")
    assert route["nextHopInstance"] == vm1["selfLink"] and route["priority"] == 100
    api.call("POST", "global/routes", {"name": "emu-r2", "destRange": "10.201.0.0/24",
                                       "nextHopInstance": f"zones/{ZONE}/instances/emu-missing"}, expect=404)

    api.op("POST", "global/httpHealthChecks", {"name": "emu-hc", "port": 8080, "requestPath": "/healthz"})
    hc = api.get("global/httpHealthChecks/emu-hc")
    api.op("POST", f"regions/{REGION}/targetPools", {"name": "emu-backup", "instances": []})
    api.op("POST", f"regions/{REGION}/targetPools", {
        "name": "emu-pool", "healthChecks": [hc["selfLink"]], "instances": [vm1["selfLink"]],
        "backupPool": f"regions/{REGION}/targetPools/emu-backup", "failoverRatio": 0.5})
    pool = api.get(f"regions/{REGION}/targetPools/emu-pool")
    assert pool["failoverRatio"] == 0.5 and pool["backupPool"].endswith("/targetPools/emu-backup")
    api.op("POST", f"regions/{REGION}/targetPools/emu-pool/addInstance",
           {"instances": [{"instance": f"zones/{ZONE}/instances/emu-lb2"}]})
    assert len(api.get(f"regions/{REGION}/targetPools/emu-pool")["instances"]) == 2
    health = api.call("POST", f"regions/{REGION}/targetPools/emu-pool/getHealth",
                      {"instance": vm1["selfLink"]}).body
    assert health["healthStatus"][0]["healthState"] == "HEALTHY"
    api.op("POST", f"zones/{ZONE}/instances/emu-lb1/stop")
    health = api.call("POST", f"regions/{REGION}/targetPools/emu-pool/getHealth",
                      {"instance": vm1["selfLink"]}).body
    assert health["healthStatus"][0]["healthState"] == "UNHEALTHY"
    api.op("POST", f"regions/{REGION}/targetPools/emu-pool/removeInstance",
           {"instances": [{"instance": vm1["selfLink"]}]})
    assert len(api.get(f"regions/{REGION}/targetPools/emu-pool")["instances"]) == 1

    op = api.op("POST", f"regions/{REGION}/forwardingRules", {
        "name": "emu-fr", "IPProtocol": "TCP", "portRange": "80-80", "target": pool["selfLink"]})
    assert op["region"].endswith(f"/regions/{REGION}")
    assert api.get(f"regions/{REGION}/forwardingRules/emu-fr")["target"] == pool["selfLink"]
    assert [o["name"] for o in api.get(f"regions/{REGION}/operations")["items"]]
    assert [o["name"] for o in api.get("global/operations")["items"]]
    for path in (f"regions/{REGION}/forwardingRules/emu-fr", f"regions/{REGION}/targetPools/emu-pool",
                 "global/httpHealthChecks/emu-hc", "global/routes/emu-r1", "global/firewalls/emu-ssh"):
        assert "error" not in api.op("DELETE", path)
        api.call("GET", path, expect=404)


def test_labels_on_disks_and_snapshots_patch_firewall_pool_health_checks_and_backup(api):
    api.op("POST", f"zones/{ZONE}/disks", {"name": "emu-lbl", "sizeGb": "10"})
    disk = api.get(f"zones/{ZONE}/disks/emu-lbl")
    api.op("POST", f"zones/{ZONE}/disks/emu-lbl/setLabels",
           {"labels": {"tier": "data"}, "labelFingerprint": disk["labelFingerprint"]})
    api.call("POST", f"zones/{ZONE}/disks/emu-lbl/setLabels",
             {"labels": {}, "labelFingerprint": disk["labelFingerprint"]}, expect=412)
    assert api.get(f"zones/{ZONE}/disks/emu-lbl")["labels"] == {"tier": "data"}
    api.op("POST", f"zones/{ZONE}/disks/emu-lbl/createSnapshot", {"name": "emu-lbl-s"})
    snap = api.get("global/snapshots/emu-lbl-s")
    api.op("POST", "global/snapshots/emu-lbl-s/setLabels",
           {"labels": {"keep": "yes"}, "labelFingerprint": snap["labelFingerprint"]})
    assert api.get("global/snapshots/emu-lbl-s")["labels"] == {"keep": "yes"}

    api.op("POST", "global/firewalls", {"name": "emu-fw", "allowed": [{"IPProtocol": "tcp", "ports": ["22"]}]})
    api.op("PATCH", "global/firewalls/emu-fw", {"allowed": [{"IPProtocol": "tcp", "ports": ["22", "80"]}]})
    fw = api.get("global/firewalls/emu-fw")
    assert fw["allowed"] == [{"IPProtocol": "tcp", "ports": ["22", "80"]}] and fw["direction"] == "INGRESS"

    api.op("POST", "global/httpHealthChecks", {"name": "emu-hc2"})
    api.op("POST", f"regions/{REGION}/targetPools", {"name": "emu-b"})
    api.op("POST", f"regions/{REGION}/targetPools", {"name": "emu-p"})
    hc = f"projects/{api.project}/global/httpHealthChecks/emu-hc2"
    api.op("POST", f"regions/{REGION}/targetPools/emu-p/addHealthCheck", {"healthChecks": [{"healthCheck": hc}]})
    assert api.get(f"regions/{REGION}/targetPools/emu-p")["healthChecks"][0].endswith("/httpHealthChecks/emu-hc2")
    api.op("POST", f"regions/{REGION}/targetPools/emu-p/removeHealthCheck", {"healthChecks": [{"healthCheck": hc}]})
    assert not api.get(f"regions/{REGION}/targetPools/emu-p").get("healthChecks")
    api.op("POST", f"regions/{REGION}/targetPools/emu-p/setBackup",
           {"target": f"regions/{REGION}/targetPools/emu-b"}, failoverRatio="0.25")
    pool = api.get(f"regions/{REGION}/targetPools/emu-p")
    assert pool["backupPool"].endswith("/targetPools/emu-b") and pool["failoverRatio"] == 0.25


def test_snapshot_schedule_runs_create_and_retention_prunes(api):
    api.op("POST", f"regions/{REGION}/resourcePolicies", {"name": "emu-keep2", "snapshotSchedulePolicy": {
        "schedule": {"dailySchedule": {"daysInCycle": 1, "startTime": "03:00"}},
        "retentionPolicy": {"maxRetentionDays": 2}}})
    policy = api.get(f"regions/{REGION}/resourcePolicies/emu-keep2")
    api.op("POST", f"zones/{ZONE}/disks", {"name": "emu-sched", "sizeGb": "10",
                                           "resourcePolicies": [policy["selfLink"]]})
    api.op("POST", f"zones/{ZONE}/disks", {"name": "emu-unsched", "sizeGb": "10"})
    first = api.admin("run_snapshot_schedules", {"project": api.project})
    assert len(first["created"]) == 1 and first["deleted"] == []
    snap = api.get(f"global/snapshots/{first['created'][0]}")
    assert snap["autoCreated"] is True and snap["sourceSnapshotSchedulePolicy"] == policy["selfLink"]
    assert snap["sourceDisk"].endswith("/disks/emu-sched")
    assert api.admin("run_snapshot_schedules", {"project": api.project, "advance_days": 1.5})["deleted"] == []
    third = api.admin("run_snapshot_schedules", {"project": api.project, "advance_days": 2.5})
    assert third["deleted"] == first["created"]  # 2.5 days old > maxRetentionDays 2; the day-1.5 one stays
    names = [s["name"] for s in api.get("global/snapshots")["items"]]
    assert len(names) == 2 and first["created"][0] not in names
