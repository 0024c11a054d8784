"""The in-process GCE emulator shared by the gce_* module tests."""

from __future__ import annotations

import pytest
from gce_module_runner import InProcessEmulator


@pytest.fixture
def emulator(tmp_path):
    """The emulator; afterwards every request the modules sent must match the discovery document."""
    emu = InProcessEmulator(tmp_path / "gce-state")
    yield emu
    emu.close()
    problems = emu.schema_problems()
    assert not problems, "requests outside the Compute v1 discovery document:\n" + "\n".join(problems)
