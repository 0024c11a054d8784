#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: containarium.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: gce_target_pool
short_description: Manage Compute Engine target pools (the back end of an L4 network load balancer)
version_added: 0.1.0
description:
  - Creates a regional target pool, keeps its member instances and its legacy HTTP health check in
    line with what is asked (addInstance/removeInstance, addHealthCheck/removeHealthCheck), sets its
    backup pool and failover ratio, and deletes it.
  - Used to put several SSH jump servers behind one address (a TCP 22 forwarding rule points at the pool).
author: containarium.fleet contributors (@containarium)
extends_documentation_fragment:
  - containarium.fleet.gce
  - containarium.fleet.attributes
  - containarium.fleet.attributes.ACTIONGROUP_GCE
  - containarium.fleet.attributes.STATEFUL_MODULE
options:
  name:
    description: Pool name (RFC 1035).
    type: str
    required: true
  region:
    description: Region of the pool.
    type: str
    required: true
  state:
    description: Whether the pool exists.
    type: str
    choices: [present, absent]
    default: present
  instances:
    description:
      - Member instances as V(zone/name) (the complete list when set); they must be in O(region).
    type: list
    elements: str
  health_check:
    description: Name of a legacy HTTP health check (C(httpHealthChecks)) of the project, or V("") for none.
    type: str
  backup_pool:
    description: Name of the backup target pool in the same region, or V("") for none.
    type: str
  failover_ratio:
    description: Ratio of healthy members under which traffic goes to O(backup_pool) (0.0 to 1.0).
    type: float
  session_affinity:
    description: How connections are spread (create only).
    type: str
    choices: [NONE, CLIENT_IP, CLIENT_IP_PROTO]
    default: NONE
  description:
    description: Description of the pool (create only).
    type: str
"""

EXAMPLES = r"""
- name: Jump servers behind one SSH address, sticky per client
  containarium.fleet.gce_target_pool:
    project: my-project
    region: us-central1
    name: jump-pool
    instances: [us-central1-a/jump-1, us-central1-b/jump-2]
    health_check: ssh-port-check
    session_affinity: CLIENT_IP
  delegate_to: localhost
"""

RETURN = r"""
target_pool:
  description: The pool after the task (before it, for O(state=absent)); empty when it does not exist.
  returned: always
  type: dict
  contains:
    name: {description: Pool name., type: str, returned: success}
    region: {description: Region name., type: str, returned: success}
    instances: {description: Members as zone/name., type: list, elements: str, returned: success}
    health_check: {description: Health check name or empty., type: str, returned: success}
    backup_pool: {description: Backup pool name or empty., type: str, returned: success}
    failover_ratio: {description: Failover ratio or null., type: float, returned: success}
    session_affinity: {description: Session affinity., type: str, returned: success}
    self_link: {description: URL of the pool., type: str, returned: success}
"""

from ansible_collections.containarium.fleet.plugins.module_utils.gce import (
    GceModule,
    GceResourceTask,
    given,
    resource_name,
)


def _zone_and_name(url):
    parts = url.rstrip("/").split("/")
    return "%s/%s" % (parts[-3], parts[-1])


class TargetPoolTask(GceResourceTask):
    kind = "target_pool"

    def __init__(self, module):
        super().__init__(module)
        self.region = self.params["region"]
        self.path = "regions/%s/targetPools/%s" % (self.region, self.name)
        self.collection = "regions/%s/targetPools" % self.region
        self.action = "target pool %s in %s" % (self.name, self.region)

    def wanted(self):
        fields = given(self.params, "instances", "health_check", "backup_pool", "failover_ratio", "session_affinity")
        if "instances" in fields:
            fields["instances"] = sorted(set(fields["instances"]))
        return fields

    def current(self, resource):
        return self.summarize(resource)

    def summarize(self, resource):
        checks = resource.get("healthChecks") or []
        return {
            "name": resource.get("name"),
            "region": resource_name(resource.get("region")),
            "instances": sorted(_zone_and_name(u) for u in resource.get("instances") or []),
            "health_check": resource_name(checks[0]) if checks else "",
            "backup_pool": resource_name(resource.get("backupPool")) or "",
            "failover_ratio": resource.get("failoverRatio"),
            "session_affinity": resource.get("sessionAffinity") or "NONE",
            "self_link": resource.get("selfLink"),
        }

    def instance_ref(self, member):
        zone, name = member.split("/", 1)
        return {"instance": "projects/%s/zones/%s/instances/%s" % (self.params["project"], zone, name)}

    def check_ref(self, name):
        return {"healthCheck": "projects/%s/global/httpHealthChecks/%s" % (self.params["project"], name)}

    def pool_ref(self, name):
        return "projects/%s/regions/%s/targetPools/%s" % (self.params["project"], self.region, name)

    def insert_body(self):
        p = self.params
        body = {"name": self.name, "sessionAffinity": p["session_affinity"],
                "region": "projects/%s/regions/%s" % (p["project"], self.region)}
        if p["instances"]:
            body["instances"] = [self.instance_ref(m)["instance"] for m in sorted(set(p["instances"]))]
        if p["health_check"]:
            body["healthChecks"] = [self.check_ref(p["health_check"])["healthCheck"]]
        if p["backup_pool"]:
            body["backupPool"] = self.pool_ref(p["backup_pool"])
        if p["failover_ratio"] is not None:
            body["failoverRatio"] = p["failover_ratio"]
        if p["description"]:
            body["description"] = p["description"]
        return body

    def update(self, resource, old, new):
        m = self.module
        if "session_affinity" in new:
            super().update(resource, {"session_affinity": old["session_affinity"]}, {"session_affinity": new["session_affinity"]})
        if "instances" in new:
            have, want = set(old["instances"]), set(new["instances"])
            if have - want:
                m.mutate("POST", self.path + "/removeInstance",
                         body={"instances": [self.instance_ref(x) for x in sorted(have - want)]},
                         action="remove instances from " + self.action)
            if want - have:
                m.mutate("POST", self.path + "/addInstance",
                         body={"instances": [self.instance_ref(x) for x in sorted(want - have)]},
                         action="add instances to " + self.action)
        if "health_check" in new:
            if old["health_check"]:
                m.mutate("POST", self.path + "/removeHealthCheck", body={"healthChecks": [self.check_ref(old["health_check"])]},
                         action="remove health check from " + self.action)
            if new["health_check"]:
                m.mutate("POST", self.path + "/addHealthCheck", body={"healthChecks": [self.check_ref(new["health_check"])]},
                         action="add health check to " + self.action)
        if "backup_pool" in new or "failover_ratio" in new:
            backup = self.params["backup_pool"]
            if backup is None:
                backup = self.summarize(resource)["backup_pool"]
            ratio = self.params["failover_ratio"]
            m.mutate("POST", self.path + "/setBackup",
                     body={"target": self.pool_ref(backup)} if backup else {},
                     params={"failoverRatio": ratio} if ratio is not None else None,
                     action="set backup pool of " + self.action)


def main():
    module = GceModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            region=dict(type="str", required=True),
            state=dict(type="str", default="present", choices=["present", "absent"]),
            instances=dict(type="list", elements="str"),
            health_check=dict(type="str"),
            backup_pool=dict(type="str"),
            failover_ratio=dict(type="float"),
            session_affinity=dict(type="str", default="NONE", choices=["NONE", "CLIENT_IP", "CLIENT_IP_PROTO"]),
            description=dict(type="str"),
        ),
        required_by={"failover_ratio": "backup_pool"},
    )
    p = module.params
    module.require_valid_name(p["name"], "target pool")
    for member in p["instances"] or []:
        zone, sep, name = member.partition("/")
        if not sep or not zone.startswith(p["region"] + "-"):
            module.fail_json(msg="instances entries are zone/name with the zone in region %s, not %r" % (p["region"], member))
        module.require_valid_name(name, "instance")
    if p["failover_ratio"] is not None and not 0.0 <= p["failover_ratio"] <= 1.0:
        module.fail_json(msg="failover_ratio must be between 0.0 and 1.0")
    TargetPoolTask(module).run()


if __name__ == "__main__":
    main()
