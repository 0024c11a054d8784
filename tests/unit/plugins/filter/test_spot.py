"""spot_protected: seed 003's targeting modes over hosts and projects."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.containarium.fleet.plugins.filter.spot import spot_protected


@pytest.mark.parametrize("mode, hosts, projects, expected", [
    ("all", [], [], True),
    ("allow", [], [], False),
    ("allow", ["spot-1"], [], True),
    ("allow", ["spot-2"], ["team-a"], True),      # its project is listed
    ("allow", ["spot-2"], ["team-b"], False),
    ("deny", [], [], True),
    ("deny", ["spot-1"], [], False),
    ("deny", [], ["team-a"], False),
    ("deny", ["spot-2"], ["team-b"], True),
])
def test_modes(mode, hosts, projects, expected):
    assert spot_protected("spot-1", "team-a", mode, hosts, projects) is expected


def test_project_defaults_to_default():
    assert spot_protected("spot-1", None, "allow", projects=["default"]) is True


def test_unknown_mode_is_refused():
    with pytest.raises(AnsibleFilterError, match="mode must be one of all, allow, deny, got 'some'"):
        spot_protected("spot-1", mode="some")
