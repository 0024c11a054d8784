"""A tiny scripted HTTP server standing in for the Compute API in exact-behaviour unit tests.

Tests script the answers per (method, path) and then inspect every request the client really sent
(method, path, query, JSON body, headers, client port). Used for the cases an emulator does not make
reproducible: retry sequences, Retry-After, paging tokens, operations that end DONE with an error.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BASE = "/compute/v1/"


class Reply:
    def __init__(self, status=200, body=None, headers=None, delay=0.0):
        self.status = status
        self.body = {} if body is None else body
        self.headers = headers or {}
        self.delay = delay


def error_body(code, reason, message="scripted error"):
    return {"error": {"code": code, "message": message,
                      "errors": [{"domain": "global", "reason": reason, "message": message}]}}


class ScriptedApi:
    def __init__(self):
        self.script = {}
        self.requests = []
        self.lock = threading.Lock()
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep pytest output clean
                pass

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                parsed = urllib.parse.urlsplit(self.path)
                query = dict(urllib.parse.parse_qsl(parsed.query))
                body = None
                if raw:
                    try:
                        body = json.loads(raw)
                    except ValueError:
                        body = raw.decode()
                record = {"method": self.command, "path": parsed.path, "query": query, "body": body,
                          "headers": {k.lower(): v for k, v in self.headers.items()}, "port": self.client_address[1], "time": time.monotonic()}
                reply = api.next_reply(record)
                if reply.delay:
                    time.sleep(reply.delay)
                data = json.dumps(reply.body).encode() if not isinstance(reply.body, bytes) else reply.body
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.root = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.endpoint = self.root + BASE

    def add(self, method, path, *replies):
        """Script replies for METHOD path (relative to /compute/v1/ unless it starts with '/').

        Replies are used in order; the last one repeats. A reply may be a callable taking the request.
        """
        full = path if path.startswith("/") else BASE + path
        self.script[(method, full)] = list(replies)

    def next_reply(self, record):
        with self.lock:
            self.requests.append(record)
            queue = self.script.get((record["method"], record["path"]))
            if not queue:
                return Reply(404, error_body(404, "notFound", "no script for %s %s" % (record["method"], record["path"])))
            reply = queue.pop(0) if len(queue) > 1 else queue[0]
        return reply(record) if callable(reply) else reply

    def calls(self, method=None, path=None):
        full = None if path is None else (path if path.startswith("/") else BASE + path)
        return [r for r in self.requests
                if (method is None or r["method"] == method) and (full is None or r["path"] == full)]

    def close(self):
        self.server.shutdown()
        self.server.server_close()
