#!/usr/bin/env bash
# System set-up for storm's test lab on Debian bookworm (root, no systemd): real libvirt running
# QEMU under TCG, OpenIPMI's ipmi_sim as simulated BMCs, ipmitool as the client, and
# PostgreSQL's server binaries for the controller's shared store (tests start their own cluster).
# Idempotent: a second run only re-checks. Starts no daemon (scripts/with-libvirtd.sh does that).
set -euo pipefail

say() { echo "install-system: $*"; }

if [ "$(id -u)" -ne 0 ]; then
  echo "install-system: must run as root" >&2
  exit 1
fi

# libvirt-daemon-system is deliberately absent: it pulls ~584 MB (and systemd units we cannot use);
# the monolithic libvirtd from libvirt-daemon plus the qemu driver is all the lab needs.
packages=(
  libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients qemu-system-x86 qemu-utils libvirt-dev
  openipmi ipmitool dnsmasq-base iptables busybox-static pkg-config
  e2fsprogs genisoimage python3-yaml libxml2-utils chromium
  postgresql
)

# The PostgreSQL tests initdb a throwaway cluster of their own (test/lib/postgres.ts): Debian's
# default cluster would only be a server nobody uses, so the package is told not to make it.
mkdir -p /etc/postgresql-common/createcluster.d
echo 'create_main_cluster = false' >/etc/postgresql-common/createcluster.d/storm.conf

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$p")
  fi
done
if [ "${#missing[@]}" -eq 0 ]; then
  say "packages already installed"
else
  export DEBIAN_FRONTEND=noninteractive
  say "apt-get update"
  apt-get update -qq
  say "installing ${missing[*]}"
  apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
  say "packages installed"
fi

# The qemu driver refuses to load when user libvirt-qemu is missing (normally created by
# libvirt-daemon-system's postinst), even though qemu.conf below makes qemu run as root.
getent group libvirt-qemu >/dev/null || groupadd -r libvirt-qemu
getent passwd libvirt-qemu >/dev/null ||
  useradd -r -g libvirt-qemu -d /var/lib/libvirt -s /usr/sbin/nologin libvirt-qemu
say "user libvirt-qemu present"

# /var/cache/libvirt is also a mount point for the per-blade libvirtd of test/lib/lab.ts.
mkdir -p /var/log/libvirt/qemu /var/lib/libvirt /run/libvirt /etc/libvirt /var/cache/libvirt

# qemu as root: /dev/kvm (when present) is root-only here, and with the default qemu user libvirt
# re-probes QEMU capabilities in a loop (29 s to start libvirtd, ~4 s per domain start). Root also
# avoids chown games on test images.
cat >/etc/libvirt/qemu.conf <<'EOF'
# written by storm scripts/install-system.sh
user = "root"
group = "root"
EOF

# No journald/syslog here: without a file output libvirtd's errors are lost.
cat >/etc/libvirt/libvirtd.conf <<'EOF'
# written by storm scripts/install-system.sh
log_outputs = "3:file:/var/log/libvirt/libvirtd.log"
EOF
say "libvirt configured (qemu.conf, libvirtd.conf)"
say "done"
