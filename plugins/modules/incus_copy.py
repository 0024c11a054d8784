#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: containarium.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: incus_copy
short_description: Copy an Incus instance to another Incus server, or refresh that copy
version_added: 0.1.0
description:
  - Copies instance O(name) from the source server (the connection options) to the server at
    O(target_endpoint), like C(incus copy --mode push [--refresh]).
  - Push mode. The target server opens a migration sink and the source server connects to it, so the
    source may be a local unix socket and only the target needs an HTTPS address reachable from the source.
  - Without O(refresh), an existing copy on the target is left alone (no change).
  - With O(refresh=true), an existing copy is brought up to date incrementally (files written since the
    last copy, new snapshots). Incus cannot tell in advance whether anything differs, so a refresh is
    always run and always reports a change; a missing copy is created as with O(refresh=false).
  - The copy on the target is not started. A copy that fails on a target that did not have the
    instance before is deleted.
options:
  name:
    description:
      - Source instance name.
    type: str
    required: true
  target_name:
    description:
      - Name of the copy on the target server. Defaults to O(name).
    type: str
  refresh:
    description:
      - Refresh an existing copy incrementally (see the description for how changes are reported).
    type: bool
    default: false
  instance_only:
    description:
      - Copy the instance without its snapshots.
    type: bool
    default: false
  target_endpoint:
    description:
      - HTTPS address of the target server, V(https://host:8443), reachable from the source server.
    type: str
    required: true
  target_client_cert:
    description:
      - Path to the PEM client certificate the target server trusts.
    type: path
    required: true
  target_client_key:
    description:
      - Path to the PEM private key of O(target_client_cert).
    type: path
    required: true
  target_server_cert:
    description:
      - Path to the PEM certificate of the target server (pinned by fingerprint).
    type: path
  target_verify:
    description:
      - Check the target server certificate against the system CAs when O(target_server_cert) is not given.
    type: bool
    default: true
  target_project:
    description:
      - Incus project on the target server.
    type: str
    default: default
  wait_timeout:
    description:
      - Deadline in seconds for the whole transfer.
    type: int
    default: 600
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
    details: With O(refresh=true) every run refreshes and reports a change.
seealso:
  - module: containarium.fleet.incus_instance
  - module: containarium.fleet.incus_snapshot
author:
  - containarium.fleet contributors (@containarium)
"""

EXAMPLES = r"""
- name: Standby copy of a user container on the other jump server, refreshed every run
  containarium.fleet.incus_copy:
    name: alice-dev
    refresh: true
    target_endpoint: https://10.0.0.6:8443
    target_client_cert: /etc/fleet/incus-client.crt
    target_client_key: /etc/fleet/incus-client.key
    target_server_cert: /etc/fleet/jump-2.crt
  delegate_to: jump-1
"""

RETURN = r"""
target_instance:
  description: What was done.
  returned: always
  type: dict
  contains:
    name:
      description: Name of the copy on the target.
      type: str
    action:
      description: V(created), V(refreshed) or V(none) (the copy existed and O(refresh) was off).
      type: str
    target_endpoint:
      description: Target server.
      type: str
"""

from ansible_collections.containarium.fleet.plugins.module_utils.fleet_module import FleetError, FleetModule
from ansible_collections.containarium.fleet.plugins.module_utils.incus import connect, connection_argument_spec

# Copied with the instance; volatile keys describe the source's runtime and are regenerated on the target.
INSTANCE_FIELDS = ("architecture", "config", "devices", "ephemeral", "profiles", "description", "type")


def copy_body(source, target_name, refresh, instance_only):
    body = {key: source[key] for key in INSTANCE_FIELDS if key in source}
    body["config"] = {k: v for k, v in source["config"].items()
                      if not k.startswith("volatile.") or k == "volatile.base_image"}
    body["name"] = target_name
    body["source"] = {"type": "migration", "mode": "push", "refresh": refresh, "instance_only": instance_only}
    return body


def push(source_client, target_client, source, target_name, params):
    """Open the sink on the target, have the source push into it, wait for both ends."""
    timeout = params["wait_timeout"]
    sink = target_client.request("post", "instances", body=copy_body(
        source, target_name, params["refresh"], params["instance_only"])).json()
    sink_op = sink["metadata"]
    migrate = {
        "migration": True,
        "live": False,
        "instance_only": params["instance_only"],
        "target": {
            "certificate": target_client.server_info["environment"]["certificate"],
            "operation": "%s/1.0/operations/%s" % (params["target_endpoint"].rstrip("/"), sink_op["id"]),
            "secrets": sink_op["metadata"],
        },
    }
    try:
        source_client.call("post", "instances/%s" % source["name"], body=migrate, timeout=timeout)
    except FleetError as exc:
        # Cancel the sink, or it keeps waiting for a source that will not come; best effort, the
        # migration error is the one to report.
        try:
            target_client.request("delete", "operations/%s" % sink_op["id"])
        except FleetError:
            pass
        raise exc
    target_client.wait_operation(sink_op["id"], timeout)


def run(module):
    params = module.params
    module.require_valid_name(params["name"], "instance")
    target_name = params["target_name"] or params["name"]
    module.require_valid_name(target_name, "instance")
    if not params["target_endpoint"].startswith("https://"):
        module.fail_json(msg="target_endpoint must be an https:// address reachable from the source server")
    source_client = connect(module)
    target_client = connect(module, prefix="target_")
    action = "copy instance %s to %s" % (params["name"], params["target_endpoint"])
    try:
        source = source_client.instance(params["name"])
        if source is None:
            raise FleetError("instance %s does not exist on %s" % (params["name"], params["endpoint"]))
        existing = target_client.instance(target_name)
        if existing is not None and not params["refresh"]:
            return module.exit(target_instance={"name": target_name, "action": "none", "target_endpoint": params["target_endpoint"]})
        what = "refreshed" if existing is not None else "created"
        module.mark_changed()
        module.add_diff({"copy": target_name if existing else None}, {"copy": target_name, "action": what})
        if not module.check_mode:
            try:
                push(source_client, target_client, source, target_name, params)
            except FleetError as exc:
                if existing is None and target_client.instance(target_name) is not None:
                    target_client.delete_instance(target_name, params["wait_timeout"])
                    exc.message += "; the partial copy on the target was deleted"
                raise
        module.exit(target_instance={"name": target_name, "action": what, "target_endpoint": params["target_endpoint"]})
    except FleetError as exc:
        module.fail_from(exc, action)


def main():
    argument_spec = connection_argument_spec()
    argument_spec.update(
        name=dict(type="str", required=True),
        target_name=dict(type="str"),
        refresh=dict(type="bool", default=False),
        instance_only=dict(type="bool", default=False),
        target_endpoint=dict(type="str", required=True),
        target_client_cert=dict(type="path", required=True),
        target_client_key=dict(type="path", required=True, no_log=True),
        target_server_cert=dict(type="path"),
        target_verify=dict(type="bool", default=True),
        target_project=dict(type="str", default="default"),
        wait_timeout=dict(type="int", default=600),
    )
    run(FleetModule(argument_spec))


if __name__ == "__main__":
    main()
