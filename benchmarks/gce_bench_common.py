"""Shared by the GCE benchmarks: a no-containers emulator process on a free port, results file."""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import pathlib
import platform
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

REPO = pathlib.Path(__file__).resolve().parents[1]
BIN = REPO / ".venv" / "bin"
RESULTS = REPO / "benchmarks" / "RESULTS.md"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def emulator(latency=0.0):
    """Yield (root URL, admin function) of a --no-containers emulator run for this benchmark only."""
    port = free_port()
    state = tempfile.mkdtemp(prefix="gce-bench-")
    proc = subprocess.Popen(
        [str(BIN / "python"), "-m", "gce_emulator", "--host", "127.0.0.1", "--port", str(port),
         "--state-dir", state, "--no-containers", "--latency", str(latency), "--log-level", "WARNING"],
        env=dict(os.environ, PYTHONPATH=str(REPO / "tests" / "sandbox")), cwd=REPO)
    root = "http://127.0.0.1:%d" % port

    def admin(action, body=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(root + "/_admin/" + action, data=data, method="GET" if body is None else "POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=120) as response:
            return json.load(response)

    try:
        for dummy in range(100):
            try:
                if admin("ready").get("ready"):
                    break
            except OSError:
                time.sleep(0.1)
        yield root, admin
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def machine():
    cpu = "unknown cpu"
    with contextlib.suppress(OSError):
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return "%s, %d cores (shared), %s, Python %s" % (
        cpu, os.cpu_count() or 0, platform.platform(), platform.python_version())


def append_results(title, lines):
    """Append one dated section to benchmarks/RESULTS.md."""
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    text = "\n## %s (%s)\n\nMachine: %s\n\n%s\n" % (title, stamp, machine(), "\n".join(lines))
    with open(RESULTS, "a", encoding="utf-8") as handle:
        handle.write(text)
    sys.stdout.write(text)
