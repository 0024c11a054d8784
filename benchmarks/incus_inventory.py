"""containarium.fleet.incus inventory vs community.general.lxd, over >= 500 stopped instances on four hosts.

Four nested Incus hosts (fleet-nested containers cl-bench-h1..h4) each get a tiny image whose rootfs
holds one file, and --count/4 stopped instances from it (they never boot, so creating them is fast).
Then, against the same four HTTPS endpoints:

  * containarium.fleet.incus, no cache: one `ansible-inventory --list`;
  * containarium.fleet.incus, cached: the same file with the jsonfile cache (filled beforehand);
  * community.general.lxd (the collection has no Incus inventory in the `ansible` 12 package; its LXD
    plugin speaks the same REST API): one inventory file per host, all four passed with -i;
  * a plain static JSON inventory with the same hosts and seven variables each (the floor: what
    ansible-core itself costs for that many hosts).

The machine is shared, so one run says little: the inventories are timed in --rounds rounds, in a
different order each round, and the median wall time and the median CPU time (user + system of
ansible-inventory and its children) are reported, with the load average before and after.

API calls are counted on the servers in a separate pass: each host runs `incus monitor
--type=logging --loglevel=debug` and every "Handling API request" line of a TLS client is one
request (the monitor's own requests come over the local socket and are not counted). Results
replace the "## Incus inventory (<count> stopped instances, 4 hosts)" section of benchmarks/RESULTS.md.

    .venv/bin/python benchmarks/incus_inventory.py [--count 500] [--rounds 5] [--keep] [--no-write]

Hosts left by --keep are reused (each setup step is skipped when already done).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import io
import json
import os
import pathlib
import resource
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time

from results import machine, replace_section

REPO = pathlib.Path(__file__).resolve().parents[1]
BIN = pathlib.Path(sys.executable).parent
HOSTS = ["cl-bench-h1", "cl-bench-h2", "cl-bench-h3", "cl-bench-h4"]
IMAGE_ALIAS = "cl-minimal"


def run(*cmd, stdin=None, check=True):
    return subprocess.run(cmd, input=stdin, capture_output=True, text=True, check=check)


def minimal_image(directory):
    """meta + rootfs tarballs of an image whose rootfs is one static file (instances stay stopped)."""
    meta = "architecture: x86_64\ncreation_date: %d\nproperties:\n  description: one-file rootfs\n" % time.time()
    paths = []
    for name, members in (("meta.tar.gz", {"metadata.yaml": meta.encode()}),
                          ("rootfs.tar.gz", {"rootfs/etc/hostname": b"minimal\n"})):
        path = directory / name
        with tarfile.open(path, "w:gz") as archive:
            for member, data in members.items():
                info = tarfile.TarInfo(member)
                info.size, info.mtime = len(data), int(time.time())
                archive.addfile(info, io.BytesIO(data))
        paths.append(path)
    return paths


def address(host):
    for _attempt in range(60):
        state = json.loads(run("incus", "query", "/1.0/instances/%s/state" % host).stdout)
        for entry in (state.get("network") or {}).get("eth0", {}).get("addresses", []):
            if entry["family"] == "inet":
                return entry["address"]
        time.sleep(1)
    raise SystemExit("%s got no address" % host)


def prepare_host(host, per_host, work, image):
    if run("incus", "info", host, check=False).returncode != 0:
        run("incus", "init", "fleet-nested", host, "-c", "security.nesting=true", "-c", "security.privileged=true",
            "-c", "limits.memory=1GiB")
    for attempt in range(3):  # the shared sandbox daemon now and then fails a start under load
        status = json.loads(run("incus", "query", "/1.0/instances/%s/state" % host).stdout)["status"]
        if status == "Running":
            break
        run("incus", "start", host, check=attempt == 2)
        time.sleep(2)
    ip = address(host)
    if run("incus", "exec", host, "--", "incus", "storage", "show", "default", check=False).returncode != 0:
        run("incus", "exec", host, "--", "incus", "admin", "init", "--preseed", stdin=(
            "config: {core.https_address: '%s:8443'}\nstorage_pools: [{name: default, driver: dir}]\n"
            "profiles: [{name: default, devices: {root: {type: disk, path: /, pool: default}}}]\n" % ip))
    # Trust this run's client certificate (each run makes a new one).
    run("incus", "file", "push", str(work / "client.crt"), "%s/root/client.crt" % host)
    run("incus", "exec", host, "--", "incus", "config", "trust", "add-certificate", "/root/client.crt", check=False)
    if run("incus", "exec", host, "--", "incus", "image", "show", IMAGE_ALIAS, check=False).returncode != 0:
        run("incus", "file", "push", *map(str, image), "%s/root/" % host)
        run("incus", "exec", host, "--", "incus", "image", "import", "/root/meta.tar.gz", "/root/rootfs.tar.gz",
            "--alias", IMAGE_ALIAS)
    have = int(run("incus", "exec", host, "--", "sh", "-c", "incus list -c n -f csv | wc -l").stdout)
    if have < per_host:
        short = host.rsplit("-", 1)[-1]
        run("incus", "exec", host, "--", "sh", "-c",
            "for i in $(seq %d %d); do incus create %s %s-i$i -q >/dev/null || exit 1; done" % (
                have + 1, per_host, IMAGE_ALIAS, short))
    return ip


class Monitors:
    """Count the API requests each host handles while a run is in flight."""

    def __enter__(self):
        self.procs = [subprocess.Popen(["incus", "exec", host, "--", "incus", "monitor", "--type=logging",
                                        "--loglevel=debug", "--pretty"], stdout=subprocess.PIPE, text=True)
                      for host in HOSTS]
        time.sleep(1.0)
        return self

    def __exit__(self, *exc):
        time.sleep(0.5)
        self.requests = 0
        for proc in self.procs:
            proc.terminate()
            out = proc.communicate(timeout=10)[0]
            self.requests += sum(1 for line in out.splitlines()
                                 if "Handling API request" in line and "protocol=tls" in line)


def inventory_args(sources):
    return [str(BIN / "ansible-inventory"), *[a for s in sources for a in ("-i", str(s))], "--list"]


def counted_requests(sources, env):
    """API requests one `ansible-inventory --list` over ``sources`` makes, and the hosts it lists."""
    with Monitors() as monitors:
        proc = subprocess.run(inventory_args(sources), capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise SystemExit("ansible-inventory failed for %s:\n%s" % (sources, proc.stderr[-3000:]))
    return monitors.requests, len(json.loads(proc.stdout).get("_meta", {}).get("hostvars", {}))


def timed_run(sources, env):
    """``(wall seconds, CPU seconds)`` of one `ansible-inventory --list` (CPU: user + system, children included)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    proc = subprocess.run(inventory_args(sources), capture_output=True, text=True, env=env, check=False)
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit("ansible-inventory failed for %s:\n%s" % (sources, proc.stderr[-3000:]))
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def measure(inventories, env, rounds):
    """Median wall and CPU seconds per inventory over ``rounds`` rounds, the order rotating each round."""
    names = list(inventories)
    samples = {name: [] for name in names}
    for round_index in range(rounds):
        for name in names[round_index % len(names):] + names[:round_index % len(names)]:
            samples[name].append(timed_run(inventories[name], env))
    return {name: {"seconds": round(statistics.median(w for w, _c in runs), 2),
                   "cpu_seconds": round(statistics.median(c for _w, c in runs), 2)}
            for name, runs in samples.items()}


def write_sources(work, ips):
    ours = work / "fleet.incus.yml"
    ours.write_text("plugin: containarium.fleet.incus\nsources:\n" + "".join(
        "  - {name: %s, endpoint: 'https://%s:8443', client_cert: %s, client_key: %s, verify: false}\n" % (
            host, ips[host], work / "client.crt", work / "client.key") for host in HOSTS))
    cached = work / "cached.incus.yml"
    cached.write_text(ours.read_text() + "cache: true\ncache_plugin: ansible.builtin.jsonfile\n"
                      "cache_connection: %s\ncache_timeout: 3600\n" % (work / "cache"))
    lxd = []
    for host in HOSTS:
        path = work / ("%s.lxd.yml" % host)
        path.write_text("plugin: community.general.lxd\nurl: https://%s:8443\nclient_cert: %s\nclient_key: %s\n"
                        "server_cert: %s\nserver_check_hostname: false\ntype_filter: both\n" % (
                            ips[host], work / "client.crt", work / "client.key", work / ("%s.crt" % host)))
        run("sh", "-c", "echo | openssl s_client -connect %s:8443 2>/dev/null | openssl x509 > %s" % (
            ips[host], work / ("%s.crt" % host)))
        lxd.append(path)
    return ours, cached, lxd


def floor_inventory(work, listing_path):
    """Static YAML inventory with the plugin's hosts and seven variables each."""
    hostvars = json.loads(listing_path.read_text())["_meta"]["hostvars"]
    hosts = {name: dict(list(variables.items())[:7]) for name, variables in hostvars.items()}
    path = work / "floor.json"
    path.write_text(json.dumps({"all": {"hosts": hosts}}))
    return path


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the four hosts for the next run")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    # An inventory source that fails to parse must fail the run, not count as zero hosts.
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_INVENTORY_UNPARSED_FAILED="True",
               ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED="True")
    per_host = -(-args.count // len(HOSTS))
    work = pathlib.Path(tempfile.mkdtemp(prefix="cl-bench-"))
    run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:secp384r1", "-nodes", "-days", "1",
        "-keyout", str(work / "client.key"), "-out", str(work / "client.crt"), "-subj", "/CN=cl-bench")
    try:
        start = time.monotonic()
        image = minimal_image(work)
        with concurrent.futures.ThreadPoolExecutor(len(HOSTS)) as pool:
            ips = dict(zip(HOSTS, pool.map(lambda h: prepare_host(h, per_host, work, image), HOSTS)))
        setup = time.monotonic() - start
        ours, cached, lxd = write_sources(work, ips)
        listing = work / "listing.json"
        listing.write_text(subprocess.run(inventory_args([ours]), env=env, capture_output=True, text=True,
                                          check=True).stdout)
        inventories = {
            "containarium.fleet.incus": [ours],
            "containarium.fleet.incus, cached": [cached],
            "static inventory, 7 vars/host (floor)": [floor_inventory(work, listing)],
            "community.general.lxd (4 files)": lxd,
        }
        subprocess.run(inventory_args([cached]), env=env, capture_output=True, check=True)  # fills the cache
        counts = {name: counted_requests(sources, env) for name, sources in inventories.items()}
        load_before = os.getloadavg()[0]
        results = measure(inventories, env, args.rounds)
        load_after = os.getloadavg()[0]
        for name, (requests, hosts) in counts.items():
            results[name].update(api_requests=requests, hosts=hosts)
    finally:
        if not args.keep:
            run("incus", "delete", "--force", *HOSTS, check=False)
        run("rm", "-rf", str(work))
    report(per_host * len(HOSTS), setup, results, args.rounds, (load_before, load_after), args.no_write)


def report(made, setup, results, rounds, loads, no_write):
    floor = results["static inventory, 7 vars/host (floor)"]
    lines = ["%s, %s. Setup (hosts + instances, not timed below): %.0f s. Load average (1 min) %.1f before the "
             "timed rounds, %.1f after." % (datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                                            machine(), setup, loads[0], loads[1]),
             "%d stopped instances. Medians of %d rounds (order rotated each round); CPU is user + system time of "
             "ansible-inventory. API requests counted on the four servers (`incus monitor`, \"Handling API request\"), "
             "in a separate pass." % (made, rounds), "",
             "| inventory | hosts | API requests | wall time (s) | x floor | CPU time (s) | x floor |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for name, result in results.items():
        lines.append("| %s | %d | %d | %.2f | %.2f | %.2f | %.2f |" % (
            name, result["hosts"], result["api_requests"], result["seconds"], result["seconds"] / floor["seconds"],
            result["cpu_seconds"], result["cpu_seconds"] / floor["cpu_seconds"]))
    lines += ["", "Target: containarium.fleet.incus within 1.5x of the floor; at most one API request per host or "
              "cluster plus a constant. Re-run: `.venv/bin/python benchmarks/incus_inventory.py`.", "",
              "community.general (from the `ansible` package) has no Incus inventory; its `lxd` plugin speaks the "
              "same REST API and was pointed at the same four HTTPS endpoints (one file per host): it asks twice per "
              "instance. Wall time includes waiting for the four servers, which share the 2 cores with the "
              "benchmark; CPU time is what the plugin itself costs."]
    text = "\n".join(lines) + "\n"
    heading = "## Incus inventory (%d stopped instances, 4 hosts)" % made
    print(heading + "\n\n" + text)
    if not no_write:
        replace_section(heading, text)


if __name__ == "__main__":
    main()
