"""The central fleet the end-to-end tests share, and the canaries that prove nothing was lost.

One session fleet (name and emulator port from FLEET_E2E_NAME / FLEET_E2E_PORT, default ``e2e`` on
8111) is built with scale_out.yml before the first test; every user gets a canary file with a known
checksum in their container, and each test checks the canaries after its own step. Set
FLEET_E2E_KEEP=1 to keep the fleet after the run (a second run then starts from it, much faster).
"""

from __future__ import annotations

import subprocess

import pytest

from sandbox_fleet import built_fleet

CANARY = "canary.bin"


class Canaries:
    """One file of random bytes per user, in that user's container, reached over the ProxyJump chain."""

    def __init__(self, fleet):
        self.fleet = fleet
        self.sums = {}

    def plant(self):
        for user in self.fleet.users:
            proc = self.fleet.ssh(user, "%s-container" % user,
                                  "test -f %s || head -c 1048576 /dev/urandom > %s; sha256sum %s" % ((CANARY,) * 3))
            assert proc.returncode == 0, "cannot plant the canary of %s: %s" % (user, proc.stderr)
            self.sums[user] = proc.stdout.split()[0]

    def check(self, step):
        """Every canary readable through the jump chain with its original checksum."""
        problems = []
        for user, expected in sorted(self.sums.items()):
            proc = self.fleet.ssh(user, "%s-container" % user, "sha256sum %s" % CANARY)
            if proc.returncode != 0:
                problems.append("%s: ssh failed (%s)" % (user, proc.stderr.strip()[-300:]))
            elif proc.stdout.split()[0] != expected:
                problems.append("%s: checksum %s, expected %s" % (user, proc.stdout.split()[0], expected))
        assert not problems, "canaries after %s: %s" % (step, "; ".join(problems))

    def keys(self, user):
        """The private keys of ``user`` in the fleet's state directory (``alice``, ``alice-2``, ...)."""
        state = self.fleet.state
        return sorted(p for p in state.glob("%s*" % user) if p.suffix == "" and p.with_suffix(".pub").exists())

    def ssh_with_key(self, user, key, command):
        """ssh into the user's container with the user's own client config and ONLY this key."""
        state = self.fleet.state
        one_key = self.fleet.root / ("ssh_config-%s-%s" % (user, key.name))
        one_key.write_text((state / "clients" / user / "ssh_config").read_text().replace(str(state / user), str(key)))
        return subprocess.run(["ssh", "-F", str(one_key), "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
                               "-o", "ConnectTimeout=10", "%s-container" % user, command],
                              capture_output=True, text=True, timeout=60, check=False)

    def check_every_key(self, step):
        """Every user logs in with each of their keys (not only the first) and finds their canary."""
        problems, logins = [], 0
        for user, expected in sorted(self.sums.items()):
            keys = self.keys(user)
            assert keys, "no keys for %s" % user
            for key in keys:
                logins += 1
                proc = self.ssh_with_key(user, key, "sha256sum %s" % CANARY)
                if proc.returncode != 0:
                    problems.append("%s with %s: %s" % (user, key.name, proc.stderr.strip()[-300:]))
                elif proc.stdout.split()[0] != expected:
                    problems.append("%s with %s: canary checksum changed" % (user, key.name))
        assert not problems, "after %s: %s" % (step, "; ".join(problems))
        return logins


@pytest.fixture(scope="session")
def central_fleet():
    with built_fleet("E2E", "e2e", 8111, "scale_out.yml") as fleet:
        yield fleet


@pytest.fixture(scope="session")
def canaries(central_fleet):
    planted = Canaries(central_fleet)
    planted.plant()
    return planted
