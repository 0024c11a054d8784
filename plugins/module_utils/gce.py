# -*- coding: utf-8 -*-
# Copyright: containarium.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one Google Compute Engine client of containarium.fleet.

Every GCE module, the ``containarium.fleet.gce`` inventory and the event source go through
``GceClient``: one HTTP session per run (keep-alive, the token is fetched once and refreshed only
when it expires), retries with capped and jittered exponential backoff that honour
``Retry-After``, a ``requestId`` on every mutating call that is reused across its retries (so a
retried insert never creates twice), operation waits through the ``operations/{name}/wait``
long-poll until DONE or a deadline, and an operation that ends DONE with an ``error`` raised as a
failure. The Compute endpoint can be overridden (``endpoint`` option, ``GCP_COMPUTE_ENDPOINT``) for
private endpoints and the sandbox emulator.

This file imports without google-auth and requests so ``ansible-test sanity`` can load it; the
import errors are recorded and reported when a client is built.
"""

from __future__ import annotations

import email.utils
import json
import os
import random
import time
import traceback
import uuid

from ansible.module_utils.basic import env_fallback, missing_required_lib
from ansible_collections.containarium.fleet.plugins.module_utils.fleet_module import (
    FleetError,
    FleetModule,
    changed_keys,
)

try:
    import requests

    REQUESTS_IMPORT_ERROR = None
except ImportError:
    requests = None
    REQUESTS_IMPORT_ERROR = traceback.format_exc()

try:
    import google.auth
    import google.auth.exceptions
    import google.auth.transport.requests
    import google.oauth2.service_account

    GOOGLE_AUTH_IMPORT_ERROR = None
except ImportError:
    google = None
    GOOGLE_AUTH_IMPORT_ERROR = traceback.format_exc()

DEFAULT_ENDPOINT = "https://compute.googleapis.com/compute/v1/"
DEFAULT_SCOPES = ("https://www.googleapis.com/auth/compute",)
AUTH_KINDS = ("serviceaccount", "application", "accesstoken")
DEFAULT_WAIT_TIMEOUT = 300

# Statuses and error reasons worth another attempt (quota windows, overloaded frontends).
RETRY_STATUSES = frozenset((429, 500, 502, 503, 504))
RETRY_REASONS = frozenset(("rateLimitExceeded", "userRateLimitExceeded", "backendError"))
MUTATING_METHODS = frozenset(("POST", "PUT", "PATCH", "DELETE"))

MISSING_CREDENTIALS = (
    "no Google credentials: supply them in one of three ways: "
    "auth_kind=serviceaccount with service_account_file (GCP_SERVICE_ACCOUNT_FILE) or "
    "service_account_contents (GCP_SERVICE_ACCOUNT_CONTENTS); "
    "auth_kind=accesstoken with access_token (GCP_ACCESS_TOKEN); "
    "or auth_kind=application with Application Default Credentials "
    "(GOOGLE_APPLICATION_CREDENTIALS or gcloud auth application-default login)"
)


def gce_argument_spec():
    """The connection and auth options shared by every GCE module (doc fragment containarium.fleet.gce)."""
    return dict(
        project=dict(type="str", required=True, fallback=(env_fallback, ["GCP_PROJECT"])),
        auth_kind=dict(type="str", choices=list(AUTH_KINDS), fallback=(env_fallback, ["GCP_AUTH_KIND"])),
        service_account_file=dict(type="path", fallback=(env_fallback, ["GCP_SERVICE_ACCOUNT_FILE"])),
        service_account_contents=dict(
            type="jsonarg", no_log=True, fallback=(env_fallback, ["GCP_SERVICE_ACCOUNT_CONTENTS"])
        ),
        access_token=dict(type="str", no_log=True, fallback=(env_fallback, ["GCP_ACCESS_TOKEN"])),
        scopes=dict(type="list", elements="str", fallback=(env_fallback, ["GCP_SCOPES"])),
        endpoint=dict(type="str", fallback=(env_fallback, ["GCP_COMPUTE_ENDPOINT"])),
        wait_timeout=dict(type="int", default=DEFAULT_WAIT_TIMEOUT),
    )


class GceError(FleetError):
    """A Compute API failure: HTTP ``code``, the first error ``reason``, the API's message and body."""

    def __init__(self, message, code=None, reason=None, body=None, **details):
        super().__init__(message, code=code, reason=reason, body=body, **details)
        self.code = code
        self.reason = reason
        self.body = body

    @property
    def not_found(self):
        return self.code == 404 or self.reason == "notFound"


def _error_from_response(method, url, response):
    try:
        body = response.json()
    except ValueError:
        body = {"raw": response.text[:2000]}
    error = body.get("error") if isinstance(body, dict) else None
    reason = None
    message = response.reason or "HTTP %s" % response.status_code
    if isinstance(error, dict):
        message = error.get("message") or message
        errors = error.get("errors") or []
        if errors and isinstance(errors[0], dict):
            reason = errors[0].get("reason")
    return GceError(
        "%s %s returned %s: %s" % (method, url, response.status_code, message),
        code=response.status_code,
        reason=reason,
        body=body,
    )


def _retry_after_seconds(response):
    """Seconds asked for by a ``Retry-After`` header (delta-seconds or an HTTP date), or None."""
    value = response.headers.get("Retry-After") if response is not None else None
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value)
        if parsed is None:
            return None
        return max(0.0, parsed.timestamp() - time.time())


def operation_error(operation):
    """A GceError for a DONE operation that carries an ``error``, else None."""
    errors = ((operation.get("error") or {}).get("errors")) or []
    if not errors:
        return None
    first = errors[0]
    message = "; ".join("%s: %s" % (e.get("code"), e.get("message")) for e in errors)
    return GceError(
        "operation %s (%s on %s) failed: %s"
        % (operation.get("name"), operation.get("operationType"), operation.get("targetLink"), message),
        code=operation.get("httpErrorStatusCode"),
        reason=first.get("code"),
        body=operation,
    )


def resource_name(url):
    """The last path segment of a resource URL ('.../zones/us-east1-b' -> 'us-east1-b')."""
    return url.rstrip("/").rsplit("/", 1)[-1] if url else url


class GceClient:
    """A Compute Engine v1 REST client bound to one project.

    ``path`` arguments are relative to the project (``zones/us-east1-b/instances``) unless they
    start with ``projects/`` or a scheme, so resources of other projects (images) stay reachable.
    """

    def __init__(
        self,
        project,
        auth_kind=None,
        service_account_file=None,
        service_account_contents=None,
        access_token=None,
        scopes=None,
        endpoint=None,
        wait_timeout=DEFAULT_WAIT_TIMEOUT,
        request_timeout=60,
        max_attempts=6,
        retry_budget=60.0,
        backoff_base=0.5,
        backoff_cap=16.0,
        user_agent="containarium.fleet",
    ):
        if requests is None:
            raise FleetError(missing_required_lib("requests"), exception=REQUESTS_IMPORT_ERROR)
        if not project:
            raise FleetError("project is required (option project or GCP_PROJECT)")
        self.project = project
        self.endpoint = (endpoint or os.environ.get("GCP_COMPUTE_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/") + "/"
        self.wait_timeout = wait_timeout
        self.request_timeout = request_timeout
        self.max_attempts = max_attempts
        self.retry_budget = retry_budget
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.session = self._session(
            auth_kind, service_account_file, service_account_contents, access_token, list(scopes or DEFAULT_SCOPES)
        )
        self.session.headers["User-Agent"] = user_agent

    # ---- credentials -------------------------------------------------------------------------
    @staticmethod
    def _session(auth_kind, sa_file, sa_contents, access_token, scopes):
        if auth_kind is None:
            if access_token:
                auth_kind = "accesstoken"
            elif sa_file or sa_contents:
                auth_kind = "serviceaccount"
            else:
                auth_kind = "application"
        if auth_kind not in AUTH_KINDS:
            raise FleetError("auth_kind must be one of %s, not %r" % (", ".join(AUTH_KINDS), auth_kind))
        if auth_kind == "accesstoken":
            if not access_token:
                raise FleetError(MISSING_CREDENTIALS)
            session = requests.Session()
            session.headers["Authorization"] = "Bearer %s" % access_token
            return session
        if google is None:
            raise FleetError(
                missing_required_lib("google-auth") + " (or use auth_kind=accesstoken)",
                exception=GOOGLE_AUTH_IMPORT_ERROR,
            )
        try:
            if auth_kind == "serviceaccount":
                if sa_contents:
                    info = json.loads(sa_contents) if isinstance(sa_contents, str) else sa_contents
                    credentials = google.oauth2.service_account.Credentials.from_service_account_info(
                        info, scopes=scopes
                    )
                elif sa_file:
                    credentials = google.oauth2.service_account.Credentials.from_service_account_file(
                        sa_file, scopes=scopes
                    )
                else:
                    raise FleetError(MISSING_CREDENTIALS)
            else:
                credentials, dummy = google.auth.default(scopes=scopes)
        except google.auth.exceptions.DefaultCredentialsError as exc:
            raise FleetError("%s (%s)" % (MISSING_CREDENTIALS, exc)) from exc
        except (ValueError, OSError) as exc:
            raise FleetError("cannot load the %s credentials: %s" % (auth_kind, exc)) from exc
        # AuthorizedSession keeps the token and refreshes it only when it expires or a 401 says so.
        return google.auth.transport.requests.AuthorizedSession(credentials)

    # ---- HTTP --------------------------------------------------------------------------------
    def url(self, path):
        if "://" in path:
            return path
        if path.startswith("projects/"):
            return self.endpoint + path
        return "%sprojects/%s/%s" % (self.endpoint, self.project, path)

    def _backoff(self, attempt, response):
        delay = min(self.backoff_cap, self.backoff_base * (2 ** attempt)) * random.uniform(0.5, 1.0)
        asked = _retry_after_seconds(response)
        if asked is not None:
            delay = max(delay, min(asked, self.backoff_cap * 4))
        return delay

    def request(self, method, path, params=None, body=None, timeout=None, idempotent_id=True):
        """Send one API call and return its JSON body (``{}`` when empty).

        Mutating calls get a ``requestId`` that all retries of this call share. Retries stop after
        ``max_attempts`` attempts or ``retry_budget`` seconds, whichever comes first.
        """
        method = method.upper()
        params = dict(params or {})
        if idempotent_id and method in MUTATING_METHODS and "requestId" not in params:
            params["requestId"] = str(uuid.uuid4())
        url = self.url(path)
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            response = None
            try:
                response = self.session.request(
                    method, url, params=params, json=body, timeout=timeout or self.request_timeout
                )
            except requests.exceptions.ConnectionError as exc:
                error = GceError("%s %s: cannot connect: %s" % (method, url, exc), code=None, reason="connectionError")
            except requests.exceptions.Timeout as exc:
                error = GceError("%s %s: timed out: %s" % (method, url, exc), code=None, reason="timeout")
            else:
                if response.status_code < 400:
                    if not response.content:
                        return {}
                    try:
                        return response.json()
                    except ValueError as exc:
                        raise GceError(
                            "%s %s returned a body that is not JSON" % (method, url),
                            code=response.status_code, reason="invalidResponse", body={"raw": response.text[:2000]},
                        ) from exc
                error = _error_from_response(method, url, response)
            if not self._retryable(error):
                raise error
            delay = self._backoff(attempt - 1, response)
            elapsed = time.monotonic() - started
            if attempt >= self.max_attempts or elapsed + delay > self.retry_budget:
                error.details["attempts"] = attempt
                raise error
            time.sleep(delay)

    @staticmethod
    def _retryable(error):
        if error.code is None:
            return error.reason == "connectionError"
        return error.code in RETRY_STATUSES or (error.code == 403 and error.reason in RETRY_REASONS)

    def get(self, path, params=None):
        return self.request("GET", path, params=params)

    def get_or_none(self, path, params=None):
        """The resource at ``path``, or None when the API answers 404."""
        try:
            return self.request("GET", path, params=params)
        except GceError as exc:
            if exc.not_found:
                return None
            raise

    # ---- paging ------------------------------------------------------------------------------
    def pages(self, path, params=None):
        """Yield every page of a list or aggregatedList call, following ``nextPageToken``."""
        params = dict(params or {})
        while True:
            page = self.request("GET", path, params=params)
            yield page
            token = page.get("nextPageToken")
            if not token:
                return
            params["pageToken"] = token

    def list(self, path, params=None):
        """Yield the items of a (zonal, regional or global) list call across all pages."""
        for page in self.pages(path, params):
            yield from page.get("items") or []

    def aggregated(self, kind, params=None, project=None):
        """Yield ``(scope, item)`` from ``aggregated/<kind>`` across all pages.

        ``items`` is keyed by scope (``zones/us-east1-b``); scopes without resources carry only a
        ``warning`` and are skipped. ``project`` defaults to the client's project.
        """
        path = "projects/%s/aggregated/%s" % (project or self.project, kind)
        for page in self.pages(path, params):
            for scope, scoped in (page.get("items") or {}).items():
                for item in scoped.get(kind) or []:
                    yield scope, item

    # ---- mutations and operations ------------------------------------------------------------
    def mutate(self, method, path, body=None, params=None, wait=True, deadline=None):
        """Run a mutating call; wait for its operation (unless ``wait`` is false) and return it."""
        operation = self.request(method, path, params=params, body=body)
        if wait and operation.get("kind", "").endswith("#operation"):
            return self.wait(operation, deadline=deadline)
        return operation

    def operation_path(self, operation):
        """The ``operations/{name}`` path of an operation (zonal, regional or global)."""
        link = operation.get("selfLink") or ""
        project = self.project
        if "/projects/" in link:
            project = link.split("/projects/", 1)[1].split("/", 1)[0]
        if operation.get("zone"):
            scope = "zones/%s" % resource_name(operation["zone"])
        elif operation.get("region"):
            scope = "regions/%s" % resource_name(operation["region"])
        else:
            scope = "global"
        return "projects/%s/%s/operations/%s" % (project, scope, operation["name"])

    def wait(self, operation, deadline=None):
        """Long-poll ``operations/{name}/wait`` until DONE or ``deadline`` (monotonic seconds).

        The server returns as soon as the operation is DONE (or after up to two minutes); there is no
        sleep on the client. A DONE operation with an ``error`` raises GceError with its reason.
        """
        if deadline is None:
            deadline = time.monotonic() + self.wait_timeout
        path = self.operation_path(operation) + "/wait"
        while operation.get("status") != "DONE":
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise GceError(
                    "timed out after wait_timeout=%ss waiting for operation %s (%s on %s), last status %s"
                    % (self.wait_timeout, operation.get("name"), operation.get("operationType"),
                       operation.get("targetLink"), operation.get("status")),
                    reason="waitTimeout", body=operation,
                )
            try:
                # The read timeout bounds the long-poll by the remaining budget (plus a margin for
                # the server to answer a wait it cuts short itself).
                # operations.wait takes no requestId: it changes nothing.
                operation = self.request("POST", path, timeout=min(remaining, 125) + 5, idempotent_id=False)
            except GceError as exc:
                if exc.reason != "timeout":
                    raise
        error = operation_error(operation)
        if error:
            raise error
        return operation

    # ---- lookups shared by modules -----------------------------------------------------------
    def zone_names(self):
        return sorted(zone["name"] for zone in self.list("zones"))

    def require_zone(self, zone):
        """Raise a GceError listing the valid zones when ``zone`` does not exist."""
        if self.get_or_none("zones/%s" % zone) is None:
            raise GceError(
                "unknown zone %r; valid zones: %s" % (zone, ", ".join(self.zone_names())),
                code=404, reason="notFound",
            )

    def require_machine_type(self, zone, machine_type):
        """The machineTypes resource, or a GceError listing those the zone offers."""
        found = self.get_or_none("zones/%s/machineTypes/%s" % (zone, machine_type))
        if found is None:
            valid = sorted(t["name"] for t in self.list("zones/%s/machineTypes" % zone))
            raise GceError(
                "unknown machine type %r in zone %s; valid machine types: %s"
                % (machine_type, zone, ", ".join(valid)),
                code=404, reason="notFound",
            )
        return found


def region_of(zone):
    """'us-east1-b' -> 'us-east1'."""
    return zone.rsplit("-", 1)[0]


class GceModule(FleetModule):
    """FleetModule with the GCE connection options and one GceClient."""

    def __init__(self, argument_spec, **kwargs):
        spec = gce_argument_spec()
        spec.update(argument_spec)
        super().__init__(spec, **kwargs)
        self._client = None
        self.deadline = time.monotonic() + self.params["wait_timeout"]

    @property
    def client(self):
        if self._client is None:
            p = self.params
            try:
                self._client = GceClient(
                    project=p["project"],
                    auth_kind=p["auth_kind"],
                    service_account_file=p["service_account_file"],
                    service_account_contents=p["service_account_contents"],
                    access_token=p["access_token"],
                    scopes=p["scopes"],
                    endpoint=p["endpoint"],
                    wait_timeout=p["wait_timeout"],
                )
            except FleetError as exc:
                self.fail_from(exc)
        return self._client

    def mutate(self, method, path, body=None, params=None, action=None):
        """Apply one change (never under --check), wait for it within this task's wait_timeout."""
        self.mark_changed()
        if self.check_mode:
            return None
        try:
            return self.client.mutate(method, path, body=body, params=params, deadline=self.deadline)
        except FleetError as exc:
            self.fail_from(exc, action)
        return None  # not reached: fail_from exits

    def call(self, method, path, params=None, action=None):
        """A read that fails the module with ``action`` as context."""
        try:
            return self.client.request(method, path, params=params)
        except FleetError as exc:
            self.fail_from(exc, action)
        return None

    def get_or_none(self, path, action=None):
        try:
            return self.client.get_or_none(path)
        except FleetError as exc:
            self.fail_from(exc, action)
        return None

    def insert(self, collection, body, path, action):
        """Insert a resource; if that fails, remove what it left and say exactly what remains."""
        self.mark_changed()
        if self.check_mode:
            return
        try:
            self.client.mutate("POST", collection, body=body, deadline=self.deadline)
            return
        except FleetError as error:
            failure = error
        try:
            leftover = self.client.get_or_none(path)
            if leftover is None:
                remains = "nothing was left behind"
            else:
                # A fresh deadline: the cleanup must not be skipped because the insert used it up.
                self.client.mutate("DELETE", path, deadline=time.monotonic() + self.params["wait_timeout"])
                remains = "the partly created %s was deleted" % path
        except FleetError as exc:
            remains = "%s remains and could not be deleted (%s)" % (path, exc.message)
        failure.message = "%s; %s" % (failure.message, remains)
        self.fail_from(failure, action)


class GceResourceTask:
    """read -> compare -> insert/update/delete (or only report under --check) -> return.

    Subclasses name the resource (``kind``, ``path``, ``collection``), say which fields the user
    manages (``wanted`` and ``current``, as plain comparable values), build the insert body, and
    apply in-place updates (``update``); fields that cannot change in place fail clearly.
    """

    kind = "resource"
    required_to_create = ()

    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.name = self.params["name"]
        self.action = "%s %s" % (self.kind, self.name)

    path = None
    collection = None

    def wanted(self):
        raise NotImplementedError

    def current(self, resource):
        raise NotImplementedError

    def insert_body(self):
        raise NotImplementedError

    def summarize(self, resource):
        return resource

    def validate_for_create(self):
        missing = [key for key in self.required_to_create if self.params[key] in (None, [], "")]
        if missing:
            self.module.fail_json(msg="%s does not exist; creating it needs %s" % (self.action, ", ".join(missing)))

    def update(self, resource, old, new):
        self.module.fail_json(
            msg="%s exists with %s; these cannot be changed in place (delete it first, or keep the current "
                "values): %s" % (self.action, ", ".join("%s=%r" % kv for kv in sorted(old.items())), ", ".join(sorted(new))),
            **self.module.result)

    def run(self):
        m = self.module
        resource = m.get_or_none(self.path, "read " + self.action)
        if self.params["state"] == "absent":
            if resource:
                m.add_diff({"state": "present"}, {"state": "absent"})
                m.mutate("DELETE", self.path, action="delete " + self.action)
            m.exit(**{self.kind: self.summarize(resource) if resource else {}})
        wanted = self.wanted()
        if resource is None:
            self.validate_for_create()
            m.add_diff({"state": "absent"}, dict(wanted, state="present"))
            m.insert(self.collection, self.insert_body(), self.path, "create " + self.action)
        else:
            old, new = changed_keys(self.current(resource), wanted, keys=wanted.keys())
            if new or old:
                m.add_diff(old, new)
                self.update(resource, old, new)
        if not m.check_mode and m.result["changed"]:
            resource = m.get_or_none(self.path, "read " + self.action)
        m.exit(**{self.kind: self.summarize(resource) if resource else {}})


def given(params, *keys):
    """The subset of ``keys`` the user set (None means: not managed)."""
    return {key: params[key] for key in keys if params[key] is not None}


def instance_addresses(instance):
    """``(private_ip, public_ip)`` of the first network interface (None when absent)."""
    interfaces = instance.get("networkInterfaces") or [{}]
    first = interfaces[0]
    public = None
    for access in first.get("accessConfigs") or []:
        if access.get("natIP"):
            public = access["natIP"]
            break
    return first.get("networkIP"), public


def instance_is_spot(instance):
    scheduling = instance.get("scheduling") or {}
    return scheduling.get("provisioningModel") == "SPOT" or bool(scheduling.get("preemptible"))


def metadata_dict(metadata):
    return {item["key"]: item.get("value") for item in (metadata or {}).get("items") or []}


def summarize_instance(instance):
    """The instance fields modules return and the inventory exposes, under plain names."""
    private_ip, public_ip = instance_addresses(instance)
    return {
        "name": instance.get("name"),
        "zone": resource_name(instance.get("zone")),
        "status": instance.get("status"),
        "machine_type": resource_name(instance.get("machineType")),
        "spot": instance_is_spot(instance),
        "labels": instance.get("labels") or {},
        "tags": sorted((instance.get("tags") or {}).get("items") or []),
        "metadata": metadata_dict(instance.get("metadata")),
        "private_ip": private_ip,
        "public_ip": public_ip,
        "disks": [
            {"device_name": d.get("deviceName"), "source": resource_name(d.get("source")),
             "boot": bool(d.get("boot")), "mode": d.get("mode")}
            for d in instance.get("disks") or []
        ],
        "self_link": instance.get("selfLink"),
    }
