#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: containarium.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: incus_snapshot
short_description: Create, expire, restore and delete snapshots of Incus instances
version_added: 0.1.0
description:
  - Manages one snapshot of an Incus instance.
  - V(present) creates it when missing; an existing snapshot is kept as it is, except that an explicit
    O(expires_at) different from the snapshot's is applied.
  - V(restored) puts the instance back to the snapshot. A restore cannot tell whether the instance
    changed since, so it always reports a change (like C(restarted) elsewhere).
options:
  instance:
    description:
      - Instance name.
    type: str
    required: true
  name:
    description:
      - Snapshot name.
    type: str
    required: true
  state:
    description:
      - Wanted state of the snapshot, or V(restored) to restore the instance from it (it must exist).
    type: str
    choices: [present, absent, restored]
    default: present
  expires_at:
    description:
      - Absolute expiry, RFC 3339 (V(2026-12-31T00:00:00Z)). Incus deletes the snapshot then.
    type: str
  expiry:
    description:
      - Expiry relative to creation time, a number followed by V(m), V(h), V(d) or V(w) (V(30d)).
      - Applied only when the snapshot is created (a relative time would change on every run).
    type: str
  stateful:
    description:
      - Also save the running state (memory). Needs CRIU on the host; off by default.
    type: bool
    default: false
  wait_timeout:
    description:
      - Deadline in seconds for the snapshot, restore or delete operation.
    type: int
    default: 120
extends_documentation_fragment:
  - containarium.fleet.incus
  - containarium.fleet.attributes
  - containarium.fleet.attributes.ACTIONGROUP_INCUS
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  idempotent:
    support: partial
    details: V(state=restored) always reports a change.
seealso:
  - module: containarium.fleet.incus_instance
author:
  - containarium.fleet contributors (@containarium)
"""

EXAMPLES = r"""
- name: Daily snapshot kept 30 days
  containarium.fleet.incus_snapshot:
    instance: alice-dev
    name: "daily-{{ now(utc=true, fmt='%Y%m%d') }}"
    expiry: 30d

- name: Roll back
  containarium.fleet.incus_snapshot:
    instance: alice-dev
    name: before-upgrade
    state: restored
"""

RETURN = r"""
snapshot:
  description: The snapshot (empty after V(state=absent); under check mode, what it would be).
  returned: always
  type: dict
  contains:
    name:
      description: Snapshot name.
      type: str
    created_at:
      description: Creation time (RFC 3339).
      type: str
    expires_at:
      description: Expiry time (RFC 3339), or null when it never expires.
      type: str
    stateful:
      description: Whether the running state was saved.
      type: bool
"""

import datetime

from ansible_collections.containarium.fleet.plugins.module_utils.fleet_module import FleetError, FleetModule
from ansible_collections.containarium.fleet.plugins.module_utils.incus import (
    connect,
    connection_argument_spec,
    parse_expiry,
)

NEVER = "0001-01-01T00:00:00Z"


def timestamp(value):
    """Seconds since the epoch of an RFC 3339 time, or None for "never"."""
    if not value or value.startswith("0001-01-01"):
        return None
    try:
        parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise FleetError("invalid expires_at %r: use RFC 3339, e.g. 2026-12-31T00:00:00Z" % value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.timezone.utc)
    # Incus keeps whole seconds; compare at that precision.
    return int(parsed.timestamp())


def view(snapshot):
    if not snapshot:
        return {}
    expires = snapshot.get("expires_at")
    return {
        "name": snapshot["name"],
        "created_at": snapshot.get("created_at"),
        "expires_at": None if timestamp(expires) is None else expires,
        "stateful": snapshot.get("stateful", False),
    }


def run(module):
    params = module.params
    instance, name, state = params["instance"], params["name"], params["state"]
    module.require_valid_name(instance, "instance")
    if not name or "/" in name:
        module.fail_json(msg="invalid snapshot name %r: it must be non-empty and contain no /" % (name,))
    try:
        wanted_expiry = timestamp(params["expires_at"]) if params["expires_at"] else None
        relative_expiry = parse_expiry(params["expiry"]) if params["expiry"] else None
    except FleetError as exc:
        module.fail_from(exc)
    client = connect(module)
    action = "%s snapshot %s/%s" % ({"present": "create", "absent": "delete", "restored": "restore"}[state],
                                    instance, name)
    try:
        if client.instance(instance) is None:
            raise FleetError("instance %s does not exist" % instance)
        current = client.snapshot(instance, name)
        path = "instances/%s/snapshots/%s" % (instance, name)
        if state == "absent":
            if current:
                module.mark_changed()
                module.add_diff({"snapshot": name}, {})
                if not module.check_mode:
                    client.call("delete", path, timeout=params["wait_timeout"])
            return module.exit(snapshot={})
        if state == "restored":
            if not current:
                raise FleetError("snapshot %s does not exist" % name)
            module.mark_changed()
            module.add_diff({}, {"restored_from": name})
            if not module.check_mode:
                client.call("put", "instances/%s" % instance, body={"restore": name}, timeout=params["wait_timeout"])
            return module.exit(snapshot=view(current))
        if current is None:
            expires_at = params["expires_at"] or relative_expiry
            module.mark_changed()
            module.add_diff({}, {"snapshot": name, "expires_at": expires_at})
            if module.check_mode:
                return module.exit(snapshot={"name": name, "created_at": None, "expires_at": expires_at,
                                             "stateful": params["stateful"]})
            body = {"name": name, "stateful": params["stateful"]}
            if expires_at:
                body["expires_at"] = expires_at
            client.call("post", "instances/%s/snapshots" % instance, body=body, timeout=params["wait_timeout"])
            return module.exit(snapshot=view(client.snapshot(instance, name)))
        if params["expires_at"] and timestamp(current.get("expires_at")) != wanted_expiry:
            module.mark_changed()
            module.add_diff({"expires_at": view(current)["expires_at"]}, {"expires_at": params["expires_at"]})
            if module.check_mode:
                return module.exit(snapshot=dict(view(current), expires_at=params["expires_at"]))
            client.call("patch", path, body={"expires_at": params["expires_at"]}, timeout=params["wait_timeout"])
            current = client.snapshot(instance, name)
        module.exit(snapshot=view(current))
    except FleetError as exc:
        module.fail_from(exc, action)


def main():
    argument_spec = connection_argument_spec()
    argument_spec.update(
        instance=dict(type="str", required=True),
        name=dict(type="str", required=True),
        state=dict(type="str", default="present", choices=["present", "absent", "restored"]),
        expires_at=dict(type="str"),
        expiry=dict(type="str"),
        stateful=dict(type="bool", default=False),
        wait_timeout=dict(type="int", default=120),
    )
    module = FleetModule(argument_spec, mutually_exclusive=[("expires_at", "expiry")])
    run(module)


if __name__ == "__main__":
    main()
