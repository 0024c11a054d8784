#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: containarium.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: incus_instance
short_description: Create, configure, start, stop, freeze and delete Incus instances
version_added: 0.1.0
description:
  - Manages one Incus instance (system container or virtual machine) through the Incus REST API.
  - Creates it from an image on the same server, reconfigures O(config), O(devices) and O(profiles) in
    place (volatile keys and keys you do not name are left alone), and drives its power state.
  - A create that fails half-way (start fails, no IPv4 address in time) deletes the instance it made.
options:
  name:
    description:
      - Instance name, an RFC 1035 label (lower-case letters, digits and hyphens, at most 63 characters).
    type: str
    required: true
  state:
    description:
      - V(started), V(stopped) and V(frozen) create the instance when it is missing.
      - V(restarted) restarts a running instance (starts a stopped one) and always reports a change.
      - V(absent) stops (forcefully) and deletes it.
    type: str
    choices: [started, stopped, restarted, frozen, absent]
    default: started
  type:
    description:
      - Instance type. When not given, V(container) on create; an existing instance of another type is
        an error only when O(type) is given.
    type: str
    choices: [container, virtual-machine]
  source:
    description:
      - Image alias or fingerprint on the same server, for example V(fleet-base). Required to create.
    type: str
  profiles:
    description:
      - Profiles, in order, compared as a whole list.
      - When not given, V([default]) on create, and an existing instance keeps its profiles.
    type: list
    elements: str
  config:
    description:
      - Instance configuration (C(limits.cpu), C(limits.memory), C(boot.autostart), C(user.*), ...).
      - Only the keys given are managed; values are compared as strings; C(volatile.*) keys are never compared.
    type: dict
    default: {}
  devices:
    description:
      - Devices by name; each named device is compared (and replaced) as a whole. Devices you do not name are kept.
    type: dict
    default: {}
  target:
    description:
      - Cluster member (V(backend-2)), or cluster group (V(@spot)), to create the instance on; sent as
        C(POST /1.0/instances?target=...). With a group, Incus's scheduler picks the least-loaded member of it.
      - Without it, Incus's scheduler picks among all the cluster's members. A standalone server refuses a target
        (C(Target only allowed when clustered)).
      - Only used on create; an existing instance is never moved.
    type: str
  wait_for_ipv4:
    description:
      - When the instance ends up running, wait until a non-loopback NIC has an IPv4 address.
    type: bool
    default: true
  wait_timeout:
    description:
      - Deadline in seconds for each API operation, a clean shutdown and the IPv4 wait.
      - When a create fails or passes this deadline, the module deletes what it created before failing; that
        clean-up first waits for a create still running (Incus refuses to delete it until then) and may take up
        to 600 seconds, or O(wait_timeout) if longer.
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
    details: V(state=restarted) always reports a change.
seealso:
  - module: containarium.fleet.incus_instance_info
  - module: containarium.fleet.incus_snapshot
author:
  - containarium.fleet contributors (@containarium)
"""

EXAMPLES = r"""
- name: A developer container with two CPUs
  containarium.fleet.incus_instance:
    name: alice-dev
    source: fleet-base
    config:
      limits.cpu: "2"
      limits.memory: 4GiB
      boot.autostart: "true"
      user.owner: alice
  register: made

- name: Show its address
  ansible.builtin.debug:
    msg: "{{ made.instance.ipv4 }}"

- name: A nested Incus host, on a remote server, in a project
  containarium.fleet.incus_instance:
    name: backend-1
    source: fleet-nested
    config:
      security.nesting: "true"
      security.privileged: "true"
    endpoint: https://10.0.0.5:8443
    client_cert: ~/.config/incus/client.crt
    client_key: ~/.config/incus/client.key
    server_cert: files/backend-1.crt
    project: fleet

- name: Freeze it
  containarium.fleet.incus_instance:
    name: alice-dev
    state: frozen

- name: Remove it
  containarium.fleet.incus_instance:
    name: alice-dev
    state: absent
"""

RETURN = r"""
instance:
  description: The instance after the change (under check mode, what it would be). Empty after V(state=absent).
  returned: always
  type: dict
  contains:
    name:
      description: Instance name.
      type: str
      sample: alice-dev
    type:
      description: V(container) or V(virtual-machine).
      type: str
    status:
      description: Incus status (V(Running), V(Stopped), V(Frozen)).
      type: str
      sample: Running
    location:
      description: Cluster member holding the instance (V(none) outside a cluster).
      type: str
    profiles:
      description: Profiles of the instance.
      type: list
      elements: str
    config:
      description: Instance configuration without C(volatile.*) keys.
      type: dict
    devices:
      description: Instance-local devices.
      type: dict
    ipv4:
      description: First global IPv4 address of a non-loopback NIC (C(eth0) first), or null.
      type: str
      sample: 10.77.0.23
    addresses:
      description: Addresses by interface (loopback left out).
      type: dict
      sample: {"eth0": [{"family": "inet", "address": "10.77.0.23"}]}
"""

from ansible_collections.containarium.fleet.plugins.module_utils.fleet_module import FleetError, FleetModule
from ansible_collections.containarium.fleet.plugins.module_utils.incus import (
    connect,
    connection_argument_spec,
    first_ipv4,
    instance_view,
)

STATUS_OF_STATE = {"started": "Running", "restarted": "Running", "stopped": "Stopped", "frozen": "Frozen"}
# Upper bound for deleting a half-created instance (see wait_timeout in DOCUMENTATION).
CLEANUP_TIMEOUT = 600


def as_incus_value(value):
    """Incus config values are strings; YAML gives ints and booleans."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def normalized_devices(devices):
    return {name: {key: as_incus_value(val) for key, val in (spec or {}).items()} for name, spec in devices.items()}


class InstanceRunner:
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.name = module.params["name"]
        self.timeout = module.params["wait_timeout"]
        self.want_config = {k: as_incus_value(v) for k, v in self.params["config"].items()}
        self.want_devices = normalized_devices(self.params["devices"])
        self.client = None

    def run(self):
        self.module.require_valid_name(self.name, "instance")
        bad_keys = sorted(k for k in self.want_config if k.startswith("volatile."))
        if bad_keys:
            self.module.fail_json(msg="volatile.* keys are managed by Incus, not by this module: %s" % ", ".join(bad_keys))
        self.client = connect(self.module)
        current = self.client.instance(self.name)
        state = self.params["state"]
        if state == "absent":
            return self.remove(current)
        if current is None:
            return self.create()
        return self.update(current)

    # -- absent ----------------------------------------------------------------------------------

    def remove(self, current):
        if current is None:
            return self.module.exit(instance={})
        self.module.mark_changed()
        self.module.add_diff({"state": "present", "status": current["status"]}, {"state": "absent"})
        if not self.module.check_mode:
            self.guard("delete instance %s" % self.name, self.client.delete_instance, self.name, self.timeout)
        self.module.exit(instance={})

    # -- create ----------------------------------------------------------------------------------

    def create(self):
        if not self.params["source"]:
            self.module.fail_json(msg="instance %s does not exist: give source (an image alias or fingerprint) "
                                      "to create it" % self.name)
        fingerprint = self.guard("create instance %s" % self.name, self.client.resolve_image, self.params["source"])
        status = STATUS_OF_STATE[self.params["state"]]
        desired = {
            "name": self.name, "type": self.params["type"] or "container",
            "profiles": ["default"] if self.params["profiles"] is None else self.params["profiles"],
            "config": self.want_config, "devices": self.want_devices,
        }
        self.module.mark_changed()
        self.module.add_diff({"state": "absent"}, dict(desired, state="present", status=status, source=self.params["source"]))
        if self.module.check_mode:
            view = dict(desired, status=status, location=None, ipv4=None, addresses={})
            return self.module.exit(instance=view)
        body = dict(desired, source={"type": "image", "fingerprint": fingerprint}, start=status != "Stopped")
        try:
            self.client.create_instance(body, self.timeout, target=self.params["target"])
            if status == "Frozen":
                self.client.change_state(self.name, "freeze", self.timeout)
            view = self.final_view()
        except FleetError as exc:
            self.undo_create(exc)
        self.module.exit(instance=view)

    def undo_create(self, error):
        """Delete what this run created (if anything got that far), then fail with why."""
        try:
            # The clean-up is not held to wait_timeout: a deadline too short for the create is
            # likely too short for the delete, and giving up here would leave the instance behind.
            cleanup_timeout = max(self.timeout, CLEANUP_TIMEOUT)
            pending = error.details.get("operation") or {}
            if pending.get("status") == "Running":
                # The create outlived wait_timeout (a loaded host unpacking the image): Incus refuses
                # to delete an instance while its create runs, so let that end first, however it ends.
                try:
                    self.client.wait_operation(pending["id"], cleanup_timeout)
                except FleetError:
                    pass
            if self.client.instance(self.name) is None:
                self.module.fail_from(error, "create instance %s" % self.name)
            self.client.delete_instance(self.name, cleanup_timeout)
        except FleetError as cleanup:
            error.message += "; deleting the half-created instance also failed: %s" % cleanup.message
        else:
            error.message += "; the instance created by this task was deleted"
        self.module.fail_from(error, "create instance %s" % self.name)

    # -- update ----------------------------------------------------------------------------------

    def update(self, current):
        if self.params["type"] not in (None, current["type"]):
            self.module.fail_json(msg="instance %s is a %s, not a %s: the type cannot be changed in place" % (
                self.name, current["type"], self.params["type"]))
        self.reconfigure(current)
        self.set_power(current["status"])
        if self.module.check_mode:
            view = instance_view(current)
            view["config"].update(self.want_config)
            view["devices"].update(self.want_devices)
            if self.params["profiles"] is not None:
                view["profiles"] = self.params["profiles"]
            view["status"] = STATUS_OF_STATE[self.params["state"]]
            return self.module.exit(instance=view)
        view = self.guard("read instance %s" % self.name, self.final_view)
        self.module.exit(instance=view)

    def reconfigure(self, current):
        old_config, new_config = {}, {}
        for key, value in self.want_config.items():
            if current["config"].get(key) != value:
                old_config[key] = current["config"].get(key)
                new_config[key] = value
        old_devices, new_devices = {}, {}
        for device, spec in self.want_devices.items():
            if current["devices"].get(device) != spec:
                old_devices[device] = current["devices"].get(device)
                new_devices[device] = spec
        profiles_differ = self.params["profiles"] not in (None, current["profiles"])
        if not (new_config or new_devices or profiles_differ):
            return
        self.module.mark_changed()
        before, after = {}, {}
        if new_config:
            before["config"], after["config"] = old_config, new_config
        if new_devices:
            before["devices"], after["devices"] = old_devices, new_devices
        if profiles_differ:
            before["profiles"], after["profiles"] = current["profiles"], self.params["profiles"]
        self.module.add_diff(before, after)
        if self.module.check_mode:
            return
        action = "reconfigure instance %s" % self.name
        instance, etag = self.guard(action, self.client.instance_with_etag, self.name)
        body = {key: instance[key] for key in ("architecture", "config", "devices", "ephemeral", "profiles",
                                               "description", "stateful") if key in instance}
        body["config"] = dict(instance["config"], **new_config)
        body["devices"] = dict(instance["devices"], **new_devices)
        if profiles_differ:
            body["profiles"] = self.params["profiles"]
        self.guard(action, self.client.update_instance, self.name, body, etag, self.timeout)

    def set_power(self, status):
        """The state actions that take ``status`` to the wanted state (none when already there)."""
        state = self.params["state"]
        plan = {
            "started": {"Stopped": ["start"], "Frozen": ["unfreeze"]},
            "stopped": {"Running": ["stop"], "Frozen": ["force-stop"]},
            "frozen": {"Running": ["freeze"], "Stopped": ["start", "freeze"]},
            "restarted": {"Running": ["restart"], "Stopped": ["start"], "Frozen": ["force-stop", "start"]},
        }[state].get(status, [])
        if not plan:
            return
        self.module.mark_changed()
        self.module.add_diff({"status": status}, {"status": STATUS_OF_STATE[state]})
        if self.module.check_mode:
            return
        for action in plan:
            force = action == "force-stop"
            self.guard("%s instance %s" % (action, self.name), self.client.change_state, self.name,
                       "stop" if force else action, self.timeout, force=force)

    # -- shared ----------------------------------------------------------------------------------

    def final_view(self):
        instance = self.client.instance(self.name)
        state = instance["state"]
        if self.params["wait_for_ipv4"] and state["status"] == "Running" and not first_ipv4(state):
            state = self.client.wait_for_ipv4(self.name, self.timeout)
        return instance_view(instance, state)

    def guard(self, action, func, *args, **kwargs):
        try:
            return func(*args, **kwargs)
        except FleetError as exc:
            self.module.fail_from(exc, action)


def main():
    argument_spec = connection_argument_spec()
    argument_spec.update(
        name=dict(type="str", required=True),
        state=dict(type="str", default="started", choices=["started", "stopped", "restarted", "frozen", "absent"]),
        type=dict(type="str", choices=["container", "virtual-machine"]),
        source=dict(type="str"),
        profiles=dict(type="list", elements="str"),
        config=dict(type="dict", default={}),
        devices=dict(type="dict", default={}),
        target=dict(type="str"),
        wait_for_ipv4=dict(type="bool", default=True),
        wait_timeout=dict(type="int", default=120),
    )
    module = FleetModule(argument_spec)
    InstanceRunner(module).run()


if __name__ == "__main__":
    main()
