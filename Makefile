# containarium.fleet — every install and test step lives here (CI starts from a bare machine).
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON_BASE ?= $(shell command -v python3.11 || ls /root/.pyenv/versions/3.11*/bin/python3 2>/dev/null | head -1 || command -v python3)
VENV        := .venv
PY          := $(VENV)/bin/python
BIN         := $(VENV)/bin
COLL_ROOT   := build/collections
COLL_LINK   := $(COLL_ROOT)/ansible_collections/containarium/fleet
SANITY_ROOT := build/sanity/ansible_collections/containarium/fleet
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: help venv collection sandbox gce-emulator gce-emulator-down demo test test-unit test-integration \
        test-e2e test-sanity test-lint test-molecule test-cluster test-spot benchmarks clean eda

help:  ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s $$'\t'

$(VENV)/.stamp: requirements.txt requirements-test.txt
	test -x $(PY) || $(PYTHON_BASE) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -U pip
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-test.txt
	touch $@

venv: $(VENV)/.stamp  ## controller venv: ansible-core 2.19, pylxd, google-auth, test tools

collection:  ## expose the checkout as containarium.fleet under build/collections
	@mkdir -p $(dir $(COLL_LINK))
	@ln -sfn ../../../.. $(COLL_LINK)

EDA_VENV    := build/eda-venv
JAVA_HOME   ?= /usr/lib/jvm/java-17-openjdk-amd64

$(EDA_VENV)/.stamp: extensions/eda/requirements.txt
	test -x $(JAVA_HOME)/bin/java || { apt-get update -q && apt-get install -y -q openjdk-17-jre-headless; }
	test -x $(EDA_VENV)/bin/python || $(PYTHON_BASE) -m venv $(EDA_VENV)
	$(EDA_VENV)/bin/python -m pip install -q --disable-pip-version-check -U pip
	$(EDA_VENV)/bin/python -m pip install -q --disable-pip-version-check -r extensions/eda/requirements.txt
	touch $@

eda: $(EDA_VENV)/.stamp collection  ## ansible-rulebook 1.3.2 (+ Java 17) in build/eda-venv, for the spot protection rulebook

sandbox:  ## local Incus (packages, incusd, pool, bridge, cached images); idempotent
	tests/sandbox/incus_up.sh

gce-emulator: venv  ## start the local GCE emulator (background, idempotent; VMs are Incus containers)
	tests/sandbox/gce_emulator_up.sh

gce-emulator-down:  ## stop the local GCE emulator
	tests/sandbox/gce_emulator_down.sh

demo: venv collection sandbox  ## the main job: sandbox + playbooks/scale_out.yml
	tests/sandbox/demo.sh

test: venv collection  ## everything CI runs; prints the counts
	$(PY) tests/run_all.py

test-unit: venv collection  ## pytest unit tests (no Incus needed for most)
	$(PY) -m pytest -q tests/unit

test-integration: venv collection sandbox  ## modules and playbooks against real Incus
	$(PY) -m pytest -q tests/integration

test-e2e: venv collection sandbox  ## whole fleets on the sandbox: scale-out, resize, spot, deploy, scale-in, failover
	$(PY) tests/run_all.py sandbox e2e

test-sanity: venv  ## ansible-test sanity on a copy of the collection
	tests/sandbox/sanity.sh

test-lint: venv collection  ## ansible-lint (production profile, offline)
	ANSIBLE_INVENTORY=/dev/null $(BIN)/ansible-lint --offline  # syntax checks need no inventory (tests/run_all.py)

test-molecule: venv collection sandbox  ## every role's Molecule scenario on Incus containers
	tests/sandbox/molecule_all.sh

test-spot: venv collection sandbox eda  ## spot protection end to end: ansible-rulebook, notice, preemption, scale-back (about 25 min)
	$(PY) -m pytest -q -p no:cacheprovider tests/e2e/test_70_spot_protection.py

test-cluster: venv collection sandbox  ## the Incus cluster target (in make test too) and its Molecule scenario (three nested hosts; about 20 min)
	FLEET_RUN_MANUAL=1 $(PY) -m pytest -q tests/integration -k incus_cluster
	tests/sandbox/molecule_all.sh incus_cluster

benchmarks: venv collection sandbox  ## re-run the benchmarks and rewrite benchmarks/RESULTS.md
	$(PY) benchmarks/run.py

clean:  ## remove build artefacts (keeps the venv and the image cache)
	rm -rf build tests/output .pytest_cache
