"""A small Incus cluster API over a unix socket, for tests of the cluster client and the inventory.

It answers with the real response envelopes (sync/async/error, operations with ``/wait``) and
keeps state: members with status, instances with a location, join-token operations. Every
request is recorded in ``requests`` as ``(method, path_with_query)``.
"""

from __future__ import annotations

import json
import socketserver
import threading
import uuid
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit


class FakeCluster:
    def __init__(self, members=("m1", "m2", "m3"), instances=None):
        self.members = {name: {"server_name": name, "url": "https://10.0.0.%d:8443" % (i + 1), "status": "Online",
                               "message": "Fully operational", "roles": ["database"], "groups": ["default"],
                               "failure_domain": "default", "description": "", "config": {}, "database": True,
                               "architecture": "x86_64"}
                        for i, name in enumerate(members)}
        self.instances = instances or {}   # name -> location
        self.operations = {}
        self.requests = []
        self.enabled = bool(members)
        self.groups = ["default"]

    # -- envelopes -----------------------------------------------------------------------------

    @staticmethod
    def sync(metadata, status=200):
        return status, {"type": "sync", "status": "Success", "status_code": 200, "metadata": metadata}

    @staticmethod
    def error(message, status):
        return status, {"type": "error", "error": message, "error_code": status, "metadata": None}

    def async_op(self, metadata=None, status="Success", err="", klass="task", description="op"):
        op_id = str(uuid.uuid4())
        self.operations[op_id] = {"id": op_id, "class": klass, "description": description, "status": status,
                                  "status_code": 200 if status == "Success" else 103, "err": err,
                                  "metadata": metadata, "may_cancel": False}
        return 202, {"type": "async", "status": "Operation created", "status_code": 100,
                     "operation": "/1.0/operations/%s" % op_id, "metadata": self.operations[op_id]}

    # -- routes --------------------------------------------------------------------------------

    def handle(self, method, url, body):
        parts = urlsplit(url)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        path = parts.path.rstrip("/")
        self.requests.append((method, url))
        if path == "/1.0":
            return self.sync({"api_extensions": ["clustering"], "auth": "trusted", "environment": {"server_name": "m1"}})
        if path == "/1.0/cluster" and method == "GET":
            return self.sync({"enabled": self.enabled, "server_name": "m1" if self.enabled else "",
                              "member_config": []})
        if path == "/1.0/cluster/members" and method == "GET":
            return self.sync(list(self.members.values()))
        if path == "/1.0/cluster/members" and method == "POST":
            name = body["server_name"]
            return self.async_op({"serverName": name, "secret": "s3cret-" + name, "fingerprint": "ab" * 32,
                                  "addresses": ["10.0.0.1:8443"], "expiresAt": "2030-01-01T00:00:00Z"},
                                 status="Running", klass="token")
        if path == "/1.0/cluster/groups" and method == "GET":
            return self.sync([{"name": name, "members": []} for name in self.groups])
        if path == "/1.0/cluster/groups" and method == "POST":
            self.groups.append(body["name"])
            return self.sync({})
        if path.startswith("/1.0/cluster/members/"):
            rest = path[len("/1.0/cluster/members/"):].split("/")
            member = self.members.get(rest[0])
            if member is None:
                return self.error("Member not found", 404)
            if len(rest) == 2 and rest[1] == "state":
                if body["action"] == "evacuate":
                    others = [m for m in self.members if m != rest[0] and self.members[m]["status"] == "Online"]
                    for name, location in list(self.instances.items()):
                        if location == rest[0]:
                            self.instances[name] = others[0]
                    member["status"] = "Evacuated"
                else:
                    member["status"] = "Online"
                return self.async_op(description="%s member" % body["action"])
            if method == "GET":
                return self.sync(member)
            if method == "PUT":
                missing = [g for g in body["groups"] if g not in self.groups]
                if missing:
                    return self.error("Cluster group %s not found" % missing[0], 404)
                member.update({k: body[k] for k in ("description", "config", "groups", "failure_domain")})
                return self.sync({})
            if method == "DELETE":
                if any(loc == rest[0] for loc in self.instances.values()) and query.get("force") != "1":
                    return self.error("Member still has instances", 400)
                del self.members[rest[0]]
                return self.sync({})
        if path == "/1.0/operations" and method == "GET":
            running = [op for op in self.operations.values() if op["status"] == "Running"]
            return self.sync({"running": running})
        if path.startswith("/1.0/operations/"):
            op_id = path.split("/")[3]
            if op_id not in self.operations:
                return self.error("Operation not found", 404)
            if method == "DELETE":
                self.operations.pop(op_id)
                return self.sync({})
            return self.sync(self.operations[op_id])
        if path == "/1.0/instances" and method == "GET":
            if query.get("all-projects") == "true" and "project" in query:
                return self.error("Cannot specify a project when requesting all projects", 400)
            return self.sync([{"name": name, "location": location, "project": "default", "status": "Running",
                               "type": "container", "profiles": ["default"],
                               "config": {"limits.cpu": "2", "user.team": "blue"},
                               "state": {"network": {"eth0": {"addresses": [
                                   {"family": "inet", "address": "10.1.0.%d" % (i + 2), "scope": "global"}]}}}}
                              for i, (name, location) in enumerate(sorted(self.instances.items()))])
        return self.error("not found: %s %s" % (method, path), 404)


class _Handler(BaseHTTPRequestHandler):
    def _serve(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        status, payload = self.server.fake.handle(self.command, self.path, body)
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

    def address_string(self):
        return "unix"

    def log_message(self, *args):
        pass


class _UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def get_request(self):
        request, _address = super().get_request()
        return request, ("unix", 0)


def serve(fake, socket_path):
    server = _UnixServer(str(socket_path), _Handler)
    server.fake = fake
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
