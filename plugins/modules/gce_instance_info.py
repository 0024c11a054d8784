#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: containarium.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: gce_instance_info
short_description: Read Compute Engine VM instances
version_added: 0.1.0
description:
  - Returns one instance by name, or the instances matching a server-side filter in one zone or, without
    O(zone), across all zones with one paged C(aggregatedList).
author: containarium.fleet contributors (@containarium)
extends_documentation_fragment:
  - containarium.fleet.gce
  - containarium.fleet.attributes
  - containarium.fleet.attributes.INFO_MODULE
  - containarium.fleet.attributes.ACTIONGROUP_GCE
options:
  name:
    description: Instance name; needs O(zone). An instance that does not exist gives an empty list.
    type: str
  zone:
    description: Zone to look in; all zones when not set.
    type: str
  filter:
    description:
      - Compute API filter expression, for example V(labels.fleet-role = "jump") or V(status = "RUNNING").
    type: str
"""

EXAMPLES = r"""
- name: Every stopped spot VM of the fleet
  containarium.fleet.gce_instance_info:
    project: my-project
    filter: 'labels.fleet = "prod" AND status = "TERMINATED"'
  register: stopped
  delegate_to: localhost

- name: One instance
  containarium.fleet.gce_instance_info:
    project: my-project
    zone: us-central1-a
    name: jump-1
  register: jump
  delegate_to: localhost
"""

RETURN = r"""
instances:
  description: The instances found (see the C(instance) return value of M(containarium.fleet.gce_instance)).
  returned: always
  type: list
  elements: dict
  contains:
    name: {description: Instance name., type: str, returned: success}
    zone: {description: Zone name., type: str, returned: success}
    status: {description: "Instance status (RUNNING, TERMINATED, ...).", type: str, returned: success}
    machine_type: {description: Machine type name., type: str, returned: success}
    spot: {description: Whether the VM is spot or preemptible., type: bool, returned: success}
    labels: {description: Labels., type: dict, returned: success}
    tags: {description: Network tags., type: list, elements: str, returned: success}
    metadata: {description: Metadata as a dictionary., type: dict, returned: success}
    private_ip: {description: Internal IPv4., type: str, returned: success}
    public_ip: {description: External IPv4 or null., type: str, returned: success}
    disks: {description: Attached disks., type: list, elements: dict, returned: success}
    self_link: {description: URL of the instance., type: str, returned: success}
"""

from ansible_collections.containarium.fleet.plugins.module_utils.fleet_module import FleetError
from ansible_collections.containarium.fleet.plugins.module_utils.gce import GceModule, summarize_instance


def main():
    module = GceModule(
        argument_spec=dict(
            name=dict(type="str"),
            zone=dict(type="str"),
            filter=dict(type="str"),
        ),
        required_by={"name": "zone"},
        mutually_exclusive=[("name", "filter")],
    )
    p = module.params
    if p["name"]:
        module.require_valid_name(p["name"], "instance")
    params = {"filter": p["filter"]} if p["filter"] else {}
    params["maxResults"] = 500
    try:
        client = module.client
        if p["name"]:
            found = client.get_or_none("zones/%s/instances/%s" % (p["zone"], p["name"]))
            instances = [found] if found else []
        elif p["zone"]:
            instances = list(client.list("zones/%s/instances" % p["zone"], params))
        else:
            instances = [item for dummy, item in client.aggregated("instances", params)]
    except FleetError as exc:
        module.fail_from(exc, "list instances")
    module.exit(instances=[summarize_instance(i) for i in instances])


if __name__ == "__main__":
    main()
