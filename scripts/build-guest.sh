#!/usr/bin/env bash
# build-guest.sh — builds storm's bootable test guest into build/guest/:
#   vmlinuz    Debian's generic kernel (linux-image-amd64's current version), taken from the .deb
#              that `apt-get download` fetches into build/guest/cache (the host does not install it)
#   initrd.gz  a busybox-static initramfs whose /init plays "cloud-init" for one instance:
#              modules -> seed -> hostname -> DHCP -> instance disk -> write_files -> markers.
#   guest.env  KERNEL_VERSION, sha256 of both files (for tests and the provider to log/compare)
# Idempotent: downloads and extracted modules are cached; initrd.gz is only replaced when its
# content would change (a running domain never sees a half-written file: build to tmp, then mv).
# Options (environment): STORM_GUEST_KERNEL=linux-image-<ver>-amd64 pins the kernel package.
#
# Serial protocol of /init (console=ttyS0; every line starts with STORM-):
#   STORM-IP <ipv4>                               DHCP lease bound on eth0
#   STORM-BOOT instance=<instance-id> hostname=<local-hostname>
#   STORM-LAYERS <names in /etc/storm/layers/ of the instance disk, sorted, space-separated>
#   STORM-FILE <path> <first line of the written content>      one per write_files item
#   STORM-SERVICE <name> up ...                   printed by an rc.d hook (below) once its service answers
#   STORM-READY uptime=<seconds>                  all of the above done, /var/lib/storm/booted synced
#   STORM-ERROR <what>                            something failed; /init goes on and still idles
#   STORM-SHUTDOWN                                ACPI power button seen (virsh shutdown): syncs,
#                                                 unmounts the instance disk and powers off
# STORM-READY is always printed (also after errors); the guest then idles (no poweroff/reboot of
# its own). Lines end in "\n" (the tty's onlcr is turned off; kernel messages still use "\r\n").
# Services of the appliance layers: after write_files, before STORM-READY, /init runs every
# executable /etc/storm/rc.d/* of the instance disk, in name order, as `HOOK start` — from the
# initramfs (busybox; a hook chroots into $STORM_ROOT what it starts), with STORM_ROOT=/mnt, at
# most 120 s each, stdout on the console (a hook's own STORM-* lines), stderr kept in /tmp; a
# hook that fails or times out gives `STORM-ERROR rc.d/<name> exited <status>: <its last line>`.
# The power button runs them as `HOOK stop`, in reverse order, before the disk is unmounted.
# (scripts/build-mail-layer.sh's 50-smtpd is one: it starts OpenSMTPD.) No rc.d: nothing changes.
# Graceful stop needs <features><acpi/></features> in the domain (button + evdev + busybox acpid).
# Kernel command line: storm.burn=1 keeps one vCPU busy after STORM-READY (load for policy tests);
# storm.trace=1 adds `STORM-TRACE <stage> uptime=<s>` lines (boot profiling).
# A written file /etc/storm/burn-url switches a burner from outside (STORM-BURN on|off): see /init.
#
# Supported NoCloud subset (seed: an iso9660 volume labelled cidata/CIDATA on any /dev/vd* or
# /dev/sr*; the guest looks for it by label, not by position):
#   meta-data  YAML lines `key: value` (value optionally '...' or "..." quoted, no escapes);
#              only instance-id and local-hostname are used.
#   user-data  must start with `#cloud-config`; only the top-level `write_files:` list is read,
#              all other top-level keys are ignored. Each item (`- key: value` then `key: value`
#              lines at the same indent) may have:
#                path:        absolute path (required); written below the instance disk's root
#                content:     `|` / `|-` / `|+` block scalar (indented lines; clip/strip/keep
#                             trailing newlines as YAML does) or a single-line plain/'..'/".."
#                             scalar (no escapes, no folding, no multi-line flow scalars)
#                permissions: octal, quoted or not ('0644' default)
#                encoding:    b64 | base64 (content is base64; also gz+b64 / gzip+base64)
#                append:      true appends instead of replacing
#                owner, defer and anything else: ignored (everything is root-owned)
#              Comments (`#` lines) and blank lines between keys are skipped. Not supported:
#              anchors, flow style ([...], {...}), multi-document/MIME/gzip user-data, other modules.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=$ROOT/build/guest
CACHE=$OUT/cache
say() { echo "build-guest: $*"; }
die() { echo "build-guest: ERROR: $*" >&2; exit 1; }
t0=$(date +%s%N)

# ---- tools -------------------------------------------------------------------------------------
need=()
for t in apt-get apt-cache dpkg-deb tar gzip sha256sum cmp; do command -v "$t" >/dev/null || need+=("$t"); done
# the initramfs copies the host's /bin/busybox: it must be the static build (package busybox-static)
if [ ! -x /bin/busybox ] || ldd /bin/busybox >/dev/null 2>&1; then need+=("busybox-static"); fi
[ "${#need[@]}" -eq 0 ] || die "missing: ${need[*]} (add the packages to scripts/install-system.sh)"

mkdir -p "$CACHE"

# ---- kernel .deb -------------------------------------------------------------------------------
KPKG=${STORM_GUEST_KERNEL:-}
if [ -z "$KPKG" ]; then
  KPKG=$(apt-cache depends linux-image-amd64 2>/dev/null |
    awk '/Depends: linux-image-[0-9]/{print $2; exit}') || true
fi
if [ -z "$KPKG" ]; then
  # apt lists unavailable: fall back to a kernel cached earlier
  cached=$(ls "$CACHE"/linux-image-*-amd64.deb 2>/dev/null | sort -V | tail -1 || true)
  [ -n "$cached" ] || die "cannot resolve linux-image-amd64 (run apt-get update) and no kernel in $CACHE"
  KPKG=$(basename "$cached" .deb)
fi
KV=${KPKG#linux-image-}
DEB=$CACHE/$KPKG.deb
if [ ! -s "$DEB" ]; then
  say "downloading $KPKG"
  tmpd=$(mktemp -d "$CACHE/dl.XXXXXX")
  (cd "$tmpd" && apt-get download -q "$KPKG" 2>&1 | { grep -v "^W: Download is performed unsandboxed" >&2 || true; }) ||
    { rm -rf "$tmpd"; die "apt-get download $KPKG failed"; }
  mv "$tmpd"/"${KPKG}"_*.deb "$DEB"; rm -rf "$tmpd"
fi

# ---- kernel image + module closure (cached per kernel version) ---------------------------------
KX=$CACHE/kx-$KV
LIST=$CACHE/$KPKG.list
if [ ! -s "$LIST" ]; then
  dpkg-deb --fsys-tarfile "$DEB" | tar -t > "$LIST.tmp" || die "cannot list $DEB (corrupt? delete it)"
  mv -f "$LIST.tmp" "$LIST"
fi
if [ ! -s "$KX/vmlinuz" ]; then
  mkdir -p "$KX"
  dpkg-deb --fsys-tarfile "$DEB" | tar -x -C "$KX" "./boot/vmlinuz-$KV"
  mv "$KX/boot/vmlinuz-$KV" "$KX/vmlinuz"
fi

# Modules /init loads. Dependencies come from each .ko's modinfo `depends=`; softdeps are mapped
# by hand (crypto-crc32c: TCG's default CPU has no SSE4.2, so the generic implementation).
WANT=(virtio_pci virtio_blk virtio_net ext4 isofs nls_utf8 crc32c_generic button evdev)
declare -A softdep=([crypto-crc32c]=crc32c_generic)
norm() { echo "${1//-/_}"; }
modpath() { # name -> path inside the deb (./lib/modules/KV/...ko), '-' and '_' are equivalent
  awk -v n="$(norm "$1")" '/\.ko$/ { b=$0; sub(/.*\//,"",b); sub(/\.ko$/,"",b); gsub(/-/,"_",b);
    if (b==n) { print; exit } }' "$LIST"
}
declare -A path=() deps=() seen=()
todo=("${WANT[@]}")
while [ "${#todo[@]}" -gt 0 ]; do
  fetch=()
  for m in "${todo[@]}"; do
    m=$(norm "$m"); [ -n "${path[$m]:-}" ] && continue
    p=$(modpath "$m"); [ -n "$p" ] || die "module $m not in $KPKG"
    path[$m]=$p
    [ -s "$KX/$p" ] || fetch+=("$p")
  done
  [ "${#fetch[@]}" -eq 0 ] || dpkg-deb --fsys-tarfile "$DEB" | tar -x -C "$KX" "${fetch[@]}"
  next=()
  for m in "${todo[@]}"; do
    m=$(norm "$m"); [ -n "${seen[$m]:-}" ] && continue; seen[$m]=1
    info=$(tr '\0' '\n' < "$KX/${path[$m]}")
    d=$(sed -n 's/^depends=//p' <<<"$info" | head -1 | tr ',' ' ')
    for s in $(sed -n 's/^softdep=//p' <<<"$info" | tr ' ' '\n' | grep -v ':$' || true); do
      [ -n "${softdep[$s]:-}" ] && d="${softdep[$s]} $d"
    done
    deps[$m]=$d
    for x in $d; do next+=("$x"); done
  done
  todo=(${next[@]+"${next[@]}"})
done
order=(); declare -A placed=()
place() { local m=$1 x; [ -n "${placed[$m]:-}" ] && return; placed[$m]=1
  for x in ${deps[$m]}; do place "$(norm "$x")"; done; order+=("$m"); }
for m in "${WANT[@]}"; do place "$(norm "$m")"; done

# ---- initramfs tree ------------------------------------------------------------------------------
STAGE=$(mktemp -d "$OUT/.stage.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT
R=$STAGE/root
mkdir -p "$R"/{bin,proc,sys,dev,mnt,seed,tmp,run,etc,lib/modules,usr/share/udhcpc}
cp /bin/busybox "$R/bin/busybox"
for m in "${order[@]}"; do cp "$KX/${path[$m]}" "$R/lib/modules/$m.ko"; done
printf '%s\n' "${order[@]}" > "$R/lib/modules/order"
echo "$KV" > "$R/etc/storm-kernel"

cat > "$R/usr/share/udhcpc/default.script" <<'EOF'
#!/bin/sh
# udhcpc hook: configure eth0, keep renewing (udhcpc stays running), record the address for /init
case "$1" in
  deconfig) ip -4 addr flush dev "$interface"; ip link set "$interface" up ;;
  bound|renew)
    cur=$(cat /run/dhcp.ip 2>/dev/null)
    if [ "$cur" != "$ip" ]; then
      ip -4 addr flush dev "$interface"
      ip addr add "$ip/${mask:-24}" dev "$interface"
      for r in $router; do ip route add default via "$r" dev "$interface" && break; done
    fi
    : > /etc/resolv.conf
    for d in $dns; do echo "nameserver $d" >> /etc/resolv.conf; done
    echo "$ip" > /run/dhcp.ip.tmp && mv /run/dhcp.ip.tmp /run/dhcp.ip ;;
esac
exit 0
EOF

cat > "$R/init" <<'EOF'
#!/bin/busybox sh
# storm test guest /init (generated by scripts/build-guest.sh; see there for the protocol).
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
mount -t tmpfs run /run

stty -F /dev/ttyS0 -onlcr 2>/dev/null
say() { echo "$*" > /dev/ttyS0 2>/dev/null || echo "$*"; }
err() { say "STORM-ERROR $*"; }
up() { cut -d' ' -f1 /proc/uptime; }
cmdline=$(cat /proc/cmdline)
case " $cmdline " in *" storm.trace=1 "*) trace() { say "STORM-TRACE $1 uptime=$(up)"; } ;; *) trace() { :; } ;; esac
trace init

# --- modules, in dependency order computed at build time
for m in $(cat /lib/modules/order); do
  insmod "/lib/modules/$m.ko" 2>/tmp/insmod.err ||
    grep -q 'File exists' /tmp/insmod.err || err "insmod $m: $(head -c 200 /tmp/insmod.err)"
done

trace modules
# --- graceful stop: ACPI power button -> /etc/acpi/PWRF/00000080 (busybox acpid's action name)
if ls /dev/input/event* >/dev/null 2>&1; then
  acpid -c /etc/acpi -l /tmp/acpid.log || err "acpid did not start"
fi

# --- wait (bounded) for a block device node to appear
wait_dev() { i=0; while [ ! -b "$1" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; [ -b "$1" ]; }
wait_dev /dev/vda || err "no /dev/vda after 10 s"

# --- NoCloud seed: the iso9660 volume labelled cidata (checked by reading the primary volume
# descriptor at 32 KiB: "CD001" magic and the 32-byte volume identifier)
iso_label() {
  [ "$(dd if="$1" bs=1 skip=32769 count=5 2>/dev/null)" = CD001 ] || return 1
  dd if="$1" bs=1 skip=32808 count=32 2>/dev/null | sed 's/ *$//'
}
seed=""
for try in 1 2 3 4 5 6 7 8 9 10; do
  for d in /dev/vd? /dev/sr?; do
    [ -b "$d" ] || continue
    l=$(iso_label "$d") || continue
    case "$l" in cidata|CIDATA) seed=$d; break 2 ;; esac
  done
  sleep 0.2
done
iid=""; hn=""; have_seed=0
if [ -z "$seed" ]; then
  err "no NoCloud seed (iso9660 volume labelled cidata) found"
elif ! mount -t iso9660 -o ro "$seed" /seed 2>/tmp/mount.err; then
  err "mount seed $seed: $(head -c 200 /tmp/mount.err)"
else
  have_seed=1
fi

# meta-data: `key: value` lines
md_get() {
  sed -n "s/^$1:[[:space:]]*//p" /seed/meta-data 2>/dev/null | head -1 |
    sed -e 's/[[:space:]]*$//' -e "s/^'\\(.*\\)'\$/\\1/" -e 's/^"\(.*\)"$/\1/'
}
if [ $have_seed = 1 ]; then
  if [ -f /seed/meta-data ]; then
    iid=$(md_get instance-id); hn=$(md_get local-hostname)
    [ -n "$iid" ] || err "meta-data has no instance-id"
  else
    err "seed has no meta-data"
  fi
fi
[ -n "$hn" ] && { hostname "$hn" || err "hostname $hn"; }
trace seed

# --- network: udhcpc keeps running (renews the lease), its hook writes /run/dhcp.ip
ip link set lo up
if ip link set eth0 up 2>/dev/null; then
  hopt=""; [ -n "$hn" ] && hopt="-x hostname:$hn"
  udhcpc -f -i eth0 -t 40 -T 1 -A 3 -s /usr/share/udhcpc/default.script $hopt \
    >/tmp/udhcpc.log 2>&1 &
  i=0; while [ ! -s /run/dhcp.ip ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done
  if [ -s /run/dhcp.ip ]; then say "STORM-IP $(cat /run/dhcp.ip)"
  else err "dhcp: no lease on eth0 after 60 s"; fi
else
  err "no eth0"
fi
trace network
case " $cmdline " in *" storm.trace=1 "*)
  sed 's/^/STORM-TRACE udhcpc: /' /tmp/udhcpc.log | while read -r l; do say "$l"; done ;; esac

# --- instance disk: ext4 on the whole /dev/vda, read-write
disk=0
if [ -b /dev/vda ]; then
  if mount -t ext4 -o rw /dev/vda /mnt 2>/tmp/mount.err; then disk=1
  else err "mount /dev/vda: $(head -c 200 /tmp/mount.err)"; fi
fi

say "STORM-BOOT instance=$iid hostname=$hn"
if [ $disk = 1 ]; then
  say "STORM-LAYERS $(ls /mnt/etc/storm/layers/ 2>/dev/null | tr '\n' ' ' | sed 's/ $//')"
  if [ -n "$hn" ]; then
    { mkdir -p /mnt/etc && echo "$hn" > /mnt/etc/hostname; } || err "write /etc/hostname"
  fi
fi

# --- user-data write_files: awk turns the YAML subset into /tmp/wf/<n>/{path,content,...}
wf_parse() {
  awk '
  function indent(s) { match(s, /^ */); return RLENGTH }
  function unq(v) {
    sub(/^[ \t]+/, "", v); sub(/[ \t]+$/, "", v)
    if (v ~ /^".*"$/ || v ~ /^\047.*\047$/) v = substr(v, 2, length(v) - 2)
    return v
  }
  function flush_block(   k, out, last) {
    if (!inblock) return
    # chomping: clip keeps one final newline, strip none, keep all trailing empty lines
    last = nb
    if (chomp != "+") while (last > 0 && bl[last] == "") last--
    out = ""
    for (k = 1; k <= last; k++) out = out bl[k] "\n"
    if (chomp == "-") sub(/\n$/, "", out)
    if (chomp == "+") for (k = last + 1; k <= nb; k++) out = out "\n"
    printf "%s", out > (dir "/content"); close(dir "/content")
    inblock = 0; nb = 0
  }
  function kv(s,   key, val) {
    # s is "key: value" (the item-level key line, already stripped of indent / "- ")
    if (!match(s, /^[A-Za-z_][A-Za-z0-9_-]*:/)) { bad = bad " line " NR; return }
    key = substr(s, 1, RLENGTH - 1); val = substr(s, RLENGTH + 1)
    sub(/^[ \t]+/, "", val)
    if (key == "content" && val ~ /^[|][-+]?[ \t]*(#.*)?$/) {
      inblock = 1; nb = 0; bind = -1; chomp = substr(val, 2, 1)
      if (chomp != "-" && chomp != "+") chomp = ""
      return
    }
    if (val ~ /^[|>]/) { bad = bad " " key "(unsupported scalar style)"; return }
    if (key == "content") { printf "%s\n", unq(val) > (dir "/content"); close(dir "/content"); return }
    printf "%s", unq(val) > (dir "/" key); close(dir "/" key)
  }
  NR == 1 { if ($0 !~ /^#cloud-config[ \t\r]*$/) { print "user-data is not #cloud-config" > "/tmp/wf/error"; exit } next }
  {
    sub(/\r$/, "")
    line = $0; ind = indent(line)
    if (inblock) {
      if (line ~ /^ *$/) { bl[++nb] = ""; next }
      if (bind < 0) { if (ind > key_ind) bind = ind; else bind = -2 }
      if (bind >= 0 && ind >= bind) { bl[++nb] = substr(line, bind + 1); next }
      flush_block()
    }
    if (line ~ /^ *(#.*)?$/) next
    if (ind == 0 && line !~ /^- /) {
      insec = (line ~ /^write_files:[ \t]*$/)
      next
    }
    if (!insec) next
    rest = substr(line, ind + 1)
    if (rest ~ /^- /) {
      n++; dir = "/tmp/wf/" n; system("mkdir -p " dir)
      rest = substr(rest, 2); key_ind = ind + 1 + indent(rest); sub(/^ +/, "", rest)
      kv(rest); next
    }
    if (n > 0 && ind == key_ind) { kv(rest); next }
    bad = bad " line " NR
  }
  END {
    flush_block()
    if (bad != "") print "unsupported user-data:" bad > "/tmp/wf/error"
  }' "$1"
}

nfiles=0
if [ $have_seed = 1 ] && [ -f /seed/user-data ]; then
  rm -rf /tmp/wf; mkdir -p /tmp/wf
  wf_parse /seed/user-data || err "user-data parser failed"
  [ -s /tmp/wf/error ] && err "$(cat /tmp/wf/error)"
  for d in $(ls -d /tmp/wf/[0-9]* 2>/dev/null | sort -t/ -k4 -n); do
    p=$(cat "$d/path" 2>/dev/null)
    case "$p" in /*) ;; *) err "write_files item without absolute path: '$p'"; continue ;; esac
    [ $disk = 1 ] || { err "write_files $p: no instance disk"; continue; }
    [ -f "$d/content" ] || : > "$d/content"
    enc=$(cat "$d/encoding" 2>/dev/null)
    case "$enc" in
      ""|text/plain) cp "$d/content" "$d/.data" ;;
      b64|base64) base64 -d < "$d/content" > "$d/.data" || { err "write_files $p: bad base64"; continue; } ;;
      gz+b64|gzip+base64|gz+base64|gzip+b64)
        base64 -d < "$d/content" | gunzip > "$d/.data" || { err "write_files $p: bad gz+b64"; continue; } ;;
      *) err "write_files $p: unsupported encoding $enc"; continue ;;
    esac
    mkdir -p "/mnt$(dirname "$p")" || { err "write_files $p: mkdir"; continue; }
    if [ "$(cat "$d/append" 2>/dev/null)" = true ]; then
      cat "$d/.data" >> "/mnt$p" || { err "write_files $p: append failed"; continue; }
    else
      cat "$d/.data" > "/mnt$p" || { err "write_files $p: write failed"; continue; }
    fi
    perm=$(cat "$d/permissions" 2>/dev/null); perm=${perm:-0644}
    chmod "$perm" "/mnt$p" || err "write_files $p: chmod $perm"
    say "STORM-FILE $p $(head -n 1 "$d/.data")"
    nfiles=$((nfiles+1))
  done
elif [ $have_seed = 1 ]; then
  err "seed has no user-data"
fi

# --- prove the instance layer is writable
if [ $disk = 1 ]; then
  if mkdir -p /mnt/var/lib/storm && echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) $iid" > /mnt/var/lib/storm/booted; then
    sync
  else
    err "write /var/lib/storm/booted"
  fi
fi
[ $have_seed = 1 ] && umount /seed
trace files

# --- services of the appliance layers (see the header: rc.d hooks)
if [ $disk = 1 ]; then
  for h in /mnt/etc/storm/rc.d/*; do
    [ -f "$h" ] && [ -x "$h" ] || continue
    n=${h##*/}
    STORM_ROOT=/mnt timeout 120 "$h" start > /dev/ttyS0 2> "/tmp/rc.$n.err" < /dev/null
    rc=$?
    [ $rc = 0 ] || err "rc.d/$n exited $rc: $(tail -n 1 "/tmp/rc.$n.err" | head -c 200)"
  done
  trace services
fi
say "STORM-READY uptime=$(up)"

case " $cmdline " in *" storm.burn=1 "*) while :; do :; done & ;; esac
# A burner switched from outside: /etc/storm/burn-url (a seed file, so a template like
# http://GATEWAY:PORT/burn/${member}) is asked every 2 s; "on" keeps one vCPU busy until it
# answers anything else (or nothing). Load for the controller's tests, switched per member.
burn_url=$(cat /mnt/etc/storm/burn-url 2>/dev/null | head -n 1)
if [ -n "$burn_url" ]; then
  (
    burner=
    # busybox nc, not wget: the static wget looks the "http" service up through glibc's NSS,
    # which crashes in a static binary without /etc/services. http://HOST:PORT/PATH only.
    hostport=${burn_url#http://}
    path=/${hostport#*/}
    hostport=${hostport%%/*}
    while :; do
      want=$(printf 'GET %s HTTP/1.0\r\n\r\n' "$path" | nc -w 2 "${hostport%:*}" "${hostport##*:}" 2>/dev/null | tail -n 1 | head -c 16)
      case "$want" in
        on*) if [ -z "$burner" ]; then (while :; do :; done) & burner=$!; say "STORM-BURN on"; fi ;;
        *) if [ -n "$burner" ]; then kill "$burner"; burner=; say "STORM-BURN off"; fi ;;
      esac
      sleep 2
    done
  ) &
fi
while :; do sleep 3600; done
EOF
mkdir -p "$R/etc/acpi/PWRF"
cat > "$R/etc/acpi/PWRF/00000080" <<'EOF'
#!/bin/sh
# ACPI power button (virsh shutdown): flush and detach the instance disk, then power off
echo "STORM-SHUTDOWN" > /dev/ttyS0
for h in $(ls -r /mnt/etc/storm/rc.d/* 2>/dev/null); do
  [ -x "$h" ] && STORM_ROOT=/mnt timeout 20 "$h" stop > /dev/null 2>&1 < /dev/null
done
sync
umount /mnt 2>/dev/null || mount -o remount,ro /mnt 2>/dev/null
sync
poweroff -f
EOF
chmod 755 "$R/init" "$R/usr/share/udhcpc/default.script" "$R/etc/acpi/PWRF/00000080"

# ---- pack (only replace when the tree changed) -------------------------------------------------
stamp=$( (cd "$R" && find . -type f | LC_ALL=C sort | xargs sha256sum) | sha256sum | cut -c1-64)
if [ -s "$OUT/initrd.gz" ] && [ "$(cat "$OUT/.initrd.stamp" 2>/dev/null)" = "$stamp" ]; then
  say "initrd.gz up to date"
else
  (cd "$R" && find . | LC_ALL=C sort | /bin/busybox cpio -o -H newc 2>/dev/null | gzip -n -6) > "$STAGE/initrd.gz"
  mv -f "$STAGE/initrd.gz" "$OUT/initrd.gz"
  echo "$stamp" > "$OUT/.initrd.stamp"
  say "initrd.gz written"
fi
if ! cmp -s "$KX/vmlinuz" "$OUT/vmlinuz" 2>/dev/null; then
  cp "$KX/vmlinuz" "$STAGE/vmlinuz" && mv -f "$STAGE/vmlinuz" "$OUT/vmlinuz"
fi
{
  echo "KERNEL_PACKAGE=$KPKG"
  echo "KERNEL_VERSION=$KV"
  echo "VMLINUZ_SHA256=$(sha256sum "$OUT/vmlinuz" | cut -c1-64)"
  echo "INITRD_SHA256=$(sha256sum "$OUT/initrd.gz" | cut -c1-64)"
  echo "MODULES=\"${order[*]}\""
} > "$OUT/guest.env"
say "kernel $KV; modules: ${order[*]}"
say "$(ls -s --block-size=K "$OUT/vmlinuz" "$OUT/initrd.gz" | tr '\n' ' ')in $(( ($(date +%s%N)-t0)/1000000 )) ms"
