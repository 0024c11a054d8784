# -*- coding: utf-8 -*-
# Copyright: containarium.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: pick_host
short_description: Choose the least-loaded Incus host or cluster member that keeps its headroom
version_added: 0.1.0
description:
  - Takes host facts, the C(host) of M(containarium.fleet.incus_host_info) or the C(members) of
    M(containarium.fleet.incus_cluster_info) (cluster members and standalone hosts alike, mixed if wanted),
    and returns the name of the host to place a new container on.
  - A host is a candidate when it is healthy (C(healthy) not false), online (C(status), when present,
    is C(Online), so evacuated, offline and blocked members are skipped), not in O(exclude), and still keeps
    O(headroom) of its CPU and memory free after adding the container's O(cpu) and O(memory).
  - Among the candidates it returns the least loaded (the higher of CPU and memory use after
    placement), then the one with fewer instances, then by name.
  - Fails, listing why each host was refused, when there is no candidate.
  - Incus clusters place instances themselves when no target is given; use this filter to choose
    between standalone backends, or between clusters and backends, or to pass a C(target).
options:
  _input:
    description: Host facts; each needs a name (C(name) or C(server_name)), C(cpu.total) and C(memory.total_bytes).
    type: list
    elements: dict
    required: true
  cpu:
    description: CPUs the new container is given (C(limits.cpu)), added to the host's C(cpu.allocated).
    type: float
    default: 1
  memory:
    description: Memory of the new container, in bytes or with a unit (V(512MiB), V(2GiB), V(1GB)).
    type: raw
    default: 0
  headroom:
    description: Fraction of CPU and memory that must stay free after placement.
    type: float
    default: 0.2
  exclude:
    description: Host names never to pick (for example the member being evacuated).
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
- name: Backend for a new user container
  ansible.builtin.set_fact:
    target_host: "{{ hosts_facts | containarium.fleet.pick_host(cpu=2, memory='4GiB') }}"
  vars:
    hosts_facts: "{{ host_infos.results | map(attribute='host') | list + cluster.members }}"
"""

RETURN = r"""
_value:
  description: Name of the chosen host or member.
  type: str
"""

import re

from ansible.errors import AnsibleFilterError

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGTP]i?B?|B)?\s*$", re.IGNORECASE)
_POWERS = {"K": 1, "M": 2, "G": 3, "T": 4, "P": 5}


def parse_bytes(value):
    """Bytes in ``value``: an int, or ``512MiB`` / ``2GiB`` (binary) / ``1GB`` (decimal)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value)
    match = _SIZE.match(str(value))
    if not match:
        raise AnsibleFilterError("pick_host: cannot read memory size %r (use bytes or e.g. 512MiB, 2GiB)" % (value,))
    number, unit = float(match.group(1)), (match.group(2) or "B").upper()
    if unit == "B":
        return int(number)
    base = 1024 if "I" in unit else 1000
    return int(number * base ** _POWERS[unit[0]])


def _name(host):
    return host.get("name") or host.get("server_name") or host.get("inventory_hostname")


def _refusal(host, cpu, memory, headroom, exclude):
    """Why ``host`` cannot take the container (None when it can), and its load after placement."""
    name = _name(host)
    if name in exclude:
        return "excluded", None
    if host.get("healthy") is False:
        return "failing its health check", None
    status = host.get("status")
    if status is not None and status != "Online":
        return "status %s" % status, None
    cpu_total = float((host.get("cpu") or {}).get("total") or 0)
    mem_total = float((host.get("memory") or {}).get("total_bytes") or 0)
    if not cpu_total or not mem_total:
        return "no CPU/memory figures (read them with incus_host_info / incus_cluster_info)", None
    cpu_after = (float((host.get("cpu") or {}).get("allocated") or 0) + cpu) / cpu_total
    mem_after = (float((host.get("memory") or {}).get("used_bytes") or 0) + memory) / mem_total
    limit = 1.0 - headroom
    if cpu_after > limit:
        return "CPU would be %.0f%% allocated (limit %.0f%%)" % (100 * cpu_after, 100 * limit), None
    if mem_after > limit:
        return "memory would be %.0f%% used (limit %.0f%%)" % (100 * mem_after, 100 * limit), None
    return None, max(cpu_after, mem_after)


def pick_host(hosts, cpu=1, memory=0, headroom=0.2, exclude=None):
    if not isinstance(hosts, (list, tuple)):
        raise AnsibleFilterError("pick_host expects a list of host facts, got %s" % type(hosts).__name__)
    if not 0 <= float(headroom) < 1:
        raise AnsibleFilterError("pick_host: headroom must be in [0, 1), got %r" % (headroom,))
    cpu, memory, headroom = float(cpu), parse_bytes(memory), float(headroom)
    exclude = set(exclude or [])
    candidates, refused = [], []
    for host in hosts:
        if not isinstance(host, dict) or not _name(host):
            raise AnsibleFilterError("pick_host: every host needs a name (name or server_name): %r" % (host,))
        reason, load = _refusal(host, cpu, memory, headroom, exclude)
        if reason:
            refused.append("%s: %s" % (_name(host), reason))
        else:
            instances = (host.get("instances") or {}).get("total", 0)
            candidates.append((round(load, 6), instances, _name(host)))
    if not candidates:
        raise AnsibleFilterError("pick_host: no host can take %g CPU and %d bytes with %.0f%% headroom (%s)" % (
            cpu, memory, 100 * headroom, "; ".join(refused) or "no hosts given"))
    return min(candidates)[2]


class FilterModule:
    def filters(self):
        return {"pick_host": pick_host}
