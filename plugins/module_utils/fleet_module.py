# -*- coding: utf-8 -*-
# Copyright: containarium.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared base for every containarium.fleet module.

Modules stay thin: argument spec, read the current state, compute the difference, apply it (or
only report it under ``--check``), return. This file holds what they all share: the result
dictionary, ``changed`` bookkeeping, ``--diff`` output limited to what differs, RFC 1035 name
checks that run before any API call, and one way to turn a client error into ``fail_json``.
"""

from __future__ import annotations

import re

from ansible.module_utils.basic import AnsibleModule

# GCE resource names and Incus instance names share this shape (RFC 1035 labels, lower case).
RFC1035_NAME = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")


class FleetError(Exception):
    """An error a client raises; ``details`` travel to ``fail_json`` unchanged (API code, body...)."""

    def __init__(self, message, **details):
        super().__init__(message)
        self.message = message
        self.details = details


def name_problem(name, kind="resource"):
    """Return why ``name`` is not a valid RFC 1035 name, or None when it is."""
    if not isinstance(name, str) or not RFC1035_NAME.match(name):
        return (
            "invalid %s name %r: it must be 1-63 characters of lower-case letters, digits and "
            "hyphens, start with a letter and not end with a hyphen (RFC 1035)" % (kind, name)
        )
    return None


def changed_keys(before, after, keys=None):
    """Return ``(before, after)`` restricted to the keys whose values differ.

    ``keys`` limits the comparison (the keys a user asked for); missing values compare as None.
    """
    before = before or {}
    after = after or {}
    keys = sorted(set(before) | set(after)) if keys is None else sorted(keys)
    old, new = {}, {}
    for key in keys:
        if before.get(key) != after.get(key):
            if key in before:
                old[key] = before[key]
            if key in after:
                new[key] = after[key]
    return old, new


class FleetModule(AnsibleModule):
    """AnsibleModule with the result bookkeeping every fleet module needs."""

    def __init__(self, argument_spec, **kwargs):
        kwargs.setdefault("supports_check_mode", True)
        super().__init__(argument_spec=argument_spec, **kwargs)
        self.result = {"changed": False}
        self._diff_before = {}
        self._diff_after = {}

    @property
    def diff_mode(self):
        return self._diff

    def mark_changed(self):
        self.result["changed"] = True

    def add_diff(self, before, after):
        """Record a before/after pair; merged into the ``diff`` returned under ``--diff``."""
        self._diff_before.update(before or {})
        self._diff_after.update(after or {})

    def require_valid_name(self, name, kind):
        problem = name_problem(name, kind)
        if problem:
            self.fail_json(msg=problem)

    def exit(self, **fields):
        self.result.update(fields)
        if self.diff_mode and (self._diff_before or self._diff_after or self.result["changed"]):
            self.result["diff"] = {"before": self._diff_before, "after": self._diff_after}
        self.exit_json(**self.result)

    def fail_from(self, error, action=None):
        """Fail with ``error`` (a FleetError), prefixed by ``action`` such as 'create instance web-0'."""
        msg = error.message if action is None else "%s: %s" % (action, error.message)
        fields = dict(self.result)
        fields.update(error.details)
        self.fail_json(msg=msg, **fields)
