"""Behaviour of a hardened jump server, checked from the outside with a real ssh client."""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], "../../tests/molecule"))
from fleet_ssh import address, key, ssh  # noqa: E402

JUMP = "mol-jump-1"


def test_sshd_effective_config_is_hardened(host):
    effective = host.check_output("sudo /usr/sbin/sshd -T").lower().splitlines()
    for line in ("passwordauthentication no", "kbdinteractiveauthentication no",
                 "permitrootlogin no", "maxauthtries 3", "logingracetime 30",
                 "x11forwarding no", "allowagentforwarding no", "pubkeyauthentication yes"):
        assert line in effective
    kex = next(item for item in effective if item.startswith("kexalgorithms "))
    assert "diffie-hellman-group1-sha1" not in kex and "curve25519-sha256" in kex
    macs = next(item for item in effective if item.startswith("macs "))
    assert "sha1" not in macs and "md5" not in macs


def test_every_key_of_an_admin_logs_in_and_gets_sudo():
    for identity in ("alice-laptop", "alice-desktop"):
        result = ssh(f"alice@{address(JUMP)}", "sudo -n id -u", identity=key(identity))
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "0"


def test_password_login_is_refused():
    result = ssh(f"alice@{address(JUMP)}", identity=key("alice-laptop"),
                 options=["-o", "PubkeyAuthentication=no",
                          "-o", "PreferredAuthentications=password,keyboard-interactive"])
    assert result.returncode == 255
    assert "Permission denied (publickey)" in result.stderr


def test_root_login_is_refused():
    result = ssh(f"root@{address(JUMP)}", identity=key("id_ed25519"))
    assert result.returncode == 255


def test_jump_only_account_gets_no_shell():
    result = ssh(f"jim@{address(JUMP)}", "id", identity=key("jim"))
    assert result.returncode != 0
    assert "uid=" not in result.stdout
    assert "not available" in result.stdout


def test_jump_only_account_can_proxyjump():
    # jim jumps through the server to alice's account on the same machine: the hop is real
    # forwarding (direct-tcpip) done by sshd on behalf of a shell-less account.
    result = ssh(f"alice@{address(JUMP)}", "hostname", identity=key("alice-laptop"),
                 jump=f"jim@{address(JUMP)}", jump_identity=key("jim"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == JUMP


def test_jump_only_account_is_not_locked(host):
    # "!" in shadow makes sshd refuse the account when it runs without PAM.
    shadow = host.check_output("sudo getent shadow jim").split(":")
    assert not shadow[1].startswith("!")
