"""deployment_specs and deployment_plan: validation, reconcile arithmetic, placement with headroom."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.containarium.fleet.plugins.filter.deployment import (
    allocated_cpu,
    deployment_plan,
    deployment_specs,
)

GIB = 1024 ** 3


def spec(**overrides):
    base = {"name": "web", "image": "web-v1", "replicas": 3, "cpu": 0.5, "memory": "256MiB",
            "health_check": {"type": "http", "port": 8000}}
    base.update(overrides)
    return deployment_specs([base])


def backend(name, cpus=4, mem_gib=8, used_gib=1, instances=()):
    memory = {"total_bytes": mem_gib * GIB, "used_bytes": used_gib * GIB}
    return {"name": name, "host": {"cpu": {"total": cpus}, "memory": memory}, "instances": list(instances)}


def replica(specs, index, status="Running", ipv4="10.0.3.9", **config):
    checked = specs[0]
    conf = dict(checked["template"], **{"user.fleet.replica": str(index)})
    conf.update(config)
    return {"name": "%s-%d" % (checked["name"], index), "status": status, "ipv4": ipv4, "config": conf}


def names(entries):
    return [(e["name"], e["backend"]) for e in entries]


# -- specs ---------------------------------------------------------------------------------------

def test_defaults_are_filled_in():
    checked = deployment_specs([{"name": "api", "image": "fleet-base", "health_check": {"type": "tcp", "port": 22}}])[0]
    assert checked["replicas"] == 1 and checked["cpu"] == 1 and checked["memory"] == 512 * 1024 ** 2
    assert checked["health_check"] == {"type": "tcp", "port": 22, "path": "/", "interval": 10, "timeout": 5,
                                       "unhealthy_threshold": 3}
    assert checked["template"]["limits.cpu"] == "1" and checked["template"]["limits.memory"] == "512MiB"
    assert checked["template"]["user.fleet.deployment"] == "api"
    assert checked["paused"] is False and checked["state"] == "present"


def test_ingress_port_is_carried_by_the_replicas_and_only_changes_the_template_when_given():
    plain, served = spec()[0], spec(ingress_port=8000)[0]
    assert "user.fleet.ingress" not in plain["template"]
    assert served["template"]["user.fleet.ingress"] == "web:8000" and served["ingress_port"] == 8000
    assert served["template_hash"] != plain["template_hash"]


def test_fractional_cpu_is_a_hard_allowance_and_counts_back():
    template = spec(cpu=0.25)[0]["template"]
    assert template["limits.cpu"] == "1" and template["limits.cpu.allowance"] == "25ms/100ms"
    assert allocated_cpu(template) == 0.25
    assert allocated_cpu({"limits.cpu": "0-2"}) == 3 and allocated_cpu({"limits.cpu": "2"}) == 2
    assert allocated_cpu({}) == 0


@pytest.mark.parametrize("bad, message", [
    ({"replicas": -1}, "replicas must be >= 0, got -1"),
    ({"health_check": {"type": "udp", "port": 1}}, "health_check type must be one of tcp, http, process, got 'udp'"),
    ({"image": None}, "image is required"),
    ({"name": None}, "deployments[0]: name is required"),
    ({"name": "Web_1"}, "RFC 1035"),
    ({"health_check": {"type": "http"}}, "port (needed by http)"),
    ({"health_check": {"type": "process"}}, "needs process"),
    ({"health_check": {"type": "tcp", "port": 80, "interval": 0}}, "interval must be >= 1"),
    ({"replica": 2}, "unknown keys replica"),
    ({"config": {"limits.cpu": "4"}}, "config keys limits.cpu are set by the deployment"),
    ({"config": {"user.fleet.replica": "1"}}, "user.fleet.replica"),
    ({"memory": "lots"}, "memory 'lots' is not a size"),
    ({"cpu": 0}, "cpu must be a number > 0"),
    ({"ingress_port": 70000}, "ingress_port must be <= 65535"),
    ({"ingress_port": "http"}, "ingress_port must be an integer"),
])
def test_bad_input_is_refused_with_the_reason(bad, message):
    with pytest.raises(AnsibleFilterError) as raised:
        spec(**bad)
    assert message in str(raised.value) and "nothing was changed" in str(raised.value)


def test_every_problem_is_reported_at_once_and_names_are_unique():
    with pytest.raises(AnsibleFilterError) as raised:
        deployment_specs([{"name": "a", "image": "x", "replicas": -2}, {"name": "b"},
                          {"name": "c", "image": "x"}, {"name": "c", "image": "y"}])
    text = str(raised.value)
    assert "deployment a: replicas" in text and "deployment b: image is required" in text
    assert "deployment c is given more than once" in text


def test_absent_needs_no_image_and_memory_numbers_are_mib():
    checked = deployment_specs([{"name": "old", "state": "absent"}, {"name": "m", "image": "i", "memory": 1024}])
    assert checked[0]["state"] == "absent" and checked[1]["memory"] == GIB


def test_template_hash_follows_image_and_config():
    first = spec()[0]["template_hash"]
    assert spec()[0]["template_hash"] == first
    assert spec(image="web-v2")[0]["template_hash"] != first
    assert spec(config={"limits.processes": 100})[0]["template_hash"] != first
    assert spec(labels={"tier": "front"})[0]["template"]["user.fleet.label.tier"] == "front"


# -- plan ----------------------------------------------------------------------------------------

def test_fresh_deployment_spreads_over_backends():
    plan = deployment_plan(spec(), [backend("b1"), backend("b2")])
    assert names(plan["create"]) == [("web-1", "b1"), ("web-2", "b2"), ("web-3", "b1")]
    first = plan["create"][0]
    assert first["config"]["user.fleet.replica"] == "1" and first["config"]["user.fleet.deployment"] == "web"
    assert first["image"] == "web-v1" and first["state"] == "started"
    assert plan["remove"] == plan["replace"] == plan["power"] == plan["check"] == []


def test_converged_deployment_only_checks_health():
    specs = spec()
    plan = deployment_plan(specs, [backend("b1", instances=[replica(specs, 1), replica(specs, 3)]),
                                   backend("b2", instances=[replica(specs, 2)])])
    assert plan["create"] == plan["remove"] == plan["replace"] == plan["power"] == []
    assert names(plan["check"]) == [("web-1", "b1"), ("web-2", "b2"), ("web-3", "b1")]
    assert plan["check"][0]["ipv4"] == "10.0.3.9" and plan["check"][0]["health_check"]["port"] == 8000
    assert plan["check"][0]["config"]["user.fleet.replica"] == "1" and plan["check"][0]["image"] == "web-v1"


def test_scale_down_removes_the_highest_indices():
    specs = spec(replicas=1)
    plan = deployment_plan(specs, [backend("b1", instances=[replica(specs, 1), replica(specs, 3)]),
                                   backend("b2", instances=[replica(specs, 2)])])
    assert sorted(names(plan["remove"])) == [("web-2", "b2"), ("web-3", "b1")]
    assert names(plan["check"]) == [("web-1", "b1")]
    assert plan["summary"]["web"]["desired"] == 1


def test_scale_up_fills_the_gaps_and_keeps_what_exists():
    specs = spec(replicas=4)
    plan = deployment_plan(specs, [backend("b1", instances=[replica(specs, 1)]), backend("b2", instances=[replica(specs, 2)])])
    assert [e["name"] for e in plan["create"]] == ["web-3", "web-4"]
    assert {e["backend"] for e in plan["create"]} == {"b1", "b2"}


def test_absent_and_zero_replicas_remove_everything():
    specs = spec()
    world = [backend("b1", instances=[replica(specs, 1), replica(specs, 2)])]
    for gone in (deployment_specs([{"name": "web", "state": "absent"}]), spec(replicas=0)):
        assert [e["name"] for e in deployment_plan(gone, world)["remove"]] == ["web-1", "web-2"]


def test_other_instances_are_left_alone_but_a_stranger_with_a_replica_name_stops_the_plan():
    specs = spec(replicas=1)
    user = {"name": "alice-container", "status": "Running", "config": {"limits.cpu": "1"}}
    plan = deployment_plan(specs, [backend("b1", instances=[user])])
    assert names(plan["create"]) == [("web-1", "b1")] and plan["remove"] == []
    squatter = {"name": "web-1", "status": "Running", "config": {}}
    with pytest.raises(AnsibleFilterError, match="instance web-1 on b2 is not a replica of it"):
        deployment_plan(specs, [backend("b1"), backend("b2", instances=[squatter])])


def test_duplicate_index_is_removed():
    specs = spec(replicas=1)
    plan = deployment_plan(specs, [backend("b1", instances=[replica(specs, 1)]), backend("b2", instances=[replica(specs, 1)])])
    assert names(plan["remove"]) == [("web-1", "b2")] and plan["create"] == []


def test_pause_stops_and_resume_starts():
    paused = spec(paused=True)
    running = [backend("b1", instances=[replica(paused, 1), replica(paused, 2, status="Stopped")])]
    plan = deployment_plan(paused, running)
    assert [(e["name"], e["state"]) for e in plan["power"]] == [("web-1", "stopped")]
    assert plan["check"] == [] and plan["create"][0]["state"] == "stopped"
    resumed = spec()
    plan = deployment_plan(resumed, [backend("b1", instances=[replica(resumed, 1, status="Stopped"),
                                                              replica(resumed, 2, status="Frozen")])])
    assert [(e["name"], e["state"]) for e in plan["power"]] == [("web-1", "started"), ("web-2", "started")]


def test_changed_image_replaces_replicas_in_index_order():
    old = spec(replicas=2)
    world = [backend("b1", instances=[replica(old, 2), replica(old, 1)])]
    new = spec(replicas=2, image="web-v2")
    plan = deployment_plan(new, world)
    assert [e["name"] for e in plan["replace"]] == ["web-1", "web-2"]
    assert plan["replace"][0]["config"]["user.fleet.image"] == "web-v2"
    assert plan["replace"][0]["health_check"]["type"] == "http"
    assert plan["check"] == [] and plan["power"] == []


def test_no_room_fails_before_anything_with_every_backend_reason():
    with pytest.raises(AnsibleFilterError) as raised:
        deployment_plan(spec(replicas=3, cpu=2), [backend("b1", cpus=4), backend("b2", cpus=2)])
    text = str(raised.value)
    assert "deployment web: no backend has room for replica web-" in text and "nothing was changed" in text
    assert "b2: CPU would be 100% allocated (limit 80%)" in text


def test_headroom_counts_existing_instances_and_the_plan_itself():
    # 2 CPUs, 80 % usable = 1.6: a user container with 1 CPU leaves room for one replica of 0.5.
    user = {"name": "alice-container", "status": "Running", "config": {"limits.cpu": "1"}}
    plan = deployment_plan(spec(replicas=1), [backend("b1", cpus=2, instances=[user])])
    assert names(plan["create"]) == [("web-1", "b1")]
    with pytest.raises(AnsibleFilterError, match="CPU would be 100% allocated"):
        deployment_plan(spec(replicas=2), [backend("b1", cpus=2, instances=[user])])
    # Memory limits of running instances count when above what the host reports as used.
    big = {"name": "db", "status": "Running", "config": {"limits.memory": "7GiB"}}
    with pytest.raises(AnsibleFilterError, match="memory would be"):
        deployment_plan(spec(replicas=1), [backend("b1", mem_gib=8, used_gib=1, instances=[big])])
