# -*- coding: utf-8 -*-
# Copyright: containarium.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    """Attributes shared by the collection's modules."""

    DOCUMENTATION = r"""
options: {}
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
  idempotent:
    description:
      - When run twice in a row outside check mode, with the same arguments, the second invocation
        indicates no change.
"""

    # Read-only modules.
    INFO_MODULE = r"""
options: {}
attributes:
  check_mode:
    support: full
    details: This action does not modify state.
  diff_mode:
    support: N/A
    details: This action does not modify state.
  idempotent:
    support: full
"""

    # Modules that change state, predict every change under check mode, show it under diff mode,
    # and report no change on a second identical run.
    STATEFUL_MODULE = r"""
options: {}
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  idempotent:
    support: full
"""

    ACTIONGROUP_INCUS = r"""
options: {}
attributes:
  action_group:
    description: Use C(group/containarium.fleet.incus) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - containarium.fleet.incus
"""

    ACTIONGROUP_GCE = r"""
options: {}
attributes:
  action_group:
    description: Use C(group/containarium.fleet.gce) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - containarium.fleet.gce
"""
