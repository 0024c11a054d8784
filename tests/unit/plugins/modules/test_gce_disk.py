"""gce_disk, gce_snapshot and gce_snapshot_schedule run for real against the in-process emulator."""

from __future__ import annotations

from gce_module_runner import ZONE, run_module

REGION = "us-central1"
DISK = "zones/%s/disks/%%s" % ZONE


def test_disk_create_grow_rerun_and_delete(emulator):
    args = dict(name="gi-disk-1", zone=ZONE, size_gb=10)
    checked = run_module(emulator, "gce_disk", args, check_mode=True)
    assert checked["changed"] is True and emulator.get(DISK % "gi-disk-1") is None
    made = run_module(emulator, "gce_disk", args)
    assert made["changed"] is True and made["disk"]["size_gb"] == 10
    assert emulator.get(DISK % "gi-disk-1")["sizeGb"] == "10"
    assert run_module(emulator, "gce_disk", args)["changed"] is False

    grown = run_module(emulator, "gce_disk", dict(args, size_gb=20))
    assert grown["changed"] is True and grown["diff"] == {"before": {"size_gb": 10}, "after": {"size_gb": 20}}
    assert emulator.get(DISK % "gi-disk-1")["sizeGb"] == "20"
    shrink = run_module(emulator, "gce_disk", dict(args, size_gb=5))
    assert shrink.get("failed") and "cannot shrink" in shrink["msg"]

    gone = run_module(emulator, "gce_disk", dict(name="gi-disk-1", zone=ZONE, state="absent"))
    assert gone["changed"] is True and emulator.get(DISK % "gi-disk-1") is None
    assert run_module(emulator, "gce_disk", dict(name="gi-disk-1", zone=ZONE, state="absent"))["changed"] is False


def test_disk_needs_a_size_or_source_to_create(emulator):
    failed = run_module(emulator, "gce_disk", dict(name="gi-disk-2", zone=ZONE))
    assert failed.get("failed") and "size_gb" in failed["msg"]


def test_schedule_attached_to_a_disk_and_snapshot(emulator):
    schedule = dict(name="gi-daily", region=REGION, retention_days=30, start_time="04:00")
    checked = run_module(emulator, "gce_snapshot_schedule", schedule, check_mode=True)
    assert checked["changed"] is True and emulator.get("regions/%s/resourcePolicies/gi-daily" % REGION) is None
    made = run_module(emulator, "gce_snapshot_schedule", schedule)
    assert made["changed"] is True, made
    policy = emulator.get("regions/%s/resourcePolicies/gi-daily" % REGION)
    assert policy["snapshotSchedulePolicy"]["retentionPolicy"]["maxRetentionDays"] == 30
    daily = policy["snapshotSchedulePolicy"]["schedule"]["dailySchedule"]
    assert (daily["daysInCycle"], daily["startTime"]) == (1, "04:00")
    assert run_module(emulator, "gce_snapshot_schedule", schedule)["changed"] is False
    changed = run_module(emulator, "gce_snapshot_schedule", dict(schedule, retention_days=7))
    assert changed.get("failed") and "retention_days" in changed["msg"]

    disk = dict(name="gi-disk-3", zone=ZONE, size_gb=10, resource_policies=["gi-daily"])
    assert run_module(emulator, "gce_disk", disk)["changed"] is True
    assert [p.rsplit("/", 1)[1] for p in emulator.get(DISK % "gi-disk-3")["resourcePolicies"]] == ["gi-daily"]
    assert run_module(emulator, "gce_disk", disk)["changed"] is False
    detached = run_module(emulator, "gce_disk", dict(disk, resource_policies=[]))
    assert detached["changed"] is True and not emulator.get(DISK % "gi-disk-3").get("resourcePolicies")
    assert run_module(emulator, "gce_disk", disk)["changed"] is True
    assert emulator.get(DISK % "gi-disk-3")["resourcePolicies"]

    snap = dict(name="gi-snap-1", source_disk="gi-disk-3", zone=ZONE)
    checked = run_module(emulator, "gce_snapshot", snap, check_mode=True)
    assert checked["changed"] is True and emulator.get("global/snapshots/gi-snap-1") is None
    taken = run_module(emulator, "gce_snapshot", snap)
    assert taken["changed"] is True and taken["snapshot"]["source_disk"] == "gi-disk-3"
    assert emulator.get("global/snapshots/gi-snap-1")["sourceDisk"].endswith("/disks/gi-disk-3")
    assert run_module(emulator, "gce_snapshot", snap)["changed"] is False
    assert run_module(emulator, "gce_snapshot", dict(name="gi-snap-1", state="absent"))["changed"] is True
    assert emulator.get("global/snapshots/gi-snap-1") is None

    # A policy in use cannot go; once detached it can.
    run_module(emulator, "gce_disk", dict(disk, resource_policies=[]))
    gone = run_module(emulator, "gce_snapshot_schedule", dict(name="gi-daily", region=REGION, state="absent"))
    assert gone["changed"] is True and emulator.get("regions/%s/resourcePolicies/gi-daily" % REGION) is None


def test_schedule_input_is_checked(emulator):
    bad = run_module(emulator, "gce_snapshot_schedule", dict(name="gi-daily", region=REGION, start_time="4am"))
    assert bad.get("failed") and "HH:00" in bad["msg"]
