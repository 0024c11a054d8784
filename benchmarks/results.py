"""benchmarks/RESULTS.md: each benchmark owns one ``## `` section and rewrites only that one."""

from __future__ import annotations

import os
import pathlib
import platform

RESULTS = pathlib.Path(__file__).resolve().parent / "RESULTS.md"


def machine():
    return "%s, %d cores" % (platform.machine(), os.cpu_count())


def replace_section(heading, body):
    """Put ``heading`` + ``body`` in RESULTS.md, replacing that heading's old section (or appending)."""
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    section = "%s\n\n%s\n" % (heading, body.strip("\n"))
    if heading in text:
        before, _heading, rest = text.partition(heading)
        following = rest.find("\n## ")
        text = before + section + (rest[following:] if following >= 0 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    RESULTS.write_text(text)
