"""How long after a Compute operation ends does GceClient notice? (target < 0.1 s)

On a --no-containers emulator with a status-transition latency, runs insert/stop/start operations
through GceClient.mutate (operations/{name}/wait long-poll) and compares the operation's endTime with
the moment mutate returned. endTime has millisecond resolution.
"""

from __future__ import annotations

import datetime
import statistics
import sys
import time

from gce_bench_common import REPO, append_results, emulator

sys.path.insert(0, str(REPO / "build" / "collections"))
from ansible_collections.containarium.fleet.plugins.module_utils.gce import GceClient  # noqa: E402

ZONE = "us-central1-a"
LATENCY = 0.5
ROUNDS = 5


def main():
    delays = []
    with emulator(latency=LATENCY) as (root, dummy):
        client = GceClient("bench", auth_kind="accesstoken", access_token="bench", endpoint=root + "/compute/v1/")
        for index in range(ROUNDS):
            name = "delay-%d" % index
            calls = [
                ("POST", "zones/%s/instances" % ZONE, {
                    "name": name, "machineType": "zones/%s/machineTypes/e2-small" % ZONE,
                    "disks": [{"boot": True, "autoDelete": True, "initializeParams": {
                        "sourceImage": "projects/debian-cloud/global/images/family/debian-12"}}],
                    "networkInterfaces": [{"network": "global/networks/default"}]}),
                ("POST", "zones/%s/instances/%s/stop" % (ZONE, name), None),
                ("POST", "zones/%s/instances/%s/start" % (ZONE, name), None),
                ("DELETE", "zones/%s/instances/%s" % (ZONE, name), None),
            ]
            for method, path, body in calls:
                operation = client.mutate(method, path, body=body)
                noticed = time.time()
                ended = datetime.datetime.fromisoformat(operation["endTime"]).timestamp()
                delays.append(noticed - ended)
    lines = [
        "%d operations (insert, stop, start, delete; emulator latency %.1f s per transition), "
        "operations/{name}/wait long-poll:" % (len(delays), LATENCY),
        "",
        "| delay from endTime to the client noticing | value |",
        "|---|---|",
        "| median | %.3f s |" % statistics.median(delays),
        "| max | %.3f s |" % max(delays),
        "",
        "Target < 0.1 s (endTime has 1 ms resolution).",
    ]
    append_results("GCE operation wait delay", lines)
    return 0 if max(delays) < 0.1 else 1


if __name__ == "__main__":
    sys.exit(main())
