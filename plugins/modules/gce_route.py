#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: containarium.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: gce_route
short_description: Manage Compute Engine VPC routes (next hop an instance or an IP)
version_added: 0.1.0
description:
  - Creates and deletes a VPC route, for example the container subnet of a backend (10.0.4.0/24)
    routed to that backend instance, so the central jump server reaches its containers.
  - Routes cannot change in place; with O(replace=true) a route that differs is deleted and created
    again, otherwise the task fails with the differences.
author: containarium.fleet contributors (@containarium)
extends_documentation_fragment:
  - containarium.fleet.gce
  - containarium.fleet.attributes
  - containarium.fleet.attributes.ACTIONGROUP_GCE
  - containarium.fleet.attributes.STATEFUL_MODULE
options:
  name:
    description: Route name (RFC 1035).
    type: str
    required: true
  state:
    description: Whether the route exists.
    type: str
    choices: [present, absent]
    default: present
  network:
    description: VPC network name or URL.
    type: str
    default: default
  dest_range:
    description: Destination CIDR range. Required to create.
    type: str
  next_hop_instance:
    description: Name of the instance traffic goes to. One of O(next_hop_instance) and O(next_hop_ip) is required to create.
    type: str
  next_hop_instance_zone:
    description: Zone of O(next_hop_instance).
    type: str
  next_hop_ip:
    description: Internal IP address traffic goes to.
    type: str
  priority:
    description: Route priority (lower wins).
    type: int
    default: 1000
  tags:
    description: Only instances with one of these network tags use the route (all when empty).
    type: list
    elements: str
  description:
    description: Description of the route.
    type: str
  replace:
    description: Delete and recreate a route whose fields differ (routes have no update call).
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Containers of backend-2 are reached through backend-2
  containarium.fleet.gce_route:
    project: my-project
    name: containers-backend-2
    dest_range: 10.0.4.0/24
    next_hop_instance: backend-2
    next_hop_instance_zone: us-central1-a
    tags: [jump]
  delegate_to: localhost
"""

RETURN = r"""
route:
  description: The route after the task (before it, for O(state=absent)); empty when it does not exist.
  returned: always
  type: dict
  contains:
    name: {description: Route name., type: str, returned: success}
    network: {description: Network name., type: str, returned: success}
    dest_range: {description: Destination range., type: str, returned: success}
    next_hop_instance: {description: Next-hop instance name or null., type: str, returned: success}
    next_hop_instance_zone: {description: Zone of the next-hop instance or null., type: str, returned: success}
    next_hop_ip: {description: Next-hop IP or null., type: str, returned: success}
    priority: {description: Priority., type: int, returned: success}
    tags: {description: Network tags the route applies to., type: list, elements: str, returned: success}
    description: {description: Description., type: str, returned: success}
    self_link: {description: URL of the route., type: str, returned: success}
"""

from ansible_collections.containarium.fleet.plugins.module_utils.gce import (
    GceModule,
    GceResourceTask,
    given,
    resource_name,
)

MANAGED = ("network", "dest_range", "next_hop_instance", "next_hop_instance_zone", "next_hop_ip", "priority",
           "tags", "description")


class RouteTask(GceResourceTask):
    kind = "route"
    required_to_create = ("dest_range",)

    def __init__(self, module):
        super().__init__(module)
        self.path = "global/routes/%s" % self.name
        self.collection = "global/routes"

    def wanted(self):
        fields = given(self.params, *MANAGED)
        fields["network"] = resource_name(fields["network"])
        if "tags" in fields:
            fields["tags"] = sorted(set(fields["tags"]))
        return fields

    def current(self, resource):
        return self.summarize(resource)

    def summarize(self, resource):
        hop = resource.get("nextHopInstance")
        return {
            "name": resource.get("name"),
            "network": resource_name(resource.get("network")),
            "dest_range": resource.get("destRange"),
            "next_hop_instance": resource_name(hop) if hop else None,
            "next_hop_instance_zone": hop.split("/zones/", 1)[1].split("/", 1)[0] if hop and "/zones/" in hop else None,
            "next_hop_ip": resource.get("nextHopIp"),
            "priority": resource.get("priority"),
            "tags": sorted(resource.get("tags") or []),
            "description": resource.get("description"),
            "self_link": resource.get("selfLink"),
        }

    def validate_for_create(self):
        super().validate_for_create()
        p = self.params
        if bool(p["next_hop_instance"]) == bool(p["next_hop_ip"]):
            self.module.fail_json(msg="%s does not exist; creating it needs exactly one of next_hop_instance and next_hop_ip" % self.action)
        if p["next_hop_instance"] and not p["next_hop_instance_zone"]:
            self.module.fail_json(msg="next_hop_instance needs next_hop_instance_zone")

    def insert_body(self):
        p = self.params
        body = {
            "name": self.name,
            "network": p["network"] if "/" in p["network"] else "projects/%s/global/networks/%s" % (p["project"], p["network"]),
            "destRange": p["dest_range"],
            "priority": p["priority"],
        }
        if p["next_hop_instance"]:
            body["nextHopInstance"] = "projects/%s/zones/%s/instances/%s" % (
                p["project"], p["next_hop_instance_zone"], p["next_hop_instance"])
        else:
            body["nextHopIp"] = p["next_hop_ip"]
        if p["tags"]:
            body["tags"] = sorted(set(p["tags"]))
        if p["description"]:
            body["description"] = p["description"]
        return body

    def update(self, resource, old, new):
        if not self.params["replace"]:
            super().update(resource, old, new)
        self.validate_for_create()
        self.module.mutate("DELETE", self.path, action="delete (to replace) " + self.action)
        self.module.insert(self.collection, self.insert_body(), self.path, "recreate " + self.action)


def main():
    module = GceModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            state=dict(type="str", default="present", choices=["present", "absent"]),
            network=dict(type="str", default="default"),
            dest_range=dict(type="str"),
            next_hop_instance=dict(type="str"),
            next_hop_instance_zone=dict(type="str"),
            next_hop_ip=dict(type="str"),
            priority=dict(type="int", default=1000),
            tags=dict(type="list", elements="str"),
            description=dict(type="str"),
            replace=dict(type="bool", default=False),
        ),
        mutually_exclusive=[("next_hop_instance", "next_hop_ip")],
        required_by={"next_hop_instance": "next_hop_instance_zone"},
    )
    module.require_valid_name(module.params["name"], "route")
    RouteTask(module).run()


if __name__ == "__main__":
    main()
