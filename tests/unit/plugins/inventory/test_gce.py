"""containarium.fleet.gce inventory, run by ansible-inventory against a scripted local Compute API."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest
from gce_scripted_api import Reply, ScriptedApi, error_body

REPO = pathlib.Path(__file__).resolve().parents[4]
AGGREGATED = "projects/%s/aggregated/instances"


def instance(name, zone, labels=None, public_ip=None, private_ip="10.0.0.2", status="RUNNING", spot=False, tags=()):
    access = [{"type": "ONE_TO_ONE_NAT", "natIP": public_ip}] if public_ip else []
    return {
        "kind": "compute#instance", "name": name, "status": status, "labels": labels or {},
        "zone": "https://compute.googleapis.com/compute/v1/projects/p/zones/%s" % zone,
        "machineType": "https://compute.googleapis.com/compute/v1/projects/p/zones/%s/machineTypes/e2-small" % zone,
        "networkInterfaces": [{"networkIP": private_ip, "accessConfigs": access}],
        "scheduling": {"provisioningModel": "SPOT"} if spot else {},
        "tags": {"items": list(tags)},
    }


FLEET = [
    instance("gi-jump-a", "us-central1-a", {"fleet-role": "jump", "role": "jump"}, public_ip="203.0.113.5", tags=["jump"]),
    instance("gi-jump-b", "europe-west1-b", {"fleet-role": "jump", "role": "jump"}, public_ip="203.0.113.6"),
    instance("gi-back-1", "us-central1-a", {"role": "backend"}, private_ip="10.0.0.11", spot=True),
    instance("gi-back-2", "europe-west1-b", {"role": "backend"}, private_ip="10.0.0.12", status="TERMINATED"),
    instance("gi-back-3", "asia-east1-a", {"role": "backend"}, private_ip="10.0.0.13"),
]


@pytest.fixture
def api():
    server = ScriptedApi()
    yield server
    server.close()


def script_pages(api, project="p", fleet=tuple(FLEET)):
    """Two pages: the first with two zones and an empty-zone warning, the second with the rest."""
    by_zone = {}
    for item in fleet:
        by_zone.setdefault("zones/" + item["zone"].rsplit("/", 1)[1], []).append(item)
    scopes = sorted(by_zone)
    first = {s: {"instances": by_zone[s]} for s in scopes[:2]}
    first["zones/us-west1-a"] = {"warning": {"code": "NO_RESULTS_ON_PAGE", "message": "none"}}
    second = {s: {"instances": by_zone[s]} for s in scopes[2:]}
    api.add("GET", AGGREGATED % project,
            Reply(200, {"items": first, "nextPageToken": "page-2"}), Reply(200, {"items": second}))


def run_inventory(api, tmp_path, config, *args, check=True):
    path = tmp_path / "fleet.gce.yml"
    base = {"plugin": "containarium.fleet.gce", "projects": ["p"], "endpoint": api.endpoint,
            "auth_kind": "accesstoken", "access_token": "inventory-token"}
    base.update(config)
    path.write_text(json.dumps(base))
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_INVENTORY_UNPARSED_FAILED="true",
               ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED="true", ANSIBLE_NOCOLOR="1")
    proc = subprocess.run([str(pathlib.Path(sys.executable).parent / "ansible-inventory"), "-i", str(path),
                           "--list", *args], cwd=REPO, env=env, capture_output=True, text=True, check=False)
    if check:
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout, object_hook=_trusted)
    return proc


def _trusted(obj):
    """ansible-inventory marks strings that came from the API as unsafe (never templated); unwrap them."""
    return obj["__ansible_unsafe"] if set(obj) == {"__ansible_unsafe"} else obj


def test_one_paged_aggregated_list_with_server_side_filter(api, tmp_path):
    script_pages(api)
    inv = run_inventory(api, tmp_path, {"labels": {"fleet": "gi"}, "filters": ['status = "RUNNING"']})
    calls = api.requests
    assert [c["path"] for c in calls] == ["/compute/v1/" + AGGREGATED % "p"] * 2
    assert calls[0]["query"]["filter"] == '(labels.fleet = "gi") (status = "RUNNING")'
    assert calls[0]["query"]["maxResults"] == "500"
    assert calls[1]["query"]["pageToken"] == "page-2"
    assert calls[0]["headers"]["authorization"] == "Bearer inventory-token"
    hostvars = inv["_meta"]["hostvars"]
    assert set(hostvars) == {"203.0.113.5", "203.0.113.6", "10.0.0.11", "10.0.0.12", "10.0.0.13"}
    back = hostvars["10.0.0.11"]
    assert back["gce_name"] == "gi-back-1" and back["gce_zone"] == "us-central1-a"
    assert back["gce_spot"] is True and back["gce_status"] == "RUNNING"
    assert back["gce_machine_type"] == "e2-small" and back["gce_public_ip"] is None
    assert hostvars["203.0.113.5"]["gce_tags"] == ["jump"]
    assert all(k.startswith("gce_") or k in ("ansible_host", "ansible_ssh_common_args") for hv in hostvars.values() for k in hv)


def test_hostnames_zones_keyed_groups_and_proxyjump(api, tmp_path):
    script_pages(api)
    inv = run_inventory(api, tmp_path, {
        "hostnames": ["name"],
        "zones": ["us-central1-a", "europe-west1-b"],
        "keyed_groups": [{"key": "gce_labels.role", "prefix": "role"},
                         {"key": "gce_labels['fleet-role']", "prefix": "fleet"},
                         {"key": "gce_zone | replace('-', '_')", "prefix": "zone"}],
        "groups": {"spot": "gce_spot"},
        "jump_label": "fleet-role=jump",
        "jump_user": "admin",
    })
    hostvars = inv["_meta"]["hostvars"]
    assert set(hostvars) == {"gi-jump-a", "gi-jump-b", "gi-back-1", "gi-back-2"}  # asia-east1-a left out
    assert sorted(inv["role_backend"]["hosts"]) == ["gi-back-1", "gi-back-2"]
    assert sorted(inv["role_jump"]["hosts"]) == ["gi-jump-a", "gi-jump-b"]
    assert sorted(inv["fleet_jump"]["hosts"]) == ["gi-jump-a", "gi-jump-b"]
    assert inv["zone_us_central1_a"]["hosts"] == ["gi-back-1", "gi-jump-a"] or \
        sorted(inv["zone_us_central1_a"]["hosts"]) == ["gi-back-1", "gi-jump-a"]
    assert inv["spot"]["hosts"] == ["gi-back-1"]
    # Private hosts jump through the jump server of their own zone; jump servers need none.
    assert hostvars["gi-back-1"]["ansible_ssh_common_args"] == "-o ProxyJump=admin@203.0.113.5"
    assert hostvars["gi-back-2"]["ansible_ssh_common_args"] == "-o ProxyJump=admin@203.0.113.6"
    assert "ansible_ssh_common_args" not in hostvars["gi-jump-a"]
    assert hostvars["gi-back-1"]["ansible_host"] == "10.0.0.11"


def test_jump_group_chooses_the_jump_server(api, tmp_path):
    script_pages(api)
    inv = run_inventory(api, tmp_path, {
        "hostnames": ["name"], "keyed_groups": [{"key": "gce_labels.role", "prefix": "role"}],
        "jump_group": "role_jump",
    })
    hostvars = inv["_meta"]["hostvars"]
    # No jump server in asia-east1-a: the first one by name.
    assert hostvars["gi-back-3"]["ansible_ssh_common_args"] == "-o ProxyJump=203.0.113.5"
    assert hostvars["gi-back-2"]["ansible_ssh_common_args"] == "-o ProxyJump=203.0.113.6"


def test_strict_fails_on_a_missing_key(api, tmp_path):
    script_pages(api)
    config = {"hostnames": ["name"], "keyed_groups": [{"key": "gce_labels.owner", "prefix": "owner"}]}
    assert "owner" not in json.dumps(run_inventory(api, tmp_path, config))
    proc = run_inventory(api, tmp_path, dict(config, strict=True), check=False)
    assert proc.returncode != 0 and "gce_labels.owner" in proc.stderr


def test_cache_is_read_before_any_call(api, tmp_path):
    script_pages(api)
    cache = {"cache": True, "cache_plugin": "ansible.builtin.jsonfile",
             "cache_connection": str(tmp_path / "cache"), "cache_timeout": 600, "hostnames": ["name"]}
    first = run_inventory(api, tmp_path, cache)
    assert len(api.requests) == 2
    second = run_inventory(api, tmp_path, cache)
    assert len(api.requests) == 2, "the cached run made API calls"
    assert first["_meta"] == second["_meta"]
    script_pages(api)
    run_inventory(api, tmp_path, cache, "--flush-cache")
    assert len(api.requests) == 4


def test_unknown_project_fails_loudly(api, tmp_path):
    api.add("GET", AGGREGATED % "gone", Reply(404, error_body(404, "notFound", "The resource 'projects/gone' was not found")))
    proc = run_inventory(api, tmp_path, {"projects": ["gone"]}, check=False)
    assert proc.returncode != 0
    assert "cannot list the instances of project gone" in proc.stderr
    assert "was not found" in proc.stderr


def test_timeout_fails_loudly(api, tmp_path):
    api.add("GET", AGGREGATED % "slow", Reply(200, {"items": {}}, delay=3))
    proc = run_inventory(api, tmp_path, {"projects": ["slow"], "timeout": 1}, check=False)
    assert proc.returncode != 0
    assert "project slow" in proc.stderr and "timed out" in proc.stderr


def test_second_project_failure_is_not_hidden_by_the_first(api, tmp_path):
    script_pages(api)
    api.add("GET", AGGREGATED % "q", Reply(403, error_body(403, "forbidden", "Compute Engine API has not been used")))
    proc = run_inventory(api, tmp_path, {"projects": ["p", "q"]}, check=False)
    assert proc.returncode != 0 and "project q" in proc.stderr


def test_plain_keyed_groups_name_groups_as_constructable_does(api, tmp_path):
    """The fast path (plain keys) and the templated path (same value as an expression) agree."""
    script_pages(api)
    inv = run_inventory(api, tmp_path, {
        "hostnames": ["name"],
        "keyed_groups": [
            {"key": "gce_machine_type", "prefix": "fast", "separator": "-"},
            {"key": "gce_machine_type ~ ''", "prefix": "slow", "separator": "-"},
            {"key": "gce_status", "prefix": ""},
            {"key": "gce_tags", "prefix": "tag"},  # a list: Constructable's own rules
        ],
    })
    fast = {g[len("fast"):]: sorted(v["hosts"]) for g, v in inv.items() if g.startswith("fast")}
    slow = {g[len("slow"):]: sorted(v["hosts"]) for g, v in inv.items() if g.startswith("slow")}
    assert fast and fast == slow
    assert sorted(inv["_RUNNING"]["hosts"]) == ["gi-back-1", "gi-back-3", "gi-jump-a", "gi-jump-b"]
    assert inv["tag_jump"]["hosts"] == ["gi-jump-a"]
