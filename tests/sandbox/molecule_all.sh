#!/usr/bin/env bash
# Run `molecule test` for every role's default scenario, one after the other (the scenarios
# share a 2-core machine and the local Incus). One line per role, then "N passed, N failed";
# exits non-zero when any scenario fails. Logs: build/molecule/<role>.log.
# Usage: tests/sandbox/molecule_all.sh [role ...]   (default: every role with a scenario)
# Environment read by the scenarios: MOLECULE_APT_PROXY (default http://10.77.0.1:3142, the
# sandbox apt-cacher-ng), SANDBOX_IMAGE_CACHE (default /var/cache/containarium/images).
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
export PATH="$ROOT/.venv/bin:$PATH"
export ANSIBLE_CONFIG="$ROOT/ansible.cfg"
export ANSIBLE_COLLECTIONS_PATH="$ROOT/build/collections"
LOGS="$ROOT/build/molecule"
mkdir -p "$LOGS"

if [ $# -gt 0 ]; then
  roles=("$@")
else
  roles=()
  for scenario in "$ROOT"/roles/*/molecule/default/molecule.yml; do
    [ -e "$scenario" ] || continue
    # A scenario marked manual runs only when named (make test-cluster).
    [ -e "$(dirname "$scenario")/manual" ] && continue
    roles+=("$(basename "$(dirname "$(dirname "$(dirname "$scenario")")")")")
  done
fi

passed=0 failed=0
for role in "${roles[@]}"; do
  start=$(date +%s)
  if (cd "$ROOT/roles/$role" && molecule test --scenario-name default) >"$LOGS/$role.log" 2>&1; then
    result=passed; passed=$((passed + 1))
  else
    result=FAILED; failed=$((failed + 1))
  fi
  printf '%-16s %-7s %4ss  (log: build/molecule/%s.log)\n' "$role" "$result" "$(( $(date +%s) - start ))" "$role"
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
