"""containarium.fleet.gce inventory over 5,000 instances in 24 zones, beside a plain script inventory.

Measures, on a --no-containers emulator: the Compute calls one `ansible-inventory --list` makes (from
the emulator's stats: must be ceil(5000/500) = 10 aggregatedList pages and nothing else), its wall
time, a cached second run (must make no call), and the floor: a script inventory printing the same
hosts with seven variables each. Target: plugin <= 1.5x the floor. Results go to RESULTS.md.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time

from gce_bench_common import BIN, REPO, append_results, emulator

COUNT = 5000
ZONES = 24
RUNS = 3
PROJECT = "bench"


def timed_inventory(source, env):
    started = time.monotonic()
    proc = subprocess.run([str(BIN / "ansible-inventory"), "-i", source, "--list"], cwd=REPO, env=env,
                          capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - started
    if proc.returncode != 0:
        raise SystemExit("ansible-inventory failed:\n" + proc.stderr[-3000:])
    return elapsed, json.loads(proc.stdout, object_hook=_plain)


def _plain(obj):
    """--list marks strings that came from an API as unsafe; unwrap them."""
    return obj["__ansible_unsafe"] if set(obj) == {"__ansible_unsafe"} else obj


def best(samples):
    return min(samples), statistics.median(samples)


def main():
    work = tempfile.mkdtemp(prefix="gce-inv-bench-")
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED="true")
    with emulator() as (root, admin):
        admin("populate", {"project": PROJECT, "count": COUNT, "zones": ZONES,
                           "labels": {"fleet": "bench", "role": "backend"}})
        base = {"plugin": "containarium.fleet.gce", "projects": [PROJECT], "endpoint": root + "/compute/v1/",
                "auth_kind": "accesstoken", "access_token": "bench", "labels": {"fleet": "bench"},
                "hostnames": ["name"],
                "keyed_groups": [{"key": "gce_labels.role", "prefix": "role"}, {"key": "gce_zone", "prefix": "zone"}]}
        plain = os.path.join(work, "plain.gce.yml")
        with open(plain, "w", encoding="utf-8") as handle:
            json.dump(base, handle)
        cached = os.path.join(work, "cached.gce.yml")
        with open(cached, "w", encoding="utf-8") as handle:
            json.dump(dict(base, cache=True, cache_plugin="ansible.builtin.jsonfile",
                           cache_connection=os.path.join(work, "cache"), cache_timeout=3600), handle)

        plugin_times, calls = [], None
        for dummy in range(RUNS):
            admin("stats/reset", {})
            elapsed, listed = timed_inventory(plain, env)
            plugin_times.append(elapsed)
            calls = {k: v for k, v in admin("stats")["by_route"].items() if "admin" not in k}
        hosts = listed["_meta"]["hostvars"]
        assert len(hosts) == COUNT, len(hosts)

        timed_inventory(cached, env)  # fills the cache
        cached_times = []
        for dummy in range(RUNS):
            admin("stats/reset", {})
            elapsed = timed_inventory(cached, env)[0]
            cached_times.append(elapsed)
            cached_calls = {k: v for k, v in admin("stats")["by_route"].items() if "admin" not in k}

    # The floor: the same hosts and groups from a script, seven variables each.
    script_data = {"_meta": {"hostvars": {}}, "all": {"children": []}}
    groups = {}
    for name, hostvars in hosts.items():
        script_data["_meta"]["hostvars"][name] = {
            key: hostvars[key] for key in ("ansible_host", "gce_zone", "gce_machine_type", "gce_status",
                                           "gce_spot", "gce_labels", "gce_private_ip")}
        for group in ("role_" + hostvars["gce_labels"]["role"], "zone_" + hostvars["gce_zone"].replace("-", "_")):
            groups.setdefault(group, []).append(name)
    for group, members in groups.items():
        script_data[group] = {"hosts": members}
    data_path = os.path.join(work, "floor.json")
    with open(data_path, "w", encoding="utf-8") as handle:
        json.dump(script_data, handle)
    script = os.path.join(work, "floor.py")
    with open(script, "w", encoding="utf-8") as handle:
        handle.write("#!%s\nimport sys\nsys.stdout.write(open(%r).read() if '--list' in sys.argv else '{}')\n"
                     % (sys.executable, data_path))
    os.chmod(script, 0o755)
    floor_times = [timed_inventory(script, env)[0] for dummy in range(RUNS)]

    pages = calls.get("GET instances.aggregatedList", 0)
    plugin_best, plugin_median = best(plugin_times)
    cached_best, cached_median = best(cached_times)
    floor_best, floor_median = best(floor_times)
    lines = [
        "%d instances in %d zones, `ansible-inventory --list`, best/median of %d runs:" % (COUNT, ZONES, RUNS),
        "",
        "| what | wall time | Compute calls |",
        "|---|---|---|",
        "| containarium.fleet.gce (2 keyed_groups, 10 vars/host) | %.2f s / %.2f s | %s |" % (
            plugin_best, plugin_median, ", ".join("%s: %d" % kv for kv in sorted(calls.items()))),
        "| same, cached second run | %.2f s / %.2f s | %d |" % (cached_best, cached_median, sum(cached_calls.values())),
        "| plain script inventory (floor, 7 vars/host, same groups) | %.2f s / %.2f s | - |" % (floor_best, floor_median),
        "",
        "aggregatedList pages: %d (expected ceil(%d/500) = %d); plugin/floor = %.2fx, cached/floor = %.2fx (target <= 1.5x)." % (
            pages, COUNT, math.ceil(COUNT / 500), plugin_best / floor_best, cached_best / floor_best),
    ]
    append_results("GCE inventory, 5,000 instances", lines)
    ok = pages == math.ceil(COUNT / 500) and set(calls) == {"GET instances.aggregatedList"} and not cached_calls
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
