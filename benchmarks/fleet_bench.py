"""What the benchmarks that build a sandbox fleet share: the e2e harness, their command line, their row.

Each such benchmark brings up its own fleet (tests/e2e/sandbox_fleet.py, own emulator port), times
playbooks on it, tears it down, and rewrites its own section of RESULTS.md unless --no-write.
"""

from __future__ import annotations

import argparse
import datetime
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests" / "e2e"))

from results import machine, replace_section  # noqa: E402  pylint: disable=wrong-import-position
from sandbox_fleet import SandboxFleet  # noqa: E402,F401  pylint: disable=wrong-import-position,unused-import


def command_line(doc):
    """The benchmark's argument parser (description = first line of its docstring), with --no-write."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--no-write", action="store_true", help="print the row, leave RESULTS.md alone")
    return parser


def table_row(*cells):
    """``| date | machine | cells... |``: every results table starts with when and where it was measured."""
    return "| %s |" % " | ".join([datetime.date.today().isoformat(), machine(), *cells])


def publish(args, heading, body, row):
    print(row)
    if not args.no_write:
        replace_section(heading, body)
