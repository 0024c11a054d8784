"""IncusBackend against a stand-in `incus` CLI: which failures are tried again and which are not."""
from __future__ import annotations

import os
import pathlib
import stat

import pytest

from gce_emulator import backend
from gce_emulator.backend import BackendError, IncusBackend

# Fails the first FAILS calls with MESSAGE, then prints "ran <args>"; counts its calls in ./calls and
# writes the arguments of each to a line of ./args.
STAND_IN = """#!/bin/sh
cd "$(dirname "$0")"
n=$(( $(cat calls 2>/dev/null || echo 0) + 1 )); echo $n > calls; echo "$*" >> args
if [ $n -le {fails} ]; then echo 'Error: {message}' >&2; exit 1; fi
echo "ran $*"
"""


@pytest.fixture
def stand_in(tmp_path, monkeypatch):
    monkeypatch.setattr(backend.time, "sleep", lambda _seconds: None)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")

    def install(fails: int, message: str) -> pathlib.Path:
        script = tmp_path / "incus"
        script.write_text(STAND_IN.format(fails=fails, message=message))
        script.chmod(script.stat().st_mode | stat.S_IEXEC)
        return tmp_path / "calls"

    return install


def test_exec_that_never_started_is_tried_again(stand_in):
    calls = stand_in(2, "Failed to retrieve PID of executing child process")
    out = IncusBackend()._incus("exec", "gce-vm", "--", "true")
    assert out.strip() == "ran exec gce-vm -- true"
    assert calls.read_text().strip() == "3"


def test_a_transient_failure_that_persists_is_reported(stand_in):
    calls = stand_in(99, "Failed to retrieve PID of executing child process")
    with pytest.raises(BackendError, match="Failed to retrieve PID"):
        IncusBackend()._incus("exec", "gce-vm", "--", "true")
    assert calls.read_text().strip() == str(backend.TRANSIENT_TRIES)


def test_other_failures_are_not_repeated(stand_in):
    calls = stand_in(1, "Instance not found")
    with pytest.raises(BackendError, match="Instance not found"):
        IncusBackend()._incus("start", "gce-vm")
    assert calls.read_text().strip() == "1"


def test_a_restore_from_snapshot_is_tried_again_not_replaced_by_an_empty_disk(stand_in):
    calls = stand_in(1, "Failed to retrieve PID of executing child process")
    IncusBackend().volume_from_snapshot("restored", "home", "snap-1", 10)
    args = (calls.parent / "args").read_text().splitlines()
    assert [line.split()[:3] for line in args] == [["storage", "volume", "copy"]] * 2


def test_a_restore_whose_snapshot_is_gone_gives_an_empty_disk(stand_in):
    calls = stand_in(1, "Failed to load snapshot")
    IncusBackend().volume_from_snapshot("restored", "home", "snap-1", 10)
    args = (calls.parent / "args").read_text().splitlines()
    assert [line.split()[:3] for line in args] == [["storage", "volume", "copy"], ["storage", "volume", "create"]]
