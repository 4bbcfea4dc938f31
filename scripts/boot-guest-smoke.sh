#!/usr/bin/env bash
# boot-guest-smoke.sh — self-test of the test guest, no provider involved:
#   instance overlay over build/guest/layers/deployment.qcow2 + NoCloud seed ISO (cidata)
#   + a NAT network `storm-smoke` (192.168.152.0/24, DHCP) + a direct-kernel-boot domain,
#   boots it, waits (bounded) for STORM-READY on the serial log, checks the STORM-* lines, that the
#   layers' sha256 did not change, and that the guest's writes landed in the instance overlay.
# Run: bash scripts/with-libvirtd.sh bash scripts/boot-guest-smoke.sh
# Everything it creates (domain, network, temp dir) is removed on exit, also on failure; the
# serial log and the domain XML are kept in build/guest/smoke-last.{log,xml}.
# Environment: STORM_SMOKE_TIMEOUT (s, default 120), STORM_URI (default qemu:///system),
#   STORM_SMOKE_TRACE (1 = add storm.trace=1 to the kernel command line for stage timings; default 1).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
G=$ROOT/build/guest
L=$G/layers
URI=${STORM_URI:-qemu:///system}
TIMEOUT=${STORM_SMOKE_TIMEOUT:-120}
NAME=storm-smoke
NET=storm-smoke
BRIDGE=stsmoke0
say() { echo "smoke: $*"; }
fail() { echo "smoke: FAIL: $*" >&2; exit 1; }
virsh() { command virsh -q -c "$URI" "$@"; }
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }

for t in virsh qemu-img genisoimage debugfs flock; do
  command -v "$t" >/dev/null || fail "missing $t (packages: libvirt-clients, qemu-utils, genisoimage, e2fsprogs, util-linux)"
done
virsh uri >/dev/null 2>&1 || fail "libvirtd does not answer on $URI (run via scripts/with-libvirtd.sh)"

# one smoke run at a time on this machine (fixed names and subnet)
mkdir -p "$G"
exec 9>"$G/.smoke.lock"
flock -w 300 9 || fail "another smoke run holds $G/.smoke.lock for 300 s"

bash "$ROOT/scripts/build-guest.sh"
bash "$ROOT/scripts/build-test-layers.sh"

T=$(mktemp -d "$G/.smoke.XXXXXX")
created_dom=0; created_net=0
cleanup() {
  local rc=$?
  set +e
  if [ $created_dom = 1 ]; then
    virsh domstate "$NAME" 2>/dev/null | grep -q running && virsh destroy "$NAME" >/dev/null
    virsh undefine "$NAME" >/dev/null
  fi
  if [ $created_net = 1 ]; then
    virsh net-destroy "$NET" >/dev/null 2>&1
    virsh net-undefine "$NET" >/dev/null
  fi
  [ -f "$T/serial.log" ] && cp "$T/serial.log" "$G/smoke-last.log"
  [ -f "$T/domain.xml" ] && cp "$T/domain.xml" "$G/smoke-last.xml"
  rm -rf "$T"
  if [ $rc = 0 ]; then say "PASS (cleaned up)"; else echo "smoke: FAILED rc=$rc (cleaned up; serial log in $G/smoke-last.log)" >&2; fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# leftovers of an interrupted run (same fixed names; we hold the lock, so they are not in use)
if virsh dominfo "$NAME" >/dev/null 2>&1; then
  say "removing leftover domain $NAME"; virsh destroy "$NAME" >/dev/null 2>&1 || true; virsh undefine "$NAME" >/dev/null
fi
if virsh net-info "$NET" >/dev/null 2>&1; then
  say "removing leftover network $NET"; virsh net-destroy "$NET" >/dev/null 2>&1 || true; virsh net-undefine "$NET" >/dev/null
fi

# ---- layer checksums before -----------------------------------------------------------------------
sums() { (cd "$L" && sha256sum base.qcow2 appliance.qcow2 deployment.qcow2); }
before=$(sums)

# ---- instance overlay + seed ------------------------------------------------------------------------
t=$(date +%s%N)
qemu-img create -q -f qcow2 -b "$L/deployment.qcow2" -F qcow2 "$T/instance.qcow2"
say "instance overlay created in $(ms "$t") ms"
mkdir "$T/seed"
cat > "$T/seed/meta-data" <<'EOF'
instance-id: smoke-1
local-hostname: smoke
EOF
cat > "$T/seed/user-data" <<'EOF'
#cloud-config
write_files:
  - path: /etc/mail/relay.conf
    content: |
      relay for smoke
      second line
    permissions: '0640'
EOF
t=$(date +%s%N)
genisoimage -quiet -V cidata -J -r -o "$T/seed.iso" "$T/seed/meta-data" "$T/seed/user-data"
say "seed ISO created in $(ms "$t") ms ($(stat -c %s "$T/seed.iso") bytes)"

# ---- network ---------------------------------------------------------------------------------------
cat > "$T/network.xml" <<EOF
<network xmlns:dnsmasq='http://libvirt.org/schemas/network/dnsmasq/1.0'>
  <name>$NET</name>
  <forward mode='nat'/>
  <bridge name='$BRIDGE' stp='off' delay='0'/>
  <ip address='192.168.152.1' netmask='255.255.255.0'>
    <dhcp><range start='192.168.152.10' end='192.168.152.250'/></dhcp>
  </ip>
  <!-- dnsmasq pings an address before offering it (~3 s per first lease); fresh test subnet -->
  <dnsmasq:options><dnsmasq:option value='no-ping'/></dnsmasq:options>
</network>
EOF
t=$(date +%s%N)
virsh net-define "$T/network.xml" >/dev/null; created_net=1
virsh net-start "$NET" >/dev/null
say "network $NET up in $(ms "$t") ms"

TRACE=""; [ "${STORM_SMOKE_TRACE:-1}" = 1 ] && TRACE=" storm.trace=1"
# ---- domain ----------------------------------------------------------------------------------------
cat > "$T/domain.xml" <<EOF
<domain type='qemu'>
  <name>$NAME</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>$G/vmlinuz</kernel>
    <initrd>$G/initrd.gz</initrd>
    <cmdline>console=ttyS0 quiet panic=-1$TRACE</cmdline>
  </os>
  <features><acpi/></features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='$T/instance.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='$T/seed.iso'/>
      <target dev='vdb' bus='virtio'/>
      <readonly/>
    </disk>
    <interface type='network'>
      <source network='$NET'/>
      <model type='virtio'/>
    </interface>
    <serial type='file'>
      <source path='$T/serial.log'/>
      <target port='0'/>
    </serial>
    <memballoon model='none'/>
  </devices>
</domain>
EOF
t=$(date +%s%N)
virsh define "$T/domain.xml" >/dev/null; created_dom=1
say "domain defined in $(ms "$t") ms"

s=$(date +%s%N)
virsh start "$NAME" >/dev/null
t_start=$(ms "$s")
say "virsh start returned after $t_start ms"
errors=()
t_first=""; t_ip=""; t_ready=""; t_err=""
deadline=$(( $(date +%s) + TIMEOUT ))
while :; do
  if [ -z "$t_first" ] && [ -s "$T/serial.log" ]; then t_first=$(ms "$s"); fi
  if [ -z "$t_ip" ] && grep -q '^STORM-IP ' "$T/serial.log" 2>/dev/null; then t_ip=$(ms "$s"); fi
  if [ -z "$t_err" ] && grep -q '^STORM-ERROR' "$T/serial.log" 2>/dev/null; then t_err=$(ms "$s"); fi
  if grep -q '^STORM-READY' "$T/serial.log" 2>/dev/null; then t_ready=$(ms "$s"); break; fi
  if ! virsh domstate "$NAME" 2>/dev/null | grep -q running; then
    echo "--- serial log:" >&2; cat "$T/serial.log" >&2 2>/dev/null
    fail "domain stopped before STORM-READY ($(virsh domstate --reason "$NAME" 2>&1))"
  fi
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "--- serial log:" >&2; cat "$T/serial.log" >&2 2>/dev/null
    fail "no STORM-READY after $TIMEOUT s"
  fi
  sleep 0.1
done

echo "---- serial STORM-* lines"
grep -a '^STORM-' "$T/serial.log" | tee "$T/storm.lines"
grep -q $'\r' "$T/storm.lines" && errors+=("STORM-* lines end in CRLF")
echo "----"
say "timings from virsh start: first console byte ${t_first:-?} ms, STORM-IP ${t_ip:-never} ms, STORM-READY $t_ready ms"
leases=$(virsh net-dhcp-leases "$NET" 2>/dev/null | sed 's/^ *//' || true)
say "dhcp leases on $NET: ${leases:-none}"

# ---- checks (errors may already hold the CRLF check) ----------------------------------------------------------------------------------------
expect() { grep -qxF -- "$1" "$T/storm.lines" || errors+=("missing line: $1"); }
expect "STORM-BOOT instance=smoke-1 hostname=smoke"
expect "STORM-LAYERS appliance base deployment"
expect "STORM-FILE /etc/mail/relay.conf relay for smoke"
grep -qE '^STORM-IP 192\.168\.152\.[0-9]+$' "$T/storm.lines" || errors+=("no STORM-IP in 192.168.152.0/24")
grep -q '^STORM-ERROR' "$T/storm.lines" && errors+=("guest reported errors: $(grep '^STORM-ERROR' "$T/storm.lines" | tr '\n' ';')")

# graceful stop (ACPI power button -> guest syncs, unmounts, powers off), bounded; else destroy
s=$(date +%s%N)
virsh shutdown "$NAME" >/dev/null
deadline=$(( $(date +%s) + 30 ))
while virsh domstate "$NAME" 2>/dev/null | grep -q running && [ "$(date +%s)" -lt "$deadline" ]; do sleep 0.1; done
if virsh domstate "$NAME" 2>/dev/null | grep -q running; then
  errors+=("virsh shutdown: still running after 30 s"); virsh destroy "$NAME" >/dev/null
else
  say "virsh shutdown -> shut off in $(ms "$s") ms ($(grep -a '^STORM-SHUTDOWN' "$T/serial.log" | tr -d '\r'))"
  grep -aq '^STORM-SHUTDOWN' "$T/serial.log" || errors+=("no STORM-SHUTDOWN line")
fi
# read the instance layer (flattened) to see where the guest's writes landed
qemu-img convert -O raw "$T/instance.qcow2" "$T/flat.raw"
ext() { debugfs -R "$1" "$T/flat.raw" 2>/dev/null; }
e2fsck -fn "$T/flat.raw" >"$T/fsck.log" 2>&1 || errors+=("instance filesystem not clean: $(tail -3 "$T/fsck.log" | tr '\n' ' ')")
booted=$(ext "cat /var/lib/storm/booted")
relay=$(ext "cat /etc/mail/relay.conf")
mode=$(ext "stat /etc/mail/relay.conf" | sed -n 's/.*Mode: *\([0-7]*\).*/\1/p' | head -1)
hostfile=$(ext "cat /etc/hostname")
say "instance layer: /var/lib/storm/booted='$booted' /etc/hostname='$hostfile' /etc/mail/relay.conf mode $mode"
case "$booted" in *" smoke-1") ;; *) errors+=("/var/lib/storm/booted is '$booted'") ;; esac
[ "$relay" = "relay for smoke
second line" ] || errors+=("/etc/mail/relay.conf is '$relay'")
[ "$mode" = 0640 ] || errors+=("/etc/mail/relay.conf mode $mode, want 0640")
[ "$hostfile" = smoke ] || errors+=("/etc/hostname is '$hostfile'")
say "instance overlay: $(qemu-img info -U "$T/instance.qcow2" | sed -n 's/^disk size: //p') on disk; layers untouched:"
# the layers below must not carry the guest's writes
for l in deployment appliance base; do
  qemu-img convert -O raw "$L/$l.qcow2" "$T/$l.raw"
  debugfs -R "stat /var/lib/storm/booted" "$T/$l.raw" 2>&1 | grep -q 'File not found' ||
    errors+=("$l.qcow2 contains /var/lib/storm/booted")
  rm -f "$T/$l.raw"
done

after=$(sums)
echo "$after" | sed 's/^/smoke:   /'
[ "$before" = "$after" ] || errors+=("layer checksums changed: before: $before after: $after")

if [ "${#errors[@]}" -gt 0 ]; then
  printf 'smoke: check failed: %s\n' "${errors[@]}" >&2
  exit 1
fi
say "all checks passed (STORM-READY after $t_ready ms, guest uptime $(sed -n 's/^STORM-READY uptime=//p' "$T/storm.lines") s)"
