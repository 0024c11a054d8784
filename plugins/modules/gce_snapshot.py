#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: containarium.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: gce_snapshot
short_description: Take, label and delete Compute Engine disk snapshots
version_added: 0.1.0
description:
  - Takes a snapshot of a zonal persistent disk under a given name (once; an existing snapshot of that
    name is kept as it is), updates its labels, or deletes it.
  - Scheduled snapshots come from M(containarium.fleet.gce_snapshot_schedule) attached to the disk.
author: containarium.fleet contributors (@containarium)
extends_documentation_fragment:
  - containarium.fleet.gce
  - containarium.fleet.attributes
  - containarium.fleet.attributes.ACTIONGROUP_GCE
  - containarium.fleet.attributes.STATEFUL_MODULE
options:
  name:
    description: Snapshot name (RFC 1035).
    type: str
    required: true
  state:
    description: Whether the snapshot exists.
    type: str
    choices: [present, absent]
    default: present
  source_disk:
    description: Name of the disk to snapshot. Required to create.
    type: str
  zone:
    description: Zone of O(source_disk). Required to create.
    type: str
  labels:
    description: Labels of the snapshot (the complete set when set).
    type: dict
  storage_locations:
    description: Multi-region or region to store the snapshot in (create only).
    type: list
    elements: str
"""

EXAMPLES = r"""
- name: Snapshot a jump server's data disk before resizing it
  containarium.fleet.gce_snapshot:
    project: my-project
    name: jump-1-incus-before-resize
    source_disk: jump-1-incus
    zone: us-central1-a
    labels: {reason: resize}
  delegate_to: localhost
"""

RETURN = r"""
snapshot:
  description: The snapshot after the task (before it, for O(state=absent)); empty when it does not exist.
  returned: always
  type: dict
  contains:
    name: {description: Snapshot name., type: str, returned: success}
    source_disk: {description: Name of the source disk., type: str, returned: success}
    disk_size_gb: {description: Size of the source disk in GB., type: int, returned: success}
    status: {description: "Snapshot status (READY, CREATING, ...).", type: str, returned: success}
    labels: {description: Labels., type: dict, returned: success}
    storage_locations: {description: Where the snapshot is stored., type: list, elements: str, returned: success}
    self_link: {description: URL of the snapshot., type: str, returned: success}
"""

from ansible_collections.containarium.fleet.plugins.module_utils.gce import (
    GceModule,
    GceResourceTask,
    resource_name,
)


class SnapshotTask(GceResourceTask):
    kind = "snapshot"
    required_to_create = ("source_disk", "zone")

    def __init__(self, module):
        super().__init__(module)
        self.path = "global/snapshots/%s" % self.name
        # disks.createSnapshot: the source disk is in the URL, the snapshot resource in the body.
        self.collection = "zones/%s/disks/%s/createSnapshot" % (self.params["zone"], self.params["source_disk"])

    def wanted(self):
        labels = self.params["labels"]
        return {} if labels is None else {"labels": {k: str(v) for k, v in labels.items()}}

    def current(self, resource):
        return {"labels": resource.get("labels") or {}}

    def summarize(self, resource):
        return {
            "name": resource.get("name"),
            "source_disk": resource_name(resource.get("sourceDisk")),
            "disk_size_gb": int(resource.get("diskSizeGb") or 0),
            "status": resource.get("status"),
            "labels": resource.get("labels") or {},
            "storage_locations": resource.get("storageLocations") or [],
            "self_link": resource.get("selfLink"),
        }

    def insert_body(self):
        p = self.params
        body = {"name": self.name}
        if p["labels"]:
            body["labels"] = self.wanted()["labels"]
        if p["storage_locations"]:
            body["storageLocations"] = p["storage_locations"]
        return body

    def update(self, resource, old, new):
        self.module.mutate("POST", "global/snapshots/%s/setLabels" % self.name,
                           body={"labels": new["labels"], "labelFingerprint": resource.get("labelFingerprint")},
                           action="set labels on " + self.action)


def main():
    module = GceModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            state=dict(type="str", default="present", choices=["present", "absent"]),
            source_disk=dict(type="str"),
            zone=dict(type="str"),
            labels=dict(type="dict"),
            storage_locations=dict(type="list", elements="str"),
        ),
    )
    module.require_valid_name(module.params["name"], "snapshot")
    SnapshotTask(module).run()


if __name__ == "__main__":
    main()
