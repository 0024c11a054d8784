#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: containarium.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: gce_firewall
short_description: Manage Compute Engine VPC firewall rules
version_added: 0.1.0
description:
  - Creates, updates in place (PATCH) and deletes a VPC firewall rule, for example SSH from the jump
    servers to the backends by network tag.
author: containarium.fleet contributors (@containarium)
extends_documentation_fragment:
  - containarium.fleet.gce
  - containarium.fleet.attributes
  - containarium.fleet.attributes.ACTIONGROUP_GCE
  - containarium.fleet.attributes.STATEFUL_MODULE
options:
  name:
    description: Rule name (RFC 1035).
    type: str
    required: true
  state:
    description: Whether the rule exists.
    type: str
    choices: [present, absent]
    default: present
  network:
    description: VPC network name or URL (create only).
    type: str
    default: default
  direction:
    description: Traffic direction (create only).
    type: str
    choices: [INGRESS, EGRESS]
    default: INGRESS
  priority:
    description: Priority (0-65535, lower wins).
    type: int
    default: 1000
  allowed:
    description: Allowed protocols and ports. Exactly one of O(allowed) and O(denied) is required to create.
    type: list
    elements: dict
    suboptions:
      protocol:
        description: V(tcp), V(udp), V(icmp), V(all) or an IP protocol number.
        type: str
        required: true
      ports:
        description: Ports or ranges such as V(22) or V(8000-8080).
        type: list
        elements: str
  denied:
    description: Denied protocols and ports (same shape as O(allowed)).
    type: list
    elements: dict
    suboptions:
      protocol:
        description: V(tcp), V(udp), V(icmp), V(all) or an IP protocol number.
        type: str
        required: true
      ports:
        description: Ports or ranges.
        type: list
        elements: str
  source_ranges:
    description: Source CIDR ranges (INGRESS).
    type: list
    elements: str
  source_tags:
    description: Source network tags (INGRESS).
    type: list
    elements: str
  target_tags:
    description: Instances the rule applies to, by network tag (all instances when empty).
    type: list
    elements: str
  destination_ranges:
    description: Destination CIDR ranges (EGRESS).
    type: list
    elements: str
  description:
    description: Description of the rule.
    type: str
  disabled:
    description: Keep the rule but do not enforce it.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: SSH from jump servers to backends
  containarium.fleet.gce_firewall:
    project: my-project
    name: jump-to-backends-ssh
    allowed: [{protocol: tcp, ports: ["22"]}]
    source_tags: [jump]
    target_tags: [backend]
  delegate_to: localhost
"""

RETURN = r"""
firewall:
  description: The rule after the task (before it, for O(state=absent)); empty when it does not exist.
  returned: always
  type: dict
  contains:
    name: {description: Rule name., type: str, returned: success}
    network: {description: Network name., type: str, returned: success}
    direction: {description: Direction., type: str, returned: success}
    priority: {description: Priority., type: int, returned: success}
    allowed: {description: Allowed protocols and ports., type: list, elements: dict, returned: success}
    denied: {description: Denied protocols and ports., type: list, elements: dict, returned: success}
    source_ranges: {description: Source ranges., type: list, elements: str, returned: success}
    source_tags: {description: Source tags., type: list, elements: str, returned: success}
    target_tags: {description: Target tags., type: list, elements: str, returned: success}
    destination_ranges: {description: Destination ranges., type: list, elements: str, returned: success}
    description: {description: Description., type: str, returned: success}
    disabled: {description: Whether the rule is disabled., type: bool, returned: success}
    self_link: {description: URL of the rule., type: str, returned: success}
"""

from ansible_collections.containarium.fleet.plugins.module_utils.gce import (
    GceModule,
    GceResourceTask,
    given,
    resource_name,
)

LISTS = ("source_ranges", "source_tags", "target_tags", "destination_ranges")
API_NAMES = {"source_ranges": "sourceRanges", "source_tags": "sourceTags", "target_tags": "targetTags",
             "destination_ranges": "destinationRanges", "priority": "priority", "description": "description",
             "disabled": "disabled"}


def _rules(rules, protocol_key):
    """Protocol/port rules in one canonical order (API key IPProtocol or the option key protocol)."""
    return sorted(
        ({"protocol": r[protocol_key], "ports": sorted(r.get("ports") or [])} for r in rules or []),
        key=lambda r: (r["protocol"], r["ports"]),
    )


def _api_rules(rules):
    return [dict({"IPProtocol": r["protocol"]}, **({"ports": r["ports"]} if r["ports"] else {})) for r in rules]


class FirewallTask(GceResourceTask):
    kind = "firewall"

    def __init__(self, module):
        super().__init__(module)
        self.path = "global/firewalls/%s" % self.name
        self.collection = "global/firewalls"

    def wanted(self):
        fields = given(self.params, "priority", "description", "disabled", *LISTS)
        for key in LISTS:
            if key in fields:
                fields[key] = sorted(set(fields[key]))
        for key in ("allowed", "denied"):
            if self.params[key] is not None:
                fields[key] = _rules(self.params[key], "protocol")
        return fields

    def current(self, resource):
        return self.summarize(resource)

    def summarize(self, resource):
        summary = {
            "name": resource.get("name"),
            "network": resource_name(resource.get("network")),
            "direction": resource.get("direction"),
            "priority": resource.get("priority"),
            "allowed": _rules(resource.get("allowed"), "IPProtocol"),
            "denied": _rules(resource.get("denied"), "IPProtocol"),
            "description": resource.get("description"),
            "disabled": bool(resource.get("disabled")),
            "self_link": resource.get("selfLink"),
        }
        for key in LISTS:
            summary[key] = sorted(resource.get(API_NAMES[key]) or [])
        return summary

    def validate_for_create(self):
        if bool(self.params["allowed"]) == bool(self.params["denied"]):
            self.module.fail_json(msg="%s does not exist; creating it needs exactly one of allowed and denied" % self.action)

    def body(self, fields):
        body = {API_NAMES[key]: value for key, value in fields.items() if key in API_NAMES}
        for key in ("allowed", "denied"):
            if key in fields:
                body[key] = _api_rules(fields[key])
        return body

    def insert_body(self):
        p = self.params
        network = p["network"] if "/" in p["network"] else "projects/%s/global/networks/%s" % (p["project"], p["network"])
        return dict(self.body(self.wanted()), name=self.name, network=network, direction=p["direction"])

    def update(self, resource, old, new):
        # PATCH replaces exactly the fields it names: the ones that differ.
        self.module.mutate("PATCH", self.path, body=self.body(new), action="update " + self.action)


def main():
    rule = dict(protocol=dict(type="str", required=True), ports=dict(type="list", elements="str"))
    module = GceModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            state=dict(type="str", default="present", choices=["present", "absent"]),
            network=dict(type="str", default="default"),
            direction=dict(type="str", default="INGRESS", choices=["INGRESS", "EGRESS"]),
            priority=dict(type="int", default=1000),
            allowed=dict(type="list", elements="dict", options=rule),
            denied=dict(type="list", elements="dict", options=rule),
            source_ranges=dict(type="list", elements="str"),
            source_tags=dict(type="list", elements="str"),
            target_tags=dict(type="list", elements="str"),
            destination_ranges=dict(type="list", elements="str"),
            description=dict(type="str"),
            disabled=dict(type="bool", default=False),
        ),
        mutually_exclusive=[("allowed", "denied")],
    )
    module.require_valid_name(module.params["name"], "firewall rule")
    FirewallTask(module).run()


if __name__ == "__main__":
    main()
