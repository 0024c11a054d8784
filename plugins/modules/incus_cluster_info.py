#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: containarium.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: incus_cluster_info
short_description: Members of an Incus cluster with status, roles, instance counts and resources
version_added: 0.1.0
description:
  - Reads the cluster as one member sees it, C(/1.0/cluster/members), one listing of every instance
    (all projects) and, per member, C(/1.0/resources) forwarded to that member.
  - Each member's C(cpu), C(memory) and C(instances) have the shape of M(containarium.fleet.incus_host_info)'s
    C(host), so the C(containarium.fleet.pick_host) filter places on cluster members and standalone hosts alike.
  - On a server that is not clustered, C(cluster.enabled) is false and RV(members) is empty.
options:
  members:
    description:
      - Only these members (default all).
    type: list
    elements: str
  resources:
    description:
      - Read C(/1.0/resources) of every online member (one request each). V(false) skips it.
    type: bool
    default: true
extends_documentation_fragment:
  - containarium.fleet.incus
  - containarium.fleet.attributes
  - containarium.fleet.attributes.INFO_MODULE
  - containarium.fleet.attributes.ACTIONGROUP_INCUS
seealso:
  - module: containarium.fleet.incus_cluster
  - module: containarium.fleet.incus_cluster_member
  - module: containarium.fleet.incus_host_info
author:
  - containarium.fleet contributors (@containarium)
"""

EXAMPLES = r"""
- name: Cluster state
  containarium.fleet.incus_cluster_info:
    endpoint: https://10.0.3.10:8443
  delegate_to: localhost
  register: cluster

- name: Least-loaded member with 20 % headroom
  ansible.builtin.debug:
    msg: "{{ cluster.members | containarium.fleet.pick_host(memory='2GiB', cpu=1) }}"
"""

RETURN = r"""
cluster:
  description: C(enabled) and the C(server_name) of the member answering.
  returned: always
  type: dict
  sample: {"enabled": true, "server_name": "backend-1"}
members:
  description: One entry per member.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Member name (also as C(server_name)).
      type: str
    url:
      description: Member API address.
      type: str
    status:
      description: C(Online), C(Evacuated), C(Offline), C(Blocked)...
      type: str
    message:
      description: Status message.
      type: str
    roles:
      description: Database roles (C(database), C(database-leader), C(database-standby)...).
      type: list
      elements: str
    groups:
      description: Cluster groups.
      type: list
      elements: str
    failure_domain:
      description: Failure domain.
      type: str
    healthy:
      description: True when the member is C(Online) (not evacuated, offline or blocked).
      type: bool
    instances:
      description: Counts C(total), C(running), C(stopped), C(frozen) (all projects) and C(names).
      type: dict
      sample: {"total": 3, "running": 3, "stopped": 0, "frozen": 0, "names": [c1, c2, c3]}
    cpu:
      description:
        - C(total) logical CPUs (0 when not read) and C(allocated), the CPUs promised to the member's instances
          (running or not) by C(limits.cpu) (a count or a set of cores) or a hard C(limits.cpu.allowance).
      type: dict
    memory:
      description: C(total_bytes), C(used_bytes), C(used_percent) (zeros when not read).
      type: dict
"""

from ansible_collections.containarium.fleet.plugins.module_utils.fleet_module import FleetError, FleetModule
from ansible_collections.containarium.fleet.plugins.module_utils.incus import (
    ClusterApi,
    connect,
    connection_argument_spec,
    instance_load,
)


def describe(member, instances, resources):
    on_member = [i for i in instances if i.get("location") == member["server_name"]]
    counts, allocated = instance_load(on_member)
    counts["names"] = sorted(i["name"] for i in on_member)
    memory = (resources or {}).get("memory") or {}
    total, used = memory.get("total", 0), memory.get("used", 0)
    return {
        "name": member["server_name"],
        "server_name": member["server_name"],
        "url": member.get("url"),
        "status": member.get("status"),
        "message": member.get("message"),
        "roles": member.get("roles") or [],
        "groups": member.get("groups") or [],
        "failure_domain": member.get("failure_domain"),
        "description": member.get("description"),
        "healthy": member.get("status") == "Online",
        "instances": counts,
        "cpu": {"total": ((resources or {}).get("cpu") or {}).get("total", 0), "allocated": allocated},
        "memory": {"total_bytes": total, "used_bytes": used,
                   "used_percent": round(100.0 * used / total, 1) if total else 0.0},
    }


def main():
    module = FleetModule(dict(connection_argument_spec(),
                              members=dict(type="list", elements="str"),
                              resources=dict(type="bool", default=True)))
    api = ClusterApi(connect(module))
    try:
        state = api.state()
        members = []
        if state.get("enabled"):
            wanted = module.params["members"]
            instances = api.all_instances()
            for member in api.members():
                if wanted is not None and member["server_name"] not in wanted:
                    continue
                resources = None
                if module.params["resources"] and member.get("status") in ("Online", "Evacuated"):
                    resources = api.member_resources(member["server_name"])
                members.append(describe(member, instances, resources))
    except FleetError as exc:
        module.fail_from(exc, "read cluster")
    module.exit(cluster={"enabled": bool(state.get("enabled")), "server_name": state.get("server_name") or ""},
                members=members)


if __name__ == "__main__":
    main()
