"""The central fleet the end-to-end tests share, and the canaries that prove nothing was lost.

One session fleet (name and emulator port from FLEET_E2E_NAME / FLEET_E2E_PORT, default ``e2e`` on
8111) is built with scale_out.yml before the first test; every user gets a canary file with a known
checksum in their container, and each test checks the canaries after its own step. Set
FLEET_E2E_KEEP=1 to keep the fleet after the run (a second run then starts from it, much faster).
"""

from __future__ import annotations

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


@pytest.fixture(scope="session")
def central_fleet():
    with built_fleet("E2E", "e2e", 8111, "scale_out.yml") as fleet:
        yield fleet


@pytest.fixture(scope="session")
def canaries(central_fleet):
    planted = Canaries(central_fleet)
    planted.plant()
    return planted
