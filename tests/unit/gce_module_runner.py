"""Run containarium.fleet GCE modules for real (a subprocess per task) against an in-process emulator.

The emulator (tests/sandbox/gce_emulator, no containers) listens on an ephemeral loopback port; a
module talks to it only through its ``endpoint`` option, as it would to a private Compute endpoint.
"""

from __future__ import annotations

import http.client
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import threading
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from emulator import discovery_schema

REPO = pathlib.Path(__file__).resolve().parents[2]
PROJECT = "gi-unit"
ZONE = "us-central1-a"


# Query parameters every Google API method accepts besides its own.
SYSTEM_PARAMETERS = {"alt", "fields", "key", "oauth_token", "prettyPrint", "quotaUser", "userIp", "$.xgafv",
                     "callback", "access_token", "uploadType", "upload_protocol"}


def instance_args(name, **extra):
    """gce_instance arguments for a small spot VM (extra ones override)."""
    args = dict(name=name, zone=ZONE, machine_type="e2-small", spot=True,
                image="projects/debian-cloud/global/images/family/debian-12",
                labels={"fleet-role": "jump"}, tags=["jump"],
                metadata={"ssh-keys": "admin:ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGi admin@test"})
    args.update(extra)
    return args


class InProcessEmulator:
    """The emulator on one loopback port and, in front of it, a recorder the modules talk to.

    The recorder keeps every Compute call the collection makes, so a test can check each request
    body and query against the discovery document (``schema_problems``).
    """

    def __init__(self, state_dir):
        sys.path.insert(0, str(REPO / "tests" / "sandbox"))
        from gce_emulator.server import Emulator, make_server  # pylint: disable=import-outside-toplevel

        self.emulator = Emulator(str(state_dir), containers=False)
        self.server = make_server(self.emulator, "127.0.0.1", 0)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.root = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.recorded = []
        self.recorder = self._recorder(self.server.server_address[1])
        threading.Thread(target=self.recorder.serve_forever, daemon=True).start()
        self.endpoint = "http://127.0.0.1:%d/compute/v1/" % self.recorder.server_address[1]

    def _recorder(self, upstream_port):
        recorded = self.recorded

        class Recorder(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _forward(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                recorded.append((self.command, self.path, json.loads(raw) if raw else None))
                upstream = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=300)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                upstream.request(self.command, self.path, body=raw or None, headers=headers)
                response = upstream.getresponse()
                data = response.read()
                self.send_response(response.status)
                for key, value in response.getheaders():
                    if key.lower() not in ("content-length", "connection", "transfer-encoding", "server", "date"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                upstream.close()

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

        server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
        server.daemon_threads = True
        return server

    def schema_problems(self):
        """Every recorded request whose body or query the discovery document does not allow."""
        found = []
        for method, url, body in self.recorded:
            parsed = urllib.parse.urlsplit(url)
            try:
                spec = discovery_schema.method_for(method, parsed.path)
                if body is not None:
                    discovery_schema.validate_request(method, parsed.path, body)
            except (KeyError, discovery_schema.SchemaError) as exc:
                found.append("%s %s: %s" % (method, parsed.path, exc))
                continue
            allowed = set(spec.get("parameters", {})) | SYSTEM_PARAMETERS
            unknown = set(urllib.parse.parse_qs(parsed.query)) - allowed
            if unknown:
                found.append("%s %s: query parameters not in the discovery document: %s"
                             % (method, parsed.path, sorted(unknown)))
        return found

    def admin(self, action, body=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.root + "/_admin/" + action, data=data,
                                         method="GET" if body is None else "POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)

    def get(self, path):
        """The raw resource (or None), read directly over HTTP: the tests' view of the world."""
        request = urllib.request.Request(self.endpoint + "projects/%s/%s" % (PROJECT, path),
                                         headers={"Authorization": "Bearer test"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.load(response)
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise

    def close(self):
        self.recorder.shutdown()
        self.recorder.server_close()
        self.server.shutdown()
        self.server.server_close()
        self.emulator.store.close()


def run_module(emulator, name, args, check_mode=False, diff=True):
    """Run module ``name`` with ``args`` and return its result dict (``failed`` set on failure)."""
    full = dict(project=PROJECT, endpoint=emulator.endpoint, auth_kind="accesstoken", access_token="test",
                wait_timeout=60)
    full.update(args)
    full.update(_ansible_check_mode=check_mode, _ansible_diff=diff)
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
