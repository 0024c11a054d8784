# -*- coding: utf-8 -*-
# Copyright: containarium.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

"""Filters of playbooks/deploy.yml: deployment_specs and deployment_plan (documented in their .yml files)."""

import hashlib
import json
import re

from ansible.errors import AnsibleFilterError

from ansible_collections.containarium.fleet.plugins.filter.placement import parse_bytes, pick_host
from ansible_collections.containarium.fleet.plugins.module_utils.incus import allocated_cpu

_LABEL = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
_LABEL_KEY = re.compile(r"^[a-z0-9][-a-z0-9_.]*$")
SPEC_KEYS = {"name", "image", "replicas", "cpu", "memory", "config", "labels", "health_check", "paused", "state",
             "ingress_port"}
CHECK_KEYS = {"type", "port", "path", "process", "interval", "timeout", "unhealthy_threshold"}
CHECK_DEFAULTS = {"path": "/", "interval": 10, "timeout": 5, "unhealthy_threshold": 3}
CHECK_TYPES = ("tcp", "http", "process")
MANAGED_KEYS = ("limits.cpu", "limits.memory", "limits.cpu.allowance")
DEPLOYMENT_KEY = "user.fleet.deployment"
REPLICA_KEY = "user.fleet.replica"
IMAGE_KEY = "user.fleet.image"
TEMPLATE_KEY = "user.fleet.template"
# <deployment>:<port>, on replicas and (copied by tasks/spot_protect.yml) on their standbys and replacements:
# what the HTTP ingress of a spot host of the sentinel topology forwards to (tasks/spot_ingress.yml).
INGRESS_KEY = "user.fleet.ingress"
MIB = 1024 ** 2
STATUS_OF_STATE = {"started": "Running", "stopped": "Stopped"}


def _integer(value, what, problems, minimum):
    if isinstance(value, bool):
        problems.append("%s must be an integer, got %r" % (what, value))
        return None
    try:
        number = int(str(value))
    except ValueError:
        problems.append("%s must be an integer, got %r" % (what, value))
        return None
    if number < minimum:
        problems.append("%s must be >= %d, got %d" % (what, minimum, number))
        return None
    return number


def _memory_bytes(value, where, problems):
    try:
        return int(value) * MIB if str(value).strip().isdigit() else parse_bytes(value)
    except (AnsibleFilterError, ValueError):
        problems.append("%s: memory %r is not a size (512MiB, 1GiB, or a number of MiB)" % (where, value))
        return None


def cpu_limits(cpu):
    """Instance config for ``cpu`` CPUs: whole CPUs pinned by count, fractions by a hard time allowance."""
    if float(cpu) == int(cpu):
        return {"limits.cpu": str(int(cpu))}
    whole = int(-(-float(cpu) // 1))
    return {"limits.cpu": str(whole), "limits.cpu.allowance": "%dms/100ms" % round(float(cpu) * 100)}


def _health_check(check, where, problems):
    if check is None:
        return None
    if not isinstance(check, dict):
        problems.append("%s: health_check must be a dict" % where)
        return None
    unknown = sorted(set(check) - CHECK_KEYS)
    if unknown:
        problems.append("%s: unknown health_check keys %s" % (where, ", ".join(unknown)))
    kind = check.get("type")
    if kind not in CHECK_TYPES:
        problems.append("%s: health_check type must be one of %s, got %r" % (where, ", ".join(CHECK_TYPES), kind))
        return None
    result = dict(CHECK_DEFAULTS, **{k: v for k, v in check.items() if v is not None})
    for key in ("interval", "timeout", "unhealthy_threshold"):
        result[key] = _integer(result[key], "%s: health_check %s" % (where, key), problems, 1)
    if kind in ("tcp", "http"):
        port = _integer(check.get("port"), "%s: health_check port (needed by %s)" % (where, kind), problems, 1)
        if port is not None and port > 65535:
            problems.append("%s: health_check port must be <= 65535, got %d" % (where, port))
        result["port"] = port
    if kind == "http" and not str(result["path"]).startswith("/"):
        problems.append("%s: health_check path must start with /, got %r" % (where, result["path"]))
    if kind == "process" and not check.get("process"):
        problems.append("%s: health_check type process needs process (a process name for pgrep -x)" % where)
    return result


def _one_spec(spec, position, problems):
    if not isinstance(spec, dict):
        problems.append("deployments[%d] must be a dict, got %s" % (position, type(spec).__name__))
        return None
    name = spec.get("name")
    where = "deployment %s" % name if name else "deployments[%d]" % position
    unknown = sorted(set(spec) - SPEC_KEYS)
    if unknown:
        problems.append("%s: unknown keys %s (known: %s)" % (where, ", ".join(unknown), ", ".join(sorted(SPEC_KEYS))))
    if not name:
        problems.append("%s: name is required" % where)
    elif not _LABEL.match(str(name)):
        problems.append("%s: name must be an RFC 1035 label (lower-case letters, digits, hyphens)" % where)
    state = spec.get("state", "present")
    if state not in ("present", "absent"):
        problems.append("%s: state must be present or absent, got %r" % (where, state))
    if state == "present" and not spec.get("image"):
        problems.append("%s: image is required" % where)
    replicas = _integer(spec.get("replicas", 1), "%s: replicas" % where, problems, 0)
    if name and replicas and len("%s-%d" % (name, replicas)) > 63:
        problems.append("%s: replica name %s-%d is longer than 63 characters" % (where, name, replicas))
    try:
        cpu = float(spec.get("cpu", 1))
    except (TypeError, ValueError):
        cpu = 0
    if not cpu > 0:
        problems.append("%s: cpu must be a number > 0, got %r" % (where, spec.get("cpu")))
    memory = _memory_bytes(spec.get("memory", "512MiB"), where, problems)
    config = spec.get("config") or {}
    labels = spec.get("labels") or {}
    if not isinstance(config, dict) or not isinstance(labels, dict):
        problems.append("%s: config and labels must be dicts" % where)
        config, labels = {}, {}
    reserved = sorted(k for k in config if k.startswith(("user.fleet.", "volatile.")) or k in MANAGED_KEYS)
    if reserved:
        problems.append("%s: config keys %s are set by the deployment (use cpu, memory, labels)" % (
            where, ", ".join(reserved)))
    bad_labels = sorted(str(k) for k in labels if not _LABEL_KEY.match(str(k)))
    if bad_labels:
        problems.append("%s: label keys must be lower-case letters, digits, '-', '_', '.': %s" % (
            where, ", ".join(bad_labels)))
    check = _health_check(spec.get("health_check"), where, problems)
    ingress_port = spec.get("ingress_port")
    if ingress_port is not None:
        ingress_port = _integer(ingress_port, "%s: ingress_port" % where, problems, 1)
        if ingress_port is not None and ingress_port > 65535:
            problems.append("%s: ingress_port must be <= 65535, got %d" % (where, ingress_port))
    if not isinstance(spec.get("paused", False), bool):
        problems.append("%s: paused must be true or false" % where)
    if problems:
        return None
    template = {str(k): _incus_value(v) for k, v in config.items()}
    template.update(cpu_limits(cpu))
    template["limits.memory"] = "%dMiB" % (memory // MIB) if memory % MIB == 0 else str(memory)
    template.update({"user.fleet.label.%s" % k: _incus_value(v) for k, v in labels.items()})
    template[DEPLOYMENT_KEY] = name
    template[IMAGE_KEY] = spec.get("image") or ""
    if ingress_port:
        template[INGRESS_KEY] = "%s:%d" % (name, ingress_port)
    template_hash = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:12]
    template[TEMPLATE_KEY] = template_hash
    return {
        "name": name, "image": spec.get("image"), "replicas": replicas, "cpu": cpu, "memory": memory,
        "config": config, "labels": labels, "health_check": check, "paused": spec.get("paused", False),
        "state": state, "template": template, "template_hash": template_hash, "ingress_port": ingress_port,
    }


def _incus_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def deployment_specs(deployments):
    """Checked specs with defaults; every problem of every spec reported in one error."""
    if deployments is None:
        return []
    if not isinstance(deployments, list):
        raise AnsibleFilterError("deployments must be a list of deployment specs, got %s" % type(deployments).__name__)
    problems, specs = [], []
    for position, spec in enumerate(deployments):
        own = []
        checked = _one_spec(spec, position, own)
        problems.extend(own)
        if checked:
            specs.append(checked)
    names = [spec["name"] for spec in specs]
    problems.extend("deployment %s is given more than once" % n for n in sorted({n for n in names if names.count(n) > 1}))
    if problems:
        raise AnsibleFilterError("invalid deployments, nothing was changed: " + "; ".join(problems))
    return specs


# -- the plan ------------------------------------------------------------------------------------

def _host_loads(backends):
    """pick_host facts per backend, with CPU allocated and memory given to its instances counted."""
    loads = {}
    for backend in backends:
        host = backend.get("host") or {}
        instances = backend.get("instances") or []
        memory = dict(host.get("memory") or {})
        limits = sum(parse_bytes(i["config"]["limits.memory"]) for i in instances
                     if (i.get("config") or {}).get("limits.memory") and i.get("status") != "Stopped")
        memory["used_bytes"] = max(memory.get("used_bytes") or 0, limits)
        loads[backend["name"]] = dict(
            host, name=backend["name"], memory=memory,
            cpu=dict(host.get("cpu") or {}, allocated=sum(allocated_cpu(i.get("config") or {}) for i in instances)),
            instances={"total": len(instances)})
    return loads


def _place(spec, replica, loads, spread, headroom):
    """Backend for a new replica: least loaded among those holding the fewest replicas of the deployment."""
    hosts = sorted(loads.values(), key=lambda h: h["name"])
    for most in sorted(set(spread.get(h["name"], 0) for h in hosts)):
        try:
            return pick_host([h for h in hosts if spread.get(h["name"], 0) <= most],
                             cpu=spec["cpu"], memory=spec["memory"], headroom=headroom)
        except AnsibleFilterError:
            continue
    try:
        return pick_host(hosts, cpu=spec["cpu"], memory=spec["memory"], headroom=headroom)
    except AnsibleFilterError as exc:
        raise AnsibleFilterError("deployment %s: no backend has room for replica %s, nothing was changed (%s)" % (
            spec["name"], replica, str(exc.message).replace("pick_host: ", "")))


def _book(load, spec):
    load["cpu"]["allocated"] = load["cpu"].get("allocated", 0) + spec["cpu"]
    load["memory"]["used_bytes"] = load["memory"].get("used_bytes", 0) + spec["memory"]
    load["instances"]["total"] += 1


def _replica_index(instance, deployment):
    value = str((instance.get("config") or {}).get(REPLICA_KEY, ""))
    if value.isdigit() and instance["name"] == "%s-%s" % (deployment, value):
        return int(value)
    return None


def _entry(spec, name, backend, index, **extra):
    entry = {"deployment": spec["name"], "name": name, "backend": backend, "index": index}
    entry.update(extra)
    return entry


def _replica_config(spec, index):
    return dict(spec["template"], **{REPLICA_KEY: str(index)})


def deployment_plan(specs, backends, headroom=0.2):
    """What to change so the backends hold exactly the replicas ``specs`` ask for.

    ``backends``: ``[{name, host: <incus_host_info host>, instances: <incus_instance_info instances>}]``.
    Returns ``{remove, create, replace, power, check, summary}``; lists of replicas, each with
    ``deployment``, ``name``, ``backend``, ``index`` (plus ``image``, ``config``, ``state`` to create,
    ``ipv4`` and ``health_check`` to check).
    """
    if not isinstance(backends, list):
        raise AnsibleFilterError("deployment_plan: backends must be a list of {name, host, instances}")
    loads = _host_loads(backends)
    owner = {}  # instance name -> (backend, instance)
    for backend in backends:
        for instance in backend.get("instances") or []:
            owner.setdefault(instance["name"], []).append((backend["name"], instance))
    plan = {"remove": [], "create": [], "replace": [], "power": [], "check": [], "summary": {}}
    for spec in specs:
        name = spec["name"]
        wanted = spec["replicas"] if spec["state"] == "present" else 0
        state = "stopped" if spec["paused"] else "started"
        current = {}  # index -> (backend, instance)
        for backend in backends:
            for instance in backend.get("instances") or []:
                if (instance.get("config") or {}).get(DEPLOYMENT_KEY) != name:
                    continue
                index = _replica_index(instance, name)
                if index is None or index in current or index > wanted:
                    plan["remove"].append(_entry(spec, instance["name"], backend["name"], index))
                else:
                    current[index] = (backend["name"], instance)
        spread = {}
        for backend_name, _instance in current.values():
            spread[backend_name] = spread.get(backend_name, 0) + 1
        created = []
        for index in range(1, wanted + 1):
            replica = "%s-%d" % (name, index)
            strangers = [b for b, i in owner.get(replica, []) if (i.get("config") or {}).get(DEPLOYMENT_KEY) != name]
            if strangers:
                raise AnsibleFilterError(
                    "deployment %s: instance %s on %s is not a replica of it (no %s=%s), nothing was changed" % (
                        name, replica, ", ".join(strangers), DEPLOYMENT_KEY, name))
            if index in current:
                continue
            backend_name = _place(spec, replica, loads, spread, headroom)
            _book(loads[backend_name], spec)
            spread[backend_name] = spread.get(backend_name, 0) + 1
            created.append(index)
            plan["create"].append(_entry(spec, replica, backend_name, index, image=spec["image"],
                                         config=_replica_config(spec, index), state=state))
        outdated = []
        for index in sorted(current):
            backend_name, instance = current[index]
            config = instance.get("config") or {}
            if config.get(TEMPLATE_KEY) != spec["template_hash"]:
                outdated.append(index)
                plan["replace"].append(_entry(spec, instance["name"], backend_name, index, image=spec["image"],
                                              config=_replica_config(spec, index), state=state,
                                              health_check=None if spec["paused"] else spec["health_check"]))
                continue
            status = instance.get("status")
            if status != STATUS_OF_STATE[state]:
                plan["power"].append(_entry(spec, instance["name"], backend_name, index, state=state, status=status))
            elif state == "started" and spec["health_check"]:
                # image, config and state too: a replica a restart does not heal is recreated from them.
                plan["check"].append(_entry(spec, instance["name"], backend_name, index, ipv4=instance.get("ipv4"),
                                            health_check=spec["health_check"], image=spec["image"],
                                            config=_replica_config(spec, index), state=state))
        plan["summary"][name] = {
            "desired": wanted, "current": len(current), "paused": spec["paused"],
            "create": ["%s-%d" % (name, i) for i in created],
            "remove": [e["name"] for e in plan["remove"] if e["deployment"] == name],
            "replace": ["%s-%d" % (name, i) for i in outdated],
        }
    return plan


class FilterModule:
    def filters(self):
        return {"deployment_specs": deployment_specs, "deployment_plan": deployment_plan}
