"""A scripted Incus API on a unix socket, for the error paths the live daemon will not produce on demand.

Each test gives routes ``{(METHOD, path): handler}``; a handler gets ``(query, body)`` and returns
``(status, json_body)`` or ``(status, json_body, headers)``. Every request is recorded
(method, path, query, body; its headers in ``headers``) so a test can check
what the client sent, e.g. that it long-polled ``/wait?timeout=N`` instead of sleeping, or that a
module made no call at all. Unknown routes answer 404 in Incus' error shape.
"""

from __future__ import annotations

import json
import os
import pathlib
import socketserver
import subprocess
import sys
import tempfile
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler

REPO = pathlib.Path(__file__).resolve().parents[2]

SERVER_INFO = {
    "api_extensions": ["projects", "resources", "instances"],
    "api_status": "stable",
    "api_version": "1.0",
    "auth": "trusted",
    "environment": {"server_name": "fake", "certificate": "", "server_clustered": False},
}


def sync(metadata, status=200):
    return status, {"type": "sync", "status": "Success", "status_code": 200, "error_code": 0, "error": "",
                    "metadata": metadata}


def error(code, message):
    return code, {"type": "error", "status": "", "status_code": 0, "error_code": code, "error": message,
                  "metadata": None}


def operation(op_id, description, status="Running", err=""):
    return {"id": op_id, "class": "task", "description": description, "status": status,
            "status_code": {"Running": 103, "Success": 200, "Failure": 400}[status], "err": err,
            "metadata": None, "resources": {}, "may_cancel": False}


def async_started(op_id, description):
    return 202, {"type": "async", "status": "Operation created", "status_code": 100,
                 "operation": "/1.0/operations/%s" % op_id, "metadata": operation(op_id, description)}


class FakeIncus:
    def __init__(self, directory, routes=None):
        self.socket = os.path.join(str(directory), "unix.socket")
        self.routes = {("GET", "/1.0"): lambda q, b: sync(SERVER_INFO)}
        self.routes.update(routes or {})
        self.requests = []
        self.headers = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest output clean
                pass

            def address_string(self):
                return "unix"

            def _handle(self):
                url = urllib.parse.urlsplit(self.path)
                query = dict(urllib.parse.parse_qsl(url.query))
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                fake.requests.append((self.command, url.path, query, body))
                fake.headers.append(dict(self.headers))
                handler = fake.routes.get((self.command, url.path))
                answer = handler(query, body) if handler else error(404, "Not Found")
                status, payload, extra_headers = (answer + ({},))[:3]
                data = json.dumps(payload).encode()
                self.send_response(status)
                for key, value in extra_headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
            daemon_threads = True

        self.server = Server(self.socket, Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def endpoint(self):
        return "unix:" + self.socket

    def api_requests(self):
        """Requests other than the client's connection check (GET /1.0)."""
        return [r for r in self.requests if r[1] != "/1.0"]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def run_module(name, args, check_mode=False, diff=True):
    """Run module ``name`` for real (a subprocess, as Ansible would) and return its result dict."""
    full = dict(args, _ansible_check_mode=check_mode, _ansible_diff=diff)
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump({"ANSIBLE_MODULE_ARGS": full}, handle)
    try:
        env = dict(os.environ, PYTHONPATH=str(REPO / "build" / "collections"))
        proc = subprocess.run(
            [sys.executable, "-m", "ansible_collections.containarium.fleet.plugins.modules." + name, handle.name],
            env=env, capture_output=True, text=True, timeout=300, check=False)
    finally:
        os.unlink(handle.name)
    try:
        return json.loads(proc.stdout)
    except ValueError as exc:
        raise AssertionError("module %s printed no JSON:\n%s\n%s" % (name, proc.stdout, proc.stderr)) from exc
