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
import statistics
import subprocess
import sys
import tempfile
import time

from results import machine, replace_section

REPO = pathlib.Path(__file__).resolve().parents[1]
HEADING = "## incus_instance vs incus launch (20 containers)"
TARGET_RATIO = 1.3
SETTLE_SECONDS = 5

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
    """Delete those of ``all_names`` that exist, then let the disk settle.

    Deleting 20 dir-backed root filesystems leaves seconds of write-back behind; without the sync and
    pause, whichever side runs next pays for the other side's clean-up.
    """
    existing = subprocess.run(["incus", "list", "--format", "csv", "--columns", "n"], capture_output=True,
                              text=True, check=True).stdout.split()
    doomed = [n for n in all_names if n in existing]
    if doomed:
        subprocess.run(["incus", "delete", "--force", *doomed], check=True)
    subprocess.run(["sync"], check=True)
    time.sleep(SETTLE_SECONDS)


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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-write", action="store_true", help="print the row only")
    args = parser.parse_args()
    module_names, cli_names = names("bench-mod", args.count), names("bench-cli", args.count)
    module_times, cli_times = [], []
    delete(module_names + cli_names)
    try:
        with tempfile.TemporaryDirectory() as workdir:
            sides = [("incus launch", cli_names, cli_times, lambda: time_cli(args.count)),
                     ("incus_instance", module_names, module_times, lambda: time_module(args.count, workdir))]
            for round_number in range(args.rounds):
                # Alternate which side goes first, so neither always meets a warmer or busier disk.
                for label, side_names, times, timed in sides[round_number % 2:] + sides[:round_number % 2]:
                    times.append(timed())
                    stragglers = not_running(side_names)
                    assert not stragglers, "%s left containers not running: %s" % (label, stragglers)
                    delete(side_names)
    finally:
        delete(module_names + cli_names)
    module_s, cli_s = statistics.median(module_times), statistics.median(cli_times)
    ratio = module_s / cli_s
    row = "| %s | %s | %.1f | %.1f | %.2f | <= %.1f %s |" % (
        datetime.date.today().isoformat(), machine(), module_s, cli_s, ratio, TARGET_RATIO,
        "met" if ratio <= TARGET_RATIO else "MISSED")
    details = ("%d containers from `fleet-base`, created and started one after another on each side: a playbook "
               "looping over `containarium.fleet.incus_instance` (wait_for_ipv4: false) against a shell loop of "
               "`incus launch`. Wall time including ansible-playbook start-up; median of %d round(s), the side going "
               "first alternating, disk synced and settled %d s after each clean-up; rounds: "
               "module %s s, CLI %s s. Re-run: `.venv/bin/python benchmarks/incus_create.py`."
               % (args.count, args.rounds, SETTLE_SECONDS, ", ".join("%.1f" % t for t in module_times),
                  ", ".join("%.1f" % t for t in cli_times)))
    print(row)
    if not args.no_write:
        replace_section(HEADING, "%s\n\n| date | machine | incus_instance (s) | incus launch (s) | ratio | target |\n"
                                 "|---|---|---|---|---|---|\n%s" % (details, row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
