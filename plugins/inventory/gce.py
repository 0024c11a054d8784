# -*- coding: utf-8 -*-
# Copyright: containarium.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: gce
short_description: Compute Engine VM instances as an inventory, with ProxyJump for private hosts
version_added: 0.1.0
description:
  - Reads the VM instances of one or more Google Cloud projects with one paged C(aggregatedList) call per
    project (C(maxResults=500), so ten calls for 5,000 instances, whatever the number of zones), with label
    and O(filters) conditions sent to the server. Nothing is fetched per zone or per host.
  - The cache, when enabled, is consulted before any API call.
  - A project the API does not know (404), refuses, or does not answer in time fails the inventory; it never
    yields an empty host list.
  - Host variables are few and prefixed C(gce_) (C(gce_name), C(gce_zone), C(gce_machine_type), C(gce_status),
    C(gce_spot), C(gce_labels), C(gce_private_ip), C(gce_public_ip), C(gce_tags), and C(gce_project) when
    several projects are listed), plus C(ansible_host) when it differs from the inventory name.
  - C(keyed_groups) whose C(key) is a plain variable path (for example C(gce_labels.role)) are placed
    without templating each host.
  - Hosts without an external address get C(ansible_ssh_common_args=-o ProxyJump=<user>@<jump address>)
    through a jump server chosen by label (O(jump_label)) or by group (O(jump_group)).
  - The file name must end in C(gce.yml) or C(gce.yaml).
author: containarium.fleet contributors (@containarium)
extends_documentation_fragment:
  - ansible.builtin.constructed
  - ansible.builtin.inventory_cache
requirements:
  - requests
  - google-auth (not needed with O(auth_kind=accesstoken))
options:
  plugin:
    description: The name of this plugin.
    type: str
    required: true
    choices: [containarium.fleet.gce]
  projects:
    description: Project ids to read.
    type: list
    elements: str
    required: true
    env:
      - name: GCP_PROJECT
  auth_kind:
    description:
      - V(serviceaccount), V(application) (Application Default Credentials) or V(accesstoken); inferred from
        the credentials given when not set.
    type: str
    choices: [serviceaccount, application, accesstoken]
    env:
      - name: GCP_AUTH_KIND
  service_account_file:
    description: Path to a service-account JSON key file.
    type: path
    env:
      - name: GCP_SERVICE_ACCOUNT_FILE
  service_account_contents:
    description: The service-account JSON key itself.
    type: str
    env:
      - name: GCP_SERVICE_ACCOUNT_CONTENTS
  access_token:
    description: An OAuth2 access token.
    type: str
    env:
      - name: GCP_ACCESS_TOKEN
  scopes:
    description: OAuth2 scopes for service-account and application credentials.
    type: list
    elements: str
    default: [https://www.googleapis.com/auth/compute.readonly]
    env:
      - name: GCP_SCOPES
  endpoint:
    description: Base URL of the Compute Engine v1 API (private endpoint or local emulator).
    type: str
    default: https://compute.googleapis.com/compute/v1/
    env:
      - name: GCP_COMPUTE_ENDPOINT
  timeout:
    description: Seconds to wait for each API response.
    type: int
    default: 30
  zones:
    description: Only hosts in these zones (all zones when empty).
    type: list
    elements: str
    default: []
  labels:
    description: Only hosts carrying all these labels (sent to the API as C(labels.KEY = "VALUE") filters).
    type: dict
    default: {}
  filters:
    description: Further Compute API filter expressions, all of which must match (for example V(status = "RUNNING")).
    type: list
    elements: str
    default: []
  hostnames:
    description:
      - Preference list for the inventory name of a host; the first one a host has is used.
    type: list
    elements: str
    choices: [public_ip, private_ip, name]
    default: [public_ip, private_ip, name]
  jump_label:
    description:
      - C(KEY=VALUE) label that marks jump servers, for example V(fleet-role=jump). Hosts without a public IP
        are reached through the first running jump server (in their own zone when there is one).
    type: str
  jump_group:
    description:
      - Inventory group (for example one made by O(keyed_groups)) whose first host with a public IP is the jump
        server for hosts without one. Used when O(jump_label) is not set.
    type: str
  jump_user:
    description: User for the jump server in ProxyJump; none (the SSH default) when not set.
    type: str
"""

EXAMPLES = r"""
# fleet.gce.yml
plugin: containarium.fleet.gce
projects: [my-project]
auth_kind: serviceaccount
service_account_file: ~/.config/gcloud/fleet-inventory.json
labels: {fleet: prod}
filters: ['status = "RUNNING"']
hostnames: [name]
jump_label: fleet-role=jump
jump_user: admin
keyed_groups:
  - key: gce_labels['fleet-role']
    prefix: role
  - key: gce_zone
    prefix: zone
groups:
  spot: gce_spot
cache: true
cache_plugin: ansible.builtin.jsonfile
cache_connection: ~/.cache/fleet-inventory
cache_timeout: 300
"""

import re

from ansible.errors import AnsibleError, AnsibleParserError
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable
from ansible_collections.containarium.fleet.plugins.module_utils.fleet_module import FleetError
from ansible_collections.containarium.fleet.plugins.module_utils.gce import (
    GceClient,
    instance_addresses,
    instance_is_spot,
    resource_name,
)

PAGE_SIZE = 500
# A keyed_groups key such as gce_zone, gce_labels.role or gce_labels['fleet-role'].
PLAIN_PATH = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)((?:\.[A-Za-z_][A-Za-z0-9_]*|\[\s*'[^']*'\s*\]|\[\s*\"[^\"]*\"\s*\])*)\s*$")
PATH_PART = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[\s*'([^']*)'\s*\]|\[\s*\"([^\"]*)\"\s*\]")


def _host_record(project, instance):
    """What the inventory keeps (and caches) of an instance: plain values only."""
    private_ip, public_ip = instance_addresses(instance)
    return {
        "name": instance["name"],
        # str(): the option value carries ansible's template trust and origin tags, which would make
        # every cached record a tagged object (slow to load, and trusted as a template).
        "project": str(project),
        "zone": resource_name(instance.get("zone")),
        "machine_type": resource_name(instance.get("machineType")),
        "status": instance.get("status"),
        "spot": instance_is_spot(instance),
        "labels": instance.get("labels") or {},
        "private_ip": private_ip,
        "public_ip": public_ip,
        "tags": (instance.get("tags") or {}).get("items") or [],
    }


class InventoryModule(BaseInventoryPlugin, Constructable, Cacheable):
    NAME = "containarium.fleet.gce"

    def verify_file(self, path):
        return super().verify_file(path) and path.endswith(("gce.yml", "gce.yaml"))

    # ---- fetching ----------------------------------------------------------------------------
    def _server_filter(self):
        expressions = ['labels.%s = "%s"' % (key, value) for key, value in sorted(self.get_option("labels").items())]
        expressions += self.get_option("filters")
        return " ".join("(%s)" % e for e in expressions)

    def _fetch(self):
        """One paged aggregatedList per project; any API failure fails the inventory."""
        projects = self.get_option("projects")
        zones = set(self.get_option("zones"))
        params = {"maxResults": PAGE_SIZE}
        server_filter = self._server_filter()
        if server_filter:
            params["filter"] = server_filter
        records = []
        client = None
        for project in projects:
            try:
                if client is None:
                    client = GceClient(
                        project,
                        auth_kind=self.get_option("auth_kind"),
                        service_account_file=self.get_option("service_account_file"),
                        service_account_contents=self.get_option("service_account_contents"),
                        access_token=self.get_option("access_token"),
                        scopes=self.get_option("scopes"),
                        endpoint=self.get_option("endpoint"),
                        request_timeout=self.get_option("timeout"),
                    )
                for scope, instance in client.aggregated("instances", params, project=project):
                    if zones and resource_name(scope) not in zones:
                        continue
                    records.append(_host_record(project, instance))
            except FleetError as exc:
                raise AnsibleError("containarium.fleet.gce: cannot list the instances of project %s: %s"
                                   % (project, exc.message)) from exc
        return records

    # ---- populating --------------------------------------------------------------------------
    def _hostname(self, record):
        for choice in self.get_option("hostnames"):
            value = record.get(choice) if choice != "name" else record["name"]
            if value:
                return value
        return None

    @staticmethod
    def _plain_path(template):
        """``(variable, [keys])`` for a template that is only a variable path, else None."""
        match = PLAIN_PATH.match(template) if isinstance(template, str) else None
        if match is None:
            return None
        return match.group(1), [a or b or c for a, b, c in PATH_PART.findall(match.group(2))]

    @staticmethod
    def _resolve(path, variables):
        value = variables[path[0]]
        for key in path[1]:
            value = value[key]
        return value

    def _compose(self, template, variables, disable_lookups=...):
        """Resolve plain variable paths directly; template only real expressions.

        keyed_groups and compose entries such as ``gce_labels.role`` would otherwise cost one template
        evaluation per host, which is where inventory time goes on thousands of hosts.
        """
        path = self._plain_path(template)
        if path is None:
            return super()._compose(template, variables)
        return self._resolve(path, variables)

    def _split_keyed_groups(self):
        """Keyed groups the plugin places itself (a plain key, no parent/default options) and the rest.

        For the first kind the group name of each distinct value is computed once, exactly as
        Constructable names it, instead of once per host.
        """
        fast, slow = [], []
        for keyed in self.get_option("keyed_groups") or []:
            path = self._plain_path(keyed.get("key")) if isinstance(keyed, dict) else None
            options = set(keyed) - {"key", "prefix", "separator"} if isinstance(keyed, dict) else set()
            if path is not None and not options:
                fast.append((keyed, path, {}))
            else:
                slow.append(keyed)
        return fast, slow

    def _add_to_plain_keyed_group(self, keyed, path, names, hostvars, hostname, strict):
        try:
            value = self._resolve(path, hostvars)
        except (KeyError, TypeError, IndexError) as exc:
            if strict:
                raise AnsibleParserError("Could not generate group for host %s from %s entry: %s"
                                         % (hostname, keyed["key"], exc)) from exc
            return
        if not isinstance(value, (str, int, float, bool)) or value in (None, ""):
            # Lists, dictionaries and empty values: Constructable's own rules apply.
            self._add_host_to_keyed_groups([keyed], hostvars, hostname, strict=strict, fetch_hostvars=False)
            return
        group = names.get(value)
        if group is None:
            prefix = keyed.get("prefix", "")
            separator = keyed.get("separator", "_")
            if prefix == "" and self.get_option("leading_separator") is False:
                separator = ""
            group = self.inventory.add_group(self._sanitize_group_name("%s%s%s" % (prefix, separator, value)))
            names[value] = group
        self.inventory.add_host(hostname, group)

    def _populate(self, records):
        strict = self.get_option("strict")
        compose = self.get_option("compose")
        groups = self.get_option("groups")
        plain_keyed, other_keyed = self._split_keyed_groups()
        several_projects = len(self.get_option("projects")) > 1
        added = []
        for record in records:
            hostname = self._hostname(record)
            if hostname is None or hostname in self.inventory.hosts:
                self.display.warning("containarium.fleet.gce: skipping instance %s/%s: %s" % (
                    record["project"], record["name"],
                    "no usable hostname" if hostname is None else "hostname %s already used" % hostname))
                continue
            self.inventory.add_host(hostname)
            hostvars = {"gce_%s" % key: value for key, value in record.items()
                        if key != "project" or several_projects}
            address = record["public_ip"] or record["private_ip"]
            if address and address != hostname:
                hostvars["ansible_host"] = address
            for key, value in hostvars.items():
                self.inventory.set_variable(hostname, key, value)
            if compose:
                self._set_composite_vars(compose, hostvars, hostname, strict=strict)
            if groups:
                self._add_host_to_composed_groups(groups, hostvars, hostname, strict=strict, fetch_hostvars=False)
            for keyed, path, names in plain_keyed:
                self._add_to_plain_keyed_group(keyed, path, names, hostvars, hostname, strict)
            if other_keyed:
                self._add_host_to_keyed_groups(other_keyed, hostvars, hostname, strict=strict, fetch_hostvars=False)
            added.append((hostname, record))
        self._set_proxy_jumps(added)

    def _jump_candidates(self, added):
        if self.get_option("jump_label"):
            key, sep, value = self.get_option("jump_label").partition("=")
            if not sep:
                raise AnsibleError("containarium.fleet.gce: jump_label must be KEY=VALUE, not %r" % key)
            return [(h, r) for h, r in added if r["labels"].get(key) == value]
        if self.get_option("jump_group"):
            group = self.inventory.groups.get(self.get_option("jump_group"))
            members = set(h.name for h in group.get_hosts()) if group else set()
            return [(h, r) for h, r in added if h in members]
        return []

    def _set_proxy_jumps(self, added):
        jumps = sorted(
            ((h, r) for h, r in self._jump_candidates(added) if r["public_ip"] and r["status"] == "RUNNING"),
            key=lambda item: item[1]["name"],
        )
        if not jumps:
            return
        user = self.get_option("jump_user")
        by_zone = {}
        for hostname, record in jumps:
            by_zone.setdefault(record["zone"], record)
        jump_names = set(h for h, dummy in jumps)
        for hostname, record in added:
            if record["public_ip"] or hostname in jump_names:
                continue
            jump = by_zone.get(record["zone"], jumps[0][1])
            target = "%s@%s" % (user, jump["public_ip"]) if user else jump["public_ip"]
            self.inventory.set_variable(hostname, "ansible_ssh_common_args", "-o ProxyJump=%s" % target)

    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path, cache)
        self._read_config_data(path)
        cache_key = self.get_cache_key(path)
        use_cache = self.get_option("cache") and cache
        update_cache = self.get_option("cache") and not cache
        records = None
        if use_cache:
            try:
                records = self._cache[cache_key]
            except KeyError:
                update_cache = True
        if records is None:
            records = self._fetch()
        if update_cache:
            self._cache[cache_key] = records
        self._populate(records)
