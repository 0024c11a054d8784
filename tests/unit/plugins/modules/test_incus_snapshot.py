"""incus_snapshot against a scripted Incus API."""

from __future__ import annotations

import pytest
from fake_incus import FakeIncus, async_started, operation, run_module, sync

OP = "22222222-2222-3333-4444-555555555555"


@pytest.fixture
def server(tmp_path):
    fake = FakeIncus(tmp_path)
    fake.routes[("GET", "/1.0/instances/web-1")] = lambda q, b: sync({"name": "web-1", "status": "Running"})
    yield fake
    fake.close()


def test_bad_expiry_fails_before_any_call(server):
    result = run_module("incus_snapshot", {"instance": "web-1", "name": "s", "expiry": "soon",
                                           "endpoint": server.endpoint})
    assert result["failed"] and "invalid expiry 'soon'" in result["msg"]
    assert server.requests == []


def test_create_sends_expiry_and_waits(server):
    posted = []
    snapshot = {"name": "daily", "created_at": "2026-01-01T00:00:00Z", "expires_at": "2026-01-31T00:00:00Z",
                "stateful": False}
    server.routes.update({
        ("POST", "/1.0/instances/web-1/snapshots"): lambda q, b: posted.append(b) or async_started(OP, "Snapshotting"),
        ("GET", "/1.0/operations/%s/wait" % OP): lambda q, b: sync(operation(OP, "Snapshotting", "Success")),
        ("GET", "/1.0/instances/web-1/snapshots/daily"): lambda q, b: sync(snapshot) if posted else (
            404, {"type": "error", "error": "Snapshot not found", "error_code": 404}),
    })
    result = run_module("incus_snapshot", {"instance": "web-1", "name": "daily", "expires_at": "2026-01-31T00:00:00Z",
                                           "endpoint": server.endpoint})
    assert result["changed"] and result["snapshot"]["expires_at"] == "2026-01-31T00:00:00Z"
    assert posted == [{"name": "daily", "stateful": False, "expires_at": "2026-01-31T00:00:00Z"}]


def test_existing_snapshot_with_same_expiry_is_unchanged(server):
    server.routes[("GET", "/1.0/instances/web-1/snapshots/daily")] = lambda q, b: sync(
        {"name": "daily", "expires_at": "2026-01-31T00:00:00Z", "stateful": False})
    result = run_module("incus_snapshot", {"instance": "web-1", "name": "daily", "expires_at": "2026-01-31T00:00:00+00:00",
                                           "endpoint": server.endpoint})
    assert not result["changed"]
    assert {r[0] for r in server.requests} == {"GET"}


def test_restore_in_check_mode_sends_no_write(server):
    server.routes[("GET", "/1.0/instances/web-1/snapshots/daily")] = lambda q, b: sync(
        {"name": "daily", "expires_at": "0001-01-01T00:00:00Z", "stateful": False})
    result = run_module("incus_snapshot", {"instance": "web-1", "name": "daily", "state": "restored",
                                           "endpoint": server.endpoint}, check_mode=True)
    assert result["changed"] and result["snapshot"]["expires_at"] is None
    assert {r[0] for r in server.requests} == {"GET"}
