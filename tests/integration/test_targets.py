"""Run every integration target (tests/integration/targets/<name>/tasks/main.yml) for real.

Each target is a role applied to localhost with the collection on the collections path; it
creates real Incus containers (or GCE emulator VMs), checks the world with the Incus CLI/API,
re-runs for idempotence, and removes what it made. An `aliases` file may list `disabled`,
`slow` (skipped when FLEET_SKIP_SLOW=1), `manual` (run only when FLEET_RUN_MANUAL=1, e.g. by
`make test-cluster`) or `gce` (needs the emulator fixture).
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest
from playbook_output import failure_report

REPO = pathlib.Path(__file__).resolve().parents[2]
TARGETS = REPO / "tests" / "integration" / "targets"


def _aliases(target):
    path = target / "aliases"
    return set(path.read_text().split()) if path.exists() else set()


def _targets():
    for target in sorted(p for p in TARGETS.iterdir() if (p / "tasks" / "main.yml").exists()):
        aliases = _aliases(target)
        marks = []
        if "disabled" in aliases:
            marks.append(pytest.mark.skip(reason="target disabled by its aliases file"))
        if "manual" in aliases and os.environ.get("FLEET_RUN_MANUAL") != "1":
            marks.append(pytest.mark.skip(reason="manual target (FLEET_RUN_MANUAL=1 runs it)"))
        if "slow" in aliases and os.environ.get("FLEET_SKIP_SLOW") == "1":
            marks.append(pytest.mark.skip(reason="slow target skipped (FLEET_SKIP_SLOW=1)"))
        yield pytest.param(target.name, aliases, id=target.name, marks=marks)


@pytest.mark.parametrize("target,aliases", list(_targets()))
def test_target(target, aliases, tmp_path, request):
    if "gce" in aliases:
        request.getfixturevalue("gce_emulator")
    playbook = tmp_path / "run.yml"
    playbook.write_text(
        "- hosts: localhost\n  gather_facts: false\n  roles:\n    - role: %s\n" % target
    )
    env = dict(os.environ)
    env.update(
        ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
        ANSIBLE_ROLES_PATH=str(TARGETS),
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_NOCOLOR="1",
    )
    proc = subprocess.run(
        [str(pathlib.Path(sys.executable).parent / "ansible-playbook"), "-i",
         str(REPO / "tests" / "integration" / "inventory.ini"), str(playbook)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=1800, check=False,
    )
    if proc.returncode != 0:
        pytest.fail("ansible-playbook failed for target %s\n%s\n%s" % (
            target, failure_report(proc.stdout), proc.stderr[-4000:]))
