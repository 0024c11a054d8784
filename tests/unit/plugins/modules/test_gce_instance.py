"""gce_instance and gce_instance_info run for real against the in-process emulator (no containers)."""

from __future__ import annotations

from gce_module_runner import ZONE, instance_args as create_args, run_module

PATH = "zones/%s/instances/%s"


def test_create_check_mode_rerun_and_delete(emulator):
    name = "gi-inst-1"
    checked = run_module(emulator, "gce_instance", create_args(name), check_mode=True)
    assert checked["changed"] is True and not checked.get("failed")
    assert emulator.get(PATH % (ZONE, name)) is None, "check mode created the instance"

    made = run_module(emulator, "gce_instance", create_args(name))
    assert made["changed"] is True, made
    world = emulator.get(PATH % (ZONE, name))
    assert world["status"] == "RUNNING"
    assert world["machineType"].endswith("/machineTypes/e2-small")
    assert world["scheduling"]["provisioningModel"] == "SPOT"
    assert world["scheduling"]["instanceTerminationAction"] == "STOP"
    assert world["labels"] == {"fleet-role": "jump"}
    assert made["instance"]["spot"] is True and made["instance"]["status"] == "RUNNING"
    assert made["diff"]["before"]["state"] == "absent" and made["diff"]["after"]["state"] == "running"

    again = run_module(emulator, "gce_instance", create_args(name))
    assert again["changed"] is False, again.get("diff")

    gone = run_module(emulator, "gce_instance", dict(name=name, zone=ZONE, state="absent"))
    assert gone["changed"] is True and emulator.get(PATH % (ZONE, name)) is None
    assert run_module(emulator, "gce_instance", dict(name=name, zone=ZONE, state="absent"))["changed"] is False


def test_labels_metadata_tags_update_in_place(emulator):
    name = "gi-inst-2"
    run_module(emulator, "gce_instance", create_args(name))
    before = emulator.get(PATH % (ZONE, name))
    new_meta = {"ssh-keys": "admin:ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGi admin@test",
                "startup-script": "#!/bin/sh\necho up > /tmp/up\n"}
    args = create_args(name, labels={"fleet-role": "jump", "team": "a"}, tags=["jump", "ssh"], metadata=new_meta)
    checked = run_module(emulator, "gce_instance", args, check_mode=True)
    assert checked["changed"] is True
    assert emulator.get(PATH % (ZONE, name))["labels"] == {"fleet-role": "jump"}

    changed = run_module(emulator, "gce_instance", args)
    assert changed["changed"] is True
    assert changed["diff"]["before"]["labels"] == {"fleet-role": "jump"}
    assert changed["diff"]["after"]["labels"] == {"fleet-role": "jump", "team": "a"}
    world = emulator.get(PATH % (ZONE, name))
    assert world["labels"] == {"fleet-role": "jump", "team": "a"}
    assert sorted(world["tags"]["items"]) == ["jump", "ssh"]
    assert {i["key"]: i["value"] for i in world["metadata"]["items"]} == new_meta
    assert world["id"] == before["id"], "updated in place, not recreated"
    assert world["labelFingerprint"] != before["labelFingerprint"]
    assert run_module(emulator, "gce_instance", args)["changed"] is False


def test_machine_type_change_needs_allow_stopping(emulator):
    name = "gi-inst-3"
    run_module(emulator, "gce_instance", create_args(name))
    refused = run_module(emulator, "gce_instance", dict(name=name, zone=ZONE, machine_type="e2-standard-4"))
    assert refused.get("failed") and "allow_stopping_for_update" in refused["msg"]
    assert emulator.get(PATH % (ZONE, name))["machineType"].endswith("/e2-small")

    emulator.admin("stats/reset", {})
    resize = dict(name=name, zone=ZONE, machine_type="e2-standard-4", allow_stopping_for_update=True)
    resized = run_module(emulator, "gce_instance", resize)
    assert resized["changed"] is True, resized
    world = emulator.get(PATH % (ZONE, name))
    assert world["machineType"].endswith("/e2-standard-4") and world["status"] == "RUNNING"
    routes = emulator.admin("stats")["by_route"]
    assert routes.get("POST instances.stop") == 1 and routes.get("POST instances.setMachineType") == 1
    assert routes.get("POST instances.start") == 1
    assert run_module(emulator, "gce_instance", resize)["changed"] is False


def test_stop_and_start(emulator):
    name = "gi-inst-4"
    run_module(emulator, "gce_instance", create_args(name))
    stopped = run_module(emulator, "gce_instance", dict(name=name, zone=ZONE, state="stopped"))
    assert stopped["changed"] is True and emulator.get(PATH % (ZONE, name))["status"] == "TERMINATED"
    assert run_module(emulator, "gce_instance", dict(name=name, zone=ZONE, state="stopped"))["changed"] is False
    # A stopped instance takes a new machine type without allow_stopping_for_update.
    resized = run_module(emulator, "gce_instance", dict(name=name, zone=ZONE, state="stopped", machine_type="e2-medium"))
    assert resized["changed"] is True and emulator.get(PATH % (ZONE, name))["machineType"].endswith("/e2-medium")
    started = run_module(emulator, "gce_instance", dict(name=name, zone=ZONE, state="running"))
    assert started["changed"] is True and emulator.get(PATH % (ZONE, name))["status"] == "RUNNING"


def test_bad_input_fails_before_any_call(emulator):
    emulator.admin("stats/reset", {})
    bad = run_module(emulator, "gce_instance", create_args("Gi_Bad"))
    assert bad.get("failed") and "RFC 1035" in bad["msg"]
    assert [r for r in emulator.admin("stats")["by_route"] if "admin" not in r] == []


def test_unknown_zone_and_machine_type_list_the_choices(emulator):
    zone = run_module(emulator, "gce_instance", create_args("gi-inst-5", zone="mars-north1-a"))
    assert zone.get("failed") and "unknown zone 'mars-north1-a'" in zone["msg"] and "us-central1-a" in zone["msg"]
    machine = run_module(emulator, "gce_instance", create_args("gi-inst-5", machine_type="n9-huge-3"))
    assert machine.get("failed") and "unknown machine type 'n9-huge-3'" in machine["msg"]
    assert "e2-standard-2" in machine["msg"] and "n2-standard-32" in machine["msg"]
    assert emulator.get(PATH % (ZONE, "gi-inst-5")) is None


def test_capacity_error_of_a_done_operation_fails_and_leaves_nothing(emulator):
    emulator.admin("fail_next_operation", {"reason": "ZONE_RESOURCE_POOL_EXHAUSTED", "operation_type": "insert"})
    failed = run_module(emulator, "gce_instance", create_args("gi-inst-6"))
    assert failed.get("failed")
    assert failed["reason"] == "ZONE_RESOURCE_POOL_EXHAUSTED"
    assert "ZONE_RESOURCE_POOL_EXHAUSTED" in failed["msg"] and "nothing was left behind" in failed["msg"]
    assert emulator.get(PATH % (ZONE, "gi-inst-6")) is None


def test_faults_still_create_exactly_one_instance(emulator):
    emulator.admin("stats/reset", {})
    emulator.admin("faults", {"error_rate": 0.2, "codes": [429, 503]})
    try:
        for index in range(3):
            made = run_module(emulator, "gce_instance", create_args("gi-fault-%d" % index, labels={"batch": "fault"}))
            assert made["changed"] is True, made
    finally:
        emulator.admin("faults", {"error_rate": 0})
    listed = run_module(emulator, "gce_instance_info", dict(filter='labels.batch = "fault"'))
    names = sorted(i["name"] for i in listed["instances"])
    assert names == ["gi-fault-0", "gi-fault-1", "gi-fault-2"]
    routes = emulator.admin("stats")["by_route"]
    assert sum(n for route, n in routes.items() if "injected" in route) > 0, routes


def test_instance_info_by_name_zone_and_aggregated(emulator):
    run_module(emulator, "gce_instance", create_args("gi-info-1"))
    run_module(emulator, "gce_instance", create_args("gi-info-2", zone="europe-west1-b", labels={"fleet-role": "backend"}))
    one = run_module(emulator, "gce_instance_info", dict(name="gi-info-1", zone=ZONE))
    assert one["changed"] is False and [i["name"] for i in one["instances"]] == ["gi-info-1"]
    missing = run_module(emulator, "gce_instance_info", dict(name="gi-nope", zone=ZONE))
    assert missing["instances"] == []
    zoned = run_module(emulator, "gce_instance_info", dict(zone="europe-west1-b"))
    assert [i["name"] for i in zoned["instances"]] == ["gi-info-2"]
    everywhere = run_module(emulator, "gce_instance_info", dict(filter='labels.fleet-role = "backend"'))
    assert [(i["name"], i["zone"]) for i in everywhere["instances"]] == [("gi-info-2", "europe-west1-b")]
