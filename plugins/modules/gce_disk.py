#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: containarium.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: gce_disk
short_description: Manage Compute Engine zonal persistent disks
version_added: 0.1.0
description:
  - Creates, grows, labels and deletes a zonal persistent disk, and attaches snapshot schedules
    (resource policies) to it.
  - A disk can only grow; asking for a smaller size fails.
author: containarium.fleet contributors (@containarium)
extends_documentation_fragment:
  - containarium.fleet.gce
  - containarium.fleet.attributes
  - containarium.fleet.attributes.ACTIONGROUP_GCE
  - containarium.fleet.attributes.STATEFUL_MODULE
options:
  name:
    description: Disk name (RFC 1035).
    type: str
    required: true
  zone:
    description: Zone of the disk.
    type: str
    required: true
  state:
    description: Whether the disk exists. Deleting a disk attached to an instance fails with the API's reason.
    type: str
    choices: [present, absent]
    default: present
  size_gb:
    description: Size in GB. Required to create unless O(source_image) or O(source_snapshot) is set; grows an existing disk.
    type: int
  type:
    description: Disk type (create only).
    type: str
    default: pd-balanced
  source_image:
    description: Image to create the disk from (create only).
    type: str
  source_snapshot:
    description: Snapshot name or URL to create the disk from (create only).
    type: str
  labels:
    description: Labels (the complete set when set).
    type: dict
  resource_policies:
    description:
      - Names of resource policies (snapshot schedules, see M(containarium.fleet.gce_snapshot_schedule)) in the
        disk's region attached to the disk (the complete list when set).
    type: list
    elements: str
"""

EXAMPLES = r"""
- name: The data disk of a jump server, snapshotted daily
  containarium.fleet.gce_disk:
    project: my-project
    zone: us-central1-a
    name: jump-1-incus
    size_gb: 200
    labels: {fleet-role: jump}
    resource_policies: [daily-30d]
  delegate_to: localhost
"""

RETURN = r"""
disk:
  description: The disk after the task (before it, for O(state=absent)); empty when it does not exist.
  returned: always
  type: dict
  contains:
    name: {description: Disk name., type: str, returned: success}
    zone: {description: Zone name., type: str, returned: success}
    size_gb: {description: Size in GB., type: int, returned: success}
    type: {description: Disk type name., type: str, returned: success}
    status: {description: "Disk status (READY, ...).", type: str, returned: success}
    labels: {description: Labels., type: dict, returned: success}
    resource_policies: {description: Attached resource policy names., type: list, elements: str, returned: success}
    users: {description: Instances using the disk (names)., type: list, elements: str, returned: success}
    self_link: {description: URL of the disk., type: str, returned: success}
"""

from ansible_collections.containarium.fleet.plugins.module_utils.gce import (
    GceModule,
    GceResourceTask,
    region_of,
    resource_name,
)


class DiskTask(GceResourceTask):
    kind = "disk"

    def __init__(self, module):
        super().__init__(module)
        self.zone = self.params["zone"]
        self.path = "zones/%s/disks/%s" % (self.zone, self.name)
        self.collection = "zones/%s/disks" % self.zone
        self.action = "disk %s in %s" % (self.name, self.zone)

    def wanted(self):
        p = self.params
        fields = {}
        if p["size_gb"] is not None:
            fields["size_gb"] = p["size_gb"]
        if p["labels"] is not None:
            fields["labels"] = {k: str(v) for k, v in p["labels"].items()}
        if p["resource_policies"] is not None:
            fields["resource_policies"] = sorted(set(p["resource_policies"]))
        return fields

    def current(self, resource):
        summary = self.summarize(resource)
        return {key: summary[key] for key in ("size_gb", "labels", "resource_policies")}

    def summarize(self, resource):
        return {
            "name": resource.get("name"),
            "zone": resource_name(resource.get("zone")),
            "size_gb": int(resource.get("sizeGb") or 0),
            "type": resource_name(resource.get("type")),
            "status": resource.get("status"),
            "labels": resource.get("labels") or {},
            "resource_policies": sorted(resource_name(r) for r in resource.get("resourcePolicies") or []),
            "users": [resource_name(u) for u in resource.get("users") or []],
            "self_link": resource.get("selfLink"),
        }

    def validate_for_create(self):
        p = self.params
        if not (p["size_gb"] or p["source_image"] or p["source_snapshot"]):
            self.module.fail_json(msg="%s does not exist; creating it needs size_gb, source_image or source_snapshot" % self.action)

    def policy_path(self, name):
        return "projects/%s/regions/%s/resourcePolicies/%s" % (self.params["project"], region_of(self.zone), name)

    def insert_body(self):
        p = self.params
        body = {"name": self.name, "type": "projects/%s/zones/%s/diskTypes/%s" % (p["project"], self.zone, p["type"])}
        if p["size_gb"]:
            body["sizeGb"] = str(p["size_gb"])
        if p["source_image"]:
            body["sourceImage"] = p["source_image"]
        if p["source_snapshot"]:
            body["sourceSnapshot"] = p["source_snapshot"] if "/" in p["source_snapshot"] else \
                "projects/%s/global/snapshots/%s" % (p["project"], p["source_snapshot"])
        if p["labels"]:
            body["labels"] = self.wanted()["labels"]
        if p["resource_policies"]:
            body["resourcePolicies"] = [self.policy_path(name) for name in sorted(set(p["resource_policies"]))]
        return body

    def update(self, resource, old, new):
        m = self.module
        if "size_gb" in new:
            if new["size_gb"] < old["size_gb"]:
                m.fail_json(msg="%s is %s GB; a disk cannot shrink to %s GB" % (self.action, old["size_gb"], new["size_gb"]),
                            **m.result)
            m.mutate("POST", self.path + "/resize", body={"sizeGb": str(new["size_gb"])}, action="resize " + self.action)
        if "labels" in new:
            m.mutate("POST", self.path + "/setLabels",
                     body={"labels": new["labels"], "labelFingerprint": resource.get("labelFingerprint")},
                     action="set labels on " + self.action)
        if "resource_policies" in new or "resource_policies" in old:
            have = set(old.get("resource_policies") or [])
            want = set(new.get("resource_policies") or [])
            if have - want:
                m.mutate("POST", self.path + "/removeResourcePolicies",
                         body={"resourcePolicies": [self.policy_path(n) for n in sorted(have - want)]},
                         action="remove resource policies from " + self.action)
            if want - have:
                m.mutate("POST", self.path + "/addResourcePolicies",
                         body={"resourcePolicies": [self.policy_path(n) for n in sorted(want - have)]},
                         action="add resource policies to " + self.action)


def main():
    module = GceModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            zone=dict(type="str", required=True),
            state=dict(type="str", default="present", choices=["present", "absent"]),
            size_gb=dict(type="int"),
            type=dict(type="str", default="pd-balanced"),
            source_image=dict(type="str"),
            source_snapshot=dict(type="str"),
            labels=dict(type="dict"),
            resource_policies=dict(type="list", elements="str"),
        ),
        mutually_exclusive=[("source_image", "source_snapshot")],
    )
    module.require_valid_name(module.params["name"], "disk")
    DiskTask(module).run()


if __name__ == "__main__":
    main()
