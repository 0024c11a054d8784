"""Every task of the playbooks that rewrites the controller's known_hosts (ssh-keygen -R) runs one host
at a time. ssh-keygen -R reads the file, writes a copy without the host and renames it over the file;
two at once, for two jumps given the shared host keys, can leave one of the old keys behind, and the
controller then refuses that jump ("Host key verification failed", the likely cause of one such failure
building a fleet with two jumps). Two removals started together, 200 times, lost one in 156.
"""

from __future__ import annotations

import pathlib

import yaml

PLAYBOOKS = pathlib.Path(__file__).resolve().parents[2] / "playbooks"
BLOCK_KEYS = ("tasks", "pre_tasks", "post_tasks", "handlers", "block", "rescue", "always")


def tasks_of(node):
    """Every task dict below a play list, a task list or a block, depth first."""
    if isinstance(node, list):
        for item in node:
            yield from tasks_of(item)
    elif isinstance(node, dict):
        nested = [node[key] for key in BLOCK_KEYS if isinstance(node.get(key), list)]
        if not nested and "hosts" not in node:
            yield node
        for child in nested:
            yield from tasks_of(child)


def known_hosts_rewrites():
    for path in sorted(PLAYBOOKS.rglob("*.yml")):
        for task in tasks_of(yaml.safe_load(path.read_text()) or []):
            command = task.get("ansible.builtin.command")
            text = command.get("cmd", "") if isinstance(command, dict) else str(command or "")
            if "ssh-keygen -R" in text:
                yield path.relative_to(PLAYBOOKS), task


def test_the_playbooks_rewrite_known_hosts_somewhere():
    assert len(list(known_hosts_rewrites())) >= 5


def test_each_known_hosts_rewrite_runs_one_host_at_a_time():
    unthrottled = ["%s: %s" % (path, task["name"]) for path, task in known_hosts_rewrites()
                   if task.get("throttle") != 1]
    assert not unthrottled, unthrottled
