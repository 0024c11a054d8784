"""incus_instance run as Ansible runs it, against a scripted Incus API on a unix socket."""

from __future__ import annotations

import pytest
from fake_incus import FakeIncus, async_started, operation, run_module, sync

OP = "11111111-2222-3333-4444-555555555555"
DONE = operation(OP, "done", "Success")


def instance(status="Running", config=None, devices=None):
    return {"name": "web-1", "type": "container", "status": status, "location": "none", "profiles": ["default"],
            "architecture": "x86_64", "ephemeral": False, "description": "", "stateful": False,
            "config": dict({"volatile.uuid": "u-1", "limits.cpu": "2"}, **(config or {})),
            "devices": devices or {}}


def state(status="Running", ipv4="10.77.0.9"):
    addresses = [{"family": "inet", "address": ipv4, "netmask": "24", "scope": "global"}] if ipv4 else []
    return {"status": status, "network": {"lo": {"type": "loopback", "addresses": [
        {"family": "inet", "address": "127.0.0.1", "scope": "local"}]},
        "eth0": {"type": "broadcast", "addresses": addresses}}}


@pytest.fixture
def server(tmp_path):
    fake = FakeIncus(tmp_path)
    yield fake
    fake.close()


def test_invalid_name_fails_before_any_call(server):
    result = run_module("incus_instance", {"name": "Web_1", "source": "fleet-base", "endpoint": server.endpoint})
    assert result["failed"] and "invalid instance name 'Web_1'" in result["msg"]
    assert server.requests == []


def test_check_mode_create_sends_nothing_that_changes(server):
    server.routes[("GET", "/1.0/images/aliases/fleet-base")] = lambda q, b: sync({"name": "fleet-base", "target": "ab" * 32})
    result = run_module("incus_instance", {"name": "web-1", "source": "fleet-base", "endpoint": server.endpoint,
                                           "config": {"limits.cpu": 2}}, check_mode=True)
    assert result["changed"] and result["instance"]["config"] == {"limits.cpu": "2"}
    assert result["diff"]["before"] == {"state": "absent"}
    assert {r[0] for r in server.requests} == {"GET"}


def test_failed_start_deletes_what_was_created(server):
    created = []
    server.routes.update({
        ("GET", "/1.0/images/aliases/fleet-base"): lambda q, b: sync({"name": "fleet-base", "target": "ab" * 32}),
        ("POST", "/1.0/instances"): lambda q, b: created.append(b) or async_started(OP, "Creating instance"),
        ("GET", "/1.0/operations/%s/wait" % OP): lambda q, b: sync(
            operation(OP, "Creating instance", "Failure", "Failed to start device eth0: no such bridge")),
        ("GET", "/1.0/instances/web-1"): lambda q, b: sync(instance("Stopped")) if created else (404, {
            "type": "error", "error": "Instance not found", "error_code": 404}),
        ("GET", "/1.0/instances/web-1/state"): lambda q, b: sync(state("Stopped", None)),
        ("DELETE", "/1.0/instances/web-1"): lambda q, b: sync({}),
    })
    result = run_module("incus_instance", {"name": "web-1", "source": "fleet-base", "endpoint": server.endpoint})
    assert result["failed"]
    assert "Failed to start device eth0: no such bridge" in result["msg"]
    assert result["msg"].endswith("the instance created by this task was deleted")
    assert ("DELETE", "/1.0/instances/web-1") in [(r[0], r[1]) for r in server.requests]
    assert created[0]["source"] == {"type": "image", "fingerprint": "ab" * 32} and created[0]["start"] is True


def test_reconfigure_keeps_volatile_keys_and_sends_etag(server):
    puts = []
    server.routes.update({
        ("GET", "/1.0/instances/web-1"): lambda q, b: (200, sync(dict(instance(), state=state()))[1], {"ETag": '"e-42"'}),
        ("PUT", "/1.0/instances/web-1"): lambda q, b: puts.append(b) or async_started(OP, "Updating instance"),
        ("GET", "/1.0/operations/%s/wait" % OP): lambda q, b: sync(DONE),
    })
    result = run_module("incus_instance", {"name": "web-1", "endpoint": server.endpoint,
                                           "config": {"limits.cpu": "1"}, "wait_for_ipv4": False})
    assert result["changed"]
    assert result["diff"] == {"before": {"config": {"limits.cpu": "2"}}, "after": {"config": {"limits.cpu": "1"}}}
    assert puts[0]["config"] == {"volatile.uuid": "u-1", "limits.cpu": "1"}
    put_headers = [h for h, r in zip(server.headers, server.requests) if r[0] == "PUT"][0]
    assert put_headers["If-Match"] == '"e-42"'


def test_unchanged_instance_reports_no_change_and_no_write(server):
    server.routes[("GET", "/1.0/instances/web-1")] = lambda q, b: sync(dict(instance(), state=state()))
    result = run_module("incus_instance", {"name": "web-1", "endpoint": server.endpoint, "config": {"limits.cpu": 2}})
    assert not result["changed"]
    assert result["instance"]["ipv4"] == "10.77.0.9"
    assert result["instance"]["addresses"] == {"eth0": [{"family": "inet", "address": "10.77.0.9"}]}
    assert "volatile.uuid" not in result["instance"]["config"]
    assert {r[0] for r in server.requests} == {"GET"}


def test_volatile_keys_are_refused(server):
    result = run_module("incus_instance", {"name": "web-1", "endpoint": server.endpoint,
                                           "config": {"volatile.eth0.hwaddr": "x"}})
    assert result["failed"] and "volatile.* keys" in result["msg"]
    assert server.requests == []


@pytest.mark.parametrize("target", ["m2", "@gpu"])
def test_target_member_or_group_is_sent_on_create(server, target):
    created = []
    server.routes.update({
        ("GET", "/1.0/images/aliases/fleet-base"): lambda q, b: sync({"name": "fleet-base", "target": "ab" * 32}),
        ("POST", "/1.0/instances"): lambda q, b: created.append(q) or async_started(OP, "Creating instance"),
        ("GET", "/1.0/operations/%s/wait" % OP): lambda q, b: sync(DONE),
        ("GET", "/1.0/instances/web-1"): lambda q, b: sync(dict(instance(), location="m2", state=state())) if created else (404, {
            "type": "error", "error": "Instance not found", "error_code": 404}),
        ("GET", "/1.0/instances/web-1/state"): lambda q, b: sync(state()),
    })
    result = run_module("incus_instance", {"name": "web-1", "source": "fleet-base", "endpoint": server.endpoint,
                                           "target": target})
    assert result["changed"] and result["instance"]["location"] == "m2"
    # POST /1.0/instances?target=<member> or ?target=@<group>: Incus's scheduler picks within the group.
    assert [q.get("target") for q in created] == [target]
