#!/usr/bin/env bash
# build-test-layers.sh [--force] — builds the appliance layers the tests use, in build/guest/layers/:
#   base.qcow2        standalone qcow2: a 64 MiB ext4 filesystem (no partition table) with
#                     /etc/storm/layers/base, /etc/os-release, /var/lib/storm/
#   appliance.qcow2   overlay, backing file "base.qcow2": + /etc/storm/layers/appliance,
#                     /usr/share/mail-appliance/README
#   deployment.qcow2  overlay, backing file "appliance.qcow2": + /etc/storm/layers/deployment
# Nothing is mounted (no loop/nbd devices here): the base comes from `mkfs.ext4 -d`, each upper
# layer from editing a raw copy of the layer below with `debugfs -w`. The overlay then holds ONLY
# the clusters that differ from its backing chain. Measured: `qemu-img convert -B base.qcow2` does
# NOT do that — it copies every allocated cluster and marks the rest as zero clusters at depth 0,
# so the overlay would shadow its backing file entirely. What works: an empty qcow2 over the edited
# raw image, then a safe `qemu-img rebase -b <lower>.qcow2`, which copies into the overlay exactly
# the clusters where the raw image and the lower layer differ.
# Backing file names are relative, so the chain works in place (the provider rewrites them when
# it installs the layers).
# Reproducible: fixed UUID, hash seed, timestamps (E2FSPROGS_FAKE_TIME) -> the same sha256 each
# build. Idempotent: if all three layers exist and are intact, nothing is rebuilt (--force does).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=$ROOT/build/guest/layers
say() { echo "build-test-layers: $*"; }
die() { echo "build-test-layers: ERROR: $*" >&2; exit 1; }

force=0
case "${1:-}" in --force) force=1 ;; "") ;; *) die "usage: $0 [--force]" ;; esac

missing=()
command -v mkfs.ext4 >/dev/null || missing+=("e2fsprogs (mkfs.ext4)")
command -v debugfs >/dev/null || missing+=("e2fsprogs (debugfs)")
command -v qemu-img >/dev/null || missing+=("qemu-utils (qemu-img)")
command -v sha256sum >/dev/null || missing+=("coreutils (sha256sum)")
[ "${#missing[@]}" -eq 0 ] || die "missing: ${missing[*]} (add to scripts/install-system.sh)"
# -d (populate from a directory) needs e2fsprogs >= 1.43
grep -q -- '-d root-directory' <<<"$(mkfs.ext4 2>&1 || true)" || die "mkfs.ext4 has no -d option (e2fsprogs >= 1.43 needed)"

LAYERS=(base appliance deployment)
report() {
  local l f
  for l in "${LAYERS[@]}"; do
    f=$OUT/$l.qcow2
    printf 'build-test-layers: %-16s sha256=%s size=%s bytes backing=%s\n' "$l.qcow2" \
      "$(sha256sum "$f" | cut -c1-64)" "$(stat -c %s "$f")" \
      "$(qemu-img info -U --output=json "$f" | sed -n 's/.*"backing-filename": "\([^"]*\)".*/\1/p' | grep . || echo '(none)')"
  done
}

intact() {
  local l
  for l in "${LAYERS[@]}"; do [ -s "$OUT/$l.qcow2" ] || return 1; done
  # the whole chain opens and is consistent
  (cd "$OUT" && qemu-img check -U -q deployment.qcow2 && qemu-img info -U --backing-chain deployment.qcow2 |
    grep -c '^image:' | grep -qx 3) >/dev/null 2>&1
}

if [ $force = 0 ] && intact; then
  say "layers up to date in $OUT (--force rebuilds)"
  report
  exit 0
fi

t0=$(date +%s%N)
mkdir -p "$OUT"
WORK=$(mktemp -d "$OUT/.work.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# Reproducibility: a fixed clock for mke2fs/debugfs, fixed UUID and directory hash seed, fixed
# mtimes in the staging tree.
export E2FSPROGS_FAKE_TIME=1767225600   # 2026-01-01T00:00:00Z
export TZ=UTC
UUID=5707a11c-e000-4000-8000-000000000001
STAMP=202601010000.00

# ---- base: mkfs.ext4 -d from a staging directory -------------------------------------------------
S=$WORK/base
mkdir -p "$S"/etc/storm/layers "$S"/var/lib/storm "$S"/usr/share "$S"/tmp
echo base > "$S/etc/storm/layers/base"
cat > "$S/etc/os-release" <<'EOF'
PRETTY_NAME="storm test base"
NAME="storm-test"
ID=storm-test
VERSION_ID=1
EOF
chmod 1777 "$S/tmp"
find "$S" -exec touch -h -t "$STAMP" {} +
mkfs.ext4 -q -F -b 4096 -L storm-root -U "$UUID" -E "hash_seed=$UUID,root_owner=0:0" \
  -d "$S" "$WORK/base.raw" 64M
qemu-img convert -O qcow2 "$WORK/base.raw" "$WORK/base.qcow2"

# ---- upper layers: debugfs on a raw copy of the layer below, then a minimal overlay ------------
# layer LOWER NAME DEBUGFS-COMMANDS (host files referenced by the commands live in $WORK/files)
layer() {
  local lower=$1 name=$2 cmds=$3
  cp --sparse=always "$WORK/$lower.raw" "$WORK/$name.raw"
  printf '%s\n' "$cmds" > "$WORK/$name.cmds"
  debugfs -w -f "$WORK/$name.cmds" "$WORK/$name.raw" > "$WORK/$name.log" 2>&1
  if grep -Eiv '^(debugfs [0-9]|debugfs: |Allocated inode)' "$WORK/$name.log" | grep -q .; then
    cat "$WORK/$name.log" >&2; die "debugfs reported errors building $name"
  fi
  # e2fsck -n: the edited filesystem must be clean
  e2fsck -fn "$WORK/$name.raw" > "$WORK/$name.fsck" 2>&1 || { cat "$WORK/$name.fsck" >&2; die "$name: e2fsck"; }
  (cd "$WORK" &&
    qemu-img create -q -f qcow2 -b "$name.raw" -F raw "$name.qcow2" &&
    qemu-img rebase -f qcow2 -b "$lower.qcow2" -F qcow2 "$name.qcow2" &&
    qemu-img compare -q -f qcow2 -F raw "$name.qcow2" "$name.raw") ||
    die "$name: building the overlay over $lower.qcow2 failed"
}

F=$WORK/files; mkdir -p "$F"
echo appliance > "$F/appliance"
cat > "$F/README" <<'EOF'
mail-appliance: a test appliance layer for storm.
This file lives only in appliance.qcow2 (the layer over base.qcow2).
EOF
echo deployment > "$F/deployment"
touch -t "$STAMP" "$F"/*
chmod 644 "$F"/*

# debugfs `write` creates the inode with the host file's mode; set owner and times explicitly.
t=$E2FSPROGS_FAKE_TIME
fix() { printf 'sif %s uid 0\nsif %s gid 0\nsif %s mtime @%s\nsif %s atime @%s\nsif %s ctime @%s\n' \
  "$1" "$1" "$1" "$t" "$1" "$t" "$1" "$t"; }
layer base appliance "$(printf '%s\n' \
  "write $F/appliance /etc/storm/layers/appliance" \
  "mkdir /usr/share/mail-appliance" \
  "write $F/README /usr/share/mail-appliance/README"
  fix /etc/storm/layers/appliance; fix /usr/share/mail-appliance; fix /usr/share/mail-appliance/README)"
layer appliance deployment "$(printf '%s\n' \
  "write $F/deployment /etc/storm/layers/deployment"
  fix /etc/storm/layers/deployment)"

# ---- verify the chain before publishing ----------------------------------------------------------
(cd "$WORK" && qemu-img check -q deployment.qcow2) || die "qemu-img check failed"
chain=$(cd "$WORK" && qemu-img info --backing-chain deployment.qcow2)
[ "$(grep -c '^image:' <<<"$chain")" = 3 ] || { echo "$chain" >&2; die "backing chain is not 3 images"; }
for l in base appliance deployment; do
  got=$(debugfs -R "cat /etc/storm/layers/$l" "$WORK/deployment.raw" 2>/dev/null)
  [ "$got" = "$l" ] || die "marker /etc/storm/layers/$l missing in the deployment filesystem"
done

# publish: files in place are replaced by rename (a domain running on old layers keeps its inodes)
for l in "${LAYERS[@]}"; do mv -f "$WORK/$l.qcow2" "$OUT/$l.qcow2"; done
say "built in $(( ($(date +%s%N)-t0)/1000000 )) ms"
(cd "$OUT" && qemu-img info --backing-chain deployment.qcow2 |
  grep -E '^(image|backing file|disk size|virtual size):' | sed 's/^/build-test-layers:   /')
report
