"""Compute operations: created RUNNING, finished DONE (maybe with `error`) by a worker thread.

`wait` is a long-poll on the store's Condition, so it returns the moment an operation is DONE.
"""
from __future__ import annotations

import copy
import logging
import threading
import time
import uuid
from typing import Callable

from .backend import BackendError
from .store import LINK_BASE, ApiError, Store, new_id, not_found, now_rfc3339

log = logging.getLogger("gce_emulator.operations")

HTTP_MESSAGES = {400: "BAD REQUEST", 403: "FORBIDDEN", 404: "NOT FOUND", 409: "CONFLICT",
                 412: "PRECONDITION FAILED", 429: "TOO MANY REQUESTS", 500: "INTERNAL SERVER ERROR",
                 503: "SERVICE UNAVAILABLE"}

# reason -> (HTTP status GCE reports on the operation, message template)
OPERATION_FAULTS = {
    "ZONE_RESOURCE_POOL_EXHAUSTED": (503, "The zone '{scope}' does not have enough resources available to "
                                          "fulfill the request.  Try a different zone, or try again later."),
    "QUOTA_EXCEEDED": (403, "Quota 'CPUS' exceeded.  Limit: 24.0 in region {region}."),
}


class OperationError(Exception):
    """Ends an operation DONE with error.errors[{code, message}] and httpErrorStatusCode."""

    def __init__(self, code: str, message: str, http_status: int = 400):
        super().__init__(message)
        self.code, self.message, self.http_status = code, message, http_status


def scope_region(scope: str) -> str:
    name = scope.split("/", 1)[-1]
    return name.rsplit("-", 1)[0] if scope.startswith("zones/") else name


class Operations:
    def __init__(self, store: Store):
        self.store = store
        self.latency = 0.0
        self.fail_next: dict[str, str] = {}   # operation type ("insert", "*") -> reason
        self._fault_lock = threading.Lock()
        self._target_locks: dict[str, threading.Lock] = {}

    def pause(self, factor: float = 1.0) -> None:
        """A status transition's duration (worker threads only)."""
        if self.latency > 0:
            time.sleep(self.latency * factor)

    def collection(self, project: str, scope: str) -> str:
        return f"projects/{project}/{scope}/operations"

    def _take_fault(self, op_type: str) -> str | None:
        with self._fault_lock:
            for key in (op_type, "*"):
                if key in self.fail_next:
                    return self.fail_next.pop(key)
        return None

    def start(self, project: str, scope: str, op_type: str, target: str, target_id: str | None,
              work: Callable[[], None], request_id: str | None = None,
              undo: Callable[[], None] | None = None, before: Callable[[], None] | None = None) -> dict:
        """Create an operation and run `work` in a thread. `before` runs synchronously first (so the
        target is visible, e.g. PROVISIONING, when the call returns); `undo` reverts it when an
        injected fault fails the operation. A repeated requestId returns the first operation."""
        coll = self.collection(project, scope)
        rid_key = f"{coll}/{request_id}" if request_id else None
        with self.store.lock:
            if rid_key and rid_key in self.store.request_ids:
                op = self.store.find(coll, self.store.request_ids[rid_key].rsplit("/", 1)[-1])
                if op is not None:
                    return copy.deepcopy(op)
            name = f"operation-{int(time.time() * 1000)}-{uuid.uuid4().hex[:13]}-{uuid.uuid4().hex[:8]}-{uuid.uuid4().hex[:8]}"
            stamp = now_rfc3339()
            op = {
                "kind": "compute#operation",
                "id": new_id(),
                "name": name,
                "operationType": op_type,
                "targetLink": LINK_BASE + target,
                "status": "RUNNING",
                "user": "emulator@containarium.invalid",
                "progress": 0,
                "insertTime": stamp,
                "startTime": stamp,
                "selfLink": f"{LINK_BASE}{coll}/{name}",
            }
            if target_id:
                op["targetId"] = target_id
            if scope.startswith("zones/"):
                op["zone"] = f"{LINK_BASE}projects/{project}/{scope}"
            elif scope.startswith("regions/"):
                op["region"] = f"{LINK_BASE}projects/{project}/{scope}"
            if before is not None:
                before()
            self.store.put(coll, op)
            if rid_key:
                self.store.request_ids[rid_key] = f"{coll}/{name}"
            # The caller serialises its answer outside the lock while the worker may already be
            # finishing the stored operation: hand back a copy, never the live record.
            answer = copy.deepcopy(op)
        fault = self._take_fault(op_type)
        if fault:
            work = self._failing_work(fault, scope, undo)
        threading.Thread(target=self._run, args=(coll, name, target, work), name=f"op-{op_type}",
                         daemon=True).start()
        return answer

    def target_lock(self, target: str) -> threading.Lock:
        """Operations on one resource run one after another, as GCE queues them."""
        with self._fault_lock:
            return self._target_locks.setdefault(target, threading.Lock())

    def _failing_work(self, reason: str, scope: str, undo: Callable[[], None] | None) -> Callable[[], None]:
        status, template = OPERATION_FAULTS.get(reason, (400, reason))

        def fail() -> None:
            self.pause()
            if undo is not None:
                undo()
            raise OperationError(reason, template.format(scope=scope.split("/", 1)[-1],
                                                         region=scope_region(scope)), status)
        return fail

    def _run(self, coll: str, name: str, target: str, work: Callable[[], None]) -> None:
        error: OperationError | None = None
        try:
            with self.target_lock(target):
                work()
        except OperationError as exc:
            error = exc
        except ApiError as exc:
            error = OperationError(exc.reason, exc.message, exc.code)
        except BackendError as exc:
            log.warning("operation %s failed in the backend: %s", name, exc)
            error = OperationError("INTERNAL_ERROR", f"Internal error. {exc}", 500)
        except Exception as exc:  # a bug must still end the operation, or waiters hang
            log.exception("operation %s crashed", name)
            error = OperationError("INTERNAL_ERROR", f"Internal error: {exc}", 500)
        self.finish(coll, name, error)

    def finish(self, coll: str, name: str, error: OperationError | None) -> None:
        def done(op: dict) -> None:
            op["progress"] = 100
            op["endTime"] = now_rfc3339()
            if error is not None:
                log.info("operation %s (%s on %s) failed: %s %s", name, op["operationType"],
                         op["targetLink"], error.code, error.message)
                op["error"] = {"errors": [{"code": error.code, "message": error.message}]}
                op["httpErrorStatusCode"] = error.http_status
                op["httpErrorMessage"] = HTTP_MESSAGES.get(error.http_status, "ERROR")
            op["status"] = "DONE"
        try:
            self.store.update(coll, name, done)
        except ApiError:
            log.info("operation %s finished after an admin reset forgot it", name)

    def record_done(self, project: str, scope: str, op_type: str, target: str, target_id: str | None,
                    status_message: str | None = None) -> dict:
        """An operation GCE itself starts (e.g. compute.instances.preempted): born DONE."""
        op = self.start(project, scope, op_type, target, target_id, work=lambda: None)
        self.store.wait_until(lambda: self.get(project, scope, op["name"])["status"] == "DONE", 10)
        if status_message:
            self.store.update(self.collection(project, scope), op["name"],
                              lambda o: o.__setitem__("statusMessage", status_message))
        return op

    def running(self) -> bool:
        with self.store.lock:
            return any(op["status"] != "DONE" for path, ops in self.store.collections.items()
                       if path.endswith("/operations") for op in ops.values())

    def get(self, project: str, scope: str, name: str) -> dict:
        """A copy of the operation (by name or id), consistent even while a worker finishes it."""
        coll = self.collection(project, scope)
        with self.store.lock:
            op = self.store.find(coll, name)
            if op is None:
                op = next((c for c in self.store.collection(coll).values() if c["id"] == name), None)
            if op is None:
                raise not_found(f"projects/{project}/{scope}/operations/{name}")
            return copy.deepcopy(op)

    def wait(self, project: str, scope: str, name: str, timeout: float) -> dict:
        self.get(project, scope, name)
        self.store.wait_until(lambda: self.get(project, scope, name)["status"] == "DONE", timeout)
        return self.get(project, scope, name)
