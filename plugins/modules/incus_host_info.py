#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: containarium.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: incus_host_info
short_description: Capacity and load of an Incus server (CPU, memory, instances, storage)
version_added: 0.1.0
description:
  - Reads C(/1.0/resources), the instance list of the project (one request) and
    C(/1.0/storage-pools/<pool>/resources) of one Incus server, for placement and scaling decisions
    (for example "more than 70 % memory used").
  - Its RV(host) is what the C(containarium.fleet.pick_host) filter takes, beside the C(members) of
    M(containarium.fleet.incus_cluster_info).
options: {}
extends_documentation_fragment:
  - containarium.fleet.incus
  - containarium.fleet.attributes
  - containarium.fleet.attributes.INFO_MODULE
  - containarium.fleet.attributes.ACTIONGROUP_INCUS
seealso:
  - module: containarium.fleet.incus_instance_info
author:
  - containarium.fleet contributors (@containarium)
"""

EXAMPLES = r"""
- name: Capacity of a backend
  containarium.fleet.incus_host_info:
  delegate_to: backend-1
  register: host

- name: Too full for more containers?
  ansible.builtin.debug:
    msg: "{{ host.host.memory.used_percent > 70 or host.host.instances.total >= 50 }}"
"""

RETURN = r"""
host:
  description: Server capacity and use.
  returned: always
  type: dict
  contains:
    server_name:
      description: Server (cluster member) name.
      type: str
    cpu:
      description:
        - C(total) logical CPUs. No C(allocated) figure here, unlike a cluster member's in
          M(containarium.fleet.incus_cluster_info), on purpose - users' containers share their host's cores
          (C(limits.cpu) caps, it does not reserve), so counting caps as allocations would stop a host at a
          handful of users; C(containarium.fleet.pick_host) then weighs memory and instance counts.
      type: dict
      sample: {"total": 8}
    memory:
      description: C(total_bytes), C(used_bytes), C(used_percent).
      type: dict
    instances:
      description: Instance counts in the project, C(total), C(running), C(stopped), C(frozen).
      type: dict
      sample: {"total": 52, "running": 50, "stopped": 2, "frozen": 0}
    storage_pools:
      description: Per pool, C(driver), C(total_bytes), C(used_bytes), C(used_percent).
      type: dict
"""

from ansible_collections.containarium.fleet.plugins.module_utils.fleet_module import FleetError, FleetModule
from ansible_collections.containarium.fleet.plugins.module_utils.incus import (
    connect,
    connection_argument_spec,
    instance_counts,
)


def percent(used, total):
    return round(100.0 * used / total, 1) if total else 0.0


def describe(server_info, resources, instances, pools):
    memory = resources.get("memory") or {}
    counts = instance_counts(instances)
    storage = {}
    for pool in pools:
        space = (pool.get("resources") or {}).get("space") or {}
        storage[pool["name"]] = {
            "driver": pool.get("driver"),
            "total_bytes": space.get("total", 0),
            "used_bytes": space.get("used", 0),
            "used_percent": percent(space.get("used", 0), space.get("total", 0)),
        }
    return {
        "server_name": (server_info.get("environment") or {}).get("server_name"),
        "cpu": {"total": (resources.get("cpu") or {}).get("total", 0)},
        "memory": {
            "total_bytes": memory.get("total", 0),
            "used_bytes": memory.get("used", 0),
            "used_percent": percent(memory.get("used", 0), memory.get("total", 0)),
        },
        "instances": counts,
        "storage_pools": storage,
    }


def main():
    module = FleetModule(connection_argument_spec())
    client = connect(module)
    try:
        instances = client.get("instances", params={"recursion": 1})
        host = describe(client.server_info, client.resources(), instances, client.storage_pools())
    except FleetError as exc:
        module.fail_from(exc, "read host resources")
    module.exit(host=host)


if __name__ == "__main__":
    main()
