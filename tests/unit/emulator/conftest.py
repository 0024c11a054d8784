"""Fixtures: an in-process GCE emulator on an ephemeral loopback port, and a schema-checking client."""
from __future__ import annotations

import json
import pathlib
import sys
import threading
import urllib.error
import urllib.request

import pytest

SANDBOX = pathlib.Path(__file__).resolve().parents[2] / "sandbox"
if str(SANDBOX) not in sys.path:
    sys.path.insert(0, str(SANDBOX))

from gce_emulator.server import Emulator, make_server  # noqa: E402

from emulator import discovery_schema  # noqa: E402


class Reply:
    def __init__(self, status: int, body, headers):
        self.status, self.body, self.headers = status, body, headers

    def __repr__(self) -> str:
        return f"Reply({self.status}, {self.body!r})"


class Api:
    """Real HTTP to the emulator. Every Compute request and response body is checked against the
    discovery document (errors against the GCE error shape)."""

    def __init__(self, base: str, project: str = "emu-proj"):
        self.base, self.project = base, project

    def raw(self, method: str, url: str, body=None, headers=None, timeout: float = 150) -> Reply:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                text = resp.read().decode()
                status, hdrs = resp.status, resp.headers
        except urllib.error.HTTPError as err:
            text, status, hdrs = err.read().decode(), err.code, err.headers
        try:
            parsed = json.loads(text) if text else None
        except ValueError:
            parsed = text
        return Reply(status, parsed, hdrs)

    def call(self, method: str, path: str, body=None, expect: int | None = 200, **query) -> Reply:
        """path is relative to projects/<project>/ unless it starts with 'projects/'."""
        if not path.startswith("projects/"):
            path = f"projects/{self.project}/{path}"
        if body is not None:
            discovery_schema.validate_request(method, path, body)
        qs = "&".join(f"{k}={urllib.request.quote(str(v))}" for k, v in query.items())
        reply = self.raw(method, f"{self.base}compute/v1/{path}" + (f"?{qs}" if qs else ""), body,
                         {"Authorization": "Bearer test-token"})
        if reply.status == 200:
            discovery_schema.validate_response(method, path, reply.body)
        else:
            check_error_shape(reply.body, reply.status)
        if expect is not None:
            assert reply.status == expect, reply
        return reply

    def get(self, path: str, **query) -> dict:
        return self.call("GET", path, **query).body

    def op(self, method: str, path: str, body=None, **query) -> dict:
        """Start an operation and wait for it through operations.wait; returns the DONE operation."""
        op = self.call(method, path, body, **query).body
        return self.wait(op)

    def wait(self, op: dict, timeout: float = 60) -> dict:
        scope = op.get("zone") or op.get("region")
        scope_path = "/".join(scope.split("/")[-2:]) if scope else "global"
        while op["status"] != "DONE":
            op = self.call("POST", f"{scope_path}/operations/{op['name']}/wait").body
        return op

    def admin(self, action: str, body=None, method: str = "POST") -> dict:
        reply = self.raw(method, f"{self.base}_admin/{action}", body if method == "POST" else None)
        assert reply.status == 200, reply
        return reply.body


def check_error_shape(body, status: int) -> None:
    assert isinstance(body, dict) and set(body) == {"error"}, body
    err = body["error"]
    assert err["code"] == status and isinstance(err["message"], str) and err["message"]
    assert set(err) <= {"code", "message", "errors", "status"}, err
    for item in err["errors"]:
        assert set(item) <= {"message", "domain", "reason", "location", "locationType"}, item
        assert item["reason"] and item["message"]


@pytest.fixture
def emulator_factory(tmp_path):
    started = []

    def start(containers: bool = False, latency: float = 0.02, state_dir=None, wait_limit: float = 120,
              bridge: str | None = None):
        emu = Emulator(str(state_dir or tmp_path / "state"), containers=containers, latency=latency,
                       wait_limit=wait_limit)
        addresses = ["127.0.0.1"] + ([bridge] if bridge else [])
        urls = []
        for address in addresses:
            server = make_server(emu, address, 0)
            threading.Thread(target=server.serve_forever, daemon=True).start()
            started.append((server, emu))
            host, port = server.server_address[:2]
            urls.append(f"http://{host}:{port}/")
        api = Api(urls[0])
        api.bridge_base = urls[-1]
        return emu, api

    yield start
    for server, emu in started:
        server.shutdown()
        server.server_close()
        emu.store.close()  # idempotent: a bridge listener shares its emulator


@pytest.fixture
def api(emulator_factory) -> Api:
    return emulator_factory()[1]


def instance_body(name: str, machine_type: str = "e2-small", zone: str = "us-central1-a", **extra) -> dict:
    body = {
        "name": name,
        "machineType": f"zones/{zone}/machineTypes/{machine_type}",
        "disks": [{"boot": True, "autoDelete": True,
                   "initializeParams": {"sourceImage": "projects/debian-cloud/global/images/family/debian-12",
                                        "diskSizeGb": "10"}}],
        "networkInterfaces": [{"network": "global/networks/default", "accessConfigs": [{"type": "ONE_TO_ONE_NAT"}]}],
    }
    body.update(extra)
    return body


def pytest_configure(config):
    config.addinivalue_line("markers", "containers: needs the live Incus daemon (instances are real containers)")


def incus(*args: str, check: bool = True) -> str:
    import subprocess
    proc = subprocess.run(["incus", *args], capture_output=True, text=True, timeout=120, check=False)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.fixture
def container_api(emulator_factory):
    """An emulator backed by real Incus containers; everything it made is deleted afterwards."""
    if not pathlib.Path("/var/lib/incus/unix.socket").exists():
        pytest.skip("no Incus daemon")
    emu, api = emulator_factory(containers=True, latency=0, bridge="10.77.0.1")
    yield emu, api
    emu.forget_all()
