#!/usr/bin/env bash
# The main job on the local sandbox: GCE emulator up, then playbooks/scale_out.yml with
# inventories/sandbox, then how to reach a user container through the jump chain.
set -euo pipefail
cd "$(dirname "$0")/../.."
export ANSIBLE_CONFIG="$PWD/ansible.cfg"
export PATH="$PWD/.venv/bin:$PATH"

tests/sandbox/gce_emulator_up.sh
mkdir -p build/demo
# The demo's users and the admin key; a real fleet takes these from its own inventory.
for key in admin alice bob; do
  [ -f "build/demo/$key" ] || ssh-keygen -q -t ed25519 -N '' -C "$key@demo" -f "build/demo/$key"
done

start=$(date +%s)
ansible-playbook -i inventories/sandbox playbooks/scale_out.yml "$@"
echo "scale_out.yml finished in $(( $(date +%s) - start )) s"
echo
echo "Each user reaches their container through the jump server (strict host keys), e.g.:"
echo "  ssh -F build/demo/clients/alice/ssh_config alice-container"
echo "Grow the fleet: ansible-playbook -i inventories/sandbox playbooks/scale_out.yml -e fleet_backend_count=3"
