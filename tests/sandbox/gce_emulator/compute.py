"""The Compute v1 resources: validation, status transitions and the VM backend calls.

Public fields of a resource are exactly what GCE returns; emulator bookkeeping lives under the
private key `_emu` (stripped before any response).
"""
from __future__ import annotations

import base64
import copy
import datetime
import hashlib
import json
import logging
import re
import threading
import urllib.request

from . import catalog
from .backend import BackendError, NullBackend, container_name
from .listing import aggregated_response, list_response
from .operations import Operations
from .store import LINK_BASE, ApiError, Store, new_id, not_found, now_rfc3339

log = logging.getLogger("gce_emulator.compute")

NAME_RE = re.compile(r"[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?")
LABEL_KEY_RE = re.compile(r"[a-z][-_a-z0-9]{0,62}")
LABEL_VALUE_RE = re.compile(r"[-_a-z0-9]{0,63}")
PRIVATE = "_emu"


def invalid(field: str, value, why: str) -> ApiError:
    return ApiError(400, "invalid", f"Invalid value for field '{field}': '{value}'. {why}")


def require_name(field: str, name) -> str:
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise invalid(field, name, "Must be a match of regex '(?:[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?)'")
    return name


def fingerprint(value) -> str:
    digest = hashlib.sha256(json.dumps(value, sort_keys=True).encode()).digest()[:8]
    return base64.b64encode(digest).decode()


def last_segment(link: str) -> str:
    return link.rstrip("/").rsplit("/", 1)[-1]


def relative(link: str) -> str:
    """A resource reference as `projects/...` whatever form the client used (URL or partial)."""
    idx = link.find("projects/")
    return link[idx:] if idx >= 0 else link


def public(resource: dict) -> dict:
    """The response form: a private copy (serialised outside the store lock) without `_emu`."""
    return copy.deepcopy({k: v for k, v in resource.items() if k != PRIVATE})


def check_fingerprint(given, current: str, what: str) -> None:
    if given != current:
        raise ApiError(412, "conditionNotMet",
                       f"Supplied fingerprint does not match current {what} fingerprint.")


def metadata_dict(instance: dict) -> dict[str, str]:
    return {i["key"]: i.get("value", "") for i in instance.get("metadata", {}).get("items", [])}


def ssh_users(metadata: dict[str, str]) -> dict[str, list[str]]:
    users: dict[str, list[str]] = {}
    for key in ("ssh-keys", "sshKeys"):
        for line in metadata.get(key, "").splitlines():
            user, sep, key_text = line.strip().partition(":")
            if sep and user and key_text.strip():
                users.setdefault(user, []).append(key_text.strip())
    return users


class Compute:
    def __init__(self, store: Store, backend: NullBackend, ops: Operations):
        self.store, self.backend, self.ops = store, backend, ops

    # -- helpers -----------------------------------------------------------------------------
    @staticmethod
    def zone_scope(zone: str, project: str = "") -> str:
        if zone not in catalog.ZONES:
            raise not_found(f"projects/{project}/zones/{zone}" if project else f"zones/{zone}")
        return f"zones/{zone}"

    @staticmethod
    def region_scope(region: str, project: str = "") -> str:
        if region not in catalog.REGION_ZONES:
            raise not_found(f"projects/{project}/regions/{region}" if project else f"regions/{region}")
        return f"regions/{region}"

    def _machine_type(self, project: str, zone: str, ref) -> tuple[str, int, int]:
        name = last_segment(ref or "")
        if name not in catalog.MACHINE_TYPES:
            raise invalid("resource.machineType", ref,
                          f"Machine type with name '{name}' does not exist in zone '{zone}'.")
        cpus, memory, shared = catalog.MACHINE_TYPES[name]
        # Shared-core types get one container CPU, so resizing to a standard type shows in nproc.
        return f"projects/{project}/zones/{zone}/machineTypes/{name}", 1 if shared else cpus, memory

    def _stamp_new(self, resource: dict, kind: str, path: str) -> dict:
        resource.update({"kind": kind, "id": new_id(), "creationTimestamp": now_rfc3339(),
                         "selfLink": LINK_BASE + path})
        return resource

    # -- catalog -----------------------------------------------------------------------------
    def zones_list(self, project: str, query: dict) -> dict:
        items = [catalog.zone_resource(LINK_BASE, project, z) for z in catalog.ZONES]
        return list_response("compute#zoneList", f"projects/{project}/zones", items, query)

    def zone_get(self, project: str, zone: str) -> dict:
        if zone not in catalog.ZONES:
            raise not_found(f"projects/{project}/zones/{zone}")
        return catalog.zone_resource(LINK_BASE, project, zone)

    def regions_list(self, project: str, query: dict) -> dict:
        items = [catalog.region_resource(LINK_BASE, project, r) for r in catalog.REGIONS]
        return list_response("compute#regionList", f"projects/{project}/regions", items, query)

    def region_get(self, project: str, region: str) -> dict:
        if region not in catalog.REGION_ZONES:
            raise not_found(f"projects/{project}/regions/{region}")
        return catalog.region_resource(LINK_BASE, project, region)

    def machine_types_list(self, project: str, zone: str, query: dict) -> dict:
        self.zone_get(project, zone)
        items = [catalog.machine_type_resource(LINK_BASE, project, zone, m) for m in catalog.MACHINE_TYPES]
        return list_response("compute#machineTypeList", f"projects/{project}/zones/{zone}/machineTypes", items, query)

    def machine_type_get(self, project: str, zone: str, name: str) -> dict:
        self.zone_get(project, zone)
        if name not in catalog.MACHINE_TYPES:
            raise not_found(f"projects/{project}/zones/{zone}/machineTypes/{name}")
        return catalog.machine_type_resource(LINK_BASE, project, zone, name)

    def machine_types_aggregated(self, project: str, query: dict) -> dict:
        scoped = {f"zones/{z}": [catalog.machine_type_resource(LINK_BASE, project, z, m) for m in catalog.MACHINE_TYPES]
                  for z in catalog.ZONES}
        return aggregated_response("compute#machineTypeAggregatedList", "machineTypes", project, scoped,
                                   sorted(scoped), query)

    # -- generic collections -----------------------------------------------------------------
    def list_collection(self, kind: str, collection: str, query: dict) -> dict:
        with self.store.lock:
            return list_response(kind + "List", collection, list(self.store.collection(collection).values()),
                                 query, present=public)

    def aggregated(self, kind: str, plural: str, project: str, query: dict, zonal: bool = True) -> dict:
        all_scopes = [f"zones/{z}" for z in catalog.ZONES] if zonal else [f"regions/{r}" for r in catalog.REGIONS]
        with self.store.lock:
            scoped = {scope: list(self.store.collection(path).values())
                      for scope, path in self.store.collections_matching(project, plural)
                      if scope.startswith("zones/" if zonal else "regions/")}
            return aggregated_response(kind + "AggregatedList", plural, project, scoped, sorted(all_scopes),
                                       query, present=public)

    def get_public(self, collection: str, name: str) -> dict:
        with self.store.lock:
            return public(self.store.get(collection, name))

    def _ensure_absent(self, collection: str, name: str) -> None:
        if self.store.find(collection, name) is not None:
            raise ApiError(409, "alreadyExists", f"The resource '{collection}/{name}' already exists")

    def _ensure_address_free(self, project: str, address: str | None) -> None:
        """An internal address asked for on insert must not be held by another VM, stopped ones included."""
        if not address:
            return
        for _scope, path in self.store.collections_matching(project, "instances"):
            for other in self.store.collection(path).values():
                if other["networkInterfaces"][0].get("networkIP") == address:
                    raise invalid("resource.networkInterfaces[0].networkIP", address,
                                  f"IP address '{address}' (or range) is already being used by another resource.")

    def simple_insert(self, project: str, scope: str, plural: str, kind: str, body: dict,
                      request_id: str | None, prepare=None) -> dict:
        """Insert for resources without a lifecycle (firewalls, routes, ...): visible when DONE."""
        name = require_name("resource.name", body.get("name"))
        collection = f"projects/{project}/{scope}/{plural}"
        self._ensure_absent(collection, name)
        resource = {k: v for k, v in copy.deepcopy(body).items() if k not in ("kind", "id", "selfLink", "creationTimestamp")}
        if prepare is not None:
            prepare(resource)
        self._stamp_new(resource, kind, f"{collection}/{name}")
        if scope.startswith("regions/"):
            resource["region"] = f"{LINK_BASE}projects/{project}/{scope}"

        def work() -> None:
            self.ops.pause()
            with self.store.lock:
                self._ensure_absent(collection, name)
                self.store.put(collection, resource)
        return self.ops.start(project, scope, "insert", f"{collection}/{name}", resource["id"], work, request_id)

    def simple_delete(self, project: str, scope: str, plural: str, name: str, request_id: str | None,
                      check=None, cleanup=None) -> dict:
        collection = f"projects/{project}/{scope}/{plural}"
        resource = self.store.get(collection, name)
        if check is not None:
            check(resource)

        def work() -> None:
            self.ops.pause()
            if cleanup is not None:
                cleanup(resource)
            self.store.remove(collection, name)
        return self.ops.start(project, scope, "delete", f"{collection}/{name}", resource["id"], work, request_id)

    def simple_mutation(self, project: str, scope: str, collection: str, name: str, op_type: str,
                        change, request_id: str | None) -> dict:
        """A synchronous-validated change applied when the operation runs."""
        resource = self.store.get(collection, name)

        def work() -> None:
            self.ops.pause()
            self.store.update(collection, name, change)
        return self.ops.start(project, scope, op_type, f"{collection}/{name}", resource["id"], work, request_id)

    # -- instances ---------------------------------------------------------------------------
    def instances_collection(self, project: str, zone: str) -> str:
        return f"projects/{project}/{self.zone_scope(zone, project)}/instances"

    def _set_status(self, collection: str, name: str, status: str) -> None:
        self.store.update(collection, name, lambda inst: inst.__setitem__("status", status))

    def _container_for(self, project: str, zone: str, name: str) -> str:
        """`gce-<name>`, unless an instance elsewhere (other project or zone) already has it."""
        plain = f"gce-{name}"
        with self.store.lock:
            taken = any(inst.get(PRIVATE, {}).get("container") == plain
                        for path, items in self.store.collections.items() if path.endswith("/instances")
                        for inst in items.values())
        return container_name(name, taken, f"{project}/{zone}")

    def _disk_from_init(self, project: str, zone: str, params: dict, name: str, boot: bool) -> dict:
        size = str(params.get("diskSizeGb", "10"))
        disk_type = last_segment(params.get("diskType", "pd-standard"))
        disk = {
            "name": name,
            "sizeGb": size,
            "zone": f"{LINK_BASE}projects/{project}/zones/{zone}",
            "status": "CREATING",
            "type": f"{LINK_BASE}projects/{project}/zones/{zone}/diskTypes/{disk_type}",
            "labelFingerprint": fingerprint({}),
            "physicalBlockSizeBytes": "4096",
            "architecture": "X86_64",
        }
        if params.get("sourceImage"):
            disk["sourceImage"] = params["sourceImage"]
        if params.get("labels"):
            disk["labels"] = params["labels"]
            disk["labelFingerprint"] = fingerprint(params["labels"])
        if params.get("resourcePolicies"):
            disk["resourcePolicies"] = [LINK_BASE + relative(p) for p in params["resourcePolicies"]]
        self._stamp_new(disk, "compute#disk", f"projects/{project}/zones/{zone}/disks/{name}")
        disk[PRIVATE] = {"boot": boot, "volume": not boot}
        return disk

    def instance_insert(self, project: str, zone: str, body: dict, request_id: str | None) -> dict:
        collection = self.instances_collection(project, zone)
        disks_coll = f"projects/{project}/zones/{zone}/disks"
        name = require_name("resource.name", body.get("name"))
        mt_link, cpus, memory = self._machine_type(project, zone, body.get("machineType"))
        nics = body.get("networkInterfaces")
        if not nics:
            raise invalid("resource.networkInterfaces", "", "At least one network interface is required.")
        attached = body.get("disks") or []
        if not attached:
            raise invalid("resource.disks", "", "Boot disk must be specified.")
        labels = body.get("labels") or {}
        for k, v in labels.items():
            if not LABEL_KEY_RE.fullmatch(k) or not isinstance(v, str) or not LABEL_VALUE_RE.fullmatch(v):
                raise invalid(f"resource.labels.{k}", v, "Label keys and values must match GCE label rules.")
        scheduling = dict(body.get("scheduling") or {})
        spot = scheduling.get("provisioningModel") == "SPOT" or scheduling.get("preemptible") is True
        if spot and scheduling.get("automaticRestart") is True:
            raise invalid("resource.scheduling.automaticRestart", "true",
                          "Preemptible and Spot instances cannot be automatically restarted.")
        scheduling.setdefault("provisioningModel", "SPOT" if scheduling.get("provisioningModel") == "SPOT" else "STANDARD")
        scheduling.setdefault("preemptible", bool(spot and scheduling.get("preemptible")))
        scheduling.setdefault("onHostMaintenance", "TERMINATE" if spot else "MIGRATE")
        scheduling.setdefault("automaticRestart", not spot)
        if spot:
            scheduling.setdefault("instanceTerminationAction", "STOP")
            if scheduling["instanceTerminationAction"] not in ("STOP", "DELETE"):
                raise invalid("resource.scheduling.instanceTerminationAction",
                              scheduling["instanceTerminationAction"], "Must be STOP or DELETE.")

        new_disks: list[dict] = []
        attached_out: list[dict] = []
        nested = labels.get("sandbox-image") == "nested"
        with self.store.lock:
            self._ensure_absent(collection, name)
            self._ensure_address_free(project, nics[0].get("networkIP"))
            for index, spec in enumerate(attached):
                boot = bool(spec.get("boot", index == 0))
                if spec.get("source"):
                    disk_name = last_segment(spec["source"])
                    disk = self.store.find(disks_coll, disk_name)
                    if disk is None:
                        raise not_found(f"{disks_coll}/{disk_name}")
                    if disk.get("users") and spec.get("mode", "READ_WRITE") == "READ_WRITE":
                        raise ApiError(400, "resourceInUseByAnotherResource",
                                       f"The disk resource '{disks_coll}/{disk_name}' is already being used by "
                                       f"'{relative(disk['users'][0])}'")
                    image = disk.get("sourceImage", "")
                else:
                    params = spec.get("initializeParams") or {}
                    disk_name = params.get("diskName") or (name if boot else f"{name}-{index}")
                    require_name(f"resource.disks[{index}].initializeParams.diskName", disk_name)
                    if self.store.find(disks_coll, disk_name) is not None or any(d["name"] == disk_name for d in new_disks):
                        raise ApiError(409, "alreadyExists", f"The resource '{disks_coll}/{disk_name}' already exists")
                    disk = self._disk_from_init(project, zone, params, disk_name, boot)
                    new_disks.append(disk)
                    image = params.get("sourceImage", "")
                if boot and "nested" in (image or ""):
                    nested = True
                attached_out.append({
                    "kind": "compute#attachedDisk",
                    "type": "PERSISTENT",
                    "mode": spec.get("mode", "READ_WRITE"),
                    "source": f"{LINK_BASE}{disks_coll}/{disk_name}",
                    "deviceName": spec.get("deviceName") or (disk_name if not boot else "persistent-disk-0"),
                    "index": index,
                    "boot": boot,
                    "autoDelete": bool(spec.get("autoDelete", boot and not spec.get("source"))),
                    "interface": spec.get("interface", "SCSI"),
                    "diskSizeGb": disk["sizeGb"],
                    "architecture": "X86_64",
                })
            if sum(1 for d in attached_out if d["boot"]) != 1:
                raise invalid("resource.disks", "", "Exactly one boot disk must be specified.")

            metadata_items = list((body.get("metadata") or {}).get("items") or [])
            tags_items = list((body.get("tags") or {}).get("items") or [])
            instance = {
                "name": name,
                "description": body.get("description", ""),
                "tags": {"items": tags_items, "fingerprint": fingerprint(tags_items)} if tags_items else {"fingerprint": fingerprint([])},
                "machineType": LINK_BASE + mt_link,
                "status": "PROVISIONING",
                "zone": f"{LINK_BASE}projects/{project}/zones/{zone}",
                "canIpForward": bool(body.get("canIpForward", False)),
                "networkInterfaces": [self._nic(project, zone, i, nic) for i, nic in enumerate(nics)],
                "disks": attached_out,
                "metadata": {"kind": "compute#metadata", "fingerprint": fingerprint(metadata_items),
                             **({"items": metadata_items} if metadata_items else {})},
                "serviceAccounts": body.get("serviceAccounts", []),
                "scheduling": scheduling,
                "cpuPlatform": "Unknown CPU Platform",
                "labels": labels,
                "labelFingerprint": fingerprint(labels),
                "startRestricted": False,
                "deletionProtection": bool(body.get("deletionProtection", False)),
                "fingerprint": "",
                "shieldedInstanceConfig": {"enableSecureBoot": False, "enableVtpm": True, "enableIntegrityMonitoring": True},
            }
            if not labels:
                instance.pop("labels")
            self._stamp_new(instance, "compute#instance", f"{collection}/{name}")
            instance["fingerprint"] = fingerprint(instance["id"])
            instance[PRIVATE] = {"container": self._container_for(project, zone, name) if self.backend.containers else f"gce-{name}",
                                 "nested": nested, "preempted": False, "cpus": cpus, "memory": memory}

        def before() -> None:
            self.store.put(collection, instance)
            for d in new_disks:
                d["users"] = [f"{LINK_BASE}{collection}/{name}"]
                self.store.put(disks_coll, d)
            for spec in attached_out:
                if not any(d["name"] == last_segment(spec["source"]) for d in new_disks):
                    self.store.update(disks_coll, last_segment(spec["source"]),
                                      lambda d: d.setdefault("users", []).append(f"{LINK_BASE}{collection}/{name}"))

        def undo() -> None:
            self.store.remove(collection, name)
            for d in new_disks:
                self.store.remove(disks_coll, d["name"])
            self._release_disks(disks_coll, f"{LINK_BASE}{collection}/{name}")

        def work() -> None:
            try:
                self.ops.pause()
                for d in new_disks:
                    if d[PRIVATE]["volume"]:
                        self.backend.volume_create(d["name"], int(d["sizeGb"]))
                    self.store.update(disks_coll, d["name"], lambda x: x.__setitem__("status", "READY"))
                self._set_status(collection, name, "STAGING")
                container = instance[PRIVATE]["container"]
                image = "fleet-nested" if nested else "fleet-base"
                self.backend.create(container, image, cpus, memory, nested,
                                    instance["networkInterfaces"][0].get("networkIP", ""))
                for spec in attached_out:
                    if not spec["boot"]:
                        self.backend.attach(container, spec["deviceName"], last_segment(spec["source"]))
                self._boot(project, zone, name)
            except BackendError:
                self.backend.delete(instance[PRIVATE]["container"])
                for d in new_disks:
                    self.backend.volume_delete(d["name"])
                undo()
                raise
        return self.ops.start(project, f"zones/{zone}", "insert", f"{collection}/{name}", instance["id"],
                              work, request_id, undo=undo, before=before)

    def _nic(self, project: str, zone: str, index: int, nic: dict) -> dict:
        region = catalog.ZONES[zone]
        network = relative(nic.get("network") or "global/networks/default")
        if not network.startswith("projects/"):
            network = f"projects/{project}/{network}"
        out = {
            "kind": "compute#networkInterface",
            "network": LINK_BASE + network,
            "subnetwork": LINK_BASE + (relative(nic["subnetwork"]) if nic.get("subnetwork")
                                       else f"projects/{project}/regions/{region}/subnetworks/{last_segment(network)}"),
            # Asked for on insert (kept across stop/start), or filled in at the first start.
            "networkIP": nic.get("networkIP", ""),
            "name": f"nic{index}",
            "fingerprint": fingerprint([project, zone, index]),
            "stackType": "IPV4_ONLY",
        }
        if nic.get("accessConfigs"):
            out["accessConfigs"] = [{"kind": "compute#accessConfig", "type": "ONE_TO_ONE_NAT",
                                     "name": ac.get("name", "External NAT"),
                                     "networkTier": ac.get("networkTier", "PREMIUM")}
                                    for ac in nic["accessConfigs"]]
        return out

    def _boot(self, project: str, zone: str, name: str) -> None:
        """STAGING → RUNNING: start the container, learn its IPv4, install ssh keys, run startup-script."""
        collection = self.instances_collection(project, zone)
        inst = self.store.snapshot(collection, name)
        container = inst[PRIVATE]["container"]
        if self.backend.containers and self.backend.state(container) is None:
            # Recreated after the container vanished (or a fresh boot disk): same limits, fresh root.
            self.backend.create(container, "fleet-nested" if inst[PRIVATE]["nested"] else "fleet-base",
                                inst[PRIVATE]["cpus"], inst[PRIVATE]["memory"], inst[PRIVATE]["nested"],
                                inst["networkInterfaces"][0].get("networkIP", ""))
            for spec in inst["disks"]:
                if not spec["boot"]:
                    self.backend.attach(container, spec["deviceName"], last_segment(spec["source"]))
        ip = self.backend.start(container)
        if not self.backend.containers:
            ip = inst["networkInterfaces"][0].get("networkIP") or ip  # kept across stop/start and restarts
        self.ops.pause(0.5)
        metadata = metadata_dict(inst)
        users = ssh_users(metadata)
        if users:
            self.backend.install_ssh_keys(container, users)

        def running(i: dict) -> None:
            i["status"] = "RUNNING"
            i["lastStartTimestamp"] = now_rfc3339()
            i[PRIVATE]["preempted"] = False
            for nic in i["networkInterfaces"]:
                nic["networkIP"] = ip
                for ac in nic.get("accessConfigs", []):
                    ac["natIP"] = ip
        self.store.update(collection, name, running)
        script = metadata.get("startup-script")
        if script:
            threading.Thread(target=self.backend.run_script,
                             args=(container, script, "/var/log/gce-startup-script.log"), daemon=True).start()

    def halt(self, collection: str, name: str, final: str = "TERMINATED", force: bool = False) -> None:
        """RUNNING → STOPPING → TERMINATED: shutdown-script, then stop the container (rootfs kept); ``force``
        skips the clean shutdown (a preemption: its notice was the VM's time to shut down)."""
        inst = self.store.snapshot(collection, name)
        self._set_status(collection, name, "STOPPING")
        container = inst[PRIVATE]["container"]
        script = metadata_dict(inst).get("shutdown-script")
        if script and self.backend.state(container) == "Running":
            self.backend.run_script(container, script, "/var/log/gce-shutdown-script.log")
        self.backend.stop(container, force=force)
        self.ops.pause()

        def stopped(i: dict) -> None:
            i["status"] = final
            i["lastStopTimestamp"] = now_rfc3339()
            for nic in i["networkInterfaces"]:
                for ac in nic.get("accessConfigs", []):
                    ac.pop("natIP", None)  # an ephemeral external IP is released on stop
        self.store.update(collection, name, stopped)

    def _release_disks(self, disks_coll: str, user_link: str) -> None:
        with self.store.lock:
            for disk in self.store.collection(disks_coll).values():
                if user_link in disk.get("users", []):
                    disk["users"].remove(user_link)
                    if not disk["users"]:
                        del disk["users"]
        self.store.touch()

    def instance_get(self, project: str, zone: str, name: str) -> dict:
        return self.get_public(self.instances_collection(project, zone), name)

    def instance_delete(self, project: str, zone: str, name: str, request_id: str | None) -> dict:
        collection = self.instances_collection(project, zone)
        disks_coll = f"projects/{project}/zones/{zone}/disks"
        inst = self.store.snapshot(collection, name)
        if inst.get("deletionProtection"):
            raise ApiError(400, "resourceIsProtected",
                           "Invalid resource usage: 'Resource cannot be deleted if it's protected against deletion.'.")
        link = f"{LINK_BASE}{collection}/{name}"

        def work() -> None:
            if inst["status"] not in ("TERMINATED", "STOPPING"):
                self.halt(collection, name, final="STOPPING")
            self.backend.delete(inst[PRIVATE]["container"])
            self._release_disks(disks_coll, link)
            for spec in inst["disks"]:
                disk_name = last_segment(spec["source"])
                if spec["autoDelete"]:
                    disk = self.store.find(disks_coll, disk_name)
                    if disk is not None and not disk.get("users"):
                        if disk.get(PRIVATE, {}).get("volume", True):
                            self.backend.volume_delete(disk_name)
                        self.store.remove(disks_coll, disk_name)
            self.store.remove(collection, name)
        return self.ops.start(project, f"zones/{zone}", "delete", f"{collection}/{name}", inst["id"], work, request_id)

    def _instance_op(self, project: str, zone: str, name: str, op_type: str, work, request_id: str | None) -> dict:
        collection = self.instances_collection(project, zone)
        inst = self.store.get(collection, name)
        return self.ops.start(project, f"zones/{zone}", op_type, f"{collection}/{name}", inst["id"],
                              work, request_id)

    def instance_stop(self, project: str, zone: str, name: str, request_id: str | None) -> dict:
        collection = self.instances_collection(project, zone)

        def work() -> None:
            if self.store.get(collection, name)["status"] != "TERMINATED":
                self.halt(collection, name)
        return self._instance_op(project, zone, name, "stop", work, request_id)

    def instance_start(self, project: str, zone: str, name: str, request_id: str | None) -> dict:
        collection = self.instances_collection(project, zone)

        def work() -> None:
            if self.store.get(collection, name)["status"] == "RUNNING":
                return
            self._set_status(collection, name, "PROVISIONING")
            self.ops.pause(0.5)
            self._set_status(collection, name, "STAGING")
            self._boot(project, zone, name)
        return self._instance_op(project, zone, name, "start", work, request_id)

    def instance_reset(self, project: str, zone: str, name: str, request_id: str | None) -> dict:
        collection = self.instances_collection(project, zone)
        inst = self.store.get(collection, name)
        if inst["status"] != "RUNNING":
            raise ApiError(400, "resourceNotReady", f"The resource '{collection}/{name}' is not ready")

        def work() -> None:
            container = self.store.get(collection, name)[PRIVATE]["container"]
            self.backend.stop(container, force=True)
            self._boot(project, zone, name)
        return self._instance_op(project, zone, name, "reset", work, request_id)

    def instance_set_machine_type(self, project: str, zone: str, name: str, body: dict, request_id: str | None) -> dict:
        collection = self.instances_collection(project, zone)
        inst = self.store.get(collection, name)
        mt_link, cpus, memory = self._machine_type(project, zone, body.get("machineType"))
        if inst["status"] != "TERMINATED":
            raise ApiError(400, "invalid", "Invalid resource usage: 'Instance should be in the STOPPED state.'.")

        def work() -> None:
            self.ops.pause()
            self.backend.set_limits(inst[PRIVATE]["container"], cpus, memory)

            def change(i: dict) -> None:
                i["machineType"] = LINK_BASE + mt_link
                i[PRIVATE].update(cpus=cpus, memory=memory)
            self.store.update(collection, name, change)
        return self._instance_op(project, zone, name, "setMachineType", work, request_id)

    def set_labels(self, project: str, scope: str, plural: str, name: str, body: dict,
                   request_id: str | None) -> dict:
        """setLabels on instances, disks, snapshots: 412 conditionNotMet on a stale labelFingerprint."""
        if scope.startswith("zones/"):
            self.zone_scope(scope.split("/", 1)[1], project)
        collection = f"projects/{project}/{scope}/{plural}"
        resource = self.store.get(collection, name)
        check_fingerprint(body.get("labelFingerprint"), resource.get("labelFingerprint", fingerprint({})), "label")
        labels = body.get("labels") or {}
        for k, v in labels.items():
            if not LABEL_KEY_RE.fullmatch(k) or not isinstance(v, str) or not LABEL_VALUE_RE.fullmatch(v):
                raise invalid(f"labels.{k}", v, "Label keys and values must match GCE label rules.")

        def change(res: dict) -> None:
            if labels:
                res["labels"] = labels
            else:
                res.pop("labels", None)
            res["labelFingerprint"] = fingerprint(labels)
        return self.simple_mutation(project, scope, collection, name, "setLabels", change, request_id)

    def patch(self, project: str, scope: str, plural: str, name: str, body: dict, request_id: str | None) -> dict:
        """PATCH (firewalls, ...): the fields given replace the stored ones; name and ids are fixed."""
        collection = f"projects/{project}/{scope}/{plural}"
        self.store.get(collection, name)
        if body.get("name", name) != name:
            raise invalid("resource.name", body["name"], "The name of a resource cannot be changed.")
        fields = {k: v for k, v in body.items() if k not in ("kind", "id", "selfLink", "creationTimestamp", "name")}
        return self.simple_mutation(project, scope, collection, name, "patch", lambda r: r.update(fields),
                                    request_id)

    def instance_set_metadata(self, project: str, zone: str, name: str, body: dict, request_id: str | None) -> dict:
        collection = self.instances_collection(project, zone)
        inst = self.store.get(collection, name)
        check_fingerprint(body.get("fingerprint"), inst["metadata"]["fingerprint"], "metadata")
        items = list(body.get("items") or [])
        keys = [i.get("key") for i in items]
        if len(set(keys)) != len(keys):
            raise invalid("metadata.items", "", "Duplicate keys are not allowed.")

        def work() -> None:
            self.ops.pause()

            def change(i: dict) -> None:
                i["metadata"] = {"kind": "compute#metadata", "fingerprint": fingerprint(items),
                                 **({"items": items} if items else {})}
            self.store.update(collection, name, change)
            current = self.store.snapshot(collection, name)
            if current["status"] == "RUNNING":
                self.backend.install_ssh_keys(current[PRIVATE]["container"], ssh_users(metadata_dict(current)))
        return self._instance_op(project, zone, name, "setMetadata", work, request_id)

    def instance_set_tags(self, project: str, zone: str, name: str, body: dict, request_id: str | None) -> dict:
        collection = self.instances_collection(project, zone)
        inst = self.store.get(collection, name)
        check_fingerprint(body.get("fingerprint"), inst["tags"]["fingerprint"], "tags")
        items = list(body.get("items") or [])

        def change(i: dict) -> None:
            i["tags"] = {"fingerprint": fingerprint(items), **({"items": items} if items else {})}
        return self.simple_mutation(project, f"zones/{zone}", collection, name, "setTags", change, request_id)

    def instance_set_scheduling(self, project: str, zone: str, name: str, body: dict, request_id: str | None) -> dict:
        collection = self.instances_collection(project, zone)
        inst = self.store.get(collection, name)
        if body.get("provisioningModel", inst["scheduling"].get("provisioningModel")) != inst["scheduling"].get("provisioningModel") \
                and inst["status"] != "TERMINATED":
            raise ApiError(400, "invalid", "Invalid resource usage: 'Instance should be in the STOPPED state.'.")

        def change(i: dict) -> None:
            i["scheduling"] = dict(body)
        return self.simple_mutation(project, f"zones/{zone}", collection, name, "setScheduling", change, request_id)

    def instance_attach_disk(self, project: str, zone: str, name: str, body: dict, request_id: str | None) -> dict:
        collection = self.instances_collection(project, zone)
        disks_coll = f"projects/{project}/zones/{zone}/disks"
        inst = self.store.get(collection, name)
        if not body.get("source"):
            raise invalid("resource.source", "", "The disk source must be specified.")
        disk_name = last_segment(body["source"])
        disk = self.store.get(disks_coll, disk_name)
        mode = body.get("mode", "READ_WRITE")
        link = f"{LINK_BASE}{collection}/{name}"
        if disk.get("users") and mode == "READ_WRITE":
            raise ApiError(400, "resourceInUseByAnotherResource",
                           f"The disk resource '{disks_coll}/{disk_name}' is already being used by "
                           f"'{relative(disk['users'][0])}'")
        device = body.get("deviceName") or disk_name
        if any(d["deviceName"] == device for d in inst["disks"]):
            raise invalid("resource.deviceName", device, "The device name is already in use.")

        def work() -> None:
            self.ops.pause()
            self.backend.attach(inst[PRIVATE]["container"], device, disk_name)

            def change(i: dict) -> None:
                i["disks"].append({"kind": "compute#attachedDisk", "type": "PERSISTENT", "mode": mode,
                                   "source": f"{LINK_BASE}{disks_coll}/{disk_name}", "deviceName": device,
                                   "index": max(d["index"] for d in i["disks"]) + 1, "boot": False,
                                   "autoDelete": bool(body.get("autoDelete", False)), "interface": "SCSI",
                                   "diskSizeGb": disk["sizeGb"], "architecture": "X86_64"})
            self.store.update(collection, name, change)
            self.store.update(disks_coll, disk_name, lambda d: d.setdefault("users", []).append(link))
        return self._instance_op(project, zone, name, "attachDisk", work, request_id)

    def instance_detach_disk(self, project: str, zone: str, name: str, device: str, request_id: str | None) -> dict:
        collection = self.instances_collection(project, zone)
        disks_coll = f"projects/{project}/zones/{zone}/disks"
        inst = self.store.get(collection, name)
        spec = next((d for d in inst["disks"] if d["deviceName"] == device), None)
        if spec is None:
            raise invalid("deviceName", device, "No attached disk found with that device name.")
        if spec["boot"]:
            raise ApiError(400, "invalid", "Invalid resource usage: 'Cannot detach boot disk.'.")
        link = f"{LINK_BASE}{collection}/{name}"

        def work() -> None:
            self.ops.pause()
            self.backend.detach(inst[PRIVATE]["container"], device)
            self.store.update(collection, name,
                              lambda i: i.__setitem__("disks", [d for d in i["disks"] if d["deviceName"] != device]))

            def release(d: dict) -> None:
                if link in d.get("users", []):
                    d["users"].remove(link)
                if not d.get("users"):
                    d.pop("users", None)
            self.store.update(disks_coll, last_segment(spec["source"]), release)
        return self._instance_op(project, zone, name, "detachDisk", work, request_id)

    # -- disks, snapshots, resource policies ------------------------------------------------
    def disk_insert(self, project: str, zone: str, body: dict, request_id: str | None) -> dict:
        scope = self.zone_scope(zone, project)
        collection = f"projects/{project}/{scope}/disks"
        name = require_name("resource.name", body.get("name"))
        self._ensure_absent(collection, name)
        params = {"diskSizeGb": body.get("sizeGb", "10"), "diskType": body.get("type", "pd-standard"),
                  "labels": body.get("labels"), "resourcePolicies": body.get("resourcePolicies"),
                  "sourceImage": body.get("sourceImage")}
        disk = self._disk_from_init(project, zone, params, name, boot=False)
        snap = None
        if body.get("sourceSnapshot"):
            snap = self.store.snapshot(f"projects/{project}/global/snapshots", last_segment(body["sourceSnapshot"]))
            disk["sourceSnapshot"] = snap["selfLink"]
            disk["sourceSnapshotId"] = snap["id"]
            if "sizeGb" not in body:
                disk["sizeGb"] = snap["diskSizeGb"]
        if body.get("description"):
            disk["description"] = body["description"]

        def work() -> None:
            self.ops.pause()
            if snap is not None:
                self.backend.volume_from_snapshot(name, last_segment(snap["sourceDisk"]), snap["name"],
                                                  int(disk["sizeGb"]))
            else:
                self.backend.volume_create(name, int(disk["sizeGb"]))
            self.store.update(collection, name, lambda d: d.__setitem__("status", "READY"))
        return self.ops.start(project, scope, "insert", f"{collection}/{name}", disk["id"], work, request_id,
                              undo=lambda: self.store.remove(collection, name),
                              before=lambda: self.store.put(collection, disk))

    def disk_delete(self, project: str, zone: str, name: str, request_id: str | None) -> dict:
        scope = self.zone_scope(zone, project)
        collection = f"projects/{project}/{scope}/disks"

        def check(disk: dict) -> None:
            if disk.get("users"):
                raise ApiError(400, "resourceInUseByAnotherResource",
                               f"The disk resource '{collection}/{name}' is already being used by "
                               f"'{relative(disk['users'][0])}'")

        def cleanup(disk: dict) -> None:
            if disk.get(PRIVATE, {}).get("volume", True):
                self.backend.volume_delete(name)
        return self.simple_delete(project, scope, "disks", name, request_id, check=check, cleanup=cleanup)

    def disk_resize(self, project: str, zone: str, name: str, body: dict, request_id: str | None) -> dict:
        collection = f"projects/{project}/{self.zone_scope(zone, project)}/disks"
        disk = self.store.get(collection, name)
        size = str(body.get("sizeGb", ""))
        if not size.isdigit() or int(size) <= int(disk["sizeGb"]):
            raise invalid("sizeGb", size, f"New disk size '{size}' GiB must be larger than existing size "
                                          f"'{disk['sizeGb']}' GiB.")
        return self.simple_mutation(project, f"zones/{zone}", collection, name, "resizeDisk",
                                    lambda d: d.__setitem__("sizeGb", size), request_id)

    def disk_resource_policies(self, project: str, zone: str, name: str, body: dict, add: bool,
                               request_id: str | None) -> dict:
        collection = f"projects/{project}/{self.zone_scope(zone, project)}/disks"
        self.store.get(collection, name)
        policies = [LINK_BASE + relative(p) for p in body.get("resourcePolicies") or []]
        for p in policies:
            self.store.get(relative(p).rsplit("/", 1)[0], last_segment(p))

        def change(d: dict) -> None:
            current = [p for p in d.get("resourcePolicies", []) if p not in policies]
            current += policies if add else []
            if current:
                d["resourcePolicies"] = current
            else:
                d.pop("resourcePolicies", None)
        return self.simple_mutation(project, f"zones/{zone}", collection, name,
                                    "addResourcePolicies" if add else "removeResourcePolicies", change, request_id)

    def snapshot_insert(self, project: str, body: dict, request_id: str | None) -> dict:
        """snapshots.insert: like disks.createSnapshot, with the disk named in `sourceDisk`."""
        source = relative(body.get("sourceDisk") or "")
        parts = source.split("/")
        if len(parts) != 6 or parts[2] != "zones" or parts[4] != "disks":
            raise invalid("resource.sourceDisk", body.get("sourceDisk", ""), "Must name a zonal disk.")
        spec = {k: v for k, v in body.items() if k != "sourceDisk"}
        return self.disk_create_snapshot(parts[1], parts[3], parts[5], spec, request_id,
                                         op_scope="global", op_project=project)

    def disk_create_snapshot(self, project: str, zone: str, name: str, body: dict, request_id: str | None,
                             op_scope: str | None = None, op_project: str | None = None) -> dict:
        collection = f"projects/{project}/{self.zone_scope(zone, project)}/disks"
        disk = self.store.get(collection, name)
        project = op_project or project
        snap_name = require_name("resource.name", body.get("name"))
        snaps = f"projects/{project}/global/snapshots"
        self._ensure_absent(snaps, snap_name)
        snapshot = {"name": snap_name, "status": "CREATING", "sourceDisk": disk["selfLink"],
                    "sourceDiskId": disk["id"], "diskSizeGb": disk["sizeGb"], "storageBytes": "0",
                    "storageBytesStatus": "UP_TO_DATE", "labelFingerprint": fingerprint(body.get("labels") or {}),
                    "storageLocations": [catalog.ZONES[zone]], "architecture": "X86_64",
                    "snapshotType": "STANDARD"}
        if body.get("labels"):
            snapshot["labels"] = body["labels"]
        self._stamp_new(snapshot, "compute#snapshot", f"{snaps}/{snap_name}")

        def work() -> None:
            self.ops.pause()
            self.backend.volume_snapshot(name, snap_name)
            self.store.update(snaps, snap_name, lambda s: s.__setitem__("status", "READY"))
        if op_scope == "global":
            op_type, target, target_id = "insert", f"{snaps}/{snap_name}", snapshot["id"]
        else:
            op_type, target, target_id = "createSnapshot", f"{collection}/{name}", disk["id"]
        return self.ops.start(project, op_scope or f"zones/{zone}", op_type, target, target_id,
                              work, request_id, undo=lambda: self.store.remove(snaps, snap_name),
                              before=lambda: self.store.put(snaps, snapshot))

    def run_snapshot_schedules(self, project: str | None, advance_days: float) -> dict:
        """One run of every snapshot schedule, as at now + advance_days: each disk with a
        snapshotSchedulePolicy gets an auto-created snapshot, and auto-created snapshots older than
        the policy's maxRetentionDays are deleted. Returns the names made and removed."""
        when = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=advance_days)
        made, removed = [], []
        with self.store.lock:
            disk_colls = [(path, items) for path, items in self.store.collections.items()
                          if path.endswith("/disks") and (project is None or path.startswith(f"projects/{project}/"))]
            for path, items in disk_colls:
                proj, zone = path.split("/")[1], path.split("/")[3]
                for disk in list(items.values()):
                    for link in disk.get("resourcePolicies", []):
                        policy = self.store.find(relative(link).rsplit("/", 1)[0], last_segment(link))
                        if not policy or "snapshotSchedulePolicy" not in policy:
                            continue
                        snaps = f"projects/{proj}/global/snapshots"
                        name = f"{disk['name'][:30]}-{zone}-{when.strftime('%Y%m%d%H%M%S')}-{new_id()[-8:]}"
                        snap = {"name": name, "status": "READY", "sourceDisk": disk["selfLink"],
                                "sourceDiskId": disk["id"], "diskSizeGb": disk["sizeGb"], "storageBytes": "0",
                                "storageBytesStatus": "UP_TO_DATE", "autoCreated": True,
                                "sourceSnapshotSchedulePolicy": policy["selfLink"],
                                "sourceSnapshotSchedulePolicyId": policy["id"],
                                "labelFingerprint": fingerprint({}), "storageLocations": [catalog.ZONES[zone]],
                                "architecture": "X86_64", "snapshotType": "STANDARD"}
                        self._stamp_new(snap, "compute#snapshot", f"{snaps}/{name}")
                        snap["creationTimestamp"] = when.astimezone(
                            datetime.timezone(datetime.timedelta(hours=-8))).isoformat(timespec="milliseconds")
                        self.store.collection(snaps)[name] = snap
                        made.append(name)
            for path, items in list(self.store.collections.items()):
                if not path.endswith("/global/snapshots"):
                    continue
                for snap in list(items.values()):
                    link = snap.get("sourceSnapshotSchedulePolicy")
                    policy = self.store.find(relative(link).rsplit("/", 1)[0], last_segment(link)) if link else None
                    days = ((policy or {}).get("snapshotSchedulePolicy", {}).get("retentionPolicy") or {}).get(
                        "maxRetentionDays")
                    if snap.get("autoCreated") and days and \
                            when - datetime.datetime.fromisoformat(snap["creationTimestamp"]) > datetime.timedelta(days=int(days)):
                        del items[snap["name"]]
                        removed.append(snap["name"])
        for name in made:
            snap = next(c[name] for p, c in self.store.collections.items() if p.endswith("/global/snapshots") and name in c)
            self.backend.volume_snapshot(last_segment(snap["sourceDisk"]), name)
        self.store.touch()
        return {"created": made, "deleted": removed}

    def resource_policy_insert(self, project: str, region: str, body: dict, request_id: str | None) -> dict:
        scope = self.region_scope(region, project)

        def prepare(res: dict) -> None:
            policy = res.get("snapshotSchedulePolicy")
            if policy:
                daily = (policy.get("schedule") or {}).get("dailySchedule")
                if daily is not None:
                    if int(daily.get("daysInCycle", 1)) != 1:
                        raise invalid("resource.snapshotSchedulePolicy.schedule.dailySchedule.daysInCycle",
                                      daily.get("daysInCycle"), "Must be 1.")
                    if not re.fullmatch(r"([01][0-9]|2[0-3]):00", daily.get("startTime", "")):
                        raise invalid("resource.snapshotSchedulePolicy.schedule.dailySchedule.startTime",
                                      daily.get("startTime", ""), "Must be an hour in HH:00 format (UTC).")
                    daily.setdefault("duration", "PT14400S")
                retention = policy.get("retentionPolicy") or {}
                if "maxRetentionDays" in retention and int(retention["maxRetentionDays"]) < 1:
                    raise invalid("resource.snapshotSchedulePolicy.retentionPolicy.maxRetentionDays",
                                  retention["maxRetentionDays"], "Must be at least 1.")
            res["status"] = "READY"
        return self.simple_insert(project, scope, "resourcePolicies", "compute#resourcePolicy", body,
                                  request_id, prepare)

    # -- networking and load balancing ------------------------------------------------------
    def route_insert(self, project: str, body: dict, request_id: str | None) -> dict:
        def prepare(res: dict) -> None:
            if not res.get("destRange"):
                raise invalid("resource.destRange", "", "Must be specified.")
            res.setdefault("network", f"{LINK_BASE}projects/{project}/global/networks/default")
            res["network"] = LINK_BASE + relative(res["network"]) if "projects/" in res["network"] else \
                f"{LINK_BASE}projects/{project}/global/networks/{last_segment(res['network'])}"
            res.setdefault("priority", 1000)
            hop = res.get("nextHopInstance")
            if hop:
                path = relative(hop)
                if not path.startswith("projects/"):
                    path = f"projects/{project}/{path}"
                self.store.get(path.rsplit("/", 1)[0], last_segment(path))
                res["nextHopInstance"] = LINK_BASE + path
            res["routeType"] = "STATIC"
        return self.simple_insert(project, "global", "routes", "compute#route", body, request_id, prepare)

    def firewall_insert(self, project: str, body: dict, request_id: str | None) -> dict:
        def prepare(res: dict) -> None:
            res.setdefault("network", f"{LINK_BASE}projects/{project}/global/networks/default")
            res.setdefault("priority", 1000)
            res.setdefault("direction", "INGRESS")
            res.setdefault("disabled", False)
            res.setdefault("logConfig", {"enable": False})
            if not res.get("allowed") and not res.get("denied"):
                raise invalid("resource.allowed", "", "Either allowed or denied must be specified.")
        return self.simple_insert(project, "global", "firewalls", "compute#firewall", body, request_id, prepare)

    def http_health_check_insert(self, project: str, body: dict, request_id: str | None) -> dict:
        def prepare(res: dict) -> None:
            for key, default in (("port", 80), ("requestPath", "/"), ("checkIntervalSec", 5), ("timeoutSec", 5),
                                 ("unhealthyThreshold", 2), ("healthyThreshold", 2)):
                res.setdefault(key, default)
        return self.simple_insert(project, "global", "httpHealthChecks", "compute#httpHealthCheck", body,
                                  request_id, prepare)

    def target_pool_insert(self, project: str, region: str, body: dict, request_id: str | None) -> dict:
        scope = self.region_scope(region, project)

        def prepare(res: dict) -> None:
            res["instances"] = [self._instance_link(project, i) for i in res.get("instances", [])]
            res["healthChecks"] = [LINK_BASE + self._global_ref(project, "httpHealthChecks", h)
                                   for h in res.get("healthChecks", [])]
            if res.get("backupPool"):
                res["backupPool"] = LINK_BASE + relative(res["backupPool"])
            res.setdefault("sessionAffinity", "NONE")
        return self.simple_insert(project, scope, "targetPools", "compute#targetPool", body, request_id, prepare)

    def _global_ref(self, project: str, plural: str, ref: str) -> str:
        path = relative(ref)
        if not path.startswith("projects/"):
            path = f"projects/{project}/global/{plural}/{last_segment(ref)}"
        self.store.get(path.rsplit("/", 1)[0], last_segment(path))
        return path

    def _instance_link(self, project: str, ref: str) -> str:
        path = relative(ref)
        if not path.startswith("projects/"):
            path = f"projects/{project}/{path}"
        self.store.get(path.rsplit("/", 1)[0], last_segment(path))
        return LINK_BASE + path

    def target_pool_members(self, project: str, region: str, name: str, body: dict, add: bool,
                            request_id: str | None) -> dict:
        collection = f"projects/{project}/{self.region_scope(region, project)}/targetPools"
        self.store.get(collection, name)
        links = [self._instance_link(project, i["instance"]) for i in body.get("instances") or []]

        def change(pool: dict) -> None:
            current = [i for i in pool.get("instances", []) if i not in links]
            pool["instances"] = current + (links if add else [])
        return self.simple_mutation(project, f"regions/{region}", collection, name,
                                    "addInstance" if add else "removeInstance", change, request_id)

    def target_pool_health_checks(self, project: str, region: str, name: str, body: dict, add: bool,
                                  request_id: str | None) -> dict:
        collection = f"projects/{project}/{self.region_scope(region, project)}/targetPools"
        self.store.get(collection, name)
        links = [LINK_BASE + self._global_ref(project, "httpHealthChecks", ref.get("healthCheck", ""))
                 for ref in body.get("healthChecks") or []]

        def change(pool: dict) -> None:
            pool["healthChecks"] = [h for h in pool.get("healthChecks", []) if h not in links] + (links if add else [])
        return self.simple_mutation(project, f"regions/{region}", collection, name,
                                    "addHealthCheck" if add else "removeHealthCheck", change, request_id)

    def target_pool_set_backup(self, project: str, region: str, name: str, body: dict, ratio: str | None,
                               request_id: str | None) -> dict:
        collection = f"projects/{project}/{self.region_scope(region, project)}/targetPools"
        self.store.get(collection, name)
        backup = None
        if body.get("target"):
            path = relative(body["target"])
            if not path.startswith("projects/"):
                path = f"projects/{project}/regions/{region}/targetPools/{last_segment(path)}"
            self.store.get(path.rsplit("/", 1)[0], last_segment(path))
            backup = LINK_BASE + path

        def change(pool: dict) -> None:
            if backup:
                pool["backupPool"] = backup
            else:
                pool.pop("backupPool", None)
            if ratio is not None:
                pool["failoverRatio"] = float(ratio)
        return self.simple_mutation(project, f"regions/{region}", collection, name, "setBackup", change, request_id)

    def target_pool_health(self, project: str, region: str, name: str, body: dict) -> dict:
        collection = f"projects/{project}/{self.region_scope(region, project)}/targetPools"
        pool = self.store.snapshot(collection, name)
        link = self._instance_link(project, body.get("instance", ""))
        if link not in pool.get("instances", []):
            raise invalid("resource.instance", body.get("instance"), "The instance is not in the target pool.")
        path = relative(link)
        inst = self.store.snapshot(path.rsplit("/", 1)[0], last_segment(path))
        ip = inst["networkInterfaces"][0].get("networkIP", "")
        check = None
        for hc in pool.get("healthChecks", []):
            check = self.store.find(relative(hc).rsplit("/", 1)[0], last_segment(hc))
        healthy = inst["status"] == "RUNNING"
        if healthy and check is not None and self.backend.containers and ip:
            try:
                url = f"http://{ip}:{check.get('port', 80)}{check.get('requestPath', '/')}"
                with urllib.request.urlopen(url, timeout=min(5, check.get("timeoutSec", 5))) as resp:
                    healthy = resp.status == 200
            except OSError:
                healthy = False
        state = {"healthState": "HEALTHY" if healthy else "UNHEALTHY", "instance": link, "ipAddress": ip}
        if check is not None:
            state["port"] = check.get("port", 80)
        return {"kind": "compute#targetPoolInstanceHealth", "healthStatus": [state]}

    def forwarding_rule_insert(self, project: str, region: str, body: dict, request_id: str | None) -> dict:
        scope = self.region_scope(region, project)

        def prepare(res: dict) -> None:
            if res.get("target"):
                target = relative(res["target"])
                if not target.startswith("projects/"):
                    target = f"projects/{project}/{target}"
                self.store.get(target.rsplit("/", 1)[0], last_segment(target))
                res["target"] = LINK_BASE + target
            res.setdefault("IPProtocol", "TCP")
            res.setdefault("loadBalancingScheme", "EXTERNAL")
            res.setdefault("networkTier", "PREMIUM")
            res.setdefault("IPAddress", "127.0.0.1")
            res["fingerprint"] = fingerprint(res.get("name"))
        return self.simple_insert(project, scope, "forwardingRules", "compute#forwardingRule", body,
                                  request_id, prepare)
