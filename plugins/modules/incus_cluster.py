#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: containarium.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: incus_cluster
short_description: Form an Incus cluster, issue join tokens, join servers and remove members
version_added: 0.1.0
description:
  - Drives Incus clustering through the Incus REST API. Incus itself places instances and moves them
    off a member; this module only forms and shrinks the cluster.
  - V(state=enabled) turns the server at O(endpoint) into the first member of a new cluster named
    O(server_name) (its C(core.https_address) must already be set) and defines O(storage_pools) and
    O(networks) on every member (created pending per member with its O(storage_pools[].member_config),
    then finalised, as Incus requires).
  - V(state=token) issues a single-use join token for the future member O(member). A token already
    issued and not yet used is returned again rather than replaced; no token is returned for a server
    that is already a member. The token is a secret, so set C(no_log) on the task and on every task the
    registered value passes through.
  - V(state=joined) joins the server at O(endpoint) to the cluster that issued O(cluster_token). A server
    that is already a member (under O(server_name)) is left alone, so a member never joins twice.
  - V(state=absent) removes O(member) from the cluster. That is refused while the member still holds
    instances, unless O(force=true).
options:
  state:
    description:
      - What to make true; see the description.
    type: str
    choices: [enabled, token, joined, absent]
    default: enabled
  server_name:
    description:
      - Member name of the server at O(endpoint). Required for V(state=enabled) and V(state=joined).
    type: str
  server_address:
    description:
      - C(address:port) the joining server uses for cluster traffic (its C(core.https_address)).
        Required for V(state=joined).
    type: str
  cluster_token:
    description:
      - Join token from V(state=token) (or C(incus cluster add)). Required for V(state=joined).
      - The cluster certificate is read from an address in the token and checked against the token's fingerprint.
    type: str
  member_config:
    description:
      - Member-specific settings of the joining server for the cluster's storage pools and networks, as
        listed by C(GET /1.0/cluster) C(member_config) (for example the C(source) of a pool).
    type: list
    elements: dict
    default: []
    suboptions:
      entity:
        description: V(storage-pool) or V(network).
        type: str
        required: true
        choices: [storage-pool, network]
      name:
        description: Pool or network name.
        type: str
        required: true
      key:
        description: Configuration key.
        type: str
        required: true
      value:
        description: Value on this member.
        type: str
        required: true
  member:
    description:
      - Member to issue a token for (V(state=token)) or to remove (V(state=absent)).
    type: str
  force:
    description:
      - With V(state=absent), remove the member even though it still holds instances (they are lost
        to the cluster). Evacuate it first instead (M(containarium.fleet.incus_cluster_member)).
    type: bool
    default: false
  storage_pools:
    description:
      - Storage pools defined on every member (V(state=enabled) only). Missing pools are created;
        the global O(storage_pools[].config) keys given are kept in step on existing ones.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Pool name.
        type: str
        required: true
      driver:
        description: Storage driver (V(dir), V(zfs), V(btrfs), V(lvm)...).
        type: str
        required: true
      config:
        description: Global configuration, the same on every member.
        type: dict
        default: {}
      member_config:
        description:
          - Member-specific configuration (for example C(source)) by member name; members not named get none.
        type: dict
        default: {}
  networks:
    description:
      - Networks defined on every member (V(state=enabled) only), like O(storage_pools).
      - A bridge's C(ipv4.address) is global; every member gets the same subnet on its own bridge.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Network name.
        type: str
        required: true
      type:
        description: Network type.
        type: str
        default: bridge
      config:
        description: Global configuration (C(ipv4.address), C(ipv4.nat), C(ipv6.address)...).
        type: dict
        default: {}
      member_config:
        description: Member-specific configuration (for example C(bridge.external_interfaces)) by member name.
        type: dict
        default: {}
  wait_timeout:
    description:
      - Deadline in seconds for each API operation.
    type: int
    default: 300
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
    support: full
    details: V(state=token) returns the pending token again; it never issues a second one for the same member.
notes:
  - Against an HTTPS O(endpoint) a server that joins a cluster starts to answer with the cluster
    certificate, so pin O(server_cert) to the cluster certificate or, in a throw-away sandbox, use O(verify=false).
seealso:
  - module: containarium.fleet.incus_cluster_member
  - module: containarium.fleet.incus_cluster_info
  - name: Incus clustering
    description: How Incus clusters form, place instances and evacuate members.
    link: https://linuxcontainers.org/incus/docs/main/explanation/clustering/
author:
  - containarium.fleet contributors (@containarium)
"""

EXAMPLES = r"""
- name: Bootstrap the cluster on the first backend, with a cluster-wide pool and bridge
  containarium.fleet.incus_cluster:
    endpoint: https://10.0.3.10:8443
    client_cert: ~/.config/fleet/client.crt
    client_key: ~/.config/fleet/client.key
    server_cert: ~/.config/fleet/cluster.crt
    server_name: backend-1
    storage_pools:
      - name: default
        driver: dir
    networks:
      - name: incusbr0
        config: {ipv4.address: 10.0.5.1/24, ipv4.nat: "true", ipv6.address: none}
  delegate_to: localhost

- name: Issue a join token for backend-2
  containarium.fleet.incus_cluster:
    endpoint: https://10.0.3.10:8443
    state: token
    member: backend-2
  delegate_to: localhost
  register: join
  no_log: true

- name: Join backend-2
  containarium.fleet.incus_cluster:
    endpoint: https://10.0.4.10:8443
    state: joined
    server_name: backend-2
    server_address: 10.0.4.10:8443
    cluster_token: "{{ join.token }}"
  delegate_to: localhost
  no_log: true

- name: Remove an (evacuated) member
  containarium.fleet.incus_cluster:
    endpoint: https://10.0.3.10:8443
    state: absent
    member: backend-3
  delegate_to: localhost
"""

RETURN = r"""
cluster:
  description: The cluster as the server at O(endpoint) sees it after the change (before it under C(--check)).
  returned: always
  type: dict
  contains:
    enabled:
      description: Whether the server is a cluster member.
      type: bool
    server_name:
      description: Its member name (empty when not clustered).
      type: str
    members:
      description: Names of the members.
      type: list
      elements: str
      sample: [backend-1, backend-2]
    member_config:
      description: Member-specific keys a joining server must provide (C(entity), C(name), C(key), C(description)).
      type: list
      elements: dict
token:
  description:
    - The join token for O(member) (V(state=token)); null when O(member) is already a member or under C(--check)
      when no token is pending. A secret.
  returned: when O(state=token)
  type: str
"""

from ansible_collections.containarium.fleet.plugins.module_utils.fleet_module import FleetError, FleetModule
from ansible_collections.containarium.fleet.plugins.module_utils.incus import (
    CLUSTER_WIDE_KINDS,
    ClusterApi,
    connect,
    connection_argument_spec,
    decode_join_token,
)

# Option name -> Incus collection, for the objects state=enabled defines cluster-wide.
_CLUSTER_WIDE_OPTIONS = {"storage_pools": "storage-pools", "networks": "networks"}


def argument_spec():
    spec = connection_argument_spec()
    cluster_wide = dict(
        name=dict(type="str", required=True),
        config=dict(type="dict", default={}),
        member_config=dict(type="dict", default={}),
    )
    spec.update(
        state=dict(type="str", choices=["enabled", "token", "joined", "absent"], default="enabled"),
        server_name=dict(type="str"),
        server_address=dict(type="str"),
        cluster_token=dict(type="str", no_log=True),
        member_config=dict(type="list", elements="dict", default=[], options=dict(
            entity=dict(type="str", required=True, choices=["storage-pool", "network"]),
            name=dict(type="str", required=True),
            key=dict(type="str", required=True, no_log=False),
            value=dict(type="str", required=True),
        )),
        member=dict(type="str"),
        force=dict(type="bool", default=False),
        storage_pools=dict(type="list", elements="dict", default=[],
                           options=dict(cluster_wide, driver=dict(type="str", required=True))),
        networks=dict(type="list", elements="dict", default=[],
                      options=dict(cluster_wide, type=dict(type="str", default="bridge"))),
        wait_timeout=dict(type="int", default=300),
    )
    return spec


def summary(api, state):
    members = sorted(m["server_name"] for m in api.members()) if state.get("enabled") else []
    return {"enabled": bool(state.get("enabled")), "server_name": state.get("server_name") or "",
            "members": members, "member_config": state.get("member_config") or []}


def as_strings(config):
    return {key: str(value) for key, value in (config or {}).items()}


def define_cluster_wide(module, api, members):
    """Create missing pools/networks on every member, and keep their global config keys in step."""
    timeout = module.params["wait_timeout"]
    for option, collection in _CLUSTER_WIDE_OPTIONS.items():
        kind_key = CLUSTER_WIDE_KINDS[collection]
        for item in module.params[option]:
            name, kind, want = item["name"], item.get("driver") or item.get("type"), as_strings(item["config"])
            have = api.cluster_wide(collection, name)
            key = "%s/%s" % (collection, name)
            if have is None:
                module.mark_changed()
                module.add_diff({}, {key: {kind_key: kind, "config": want}})
                if not module.check_mode:
                    member_configs = {m: as_strings((item["member_config"] or {}).get(m)) for m in members}
                    api.create_cluster_wide(collection, name, kind, want, member_configs, timeout)
                continue
            if have.get(kind_key) != kind:
                raise FleetError("%s %s exists with %s %s, not %s; Incus cannot change that in place" % (
                    collection, name, kind_key, have.get(kind_key), kind))
            differs = {k: v for k, v in want.items() if (have.get("config") or {}).get(k) != v}
            if differs:
                module.mark_changed()
                module.add_diff({key: {k: (have.get("config") or {}).get(k) for k in differs}}, {key: differs})
                if not module.check_mode:
                    api.update_cluster_wide(collection, name, differs, timeout)


def enable(module, api):
    state = api.state()
    name = module.params["server_name"]
    if state.get("enabled"):
        if state.get("server_name") != name:
            raise FleetError("the server is already cluster member %r, not %r" % (state.get("server_name"), name))
    else:
        module.mark_changed()
        module.add_diff({"enabled": False}, {"enabled": True, "server_name": name})
        if not module.check_mode:
            api.enable(name, module.params["wait_timeout"])
            state = api.state()
    members = [m["server_name"] for m in api.members()] if state.get("enabled") else [name]
    define_cluster_wide(module, api, members)
    return summary(api, state)


def join(module, api):
    state = api.state()
    name = module.params["server_name"]
    if state.get("enabled"):
        if state.get("server_name") != name:
            raise FleetError("the server is already cluster member %r, not %r" % (state.get("server_name"), name))
        return summary(api, state)
    module.mark_changed()
    module.add_diff({"enabled": False}, {"enabled": True, "server_name": name})
    if module.check_mode:
        return summary(api, state)
    api.join(name, module.params["server_address"], module.params["cluster_token"],
             module.params["member_config"], module.params["wait_timeout"])
    return summary(api, api.state())


def issue_token(module, api):
    state = api.state()
    if not state.get("enabled") and module.check_mode:
        # Under --check the cluster a previous task would have enabled does not exist yet.
        module.mark_changed()
        return None
    if not state.get("enabled"):
        raise FleetError("the server at %s is not clustered: enable clustering first (state=enabled)" % api.client.endpoint)
    name = module.params["member"]
    if api.member(name) is not None:
        return None
    pending = api.pending_tokens().get(name)
    if pending:
        return pending[1]
    module.mark_changed()
    module.add_diff({"tokens": []}, {"tokens": [name]})
    return None if module.check_mode else api.issue_token(name)


def remove(module, api):
    name = module.params["member"]
    if api.member(name) is None:
        return
    held = api.instances_by_member().get(name, [])
    if held and not module.params["force"]:
        raise FleetError(
            "member %s still holds %d instance(s) (%s): evacuate it first "
            "(containarium.fleet.incus_cluster_member state=evacuated) or set force=true" % (
                name, len(held), ", ".join(sorted(held)[:10]) + (", ..." if len(held) > 10 else "")),
            instances=sorted(held))
    module.mark_changed()
    module.add_diff({"members": [name]}, {"members": []})
    if not module.check_mode:
        api.remove_member(name, module.params["force"], module.params["wait_timeout"])


def check_input(module):
    """Refuse incomplete or malformed input before any API call."""
    params = module.params
    required = {"enabled": ["server_name"], "joined": ["server_name", "server_address", "cluster_token"],
                "token": ["member"], "absent": ["member"]}[params["state"]]
    missing = [option for option in required if not params[option]]
    if missing:
        module.fail_json(msg="state=%s requires %s" % (params["state"], ", ".join(missing)))
    for option in ("server_name", "member"):
        if params[option]:
            module.require_valid_name(params[option], "cluster member")
    if params["state"] == "joined":
        try:
            fields = decode_join_token(params["cluster_token"])
        except FleetError as exc:
            module.fail_from(exc)
        if fields["server_name"] != params["server_name"]:
            module.fail_json(msg="the join token was issued for member %r, not server_name %r" % (
                fields["server_name"], params["server_name"]))
    if params["state"] != "enabled" and (params["storage_pools"] or params["networks"]):
        module.fail_json(msg="storage_pools and networks are defined with state=enabled (on the cluster)")


def main():
    module = FleetModule(argument_spec())
    check_input(module)
    api = ClusterApi(connect(module))
    state = module.params["state"]
    action = {"enabled": "enable clustering on %s" % module.params["server_name"],
              "joined": "join %s to the cluster" % module.params["server_name"],
              "token": "issue a join token for %s" % module.params["member"],
              "absent": "remove cluster member %s" % module.params["member"]}[state]
    try:
        if state == "enabled":
            module.exit(cluster=enable(module, api))
        elif state == "joined":
            module.exit(cluster=join(module, api))
        elif state == "token":
            token = issue_token(module, api)
            module.exit(cluster=summary(api, api.state()), token=token)
        else:
            remove(module, api)
            module.exit(cluster=summary(api, api.state()))
    except FleetError as exc:
        module.fail_from(exc, action)


if __name__ == "__main__":
    main()
