#!/usr/bin/env bash
# build-mail-layer.sh [--force] — builds the mail appliance layer, build/guest/layers/mail.qcow2:
# an overlay over base.qcow2 (scripts/build-test-layers.sh) holding a minimal root that runs
# Debian bookworm's OpenSMTPD 6.8 when the test guest (scripts/build-guest.sh) boots it.
#
# What the layer holds (over the base's /etc/storm/layers/base, /etc/os-release):
#   /usr/sbin/smtpd, /usr/sbin/smtpctl, /usr/libexec/opensmtpd/*   from opensmtpd's .deb
#   the shared libraries those need (their closure, as the .debs' own ld.so resolves it), from
#     libc6 libcrypt1 libdb5.3 libevent-2.1-7 libpam0g libssl3 zlib1g libaudit1 libcap-ng0
#   /bin/busybox (the host's busybox-static, as in the initramfs) with /bin/sh and /bin/cat:
#     smtpd runs every mda through /bin/sh -c
#   /etc/passwd, /etc/group: root, opensmtpd, opensmtpq (Debian's names for OpenBSD's _smtpd and
#     _smtpq, compiled into its smtpd) and sink, the one user every local recipient maps to
#   /etc/smtpd.conf: listen on port 25 of every IPv4 address; accept from anyone mail for the
#     domains in /etc/smtpd/domains (default "storm.internal", the networks' DNS domain; a
#     deployment replaces the file to serve its own); refuse relaying anywhere else; deliver
#     every accepted recipient to `cat > /dev/null` as user sink — the paper's mail agents
#     "simply discarded emails that were successfully delivered".
#   /etc/storm/rc.d/50-smtpd: the start/stop hook the guest's /init runs (see build-guest.sh).
#     It binds /dev and /proc into the instance root, writes /etc/mailname from the hostname,
#     turns the guest's TCP SYN cookies off (see there why), starts busybox syslogd for smtpd's
#     log (/var/log/messages on the instance disk, rotated at 1 MiB), starts smtpd chrooted
#     into the instance root (a bad configuration fails there), waits
#     for its 220 greeting on 127.0.0.1:25 and prints
#       STORM-SERVICE smtpd up uptime=<s>          or  STORM-ERROR smtpd: <why>
#     then, every 5 s while it changes, the count of discarded messages (smtpctl's
#     scheduler.delivery.ok) as
#       STORM-MAIL delivered=<n>
#   /etc/storm/layers/mail, /usr/share/mail-appliance/packages (the .debs it was built from),
#   /usr/share/doc/<package>/copyright for every package taken from.
#
# How: the .debs come from `apt-get download` into build/guest/cache/mail/ (checked against the
# archive's SHA256, kept for rebuilds without apt lists) and are unpacked with dpkg-deb -x —
# nothing is installed on the host. The layer is made as build-test-layers.sh makes its upper
# layers, nothing mounted: debugfs writes the staged tree into a raw copy of the base, then an
# empty qcow2 over that raw image is rebased onto base.qcow2, which leaves in the overlay only the
# clusters that differ from the base.
# Reproducible: fixed clock (E2FSPROGS_FAKE_TIME), owners and times set per inode, files written
# in sorted order: the same .debs and base give the same sha256. Idempotent: rebuilt only when
# its inputs (this script, the .debs, busybox, base.qcow2) changed (--force rebuilds).
# Needs: apt-get, dpkg-deb, debugfs/e2fsck (e2fsprogs), qemu-img, busybox-static — all from
# scripts/install-system.sh. Writes build/guest/layers/mail.env (sha256, sizes, packages).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LAYERS=$ROOT/build/guest/layers
CACHE=$ROOT/build/guest/cache/mail
OUT=$LAYERS/mail.qcow2
say() { echo "build-mail-layer: $*"; }
die() { echo "build-mail-layer: ERROR: $*" >&2; exit 1; }

force=0
case "${1:-}" in --force) force=1 ;; "") ;; *) die "usage: $0 [--force]" ;; esac

need=()
for t in apt-get dpkg-deb debugfs e2fsck qemu-img sha256sum; do command -v "$t" >/dev/null || need+=("$t"); done
if [ ! -x /bin/busybox ] || ldd /bin/busybox >/dev/null 2>&1; then need+=("busybox-static"); fi
[ "${#need[@]}" -eq 0 ] || die "missing: ${need[*]} (scripts/install-system.sh installs them)"

PACKAGES=(opensmtpd libc6 libcrypt1 libdb5.3 libevent-2.1-7 libpam0g libssl3 zlib1g libaudit1 libcap-ng0)

[ -s "$LAYERS/base.qcow2" ] || bash "$ROOT/scripts/build-test-layers.sh"
mkdir -p "$CACHE"

# ---- .debs: the archive's current version of each, cached by file name ----------------------
debs=()
if uris=$(cd "$CACHE" && apt-get download --print-uris "${PACKAGES[@]}" 2>/dev/null) && [ -n "$uris" ]; then
  while read -r url file size sum; do
    url=${url//\'/}
    if [ ! -s "$CACHE/$file" ] || [ "$(sha256sum < "$CACHE/$file" | cut -c1-64)" != "${sum#SHA256:}" ]; then
      say "downloading $file"
      tmpd=$(mktemp -d "$CACHE/dl.XXXXXX")
      pkg=${file%%_*}
      (cd "$tmpd" && apt-get download -qq "$pkg" 2>&1 | { grep -v "^W: Download is performed unsandboxed" >&2 || true; }) ||
        { rm -rf "$tmpd"; die "apt-get download $pkg failed"; }
      got=$(ls "$tmpd"/*.deb)
      [ "$(sha256sum < "$got" | cut -c1-64)" = "${sum#SHA256:}" ] || { rm -rf "$tmpd"; die "$file: sha256 differs from the archive's ($url)"; }
      mv "$got" "$CACHE/$file"; rm -rf "$tmpd"
    fi
    debs+=("$CACHE/$file")
  done <<<"$uris"
else
  # no apt lists (apt-get update not run): the newest cached .deb of each package
  for p in "${PACKAGES[@]}"; do
    f=$(ls "$CACHE/${p}"_*.deb 2>/dev/null | sort -V | tail -1 || true)
    [ -n "$f" ] || die "cannot resolve $p (run apt-get update) and no $p .deb in $CACHE"
    debs+=("$f")
  done
fi
[ "${#debs[@]}" -eq "${#PACKAGES[@]}" ] || die "resolved ${#debs[@]} .debs for ${#PACKAGES[@]} packages: ${debs[*]}"

# ---- up to date? ----------------------------------------------------------------------------------
stamp=$( { sha256sum "${BASH_SOURCE[0]}" /bin/busybox "$LAYERS/base.qcow2" | cut -c1-64
           for d in "${debs[@]}"; do basename "$d"; done | LC_ALL=C sort; } | sha256sum | cut -c1-64)
if [ $force = 0 ] && [ -s "$OUT" ] && [ "$(cat "$LAYERS/.mail.stamp" 2>/dev/null)" = "$stamp" ] &&
   (cd "$LAYERS" && qemu-img check -U -q mail.qcow2) >/dev/null 2>&1; then
  say "mail.qcow2 up to date (--force rebuilds)"
  cat "$LAYERS/mail.env"
  exit 0
fi

t0=$(date +%s%N)
WORK=$(mktemp -d "$LAYERS/.mail.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
export E2FSPROGS_FAKE_TIME=1767225600   # 2026-01-01T00:00:00Z, as build-test-layers.sh
export TZ=UTC

X=$WORK/x        # every .deb unpacked
S=$WORK/stage    # what goes into the layer
mkdir -p "$X" "$S"
for d in "${debs[@]}"; do dpkg-deb -x "$d" "$X"; done

# copy PATH-IN-ROOT: from the unpacked .debs into the stage, keeping symlinks as symlinks
take() {
  local p=$1
  mkdir -p "$S/$(dirname "$p")"
  cp -a "$X/$p" "$S/$p"
}
take usr/sbin/smtpd
take usr/sbin/smtpctl
for f in "$X"/usr/libexec/opensmtpd/*; do take "usr/libexec/opensmtpd/$(basename "$f")"; done

# The library closure, resolved by the unpacked glibc's own loader against the unpacked library
# directories only (--list loads nothing from the host and runs none of the binaries' code).
LD=lib64/ld-linux-x86-64.so.2
LIBPATH=$X/lib/x86_64-linux-gnu:$X/usr/lib/x86_64-linux-gnu
: > "$WORK/needed"
for f in "$S"/usr/sbin/* "$S"/usr/libexec/opensmtpd/*; do
  [ -L "$f" ] && continue
  "$X/$LD" --library-path "$LIBPATH" --list "$f" >> "$WORK/needed" || die "ld.so --list $f failed"
done
libs=$(awk '$2 == "=>" && $3 ~ /^\// { print $3 }' "$WORK/needed" | LC_ALL=C sort -u)
for l in $libs; do
  case "$l" in "$X"/*) ;; *) die "library resolved outside the .debs: $l (add its package to PACKAGES)" ;; esac
  rel=${l#"$X"/}
  take "$rel"
  # the soname link points at the versioned file: take that too
  if [ -L "$X/$rel" ]; then
    to=$(readlink "$X/$rel")
    case "$to" in /*) take "${to#/}" ;; *) take "$(dirname "$rel")/$to" ;; esac
  fi
done
for d in "$X"/usr/share/doc/*/copyright; do take "${d#"$X"/}"; done

mkdir -p "$S/bin"
cp /bin/busybox "$S/bin/busybox"
ln -s busybox "$S/bin/sh"
ln -s busybox "$S/bin/cat"

mkdir -p "$S"/{dev,proc,run,tmp,var/run,var/spool,var/tmp,var/lib/opensmtpd/empty,var/spool/sink,etc/smtpd,etc/storm/layers,etc/storm/rc.d,usr/share/mail-appliance}
chmod 1777 "$S/tmp" "$S/var/tmp"
echo mail > "$S/etc/storm/layers/mail"
for d in "${debs[@]}"; do basename "$d" .deb; done | LC_ALL=C sort > "$S/usr/share/mail-appliance/packages"

cat > "$S/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
opensmtpd:x:100:100:OpenSMTPD Daemon:/var/lib/opensmtpd/empty:/usr/sbin/nologin
opensmtpq:x:101:101:OpenSMTPD queue user:/var/lib/opensmtpd/empty:/usr/sbin/nologin
sink:x:1000:1000:discarded mail:/var/spool/sink:/bin/sh
EOF
cat > "$S/etc/group" <<'EOF'
root:x:0:
opensmtpd:x:100:
opensmtpq:x:101:
sink:x:1000:
EOF
cat > "$S/etc/nsswitch.conf" <<'EOF'
passwd: files
group: files
hosts: files dns
EOF
cat > "$S/etc/hosts" <<'EOF'
127.0.0.1 localhost
EOF
echo storm.internal > "$S/etc/smtpd/domains"
cat > "$S/etc/smtpd.conf" <<'EOF'
# storm mail appliance (scripts/build-mail-layer.sh). Accepts from anyone mail for the domains
# in /etc/smtpd/domains and discards it once delivered, as the STORM paper's mail agents did.
# Anything else is refused ("relaying denied"): this host relays nothing.
table domains file:/etc/smtpd/domains
# every local part of those domains is delivered as the one user sink
table everyone { "@" = "sink" }

listen on 0.0.0.0

action "discard" mda "cat > /dev/null" user sink virtual <everyone>
match from any for domain <domains> action "discard"
EOF

cat > "$S/etc/storm/rc.d/50-smtpd" <<'EOF'
#!/bin/sh
# Starts (start) or stops (stop) OpenSMTPD in the instance root: run by the test guest's /init
# (scripts/build-guest.sh) from its initramfs, with STORM_ROOT set to where the instance disk
# is mounted; stdout goes to the serial console. Written by scripts/build-mail-layer.sh.
R=${STORM_ROOT:-/mnt}
up() { cut -d' ' -f1 /proc/uptime; }
fail() { echo "STORM-ERROR smtpd: $*"; exit 1; }
in_root() { chroot "$R" "$@"; }

case "${1:-start}" in
stop)
  in_root /usr/sbin/smtpctl stop >/dev/null 2>&1
  umount "$R/proc" "$R/dev" 2>/dev/null
  exit 0 ;;
start) ;;
*) fail "unknown action $1" ;;
esac

grep -q " $R/dev " /proc/mounts || mount -o bind /dev "$R/dev" || fail "bind /dev"
grep -q " $R/proc " /proc/mounts || mount -t proc proc "$R/proc" || fail "mount /proc"
# smtpd names itself after /etc/mailname: no DNS lookup of the hostname at start
hostname > "$R/etc/mailname"
cp /etc/resolv.conf "$R/etc/resolv.conf" 2>/dev/null
# smtpd listens with a backlog of 5 (SMTPD_BACKLOG). With more clients connecting at once the
# kernel answers with SYN cookies, and when the accept queue is still full as the client's ACK
# arrives, that ACK is dropped: the client believes it is connected and waits for a greeting
# that never comes (SMTP's server speaks first, so nothing is ever retransmitted). Measured
# here with 8 and 16 concurrent clients under TCG. Without cookies the SYN is dropped instead
# and the client's retransmission gets in once smtpd has accepted the ones before.
echo 0 > /proc/sys/net/ipv4/tcp_syncookies || fail "cannot turn SYN cookies off"
# smtpd logs through syslog(3) to /dev/log: busybox syslogd writes /var/log/messages on the
# instance disk (the loop below rotates it at 1 MiB; syslogd reopens its file every second)
LOG=$R/var/log/messages
if ! pidof syslogd >/dev/null; then
  mkdir -p "$R/var/log"
  syslogd -O "$LOG" || fail "syslogd"
fi
# smtpd checks its configuration before it detaches: a bad one fails here with its own message
# (a separate `smtpd -n` would cost seconds under TCG: every run loads libcrypto)
out=$(in_root /usr/sbin/smtpd 2>&1) || fail "$(echo "$out" | tail -n 1)"
i=0
until printf 'QUIT\r\n' | nc -w 2 127.0.0.1 25 2>/dev/null | grep -q '^220 '; do
  i=$((i+1)); [ $i -lt 60 ] || fail "no 220 greeting on 127.0.0.1:25 after 30 s"
  sleep 0.5
done
echo "STORM-SERVICE smtpd up uptime=$(up)"

# the count of discarded messages on the console when it changes; the log kept under 2 MiB
(
  last=
  while sleep 5; do
    n=$(in_root /usr/sbin/smtpctl show stats 2>/dev/null | sed -n 's/^scheduler\.delivery\.ok=//p')
    [ -n "$n" ] && [ "$n" != "$last" ] && { echo "STORM-MAIL delivered=$n"; last=$n; }
    [ "$(stat -c %s "$LOG" 2>/dev/null || echo 0)" -gt 1048576 ] && mv -f "$LOG" "$LOG.0"
  done
) </dev/null 2>/dev/null &
exit 0
EOF
chmod 755 "$S/etc/storm/rc.d/50-smtpd"
# smtpd refuses a configuration or table writable by others
chmod 644 "$S/etc/smtpd.conf" "$S/etc/smtpd/domains"

# owners and modes that differ from root:root and the staged file's mode, as Debian sets them
declare -A owner=([var/spool/sink]=1000:1000 [usr/sbin/smtpctl]=0:101)
declare -A mode=([usr/sbin/smtpctl]=0102755)   # smtpctl refuses to run unless setgid opensmtpq

# ---- the layer: debugfs writes the stage into a raw copy of the base ---------------------------
qemu-img convert -U -f qcow2 -O raw "$LAYERS/base.qcow2" "$WORK/base.raw"
cp --sparse=always "$WORK/base.raw" "$WORK/mail.raw"
mkdir -p "$WORK/base-tree"
debugfs -R "rdump / $WORK/base-tree" "$WORK/base.raw" >/dev/null 2>&1 || die "cannot read the base layer's tree"
t=$E2FSPROGS_FAKE_TIME
{
  (cd "$S" && find . -mindepth 1 | sed 's|^\./||' | LC_ALL=C sort) | while read -r p; do
    f=$S/$p
    if [ -L "$f" ]; then
      [ -e "$WORK/base-tree/$p" ] || [ -L "$WORK/base-tree/$p" ] && echo "rm /$p"
      echo "symlink /$p $(readlink "$f")"
    elif [ -d "$f" ]; then
      [ -d "$WORK/base-tree/$p" ] || echo "mkdir /$p"
      echo "sif /$p mode 0$(printf '%o' $((040000 | 0$(stat -c %a "$f"))))"
    else
      [ -e "$WORK/base-tree/$p" ] && echo "rm /$p"
      echo "write $f /$p"
      echo "sif /$p mode ${mode[$p]:-0$(printf '%o' $((0100000 | 0$(stat -c %a "$f"))))}"
    fi
    o=${owner[$p]:-0:0}
    printf 'sif /%s uid %s\nsif /%s gid %s\n' "$p" "${o%:*}" "$p" "${o#*:}"
    for field in mtime atime ctime crtime; do echo "sif /$p $field @$t"; done
  done
  # directories of the base that gained entries
  for p in / /etc /etc/storm /etc/storm/layers /usr /usr/share /var /var/lib; do
    for field in mtime atime ctime; do echo "sif $p $field @$t"; done
  done
} > "$WORK/mail.cmds"
debugfs -w -f "$WORK/mail.cmds" "$WORK/mail.raw" > "$WORK/mail.log" 2>&1
if grep -Eiv '^(debugfs [0-9]|debugfs: |Allocated inode)' "$WORK/mail.log" | grep -q .; then
  grep -Eiv '^(debugfs [0-9]|debugfs: |Allocated inode)' "$WORK/mail.log" | head -20 >&2
  die "debugfs reported errors (commands in $WORK/mail.cmds)"
fi
e2fsck -fn "$WORK/mail.raw" > "$WORK/mail.fsck" 2>&1 || { cat "$WORK/mail.fsck" >&2; die "e2fsck: the written filesystem is not clean"; }

# only the clusters that differ from base.qcow2 end up in the overlay (see build-test-layers.sh)
cp "$LAYERS/base.qcow2" "$WORK/base.qcow2"
(cd "$WORK" &&
  qemu-img create -q -f qcow2 -b mail.raw -F raw mail.qcow2 &&
  qemu-img rebase -f qcow2 -b base.qcow2 -F qcow2 mail.qcow2 &&
  qemu-img compare -q -f qcow2 -F raw mail.qcow2 mail.raw) || die "building the overlay over base.qcow2 failed"
(cd "$WORK" && qemu-img check -q mail.qcow2) || die "qemu-img check mail.qcow2 failed"
for p in usr/sbin/smtpd etc/smtpd.conf etc/storm/rc.d/50-smtpd; do
  cmp -s <(debugfs -R "cat /$p" "$WORK/mail.raw" 2>/dev/null) "$S/$p" || die "/$p differs in the written filesystem"
done

mv -f "$WORK/mail.qcow2" "$OUT"
used=$(du -sk --apparent-size "$S" | cut -f1)
{
  echo "MAIL_LAYER_SHA256=$(sha256sum "$OUT" | cut -c1-64)"
  echo "MAIL_LAYER_BYTES=$(stat -c %s "$OUT")"
  echo "MAIL_ROOT_KIB=$used"
  echo "MAIL_PACKAGES=\"$(tr '\n' ' ' < "$S/usr/share/mail-appliance/packages" | sed 's/ $//')\""
} > "$LAYERS/mail.env"
echo "$stamp" > "$LAYERS/.mail.stamp"
say "built in $(( ($(date +%s%N)-t0)/1000000 )) ms"
cat "$LAYERS/mail.env"
