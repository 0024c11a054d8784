"""deploy.yml on the sandbox fleet: replicas across backends, health checks that heal, pause, scale, roll.

Every assertion reads the backends' own Incus (``incus list`` inside each backend VM) or reaches the
replicas over HTTP from their backend; the playbook's output is only used to tell what it did.
The workload is an image built here on each backend: fleet-base with a systemd unit serving
``python3 -m http.server 8000``; a second alias of it stands for a new version (rolling update).
"""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from sandbox_fleet import BIN, REPO

IMAGE, IMAGE_V2 = "deploy-web", "deploy-web-v2"
WEB = {"name": "web", "image": IMAGE, "replicas": 3, "cpu": 0.2, "memory": "128MiB", "labels": {"tier": "front"},
       "health_check": {"type": "http", "port": 8000, "path": "/", "interval": 3, "timeout": 2,
                        "unhealthy_threshold": 3}}
UNIT = """[Unit]
Description=Test web server of the deployment test
After=network-online.target
[Service]
ExecStart=/usr/bin/python3 -m http.server 8000 --directory /srv/www
[Install]
WantedBy=multi-user.target
"""


def backends(fleet):
    listed = subprocess.run(["incus", "list", "--format", "csv", "-c", "n"], capture_output=True, text=True,
                            check=True).stdout.split()
    return sorted(name[len("gce-"):] for name in listed if name.startswith("gce-%s-backend-" % fleet.name))


def incus_ok(fleet, vm, *args):
    proc = fleet.host_incus(vm, *args)
    assert proc.returncode == 0, "incus %s on %s: %s" % (" ".join(args), vm, proc.stderr)
    return proc.stdout


def replicas(fleet):
    """{name: {backend, status, uuid, config, ipv4}} of every instance of deployment web on every backend."""
    found = {}
    for vm in backends(fleet):
        for instance in json.loads(incus_ok(fleet, vm, "list", "--format", "json")):
            if instance["config"].get("user.fleet.deployment") != "web":
                continue
            nets = (instance.get("state") or {}).get("network") or {}
            ipv4 = [a["address"] for a in (nets.get("eth0") or {}).get("addresses", []) if a["family"] == "inet"]
            found[instance["name"]] = {"backend": vm, "status": instance["status"], "config": instance["config"],
                                       "uuid": instance["config"].get("volatile.uuid"),
                                       "ipv4": ipv4[0] if ipv4 else None}
    return found


def http_ok(fleet, replica):
    """GET / of the replica's server from its backend (the controller has no route to replicas)."""
    code = ("import urllib.request,sys\ntry:\n print(urllib.request.urlopen('http://%s:8000/', timeout=3).status)\n"
            "except Exception as e:\n print(e)" % replica["ipv4"])
    proc = subprocess.run(["incus", "exec", fleet.vm_container(replica["backend"]), "--", "python3", "-c", code],
                          capture_output=True, text=True, check=False)
    return proc.stdout.strip() == "200"


def deploy(fleet, *specs, check=True):
    return fleet.playbook("deploy.yml", {"deployments": list(specs)}, check=check)


def deploy_check_mode(fleet, *specs):
    """The same run under --check (PlaybookRun has no --check switch; same inventory and environment)."""
    args = [str(BIN / "ansible-playbook"), "-i", str(fleet.inventory), "playbooks/deploy.yml", "--check",
            "-e", json.dumps({"deployments": list(specs)})]
    proc = subprocess.run(args, cwd=REPO, env=fleet.env, capture_output=True,
                          text=True, timeout=900, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    return proc.stdout


def said(run, text):
    """``text`` in the run's output, whatever the YAML callback's line wrapping did to it."""
    return text in " ".join(run.output.split())


def spec(**changes):
    return dict(WEB, **changes)


@pytest.fixture(scope="module")
def fleet(central_fleet, canaries):
    """The central fleet (users' canaries planted) with the test image on every backend; web removed afterwards."""
    for vm in backends(central_fleet):
        if central_fleet.host_incus(vm, "image", "show", IMAGE).returncode == 0:
            continue
        central_fleet.host_incus(vm, "delete", "--force", "deploy-build")
        incus_ok(central_fleet, vm, "launch", "fleet-base", "deploy-build")
        incus_ok(central_fleet, vm, "exec", "deploy-build", "--", "sh", "-c",
                 "mkdir -p /srv/www && echo ok > /srv/www/index.html && cat > /etc/systemd/system/web.service <<'EOF'\n"
                 "%sEOF\n"
                 # a link, not systemctl enable: systemd in a just-started container may not be on the bus yet
                 "mkdir -p /etc/systemd/system/multi-user.target.wants && "
                 "ln -sf ../web.service /etc/systemd/system/multi-user.target.wants/web.service" % UNIT)
        incus_ok(central_fleet, vm, "stop", "deploy-build")
        incus_ok(central_fleet, vm, "publish", "deploy-build", "--alias", IMAGE, "--compression", "none")
        incus_ok(central_fleet, vm, "delete", "deploy-build")
        fingerprint = json.loads(incus_ok(central_fleet, vm, "image", "list", IMAGE, "--format", "json"))[0]["fingerprint"]
        incus_ok(central_fleet, vm, "image", "alias", "create", IMAGE_V2, fingerprint)
    yield central_fleet
    deploy(central_fleet, {"name": "web", "state": "absent"}, check=False)


def test_three_replicas_across_backends_and_healthy(fleet):
    planned = deploy_check_mode(fleet, spec())
    assert "web-1" in planned and replicas(fleet) == {}, "--check created replicas"
    run = deploy(fleet, spec())
    made = replicas(fleet)
    assert sorted(made) == ["web-1", "web-2", "web-3"], made
    assert len({r["backend"] for r in made.values()}) == len(backends(fleet)) == 2, "not spread: %s" % made
    for name, replica in made.items():
        assert replica["status"] == "Running"
        assert replica["config"]["user.fleet.replica"] == name.split("-")[1]
        assert replica["config"]["user.fleet.label.tier"] == "front"
        assert replica["config"]["limits.cpu.allowance"] == "20ms/100ms"
        assert replica["config"]["limits.memory"] == "128MiB"
        assert http_ok(fleet, replica), "%s does not answer HTTP" % name
    assert said(run, "restarted none; recreated none")
    fleet.deploy_uuids = {name: r["uuid"] for name, r in made.items()}


def test_same_spec_again_changes_nothing(fleet):
    run = deploy(fleet, spec())
    assert run.changed == {}, run.tail()
    assert {n: r["uuid"] for n, r in replicas(fleet).items()} == fleet.deploy_uuids


def test_bad_input_fails_before_any_change(fleet):
    before = replicas(fleet)
    for bad, message in (({"replicas": -1}, "replicas must be >= 0, got -1"),
                         ({"health_check": {"type": "icmp"}}, "health_check type must be one of tcp, http, process"),
                         ({"image": None}, "image is required")):
        run = deploy(fleet, spec(**bad), check=False)
        assert run.returncode != 0 and message in run.output, run.tail()
    run = deploy(fleet, spec(replicas=40, cpu=1), check=False)
    assert run.returncode != 0 and "no backend has room for replica web-" in run.output, run.tail()
    assert replicas(fleet) == before


def test_scale_down_removes_the_highest_indices(fleet):
    deploy(fleet, spec(replicas=1))
    left = replicas(fleet)
    assert sorted(left) == ["web-1"] and left["web-1"]["uuid"] == fleet.deploy_uuids["web-1"]


def test_dead_server_is_restarted_and_healthy_again(fleet):
    web1 = replicas(fleet)["web-1"]
    incus_ok(fleet, web1["backend"], "exec", "web-1", "--", "pkill", "-f", "http.server")
    time.sleep(1)
    assert not http_ok(fleet, web1)
    run = deploy(fleet, spec(replicas=1))
    assert said(run, "restarted web-1; recreated none"), run.tail()
    after = replicas(fleet)["web-1"]
    assert after["uuid"] == web1["uuid"], "restarted, not recreated"
    assert http_ok(fleet, after)
    assert deploy(fleet, spec(replicas=1)).changed == {}


def test_replica_a_restart_cannot_heal_is_recreated(fleet):
    web1 = replicas(fleet)["web-1"]
    incus_ok(fleet, web1["backend"], "exec", "web-1", "--", "systemctl", "disable", "--now", "web.service")
    run = deploy(fleet, spec(replicas=1))
    assert said(run, "restarted web-1; recreated web-1"), run.tail()
    after = replicas(fleet)["web-1"]
    assert after["uuid"] != web1["uuid"], "not recreated"
    assert after["status"] == "Running" and http_ok(fleet, after)


def test_pause_stops_and_resume_starts(fleet):
    deploy(fleet, spec(replicas=2, paused=True))
    assert {n: r["status"] for n, r in replicas(fleet).items()} == {"web-1": "Stopped", "web-2": "Stopped"}
    assert deploy(fleet, spec(replicas=2, paused=True)).changed == {}
    deploy(fleet, spec(replicas=2))
    resumed = replicas(fleet)
    assert {n: r["status"] for n, r in resumed.items()} == {"web-1": "Running", "web-2": "Running"}
    assert all(http_ok(fleet, r) for r in resumed.values())


def test_new_image_rolls_one_replica_at_a_time(fleet):
    before = replicas(fleet)
    run = deploy(fleet, spec(replicas=2, image=IMAGE_V2))
    after = replicas(fleet)
    assert sorted(after) == ["web-1", "web-2"]
    for name in after:
        assert after[name]["uuid"] != before[name]["uuid"] and after[name]["config"]["user.fleet.image"] == IMAGE_V2
        assert http_ok(fleet, after[name])
    # web-1 was replaced and found healthy before web-2 was touched.
    out = run.output
    assert out.index("Wait until this new replica is healthy, web-1") < out.index("Delete replica web-2"), run.tail()
    assert deploy(fleet, spec(replicas=2, image=IMAGE_V2)).changed == {}


def test_absent_removes_every_replica_and_users_keep_their_containers(fleet, canaries):
    deploy(fleet, {"name": "web", "state": "absent"})
    assert replicas(fleet) == {}
    canaries.check("deployments")
