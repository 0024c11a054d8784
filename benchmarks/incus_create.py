"""incus_instance vs `incus launch`: wall time to create and start 20 containers.

Both sides do what a user would write: one playbook with a loop over containarium.fleet.incus_instance
(wait_for_ipv4 off, so both sides wait for "running" only), against a shell loop of `incus launch
fleet-base ...`. Each side starts from nothing and its containers are deleted afterwards (not timed).
The sides alternate over --rounds; the median of each is reported, and the result is written to
benchmarks/RESULTS.md under "## incus_instance vs incus launch (20 containers)".

    .venv/bin/python benchmarks/incus_create.py [--count 20] [--rounds 1] [--no-write]
"""

from __future__ import annotations

import argparse
import datetime
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "RESULTS.md"
HEADING = "## incus_instance vs incus launch (20 containers)"
TARGET_RATIO = 1.3

PLAYBOOK = """\
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Containers
      containarium.fleet.incus_instance:
        name: "bench-mod-{{{{ item }}}}"
        source: fleet-base
        wait_for_ipv4: false
      loop: "{{{{ range(1, {count} + 1) | list }}}}"
"""


def names(prefix, count):
    return ["%s-%d" % (prefix, i) for i in range(1, count + 1)]


def delete(all_names):
    existing = subprocess.run(["incus", "list", "--format", "csv", "--columns", "n"], capture_output=True,
                              text=True, check=True).stdout.split()
    doomed = [n for n in all_names if n in existing]
    if doomed:
        subprocess.run(["incus", "delete", "--force", *doomed], check=True)


def not_running(all_names):
    """``{name: status}`` of the containers among ``all_names`` that are not running (empty: all are)."""
    out = subprocess.run(["incus", "list", "--format", "csv", "--columns", "ns"], capture_output=True, text=True,
                         check=True).stdout
    states = dict(line.split(",", 1) for line in out.splitlines())
    return {n: states.get(n, "missing") for n in all_names if states.get(n) != "RUNNING"}


def time_module(count, workdir):
    playbook = pathlib.Path(workdir) / "create.yml"
    playbook.write_text(PLAYBOOK.format(count=count))
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"))
    started = time.monotonic()
    subprocess.run([str(REPO / ".venv" / "bin" / "ansible-playbook"), "-i",
                    str(REPO / "tests" / "integration" / "inventory.ini"), str(playbook)],
                   cwd=REPO, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - started


def time_cli(count):
    script = "for i in $(seq 1 %d); do incus launch fleet-base bench-cli-$i -q; done" % count
    started = time.monotonic()
    subprocess.run(["bash", "-c", script], check=True)
    return time.monotonic() - started


def write_results(row, details):
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    section = "%s\n\n%s\n\n| date | machine | incus_instance (s) | incus launch (s) | ratio | target |\n" \
              "|---|---|---|---|---|---|\n%s\n" % (HEADING, details, row)
    if HEADING in text:
        before, _heading, rest = text.partition(HEADING)
        following = rest.find("\n## ")
        text = before + section + (rest[following + 1:] if following >= 0 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    RESULTS.write_text(text)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--no-write", action="store_true", help="print the row only")
    args = parser.parse_args()
    module_names, cli_names = names("bench-mod", args.count), names("bench-cli", args.count)
    module_times, cli_times = [], []
    delete(module_names + cli_names)
    try:
        with tempfile.TemporaryDirectory() as workdir:
            for _round in range(args.rounds):
                cli_times.append(time_cli(args.count))
                stragglers = not_running(cli_names)
                assert not stragglers, "incus launch left containers not running: %s" % stragglers
                delete(cli_names)
                module_times.append(time_module(args.count, workdir))
                stragglers = not_running(module_names)
                assert not stragglers, "incus_instance left containers not running: %s" % stragglers
                delete(module_names)
    finally:
        delete(module_names + cli_names)
    module_s, cli_s = statistics.median(module_times), statistics.median(cli_times)
    ratio = module_s / cli_s
    machine = "%s, %d cores" % (platform.machine(), os.cpu_count())
    row = "| %s | %s | %.1f | %.1f | %.2f | <= %.1f %s |" % (
        datetime.date.today().isoformat(), machine, module_s, cli_s, ratio, TARGET_RATIO,
        "met" if ratio <= TARGET_RATIO else "MISSED")
    details = ("%d containers from `fleet-base`, created and started one after another on each side: a playbook "
               "looping over `containarium.fleet.incus_instance` (wait_for_ipv4: false) against a shell loop of "
               "`incus launch`. Wall time including ansible-playbook start-up; median of %d round(s); rounds: "
               "module %s s, CLI %s s. Re-run: `.venv/bin/python benchmarks/incus_create.py`."
               % (args.count, args.rounds, ", ".join("%.1f" % t for t in module_times),
                  ", ".join("%.1f" % t for t in cli_times)))
    print(row)
    if not args.no_write:
        write_results(row, details)
    return 0


if __name__ == "__main__":
    sys.exit(main())
