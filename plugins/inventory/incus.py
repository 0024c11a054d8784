# -*- coding: utf-8 -*-
# Copyright: containarium.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: incus
short_description: Every Incus instance across standalone hosts and cluster members
version_added: 0.1.0
description:
  - Lists the instances of every O(sources) entry (a standalone Incus host or a whole cluster) with
    one API request each, C(GET /1.0/instances?recursion=2&all-projects=true), and nothing per instance.
  - Groups them by host or cluster member, project, status, profile and C(user.*) configuration keys,
    and sets a few host variables prefixed C(incus_).
  - Sets the connection so that C(ansible all -m ping) reaches each container, either over SSH through
    the jump chain of its source (jump server, then the backend, then the container's address), or with
    the C(community.general.incus) connection when the controller reaches the host's API itself.
  - The cache, when enabled, is read before any API request.
  - Uses a YAML configuration file that ends with C(incus.yml) or C(incus.yaml).
extends_documentation_fragment:
  - constructed
  - inventory_cache
options:
  plugin:
    description: Marks the file as this plugin's.
    type: str
    required: true
    choices: [containarium.fleet.incus]
  sources:
    description:
      - Incus servers to list. A cluster is one entry (any member's endpoint); its instances are grouped by member.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Name of the host or cluster (group C(<prefix>host_<name>)).
        type: str
        required: true
      endpoint:
        description: V(unix:/var/lib/incus/unix.socket) or V(https://host:8443).
        type: str
        default: unix:/var/lib/incus/unix.socket
      client_cert:
        description: Client certificate (HTTPS).
        type: path
      client_key:
        description: Key of O(sources[].client_cert).
        type: path
      server_cert:
        description: Server (or cluster) certificate to pin.
        type: path
      verify:
        description: Check the server certificate against the system CAs when O(sources[].server_cert) is not given.
        type: bool
        default: true
      ssh_host:
        description:
          - SSH address of this backend, the hop before the container. Defaults to the host of O(sources[].endpoint).
          - For a cluster, set O(sources[].members) instead.
        type: str
      members:
        description: SSH address of each cluster member, by member name (hop before the containers located there).
        type: dict
        default: {}
      ssh_user:
        description: SSH user on the backend (the jump account).
        type: str
      jump:
        description:
          - The jump server in front of this backend, as C([user@]host[:port]). Omit when the controller reaches the backend directly.
        type: str
      remote:
        description: Incus remote name of this source for the C(community.general.incus) connection.
        type: str
        default: local
  connection:
    description:
      - V(ssh) reaches containers by their IPv4 address through C(ProxyJump) (jump, backend). Their host keys are
        recorded as C(<backend>/<address>) (C(HostKeyAlias)), since the same container address can exist on
        several backends.
      - V(incus) uses C(community.general.incus) (C(incus exec) through the remote O(sources[].remote)).
    type: str
    choices: [ssh, incus]
    default: ssh
  container_user:
    description: SSH user inside the containers (V(ssh) connection).
    type: str
    default: root
  ssh_common_args:
    description: Extra SSH options added to C(ansible_ssh_common_args) (for example C(-o StrictHostKeyChecking=accept-new)).
    type: str
    default: ""
  group_prefix:
    description: Prefix of the groups this plugin makes.
    type: str
    default: incus_
  hostname:
    description:
      - Inventory name of an instance, a Python format string over C(name), C(project), C(source) and C(location).
      - The default is the instance name; use for example V({source}-{name}) when names repeat across hosts.
    type: str
    default: "{name}"
"""

EXAMPLES = r"""
# inventories/sandbox/incus.yml
plugin: containarium.fleet.incus
sources:
  - name: backend-1
    endpoint: https://10.0.3.10:8443
    client_cert: ~/.config/fleet/client.crt
    client_key: ~/.config/fleet/client.key
    server_cert: ~/.config/fleet/backend-1.crt
    jump: jump@34.1.2.3
    ssh_user: jump
  - name: cluster-eu
    endpoint: https://10.0.5.11:8443
    client_cert: ~/.config/fleet/client.crt
    client_key: ~/.config/fleet/client.key
    server_cert: ~/.config/fleet/cluster-eu.crt
    jump: jump@34.1.2.3
    ssh_user: jump
    members: {eu-1: 10.0.5.11, eu-2: 10.0.5.12, eu-3: 10.0.5.13}
keyed_groups:
  - key: incus_user.team
    prefix: team
cache: true
cache_plugin: ansible.builtin.jsonfile
cache_connection: ~/.cache/fleet-inventory
cache_timeout: 300
"""

from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

from ansible.errors import AnsibleParserError
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable

from ansible_collections.containarium.fleet.plugins.module_utils.fleet_module import FleetError
from ansible_collections.containarium.fleet.plugins.module_utils.incus import fetch_all_instances, first_ipv4


# Sources listed at the same time.
_MAX_PARALLEL = 8


class InventoryModule(BaseInventoryPlugin, Constructable, Cacheable):
    NAME = "containarium.fleet.incus"

    def verify_file(self, path):
        return super().verify_file(path) and path.endswith(("incus.yml", "incus.yaml"))

    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path, cache)
        self._read_config_data(path)
        sources = self.get_option("sources")
        for source in sources:
            if not isinstance(source, dict) or not source.get("name"):
                raise AnsibleParserError("%s: every entry of sources needs a name" % path)
        # Hundreds of hosts share a handful of groups: each group name is sanitised once.
        self._groups = {}
        cache_key = self.get_cache_key(path)
        use_cache = self.get_option("cache") and cache
        listings = None
        if use_cache:
            try:
                listings = self._cache[cache_key]
            except KeyError:
                listings = None
        if listings is None:
            # One request per source, sent side by side: the servers build their answers in parallel.
            with ThreadPoolExecutor(max_workers=min(len(sources), _MAX_PARALLEL) or 1) as pool:
                listings = dict(zip([s["name"] for s in sources], pool.map(self._fetch, sources)))
            if self.get_option("cache"):
                self._cache[cache_key] = listings
        for source in sources:
            self._add_source(source, listings.get(source["name"]) or [])

    @staticmethod
    def _fetch(source):
        try:
            instances = fetch_all_instances(
                endpoint=source.get("endpoint") or "unix:/var/lib/incus/unix.socket",
                client_cert=source.get("client_cert"), client_key=source.get("client_key"),
                server_cert=source.get("server_cert"), verify=source.get("verify", True))
        except FleetError as exc:
            # An unreachable host must fail the inventory, never make its containers vanish.
            raise AnsibleParserError("incus inventory source %s: %s" % (source["name"], exc.message))
        # Keep only what the inventory uses: the cache stays small and fast to load.
        return [{
            "name": i["name"], "project": i.get("project") or "default", "status": i.get("status"),
            "type": i.get("type"), "location": i.get("location") or "", "profiles": i.get("profiles") or [],
            "user": {k[len("user."):]: v for k, v in (i.get("config") or {}).items() if k.startswith("user.")},
            "ipv4": first_ipv4(i.get("state")),
        } for i in instances]

    def _group(self, name):
        """The inventory group for ``name`` (prefixed, sanitised), made once and then looked up."""
        group = self._groups.get(name)
        if group is None:
            group = self._groups[name] = self.inventory.add_group(
                self._sanitize_group_name(self.get_option("group_prefix") + name))
        return group

    def _add_source(self, source, instances):
        strict = self.get_option("strict")
        constructed = self.get_option("compose") or self.get_option("groups") or self.get_option("keyed_groups")
        source_group = self._group("host_" + source["name"])
        hostname = self.get_option("hostname")
        for instance in instances:
            # A standalone server reports location "none"; a cluster member its member name.
            member = instance["location"] if instance["location"] not in ("", "none") else None
            name = hostname.format(name=instance["name"], project=instance["project"], source=source["name"],
                                   location=member or source["name"])
            if name in self.inventory.hosts:
                self.display.warning("incus inventory: %s appears on several hosts; set `hostname` (e.g. "
                                     "'{source}-{name}') to keep them apart. Keeping the first." % name)
                continue
            self.inventory.add_host(name, group=source_group)
            if member:
                self.inventory.add_child(self._group("host_" + member), name)
            self.inventory.add_child(self._group("project_" + instance["project"]), name)
            self.inventory.add_child(self._group("status_" + (instance["status"] or "unknown").lower()), name)
            for profile in instance["profiles"]:
                self.inventory.add_child(self._group("profile_" + profile), name)
            for key, value in instance["user"].items():
                self.inventory.add_child(self._group("user_%s_%s" % (key, value)), name)
            variables = {
                "incus_name": instance["name"], "incus_project": instance["project"], "incus_status": instance["status"],
                "incus_type": instance["type"], "incus_source": source["name"], "incus_location": member or source["name"],
                "incus_profiles": instance["profiles"], "incus_user": instance["user"], "incus_ipv4": instance["ipv4"],
            }
            variables.update(self._connection_vars(source, instance, member))
            for key, value in variables.items():
                self.inventory.set_variable(name, key, value)
            if constructed:
                self._set_composite_vars(self.get_option("compose"), variables, name, strict=strict)
                self._add_host_to_composed_groups(self.get_option("groups"), variables, name, strict=strict)
                self._add_host_to_keyed_groups(self.get_option("keyed_groups"), variables, name, strict=strict)

    def _connection_vars(self, source, instance, member):
        if self.get_option("connection") == "incus":
            return {"ansible_connection": "community.general.incus", "ansible_incus_host": instance["name"],
                    "ansible_incus_remote": source.get("remote") or "local",
                    "ansible_incus_project": instance["project"]}
        if member:
            backend = (source.get("members") or {}).get(member)
            if not backend:
                raise AnsibleParserError("incus inventory source %s: no SSH address for cluster member %s "
                                         "(add it under members)" % (source["name"], member))
        else:
            backend = source.get("ssh_host") or urlsplit(source.get("endpoint") or "").hostname
        hops = [source["jump"]] if source.get("jump") else []
        if backend:
            hops.append("%s@%s" % (source["ssh_user"], backend) if source.get("ssh_user") else backend)
        args = ["-o ProxyJump=%s" % ",".join(hops)] if hops else []
        if backend:
            # Container subnets repeat from host to host: the host key is recorded under host and address.
            args.append("-o HostKeyAlias=%s/%s" % (backend, instance["ipv4"]))
        extra = self.get_option("ssh_common_args")
        return {"ansible_host": instance["ipv4"], "ansible_user": self.get_option("container_user"),
                "ansible_ssh_common_args": " ".join(part for part in args + [extra] if part)}
