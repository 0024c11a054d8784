#!/usr/bin/env bash
# Turn a nested-Incus sandbox host into a standalone backend: Incus started, a pool, a bridge off the
# sandbox subnet, a privileged default profile, the API on <address>:8443 trusting the controller's
# certificate, the fleet-base image, and one container <host>-c1 (user.team=blue) that lets root in
# with the controller's SSH key. Run in the background while the cluster forms.
# Usage: standalone_backend.sh <host> <address> <client.crt> <image dir> <ssh public key file>
set -euo pipefail
host=$1 address=$2 client_cert=$3 images=$4 public_key=$5

# Sandbox boot may leave incus.socket inactive (see main.yml): start the daemon itself.
incus exec "$host" -- sh -c 'systemctl start incus.service && incus admin waitready --timeout=120'
incus exec "$host" -- incus admin init --preseed <<EOF
config:
  core.https_address: ${address}:8443
networks:
  - name: incusbr0
    type: bridge
    config: {ipv4.address: 10.79.0.1/24, ipv4.nat: "false", ipv6.address: none}
storage_pools:
  - name: default
    driver: dir
profiles:
  - name: default
    config: {security.privileged: "true"}
    devices:
      root: {type: disk, path: /, pool: default}
      eth0: {type: nic, name: eth0, network: incusbr0}
EOF
incus file push "$client_cert" "$host/root/client.crt"
incus exec "$host" -- incus config trust add-certificate /root/client.crt
incus file push "$images/meta.tar.gz" "$images/rootfs.tar.gz" "$host/root/"
incus exec "$host" -- incus image import /root/meta.tar.gz /root/rootfs.tar.gz --alias fleet-base
incus exec "$host" -- incus launch fleet-base "$host-c1" -c limits.memory=128MiB -c user.team=blue
# Until the container's own systemd is up, exec may fail and eth0 has no lease: try for a minute.
for _attempt in $(seq 30); do
  # shellcheck disable=SC2016  # $0 is expanded by the container's shell, not here
  if incus exec "$host" -- incus exec "$host-c1" -- sh -euc \
      'install -d -m 700 /root/.ssh; printf "%s\n" "$0" > /root/.ssh/authorized_keys' "$(cat "$public_key")" &&
     [ -n "$(incus exec "$host" -- incus list "$host-c1" -c 4 -f csv)" ]; then
    exit 0
  fi
  sleep 2
done
echo "$host-c1 did not come up with an IPv4 address" >&2
exit 1
