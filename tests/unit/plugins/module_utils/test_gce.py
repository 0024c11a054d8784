"""GceClient over real HTTP against a scripted local server: retries, requestId, paging, waits, auth."""

from __future__ import annotations

import base64
import json
import os
import pathlib
import subprocess
import sys
import time

import pytest
from gce_scripted_api import Reply, ScriptedApi, error_body

from ansible_collections.containarium.fleet.plugins.module_utils.fleet_module import FleetError
from ansible_collections.containarium.fleet.plugins.module_utils.gce import (
    MISSING_CREDENTIALS,
    GceClient,
    GceError,
)

PROJECT = "gi-project"
ZONE = "us-central1-a"
INSTANCES = "projects/%s/zones/%s/instances" % (PROJECT, ZONE)


@pytest.fixture
def api():
    server = ScriptedApi()
    yield server
    server.close()


def client_for(api, **kwargs):
    kwargs.setdefault("backoff_base", 0.01)
    return GceClient(PROJECT, auth_kind="accesstoken", access_token="tok", endpoint=api.endpoint, **kwargs)


def operation(name, status="DONE", error=None, zone=ZONE):
    op = {"kind": "compute#operation", "name": name, "status": status, "operationType": "insert",
          "zone": "https://compute.googleapis.com/compute/v1/projects/%s/zones/%s" % (PROJECT, zone),
          "selfLink": "https://compute.googleapis.com/compute/v1/projects/%s/zones/%s/operations/%s" % (PROJECT, zone, name),
          "targetLink": "https://compute.googleapis.com/compute/v1/%s/gi-web-0" % INSTANCES}
    if error:
        op["error"] = {"errors": [{"code": error, "message": "%s in %s" % (error, zone)}]}
        op["httpErrorStatusCode"] = 503
    return op


def test_retries_429_and_503_reusing_one_request_id(api):
    api.add("POST", INSTANCES,
            Reply(429, error_body(429, "rateLimitExceeded")),
            Reply(503, error_body(503, "backendError")),
            Reply(200, operation("op-1")))
    result = client_for(api).mutate("POST", "zones/%s/instances" % ZONE, body={"name": "gi-web-0"})
    assert result["status"] == "DONE"
    posts = api.calls("POST", INSTANCES)
    assert len(posts) == 3
    ids = {p["query"]["requestId"] for p in posts}
    assert len(ids) == 1 and len(ids.pop()) == 36
    assert all(p["body"] == {"name": "gi-web-0"} for p in posts)


def test_each_mutating_call_gets_its_own_request_id(api):
    api.add("POST", INSTANCES, Reply(200, operation("op-1")))
    client = client_for(api)
    client.mutate("POST", "zones/%s/instances" % ZONE, body={"name": "a"})
    client.mutate("POST", "zones/%s/instances" % ZONE, body={"name": "b"})
    ids = [p["query"]["requestId"] for p in api.calls("POST", INSTANCES)]
    assert len(set(ids)) == 2


def test_retry_after_is_honoured(api):
    api.add("GET", INSTANCES, Reply(429, error_body(429, "rateLimitExceeded"), {"Retry-After": "1"}),
            Reply(200, {"items": []}))
    started = time.monotonic()
    assert list(client_for(api).list("zones/%s/instances" % ZONE)) == []
    gets = api.calls("GET", INSTANCES)
    assert len(gets) == 2
    assert gets[1]["time"] - gets[0]["time"] >= 0.95
    assert time.monotonic() - started < 5


def test_403_rate_limit_reason_is_retried_but_plain_403_is_not(api):
    api.add("GET", INSTANCES + "/a", Reply(403, error_body(403, "userRateLimitExceeded")), Reply(200, {"name": "a"}))
    api.add("GET", INSTANCES + "/b", Reply(403, error_body(403, "forbidden", "Required permission")))
    client = client_for(api)
    assert client.get("zones/%s/instances/a" % ZONE) == {"name": "a"}
    with pytest.raises(GceError) as caught:
        client.get("zones/%s/instances/b" % ZONE)
    assert caught.value.code == 403 and caught.value.reason == "forbidden"
    assert "Required permission" in caught.value.message
    assert caught.value.body["error"]["code"] == 403
    assert len(api.calls("GET", INSTANCES + "/b")) == 1


def test_attempts_are_bounded(api):
    api.add("GET", INSTANCES, Reply(503, error_body(503, "backendError", "try later")))
    with pytest.raises(GceError) as caught:
        list(client_for(api, max_attempts=4).list("zones/%s/instances" % ZONE))
    assert caught.value.code == 503 and caught.value.details["attempts"] == 4
    assert len(api.calls("GET", INSTANCES)) == 4


def test_total_retry_time_is_bounded(api):
    api.add("GET", INSTANCES, Reply(503, error_body(503, "backendError"), {"Retry-After": "2"}))
    started = time.monotonic()
    with pytest.raises(GceError):
        client_for(api, max_attempts=50, retry_budget=3).get("zones/%s/instances" % ZONE)
    assert time.monotonic() - started < 4
    assert 2 <= len(api.calls("GET", INSTANCES)) <= 3


def test_not_found_is_none_for_get_or_none(api):
    assert client_for(api).get_or_none("zones/%s/instances/missing" % ZONE) is None


def test_list_follows_page_tokens(api):
    api.add("GET", INSTANCES,
            Reply(200, {"items": [{"name": "a"}, {"name": "b"}], "nextPageToken": "p2"}),
            Reply(200, {"items": [{"name": "c"}], "nextPageToken": "p3"}),
            Reply(200, {"items": [{"name": "d"}]}))
    names = [i["name"] for i in client_for(api).list("zones/%s/instances" % ZONE, {"maxResults": 2})]
    assert names == ["a", "b", "c", "d"]
    queries = [c["query"] for c in api.calls("GET", INSTANCES)]
    assert [q.get("pageToken") for q in queries] == [None, "p2", "p3"]
    assert all(q["maxResults"] == "2" for q in queries)


def test_aggregated_list_skips_warning_scopes(api):
    path = "projects/%s/aggregated/instances" % PROJECT
    api.add("GET", path,
            Reply(200, {"items": {
                "zones/us-central1-a": {"instances": [{"name": "a"}]},
                "zones/us-east1-b": {"warning": {"code": "NO_RESULTS_ON_PAGE", "message": "none"}},
            }, "nextPageToken": "t"}),
            Reply(200, {"items": {"zones/europe-west1-b": {"instances": [{"name": "b"}, {"name": "c"}]}}}))
    found = list(client_for(api).aggregated("instances", {"filter": 'labels.fleet = "x"'}))
    assert found == [("zones/us-central1-a", {"name": "a"}), ("zones/europe-west1-b", {"name": "b"}),
                     ("zones/europe-west1-b", {"name": "c"})]
    assert [c["query"].get("filter") for c in api.calls("GET", path)] == ['labels.fleet = "x"'] * 2


def test_wait_long_polls_until_done(api):
    wait = "projects/%s/zones/%s/operations/op-2/wait" % (PROJECT, ZONE)
    api.add("POST", INSTANCES, Reply(200, operation("op-2", "PENDING")))
    api.add("POST", wait, Reply(200, operation("op-2", "RUNNING"), delay=0.2), Reply(200, operation("op-2", "DONE"), delay=0.2))
    done = client_for(api).mutate("POST", "zones/%s/instances" % ZONE, body={"name": "gi-x"})
    assert done["status"] == "DONE"
    waits = api.calls("POST", wait)
    assert len(waits) == 2
    # operations.wait changes nothing and takes no requestId.
    assert all("requestId" not in w["query"] for w in waits)


def test_done_operation_with_error_raises_its_reason(api):
    wait = "projects/%s/zones/%s/operations/op-3/wait" % (PROJECT, ZONE)
    api.add("POST", INSTANCES, Reply(200, operation("op-3", "RUNNING")))
    api.add("POST", wait, Reply(200, operation("op-3", "DONE", error="ZONE_RESOURCE_POOL_EXHAUSTED")))
    with pytest.raises(GceError) as caught:
        client_for(api).mutate("POST", "zones/%s/instances" % ZONE, body={"name": "gi-x"})
    assert caught.value.reason == "ZONE_RESOURCE_POOL_EXHAUSTED"
    assert "ZONE_RESOURCE_POOL_EXHAUSTED" in caught.value.message
    assert caught.value.body["name"] == "op-3"


def test_operation_returned_done_with_error_at_once_also_raises(api):
    api.add("POST", INSTANCES, Reply(200, operation("op-4", "DONE", error="QUOTA_EXCEEDED")))
    with pytest.raises(GceError) as caught:
        client_for(api).mutate("POST", "zones/%s/instances" % ZONE, body={"name": "gi-x"})
    assert caught.value.reason == "QUOTA_EXCEEDED"


def test_wait_stops_at_the_deadline(api):
    wait = "projects/%s/zones/%s/operations/op-5/wait" % (PROJECT, ZONE)
    api.add("POST", INSTANCES, Reply(200, operation("op-5", "RUNNING")))
    api.add("POST", wait, Reply(200, operation("op-5", "RUNNING"), delay=0.3))
    started = time.monotonic()
    with pytest.raises(GceError) as caught:
        client_for(api, wait_timeout=1).mutate("POST", "zones/%s/instances" % ZONE, body={})
    assert caught.value.reason == "waitTimeout"
    assert 1 <= time.monotonic() - started < 2.5


def test_regional_and_global_operations_wait_in_their_scope(api):
    regional = operation("op-r", "RUNNING")
    del regional["zone"]
    regional["region"] = "https://x/compute/v1/projects/%s/regions/us-central1" % PROJECT
    api.add("POST", "projects/%s/regions/us-central1/operations/op-r/wait" % PROJECT, Reply(200, dict(regional, status="DONE")))
    glob = operation("op-g", "RUNNING")
    del glob["zone"]
    api.add("POST", "projects/%s/global/operations/op-g/wait" % PROJECT, Reply(200, dict(glob, status="DONE")))
    client = client_for(api)
    assert client.wait(regional)["status"] == "DONE"
    assert client.wait(glob)["status"] == "DONE"


def test_one_session_keeps_the_connection_alive(api):
    api.add("GET", INSTANCES + "/a", Reply(200, {"name": "a"}))
    client = client_for(api)
    for dummy in range(5):
        client.get("zones/%s/instances/a" % ZONE)
    calls = api.calls("GET")
    assert len({c["port"] for c in calls}) == 1
    assert all(c["headers"]["authorization"] == "Bearer tok" for c in calls)


def test_endpoint_from_environment(api, monkeypatch):
    monkeypatch.setenv("GCP_COMPUTE_ENDPOINT", api.endpoint)
    api.add("GET", INSTANCES + "/a", Reply(200, {"name": "a"}))
    client = GceClient(PROJECT, auth_kind="accesstoken", access_token="tok")
    assert client.get("zones/%s/instances/a" % ZONE) == {"name": "a"}


def test_unreachable_endpoint_is_a_clear_error():
    client = GceClient(PROJECT, access_token="tok", endpoint="http://127.0.0.1:9/compute/v1/",
                       max_attempts=2, backoff_base=0.01)
    with pytest.raises(GceError) as caught:
        client.get("zones")
    assert caught.value.reason == "connectionError"


def _service_account_key(api, tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    info = {"type": "service_account", "project_id": PROJECT, "private_key_id": "k1", "private_key": pem,
            "client_email": "fleet@%s.iam.gserviceaccount.com" % PROJECT, "client_id": "1",
            "token_uri": api.root + "/token",
            # Outside the default universe google-auth skips its access-boundary lookup, which would
            # otherwise call iamcredentials.googleapis.com: the test stays on loopback.
            "universe_domain": "fleet.test"}
    path = tmp_path / "sa.json"
    path.write_text(json.dumps(info))
    return path, info


@pytest.mark.parametrize("source", ["file", "contents", "adc"])
def test_service_account_token_is_fetched_once_and_reused(api, tmp_path, monkeypatch, source):
    path, info = _service_account_key(api, tmp_path)
    api.add("POST", "/token", Reply(200, {"access_token": "sa-token", "expires_in": 3600, "token_type": "Bearer"}))
    api.add("GET", INSTANCES + "/a", Reply(200, {"name": "a"}))
    if source == "file":
        client = GceClient(PROJECT, auth_kind="serviceaccount", service_account_file=str(path), endpoint=api.endpoint)
    elif source == "contents":
        client = GceClient(PROJECT, auth_kind="serviceaccount", service_account_contents=json.dumps(info),
                           endpoint=api.endpoint)
    else:
        monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(path))
        client = GceClient(PROJECT, auth_kind="application", endpoint=api.endpoint)
    for dummy in range(3):
        client.get("zones/%s/instances/a" % ZONE)
    # Outside the default universe google-auth signs its own JWT instead of calling token_uri.
    assert api.calls("POST", "/token") == []
    headers = {c["headers"]["authorization"] for c in api.calls("GET")}
    assert len(headers) == 1, "one token, reused for every call"
    claims = json.loads(base64.urlsafe_b64decode(headers.pop().split()[1].split(".")[1] + "=="))
    assert claims["iss"] == info["client_email"]
    assert claims.get("scope") == "https://www.googleapis.com/auth/compute", claims


def test_missing_credentials_names_the_three_ways():
    with pytest.raises(FleetError) as caught:
        GceClient(PROJECT, auth_kind="accesstoken")
    assert caught.value.message == MISSING_CREDENTIALS
    for way in ("service_account_file", "access_token", "auth_kind=application"):
        assert way in MISSING_CREDENTIALS


def test_missing_application_default_credentials(tmp_path):
    # A fresh interpreter: google-auth reads NO_GCE_CHECK at import (no metadata-server probe).
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GOOGLE_", "GCP_", "CLOUDSDK_"))}
    env.update(NO_GCE_CHECK="True", CLOUDSDK_CONFIG=str(tmp_path), HOME=str(tmp_path),
               PYTHONPATH=str(pathlib.Path(__file__).resolve().parents[4] / "build" / "collections"))
    code = (
        "from ansible_collections.containarium.fleet.plugins.module_utils.gce import GceClient\n"
        "from ansible_collections.containarium.fleet.plugins.module_utils.fleet_module import FleetError\n"
        "try:\n    GceClient('p', auth_kind='application')\n"
        "except FleetError as e:\n    print(e.message)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.startswith("no Google credentials: supply them in one of three ways")
