# -*- coding: utf-8 -*-
# Copyright: containarium.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one Incus client of containarium.fleet (pylxd underneath).

Every incus_* module goes through :class:`IncusClient`. It talks to the Incus REST API over the
local unix socket or over HTTPS with a client certificate (the server certificate pinned by
fingerprint), in one Incus project. Background operations are waited for with the server's
long-poll ``GET /1.0/operations/<id>/wait?timeout=N`` against a deadline, and a failed
operation's ``err`` becomes the error message. pylxd's raw ``client.api`` tree is used rather
than its model objects: those hide ETags, ``?recursion=``, ``target`` and operation errors.

pylxd and requests are optional at import time (ansible-test imports every module_utils without
them); :func:`connect` reports the missing library with the pip command to fix it.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import os
import re
import socket
import ssl
import time
import traceback
from urllib.parse import quote

from ansible.module_utils.basic import env_fallback, missing_required_lib

from ansible_collections.containarium.fleet.plugins.module_utils.fleet_module import FleetError

try:
    import pylxd
    import requests
    from pylxd import exceptions as pylxd_exceptions
except ImportError:
    PYLXD_IMPORT_ERROR = traceback.format_exc()
else:
    PYLXD_IMPORT_ERROR = None

DEFAULT_SOCKET = "/var/lib/incus/unix.socket"
DEFAULT_ENDPOINT = "unix:" + DEFAULT_SOCKET

# Incus answers a long-poll that outlives its ?timeout= with this; the op may still be running.
_WAIT_DEADLINE_ERROR = "context deadline exceeded"
# Extra seconds the HTTP read may take beyond the server-side long-poll.
_HTTP_SLACK = 10
# Plain request read timeout (the unix adapter of pylxd would otherwise use 60 s).
_REQUEST_TIMEOUT = 60

_RELATIVE_EXPIRY = re.compile(r"^\s*(\d+)\s*([mhdw])\s*$")
_EXPIRY_UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 604800}
# A hard CPU time allowance, "<used>ms/<period>ms".
_CPU_ALLOWANCE = re.compile(r"^\s*(\d+)ms\s*/\s*(\d+)ms\s*$")


def connection_argument_spec():
    """Options of the ``containarium.fleet.incus`` doc fragment (keep the two in step)."""
    return dict(
        endpoint=dict(type="str", default=DEFAULT_ENDPOINT, fallback=(env_fallback, ["INCUS_ENDPOINT"])),
        client_cert=dict(type="path", fallback=(env_fallback, ["INCUS_CLIENT_CERT"])),
        client_key=dict(type="path", no_log=True, fallback=(env_fallback, ["INCUS_CLIENT_KEY"])),
        server_cert=dict(type="path", fallback=(env_fallback, ["INCUS_SERVER_CERT"])),
        verify=dict(type="bool", default=True),
        project=dict(type="str", default="default"),
    )


class IncusNotFound(FleetError):
    """The API answered 404 for the object asked for."""


def parse_expiry(expiry, now=None):
    """Turn a relative expiry such as ``30d``, ``12h``, ``2w`` or ``90m`` into an RFC 3339 UTC time."""
    match = _RELATIVE_EXPIRY.match(str(expiry))
    if not match:
        raise FleetError("invalid expiry %r: use a number followed by m, h, d or w (e.g. 30d)" % (expiry,))
    seconds = int(match.group(1)) * _EXPIRY_UNITS[match.group(2)]
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime((time.time() if now is None else now) + seconds))


def socket_path(endpoint):
    """The unix socket path of ``endpoint``, or None for an HTTPS endpoint."""
    if endpoint.startswith("https://"):
        return None
    if endpoint.startswith("unix://"):
        return endpoint[len("unix://"):] or DEFAULT_SOCKET
    if endpoint.startswith("unix:"):
        return endpoint[len("unix:"):] or DEFAULT_SOCKET
    if endpoint.startswith("/"):
        return endpoint
    raise FleetError("invalid endpoint %r: use unix:/path/to/unix.socket or https://host:8443" % endpoint)


class IncusClient:
    """Incus REST API over pylxd's transport, with operation waits and readable errors."""

    def __init__(self, endpoint=DEFAULT_ENDPOINT, client_cert=None, client_key=None, server_cert=None,
                 verify=True, project="default"):
        if PYLXD_IMPORT_ERROR:
            raise FleetError(missing_required_lib("pylxd") + " Install it with: pip install pylxd",
                             exception=PYLXD_IMPORT_ERROR)
        self.endpoint = endpoint
        self.project = project
        path = socket_path(endpoint)
        if path is not None:
            if not os.path.exists(path):
                raise FleetError(
                    "Incus socket %s does not exist: incusd is not running. Start it with `make sandbox` "
                    "(or `incusd --group root &`); on a real host `systemctl start incus`." % path)
            kwargs = dict(endpoint=path)
        else:
            if bool(client_cert) != bool(client_key):
                raise FleetError("client_cert and client_key must be given together for %s" % endpoint)
            cert = (client_cert, client_key) if client_cert else None
            kwargs = dict(endpoint=endpoint, cert=cert)
            make_session = getattr(pylxd.client, "get_session_for_url", None)  # pylxd >= 2.3 only
            if make_session is not None:
                session = make_session(endpoint, verify=server_cert or verify, cert=cert)
                # requests would otherwise let REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE replace the pinned
                # server certificate (and route the API through HTTPS_PROXY).
                session.trust_env = False
                kwargs["session"] = session
        # pylxd before 2.3 (Debian 12's python3-pylxd 2.2.10, what Incus hosts have) knows neither
        # projects nor sessions; with it the project travels as a query parameter of each request.
        self._project_param = None
        try:
            try:
                self._pylxd = pylxd.Client(project=project, timeout=_REQUEST_TIMEOUT, **kwargs)
            except TypeError:
                kwargs.pop("session", None)
                if path is not None:
                    # That pylxd tests a socket path with isfile() (false for a socket) and takes a
                    # socket only as $LXD_DIR/unix.socket.
                    os.environ["LXD_DIR"] = os.path.dirname(path)
                    kwargs = {}
                else:
                    kwargs["verify"] = server_cert or verify
                self._pylxd = pylxd.Client(timeout=_REQUEST_TIMEOUT, **kwargs)
                self._project_param = project
        except pylxd_exceptions.ClientConnectionFailed as exc:
            raise FleetError("cannot connect to Incus at %s: %s" % (endpoint, exc or "connection refused"))
        except (OSError, requests.RequestException) as exc:
            raise FleetError("cannot connect to Incus at %s: %s" % (endpoint, exc))
        if path is None and not self._pylxd.trusted:
            raise FleetError("Incus at %s does not trust this client certificate (%s): add it with "
                             "`incus config trust add-certificate`" % (endpoint, client_cert))

    @property
    def server_info(self):
        """``GET /1.0`` as read when connecting (environment, certificate, api_extensions...)."""
        return self._pylxd.host_info

    # -- transport -------------------------------------------------------------------------------

    def _node(self, path):
        node = self._pylxd.api
        for segment in path.strip("/").split("/"):
            node = node[quote(segment, safe="")]
        return node

    def request(self, method, path, body=None, params=None, headers=None, timeout=None, target=None):
        """One API call; returns the response. ``path`` is relative to /1.0 (``instances/web-1``)."""
        kwargs = dict(params=dict(params or {}), timeout=timeout or _REQUEST_TIMEOUT)
        if self._project_param and "all-projects" not in kwargs["params"]:
            kwargs["params"].setdefault("project", self._project_param)
        if body is not None:
            kwargs["json"] = body
        if headers:
            kwargs["headers"] = headers
        if target:
            kwargs["params"]["target"] = target
        try:
            return getattr(self._node(path), method)(**kwargs)
        except pylxd_exceptions.NotFound as exc:
            raise IncusNotFound(_api_message(exc, "%s /1.0/%s" % (method.upper(), path)),
                                status=404, api_error=_api_body(exc.response))
        except pylxd_exceptions.LXDAPIException as exc:
            raise FleetError(_api_message(exc, "%s /1.0/%s" % (method.upper(), path)),
                             status=exc.response.status_code, api_error=_api_body(exc.response))
        except requests.RequestException as exc:
            raise FleetError("%s /1.0/%s: cannot reach Incus at %s: %s" % (method.upper(), path, self.endpoint, exc))

    def get(self, path, params=None):
        """GET ``path``; returns the response's ``metadata``."""
        return self.request("get", path, params=params).json()["metadata"]

    def call(self, method, path, body=None, timeout=120, params=None, headers=None, target=None):
        """Change something: send, then wait for the background operation if one was started.

        Returns the finished operation (or the sync metadata). ``timeout`` is the deadline in seconds.
        """
        response = self.request(method, path, body=body, params=params, headers=headers, target=target)
        data = response.json()
        if data.get("type") == "async":
            return self.wait_operation(data["operation"], timeout)
        return data.get("metadata")

    def wait_operation(self, operation, timeout):
        """Wait until ``operation`` (URL or id) ends, via the server long-poll, within ``timeout`` s.

        Raises FleetError with the operation's ``err`` when it fails, or when the deadline passes.
        """
        # Cluster members hand back ".../operations/<id>?project=default": drop the query first.
        op_id = operation.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
        deadline = time.monotonic() + timeout
        while True:
            remaining = max(1, int(round(deadline - time.monotonic())))
            try:
                op = self.request("get", "operations/%s/wait" % op_id, params={"timeout": remaining},
                                  timeout=remaining + _HTTP_SLACK).json()["metadata"]
            except FleetError as exc:
                # The long-poll answers an error both when its timeout passed and when the operation
                # failed; the operation itself says which (and carries description and err).
                try:
                    op = self.get("operations/%s" % op_id)
                except FleetError:
                    raise exc
                if op["status"] == "Running" and _WAIT_DEADLINE_ERROR not in exc.message:
                    raise exc
            if op["status"] == "Success":
                return op
            if op["status"] in ("Failure", "Cancelled"):
                raise FleetError("%s failed: %s" % (op.get("description") or "operation", op.get("err") or op["status"]),
                                 operation=op)
            if time.monotonic() >= deadline:
                raise FleetError("%s did not finish within %s seconds (operation %s is still %s)" % (
                    op.get("description") or "operation", timeout, op_id, op["status"]), operation=op)

    # -- instances -------------------------------------------------------------------------------

    def instance(self, name):
        """The instance with its state and snapshots (``?recursion=1``), or None when absent."""
        try:
            return self.get("instances/%s" % name, params={"recursion": 1})
        except IncusNotFound:
            return None

    def instance_with_etag(self, name):
        """``(instance, etag)`` for a conditional PUT."""
        response = self.request("get", "instances/%s" % name)
        return response.json()["metadata"], response.headers.get("ETag")

    def instances(self):
        """All instances of the project with state and snapshots, in one call (``?recursion=2``)."""
        return self.get("instances", params={"recursion": 2})

    def all_project_instances(self, recursion=1):
        """Every instance of every project in one ``GET /1.0/instances?all-projects=true``.

        pylxd >= 2.3 adds ``?project=<client project>`` to each request and Incus refuses that next
        to ``all-projects``, so this goes through a copy of the client whose API root has no project.
        (With older pylxd the project is this client's own query parameter, left out by request().)
        """
        params = {"recursion": recursion, "all-projects": "true"}
        if self._project_param is not None:
            return self.get("instances", params=params)
        unscoped = copy.copy(self)
        unscoped._pylxd = copy.copy(self._pylxd)
        root = self._pylxd.api
        unscoped._pylxd.api = type(root)(root._api_endpoint, session=root.session, timeout=root._timeout, project=None)
        return unscoped.get("instances", params=params)

    def instance_state(self, name):
        return self.get("instances/%s/state" % name)

    def create_instance(self, body, timeout, target=None):
        return self.call("post", "instances", body=body, timeout=timeout, target=target)

    def update_instance(self, name, body, etag, timeout):
        """PUT the whole writable instance body, guarded by the ETag read before."""
        headers = {"If-Match": etag} if etag else None
        return self.call("put", "instances/%s" % name, body=body, headers=headers, timeout=timeout)

    def change_state(self, name, action, timeout, force=False):
        """start, stop, restart, freeze or unfreeze; ``timeout`` also bounds a clean shutdown."""
        body = {"action": action, "timeout": timeout, "force": force}
        return self.call("put", "instances/%s/state" % name, body=body, timeout=timeout + _HTTP_SLACK)

    def delete_instance(self, name, timeout):
        """Stop (forcefully) if needed, then delete."""
        current = self.instance_state(name)
        if current["status"] not in ("Stopped",):
            self.change_state(name, "stop", timeout, force=True)
        return self.call("delete", "instances/%s" % name, timeout=timeout)

    def wait_for_ipv4(self, name, timeout):
        """Poll the instance state until a non-loopback NIC has an IPv4 address; returns the state.

        Incus has no event for "got a DHCP lease", so this polls with a short capped backoff.
        """
        deadline = time.monotonic() + timeout
        delay = 0.2
        while True:
            state = self.instance_state(name)
            if first_ipv4(state) or state.get("status") != "Running":
                return state
            if time.monotonic() + delay > deadline:
                raise FleetError("instance %s got no IPv4 address within %s seconds" % (name, timeout))
            time.sleep(delay)
            delay = min(delay * 1.5, 1.0)

    # -- images ----------------------------------------------------------------------------------

    def resolve_image(self, source):
        """Fingerprint of the image alias or fingerprint ``source``; error lists the aliases."""
        try:
            return self.get("images/aliases/%s" % source)["target"]
        except IncusNotFound:
            pass
        try:
            return self.get("images/%s" % source)["fingerprint"]
        except IncusNotFound:
            aliases = sorted(alias["name"] for alias in self.get("images/aliases", params={"recursion": 1}))
            raise FleetError("image %r not found on %s (project %s); image aliases there: %s" % (
                source, self.endpoint, self.project, ", ".join(aliases) or "none"), aliases=aliases)

    # -- snapshots -------------------------------------------------------------------------------

    def snapshot(self, instance, name):
        try:
            return self.get("instances/%s/snapshots/%s" % (instance, name))
        except IncusNotFound:
            return None

    # -- host ------------------------------------------------------------------------------------

    def resources(self):
        return self.get("resources")

    def storage_pools(self):
        """Every pool with its ``resources`` (space and inodes)."""
        pools = self.get("storage-pools", params={"recursion": 1})
        for pool in pools:
            pool["resources"] = self.get("storage-pools/%s/resources" % pool["name"])
        return pools


def connect(module, prefix=""):
    """An IncusClient from the module's connection options (``prefix`` e.g. ``target_``), or fail_json."""
    params = module.params
    try:
        return IncusClient(
            endpoint=params[prefix + "endpoint"], client_cert=params[prefix + "client_cert"],
            client_key=params[prefix + "client_key"], server_cert=params[prefix + "server_cert"],
            verify=params[prefix + "verify"], project=params[prefix + "project"])
    except FleetError as exc:
        module.fail_from(exc)


def instance_view(instance, state=None):
    """What modules return for an instance: its settings (no ``volatile.*``), status and addresses.

    ``state`` is ``/1.0/instances/<name>/state``; by default the one embedded by ``?recursion``.
    """
    state = state if state is not None else instance.get("state") or {}
    return {
        "name": instance["name"],
        "type": instance.get("type"),
        "status": state.get("status") or instance.get("status"),
        "location": instance.get("location"),
        "profiles": instance.get("profiles"),
        "config": {k: v for k, v in (instance.get("config") or {}).items() if not k.startswith("volatile.")},
        "devices": instance.get("devices") or {},
        "ipv4": first_ipv4(state),
        "addresses": addresses(state),
    }


def allocated_cpu(config):
    """CPUs an instance is promised by its (expanded) config, for placement headroom.

    A hard allowance (``limits.cpu.allowance: 25ms/100ms``) counts as that fraction; otherwise
    ``limits.cpu`` as a count (``2``) or a set of cores (``0-1,3`` is 3); no limit counts 0.
    """
    allowance = _CPU_ALLOWANCE.match((config or {}).get("limits.cpu.allowance") or "")
    if allowance and int(allowance.group(2)):
        return int(allowance.group(1)) / float(int(allowance.group(2)))
    cpus = str((config or {}).get("limits.cpu") or "").strip()
    if cpus.isdigit():
        return float(cpus)
    count = 0
    for part in filter(None, cpus.split(",")):
        low, _sep, high = part.partition("-")
        count += (int(high) - int(low) + 1) if high else 1
    return float(count)


def instance_counts(instances):
    """``total``, ``running``, ``stopped`` and ``frozen`` of a listing (``?recursion=1`` or more)."""
    counts = {"total": len(instances), "running": 0, "stopped": 0, "frozen": 0}
    for instance in instances:
        status = (instance.get("status") or "").lower()
        if status in counts:
            counts[status] += 1
    return counts


def instance_load(instances):
    """``(counts, cpu_allocated)`` of a listing, for cluster member facts.

    Stopped instances count in the CPU allocation too: their CPUs are promised to them when they
    start again.
    """
    allocated = sum(allocated_cpu(i.get("expanded_config") or i.get("config")) for i in instances)
    return instance_counts(instances), allocated


def first_ipv4(state):
    """The first global IPv4 address of a non-loopback NIC (eth0 first), or None."""
    for _iface, address in _addresses(state):
        if address.get("family") == "inet" and address.get("scope") == "global":
            return address["address"]
    return None


def addresses(state):
    """``{iface: [{family, address}, ...]}`` of the non-loopback NICs."""
    result = {}
    for iface, address in _addresses(state):
        result.setdefault(iface, []).append({"family": address["family"], "address": address["address"]})
    return result


def _addresses(state):
    network = (state or {}).get("network") or {}
    for iface in sorted(network, key=lambda n: (n != "eth0", n)):
        if iface == "lo" or network[iface].get("type") == "loopback":
            continue
        for address in network[iface].get("addresses") or []:
            yield iface, address


def _api_body(response):
    try:
        return response.json()
    except ValueError:
        return response.text


def _api_message(exc, what):
    """``<METHOD> <path>: <Incus error>`` from a pylxd exception (``error`` or an operation's ``err``).

    Read from the body itself: older pylxd (Debian's 2.2) raises from ``str(exc)`` when the
    error body has no ``metadata``.
    """
    body = _api_body(exc.response)
    text = ""
    if isinstance(body, dict):
        metadata = body.get("metadata")
        text = body.get("error") or (metadata.get("err") if isinstance(metadata, dict) else "") or ""
    elif body:
        text = str(body).strip()
    return "%s: %s (HTTP %s)" % (what, text or "no error text", exc.response.status_code)


# ================================================================================================
# Incus clustering (members, join tokens, evacuation, cluster-wide pools and networks).
# Kept apart from the instance API above: ClusterApi wraps an IncusClient and goes through its
# request/get/call, so transport, errors and operation waits stay in one place.
# ================================================================================================


# Keys of a join token as `incus cluster add` prints it (base64 of this JSON object).
_TOKEN_KEYS = ("server_name", "fingerprint", "addresses", "secret", "expires_at")
# Operation metadata keys of a pending token, by token key.
_TOKEN_OPERATION_KEYS = {"server_name": "serverName", "fingerprint": "fingerprint", "addresses": "addresses",
                         "secret": "secret", "expires_at": "expiresAt"}
# Per-member collections that must be created "pending" on every member before they are finalised.
CLUSTER_WIDE_KINDS = {"storage-pools": "driver", "networks": "type"}


def encode_join_token(fields):
    """The join token string (what `incus cluster add` prints) from its fields."""
    return base64.b64encode(json.dumps({key: fields[key] for key in _TOKEN_KEYS}).encode()).decode()


def decode_join_token(token):
    """The fields of a join token; FleetError (without echoing the secret) when it is not one."""
    try:
        fields = json.loads(base64.b64decode(str(token).strip(), validate=True).decode())
    except (ValueError, TypeError):
        raise FleetError("cluster_token is not an Incus join token (base64 JSON as printed by `incus cluster add`)")
    missing = [key for key in _TOKEN_KEYS if not isinstance(fields, dict) or key not in fields]
    if missing:
        raise FleetError("cluster_token lacks %s: not an Incus join token" % ", ".join(missing))
    return fields


def _split_address(address, default_port=8443):
    """``(host, port)`` of ``host``, ``host:port``, ``[v6]`` or ``[v6]:port``."""
    if address.startswith("["):
        host, _sep, rest = address[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else default_port
    if address.count(":") == 1:
        host, port = address.split(":")
        return host, int(port)
    return address, default_port


def fetch_cluster_certificate(addresses, fingerprint, timeout=10):
    """PEM certificate of the cluster at one of ``addresses`` whose SHA-256 matches the token's.

    A joining server must be handed the cluster certificate; the token carries only its
    fingerprint, so the certificate is read from the cluster and checked against it (what the
    incus client does too) rather than trusted blindly.
    """
    problems = []
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # Identity is checked below by fingerprint, not by CA.
    for address in addresses:
        host, port = _split_address(address)
        try:
            with socket.create_connection((host, port), timeout=timeout) as raw:
                with context.wrap_socket(raw, server_hostname=host) as tls:
                    der = tls.getpeercert(binary_form=True)
        except (OSError, ssl.SSLError) as exc:
            problems.append("%s: %s" % (address, exc))
            continue
        if hashlib.sha256(der).hexdigest() == fingerprint.lower():
            return ssl.DER_cert_to_PEM_cert(der)
        problems.append("%s: certificate fingerprint does not match the join token" % address)
    raise FleetError("cannot read the cluster certificate named by the join token (%s)" % "; ".join(problems))


class ClusterApi:
    """Cluster calls of one Incus server (any member of the cluster, or a server about to join)."""

    def __init__(self, client):
        self.client = client

    def all_instances(self, recursion=1):
        """Every instance of every project in one ``GET /1.0/instances?all-projects=true``."""
        return self.client.all_project_instances(recursion)

    # -- the cluster as this server sees it ----------------------------------------------------

    def state(self):
        """``GET /1.0/cluster``: ``enabled``, ``server_name`` and the ``member_config`` a joiner must give."""
        return self.client.get("cluster")

    def enable(self, server_name, timeout):
        """Turn this standalone server into the first member of a new cluster."""
        return self.client.call("put", "cluster", body={"server_name": server_name, "enabled": True},
                                timeout=timeout)

    def join(self, server_name, server_address, token, member_config, timeout):
        """Join this server to the cluster ``token`` was issued by (``PUT /1.0/cluster``)."""
        fields = decode_join_token(token)
        if fields["server_name"] != server_name:
            raise FleetError("the join token was issued for member %r, not %r" % (fields["server_name"], server_name))
        body = {
            "server_name": server_name,
            "enabled": True,
            "server_address": server_address,
            "cluster_address": fields["addresses"][0],
            "cluster_certificate": fetch_cluster_certificate(fields["addresses"], fields["fingerprint"]),
            "cluster_token": token,
            "member_config": member_config,
        }
        return self.client.call("put", "cluster", body=body, timeout=timeout)

    # -- members -------------------------------------------------------------------------------

    def members(self):
        return self.client.get("cluster/members", params={"recursion": 1})

    def member(self, name):
        try:
            return self.client.get("cluster/members/%s" % name)
        except IncusNotFound:
            return None

    def update_member(self, name, changes):
        """PUT the member's writable fields with ``changes`` applied, guarded by its ETag."""
        response = self.client.request("get", "cluster/members/%s" % name)
        current = response.json()["metadata"]
        body = {key: current.get(key) for key in ("description", "config", "groups", "failure_domain", "roles")}
        body.update(changes)
        etag = response.headers.get("ETag")
        return self.client.call("put", "cluster/members/%s" % name, body=body,
                                headers={"If-Match": etag} if etag else None)

    def change_member_state(self, name, action, timeout, mode=None):
        """``evacuate`` or ``restore`` a member; waits until its instances have moved."""
        body = {"action": action}
        if mode:
            body["mode"] = mode
        return self.client.call("post", "cluster/members/%s/state" % name, body=body, timeout=timeout)

    def remove_member(self, name, force, timeout):
        return self.client.call("delete", "cluster/members/%s" % name,
                                params={"force": 1} if force else None, timeout=timeout)

    def groups(self):
        return [group["name"] for group in self.client.get("cluster/groups", params={"recursion": 1})]

    def create_group(self, name, description=""):
        return self.client.call("post", "cluster/groups", body={"name": name, "description": description})

    def instances_by_member(self):
        """``{member: [instance names]}`` over every project, from one listing."""
        placed = {}
        for instance in self.all_instances():
            placed.setdefault(instance.get("location") or "none", []).append(instance["name"])
        return placed

    def member_resources(self, name):
        """``/1.0/resources`` of one member (the request is forwarded to it)."""
        return self.client.get("resources", params={"target": name})

    # -- join tokens ---------------------------------------------------------------------------

    def pending_tokens(self):
        """``{member name: (operation id, token)}`` of the join tokens issued and not yet used."""
        operations = self.client.get("operations", params={"recursion": 1})
        tokens = {}
        for operation in operations.get("running") or []:
            meta = operation.get("metadata") or {}
            if operation.get("class") == "token" and "serverName" in meta:
                fields = {key: meta.get(op_key) for key, op_key in _TOKEN_OPERATION_KEYS.items()}
                tokens[meta["serverName"]] = (operation["id"], encode_join_token(fields))
        return tokens

    def issue_token(self, name):
        """A new single-use join token for member ``name`` (the token's operation stays pending)."""
        data = self.client.request("post", "cluster/members", body={"server_name": name}).json()
        meta = (data.get("metadata") or {}).get("metadata") or {}
        return encode_join_token({key: meta.get(op_key) for key, op_key in _TOKEN_OPERATION_KEYS.items()})

    def revoke_token(self, operation_id):
        self.client.request("delete", "operations/%s" % operation_id)

    # -- storage pools and networks defined on every member ------------------------------------

    def cluster_wide(self, collection, name):
        """The pool or network ``name`` (``collection`` is storage-pools or networks), or None."""
        try:
            return self.client.get("%s/%s" % (collection, name))
        except IncusNotFound:
            return None

    def create_cluster_wide(self, collection, name, kind, config, member_configs, timeout):
        """Define ``name`` pending on every member with its own config, then finalise it.

        Incus refuses a plain create in a cluster: each member first gets the object with its
        member-specific keys (``?target=<member>``: e.g. a pool's ``source``), then one request
        without target creates it everywhere with the global ``config``.
        """
        kind_key = CLUSTER_WIDE_KINDS[collection]
        for member in sorted(member_configs):
            self.client.call("post", collection, target=member, timeout=timeout,
                             body={"name": name, kind_key: kind, "config": member_configs[member]})
        return self.client.call("post", collection, timeout=timeout,
                                body={"name": name, kind_key: kind, "config": config})

    def update_cluster_wide(self, collection, name, config, timeout):
        """PATCH the global ``config`` keys of a pool or network."""
        return self.client.call("patch", "%s/%s" % (collection, name), body={"config": config}, timeout=timeout)


def fetch_all_instances(endpoint=DEFAULT_ENDPOINT, client_cert=None, client_key=None, server_cert=None,
                        verify=True, recursion=2, timeout=_REQUEST_TIMEOUT):
    """Every instance of every project of one server or cluster, in exactly one HTTP request.

    For inventories: ``GET /1.0/instances?recursion=2&all-projects=true`` (config, state and
    addresses of each instance, its cluster ``location`` included). IncusClient's constructor
    reads ``GET /1.0`` first, which would double the calls per server, so this builds the same
    pylxd session (pinned server certificate, no environment proxies) and sends the one request.
    """
    if PYLXD_IMPORT_ERROR:
        raise FleetError(missing_required_lib("pylxd") + " Install it with: pip install pylxd",
                         exception=PYLXD_IMPORT_ERROR)
    path = socket_path(endpoint)
    if path is not None:
        base = "http+unix://%s" % quote(path, safe="")
        session = pylxd.client.get_session_for_url(base)
    else:
        if bool(client_cert) != bool(client_key):
            raise FleetError("client_cert and client_key must be given together for %s" % endpoint)
        base = endpoint.rstrip("/")
        session = pylxd.client.get_session_for_url(
            base, verify=server_cert or verify, cert=(client_cert, client_key) if client_cert else None)
        session.trust_env = False
    url = "%s/1.0/instances" % base
    try:
        response = session.get(url, params={"recursion": recursion, "all-projects": "true"}, timeout=timeout)
    except (OSError, requests.RequestException) as exc:
        raise FleetError("GET /1.0/instances: cannot reach Incus at %s: %s" % (endpoint, exc))
    try:
        body = response.json()
    except ValueError:
        body = {"error": response.text[:200]}
    if response.status_code != 200 or body.get("type") == "error":
        raise FleetError("GET /1.0/instances at %s: %s (HTTP %s)" % (endpoint, body.get("error") or "error",
                                                                     response.status_code),
                         status=response.status_code, api_error=body)
    return body["metadata"]
