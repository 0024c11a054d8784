"""gce_emulator_up.sh / gce_emulator_down.sh: background start, readiness, idempotence."""
from __future__ import annotations

import json
import os
import pathlib
import socket
import subprocess
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parents[3]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run(script: str, env: dict) -> str:
    proc = subprocess.run([str(ROOT / "tests" / "sandbox" / script)], env=env, capture_output=True, text=True,
                          timeout=60, cwd=ROOT, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_up_is_idempotent_and_down_stops(tmp_path):
    port = free_port()
    env = dict(os.environ, GCE_EMULATOR_PORT=str(port), GCE_EMULATOR_STATE_DIR=str(tmp_path),
               GCE_EMULATOR_CONTAINERS="0", GCE_EMULATOR_BRIDGE="")
    try:
        assert "up on" in run("gce_emulator_up.sh", env)
        pid = (tmp_path / "emulator.pid").read_text().strip()
        assert "already up" in run("gce_emulator_up.sh", env)
        assert (tmp_path / "emulator.pid").read_text().strip() == pid
        # Its own session (Ansible stops a task's whole process group when it ends its worker).
        assert os.getsid(int(pid)) == int(pid) != os.getsid(0)
        req = urllib.request.Request(f"http://127.0.0.1:{port}/compute/v1/projects/emu-p/zones/us-east1-c",
                                     headers={"Authorization": "Bearer t"})
        with urllib.request.urlopen(req, timeout=5) as resp:
            assert json.load(resp)["name"] == "us-east1-c"
    finally:
        assert "stopped" in run("gce_emulator_down.sh", env)
    assert "not running" in run("gce_emulator_down.sh", env)
    assert (tmp_path / "emulator.log").exists() and (tmp_path / "state.json").exists()
