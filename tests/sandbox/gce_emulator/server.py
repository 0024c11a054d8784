"""HTTP front: Compute v1 routes, the metadata server and the /_admin/ fault-injection endpoints."""
from __future__ import annotations

import copy
import hashlib
import json
import logging
import random
import re
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

from . import catalog, discovery
from .backend import BackendError, IncusBackend, NullBackend
from .compute import PRIVATE, Compute, fingerprint, last_segment, metadata_dict
from .listing import aggregated_response
from .operations import Operations
from .store import LINK_BASE, ApiError, Store, new_id, now_rfc3339

log = logging.getLogger("gce_emulator.server")

P = r"/projects/(?P<project>[^/]+)"
Z = P + r"/zones/(?P<zone>[^/]+)"
R = P + r"/regions/(?P<region>[^/]+)"
G = P + r"/global"
N = r"/(?P<name>[^/]+)"
OPERATION_WAIT_LIMIT = 120.0


class Route:
    def __init__(self, method: str, pattern: str, stat: str, fn: Callable[..., Any]):
        self.method, self.regex, self.stat, self.fn = method, re.compile(pattern + r"/?$"), stat, fn


class Emulator:
    """Everything one emulator process holds; the HTTP handler only parses and dispatches."""

    def __init__(self, state_dir: str | None, containers: bool, latency: float = 0.0,
                 wait_limit: float = OPERATION_WAIT_LIMIT):
        self.store = Store(state_dir)
        self.backend = IncusBackend() if containers else NullBackend()
        self.ops = Operations(self.store)
        self.ops.latency = latency
        self.compute = Compute(self.store, self.backend, self.ops)
        self.wait_limit = wait_limit
        self.stats_lock = threading.Lock()
        self.stats: dict[str, int] = {}
        self.requests = 0
        self.faults: dict[str, Any] = {"error_rate": 0.0, "codes": [503], "paths": None}
        self.routes = self._routes()
        self.reconcile()

    # -- routes ------------------------------------------------------------------------------
    def _routes(self) -> list[Route]:
        c = self.compute
        ops = self.ops

        def rid(query: dict) -> str | None:
            return query.get("requestId")

        def coll(m: dict, scope: str, plural: str) -> str:
            return f"projects/{m['project']}/{scope}/{plural}"

        def scoped(plural: str, kind: str, scope_of, insert=None, extra: list[Route] | None = None,
                   prefix: str = "", aggregated: bool = False, zonal: bool = False) -> list[Route]:
            out = [
                Route("GET", prefix + f"/{plural}", f"{plural}.list",
                      lambda m, q, b: c.list_collection(kind, coll(m, scope_of(m), plural), q)),
                Route("GET", prefix + f"/{plural}" + N, f"{plural}.get",
                      lambda m, q, b: c.get_public(coll(m, scope_of(m), plural), m["name"])),
                Route("POST", prefix + f"/{plural}", f"{plural}.insert",
                      insert or (lambda m, q, b: c.simple_insert(m["project"], scope_of(m), plural, kind, b, rid(q)))),
                Route("DELETE", prefix + f"/{plural}" + N, f"{plural}.delete",
                      lambda m, q, b: c.simple_delete(m["project"], scope_of(m), plural, m["name"], rid(q))),
            ]
            if aggregated:
                out.append(Route("GET", P + f"/aggregated/{plural}", f"{plural}.aggregatedList",
                                 lambda m, q, b: c.aggregated(kind, plural, m["project"], q, zonal=zonal)))
            return (extra or []) + out

        def zone_scope(m: dict) -> str:
            return c.zone_scope(m["zone"], m["project"])

        def region_scope(m: dict) -> str:
            return c.region_scope(m["region"], m["project"])

        def global_scope(_m: dict) -> str:
            return "global"

        def operation_routes(prefix: str, scope_of, name: str) -> list[Route]:
            return [
                Route("GET", prefix + "/operations", f"{name}.list",
                      lambda m, q, b: c.list_collection("compute#operation", coll(m, scope_of(m), "operations"), q)),
                Route("GET", prefix + "/operations" + N, f"{name}.get",
                      lambda m, q, b: ops.get(m["project"], scope_of(m), m["name"])),
                Route("POST", prefix + "/operations" + N + "/wait", f"{name}.wait",
                      lambda m, q, b: ops.wait(m["project"], scope_of(m), m["name"], self.wait_limit)),
                Route("DELETE", prefix + "/operations" + N, f"{name}.delete",
                      lambda m, q, b: self._delete_operation(m["project"], scope_of(m), m["name"])),
            ]

        inst = Z + "/instances" + N
        instance_verbs = [
            Route("POST", inst + "/stop", "instances.stop", lambda m, q, b: c.instance_stop(m["project"], m["zone"], m["name"], rid(q))),
            Route("POST", inst + "/start", "instances.start", lambda m, q, b: c.instance_start(m["project"], m["zone"], m["name"], rid(q))),
            Route("POST", inst + "/reset", "instances.reset", lambda m, q, b: c.instance_reset(m["project"], m["zone"], m["name"], rid(q))),
            Route("POST", inst + "/setMachineType", "instances.setMachineType",
                  lambda m, q, b: c.instance_set_machine_type(m["project"], m["zone"], m["name"], b, rid(q))),
            Route("POST", inst + "/setLabels", "instances.setLabels",
                  lambda m, q, b: c.set_labels(m["project"], f"zones/{m['zone']}", "instances", m["name"], b, rid(q))),
            Route("POST", inst + "/setMetadata", "instances.setMetadata",
                  lambda m, q, b: c.instance_set_metadata(m["project"], m["zone"], m["name"], b, rid(q))),
            Route("POST", inst + "/setTags", "instances.setTags",
                  lambda m, q, b: c.instance_set_tags(m["project"], m["zone"], m["name"], b, rid(q))),
            Route("POST", inst + "/setScheduling", "instances.setScheduling",
                  lambda m, q, b: c.instance_set_scheduling(m["project"], m["zone"], m["name"], b, rid(q))),
            Route("POST", inst + "/attachDisk", "instances.attachDisk",
                  lambda m, q, b: c.instance_attach_disk(m["project"], m["zone"], m["name"], b, rid(q))),
            Route("POST", inst + "/detachDisk", "instances.detachDisk",
                  lambda m, q, b: c.instance_detach_disk(m["project"], m["zone"], m["name"], q.get("deviceName", ""), rid(q))),
            Route("GET", inst + "/getSerialPortOutput", "instances.getSerialPortOutput",
                  lambda m, q, b: {"kind": "compute#serialPortOutput", "contents": "", "start": "0", "next": "0",
                                   "selfLink": c.instance_get(m["project"], m["zone"], m["name"])["selfLink"] + "/serialPort"}),
            Route("DELETE", inst, "instances.delete", lambda m, q, b: c.instance_delete(m["project"], m["zone"], m["name"], rid(q))),
            Route("POST", Z + "/instances", "instances.insert", lambda m, q, b: c.instance_insert(m["project"], m["zone"], b, rid(q))),
        ]
        disk = Z + "/disks" + N
        disk_verbs = [
            Route("POST", disk + "/resize", "disks.resize", lambda m, q, b: c.disk_resize(m["project"], m["zone"], m["name"], b, rid(q))),
            Route("POST", disk + "/createSnapshot", "disks.createSnapshot",
                  lambda m, q, b: c.disk_create_snapshot(m["project"], m["zone"], m["name"], b, rid(q))),
            Route("POST", disk + "/addResourcePolicies", "disks.addResourcePolicies",
                  lambda m, q, b: c.disk_resource_policies(m["project"], m["zone"], m["name"], b, True, rid(q))),
            Route("POST", disk + "/removeResourcePolicies", "disks.removeResourcePolicies",
                  lambda m, q, b: c.disk_resource_policies(m["project"], m["zone"], m["name"], b, False, rid(q))),
            Route("POST", disk + "/setLabels", "disks.setLabels",
                  lambda m, q, b: c.set_labels(m["project"], f"zones/{m['zone']}", "disks", m["name"], b, rid(q))),
            Route("DELETE", disk, "disks.delete", lambda m, q, b: c.disk_delete(m["project"], m["zone"], m["name"], rid(q))),
            Route("POST", Z + "/disks", "disks.insert", lambda m, q, b: c.disk_insert(m["project"], m["zone"], b, rid(q))),
        ]
        pool = R + "/targetPools" + N
        pool_verbs = [
            Route("POST", pool + "/addInstance", "targetPools.addInstance",
                  lambda m, q, b: c.target_pool_members(m["project"], m["region"], m["name"], b, True, rid(q))),
            Route("POST", pool + "/removeInstance", "targetPools.removeInstance",
                  lambda m, q, b: c.target_pool_members(m["project"], m["region"], m["name"], b, False, rid(q))),
            Route("POST", pool + "/addHealthCheck", "targetPools.addHealthCheck",
                  lambda m, q, b: c.target_pool_health_checks(m["project"], m["region"], m["name"], b, True, rid(q))),
            Route("POST", pool + "/removeHealthCheck", "targetPools.removeHealthCheck",
                  lambda m, q, b: c.target_pool_health_checks(m["project"], m["region"], m["name"], b, False, rid(q))),
            Route("POST", pool + "/setBackup", "targetPools.setBackup",
                  lambda m, q, b: c.target_pool_set_backup(m["project"], m["region"], m["name"], b,
                                                           q.get("failoverRatio"), rid(q))),
            Route("POST", pool + "/getHealth", "targetPools.getHealth",
                  lambda m, q, b: c.target_pool_health(m["project"], m["region"], m["name"], b)),
        ]
        routes = [
            Route("GET", P + "/zones", "zones.list", lambda m, q, b: c.zones_list(m["project"], q)),
            Route("GET", P + "/zones" + r"/(?P<zone>[^/]+)", "zones.get", lambda m, q, b: c.zone_get(m["project"], m["zone"])),
            Route("GET", P + "/regions", "regions.list", lambda m, q, b: c.regions_list(m["project"], q)),
            Route("GET", P + "/regions" + r"/(?P<region>[^/]+)", "regions.get", lambda m, q, b: c.region_get(m["project"], m["region"])),
            Route("GET", Z + "/machineTypes", "machineTypes.list", lambda m, q, b: c.machine_types_list(m["project"], m["zone"], q)),
            Route("GET", Z + "/machineTypes" + N, "machineTypes.get",
                  lambda m, q, b: c.machine_type_get(m["project"], m["zone"], m["name"])),
            Route("GET", P + "/aggregated/machineTypes", "machineTypes.aggregatedList",
                  lambda m, q, b: c.machine_types_aggregated(m["project"], q)),
            Route("GET", P + "/aggregated/operations", "globalOperations.aggregatedList",
                  lambda m, q, b: self._operations_aggregated(m["project"], q)),
            Route("GET", P, "projects.get", lambda m, q, b: self._project(m["project"])),
        ]
        routes += instance_verbs
        routes += scoped("instances", "compute#instance", zone_scope, prefix=Z, aggregated=True, zonal=True,
                         insert=instance_verbs[-1].fn)
        routes += disk_verbs
        routes += scoped("disks", "compute#disk", zone_scope, prefix=Z, aggregated=True, zonal=True,
                         insert=disk_verbs[-1].fn, extra=[disk_verbs[-2]])
        routes.append(Route("POST", G + "/snapshots" + N + "/setLabels", "snapshots.setLabels",
                            lambda m, q, b: c.set_labels(m["project"], "global", "snapshots", m["name"], b, rid(q))))
        routes.append(Route("PATCH", G + "/firewalls" + N, "firewalls.patch",
                            lambda m, q, b: c.patch(m["project"], "global", "firewalls", m["name"], b, rid(q))))
        routes.append(Route("PATCH", R + "/resourcePolicies" + N, "resourcePolicies.patch",
                            lambda m, q, b: c.patch(m["project"], c.region_scope(m["region"], m["project"]),
                                                    "resourcePolicies", m["name"], b, rid(q))))
        routes += scoped("snapshots", "compute#snapshot", global_scope, prefix=G,
                         insert=lambda m, q, b: c.snapshot_insert(m["project"], b, rid(q)))
        routes += scoped("resourcePolicies", "compute#resourcePolicy", region_scope, prefix=R, aggregated=True,
                         insert=lambda m, q, b: c.resource_policy_insert(m["project"], m["region"], b, rid(q)))
        routes += scoped("firewalls", "compute#firewall", global_scope, prefix=G,
                         insert=lambda m, q, b: c.firewall_insert(m["project"], b, rid(q)))
        routes += scoped("routes", "compute#route", global_scope, prefix=G,
                         insert=lambda m, q, b: c.route_insert(m["project"], b, rid(q)))
        routes += scoped("httpHealthChecks", "compute#httpHealthCheck", global_scope, prefix=G,
                         insert=lambda m, q, b: c.http_health_check_insert(m["project"], b, rid(q)))
        routes += pool_verbs
        routes += scoped("targetPools", "compute#targetPool", region_scope, prefix=R, aggregated=True,
                         insert=lambda m, q, b: c.target_pool_insert(m["project"], m["region"], b, rid(q)))
        routes += scoped("forwardingRules", "compute#forwardingRule", region_scope, prefix=R, aggregated=True,
                         insert=lambda m, q, b: c.forwarding_rule_insert(m["project"], m["region"], b, rid(q)))
        routes += operation_routes(Z, zone_scope, "zoneOperations")
        routes += operation_routes(R, region_scope, "regionOperations")
        routes += operation_routes(G, global_scope, "globalOperations")
        return routes

    def _project(self, project: str) -> dict:
        return {"kind": "compute#project", "id": catalog.stable_id("project", project), "name": project,
                "creationTimestamp": catalog.CREATION_TIMESTAMP,
                "commonInstanceMetadata": {"kind": "compute#metadata", "fingerprint": fingerprint([])},
                "selfLink": f"{LINK_BASE}projects/{project}", "xpnProjectStatus": "UNSPECIFIED_XPN_PROJECT_STATUS",
                "defaultNetworkTier": "PREMIUM", "defaultServiceAccount": f"{project}-compute@developer.gserviceaccount.com"}

    def _delete_operation(self, project: str, scope: str, name: str) -> dict:
        op = self.ops.get(project, scope, name)
        self.store.remove(self.ops.collection(project, scope), op["name"])
        return {}

    def _operations_aggregated(self, project: str, query: dict) -> dict:
        with self.store.lock:
            scoped = {scope: list(self.store.collection(path).values())
                      for scope, path in self.store.collections_matching(project, "operations")}
        return aggregated_response("compute#operationAggregatedList", "operations", project, scoped,
                                   sorted(scoped), query)

    def dispatch(self, method: str, path: str, query: dict, body: dict) -> Any:
        for route in self.routes:
            if route.method != method:
                continue
            m = route.regex.match(path)
            if m:
                self.count_route(f"{method} {route.stat}")
                repeated = self._repeated_request(method, path, query.get("requestId"))
                if repeated is not None:
                    return repeated
                if body:
                    body = canonical_request(method, path, body)
                return route.fn(m.groupdict(), query, body)
        raise ApiError(404, "notFound", f"The requested URL {path} was not found on this server.")

    def _repeated_request(self, method: str, path: str, request_id: str | None) -> dict | None:
        """GCE requestId semantics: the same mutating call again returns the first operation
        (checked before any validation, so a retried insert does not turn into a 409)."""
        if not request_id or method == "GET" or "/operations/" in path:
            return None
        m = re.match(r"/projects/([^/]+)/((?:zones|regions)/[^/]+|global)/", path)
        if not m:
            return None
        coll = self.ops.collection(m.group(1), m.group(2))
        with self.store.lock:
            link = self.store.request_ids.get(f"{coll}/{request_id}")
            op = self.store.find(coll, link.rsplit("/", 1)[-1]) if link else None
            return copy.deepcopy(op) if op else None

    def count_request(self) -> None:
        """Every Compute API request (admin calls are not counted)."""
        with self.stats_lock:
            self.requests += 1

    def count_route(self, stat: str) -> None:
        with self.stats_lock:
            self.stats[stat] = self.stats.get(stat, 0) + 1

    # -- admin -------------------------------------------------------------------------------
    def admin(self, method: str, action: str, body: dict) -> Any:
        if method == "GET" and action == "stats":
            with self.stats_lock:
                return {"requests": self.requests, "by_route": dict(self.stats)}
        if method == "GET" and action == "ready":
            return {"ready": True, "containers": self.backend.containers}
        if method != "POST":
            raise ApiError(405, "methodNotAllowed", f"{method} /_admin/{action} is not supported")
        if action == "stats/reset":
            with self.stats_lock:
                self.requests, self.stats = 0, {}
            return {}
        if action == "faults":
            rate = float(body.get("error_rate", 0))
            if not 0 <= rate <= 1:
                raise ApiError(400, "invalid", "error_rate must be within 0..1")
            self.faults = {"error_rate": rate, "codes": [int(c) for c in body.get("codes") or [503]],
                           "paths": body.get("paths")}
            return self.faults
        if action == "fail_next_operation":
            reason = body.get("reason", "ZONE_RESOURCE_POOL_EXHAUSTED")
            self.ops.fail_next[body.get("operation_type") or "*"] = reason
            return {"fail_next": dict(self.ops.fail_next)}
        if action == "latency":
            self.ops.latency = max(0.0, float(body.get("seconds", 0)))
            return {"seconds": self.ops.latency}
        if action == "reset":
            self.forget_all()
            self.ops.fail_next.clear()
            self.faults = {"error_rate": 0.0, "codes": [503], "paths": None}
            with self.stats_lock:
                self.requests, self.stats = 0, {}
            return {}
        if action == "populate":
            return self.populate(body)
        if action == "preempt":
            return self.preempt(body)
        if action == "run_snapshot_schedules":
            return self.compute.run_snapshot_schedules(body.get("project"), float(body.get("advance_days", 0)))
        raise ApiError(404, "notFound", f"Unknown admin endpoint {action}")

    def forget_all(self) -> None:
        """Admin reset: delete the containers and volumes of every instance and disk this emulator
        knows (never anything else on the host), then drop all state. Operations still running
        are let finish first (up to the wait limit), so no worker recreates what was deleted."""
        self.store.wait_until(lambda: not self.ops.running(), self.wait_limit)
        with self.store.lock:
            containers = [i[PRIVATE]["container"] for path, items in self.store.collections.items()
                          if path.endswith("/instances") for i in items.values()]
            volumes = [d["name"] for path, items in self.store.collections.items()
                       if path.endswith("/disks") for d in items.values() if d.get(PRIVATE, {}).get("volume", True)]
            self.store.clear()
        for name in containers:
            try:
                self.backend.delete(name)
            except BackendError as exc:
                log.warning("reset: %s", exc)
        for disk in volumes:
            self.backend.volume_delete(disk)

    def populate(self, body: dict) -> dict:
        """Synthetic RUNNING instances for benchmarks (no containers, no operations)."""
        if self.backend.containers:
            raise ApiError(400, "invalid", "populate is only available with --no-containers")
        project = body.get("project") or "bench"
        count = int(body.get("count", 5000))
        zones = list(catalog.ZONES)[: max(1, min(int(body.get("zones", 24)), len(catalog.ZONES)))]
        prefix = body.get("prefix", "bench")
        machine = body.get("machine_type", "e2-small")
        labels = body.get("labels") or {"fleet": "bench"}
        created = 0
        with self.store.lock:
            for i in range(count):
                zone = zones[i % len(zones)]
                collection = f"projects/{project}/zones/{zone}/instances"
                name = f"{prefix}-{i:05d}"
                base = f"{LINK_BASE}projects/{project}/zones/{zone}"
                ip = f"10.{128 + (i >> 16) % 64}.{(i >> 8) & 255}.{i & 255}"
                instance = {
                    "kind": "compute#instance", "id": new_id(), "creationTimestamp": now_rfc3339(), "name": name,
                    "description": "", "tags": {"fingerprint": fingerprint([])},
                    "machineType": f"{base}/machineTypes/{machine}", "status": "RUNNING", "zone": base,
                    "canIpForward": False,
                    "networkInterfaces": [{"kind": "compute#networkInterface", "name": "nic0", "networkIP": ip,
                                           "network": f"{LINK_BASE}projects/{project}/global/networks/default",
                                           "fingerprint": fingerprint(name), "stackType": "IPV4_ONLY"}],
                    "disks": [{"kind": "compute#attachedDisk", "type": "PERSISTENT", "mode": "READ_WRITE",
                               "source": f"{base}/disks/{name}", "deviceName": "persistent-disk-0", "index": 0,
                               "boot": True, "autoDelete": True, "interface": "SCSI", "diskSizeGb": "10"}],
                    "metadata": {"kind": "compute#metadata", "fingerprint": fingerprint([])},
                    "scheduling": {"provisioningModel": "STANDARD", "preemptible": False,
                                   "onHostMaintenance": "MIGRATE", "automaticRestart": True},
                    "labels": dict(labels), "labelFingerprint": fingerprint(labels),
                    "cpuPlatform": "Intel Cascade Lake", "startRestricted": False, "deletionProtection": False,
                    "fingerprint": fingerprint(i), "selfLink": f"{base}/instances/{name}",
                    "lastStartTimestamp": now_rfc3339(),
                    PRIVATE: {"container": f"gce-{name}", "nested": False, "preempted": False,
                              "cpus": catalog.MACHINE_TYPES[machine][0], "memory": catalog.MACHINE_TYPES[machine][1]},
                }
                self.store.collections.setdefault(collection, {})[name] = instance
                created += 1
        self.store.touch()
        return {"project": project, "created": created, "zones": len(zones)}

    def find_instance(self, project: str | None, zone: str, name: str) -> tuple[str, dict] | None:
        with self.store.lock:
            for path, items in self.store.collections.items():
                if path.endswith(f"/zones/{zone}/instances") and name in items and \
                        (project is None or path.startswith(f"projects/{project}/")):
                    return path, items[name]
        return None

    def preempt(self, body: dict) -> dict:
        found = self.find_instance(body.get("project"), body.get("zone", ""), body.get("instance", ""))
        if found is None:
            raise ApiError(404, "notFound", f"No instance {body.get('zone')}/{body.get('instance')}")
        collection, inst = found
        sched = inst.get("scheduling", {})
        if not (sched.get("provisioningModel") == "SPOT" or sched.get("preemptible")):
            raise ApiError(400, "invalid", "Only Spot or preemptible instances can be preempted")
        if inst["status"] != "RUNNING":
            raise ApiError(400, "invalid", f"Instance is {inst['status']}, not RUNNING")
        notice = max(0.0, min(30.0, float(body.get("notice_seconds", 0))))
        name = inst["name"]
        self.store.update(collection, name, lambda i: i[PRIVATE].__setitem__("preempted", True))
        threading.Thread(target=self._preempt_later, args=(collection, name, notice), daemon=True).start()
        return {"instance": inst["selfLink"], "notice_seconds": notice}

    def _preempt_later(self, collection: str, name: str, notice: float) -> None:
        time.sleep(notice)  # the notice period GCE gives (ACPI soft-off follows)
        parts = collection.split("/")
        project, zone = parts[1], parts[3]
        inst = self.store.find(collection, name)
        if inst is None:
            return
        delete = inst.get("scheduling", {}).get("instanceTerminationAction") == "DELETE"
        # Compute Engine stops a preempted VM at the end of its notice, whether it has shut down or not.
        with self.ops.target_lock(f"{collection}/{name}"):
            self.compute.halt(collection, name, force=True)
        self.ops.record_done(project, f"zones/{zone}", "compute.instances.preempted",
                             f"{collection}/{name}", inst["id"], "Instance was preempted.")
        if delete:
            self.compute.instance_delete(project, zone, name, None)

    # -- metadata server ---------------------------------------------------------------------
    def metadata_instance(self, client_ip: str, header: str | None) -> tuple[str, dict] | None:
        if header:
            parts = header.strip("/").split("/")
            project = parts[-3] if len(parts) >= 3 else None
            return self.find_instance(project, parts[-2] if len(parts) >= 2 else "", parts[-1])
        with self.store.lock:
            for path, items in self.store.collections.items():
                if not path.endswith("/instances"):
                    continue
                for inst in items.values():
                    if any(n.get("networkIP") == client_ip for n in inst.get("networkInterfaces", [])):
                        return path, inst
        return None

    def metadata_value(self, collection: str, name: str, key: str) -> tuple[Any, bool]:
        """(value, is_json) for a metadata path below /computeMetadata/v1/."""
        inst = self.store.find(collection, name)
        if inst is None:
            raise KeyError(key)
        project, zone = collection.split("/")[1], collection.split("/")[3]
        number = catalog.stable_id("project", project)[:12]
        attrs = metadata_dict(inst)
        nic = inst["networkInterfaces"][0]
        simple = {
            "instance/preempted": "TRUE" if inst[PRIVATE].get("preempted") else "FALSE",
            "instance/name": name,
            "instance/id": inst["id"],
            "instance/hostname": f"{name}.{zone}.c.{project}.internal",
            "instance/zone": f"projects/{number}/zones/{zone}",
            "instance/machine-type": f"projects/{number}/machineTypes/{last_segment(inst['machineType'])}",
            "instance/maintenance-event": "NONE",
            "instance/scheduling/preemptible": "TRUE" if inst["scheduling"].get("preemptible") or
            inst["scheduling"].get("provisioningModel") == "SPOT" else "FALSE",
            "instance/network-interfaces/0/ip": nic.get("networkIP", ""),
            "project/project-id": project,
            "project/numeric-project-id": number,
            "instance/attributes/": "".join(k + "\n" for k in attrs),
        }
        if key in simple:
            return simple[key], False
        if key == "instance/tags":
            return inst.get("tags", {}).get("items", []), True
        if key == "instance/attributes" or key == "instance/attributes/?recursive":
            return attrs, True
        if key.startswith("instance/attributes/") and key[len("instance/attributes/"):] in attrs:
            return attrs[key[len("instance/attributes/"):]], False
        if key.startswith("instance/network-interfaces/0/access-configs/0/external-ip") and nic.get("accessConfigs"):
            return nic["accessConfigs"][0].get("natIP", ""), False
        raise KeyError(key)

    # -- restart -----------------------------------------------------------------------------
    def reconcile(self) -> None:
        """After a restart: finish operations that were cut off and align statuses with containers."""
        existing = self.backend.list_containers() if self.backend.containers else {}
        with self.store.lock:
            for path, items in list(self.store.collections.items()):
                if path.endswith("/operations"):
                    for op in items.values():
                        if op["status"] != "DONE":
                            op.update(status="DONE", progress=100, endTime=now_rfc3339(),
                                      error={"errors": [{"code": "INTERNAL_ERROR",
                                                         "message": "The emulator restarted during this operation."}]},
                                      httpErrorStatusCode=500, httpErrorMessage="INTERNAL SERVER ERROR")
                if path.endswith("/instances"):
                    for inst in items.values():
                        container = inst[PRIVATE]["container"]
                        if self.backend.containers:
                            state = existing.get(container)
                            inst["status"] = "RUNNING" if state == "Running" else "TERMINATED"
                        elif inst["status"] in ("PROVISIONING", "STAGING"):
                            inst["status"] = "RUNNING"
                        elif inst["status"] == "STOPPING":
                            inst["status"] = "TERMINATED"
                if path.endswith("/disks") or path.endswith("/snapshots"):
                    for res in items.values():
                        if res.get("status") == "CREATING":
                            res["status"] = "READY"
        self.store.touch()


def canonical_request(method: str, path: str, body: dict) -> dict:
    """GCE refuses request bodies with fields its schema does not have (or wrong shapes), and
    stores numbers in their canonical JSON type whichever form the client sent."""
    try:
        ref = discovery.method_for(method, path).get("request", {}).get("$ref")
    except KeyError:
        return body
    if not ref:
        return body
    found = discovery.problems(ref, body, lenient=True)
    if found:
        where = found[0].replace("$", "resource", 1)
        raise ApiError(400, "invalid", f"Invalid JSON payload received. {where}")
    return discovery.normalize(ref, body)


def _json_error(err: ApiError, status_text: str | None = None) -> dict:
    body = err.body()
    if status_text:
        body["error"]["status"] = status_text
    return body


class Handler(BaseHTTPRequestHandler):
    server_version = "gce-emulator/1"
    protocol_version = "HTTP/1.1"
    emulator: Emulator  # set on the subclass made by make_server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("%s %s", self.address_string(), format % args)

    def _send(self, status: int, payload: Any, headers: dict | None = None, content_type: str = "application/json") -> None:
        if isinstance(payload, (dict, list)):
            base = f"http://{self.headers.get('Host') or '%s:%d' % self.server.server_address[:2]}/compute/v1/"
            data = json.dumps(payload).replace(LINK_BASE, base).encode()
            content_type = "application/json; charset=UTF-8"
        else:
            data = str(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> dict:
        length = int(self.headers.get("Content-Length") or 0)
        if not length:
            return {}
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw)
        except ValueError as exc:
            raise ApiError(400, "parseError", "Parse Error") from exc
        if not isinstance(body, dict):
            raise ApiError(400, "parseError", "Parse Error")
        return body

    def _handle(self, method: str) -> None:
        url = urllib.parse.urlsplit(self.path)
        query = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query, keep_blank_values=True).items()}
        path = url.path
        emu = self.emulator
        try:
            if path.startswith("/_admin/"):
                return self._send(200, emu.admin(method, path[len("/_admin/"):].strip("/"), self._body()))
            if path.startswith("/computeMetadata/v1/"):
                return self._metadata(path[len("/computeMetadata/v1/"):], query)
            if path.startswith("/compute/v1/"):
                path = path[len("/compute/v1"):]
            if not path.startswith("/projects/"):
                raise ApiError(404, "notFound", f"The requested URL {url.path} was not found on this server.")
            emu.count_request()
            body = self._body()
            auth = self.headers.get("Authorization", "")
            if not auth.startswith("Bearer ") or not auth[7:].strip():
                err = ApiError(401, "required", "Request is missing required authentication credential. Expected "
                                                "OAuth 2 access token, login cookie or other valid authentication "
                                                "credential.")
                emu.count_route(f"{method} unauthenticated")
                return self._send(401, _json_error(err, "UNAUTHENTICATED"), {"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'})
            self._maybe_fault(method, path)
            self._send(200, emu.dispatch(method, path, query, body))
        except ApiError as err:
            status = {429: "RESOURCE_EXHAUSTED", 503: "UNAVAILABLE", 401: "UNAUTHENTICATED"}.get(err.code)
            self._send(err.code, _json_error(err, status), err.headers)
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception as exc:  # keep serving; report like GCE's backendError
            log.exception("request %s %s failed", method, self.path)
            self._send(500, _json_error(ApiError(500, "backendError", f"Internal error: {exc}")))

    def _maybe_fault(self, method: str, path: str) -> None:
        faults = self.emulator.faults
        if faults["error_rate"] <= 0 or (faults["paths"] and faults["paths"] not in path):
            return
        if random.random() >= faults["error_rate"]:
            return
        code = random.choice(faults["codes"])
        self.emulator.count_route(f"{method} injected-{code}")
        if code == 429:
            err = ApiError(429, "rateLimitExceeded", "Rate Limit Exceeded", {"Retry-After": "1"})
            err.body = lambda: {"error": {"code": 429, "message": "Rate Limit Exceeded", "errors": [
                {"message": "Rate Limit Exceeded", "domain": "usageLimits", "reason": "rateLimitExceeded"}]}}
            raise err
        if code == 503:
            raise ApiError(503, "backendError", "The service is currently unavailable.")
        raise ApiError(code, "backendError", "Internal error. Please try again or contact Google Support.")

    def _metadata(self, key: str, query: dict) -> None:
        emu = self.emulator
        emu.count_route("GET metadata")
        if self.headers.get("Metadata-Flavor") != "Google":
            return self._send(403, "Missing Metadata-Flavor:Google header.\n", content_type="text/html")
        found = emu.metadata_instance(self.client_address[0], self.headers.get("X-Emulated-Instance"))
        if found is None:
            return self._send(404, "No emulated instance for this client.\n", content_type="text/html")
        collection, inst = found
        name = inst["name"]
        if query.get("recursive") == "true" and key.rstrip("/") == "instance/attributes":
            key = "instance/attributes"

        def current() -> tuple[Any, bool] | None:
            try:
                return emu.metadata_value(collection, name, key)
            except KeyError:
                return None

        def etag_of(value: Any) -> str:
            return hashlib.md5(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]

        value = current()
        if value is None:
            return self._send(404, "Not Found\n", {"Metadata-Flavor": "Google"}, content_type="text/html")
        if query.get("wait_for_change") == "true":
            tag = etag_of(value[0])
            last = query.get("last_etag", tag)
            if last == tag:
                timeout = min(float(query.get("timeout_sec", 300)), 3600)
                emu.store.wait_until(lambda: (v := current()) is None or etag_of(v[0]) != tag, timeout)
                value = current() or value
        data, is_json = value
        headers = {"Metadata-Flavor": "Google", "ETag": etag_of(data)}
        if is_json:
            return self._send(200, json.dumps(data), headers, content_type="application/json")
        self._send(200, data, headers, content_type="application/text")

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self._handle("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._handle("POST")

    def do_DELETE(self) -> None:  # noqa: N802
        self._handle("DELETE")

    def do_PATCH(self) -> None:  # noqa: N802
        self._handle("PATCH")

    def do_PUT(self) -> None:  # noqa: N802
        self._handle("PUT")


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def make_server(emulator: Emulator, host: str, port: int) -> Server:
    handler = type("BoundHandler", (Handler,), {"emulator": emulator})
    return Server((host, port), handler)
