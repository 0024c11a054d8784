#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: containarium.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: gce_instance
short_description: Create, resize, start, stop and delete Compute Engine VM instances
version_added: 0.1.0
description:
  - Manages one Compute Engine instance in one zone.
  - Labels, metadata (including C(startup-script), C(shutdown-script) and C(ssh-keys)), network tags
    and attached persistent disks are updated in place with their fingerprints.
  - A machine-type change needs the instance stopped; on a running instance it is done only with
    O(allow_stopping_for_update=true) (stop, C(setMachineType), start, each awaited).
  - The image, boot disk, network, external IP, scheduling (spot) and service account are set when the
    instance is created and are not changed afterwards.
author: containarium.fleet contributors (@containarium)
extends_documentation_fragment:
  - containarium.fleet.gce
  - containarium.fleet.attributes
  - containarium.fleet.attributes.ACTIONGROUP_GCE
  - containarium.fleet.attributes.STATEFUL_MODULE
options:
  name:
    description: Instance name (RFC 1035; checked before any API call).
    type: str
    required: true
  zone:
    description: Zone of the instance, for example V(us-central1-a). An unknown zone fails with the valid choices.
    type: str
    required: true
  state:
    description:
      - V(running) creates the instance if needed and starts it; V(stopped) creates it if needed and
        stops it (status C(TERMINATED)); V(absent) deletes it (attached persistent disks that are not
        auto-deleted remain).
    type: str
    choices: [running, stopped, absent]
    default: running
  machine_type:
    description:
      - Machine type name such as V(n2-standard-4). Required to create.
      - An unknown machine type fails with the list of those the zone offers.
    type: str
  image:
    description:
      - Source image of the boot disk, as a URL or partial URL such as
        V(projects/debian-cloud/global/images/family/debian-12). Required to create.
    type: str
  boot_disk_size_gb:
    description: Size of the boot disk in GB (create only).
    type: int
  boot_disk_type:
    description: Disk type of the boot disk (create only).
    type: str
    default: pd-balanced
  spot:
    description: Create a Spot VM (C(provisioningModel=SPOT)); create only.
    type: bool
    default: false
  preemptible:
    description: Create a legacy preemptible VM; create only. Mutually exclusive with O(spot).
    type: bool
    default: false
  termination_action:
    description: What GCE does when it preempts a Spot VM (C(instanceTerminationAction)); create only.
    type: str
    choices: [STOP, DELETE]
    default: STOP
  disks:
    description:
      - Existing persistent disks (in the same zone) attached to the instance besides the boot disk.
      - When set, disks that are attached but not listed are detached (never deleted).
    type: list
    elements: dict
    suboptions:
      name:
        description: Disk name.
        type: str
        required: true
      device_name:
        description: Device name inside the VM (C(/dev/disk/by-id/google-<device_name>)); defaults to O(disks[].name).
        type: str
      mode:
        description: Attachment mode.
        type: str
        choices: [READ_WRITE, READ_ONLY]
        default: READ_WRITE
  network:
    description: VPC network name or URL (create only).
    type: str
    default: default
  subnetwork:
    description: Subnetwork name or URL in the instance's region (create only).
    type: str
  network_ip:
    description:
      - Internal IPv4 address of the instance in its subnetwork (create only); by default GCE picks a free one.
      - Recreating a VM on the address it had (its old one is free once it is deleted) keeps every route,
        load balancer entry and client configuration that names it valid.
    type: str
  external_ip:
    description: Give the instance an ephemeral external IPv4 address (create only).
    type: bool
    default: true
  tags:
    description: Network tags (the complete list when set).
    type: list
    elements: str
  labels:
    description: Labels (the complete set when set).
    type: dict
  metadata:
    description:
      - Instance metadata (the complete set when set), for example C(startup-script),
        C(shutdown-script) and C(ssh-keys) (C(user:ssh-ed25519 AAAA... comment) lines).
    type: dict
  service_account:
    description: Service account of the instance (create only).
    type: dict
    suboptions:
      email:
        description: Service account e-mail, or V(default).
        type: str
        default: default
      scopes:
        description: OAuth2 scopes granted to the instance.
        type: list
        elements: str
        default: [https://www.googleapis.com/auth/cloud-platform]
  allow_stopping_for_update:
    description: Allow stopping a running instance to change its machine type (then start it again).
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: A spot jump server with its data disk and an admin key
  containarium.fleet.gce_instance:
    project: my-project
    zone: us-central1-a
    name: jump-1
    machine_type: n2-standard-8
    image: projects/debian-cloud/global/images/family/debian-12
    spot: true
    termination_action: STOP
    disks:
      - name: jump-1-incus
        device_name: incus
    tags: [jump]
    labels: {fleet-role: jump}
    metadata:
      ssh-keys: "admin:ssh-ed25519 AAAAC3Nza... admin@laptop"
  delegate_to: localhost

- name: Grow it (stops and restarts the VM)
  containarium.fleet.gce_instance:
    project: my-project
    zone: us-central1-a
    name: jump-1
    machine_type: n2-standard-16
    allow_stopping_for_update: true
  delegate_to: localhost

- name: Delete it (the data disk stays)
  containarium.fleet.gce_instance:
    project: my-project
    zone: us-central1-a
    name: jump-1
    state: absent
  delegate_to: localhost
"""

RETURN = r"""
instance:
  description: The instance after the task (before it, for O(state=absent)); empty when it does not exist.
  returned: always
  type: dict
  contains:
    name: {description: Instance name., type: str, returned: success}
    zone: {description: Zone name., type: str, returned: success}
    status: {description: "Instance status (RUNNING, TERMINATED, ...).", type: str, returned: success}
    machine_type: {description: Machine type name., type: str, returned: success}
    spot: {description: Whether the VM is spot or preemptible., type: bool, returned: success}
    labels: {description: Labels., type: dict, returned: success}
    tags: {description: Network tags (sorted)., type: list, elements: str, returned: success}
    metadata: {description: Metadata as a dictionary., type: dict, returned: success}
    private_ip: {description: Internal IPv4 of the first interface., type: str, returned: success}
    public_ip: {description: External IPv4 of the first interface or null., type: str, returned: success}
    disks: {description: "Attached disks (device_name, source, boot, mode).", type: list, elements: dict, returned: success}
    self_link: {description: URL of the instance., type: str, returned: success}
"""

import time

from ansible_collections.containarium.fleet.plugins.module_utils.fleet_module import FleetError, changed_keys
from ansible_collections.containarium.fleet.plugins.module_utils.gce import (
    GceModule,
    resource_name,
    summarize_instance,
)

STABLE_STATUSES = ("RUNNING", "TERMINATED", "STOPPED", "SUSPENDED")


class InstanceTask:
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.zone = self.params["zone"]
        self.name = self.params["name"]
        self.path = "zones/%s/instances/%s" % (self.zone, self.name)
        self.action = "instance %s in %s" % (self.name, self.zone)

    # ---- reading -----------------------------------------------------------------------------
    def read(self):
        try:
            return self.module.client.get_or_none(self.path)
        except FleetError as exc:
            if exc.details.get("code") == 400:
                # GCE answers 400 for a zone it does not know: say which zones it does know.
                self.check_zone_and_type(None)
            self.module.fail_from(exc, "read " + self.action)
        return None

    def settle(self, instance):
        """Wait (within the task's deadline) until the instance leaves a transitional status."""
        delay = 0.2
        while instance and instance.get("status") not in STABLE_STATUSES:
            if time.monotonic() > self.module.deadline:
                self.module.fail_json(msg="%s stayed %s until wait_timeout" % (self.action, instance.get("status")))
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
            instance = self.read()
        return instance

    def managed(self, instance):
        """The fields this task manages, as the user writes them (for comparison and --diff)."""
        summary = summarize_instance(instance) if instance else {}
        fields = {"state": self.state_of(instance)}
        if instance:
            fields["machine_type"] = summary["machine_type"]
        for key in ("labels", "tags", "metadata"):
            if self.params[key] is not None and instance:
                fields[key] = summary[key]
        if self.params["disks"] is not None and instance:
            fields["disks"] = [d["source"] for d in summary["disks"] if not d["boot"]]
        return fields

    @staticmethod
    def state_of(instance):
        if not instance:
            return "absent"
        return "running" if instance["status"] == "RUNNING" else "stopped"

    def wanted(self, instance):
        p = self.params
        fields = {"state": p["state"]}
        if p["state"] == "absent":
            return fields
        fields["machine_type"] = p["machine_type"] or (resource_name(instance["machineType"]) if instance else None)
        if p["labels"] is not None:
            fields["labels"] = {k: str(v) for k, v in p["labels"].items()}
        if p["tags"] is not None:
            fields["tags"] = sorted(set(p["tags"]))
        if p["metadata"] is not None:
            fields["metadata"] = {k: str(v) for k, v in p["metadata"].items()}
        if p["disks"] is not None:
            fields["disks"] = [d["name"] for d in p["disks"]]
        return fields

    # ---- applying ----------------------------------------------------------------------------
    def run(self):
        m = self.module
        instance = self.settle(self.read())
        before = self.managed(instance)
        after = self.wanted(instance)
        old, new = changed_keys(before, after)
        m.add_diff(old, new)
        if self.params["state"] == "absent":
            if instance:
                m.mutate("DELETE", self.path, action="delete " + self.action)
            m.exit(instance=summarize_instance(instance) if instance else {})
        if instance is None:
            self.create()
        else:
            self.update(instance, old, new)
        final = self.read() if not m.check_mode else instance
        m.exit(instance=summarize_instance(final) if final else {})

    def validate_for_create(self):
        p = self.params
        missing = [key for key in ("machine_type", "image") if not p[key]]
        if missing:
            self.module.fail_json(msg="%s does not exist; creating it needs %s" % (self.action, " and ".join(missing)))
        self.check_zone_and_type(p["machine_type"])

    def check_zone_and_type(self, machine_type):
        try:
            self.module.client.require_zone(self.zone)
            if machine_type:
                self.module.client.require_machine_type(self.zone, machine_type)
        except FleetError as exc:
            self.module.fail_from(exc, self.action)

    def project_path(self, *parts):
        return "projects/%s/%s" % (self.params["project"], "/".join(parts))

    def qualified(self, value, *parts):
        """A name turned into a project-qualified partial URL; URLs and partial URLs pass unchanged."""
        return value if "/" in value else self.project_path(*(parts + (value,)))

    def insert_body(self):
        p = self.params
        boot = {
            "boot": True,
            "autoDelete": True,
            "type": "PERSISTENT",
            "initializeParams": {
                "sourceImage": p["image"],
                "diskType": self.project_path("zones", self.zone, "diskTypes", p["boot_disk_type"]),
            },
        }
        if p["boot_disk_size_gb"]:
            boot["initializeParams"]["diskSizeGb"] = str(p["boot_disk_size_gb"])
        interface = {"network": self.qualified(p["network"], "global", "networks")}
        if p["subnetwork"]:
            interface["subnetwork"] = self.qualified(
                p["subnetwork"], "regions", self.zone.rsplit("-", 1)[0], "subnetworks")
        if p["network_ip"]:
            interface["networkIP"] = p["network_ip"]
        if p["external_ip"]:
            interface["accessConfigs"] = [{"type": "ONE_TO_ONE_NAT", "name": "External NAT"}]
        body = {
            "name": self.name,
            "machineType": self.project_path("zones", self.zone, "machineTypes", p["machine_type"]),
            "disks": [boot] + [self.attached_disk(d) for d in p["disks"] or []],
            "networkInterfaces": [interface],
        }
        if p["spot"]:
            body["scheduling"] = {
                "provisioningModel": "SPOT",
                "instanceTerminationAction": p["termination_action"],
                "automaticRestart": False,
                "onHostMaintenance": "TERMINATE",
            }
        elif p["preemptible"]:
            body["scheduling"] = {"preemptible": True, "automaticRestart": False, "onHostMaintenance": "TERMINATE"}
        if p["labels"]:
            body["labels"] = {k: str(v) for k, v in p["labels"].items()}
        if p["tags"]:
            body["tags"] = {"items": sorted(set(p["tags"]))}
        if p["metadata"]:
            body["metadata"] = {"items": [{"key": k, "value": str(v)} for k, v in sorted(p["metadata"].items())]}
        if p["service_account"]:
            body["serviceAccounts"] = [p["service_account"]]
        return body

    def attached_disk(self, disk):
        return {
            "source": self.project_path("zones", self.zone, "disks", disk["name"]),
            "deviceName": disk["device_name"] or disk["name"],
            "mode": disk["mode"],
            "boot": False,
            "autoDelete": False,
            "type": "PERSISTENT",
        }

    def create(self):
        m = self.module
        self.validate_for_create()
        m.insert("zones/%s/instances" % self.zone, self.insert_body(), self.path, "create " + self.action)
        if self.params["state"] == "stopped":
            m.mutate("POST", self.path + "/stop", action="stop " + self.action)

    def update(self, instance, old, new):
        m = self.module
        fingerprint_calls = {
            "labels": ("setLabels", lambda: {"labels": new["labels"], "labelFingerprint": instance.get("labelFingerprint")}),
            "tags": ("setTags", lambda: {"items": new["tags"], "fingerprint": (instance.get("tags") or {}).get("fingerprint")}),
            "metadata": ("setMetadata", lambda: {
                "items": [{"key": k, "value": v} for k, v in sorted(new["metadata"].items())],
                "fingerprint": (instance.get("metadata") or {}).get("fingerprint"),
            }),
        }
        for key, (method, body) in fingerprint_calls.items():
            if key in new:
                m.mutate("POST", "%s/%s" % (self.path, method), body=body(), action="%s on %s" % (method, self.action))
        if "disks" in new:
            self.update_disks(instance)
        running = instance["status"] == "RUNNING"
        if "machine_type" in new:
            self.check_zone_and_type(new["machine_type"])
            if running and not self.params["allow_stopping_for_update"]:
                m.fail_json(
                    msg="%s is RUNNING; changing its machine type from %s to %s needs it stopped: set "
                        "allow_stopping_for_update=true (stop, setMachineType, start) or state=stopped"
                        % (self.action, old.get("machine_type"), new["machine_type"]),
                    **m.result)
            if running:
                m.mutate("POST", self.path + "/stop", action="stop " + self.action)
                running = False
            m.mutate("POST", self.path + "/setMachineType",
                     body={"machineType": self.project_path("zones", self.zone, "machineTypes", new["machine_type"])},
                     action="setMachineType on " + self.action)
        if self.params["state"] == "running" and not running:
            m.mutate("POST", self.path + "/start", action="start " + self.action)
        elif self.params["state"] == "stopped" and running:
            m.mutate("POST", self.path + "/stop", action="stop " + self.action)

    def update_disks(self, instance):
        m = self.module
        wanted = {d["name"]: d for d in self.params["disks"]}
        attached = {resource_name(d.get("source")): d for d in instance.get("disks") or [] if not d.get("boot")}
        for name, disk in attached.items():
            if name not in wanted:
                m.mutate("POST", self.path + "/detachDisk", params={"deviceName": disk["deviceName"]},
                         action="detach disk %s from %s" % (name, self.action))
        for name, disk in wanted.items():
            if name not in attached:
                m.mutate("POST", self.path + "/attachDisk", body=self.attached_disk(disk),
                         action="attach disk %s to %s" % (name, self.action))


def main():
    module = GceModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            zone=dict(type="str", required=True),
            state=dict(type="str", default="running", choices=["running", "stopped", "absent"]),
            machine_type=dict(type="str"),
            image=dict(type="str"),
            boot_disk_size_gb=dict(type="int"),
            boot_disk_type=dict(type="str", default="pd-balanced"),
            spot=dict(type="bool", default=False),
            preemptible=dict(type="bool", default=False),
            termination_action=dict(type="str", default="STOP", choices=["STOP", "DELETE"]),
            disks=dict(type="list", elements="dict", options=dict(
                name=dict(type="str", required=True),
                device_name=dict(type="str"),
                mode=dict(type="str", default="READ_WRITE", choices=["READ_WRITE", "READ_ONLY"]),
            )),
            network=dict(type="str", default="default"),
            subnetwork=dict(type="str"),
            network_ip=dict(type="str"),
            external_ip=dict(type="bool", default=True),
            tags=dict(type="list", elements="str"),
            labels=dict(type="dict"),
            metadata=dict(type="dict"),
            service_account=dict(type="dict", options=dict(
                email=dict(type="str", default="default"),
                scopes=dict(type="list", elements="str", default=["https://www.googleapis.com/auth/cloud-platform"]),
            )),
            allow_stopping_for_update=dict(type="bool", default=False),
        ),
        mutually_exclusive=[("spot", "preemptible")],
    )
    module.require_valid_name(module.params["name"], "instance")
    for disk in module.params["disks"] or []:
        module.require_valid_name(disk["name"], "disk")
    InstanceTask(module).run()


if __name__ == "__main__":
    main()
