"""Pick the failing tasks out of ansible-playbook's output, so a failure report starts with them.

CI shows only the head and the tail of a long log; a playbook's failing task sits in the middle.
"""

from __future__ import annotations

import re

TASK_HEADER = re.compile(r"^(TASK|RUNNING HANDLER) \[", re.M)
FAILURE = re.compile(r"^(fatal|failed): \[|^\S+ \| FAILED", re.M)


def failed_tasks(output, max_lines=40):
    """The blocks (task header to the next header) that hold a failure, each cut to ``max_lines``."""
    starts = [m.start() for m in TASK_HEADER.finditer(output)] + [len(output)]
    blocks = []
    for start, end in zip(starts, starts[1:]):
        block = output[start:end]
        if FAILURE.search(block):
            lines = block.rstrip().splitlines()
            more = ["[... %d more lines]" % (len(lines) - max_lines)] if len(lines) > max_lines else []
            blocks.append("\n".join(lines[:max_lines] + more))
    return "\n".join(blocks)


def failure_report(output, tail_lines=40):
    """The failing tasks first, then the last ``tail_lines`` lines of the output (its PLAY RECAP)."""
    tail = "\n".join(output.splitlines()[-tail_lines:])
    failed = failed_tasks(output)
    return "failing tasks:\n%s\n\n... last lines:\n%s" % (failed, tail) if failed else tail
