"""Keys and client config across jump, backend and container, checked with real ssh."""
from __future__ import annotations

import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], "../../tests/molecule"))
from fleet_ssh import EPHEMERAL, address, key, ssh  # noqa: E402

testinfra_hosts = ["jump_servers"]
CLIENT = EPHEMERAL / "client-ssh" / "uma"


def client_ssh(identity: str, command: str, tmp_path) -> subprocess.CompletedProcess[str]:
    # The generated file plus the user's key for every hop (what the user's ~/.ssh/config gives),
    # no override of host key checking; BatchMode turns any prompt into a failure.
    config = tmp_path / f"ssh_config-{identity}"
    config.write_text((CLIENT / "ssh_config").read_text()
                      + f"\nHost *\n    IdentityFile {key(identity)}\n    IdentitiesOnly yes\n")
    return subprocess.run(
        ["ssh", "-F", str(config), "-o", "BatchMode=yes", "mol-keys-c1", command],
        capture_output=True, text=True, timeout=60, check=False)


def test_generated_config_chains_jump_backend_container():
    config = (CLIENT / "ssh_config").read_text()
    assert "ProxyJump fleet-jump" in config and "ProxyJump mol-keys-b1" in config
    assert "StrictHostKeyChecking yes" in config


def test_user_reaches_the_container_through_the_chain_with_every_key(tmp_path):
    for identity in ("uma-laptop", "uma-desktop"):
        result = client_ssh(identity, "whoami; hostname", tmp_path)
        assert result.returncode == 0, result.stderr
        assert result.stdout.split() == ["uma", "mol-keys-c1"]


def test_jump_reaches_the_backend_admin_with_its_distributed_key(host):
    backend = address("mol-keys-b1")
    # StrictHostKeyChecking=yes: it only works because the jump's known_hosts is filled.
    result = host.run(f"sudo ssh -o BatchMode=yes -o StrictHostKeyChecking=yes "
                      f"-i /root/.ssh/id_ed25519 fleet@{backend} whoami")
    assert result.rc == 0, result.stderr
    assert result.stdout.strip() == "fleet"


def test_ssh_jump_then_backend_from_the_controller_with_the_distributed_key():
    # `ssh -J jump backend` as an admin would: hop to the jump, then use the jump's key there.
    result = ssh(f"molecule@{address('mol-keys-jump')}",
                 f"sudo ssh -o BatchMode=yes -i /root/.ssh/id_ed25519 fleet@{address('mol-keys-b1')} hostname",
                 identity=key("id_ed25519"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "mol-keys-b1"
