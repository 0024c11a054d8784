#!/usr/bin/env bash
# Remove what an interrupted test run left in Incus (instances named with a test prefix), so a
# run that follows a killed one starts from the same state as a run on a fresh machine.
set -euo pipefail
PREFIXES='^(it|mol|cl|emu|bench|gi)-'
incus list --all-projects -f csv -c n,e 2>/dev/null | while IFS=, read -r name project; do
  if [[ "$name" =~ $PREFIXES ]]; then
    echo "[cleanup] deleting leftover instance $name (project ${project:-default})"
    incus delete --force --project "${project:-default}" "$name" >/dev/null || true
  fi
done
