"""Fixtures shared by the integration tests."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest


def incus(*args, check=True):
    """Run the incus CLI and return stdout (the tests' view of the world, independent of the modules)."""
    proc = subprocess.run(["incus", *args], capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise AssertionError("incus %s failed: %s" % (" ".join(args), proc.stderr))
    return proc.stdout


def incus_json(path):
    return json.loads(incus("query", path))


@pytest.fixture(scope="session", autouse=True)
def _incus_available():
    if shutil.which("incus") is None or not os.path.exists("/var/lib/incus/unix.socket"):
        pytest.exit("Incus is not running: run `make sandbox` first", returncode=3)


# ---- GCE emulator (requested by targets whose aliases list `gce`) ---------------------------------
GCE_IT_PROJECT = "gi-it"


@pytest.fixture(scope="session")
def gce_emulator():
    """The GCE emulator with real Incus containers behind its VMs, for the whole session.

    Started with tests/sandbox/gce_emulator_up.sh on its own port and state directory (so it never
    collides with an emulator someone else runs) and stopped afterwards if this fixture started it.
    The modules reach it only through the variables a user of a private endpoint would set.
    """
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    port = os.environ.get("FLEET_IT_GCE_PORT", "8097")
    env = dict(os.environ, GCE_EMULATOR_PORT=port, GCE_EMULATOR_STATE_DIR="build/gce-emulator-it")
    up = subprocess.run([os.path.join(repo, "tests/sandbox/gce_emulator_up.sh")], cwd=repo, env=env,
                        capture_output=True, text=True, check=False)
    if up.returncode != 0:
        pytest.fail("GCE emulator did not start: %s%s" % (up.stdout, up.stderr))
    started_here = "already up" not in up.stdout
    endpoint = "http://127.0.0.1:%s/compute/v1/" % port
    saved = {k: os.environ.get(k) for k in ("GCP_COMPUTE_ENDPOINT", "GCP_PROJECT", "GCP_AUTH_KIND", "GCP_ACCESS_TOKEN")}
    os.environ.update(GCP_COMPUTE_ENDPOINT=endpoint, GCP_PROJECT=GCE_IT_PROJECT, GCP_AUTH_KIND="accesstoken",
                      GCP_ACCESS_TOKEN="sandbox")
    try:
        yield endpoint
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if started_here:
            subprocess.run([os.path.join(repo, "tests/sandbox/gce_emulator_down.sh")], cwd=repo, env=env,
                           capture_output=True, text=True, check=False)
