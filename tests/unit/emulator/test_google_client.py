"""Google's own client library (static discovery document) works against the emulator unchanged."""
from __future__ import annotations

import google.oauth2.credentials
import pytest
from googleapiclient import discovery
from googleapiclient.errors import HttpError

from emulator.conftest import instance_body

ZONE = "europe-west1-b"


@pytest.fixture
def compute(api):
    creds = google.oauth2.credentials.Credentials(token="fake-token")
    return discovery.build("compute", "v1", credentials=creds, static_discovery=True,
                           client_options={"api_endpoint": api.base + "compute/v1/"}, cache_discovery=False)


def test_google_client_create_list_wait_delete(compute, api):
    op = compute.instances().insert(project=api.project, zone=ZONE, body=instance_body("emu-g", zone=ZONE),
                                    requestId="0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0").execute()
    while op["status"] != "DONE":
        op = compute.zoneOperations().wait(project=api.project, zone=ZONE, operation=op["name"]).execute()
    assert "error" not in op

    listed = compute.instances().list(project=api.project, zone=ZONE, filter="status = RUNNING").execute()
    assert [i["name"] for i in listed["items"]] == ["emu-g"]

    request = compute.instances().aggregatedList(project=api.project, maxResults=1)
    found = []
    while request is not None:
        page = request.execute()
        found += [i["name"] for scope in page["items"].values() for i in scope.get("instances", [])]
        request = compute.instances().aggregatedList_next(request, page)
    assert found == ["emu-g"]

    op = compute.instances().delete(project=api.project, zone=ZONE, instance="emu-g").execute()
    op = compute.zoneOperations().wait(project=api.project, zone=ZONE, operation=op["name"]).execute()
    assert op["status"] == "DONE"
    with pytest.raises(HttpError) as caught:
        compute.instances().get(project=api.project, zone=ZONE, instance="emu-g").execute()
    assert caught.value.resp.status == 404 and caught.value.error_details[0]["reason"] == "notFound"


def test_google_client_base_endpoint_without_service_path(api):
    """The brief's form: api_endpoint = the bare emulator address (paths arrive as /projects/...)."""
    creds = google.oauth2.credentials.Credentials(token="fake-token")
    compute = discovery.build("compute", "v1", credentials=creds, static_discovery=True,
                              client_options={"api_endpoint": api.base}, cache_discovery=False)
    zones = compute.zones().list(project=api.project).execute()
    assert len(zones["items"]) == 25
    mt = compute.machineTypes().get(project=api.project, zone=ZONE, machineType="e2-medium").execute()
    assert mt["memoryMb"] == 4096
