#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: containarium.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: incus_instance_info
short_description: Read Incus instances with their state, addresses and resource usage
version_added: 0.1.0
description:
  - Returns one instance (O(name)) or every instance of the project, read in one API call
    (C(GET /1.0/instances?recursion=2)), with status, addresses and CPU, memory and disk usage.
  - Filters by status and by C(user.*) configuration keys are applied to that single answer.
options:
  name:
    description:
      - Only this instance. A missing instance gives an empty list, not an error.
    type: str
  status:
    description:
      - Keep only instances in one of these statuses (case-insensitive), for example V(Running), V(Stopped).
    type: list
    elements: str
    default: []
  config:
    description:
      - Keep only instances whose configuration has all these C(user.*) keys with these values.
    type: dict
    default: {}
extends_documentation_fragment:
  - containarium.fleet.incus
  - containarium.fleet.attributes
  - containarium.fleet.attributes.INFO_MODULE
  - containarium.fleet.attributes.ACTIONGROUP_INCUS
seealso:
  - module: containarium.fleet.incus_instance
author:
  - containarium.fleet contributors (@containarium)
"""

EXAMPLES = r"""
- name: Running containers of team A
  containarium.fleet.incus_instance_info:
    status: [Running]
    config:
      user.team: a
  register: team_a

- name: Their addresses
  ansible.builtin.debug:
    msg: "{{ team_a.instances | map(attribute='ipv4') | list }}"

- name: One container
  containarium.fleet.incus_instance_info:
    name: alice-dev
  register: alice
"""

RETURN = r"""
instances:
  description: The matching instances, sorted by name.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Instance name.
      type: str
    type:
      description: V(container) or V(virtual-machine).
      type: str
    status:
      description: Incus status.
      type: str
      sample: Running
    location:
      description: Cluster member (V(none) outside a cluster).
      type: str
    profiles:
      description: Profiles.
      type: list
      elements: str
    config:
      description: Instance configuration without C(volatile.*) keys.
      type: dict
    devices:
      description: Instance-local devices.
      type: dict
    ipv4:
      description: First global IPv4 address of a non-loopback NIC, or null.
      type: str
    addresses:
      description: Addresses by interface (loopback left out).
      type: dict
    snapshots:
      description: Snapshot names.
      type: list
      elements: str
    resources:
      description: Resource usage (zero or empty when the instance is stopped).
      type: dict
      contains:
        cpu_seconds:
          description: CPU time used since start, in seconds.
          type: float
        memory_bytes:
          description: Memory in use.
          type: int
        memory_peak_bytes:
          description: Peak memory use.
          type: int
        disk_bytes:
          description: Disk usage by disk device (where the storage driver reports it).
          type: dict
        processes:
          description: Number of processes.
          type: int
"""

from ansible_collections.containarium.fleet.plugins.module_utils.fleet_module import FleetError, FleetModule
from ansible_collections.containarium.fleet.plugins.module_utils.incus import (
    connect,
    connection_argument_spec,
    instance_view,
)


def describe(instance):
    state = instance.get("state") or {}
    memory = state.get("memory") or {}
    view = instance_view(instance)
    view.update({
        "snapshots": sorted(snap["name"] for snap in instance.get("snapshots") or []),
        "resources": {
            "cpu_seconds": ((state.get("cpu") or {}).get("usage") or 0) / 1e9,
            "memory_bytes": memory.get("usage") or 0,
            "memory_peak_bytes": memory.get("usage_peak") or 0,
            "disk_bytes": {dev: usage.get("usage") or 0 for dev, usage in (state.get("disk") or {}).items()},
            "processes": state.get("processes") or 0,
        },
    })
    return view


def matches(instance, statuses, config):
    if statuses and instance.get("status", "").lower() not in statuses:
        return False
    return all((instance.get("config") or {}).get(key) == value for key, value in config.items())


def main():
    argument_spec = connection_argument_spec()
    argument_spec.update(
        name=dict(type="str"),
        status=dict(type="list", elements="str", default=[]),
        config=dict(type="dict", default={}),
    )
    module = FleetModule(argument_spec)
    name = module.params["name"]
    if name is not None:
        module.require_valid_name(name, "instance")
    config = {key: str(value) for key, value in module.params["config"].items()}
    not_user = sorted(key for key in config if not key.startswith("user."))
    if not_user:
        module.fail_json(msg="config filters take user.* keys only, got: %s" % ", ".join(not_user))
    statuses = [status.lower() for status in module.params["status"]]
    client = connect(module)
    try:
        if name is None:
            found = client.instances()
        else:
            one = client.instance(name)
            found = [one] if one else []
    except FleetError as exc:
        module.fail_from(exc, "list instances")
    instances = [describe(i) for i in sorted(found, key=lambda i: i["name"]) if matches(i, statuses, config)]
    module.exit(instances=instances)


if __name__ == "__main__":
    main()
