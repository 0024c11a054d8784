# -*- coding: utf-8 -*-
# Copyright: containarium.fleet contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Relays this VM's preemption notice to the sentinel.

Only a VM can read its own metadata server, so the sentinel's rulebook (containarium.fleet.gce_events,
mode metadata, an ``instances`` entry with this relay's ``metadata_url``) long-polls
``GET /computeMetadata/v1/instance/preempted`` here, with its query (``wait_for_change``, ``last_etag``,
``timeout_sec``), and this passes it to the metadata server, ETag included. Nothing else of the metadata
server is reachable through it (it holds the VM's credentials).

    python3 fleet_notice_relay.py <port> <metadata url, e.g. http://metadata.google.internal/computeMetadata/v1/>
"""

from __future__ import annotations

import http.server
import sys
import urllib.error
import urllib.parse
import urllib.request

KEY = "instance/preempted"
PATH = "/computeMetadata/v1/" + KEY


class NoticeRelay(http.server.BaseHTTPRequestHandler):
    upstream = ""
    # The metadata server is link-local: never through a proxy.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def do_GET(self):  # noqa: N802 (http.server's name)
        path, _sep, query = self.path.partition("?")
        if path != PATH or self.headers.get("Metadata-Flavor") != "Google":
            self.answer(404, b"only GET %s with Metadata-Flavor: Google is relayed\n" % PATH.encode())
            return
        timeout_sec = (urllib.parse.parse_qs(query).get("timeout_sec") or ["60"])[0]
        wait = int(timeout_sec) if timeout_sec.isdigit() else 60
        request = urllib.request.Request(self.upstream + KEY + ("?" + query if query else ""),
                                         headers={"Metadata-Flavor": "Google"})
        try:
            with self.opener.open(request, timeout=wait + 10) as response:
                self.answer(response.status, response.read(), response.headers.get("ETag"))
        except urllib.error.HTTPError as error:
            self.answer(error.code, error.read())
        except OSError as error:
            self.answer(502, ("metadata server: %s\n" % error).encode())

    def answer(self, status, body, etag=None):
        self.send_response(status)
        self.send_header("Content-Type", "application/text")
        self.send_header("Content-Length", str(len(body)))
        if etag:
            self.send_header("ETag", etag)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def main(argv):
    port, NoticeRelay.upstream = int(argv[1]), argv[2].rstrip("/") + "/"
    http.server.ThreadingHTTPServer(("", port), NoticeRelay).serve_forever()


if __name__ == "__main__":
    main(sys.argv)
