# -*- coding: utf-8 -*-
# Copyright: containarium.fleet contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""containarium.fleet.gce_events: Compute Engine instance events for Event-Driven Ansible.

Two modes:

``api`` (default; run it anywhere that reaches the Compute API, e.g. the sentinel): every
``poll_interval`` seconds ONE paged ``aggregated/operations`` call across all zones, filtered on the
server to instance operations newer than the watermark, turns each new operation into one event::

    {"gce_event": {"kind": "preempted", "instance": "web-1", "zone": "us-central1-a",
                   "project": "my-project", "time": "2026-...", "operation": "operation-...",
                   "operation_type": "compute.instances.preempted", "status": "DONE"}}

``kind`` is one of preempted, stopped, started, deleted, created, reset, host_error, guest_terminated,
suspended, resumed, machine_type_changed. The watermark (newest insertTime seen, and the operations
seen at that instant) is written atomically to ``state_file`` after each poll, so a restarted source
neither repeats nor skips an event.

``metadata`` (run it ON a spot VM): long-polls the metadata server's ``instance/preempted`` key with
``wait_for_change`` and emits ``kind: preemption_notice`` the moment it turns TRUE, i.e. at the start
of the 30-second notice, before the VM stops. With ``instances`` it watches other VMs, one long-poll per
VM: a ``<zone>/<name>`` entry through ``metadata_url``, which tells them apart by the
``X-Emulated-Instance`` header (the sandbox emulator), and a ``{instance: <zone>/<name>, metadata_url: ...}``
entry through that VM's own relay of its ``instance/preempted`` key (only a VM can read its own metadata
server; the sentinel topology runs one on every spot host, playbooks/files/fleet_notice_relay.py).

``tick``: emits ``{"gce_event": {"kind": "tick", "time": ...}}`` every ``interval`` seconds (default 30),
for rules that must run on a timer (e.g. the scale-back of spot replacements, resumed after a restart).

Arguments (api mode): project (or GCP_PROJECT), auth_kind / access_token / service_account_file /
service_account_contents (or the GCP_* variables), endpoint (or GCP_COMPUTE_ENDPOINT), poll_interval
(2), state_file (optional, but without it a restart starts from "now"), kinds (list; default all),
instance_prefix (only instances whose name starts with it, e.g. the fleet's name).
Arguments (metadata mode): metadata_url (http://metadata.google.internal/computeMetadata/v1/),
timeout_sec (long-poll length, 60), metadata_headers (extra request headers, e.g. for a metadata proxy),
instances (optional list of ``<zone>/<name>`` or ``{instance, metadata_url}``, see above).
Arguments (tick mode): interval (seconds, 30).

Example rulebook source::

    sources:
      - containarium.fleet.gce_events:
          project: my-project
          state_file: /var/lib/containarium/gce_events.json
"""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
import os
import sys
import tempfile

try:
    from ansible_collections.containarium.fleet.plugins.module_utils.gce import GceClient, FleetError
except ImportError:
    # ansible-rulebook loads this file by path: make the collection tree it sits in importable.
    sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), *[os.pardir] * 7)))
    from ansible_collections.containarium.fleet.plugins.module_utils.gce import GceClient, FleetError

import requests

LOG = logging.getLogger("containarium.fleet.gce_events")

KIND_OF_OPERATION = {
    "compute.instances.preempted": "preempted",
    "stop": "stopped",
    "start": "started",
    "delete": "deleted",
    "insert": "created",
    "reset": "reset",
    "compute.instances.hostError": "host_error",
    "compute.instances.guestTerminate": "guest_terminated",
    "suspend": "suspended",
    "resume": "resumed",
    "setMachineType": "machine_type_changed",
}
# Argument -> the environment variable the collection's GCE modules fall back to for it.
AUTH_ARGS = {"auth_kind": "GCP_AUTH_KIND", "access_token": "GCP_ACCESS_TOKEN",
             "service_account_file": "GCP_SERVICE_ACCOUNT_FILE", "service_account_contents": "GCP_SERVICE_ACCOUNT_CONTENTS",
             "endpoint": "GCP_COMPUTE_ENDPOINT"}
DEFAULT_METADATA_URL = "http://metadata.google.internal/computeMetadata/v1/"


class Watermark:
    """Newest operation insertTime seen and the operation ids seen at exactly that time."""

    def __init__(self, path=None):
        self.path = path
        self.since, self.seen = None, set()
        # A saved state with no operation in it still means "watched from then on": a restart must
        # then report every operation listed, not take them all for history.
        self.saved = bool(path and os.path.exists(path))
        if self.saved:
            with open(path, encoding="utf-8") as handle:
                saved = json.load(handle)
            self.since, self.seen = saved.get("since"), set(saved.get("seen") or [])

    def is_new(self, operation):
        return (self.since is None or operation["insertTime"] > self.since
                or (operation["insertTime"] == self.since and operation["id"] not in self.seen))

    def advance(self, operation):
        if self.since is None or operation["insertTime"] > self.since:
            self.since, self.seen = operation["insertTime"], {operation["id"]}
        elif operation["insertTime"] == self.since:
            self.seen.add(operation["id"])

    def save(self):
        if not self.path:
            return
        directory = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(directory, exist_ok=True)
        # Write then rename, so a kill mid-write never leaves a torn watermark behind.
        handle, temporary = tempfile.mkstemp(dir=directory, prefix=".gce_events.")
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump({"since": self.since, "seen": sorted(self.seen)}, out)
        os.replace(temporary, self.path)


def operation_filter(kinds, since):
    """The server-side filter: instance operations of the wanted kinds, not older than ``since``."""
    types = [op_type for op_type, kind in KIND_OF_OPERATION.items() if kind in kinds]
    wanted = " OR ".join('(operationType = "%s")' % op_type for op_type in types)
    if since is None:
        return wanted
    # >= and not >: operations sharing the watermark's millisecond are told apart by id.
    return '(insertTime >= "%s") AND (%s)' % (since, wanted)


def event_of(project, scope, operation):
    target = operation.get("targetLink") or ""
    return {"gce_event": {
        "kind": KIND_OF_OPERATION[operation["operationType"]],
        "instance": target.rstrip("/").rsplit("/", 1)[-1],
        "zone": scope.rsplit("/", 1)[-1] if scope.startswith("zones/") else (operation.get("zone") or "").rsplit("/", 1)[-1],
        "project": project,
        "time": operation["insertTime"],
        "operation": operation.get("name"),
        "operation_type": operation["operationType"],
        "status": operation.get("status"),
    }}


class OperationWatch:
    """One poll = one paged aggregated/operations listing; yields each new operation's event once."""

    def __init__(self, client, kinds=None, state_file=None, instance_prefix=""):
        self.client = client
        self.kinds = set(kinds or KIND_OF_OPERATION.values())
        unknown = self.kinds - set(KIND_OF_OPERATION.values())
        if unknown:
            raise ValueError("unknown event kinds %s; known: %s" % (
                ", ".join(sorted(unknown)), ", ".join(sorted(set(KIND_OF_OPERATION.values())))))
        self.watermark = Watermark(state_file)
        self.instance_prefix = instance_prefix or ""

    def start_from_now(self):
        """A first start without saved state begins at the newest existing operation (no replay)."""
        if not self.watermark.saved:
            for _event in self.poll():
                pass

    def poll(self):
        params = {"filter": operation_filter(self.kinds, self.watermark.since), "returnPartialSuccess": "true"}
        found = [(scope, op) for scope, op in self.client.aggregated("operations", params=params)
                 if op.get("operationType") in KIND_OF_OPERATION and self.watermark.is_new(op)]
        events = []
        for scope, operation in sorted(found, key=lambda pair: (pair[1]["insertTime"], pair[1]["id"])):
            self.watermark.advance(operation)
            event = event_of(self.client.project, scope, operation)
            if event["gce_event"]["instance"].startswith(self.instance_prefix):
                events.append(event)
            else:
                LOG.info("skipping %s of %s: not an instance named %s*", event["gce_event"]["kind"],
                         event["gce_event"]["instance"], self.instance_prefix)
        self.watermark.save()
        return events


def client_from_args(args):
    project = args.get("project") or os.environ.get("GCP_PROJECT")
    if not project:
        raise ValueError("gce_events needs a project (argument project or GCP_PROJECT)")
    try:
        return GceClient(project, **{key: args.get(key) or os.environ.get(env) for key, env in AUTH_ARGS.items()})
    except FleetError as exc:
        raise ValueError("gce_events cannot authenticate to project %s: %s" % (project, exc)) from exc


async def watch_api(queue, args):
    client = client_from_args(args)
    watch = OperationWatch(client, args.get("kinds"), args.get("state_file"), args.get("instance_prefix"))
    interval = float(args.get("poll_interval", 2))
    try:
        # The first listing also proves the credentials: a bad token fails here, at once, not later.
        await asyncio.to_thread(watch.start_from_now)
    except FleetError as exc:
        raise ValueError("gce_events cannot list the operations of project %s: %s" % (client.project, exc)) from exc
    LOG.info("watching project %s for instance events every %.1f s", client.project, interval)
    while True:
        try:
            events = await asyncio.to_thread(watch.poll)
        except (FleetError, requests.RequestException) as exc:
            # A failed poll moves no watermark: the next one lists the same operations again.
            LOG.warning("listing operations failed, retrying: %s", exc)
            events = []
        for event in events:
            LOG.info("event %s of %s in %s (%s)", event["gce_event"]["kind"], event["gce_event"]["instance"],
                     event["gce_event"]["zone"], event["gce_event"]["operation"])
            await queue.put(event)
        await asyncio.sleep(interval)


def metadata_get(session, base, path, params=None, timeout=10, headers=None):
    response = session.get(base + path, params=params, timeout=timeout, headers=headers)
    response.raise_for_status()
    return response


def now_rfc3339():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")


async def watch_notice(queue, session, base, long_poll, vm=None, by_header=True):
    """Long-poll one VM's ``instance/preempted`` key; put one ``preemption_notice`` each time it turns TRUE.
    ``vm`` (``<zone>/<name>``) names the VM, told to ``base`` by a header unless ``base`` is the VM's own relay;
    without it, the VM asking is the one watched."""
    headers = {"X-Emulated-Instance": vm} if vm and by_header else None
    if vm:
        zone, name = vm.split("/")
    else:
        name = (await asyncio.to_thread(metadata_get, session, base, "instance/name")).text.strip()
        zone = (await asyncio.to_thread(metadata_get, session, base, "instance/zone")).text.strip().rsplit("/", 1)[-1]
    etag, announced = None, False
    LOG.info("watching the preemption notice of %s in %s", name, zone)
    while True:
        params = {"wait_for_change": "true", "timeout_sec": str(long_poll)}
        if etag:
            params["last_etag"] = etag
        try:
            response = await asyncio.to_thread(metadata_get, session, base, "instance/preempted", params,
                                               long_poll + 10, headers)
        except requests.RequestException as exc:
            LOG.warning("metadata server (%s): %s; retrying", name, exc)
            await asyncio.sleep(1)
            continue
        etag = response.headers.get("ETag", etag)
        preempted = response.text.strip().upper() == "TRUE"
        if preempted and not announced:
            LOG.info("event preemption_notice of %s in %s", name, zone)
            await queue.put({"gce_event": {"kind": "preemption_notice", "instance": name, "zone": zone,
                                           "project": None, "time": now_rfc3339(),
                                           "operation": None, "operation_type": None, "status": "NOTICE"}})
        announced = preempted


async def watch_metadata(queue, args):
    base = (args.get("metadata_url") or DEFAULT_METADATA_URL).rstrip("/") + "/"
    long_poll = int(args.get("timeout_sec", 60))
    instances = args.get("instances") or []
    watches = []  # (vm, its metadata base, told by header)
    for item in instances if isinstance(instances, list) else [None]:
        vm, own_url = (item.get("instance"), item.get("metadata_url")) if isinstance(item, dict) else (item, None)
        if not isinstance(vm, str) or vm.count("/") != 1 or (isinstance(item, dict) and not own_url):
            raise ValueError("gce_events instances must be a list of <zone>/<name> or {instance: <zone>/<name>, "
                             "metadata_url: <its relay>}, not %r" % (instances,))
        watches.append((vm, own_url.rstrip("/") + "/" if own_url else base, not own_url))
    session = requests.Session()
    session.trust_env = False  # the metadata server is link-local: never through a proxy
    session.headers.update(args.get("metadata_headers") or {})
    session.headers["Metadata-Flavor"] = "Google"
    if "instances" in args and not instances:
        LOG.info("no VM to watch for preemption notices")
        await asyncio.Event().wait()  # an empty list is a valid choice, not a reason to end the rulebook
    if not instances:
        await watch_notice(queue, session, base, long_poll)
        return
    # One long-poll per VM; each retries on its own, so a VM that is gone does not end the others' watch.
    await asyncio.gather(*(watch_notice(queue, session, url, long_poll, vm, by_header) for vm, url, by_header in watches))


async def emit_ticks(queue, args):
    interval = float(args.get("interval", 30))
    if interval <= 0:
        raise ValueError("gce_events tick interval must be a positive number of seconds, not %r" % (interval,))
    while True:
        await asyncio.sleep(interval)
        await queue.put({"gce_event": {"kind": "tick", "instance": None, "zone": None, "project": None,
                                       "time": now_rfc3339(), "operation": None, "operation_type": None,
                                       "status": None}})


async def main(queue, args):
    """Entry point for ansible-rulebook."""
    mode = args.get("mode", "api")
    if mode == "api":
        await watch_api(queue, args)
    elif mode == "metadata":
        await watch_metadata(queue, args)
    elif mode == "tick":
        await emit_ticks(queue, args)
    else:
        raise ValueError("gce_events mode must be api, metadata or tick, not %r" % mode)
