"""Emulator state: resources by collection path, operations, request ids; persisted as JSON.

Every resource lives under its collection path, e.g. `projects/p/zones/z/instances`, and links
inside resources use the canonical prefix LINK_BASE, which the HTTP layer rewrites to the address
the client used (so selfLinks point back at the emulator).
"""
from __future__ import annotations

import copy
import datetime
import json
import os
import random
import threading
import time
from typing import Any, Callable

LINK_BASE = "https://www.googleapis.com/compute/v1/"


def now_rfc3339() -> str:
    dt = datetime.datetime.now(datetime.timezone.utc).astimezone(datetime.timezone(datetime.timedelta(hours=-8)))
    return dt.isoformat(timespec="milliseconds")


def new_id() -> str:
    return str(random.randrange(10**18, 2**63))


class ApiError(Exception):
    """An error with the real Compute error body: {"error": {code, message, errors[...]}}."""

    def __init__(self, code: int, reason: str, message: str, headers: dict | None = None):
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message
        self.headers = headers or {}

    def body(self) -> dict:
        return {"error": {"code": self.code, "message": self.message,
                          "errors": [{"message": self.message, "domain": "global", "reason": self.reason}]}}


def not_found(path: str) -> ApiError:
    return ApiError(404, "notFound", f"The resource '{path}' was not found")


class Store:
    """All mutable state, guarded by one lock; `changed` is notified on every state change."""

    def __init__(self, state_dir: str | None):
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.collections: dict[str, dict[str, dict]] = {}
        self.request_ids: dict[str, str] = {}   # "<scope path>/<requestId>" -> operation path
        self.state_file = os.path.join(state_dir, "state.json") if state_dir else None
        self._dirty = threading.Event()
        self._stop = threading.Event()
        # The saver thread and close() may both save: one writer at a time on the one temp file.
        self._save_lock = threading.Lock()
        if self.state_file and os.path.exists(self.state_file):
            with open(self.state_file, encoding="utf-8") as fh:
                data = json.load(fh)
            self.collections = data.get("collections", {})
            self.request_ids = data.get("request_ids", {})
        self._saver = None
        if self.state_file:
            os.makedirs(os.path.dirname(self.state_file), exist_ok=True)
            self._saver = threading.Thread(target=self._save_loop, name="state-saver", daemon=True)
            self._saver.start()

    # -- persistence -------------------------------------------------------------------------
    def touch(self) -> None:
        """Record a change: wake long-pollers and schedule a save."""
        with self.lock:
            self.changed.notify_all()
        self._dirty.set()

    def _save_loop(self) -> None:
        while not self._stop.is_set():
            self._dirty.wait()
            if self._stop.is_set():
                break
            time.sleep(0.2)  # coalesce bursts of changes into one write
            self._dirty.clear()
            self.save()

    def save(self) -> None:
        if not self.state_file:
            return
        with self.lock:
            text = json.dumps({"collections": self.collections, "request_ids": self.request_ids})
        tmp = self.state_file + ".tmp"
        with self._save_lock:
            with open(tmp, "w", encoding="utf-8") as fh:
                fh.write(text)
            os.replace(tmp, self.state_file)

    def close(self) -> None:
        self._stop.set()
        self._dirty.set()
        self.save()

    def clear(self) -> None:
        with self.lock:
            self.collections.clear()
            self.request_ids.clear()
        self.touch()

    # -- resources ---------------------------------------------------------------------------
    def collection(self, path: str) -> dict[str, dict]:
        with self.lock:
            return self.collections.setdefault(path, {})

    def get(self, collection: str, name: str) -> dict:
        with self.lock:
            res = self.collections.get(collection, {}).get(name)
            if res is None:
                raise not_found(f"{collection}/{name}")
            return res

    def find(self, collection: str, name: str) -> dict | None:
        with self.lock:
            return self.collections.get(collection, {}).get(name)

    def put(self, collection: str, resource: dict) -> dict:
        with self.lock:
            self.collections.setdefault(collection, {})[resource["name"]] = resource
        self.touch()
        return resource

    def remove(self, collection: str, name: str) -> None:
        with self.lock:
            self.collections.get(collection, {}).pop(name, None)
        self.touch()

    def update(self, collection: str, name: str, fn: Callable[[dict], Any]) -> Any:
        with self.lock:
            result = fn(self.get(collection, name))
        self.touch()
        return result

    def snapshot(self, collection: str, name: str) -> dict:
        with self.lock:
            return copy.deepcopy(self.get(collection, name))

    def collections_matching(self, project: str, kind: str) -> list[tuple[str, str]]:
        """(scope, collection path) for every scope of `project` holding `kind`, e.g. zones/us-east1-b."""
        prefix = f"projects/{project}/"
        out = []
        with self.lock:
            for path in self.collections:
                if path.startswith(prefix) and path.endswith("/" + kind):
                    scope = path[len(prefix):-len(kind) - 1]
                    out.append((scope, path))
        return sorted(out)

    def wait_until(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Block until predicate() is true (re-checked on every change) or timeout; no polling."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.changed.wait(left)
            return True
