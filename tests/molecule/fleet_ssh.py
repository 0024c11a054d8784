"""SSH from the controller, as a user would, for the roles' testinfra checks.

The Molecule scenarios test behaviour from the outside: these helpers run the real `ssh`
client with a given key (and ProxyJump chain), never asking anything interactively.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import yaml

EPHEMERAL = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "."))

# Host keys are checked by the roles' own tests where it matters; here every container is new.
BASE_OPTIONS = [
    "-o", "BatchMode=yes",
    "-o", "StrictHostKeyChecking=no",
    "-o", "UserKnownHostsFile=/dev/null",
    "-o", "LogLevel=ERROR",
    "-o", "ConnectTimeout=10",
    "-o", "IdentitiesOnly=yes",
]


def address(instance: str) -> str:
    """IPv4 of a scenario instance, from Molecule's instance config."""
    config = yaml.safe_load(Path(os.environ["MOLECULE_INSTANCE_CONFIG"]).read_text())
    return next(item["address"] for item in config if item["instance"] == instance)


def key(name: str) -> str:
    """Private key file made by the scenario (id_ed25519 is Molecule's own)."""
    return str(EPHEMERAL / name)


def ssh(target: str, command: str = "true", *, identity: str,
        jump: str | None = None, jump_identity: str | None = None,
        options: list[str] | None = None, port: int | None = None,
        timeout: int = 30) -> subprocess.CompletedProcess[str]:
    """Run `command` on user@host `target`, optionally through a ProxyJump chain."""
    args = ["ssh", *BASE_OPTIONS, "-i", identity, *(options or [])]
    if jump:
        # The hop gets its own key through ProxyCommand (-J would reuse the target's -i).
        hop_options = " ".join([*BASE_OPTIONS, "-i", jump_identity or identity])
        args += ["-o", f"ProxyCommand=ssh {hop_options} -W %h:%p {jump}"]
    if port:
        args += ["-p", str(port)]
    args += [target, command]
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
