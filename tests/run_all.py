"""`make test`: every stage CI runs, with one summary of counts at the end.

The end-to-end fleets (tests/e2e) spend most of their time waiting on VMs booting and apt, so they
start in the background right after the sandbox stage, one pytest per fleet (E2E_GROUPS), at most
FLEET_BACKGROUND_SLOTS (default 3) at once, while the other stages run in order in the foreground; their
output goes to build/logs/e2e*.log and is shown when a background stage fails. The end lists each failed
test with the end of its error, since a CI log is often only shown by its head and tail.

A failing stage does not stop the later ones (so one run shows everything that is broken),
but any failure makes the exit status non-zero. Counts come from each tool's own report:
pytest's JUnit XML, ansible-test's per-test lines, molecule_all.sh's closing line.
"""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET

REPO = pathlib.Path(__file__).resolve().parents[1]
BIN = REPO / ".venv" / "bin"
BUILD = REPO / "build"


def run(cmd, log_name, env=None):
    """Run a stage command, streaming its output to the terminal and to build/logs/<log_name>."""
    log_path = BUILD / "logs" / log_name
    log_path.parent.mkdir(parents=True, exist_ok=True)
    lines = []
    with open(log_path, "w", encoding="utf-8") as log:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, env=dict(os.environ, PATH="%s:%s" % (BIN, os.environ["PATH"]), **(env or {})))
        for line in proc.stdout:
            sys.stdout.write(line)
            log.write(line)
            lines.append(line)
        return proc.wait(), "".join(lines)


def junit_counts(path):
    if not path.exists():
        return None
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root)
    total = sum(int(s.get("tests", 0)) for s in suites)
    failed = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
    skipped = sum(int(s.get("skipped", 0)) for s in suites)
    return total - failed - skipped, failed, skipped


def junit_failures(path, max_lines=25):
    """``[(test id, text)]`` of the failed tests in a JUnit file, each text cut to ``max_lines``; a text
    equal to an earlier one (a fixture that failed for every test of a module) is said once."""
    if not path.exists():
        return []
    seen = {}
    failures = []
    for case in ET.parse(path).getroot().iter("testcase"):
        for problem in list(case.findall("failure")) + list(case.findall("error")):
            test_id = "%s::%s" % (case.get("classname"), case.get("name"))
            text = (problem.text or problem.get("message") or "").strip()
            if text in seen:
                failures.append((test_id, "(the same as %s)" % seen[text]))
                continue
            seen[text] = test_id
            # The "E" lines of pytest's report are the error itself (a playbook's failing tasks come first in it).
            lines = [line for line in text.splitlines() if line.startswith("E ")] or text.splitlines()
            failures.append((test_id, "\n".join(lines[:max_lines] + (["[...]"] if len(lines) > max_lines else []))))
    return failures


def print_failure_digest(names):
    """The failed tests of the named pytest stages with the end of their errors, just above the summary."""
    for name in names:
        for test_id, text in junit_failures(BUILD / ("junit-%s.xml" % name)):
            print("\n----- %s: %s\n%s" % (name, test_id, text))


def pytest_command(name, paths):
    return [str(BIN / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider",
            "--junitxml", str(BUILD / ("junit-%s.xml" % name)), *paths]


def pytest_stage(name, paths):
    (BUILD / ("junit-%s.xml" % name)).unlink(missing_ok=True)
    code, _output = run(pytest_command(name, paths), "%s.log" % name)
    return pytest_counts(name, code)


def pytest_counts(name, code):
    counts = junit_counts(BUILD / ("junit-%s.xml" % name))
    if counts is None:
        return 0, 1, 0
    passed, failed, skipped = counts
    # pytest exits 5 when it collected nothing: not a failure of the stage by itself.
    if code not in (0, 5) and failed == 0:
        failed = 1
    return passed, failed, skipped


def sanity_stage():
    code, out = run([str(REPO / "tests" / "sandbox" / "sanity.sh")], "sanity.log")
    ran = re.findall(r"^Running sanity test [\"']([^\"']+)[\"']", out, re.M)
    failed_line = re.search(r"^FATAL: The (\d+) sanity test\(s\) listed below", out, re.M)
    failed = int(failed_line.group(1)) if failed_line else 0
    skipped = len(re.findall(r"^WARNING: Skipping sanity test", out, re.M))
    if code != 0 and failed == 0:
        failed = 1
    return max(len(ran) - failed - skipped, 0), failed, skipped


# ansible-lint runs `ansible-playbook --syntax-check` on every playbook; with ansible.cfg's sandbox inventory
# each one first waits out the GCE inventory's retries against an emulator that is not there (12 s each,
# 10 min in all). Syntax does not depend on the inventory.
LINT_ENV = {"ANSIBLE_INVENTORY": "/dev/null"}


def lint_stage():
    code, _output = run([str(BIN / "ansible-lint"), "--offline"], "lint.log", env=LINT_ENV)
    return (1, 0, 0) if code == 0 else (0, 1, 0)


def molecule_stage():
    script = REPO / "tests" / "sandbox" / "molecule_all.sh"
    if not script.exists():
        return 0, 0, 0
    code, out = run([str(script)], "molecule.log")
    match = re.findall(r"^(\d+) passed, (\d+) failed", out, re.M)
    passed, failed = (int(match[-1][0]), int(match[-1][1])) if match else (0, 1)
    if code != 0 and failed == 0:
        failed = 1
    return passed, failed, 0


class BackgroundPytest:
    """A pytest run that starts as soon as one of the background slots is free and is collected later
    (its output only in build/logs/<name>.log)."""

    def __init__(self, name, paths, env, slots):
        self.name = name
        (BUILD / ("junit-%s.xml" % name)).unlink(missing_ok=True)
        self.log_path = BUILD / "logs" / ("%s.log" % name)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.seconds = 0.0
        self.returncode = None
        self.thread = threading.Thread(target=self._run, args=(paths, env, slots), daemon=True)
        self.thread.start()

    def _run(self, paths, env, slots):
        with slots:
            started = time.monotonic()
            with open(self.log_path, "w", encoding="utf-8") as log:
                self.returncode = subprocess.call(
                    pytest_command(self.name, paths), cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                    env=dict(os.environ, PATH="%s:%s" % (BIN, os.environ["PATH"]), **env))
            self.seconds = time.monotonic() - started

    def finish(self):
        self.thread.join()
        counts = pytest_counts(self.name, self.returncode)
        output = self.log_path.read_text(encoding="utf-8")
        print(output if counts[1] else "\n".join(output.splitlines()[-3:]))
        return counts


# The end-to-end files, grouped so that each group owns its fleets and the groups run side by side,
# BACKGROUND_SLOTS at a time, longest first (more at once overloaded the 2-core CI machine until
# instance creates passed their deadlines): (stage name, environment, test files matching these prefixes). Each fixture names its fleet and
# emulator port after FLEET_<X>_NAME / _PORT with distinct defaults; the ops group runs the central
# fleet's fixture a second time, so it renames that fleet. Spot protection end to end (notice, standby
# serving through the sentinel, scale-back across a kill of the rulebook, two hosts at once) is test_75's,
# with the rulebook where it runs in production, on the sentinel; test_70 runs the same rulebook from the
# controller against a central fleet, with the operators' webhook (`make test-spot`).
E2E_GROUPS = [
    ("e2e-sentinel", {}, ("test_75_",)),
    ("e2e-topo", {}, ("test_15_",)),
    ("e2e-ops", {"FLEET_E2E_NAME": "ops", "FLEET_E2E_PORT": "8113"}, ("test_30_", "test_40_")),
    ("e2e", {}, ("test_10_", "test_20_", "test_50_")),
    ("e2e-ha", {}, ("test_60_",)),
]
BACKGROUND_SLOTS = int(os.environ.get("FLEET_BACKGROUND_SLOTS", "3"))
# The Incus cluster target (three nested hosts, about 11 min) runs beside the fleets too: the
# integration stage skips it (it is marked manual so that a plain `pytest tests/integration` stays short).
CLUSTER_GROUP = ("cluster", ["tests/integration/test_targets.py::test_target[incus_cluster]"], {"FLEET_RUN_MANUAL": "1"})


def background_groups():
    """``[(stage name, test paths, environment)]``: the e2e groups that have files, and the cluster."""
    files = sorted((REPO / "tests" / "e2e").glob("test_*.py"))
    groups = []
    for name, env, prefixes in E2E_GROUPS:
        paths = [str(f.relative_to(REPO)) for f in files if f.name.startswith(prefixes)]
        if paths:
            groups.append((name, paths, env))
    return groups + [CLUSTER_GROUP]


def setup_stage(cmd, log_name):
    code, _output = run(cmd, log_name)
    return (1, 0, 0) if code == 0 else (0, 1, 0)


def main():
    stages = [
        ("sandbox", lambda: setup_stage(["bash", "-c", "tests/sandbox/incus_up.sh && tests/sandbox/clean_leftovers.sh"],
                                        "sandbox.log")),
        ("unit", lambda: pytest_stage("unit", ["tests/unit"])),
        ("integration", lambda: pytest_stage("integration", ["tests/integration"])),
        ("sanity", sanity_stage),
        ("lint", lint_stage),
        ("molecule", molecule_stage),
    ]
    only = set(sys.argv[1:])
    results = []
    background = []
    for name, stage in stages:
        if only and name not in only:
            continue
        print("\n===== %s =====" % name, flush=True)
        start = time.monotonic()
        passed, failed, skipped = stage()
        results.append((name, passed, failed, skipped, time.monotonic() - start))
        if name == "sandbox":
            if failed:
                break  # nothing else can run without Incus
            slots = threading.BoundedSemaphore(BACKGROUND_SLOTS)
            background = [BackgroundPytest(group, paths, env, slots) for group, paths, env in background_groups()
                          if not only or group in only or ("e2e" in only and group.startswith("e2e"))]
            for job in background:
                print("(queued %s in the background, %d at a time: %s)" % (job.name, BACKGROUND_SLOTS, job.log_path),
                      flush=True)
    for job in background:
        print("\n===== %s (background) =====" % job.name, flush=True)
        passed, failed, skipped = job.finish()
        results.append((job.name, passed, failed, skipped, job.seconds))
    failed_stages = [r[0] for r in results if r[2]]
    if failed_stages:
        print("\n===== failures (the end of each error; the whole output is in build/logs/) =====")
        print_failure_digest(failed_stages)
    print("\n===== summary =====")
    print("%-12s %7s %7s %7s %8s" % ("stage", "passed", "failed", "skipped", "seconds"))
    for name, passed, failed, skipped, seconds in results:
        print("%-12s %7d %7d %7d %8.0f" % (name, passed, failed, skipped, seconds))
    total_passed = sum(r[1] for r in results)
    total_failed = sum(r[2] for r in results)
    total_skipped = sum(r[3] for r in results)
    print("\n%d passed, %d failed, %d skipped" % (total_passed, total_failed, total_skipped))
    return 1 if total_failed else 0


if __name__ == "__main__":
    sys.exit(main())
