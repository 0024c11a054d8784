"""The validator itself: it must reject what GCE would never send."""
from __future__ import annotations

import pytest

from emulator import discovery_schema
from emulator.discovery_schema import SchemaError


def test_conforming_body_passes():
    discovery_schema.validate("Instance", {
        "name": "a", "id": "123", "status": "RUNNING", "labels": {"k": "v"},
        "disks": [{"boot": True, "diskSizeGb": "10", "initializeParams": {"sourceImage": "x"}}],
        "scheduling": {"provisioningModel": "SPOT", "preemptible": False}})


@pytest.mark.parametrize("body, fragment", [
    ({"name": "a", "bogus": 1}, "unknown field 'bogus'"),
    ({"id": 123}, "$.id: expected string"),
    ({"id": "12x"}, "decimal uint64"),
    ({"status": "SLEEPING"}, "'SLEEPING' is not one of"),
    ({"disks": [{"boot": "yes"}]}, "$.disks[0].boot: expected boolean"),
    ({"disks": [{"initializeParams": {"diskSizeGb": 10}}]}, "$.disks[0].initializeParams.diskSizeGb"),
    ({"labels": {"k": 1}}, "$.labels['k']: expected string"),
    ({"networkInterfaces": {"nic0": {}}}, "$.networkInterfaces: expected array"),
])
def test_mismatches_are_reported_with_their_path(body, fragment):
    with pytest.raises(SchemaError) as caught:
        discovery_schema.validate("Instance", body)
    assert any(fragment in p for p in caught.value.problems), caught.value.problems


def test_method_lookup_and_request_validation():
    assert discovery_schema.method_for("GET", "projects/p/aggregated/instances")["id"] == "compute.instances.aggregatedList"
    assert discovery_schema.method_for("POST", "https://h/compute/v1/projects/p/zones/z/instances/i/setMachineType?x=1")[
        "id"] == "compute.instances.setMachineType"
    discovery_schema.validate_request("POST", "projects/p/zones/z/instances/i/setLabels",
                                      {"labels": {}, "labelFingerprint": "abc="})
    with pytest.raises(SchemaError):
        discovery_schema.validate_request("POST", "projects/p/zones/z/instances/i/setLabels", {"fingerprint": "x"})
    with pytest.raises(KeyError):
        discovery_schema.method_for("GET", "projects/p/zones/z/gadgets")
