#!/usr/bin/env bash
# Turn a debootstrap tree into an Incus system-container image: DHCP on eth0, sshd with
# per-container host keys, and (variant "nested") an incusd able to run inside a container.
set -euo pipefail
root="$1" variant="${2:-base}"

cat > "$root/etc/network/interfaces" <<'NET'
auto lo
iface lo inet loopback
auto eth0
iface eth0 inet dhcp
NET
echo "fleet" > "$root/etc/hostname"
: > "$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id"
# Host keys must differ per container: drop the build's keys, regenerate on first boot.
rm -f "$root"/etc/ssh/ssh_host_*
cat > "$root/etc/systemd/system/ssh-hostkeys.service" <<'UNIT'
[Unit]
Description=Generate SSH host keys on first boot
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key
[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A
[Install]
WantedBy=multi-user.target
UNIT
chroot "$root" systemctl enable ssh-hostkeys.service >/dev/null 2>&1
chroot "$root" systemctl enable ssh.service >/dev/null 2>&1 || true
# Units that cannot work in an unprivileged container only slow boot down.
for unit in systemd-journald-audit.socket sys-kernel-config.mount systemd-remount-fs.service; do
  chroot "$root" systemctl mask "$unit" >/dev/null 2>&1 || true
done
cat > "$root/etc/apt/sources.list" <<'SRC'
deb http://deb.debian.org/debian bookworm main
deb http://deb.debian.org/debian bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
deb http://deb.debian.org/debian bookworm-backports main
SRC

if [ "$variant" = nested ]; then
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  mount --bind /proc "$root/proc"
  trap 'umount "$root/proc" 2>/dev/null || true' EXIT
  chroot "$root" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive chroot "$root" apt-get install -y -qq --no-install-recommends \
    -t bookworm-backports incus dnsmasq-base nftables squashfs-tools xz-utils iptables >/dev/null
  chroot "$root" apt-get clean
  rm -rf "$root"/var/lib/apt/lists/*
  : > "$root/etc/resolv.conf"
  # Sandbox-only: systemd leaves cpu/cpuacct as symlinks to a joint v1 hierarchy that the host
  # kernel does not offer; mount them separately so the inner incusd can start containers.
  cat > "$root/usr/local/sbin/fleet-cgroup-fix" <<'FIX'
#!/bin/sh
# Only on a cgroup v1 layout whose cpu/cpuacct links point at a hierarchy that was never mounted.
[ -L /sys/fs/cgroup/cpu ] || exit 0
mountpoint -q /sys/fs/cgroup/cpu,cpuacct && exit 0
mount -o remount,rw /sys/fs/cgroup || exit 0
for c in cpu cpuacct; do
  rm -f /sys/fs/cgroup/$c
  mkdir -p /sys/fs/cgroup/$c
  mountpoint -q /sys/fs/cgroup/$c || mount -t cgroup -o $c cgroup /sys/fs/cgroup/$c || true
done
mount -o remount,ro /sys/fs/cgroup || true
FIX
  chmod +x "$root/usr/local/sbin/fleet-cgroup-fix"
  cat > "$root/etc/systemd/system/fleet-cgroup-fix.service" <<'UNIT'
[Unit]
Description=Sandbox cgroup v1 layout for nested Incus
# Early and without default dependencies: ordered before incus.socket (part of sockets.target)
# a default-dependency unit would form a cycle that systemd breaks by dropping one of them.
DefaultDependencies=no
After=local-fs.target
Before=sysinit.target incus.socket incus.service
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/fleet-cgroup-fix
[Install]
WantedBy=sysinit.target
UNIT
  chroot "$root" systemctl enable fleet-cgroup-fix.service >/dev/null 2>&1
  # Without this, an `incus` call made before incusd is up falls back to the per-user daemon
  # and leaves root pinned to a restricted "user-0" project.
  chroot "$root" systemctl mask incus-user.socket incus-user.service >/dev/null 2>&1
  umount "$root/proc"; trap - EXIT
fi
