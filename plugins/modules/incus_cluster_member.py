#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: containarium.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: incus_cluster_member
short_description: Evacuate and restore an Incus cluster member; set its groups, failure domain and description
version_added: 0.1.0
description:
  - Manages one existing member of an Incus cluster (M(containarium.fleet.incus_cluster) adds and removes members).
  - V(state=evacuated) moves the member's instances to other members (Incus chooses where, following
    each instance's C(cluster.evacuate) setting or O(evacuate_mode)) and keeps new ones off it;
    V(state=online) restores an evacuated member, which brings its instances back.
  - O(groups), O(failure_domain), O(description) and O(config) are set when given and left alone when omitted.
    Cluster groups that do not exist yet are created (C(@group) placement targets them).
options:
  name:
    description:
      - Member name.
    type: str
    required: true
  state:
    description:
      - V(evacuated) or V(online) (restored). Omit to leave the member's evacuation state alone.
    type: str
    choices: [online, evacuated]
  evacuate_mode:
    description:
      - How instances leave on evacuation, overriding their C(cluster.evacuate) setting.
      - V(auto) migrates what can move and stops the rest; V(stop) stops them in place; V(migrate) cold-migrates;
        V(live-migrate) live-migrates (virtual machines).
    type: str
    choices: [auto, stop, migrate, live-migrate]
  groups:
    description:
      - Cluster groups the member belongs to, as a whole list (every member is in at least one group).
    type: list
    elements: str
  failure_domain:
    description:
      - Failure domain (for example the GCE zone) used to spread database roles.
    type: str
  description:
    description:
      - Free-text description.
    type: str
  config:
    description:
      - Member configuration keys (C(scheduler.instance), C(user.*)...); only the keys given are managed.
    type: dict
  wait_timeout:
    description:
      - Deadline in seconds for an evacuation or restore (it moves every instance of the member).
    type: int
    default: 900
extends_documentation_fragment:
  - containarium.fleet.incus
  - containarium.fleet.attributes
  - containarium.fleet.attributes.ACTIONGROUP_INCUS
  - containarium.fleet.attributes.STATEFUL_MODULE
seealso:
  - module: containarium.fleet.incus_cluster
  - module: containarium.fleet.incus_cluster_info
author:
  - containarium.fleet contributors (@containarium)
"""

EXAMPLES = r"""
- name: Move every container off backend-2 before maintenance
  containarium.fleet.incus_cluster_member:
    endpoint: https://10.0.3.10:8443
    name: backend-2
    state: evacuated
  delegate_to: localhost

- name: Bring it back
  containarium.fleet.incus_cluster_member:
    endpoint: https://10.0.3.10:8443
    name: backend-2
    state: online
  delegate_to: localhost

- name: Zone and group, for @group placement
  containarium.fleet.incus_cluster_member:
    endpoint: https://10.0.3.10:8443
    name: backend-3
    failure_domain: europe-west1-b
    groups: [default, spot]
  delegate_to: localhost
"""

RETURN = r"""
member:
  description: The member after the change (as it is under C(--check)).
  returned: always
  type: dict
  contains:
    server_name:
      description: Member name.
      type: str
    status:
      description: C(Online), C(Evacuated), C(Offline)...
      type: str
    message:
      description: Status message.
      type: str
    roles:
      description: Database roles.
      type: list
      elements: str
    groups:
      description: Cluster groups.
      type: list
      elements: str
    failure_domain:
      description: Failure domain.
      type: str
    description:
      description: Description.
      type: str
    config:
      description: Member configuration.
      type: dict
    instances:
      description: Names of the instances located on the member (all projects).
      type: list
      elements: str
"""

from ansible_collections.containarium.fleet.plugins.module_utils.fleet_module import FleetError, FleetModule
from ansible_collections.containarium.fleet.plugins.module_utils.incus import (
    ClusterApi,
    connect,
    connection_argument_spec,
)

_FIELDS = ("server_name", "url", "status", "message", "roles", "groups", "failure_domain", "description", "config")


def argument_spec():
    spec = connection_argument_spec()
    spec.update(
        name=dict(type="str", required=True),
        state=dict(type="str", choices=["online", "evacuated"]),
        evacuate_mode=dict(type="str", choices=["auto", "stop", "migrate", "live-migrate"]),
        groups=dict(type="list", elements="str"),
        failure_domain=dict(type="str"),
        description=dict(type="str"),
        config=dict(type="dict"),
        wait_timeout=dict(type="int", default=900),
    )
    return spec


def wanted_fields(module, member):
    """The writable fields to change: ``(before, after)`` of those that differ."""
    params = module.params
    before, after = {}, {}
    for field in ("groups", "failure_domain", "description"):
        if params[field] is not None and member.get(field) != params[field]:
            before[field], after[field] = member.get(field), params[field]
    if params["config"] is not None:
        want = {key: str(value) for key, value in params["config"].items()}
        have = member.get("config") or {}
        if any(have.get(k) != v for k, v in want.items()):
            before["config"] = {k: have.get(k) for k in want if have.get(k) != want[k]}
            after["config"] = dict(have, **want)
    return before, after


def main():
    module = FleetModule(argument_spec())
    params = module.params
    name = params["name"]
    module.require_valid_name(name, "cluster member")
    for group in params["groups"] or []:
        module.require_valid_name(group, "cluster group")
    if params["groups"] is not None and not params["groups"]:
        module.fail_json(msg="groups must name at least one cluster group (every member is in one)")
    api = ClusterApi(connect(module))
    try:
        member = api.member(name)
        if member is None:
            known = sorted(m["server_name"] for m in api.members()) if api.state().get("enabled") else []
            module.fail_json(msg="cluster member %s does not exist (members: %s)" % (name, ", ".join(known) or "none"))
        before, after = wanted_fields(module, member)
        if after:
            module.mark_changed()
            module.add_diff(before, {k: v if k != "config" else {c: after["config"][c] for c in before["config"]}
                                     for k, v in after.items()})
            if not module.check_mode:
                if "groups" in after:
                    for group in sorted(set(after["groups"]) - set(api.groups())):
                        api.create_group(group)
                api.update_member(name, after)
        evacuated = member.get("status") == "Evacuated"
        action = {"evacuated": "evacuate", "online": "restore"}.get(params["state"])
        if action and evacuated != (params["state"] == "evacuated"):
            module.mark_changed()
            module.add_diff({"status": member.get("status")}, {"status": "Evacuated" if action == "evacuate" else "Online"})
            if not module.check_mode:
                api.change_member_state(name, action, params["wait_timeout"], mode=params["evacuate_mode"])
        current = member if module.check_mode else api.member(name)
        result = {field: current.get(field) for field in _FIELDS}
        result["instances"] = sorted(api.instances_by_member().get(name, []))
    except FleetError as exc:
        module.fail_from(exc, "manage cluster member %s" % name)
    module.exit(member=result)


if __name__ == "__main__":
    main()
