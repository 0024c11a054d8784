# -*- coding: utf-8 -*-
# Copyright: containarium.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: spot_protected
short_description: Whether a spot-aware container is targeted by spot protection (all, allow or deny)
version_added: 0.1.0
description:
  - Seed 003's namespace modes, here over spot hosts and Incus projects. Takes the name of the host a
    container runs on and returns whether it gets a replacement when that host is preempted.
  - V(all) protects every opted-in container; V(allow) only those whose host is in O(hosts) or whose
    project is in O(projects); V(deny) every one but those.
  - The one rule that C(playbooks/tasks/spot_protect.yml) (replacements created on a notice or preemption)
    and C(playbooks/spot_notice.yml) (prepared standbys started on a notice) both apply.
  - Fails on a mode other than V(all), V(allow) or V(deny).
options:
  _input:
    description: Name of the spot host (inventory name of the VM) the container runs on.
    type: str
    required: true
  project:
    description: Incus project of the container.
    type: str
    default: default
  mode:
    description: V(all), V(allow) or V(deny).
    type: str
    default: all
  hosts:
    description: Host names of the allow or deny list.
    type: list
    elements: str
    default: []
  projects:
    description: Incus projects of the allow or deny list.
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
- name: Does a container of project team-a on fleet-spot-1 get a replacement? (allow list of projects)
  ansible.builtin.debug:
    msg: "{{ 'fleet-spot-1' | containarium.fleet.spot_protected(project='team-a', mode='allow', projects=['team-a']) }}"

- name: The running containers of this host that protection targets, every host but the denied ones
  ansible.builtin.set_fact:
    protected: >-
      {{ instances | selectattr('status', 'eq', 'Running')
         | selectattr('project', 'in', ['default']) | list
         if inventory_hostname | containarium.fleet.spot_protected(mode='deny', hosts=['fleet-spot-9']) else [] }}
"""

RETURN = r"""
_value:
  description: True when a container of that host and project gets a replacement.
  type: bool
"""

from ansible.errors import AnsibleFilterError

MODES = ("all", "allow", "deny")


def spot_protected(host, project="default", mode="all", hosts=None, projects=None):
    if mode not in MODES:
        raise AnsibleFilterError("spot_protected: mode must be one of %s, got %r" % (", ".join(MODES), mode))
    if mode == "all":
        return True
    listed = host in (hosts or []) or (project or "default") in (projects or [])
    return listed == (mode == "allow")


class FilterModule:
    def filters(self):
        return {"spot_protected": spot_protected}
