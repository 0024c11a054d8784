#!/usr/bin/env bash
# Remove what an interrupted test run left in Incus (instances named with a test prefix, and the
# emulator's VMs and disks of the end-to-end and benchmark fleets), so a run that follows a killed
# one starts from the same state as a run on a fresh machine. The demo fleet (gce-sandbox-*) stays.
set -euo pipefail
# The test fleets (tests/e2e fixtures and benchmarks) by name.
FLEETS='e2e|ops|ha|topo|sp|spb|sn|bench-[a-z]+'
PREFIXES="^(it|mol|cl|emu|bench|gi)-|^gce-($FLEETS)-"
incus list --all-projects -f csv -c n,e 2>/dev/null | while IFS=, read -r name project; do
  if [[ "$name" =~ $PREFIXES ]]; then
    echo "[cleanup] deleting leftover instance $name (project ${project:-default})"
    incus delete --force --project "${project:-default}" "$name" >/dev/null || true
  fi
done
incus storage volume list default -f csv -c tn 2>/dev/null | while IFS=, read -r kind name; do
  if [ "$kind" = custom ] && [[ "$name" =~ ^gce-disk-($FLEETS)- ]]; then
    echo "[cleanup] deleting leftover disk $name"
    incus storage volume delete default "$name" >/dev/null || true
  fi
done
