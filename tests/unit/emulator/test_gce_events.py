"""containarium.fleet.gce_events against the in-process GCE emulator (real HTTP, no containers)."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import pathlib
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from emulator.conftest import instance_body

REPO = pathlib.Path(__file__).resolve().parents[3]
SPEC = importlib.util.spec_from_file_location(
    "gce_events", REPO / "extensions" / "eda" / "plugins" / "event_source" / "gce_events.py")
gce_events = importlib.util.module_from_spec(SPEC)
RELAY = REPO / "playbooks" / "files" / "fleet_notice_relay.py"
SPEC.loader.exec_module(gce_events)

SPOT = {"provisioningModel": "SPOT", "instanceTerminationAction": "STOP"}
AGGREGATED_OPS = "GET globalOperations.aggregatedList"


@pytest.fixture
def fleet(emulator_factory):
    """Two spot VMs in two zones (their insert operations exist before any watcher starts)."""
    _emu, api = emulator_factory(latency=0)
    for name, zone in (("ev-a", "us-central1-a"), ("ev-b", "europe-west1-b")):
        api.op("POST", "zones/%s/instances" % zone, instance_body(name, zone=zone, scheduling=SPOT))
    return api


def client(api):
    return gce_events.client_from_args({"project": api.project, "auth_kind": "accesstoken", "access_token": "t",
                                        "endpoint": api.base + "compute/v1/"})


def wait_status(api, zone, name, status, limit=10):
    deadline = time.monotonic() + limit
    while api.get("zones/%s/instances/%s" % (zone, name))["status"] != status:
        assert time.monotonic() < deadline, "%s never became %s" % (name, status)
        time.sleep(0.05)


def kinds(events):
    return [(e["gce_event"]["kind"], e["gce_event"]["instance"], e["gce_event"]["zone"]) for e in events]


def test_each_event_once_one_listing_per_poll_and_restart_neither_repeats_nor_skips(fleet, tmp_path):
    state = tmp_path / "watermark.json"
    watch = gce_events.OperationWatch(client(fleet), state_file=str(state))
    watch.start_from_now()
    assert watch.poll() == []  # the inserts before the start are history, not events

    fleet.admin("preempt", {"project": fleet.project, "zone": "us-central1-a", "instance": "ev-a"})
    wait_status(fleet, "us-central1-a", "ev-a", "TERMINATED")
    fleet.op("POST", "zones/europe-west1-b/instances/ev-b/stop")
    fleet.admin("stats/reset")
    events = watch.poll()
    assert kinds(events) == [("preempted", "ev-a", "us-central1-a"), ("stopped", "ev-b", "europe-west1-b")]
    assert events[0]["gce_event"]["operation_type"] == "compute.instances.preempted"
    by_route = fleet.admin("stats", method="GET")["by_route"]
    assert by_route == {AGGREGATED_OPS: 1}, by_route  # nothing per zone, nothing per instance
    assert watch.poll() == []

    # The watcher goes away; meanwhile ev-a starts. A new watcher on the same state file sees
    # exactly that, and none of what the old one already reported.
    saved = json.loads(state.read_text())
    assert saved["since"] == events[-1]["gce_event"]["time"]
    fleet.op("POST", "zones/us-central1-a/instances/ev-a/start")
    restarted = gce_events.OperationWatch(client(fleet), state_file=str(state))
    restarted.start_from_now()  # a saved watermark wins over "now"
    assert kinds(restarted.poll()) == [("started", "ev-a", "us-central1-a")]
    assert restarted.poll() == []


def test_a_restart_before_any_watched_operation_still_reports_what_came_while_it_was_down(fleet, tmp_path):
    # Only preemptions are watched and none has happened yet: the saved state holds no watermark.
    state = tmp_path / "watermark.json"
    first = gce_events.OperationWatch(client(fleet), kinds=["preempted"], state_file=str(state))
    first.start_from_now()
    assert first.poll() == [] and json.loads(state.read_text())["since"] is None
    fleet.admin("preempt", {"project": fleet.project, "zone": "us-central1-a", "instance": "ev-a"})
    wait_status(fleet, "us-central1-a", "ev-a", "TERMINATED")
    restarted = gce_events.OperationWatch(client(fleet), kinds=["preempted"], state_file=str(state))
    restarted.start_from_now()
    assert kinds(restarted.poll()) == [("preempted", "ev-a", "us-central1-a")]


def test_kinds_and_prefix_narrow_the_events(fleet):
    watch = gce_events.OperationWatch(client(fleet), kinds=["preempted"], instance_prefix="ev-b")
    watch.start_from_now()
    fleet.op("POST", "zones/us-central1-a/instances/ev-a/stop")
    fleet.admin("preempt", {"project": fleet.project, "zone": "europe-west1-b", "instance": "ev-b"})
    wait_status(fleet, "europe-west1-b", "ev-b", "TERMINATED")
    assert kinds(watch.poll()) == [("preempted", "ev-b", "europe-west1-b")]


def test_bad_arguments_fail_at_once(fleet, monkeypatch):
    monkeypatch.delenv("GCP_PROJECT", raising=False)
    with pytest.raises(ValueError, match="needs a project"):
        asyncio.run(gce_events.main(asyncio.Queue(), {}))
    with pytest.raises(ValueError, match="unknown event kinds pre-empted"):
        gce_events.OperationWatch(client(fleet), kinds=["pre-empted"])
    with pytest.raises(ValueError, match="mode must be api, metadata or tick"):
        asyncio.run(gce_events.main(asyncio.Queue(), {"mode": "webhook"}))
    with pytest.raises(ValueError, match="cannot authenticate to project p1: .*credentials"):
        asyncio.run(gce_events.main(asyncio.Queue(), {"project": "p1", "auth_kind": "accesstoken"}))
    with pytest.raises(ValueError, match="instances must be a list of <zone>/<name>"):
        asyncio.run(gce_events.main(asyncio.Queue(), {"mode": "metadata", "instances": ["ev-a"]}))
    with pytest.raises(ValueError, match="tick interval must be a positive number"):
        asyncio.run(gce_events.main(asyncio.Queue(), {"mode": "tick", "interval": 0}))


async def first_event(args, trigger, observe=lambda: None, limit=10):
    """Run the source, ``trigger`` the change, return (first event, seconds to it, ``observe()`` then)."""
    queue = asyncio.Queue()
    task = asyncio.create_task(gce_events.main(queue, args))
    try:
        await asyncio.sleep(0.5)
        triggered = time.monotonic()
        await asyncio.to_thread(trigger)
        event = await asyncio.wait_for(queue.get(), limit)
        seconds = time.monotonic() - triggered
        return event, seconds, await asyncio.to_thread(observe)
    finally:
        task.cancel()


def test_api_mode_delivers_a_preemption_within_two_seconds(fleet):
    args = {"project": fleet.project, "auth_kind": "accesstoken", "access_token": "t",
            "endpoint": fleet.base + "compute/v1/", "poll_interval": 0.5, "kinds": ["preempted"]}
    event, seconds = asyncio.run(first_event(args, lambda: fleet.admin(
        "preempt", {"project": fleet.project, "zone": "us-central1-a", "instance": "ev-a"})))[:2]
    assert kinds([event]) == [("preempted", "ev-a", "us-central1-a")]
    assert seconds < 2, seconds


def test_metadata_mode_hears_the_notice_before_the_stop(fleet):
    args = {"mode": "metadata", "metadata_url": fleet.base + "computeMetadata/v1/",
            "metadata_headers": {"X-Emulated-Instance": "us-central1-a/ev-a"}, "timeout_sec": 5}
    event, seconds, status = asyncio.run(first_event(
        args, lambda: fleet.admin("preempt", {"project": fleet.project, "zone": "us-central1-a", "instance": "ev-a",
                                              "notice_seconds": 3}),
        observe=lambda: fleet.get("zones/us-central1-a/instances/ev-a")["status"]))
    assert kinds([event]) == [("preemption_notice", "ev-a", "us-central1-a")] and seconds < 1.5
    assert status == "RUNNING"  # heard during the notice, before the stop


def test_metadata_mode_watches_several_vms_through_one_relay(fleet):
    """``instances``: one long-poll per VM; only the VM under notice is reported, while it still runs."""
    args = {"mode": "metadata", "metadata_url": fleet.base + "computeMetadata/v1/", "timeout_sec": 5,
            "instances": ["us-central1-a/ev-a", "europe-west1-b/ev-b"]}
    event, seconds, status = asyncio.run(first_event(
        args, lambda: fleet.admin("preempt", {"project": fleet.project, "zone": "europe-west1-b", "instance": "ev-b",
                                              "notice_seconds": 3}),
        observe=lambda: fleet.get("zones/europe-west1-b/instances/ev-b")["status"]))
    assert kinds([event]) == [("preemption_notice", "ev-b", "europe-west1-b")] and seconds < 1.5
    assert status == "RUNNING" and event["gce_event"]["time"]


@pytest.mark.containers
def test_notice_relay_on_a_vm_lets_another_host_hear_its_notice(container_api):
    """playbooks/files/fleet_notice_relay.py on a VM (a real container) relays its instance/preempted key and
    nothing else; gce_events on this host, given the relay as that VM's metadata_url, hears the notice
    through it while the VM still runs (the sentinel hears its spot hosts this way)."""
    _emu, api = container_api
    api.op("POST", "zones/us-central1-a/instances", instance_body("ev-relay", zone="us-central1-a", scheduling=SPOT))
    container = "gce-ev-relay"
    subprocess.run(["incus", "file", "push", str(RELAY), container + "/usr/local/lib/fleet-notice-relay.py"], check=True)
    subprocess.run(["incus", "exec", container, "--", "systemd-run", "--unit", "fleet-notice-relay", "python3",
                    "/usr/local/lib/fleet-notice-relay.py", "8089", api.bridge_base + "computeMetadata/v1/"], check=True)
    relay = "http://%s:8089/computeMetadata/v1/" % api.get("zones/us-central1-a/instances/ev-relay")[
        "networkInterfaces"][0]["networkIP"]

    def relayed(key):
        request = urllib.request.Request(relay + key, headers={"Metadata-Flavor": "Google"})
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, response.read().decode().strip()
        except urllib.error.HTTPError as error:
            return error.code, ""

    deadline = time.monotonic() + 30
    while True:
        try:
            answer = relayed("instance/preempted")
            break
        except OSError:
            assert time.monotonic() < deadline, "the relay never answered"
            time.sleep(0.5)
    assert answer == (200, "FALSE")
    assert relayed("instance/service-accounts/default/token")[0] == 404  # the VM's credentials stay on it
    args = {"mode": "metadata", "timeout_sec": 5,
            "instances": [{"instance": "us-central1-a/ev-relay", "metadata_url": relay}]}
    event, seconds, status = asyncio.run(first_event(
        args, lambda: api.admin("preempt", {"project": api.project, "zone": "us-central1-a", "instance": "ev-relay",
                                            "notice_seconds": 5}),
        observe=lambda: api.get("zones/us-central1-a/instances/ev-relay")["status"]))
    assert kinds([event]) == [("preemption_notice", "ev-relay", "us-central1-a")] and seconds < 2, seconds
    assert status == "RUNNING"
    wait_status(api, "us-central1-a", "ev-relay", "TERMINATED", limit=90)  # the preemption ends before clean-up


def test_metadata_mode_refuses_a_relay_entry_without_its_url():
    with pytest.raises(ValueError, match="instances must be a list of"):
        asyncio.run(gce_events.main(asyncio.Queue(), {"mode": "metadata", "instances": [{"instance": "z/vm"}]}))


def test_tick_mode_emits_a_tick_each_interval():
    async def two_ticks():
        queue = asyncio.Queue()
        task = asyncio.create_task(gce_events.main(queue, {"mode": "tick", "interval": 0.2}))
        try:
            started = time.monotonic()
            ticks = [await asyncio.wait_for(queue.get(), 2), await asyncio.wait_for(queue.get(), 2)]
            return ticks, time.monotonic() - started
        finally:
            task.cancel()

    ticks, seconds = asyncio.run(two_ticks())
    assert [t["gce_event"]["kind"] for t in ticks] == ["tick", "tick"] and 0.35 < seconds < 1.5
