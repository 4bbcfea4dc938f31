#!/usr/bin/env bash
# with-libvirtd.sh CMD [ARGS...]
# Runs CMD with the host's virtlogd and libvirtd (monolithic; bookworm has no virtqemud) up and
# answering on qemu:///system. Stops afterwards only the daemons this invocation started, so it
# nests and coexists with a libvirtd someone else runs. Exits with CMD's exit code.
set -euo pipefail

if [ "$#" -eq 0 ]; then
  echo "usage: with-libvirtd.sh CMD [ARGS...]" >&2
  exit 2
fi

URI=qemu:///system
LOG=/var/log/libvirt/libvirtd.log
# First start of libvirtd probes QEMU capabilities: ~8 s here under TCG; later starts use the cache.
START_TIMEOUT=${STORM_LIBVIRTD_TIMEOUT:-60}

started_libvirtd=""
started_virtlogd=""

# A live process named NAME (not a zombie): this machine's pid 1 reaps orphans only lazily, and a
# dead daemon lingering as a zombie still answers kill -0 and keeps its comm.
running() {
  local pid=$1 name=$2 stat
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
  [ "$(cat "/proc/$pid/comm" 2>/dev/null || true)" = "$name" ] || return 1
  stat=${stat##*) }
  [ "${stat:0:1}" != Z ]
}

# Matches only the host daemons, through their default pid files: a blade libvirtd of
# test/lib/lab.ts has the same executable name, so pgrep -x would mistake a lab for the host.
host_daemon_pid() {
  local name=$1 pidfile=$2 pid
  [ -r "$pidfile" ] || return 1
  pid=$(cat "$pidfile" 2>/dev/null || true)
  [ -n "$pid" ] && running "$pid" "$name" || return 1
  echo "$pid"
}

stop_pid() {
  local name=$1 pid=$2 i
  kill -TERM "$pid" 2>/dev/null || return 0
  for i in $(seq 100); do
    running "$pid" "$name" || return 0
    sleep 0.1
  done
  echo "with-libvirtd: $name ($pid) ignored SIGTERM for 10 s, sending SIGKILL" >&2
  kill -KILL "$pid" 2>/dev/null || true
}

cleanup() {
  # libvirtd first: it holds a connection to virtlogd.
  if [ -n "$started_libvirtd" ]; then stop_pid libvirtd "$started_libvirtd"; fi
  if [ -n "$started_virtlogd" ]; then stop_pid virtlogd "$started_virtlogd"; fi
}
trap cleanup EXIT
# Turn signals into a normal exit so the EXIT trap runs; CMD gets the same signal from the tty/group.
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p /var/log/libvirt/qemu /run/libvirt

if ! host_daemon_pid virtlogd /run/virtlogd.pid >/dev/null; then
  virtlogd -d
  for _ in $(seq 50); do
    host_daemon_pid virtlogd /run/virtlogd.pid >/dev/null && break
    sleep 0.1
  done
  started_virtlogd=$(host_daemon_pid virtlogd /run/virtlogd.pid) || {
    echo "with-libvirtd: virtlogd did not start (no live pid in /run/virtlogd.pid after 5 s)" >&2
    exit 1
  }
fi

if ! host_daemon_pid libvirtd /run/libvirtd.pid >/dev/null; then
  libvirtd -d
  for _ in $(seq 50); do
    host_daemon_pid libvirtd /run/libvirtd.pid >/dev/null && break
    sleep 0.1
  done
  started_libvirtd=$(host_daemon_pid libvirtd /run/libvirtd.pid) || {
    echo "with-libvirtd: libvirtd did not start (no live pid in /run/libvirtd.pid after 5 s)" >&2
    tail -n 20 "$LOG" >&2 2>/dev/null || true
    exit 1
  }
fi

deadline=$((SECONDS + START_TIMEOUT))
until virsh -q -c "$URI" uri >/dev/null 2>&1; do
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "with-libvirtd: libvirtd does not answer on $URI after ${START_TIMEOUT} s; tail of $LOG:" >&2
    tail -n 30 "$LOG" >&2 2>/dev/null || echo "(no log at $LOG)" >&2
    exit 1
  fi
  sleep 0.1
done

# Not exec: the EXIT trap must run after CMD.
set +e
"$@"
rc=$?
set -e
exit "$rc"
