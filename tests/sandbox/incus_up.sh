#!/usr/bin/env bash
# Bring up the local Incus sandbox: packages, incusd, storage pool, bridge, base images.
# Idempotent: every step checks the world first, so a second run on a live sandbox is quick,
# and a run over leftovers of an earlier run (incusd gone, /var/lib/incus kept) recovers them.
set -euo pipefail

BRIDGE="${SANDBOX_BRIDGE:-incusbr0}"
BRIDGE_CIDR="${SANDBOX_BRIDGE_CIDR:-10.77.0.1/24}"
POOL="${SANDBOX_POOL:-default}"
IMAGE_CACHE="${SANDBOX_IMAGE_CACHE:-/var/cache/containarium/images}"
BASE_ALIAS="${SANDBOX_BASE_ALIAS:-fleet-base}"
NESTED_ALIAS="${SANDBOX_NESTED_ALIAS:-fleet-nested}"
SOCKET=/var/lib/incus/unix.socket
LOG_DIR=/var/log/containarium
HERE="$(cd "$(dirname "$0")" && pwd)"

log() { printf '[sandbox] %s\n' "$*"; }

install_packages() {
  local need=()
  command -v incus >/dev/null || need+=(incus)
  command -v debootstrap >/dev/null || need+=(debootstrap)
  command -v ssh >/dev/null || need+=(openssh-client)
  command -v dnsmasq >/dev/null || [ -x /usr/sbin/dnsmasq ] || need+=(dnsmasq-base)
  command -v ip >/dev/null || need+=(iproute2)
  [ -x /usr/sbin/apt-cacher-ng ] || need+=(apt-cacher-ng)
  [ ${#need[@]} -eq 0 ] && return 0
  if ! grep -rqs bookworm-backports /etc/apt/sources.list /etc/apt/sources.list.d/; then
    log "adding bookworm-backports"
    cat > /etc/apt/sources.list.d/bookworm-backports.sources <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  fi
  log "installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o Dpkg::Options::=--force-confold \
    -t bookworm-backports "${need[@]}" >/dev/null
}

raise_kernel_limits() {
  # Each container's systemd takes inotify instances and keys; the defaults (128) stop the
  # twentieth container or so from booting.
  sysctl -qw fs.inotify.max_user_instances=1024 fs.inotify.max_user_watches=1048576 \
    kernel.keys.maxkeys=2000 kernel.keys.maxbytes=2000000 2>/dev/null || log "could not raise kernel limits"
}

incus_alive() { [ -S "$SOCKET" ] && timeout 5 incus query /1.0 >/dev/null 2>&1; }

start_incusd() {
  incus_alive && return 0
  mkdir -p "$LOG_DIR"
  # A leftover socket from a killed incusd makes the new one refuse to start.
  pkill -x incusd 2>/dev/null || true
  rm -f "$SOCKET" /var/lib/incus/unix.socket.user
  # lxcfs gives containers a truthful /proc view of their limits (nproc, free); optional.
  if [ -x /usr/bin/lxcfs ] && ! pgrep -x lxcfs >/dev/null; then
    # A killed lxcfs leaves a dead FUSE mount behind ("transport endpoint is not connected").
    umount -l /var/lib/incus-lxcfs 2>/dev/null || true
    mkdir -p /var/lib/incus-lxcfs
    nohup /usr/bin/lxcfs /var/lib/incus-lxcfs >"$LOG_DIR/lxcfs.log" 2>&1 &
  fi
  log "starting incusd"
  export INCUS_OVMF_PATH=/usr/share/ovmf
  nohup setsid /usr/libexec/incus/incusd --group root --logfile "$LOG_DIR/incusd.log" \
    >"$LOG_DIR/incusd.out" 2>&1 </dev/null &
  for _ in $(seq 1 120); do incus_alive && break; sleep 0.5; done
  incus_alive || { log "incusd did not come up; see $LOG_DIR/incusd.log"; tail -20 "$LOG_DIR/incusd.log" || true; exit 1; }
  incus admin waitready --timeout 60
}

ensure_pool_and_bridge() {
  incus storage show "$POOL" >/dev/null 2>&1 || { log "creating storage pool $POOL"; incus storage create "$POOL" dir; }
  if ! incus network show "$BRIDGE" >/dev/null 2>&1; then
    log "creating bridge $BRIDGE ($BRIDGE_CIDR, no NAT)"
    incus network create "$BRIDGE" ipv4.address="$BRIDGE_CIDR" ipv4.nat=false ipv6.address=none
  fi
  # The default profile gets a root disk and a NIC so plain launches work.
  if ! incus profile device show default | grep -q '^root:'; then
    incus profile device add default root disk path=/ pool="$POOL"
  fi
  if ! incus profile device show default | grep -q '^eth0:'; then
    incus profile device add default eth0 nic network="$BRIDGE" name=eth0
  fi
}

start_apt_proxy() {
  # Containers have no route out (no NAT); apt inside them goes through this caching proxy.
  local addr="${BRIDGE_CIDR%/*}"
  # The package picks its Debian upstream at install time (ftp.debian.org here), which may not be
  # reachable where deb.debian.org is: every Debian index then fails with 503.
  local upstream=http://deb.debian.org/debian/
  if [ "$(grep -v '^#' /etc/apt-cacher-ng/backends_debian 2>/dev/null | grep .)" != "$upstream" ]; then
    echo "$upstream" >/etc/apt-cacher-ng/backends_debian
    local pid
    pid="$(cat /run/apt-cacher-ng.pid 2>/dev/null || true)"
    # A pid file left by an earlier boot may name another process by now.
    if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = apt-cacher-ng ]; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 50); do ss -ltn 2>/dev/null | grep -q "$addr:3142" || break; sleep 0.1; done
    fi
  fi
  if ! ss -ltn 2>/dev/null | grep -q "$addr:3142"; then
    mkdir -p /var/cache/apt-cacher-ng /var/log/apt-cacher-ng
    chown -R apt-cacher-ng: /var/cache/apt-cacher-ng /var/log/apt-cacher-ng 2>/dev/null || true
    # ConnectProto=v4: with the default (v6 first) every upstream lookup fails with "Host not found".
    /usr/sbin/apt-cacher-ng -c /etc/apt-cacher-ng "BindAddress=$addr 127.0.0.1" ConnectProto=v4 \
      ForeGround=0 PidFile=/run/apt-cacher-ng.pid >/dev/null 2>&1 || log "apt-cacher-ng did not start (roles needing apt will fail)"
  fi
}

write_meta() {  # write_meta <dir> <alias>: metadata with templates so the hostname is the instance name
  local dir="$1" alias="$2" tmp; tmp="$(mktemp -d)"
  mkdir -p "$tmp/templates"
  cat > "$tmp/metadata.yaml" <<META
architecture: x86_64
creation_date: $(date +%s)
properties:
  os: debian
  release: bookworm
  description: containarium.fleet $alias (Debian 12)
templates:
  /etc/hostname:
    when: [create, copy]
    template: hostname.tpl
  /etc/hosts:
    when: [create, copy]
    template: hosts.tpl
META
  printf '{{ instance.name }}\n' > "$tmp/templates/hostname.tpl"
  printf '127.0.0.1 localhost\n127.0.1.1 {{ instance.name }}\n::1 localhost ip6-localhost ip6-loopback\n' > "$tmp/templates/hosts.tpl"
  tar -C "$tmp" -czf "$dir/meta.tar.gz" metadata.yaml templates
  rm -rf "$tmp"
}

build_image() {  # build_image <alias> <variant: base|nested>
  local alias="$1" variant="$2" dir="$IMAGE_CACHE/$1"
  mkdir -p "$dir"
  if [ ! -s "$dir/rootfs.tar.gz" ]; then
    log "building image $alias with debootstrap (about 70 s)"
    local root; root="$(mktemp -d /var/tmp/fleet-rootfs.XXXXXX)"
    local pkgs="systemd-sysv,openssh-server,python3,iproute2,ifupdown,isc-dhcp-client,sudo,ca-certificates"
    debootstrap --variant=minbase --include="$pkgs" bookworm "$root" http://deb.debian.org/debian >/dev/null
    "$HERE/image_customize.sh" "$root" "$variant"
    chmod 0755 "$root"  # mktemp made it 0700; it becomes the container's /, which every user must traverse
    tar -C "$root" --numeric-owner -czf "$dir/rootfs.tar.gz.part" .
    mv "$dir/rootfs.tar.gz.part" "$dir/rootfs.tar.gz"
    rm -rf "$root"
  fi
  [ -s "$dir/meta.tar.gz" ] || write_meta "$dir" "$alias"
  if ! incus image info "$alias" >/dev/null 2>&1; then
    log "importing image $alias"
    incus image import "$dir/meta.tar.gz" "$dir/rootfs.tar.gz" --alias "$alias" >/dev/null
  fi
}

main() {
  install_packages
  raise_kernel_limits
  start_incusd
  ensure_pool_and_bridge
  start_apt_proxy
  build_image "$BASE_ALIAS" base
  build_image "$NESTED_ALIAS" nested
  log "ready: bridge $BRIDGE $BRIDGE_CIDR, images $BASE_ALIAS and $NESTED_ALIAS"
}

main "$@"
