"""IncusClient over real HTTP: a scripted Incus API on a unix socket, and the live daemon when present."""

from __future__ import annotations

import os
import time

import pytest
from fake_incus import FakeIncus, async_started, error, operation, sync

from ansible_collections.containarium.fleet.plugins.module_utils.fleet_module import FleetError
from ansible_collections.containarium.fleet.plugins.module_utils.incus import (
    DEFAULT_SOCKET,
    IncusClient,
    IncusNotFound,
    parse_expiry,
    socket_path,
)

OP = "0b1c5e2a-1111-2222-3333-444455556666"


@pytest.fixture
def fake(tmp_path):
    servers = []

    def start(routes):
        server = FakeIncus(tmp_path, routes)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def test_missing_socket_names_path_and_remedy(tmp_path):
    path = str(tmp_path / "nope" / "unix.socket")
    with pytest.raises(FleetError) as caught:
        IncusClient("unix:" + path)
    assert path in caught.value.message
    assert "make sandbox" in caught.value.message
    assert "systemctl start incus" in caught.value.message


def test_not_found_carries_incus_error_body(fake):
    server = fake({})
    client = IncusClient(server.endpoint)
    assert client.instance("web-1") is None
    with pytest.raises(IncusNotFound) as caught:
        client.get("instances/web-1/state")
    assert "Not Found" in caught.value.message and "HTTP 404" in caught.value.message
    assert caught.value.details["api_error"]["error_code"] == 404


def test_server_error_message_and_status(fake):
    server = fake({("PUT", "/1.0/instances/web-1"): lambda q, b: error(400, "Invalid config: limits.cpu")})
    client = IncusClient(server.endpoint)
    with pytest.raises(FleetError) as caught:
        client.call("put", "instances/web-1", body={"config": {}})
    assert "Invalid config: limits.cpu" in caught.value.message
    assert caught.value.details["status"] == 400


def test_failed_operation_reports_its_err(fake):
    server = fake({
        ("POST", "/1.0/instances"): lambda q, b: async_started(OP, "Creating instance"),
        # Incus answers the long-poll of a failed operation with an error; the operation has the detail.
        ("GET", "/1.0/operations/%s/wait" % OP): lambda q, b: error(500, "Failed creating instance"),
        ("GET", "/1.0/operations/%s" % OP): lambda q, b: sync(
            operation(OP, "Creating instance", "Failure", "Failed to run: zfs create: out of space")),
    })
    client = IncusClient(server.endpoint)
    with pytest.raises(FleetError) as caught:
        client.create_instance({"name": "web-1"}, timeout=30, target="member-2")
    assert caught.value.message == "Creating instance failed: Failed to run: zfs create: out of space"
    post = [r for r in server.requests if r[0] == "POST"][0]
    assert post[2]["target"] == "member-2"


def test_wait_long_polls_until_deadline(fake):
    def still_running(query, body):
        time.sleep(min(int(query["timeout"]), 2))  # the server holds the request, as Incus does
        return error(500, "context deadline exceeded")

    server = fake({
        ("PUT", "/1.0/instances/web-1/state"): lambda q, b: async_started(OP, "Stopping instance"),
        ("GET", "/1.0/operations/%s/wait" % OP): still_running,
        ("GET", "/1.0/operations/%s" % OP): lambda q, b: sync(operation(OP, "Stopping instance")),
    })
    client = IncusClient(server.endpoint)
    started = time.monotonic()
    with pytest.raises(FleetError) as caught:
        client.wait_operation("/1.0/operations/%s" % OP, timeout=2)
    assert "Stopping instance did not finish within 2 seconds" in caught.value.message
    waits = [r for r in server.requests if r[1].endswith("/wait")]
    # One long-poll per remaining deadline, not a stream of short polls.
    assert 1 <= len(waits) <= 2 and waits[0][2]["timeout"] == "2"
    assert time.monotonic() - started < 6


def test_successful_operation_returns_it(fake):
    done = operation(OP, "Starting instance", "Success")
    server = fake({
        ("PUT", "/1.0/instances/web-1/state"): lambda q, b: async_started(OP, "Starting instance"),
        ("GET", "/1.0/operations/%s/wait" % OP): lambda q, b: sync(done),
    })
    client = IncusClient(server.endpoint, project="team-a")
    assert client.change_state("web-1", "start", timeout=30)["status"] == "Success"
    put = [r for r in server.requests if r[0] == "PUT"][0]
    assert put[3] == {"action": "start", "timeout": 30, "force": False}
    assert all(r[2].get("project") == "team-a" for r in server.requests)


def test_unknown_image_lists_aliases(fake):
    server = fake({("GET", "/1.0/images/aliases"): lambda q, b: sync(
        [{"name": "fleet-nested", "target": "bb"}, {"name": "fleet-base", "target": "aa"}])})
    client = IncusClient(server.endpoint)
    with pytest.raises(FleetError) as caught:
        client.resolve_image("debian/13")
    assert "'debian/13' not found" in caught.value.message
    assert caught.value.message.endswith("image aliases there: fleet-base, fleet-nested")


def test_untrusted_https_needs_both_cert_and_key():
    with pytest.raises(FleetError) as caught:
        IncusClient("https://127.0.0.1:1", client_cert="/tmp/c.crt")
    assert "client_cert and client_key must be given together" in caught.value.message


def test_https_connection_refused_is_clear():
    with pytest.raises(FleetError) as caught:
        IncusClient("https://127.0.0.1:1")
    assert caught.value.message.startswith("cannot connect to Incus at https://127.0.0.1:1")


@pytest.mark.parametrize("endpoint,path", [
    ("unix:/run/incus.sock", "/run/incus.sock"), ("unix:///run/x.sock", "/run/x.sock"),
    ("unix:", DEFAULT_SOCKET), ("/run/y.sock", "/run/y.sock"), ("https://h:8443", None)])
def test_socket_path(endpoint, path):
    assert socket_path(endpoint) == path


def test_socket_path_rejects_other_schemes():
    with pytest.raises(FleetError):
        socket_path("http://h:8443")


def test_parse_expiry():
    assert parse_expiry("30d", now=0) == "1970-01-31T00:00:00Z"
    assert parse_expiry("2w", now=0) == "1970-01-15T00:00:00Z"
    assert parse_expiry("90m", now=0) == "1970-01-01T01:30:00Z"
    with pytest.raises(FleetError):
        parse_expiry("soon")


@pytest.mark.skipif(not os.path.exists(DEFAULT_SOCKET), reason="no live Incus socket")
def test_live_incus_images_and_missing_instance():
    client = IncusClient()
    assert client.server_info["api_status"] == "stable"
    assert len(client.resolve_image("fleet-base")) == 64
    assert client.instance("it-unit-never-created") is None
    with pytest.raises(FleetError) as caught:
        client.resolve_image("it-unit-no-such-image")
    assert "fleet-base" in caught.value.details["aliases"]
