#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: containarium.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: gce_snapshot_schedule
short_description: Manage Compute Engine snapshot schedules (snapshotSchedulePolicy resource policies)
version_added: 0.1.0
description:
  - Manages a regional resource policy with a daily snapshot schedule and a retention in days.
  - Attach it to disks with the O(containarium.fleet.gce_disk#module:resource_policies) option of
    M(containarium.fleet.gce_disk).
  - Resource policies cannot change in place; a different schedule on an existing policy fails with the
    differences (detach, delete and recreate it to change it).
author: containarium.fleet contributors (@containarium)
extends_documentation_fragment:
  - containarium.fleet.gce
  - containarium.fleet.attributes
  - containarium.fleet.attributes.ACTIONGROUP_GCE
  - containarium.fleet.attributes.STATEFUL_MODULE
options:
  name:
    description: Policy name (RFC 1035).
    type: str
    required: true
  region:
    description: Region of the policy (the region of the disks it applies to).
    type: str
    required: true
  state:
    description: Whether the policy exists. Deleting a policy still attached to a disk fails with the API's reason.
    type: str
    choices: [present, absent]
    default: present
  days_in_cycle:
    description: Take a snapshot every this many days.
    type: int
    default: 1
  start_time:
    description: UTC start of the snapshot window, C(HH:00).
    type: str
    default: "04:00"
  retention_days:
    description: Delete scheduled snapshots after this many days.
    type: int
    default: 30
  on_source_disk_delete:
    description: What happens to scheduled snapshots when the disk is deleted.
    type: str
    choices: [KEEP_AUTO_SNAPSHOTS, APPLY_RETENTION_POLICY]
    default: KEEP_AUTO_SNAPSHOTS
  snapshot_labels:
    description: Labels put on every scheduled snapshot.
    type: dict
  storage_locations:
    description: Where scheduled snapshots are stored.
    type: list
    elements: str
  description:
    description: Description of the policy.
    type: str
"""

EXAMPLES = r"""
- name: Daily snapshots kept 30 days
  containarium.fleet.gce_snapshot_schedule:
    project: my-project
    region: us-central1
    name: daily-30d
    start_time: "04:00"
    retention_days: 30
  delegate_to: localhost
"""

RETURN = r"""
snapshot_schedule:
  description: The policy after the task (before it, for O(state=absent)); empty when it does not exist.
  returned: always
  type: dict
  contains:
    name: {description: Policy name., type: str, returned: success}
    region: {description: Region name., type: str, returned: success}
    days_in_cycle: {description: Days between snapshots., type: int, returned: success}
    start_time: {description: UTC start of the window., type: str, returned: success}
    retention_days: {description: Retention in days., type: int, returned: success}
    on_source_disk_delete: {description: Behaviour when the disk is deleted., type: str, returned: success}
    snapshot_labels: {description: Labels of scheduled snapshots., type: dict, returned: success}
    status: {description: Policy status., type: str, returned: success}
    self_link: {description: URL of the policy., type: str, returned: success}
"""

import re

from ansible_collections.containarium.fleet.plugins.module_utils.gce import (
    GceModule,
    GceResourceTask,
    given,
    resource_name,
)

MANAGED = ("days_in_cycle", "start_time", "retention_days", "on_source_disk_delete", "snapshot_labels", "description")


class ScheduleTask(GceResourceTask):
    kind = "snapshot_schedule"

    def __init__(self, module):
        super().__init__(module)
        self.path = "regions/%s/resourcePolicies/%s" % (self.params["region"], self.name)
        self.collection = "regions/%s/resourcePolicies" % self.params["region"]
        self.action = "snapshot schedule %s in %s" % (self.name, self.params["region"])

    def wanted(self):
        fields = given(self.params, *MANAGED)
        if "snapshot_labels" in fields:
            fields["snapshot_labels"] = {k: str(v) for k, v in fields["snapshot_labels"].items()}
        return fields

    def current(self, resource):
        return {key: value for key, value in self.summarize(resource).items() if key in MANAGED}

    def summarize(self, resource):
        policy = resource.get("snapshotSchedulePolicy") or {}
        daily = (policy.get("schedule") or {}).get("dailySchedule") or {}
        retention = policy.get("retentionPolicy") or {}
        properties = policy.get("snapshotProperties") or {}
        return {
            "name": resource.get("name"),
            "region": resource_name(resource.get("region")),
            "days_in_cycle": daily.get("daysInCycle"),
            "start_time": daily.get("startTime"),
            "retention_days": retention.get("maxRetentionDays"),
            "on_source_disk_delete": retention.get("onSourceDiskDelete"),
            "snapshot_labels": properties.get("labels") or {},
            "description": resource.get("description"),
            "status": resource.get("status"),
            "self_link": resource.get("selfLink"),
        }

    def insert_body(self):
        p = self.params
        properties = {}
        if p["snapshot_labels"]:
            properties["labels"] = self.wanted()["snapshot_labels"]
        if p["storage_locations"]:
            properties["storageLocations"] = p["storage_locations"]
        body = {
            "name": self.name,
            "region": "projects/%s/regions/%s" % (p["project"], p["region"]),
            "snapshotSchedulePolicy": {
                "schedule": {"dailySchedule": {"daysInCycle": p["days_in_cycle"], "startTime": p["start_time"]}},
                "retentionPolicy": {"maxRetentionDays": p["retention_days"],
                                    "onSourceDiskDelete": p["on_source_disk_delete"]},
            },
        }
        if properties:
            body["snapshotSchedulePolicy"]["snapshotProperties"] = properties
        if p["description"]:
            body["description"] = p["description"]
        return body


def main():
    module = GceModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            region=dict(type="str", required=True),
            state=dict(type="str", default="present", choices=["present", "absent"]),
            days_in_cycle=dict(type="int", default=1),
            start_time=dict(type="str", default="04:00"),
            retention_days=dict(type="int", default=30),
            on_source_disk_delete=dict(type="str", default="KEEP_AUTO_SNAPSHOTS",
                                       choices=["KEEP_AUTO_SNAPSHOTS", "APPLY_RETENTION_POLICY"]),
            snapshot_labels=dict(type="dict"),
            storage_locations=dict(type="list", elements="str"),
            description=dict(type="str"),
        ),
    )
    module.require_valid_name(module.params["name"], "resource policy")
    p = module.params
    if not re.match(r"^([01][0-9]|2[0-3]):00$", p["start_time"]):
        module.fail_json(msg="start_time must be a full UTC hour HH:00, not %r" % p["start_time"])
    if p["days_in_cycle"] < 1 or p["retention_days"] < 1:
        module.fail_json(msg="days_in_cycle and retention_days must be at least 1")
    ScheduleTask(module).run()


if __name__ == "__main__":
    main()
