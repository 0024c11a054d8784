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
