// Simulated hardware for end-to-end tests: N "appliance servers" (blades), each with
//  - a BMC: OpenIPMI ipmi_sim on UDP 127.0.0.1:<port> (IPMI v2 lanplus, admin/password), and
//  - a real libvirt host: its own libvirtd listening on qemu+tcp://127.0.0.(10+i)/system,
//    started by the BMC on chassis power-on and killed on power-off; with `tls`, also on
//    qemu+tls://127.0.0.(10+i)/system with a server certificate `storm tls server` issued from
//    the given CA (build/bin/storm, so npm run build first).
//
// How a blade is built (scripts BLADE_POWER_SH and BLADE_INIT_SH below, written into the lab dir):
//  ipmi_sim --startcmd--> blade-power.sh (the process whose life *is* the chassis power state)
//    --> unshare --mount --uts --pid: blade-init.sh as pid 1 of a fresh pid namespace
//          bind-mounts the blade's own etc/lib/cache/log dirs over the libvirt dirs, tmpfs on
//          /run/libvirt, then runs libvirtd in the foreground.
// Power-off SIGKILLs that pid-1, which makes the kernel kill everything in the namespace
// (libvirtd, qemu guests, dnsmasq...) like a power cut; the mount namespace and its tmpfs go
// with it, while lib/ (domain and pool definitions, images) survives like a disk.
//
// Requires root, scripts/install-system.sh, and nothing listening on 127.0.0.(10+i):16509.
// The blades do not need the host's libvirtd.
//
// Measured on the 2-core TCG machine: BMCs answer < 0.1 s after spawn; power-on -> libvirt
// answering ~0.2 s (first and later power-ons alike: the QEMU capability probe is lazy and costs
// ~0.7 s on the blade's first domain define, then it is cached in the blade's cache/ dir);
// power-off ~0.6 s (ipmi_sim sends its SIGTERM ~0.4 s after acknowledging the command).
// IPMI: 'chassis power on|off|cycle|status' work; 'reset' and 'soft' answer
// "Invalid data field in request" (ipmi_sim needs a connected VM serial client for those).
// Blades share the host's network namespace: anything a blade binds (a libvirt network's
// bridge/dnsmasq) must not collide between blades. 'virsh sysinfo' fails (no SMBIOS here).
// Each BMC also serves a power sensor in Watts that follows the blade's power (on 120 W, off
// 8 W) and that lab.setWatts() sets; "the power sensor" below says how ipmi_sim is made to.
// setPower() waits for the sensor to follow a change: usually one more IPMI read, ~70 ms.

import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

export interface Bmc { address: string; port: number; username: string; password: string }
export interface Blade {
  name: string;
  libvirtUri: string;
  bmc: Bmc;
  /** qemu+tls://ADDRESS/system, when the lab was started with `tls` (clients add ?pkipath=DIR). */
  tlsUri?: string;
}
export interface Lab {
  dir: string;
  blades: Blade[];
  power(blade: Blade): Promise<'on' | 'off'>;
  setPower(blade: Blade, on: boolean): Promise<void>;
  /** SIGKILLs the blade's libvirtd (a daemon crash, the blade stays up); the blade restarts it, and this waits until it answers again. */
  killLibvirtd(blade: Blade): Promise<void>;
  /**
   * Makes the blade's BMC stop answering while the blade itself keeps running, as a BMC that
   * hung or lost its network does: its ipmi_sim is frozen (SIGSTOP), not killed, because a
   * dead ipmi_sim takes the blade with it (blade-power.sh runs under pdeathsig). Its libvirtd,
   * guests and networks run on; every IPMI request to it times out, so power() and setPower()
   * fail until startBmc(). Resolves once the process is stopped.
   */
  stopBmc(blade: Blade): Promise<void>;
  /**
   * Lets a stopped BMC answer again (SIGCONT) and resolves once it does. It then handles the
   * requests queued while it was frozen (stale sessions, which it drops). No-op when running.
   */
  startBmc(blade: Blade): Promise<void>;
  /**
   * Sets the Watts the blade's BMC reports on its power sensor (POWER_SENSOR), 0..510; the
   * sensor serves 2 W steps, so an odd value reads one more. Lasts until the blade's next power
   * change, which sets the model's draw (on 120 W, off 8 W). Resolves, with what the sensor
   * serves, once the BMC reports it (it polls the value every 0.1 s).
   */
  setWatts(blade: Blade, watts: number): Promise<number>;
  stop(): Promise<void>;
}

export interface LabOptions {
  blades: number;
  /** Lab directory; default: a fresh /var/tmp/storm-lab-XXXXXX, removed by stop() unless STORM_KEEP_LAB=1. A given dir is kept. */
  dir?: string;
  /** First BMC port to try (UDP for IPMI, TCP of the same number for ipmi_sim's VM serial); default 9601. */
  firstPort?: number;
  initialPower?: 'on' | 'off';
  /**
   * Blades also listen with TLS, presenting a certificate from the CA in `caDir` (made by
   * `storm tls ca`), and require client certificates from that CA. The TCP listener stays,
   * so the lab's own checks and the tcp URI work as without it.
   */
  tls?: { caDir: string };
}

const BMC_ADDRESS = '127.0.0.1';
const BMC_USER = 'admin';
const BMC_PASSWORD = 'password';
// The power sensor each BMC serves and its model (see "the power sensor" below).
const WATTS_ON = 120;
const WATTS_OFF = 8;
const WATTS_POLL_MS = 100;
export const POWER_SENSOR = 'Pwr Consumption';
const POWER_SENSOR_NUMBER = 1;
const LIBVIRT_PORT = 16509;
const LIBVIRT_TLS_PORT = 16514;
const STORM_CLI = fileURLToPath(new URL('../../build/bin/storm', import.meta.url));
// Blade i listens on 127.0.0.(ADDRESS_BASE+i). STORM_LAB_ADDRESS_BASE moves a lab to other
// addresses, so two labs (two checkouts testing at once) do not collide.
const ADDRESS_BASE = Number(process.env.STORM_LAB_ADDRESS_BASE ?? 10);
const MAX_BLADES = 254 - ADDRESS_BASE;
// First power-on of a blade probes QEMU capabilities into the blade's own cache (seconds under
// TCG, more with several blades booting on 2 cores); later power-ons reuse the cache.
const POWER_ON_TIMEOUT_MS = Number(process.env.STORM_LAB_POWER_ON_TIMEOUT_MS ?? 120_000);
const POWER_OFF_TIMEOUT_MS = 30_000;
const BMC_START_TIMEOUT_MS = 10_000;
const CMD_TIMEOUT_MS = 30_000;

interface RunResult { stdout: string; stderr: string }

function run(file: string, args: string[], timeoutMs = CMD_TIMEOUT_MS): Promise<RunResult> {
  return new Promise((resolvePromise, reject) => {
    execFile(file, args, { timeout: timeoutMs, killSignal: 'SIGKILL', encoding: 'utf8' }, (error, stdout, stderr) => {
      if (error) {
        const detail = stderr.trim() || stdout.trim() || error.message;
        const err = new Error(`${file} ${args.join(' ')}: ${detail}`) as Error & RunResult & { exitCode: unknown };
        err.stdout = stdout;
        err.stderr = stderr;
        err.exitCode = error.code;
        reject(err);
        return;
      }
      resolvePromise({ stdout, stderr });
    });
  });
}

/** The chassis power a BMC reports (`ipmitool chassis power status`); throws when it does not answer. */
export async function chassisPower(bmc: Bmc): Promise<'on' | 'off'> {
  const out = await ipmitool(bmc, 'chassis', 'power', 'status');
  if (/Chassis Power is on/.test(out)) return 'on';
  if (/Chassis Power is off/.test(out)) return 'off';
  throw new Error(`lab: unexpected ipmitool output from the BMC at ${bmc.address}:${bmc.port}: ${out.trim()}`);
}

/** Runs `ipmitool -I lanplus -C 3 ...` against a BMC and returns stdout; throws with ipmitool's stderr. */
export async function ipmitool(bmc: Bmc, ...args: string[]): Promise<string> {
  // -C 3: ipmi_sim lacks cipher-suite discovery; without a fixed suite every call takes ~10 s.
  const base = ['-I', 'lanplus', '-C', '3', '-H', bmc.address, '-p', String(bmc.port), '-U', bmc.username, '-P', bmc.password];
  return (await run('ipmitool', [...base, ...args])).stdout;
}

async function libvirtAnswers(uri: string): Promise<{ ok: boolean; error: string }> {
  try {
    await run('virsh', ['-q', '-c', uri, 'uri'], 10_000);
    return { ok: true, error: '' };
  } catch (e) {
    return { ok: false, error: (e as Error).message };
  }
}

async function tail(file: string, lines: number): Promise<string> {
  try {
    const text = await readFile(file, 'utf8');
    return text.split('\n').slice(-lines - 1).join('\n').trimEnd();
  } catch {
    return `(no ${file})`;
  }
}

function udpFree(port: number): Promise<boolean> {
  return new Promise((res) => {
    const s = createSocket('udp4');
    s.once('error', () => { s.close(); res(false); });
    s.bind(port, BMC_ADDRESS, () => { s.close(() => res(true)); });
  });
}

function tcpFree(address: string, port: number): Promise<boolean> {
  return new Promise((res) => {
    const srv = createServer();
    srv.once('error', () => res(false));
    srv.listen({ host: address, port, exclusive: true }, () => srv.close(() => res(true)));
  });
}

/** The state letter of /proc/PID/stat (R, S, T stopped, Z zombie, ...), or null when gone. */
function processState(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.charAt(stat.lastIndexOf(')') + 2);
  } catch {
    return null;
  }
}

// A zombie still answers kill(pid, 0). This machine's pid 1 reaps orphans only lazily (seen:
// defunct qemu probes for seconds), so a killed orphan must count as gone once it is a zombie.
function alive(pid: number): boolean {
  const state = processState(pid);
  return state !== null && state !== 'Z';
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try { process.kill(pid, sig); } catch { /* already gone */ }
}

async function waitGone(pids: number[], timeoutMs: number): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  let left = pids.filter(alive);
  while (left.length > 0 && Date.now() < deadline) {
    await sleep(50);
    left = left.filter(alive);
  }
  return left;
}

/** Host pids whose command line mentions `needle` (the lab dir marks every lab process). */
async function pidsMentioning(needle: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    try {
      const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8');
      if (cmdline.includes(needle)) pids.push(pid);
    } catch { /* exited meanwhile */ }
  }
  return pids;
}

// ---- scripts written into the lab dir ------------------------------------------------------

// Started by ipmi_sim on power-on; ipmi_sim SIGTERMs it on power-off (immediately, since no VM
// connects to the serial port; the kill is noticed ~0.4 s after the IPMI command returns).
const BLADE_POWER_SH = `#!/bin/bash
# blade-power.sh LABDIR BLADEDIR NAME
set -u
lab=$1 dir=$2 name=$3
exec >>"$dir/power.log" 2>&1 </dev/null
echo "$(date +%T.%N) power on (pid $$)"
# The power sensor's draw (see "the power sensor" in lab.ts), written whole.
watts() { echo "$1" >"$dir/watts.tmp" && mv -f "$dir/watts.tmp" "$dir/watts"; }
watts ${WATTS_ON}
echo $$ >"$dir/power.pid"
# setpriv --pdeathsig: if this script dies any other way (SIGKILL from ipmi_sim's kill_wait or
# from the lab's stop), unshare dies too, and --kill-child then takes the whole namespace down.
setpriv --pdeathsig KILL unshare --mount --propagation private --uts --pid --fork --mount-proc \\
  --kill-child=KILL -- /bin/bash "$lab/blade-init.sh" "$dir" "$name" &
ns=$!
# The blade's libvirt networks put their bridges in the host's kernel (blades share its network
# namespace): a real server's bridges vanish with its power, so these go too, or the next
# power-on's network autostart finds its bridge "already in use".
unplug() {
  for x in "$dir"/etc/qemu/networks/*.xml; do
    [ -e "$x" ] || continue
    br=$(sed -n "s/.*<bridge name='\\([^']*\\)'.*/\\1/p" "$x" | head -n 1)
    [ -n "$br" ] && ip link del "$br" 2>/dev/null && echo "$(date +%T.%N) bridge $br unplugged"
  done
  return 0
}
cut() {
  echo "$(date +%T.%N) power off"
  # Kill pid 1 of the namespace, not unshare: the kernel then kills every process in it and
  # unshare reaps pid 1 only after all are gone, so 'wait' below returns on a dead blade.
  # (unshare then prints "sigprocmask unblock failed: Invalid argument": it tries to re-raise
  # SIGKILL on itself, which cannot be unblocked; harmless.)
  init=$(cat /proc/$ns/task/$ns/children 2>/dev/null)
  if [ -n "$init" ]; then kill -KILL $init 2>/dev/null; else kill -KILL $ns 2>/dev/null; fi
  wait $ns
  unplug
  watts ${WATTS_OFF}
  rm -f "$dir/power.pid"
  exit 0
}
trap cut TERM INT HUP
wait $ns
status=$?
echo "$(date +%T.%N) blade died by itself (unshare status $status)"
unplug
watts ${WATTS_OFF}
rm -f "$dir/power.pid"
`;

const BLADE_INIT_SH = `#!/bin/bash
# blade-init.sh BLADEDIR NAME -- pid 1 of the blade's pid/mount/uts namespaces.
set -eu
dir=$1 name=$2
# Mount points must exist on the host fs; the blade sees only its own dirs over them.
mkdir -p /etc/libvirt /var/lib/libvirt /var/cache/libvirt /var/log/libvirt /run/libvirt
mount --bind "$dir/etc" /etc/libvirt
mount --bind "$dir/lib" /var/lib/libvirt
mount --bind "$dir/cache" /var/cache/libvirt
mount --bind "$dir/log" /var/log/libvirt
# /run is RAM on a real server: a fresh tmpfs per power-on, so no stale domain status or
# sockets survive a power cut (libvirtd would otherwise try to reattach to dead qemu pids).
mount -t tmpfs -o mode=0755,size=64m blade-run /run/libvirt
hostname "$name"
echo "$(date +%T.%N) namespace ready, starting libvirtd"
# -f with the lab path (same file as /etc/libvirt/libvirtd.conf) makes the daemon findable by
# 'pgrep -f LABDIR'. Own pid file: the default /run/libvirtd.pid is the host's daemon's.
# A libvirtd that dies is started again a second later, as systemd does on a real host; its
# guests (qemu) keep running meanwhile and the new daemon finds them in /run/libvirt.
# Stay pid 1 (no exec): qemu daemonizes and is reparented to pid 1; bash reaps such orphans,
# libvirtd would leave zombies that make 'virsh destroy' wait for a pid that never goes away.
set +e
while :; do
  libvirtd --listen -f "$dir/etc/libvirtd.conf" -p /run/libvirt/libvirtd.pid &
  daemon=$!
  wait $daemon
  status=$?
  echo "$(date +%T.%N) libvirtd exited with status $status; restarting it in 1 s"
  sleep 1
done
`;

interface ServerPki { caFile: string; certFile: string; keyFile: string }

function libvirtdConf(listenAddr: string, hostUuid: string, pki: ServerPki | null): string {
  // Paths on the host's filesystem, which the blade sees (only the libvirt dirs are its own).
  const tls = pki
    ? `listen_tls = 1
tls_port = "${LIBVIRT_TLS_PORT}"
ca_file = "${pki.caFile}"
cert_file = "${pki.certFile}"
key_file = "${pki.keyFile}"
# libvirt's default, said out loud: a client without a certificate from ca_file is refused
tls_no_verify_certificate = 0
auth_tls = "none"`
    : 'listen_tls = 0';
  return `# written by test/lib/lab.ts
${tls}
listen_tcp = 1
listen_addr = "${listenAddr}"
tcp_port = "${LIBVIRT_PORT}"
# loopback only, test lab: no SASL/TLS
auth_tcp = "none"
# every blade would otherwise report the machine's (shared) SMBIOS UUID
host_uuid = "${hostUuid}"
log_outputs = "3:file:/var/log/libvirt/libvirtd.log"
`;
}

// The blade has no virtlogd (the host's socket is hidden under the blade's /run/libvirt), so
// qemu writes its log file directly.
const QEMU_CONF = `# written by test/lib/lab.ts
# root: /dev/kvm is root-only on these machines; the default user causes a capability re-probe loop
user = "root"
group = "root"
stdio_handler = "file"
`;

function lanConf(name: string, port: number, guid: string, labDir: string, bladeDir: string): string {
  return `# written by test/lib/lab.ts
name "${name}"
set_working_mc 0x20
  startlan 1
    addr ${BMC_ADDRESS} ${port}
    priv_limit admin
    allowed_auths_callback none md2 md5 straight
    allowed_auths_user none md2 md5 straight
    allowed_auths_operator none md2 md5 straight
    allowed_auths_admin none md2 md5 straight
    guid ${guid}
  endlan
  # startcmd only manages a process together with a VM serial interface; nothing connects to
  # it (TCP, same number as the UDP LAN port), so power-off SIGTERMs the process at once.
  serial 15 ${BMC_ADDRESS} ${port} codec VM
  startcmd "setpriv --pdeathsig TERM /bin/bash ${labDir}/blade-power.sh ${labDir} ${bladeDir} ${name}"
  startnow false
  poweroff_wait 2
  kill_wait 5
  user 2 true "${BMC_USER}" "${BMC_PASSWORD}" admin 10 none md2 md5 straight
`;
}

// ---- the power sensor ------------------------------------------------------------------
//
// Each BMC serves one power sensor, "Pwr Consumption" (Dell's name for it), read like a real
// one: `ipmitool sdr list full` shows "Pwr Consumption | 120 Watts | ok". ipmi_sim has no DCMI,
// but its sensors can poll a number from a file (ipmi_sim_cmd(5), sensor_add ... poll):
//  - the value is BLADEDIR/watts, in Watts, polled every WATTS_POLL_MS; ipmi_sim divides it
//    by 2 into the sensor's byte and the SDR's M = 2 multiplies it back, so the sensor reads
//    0..510 W in 2 W steps (an odd value reads one more; a larger one reads 510);
//  - the model: power-on sets the draw to WATTS_ON, power-off to WATTS_OFF (a BMC and fans
//    on standby), both written by blade-power.sh; lab.setWatts(blade, w) sets any value
//    (what a load would draw) until the next power change.
//  - a missing or garbled file leaves the last value (ipmi_sim keeps it); until the first poll
//    the sensor reads the .emu's sensor_set_value, WATTS_OFF (every blade starts off);
//  - lab.setPower() and setWatts() return once the BMC serves the new draw.
// Two ipmi_sim traps: the SDR must be added before its sensor, or the sensor is never scanned
// ("ns", no reading); and mc_add's persist_sdr reloads the previous run's SDR from the state
// dir, so a reused lab dir would serve the sensor twice; the .emu file is the SDR's only source.

/**
 * The SDR of the power sensor: a Full Sensor Record (IPMI 2.0 section 43.1), threshold-based,
 * sensor type Current (0x03, as Dell and HPE type their power meters), unit Watts (0x06),
 * reading = 2 × raw, no thresholds, no events. Bytes as main_sdr_add takes them (hex needs 0x).
 */
function powerSensorSdr(): string {
  const name = [...POWER_SENSOR].map((c) => (c === ' ' ? '0x20' : `'${c}`));
  const body = [
    0x20, 0x00, POWER_SENSOR_NUMBER, // owner: the BMC (IPMB 0x20), LUN 0; sensor number
    0x07, 0x01, // entity: system board, instance 1
    0x41, // initialization: init scanning, scanning enabled (no events)
    0x43, // capabilities: auto re-arm, no hysteresis, no thresholds, no events
    0x03, 0x01, // sensor type Current; event/reading type: threshold
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // event masks, readable/settable thresholds: none
    0x00, 0x06, 0x00, // units: unsigned, base unit Watts, no modifier
    0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, // linear; M = 2, tolerance 0; B = 0; accuracy 0; R and B exponents 0
    0x00, 0x00, 0x00, 0x00, 0xff, 0x00, // analog flags (none given); nominal, normal max, normal min; sensor max 0xff, min 0
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // thresholds (unused)
    0x00, 0x00, // hysteresis
    0x00, 0x00, 0x00, // reserved, reserved, OEM
    0xc0 | POWER_SENSOR.length, // id string: 8-bit ASCII, its length
  ];
  const hex = (b: number) => `0x${b.toString(16).padStart(2, '0')}`;
  // Header: record id (ipmi_sim assigns its own), SDR version 0x51, type 1 (full), length.
  return ['0x00', '0x00', '0x51', '0x01', hex(body.length + POWER_SENSOR.length), ...body.map(hex), ...name].join(' ');
}

/** The BMC's emulator commands; `wattsFile` is read by the power sensor (paths are [\w./-]+, no quoting needed). */
function bmcEmu(wattsFile: string): string {
  return `mc_setbmc 0x20
mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02
sel_enable 0x20 1000 0x0a
main_sdr_add 0x20 ${powerSensorSdr()}
sensor_add 0x20 0 ${POWER_SENSOR_NUMBER} 0x03 0x01 poll ${WATTS_POLL_MS} file "${wattsFile}" div=2
sensor_set_value 0x20 0 ${POWER_SENSOR_NUMBER} ${WATTS_OFF / 2} 0
mc_enable 0x20
`;
}

/** Writes the sensor's file whole (rename), so ipmi_sim never reads half a number. */
async function writeWatts(bladeDir: string, watts: number): Promise<void> {
  await writeFile(join(bladeDir, 'watts.tmp'), `${watts}\n`);
  await rename(join(bladeDir, 'watts.tmp'), join(bladeDir, 'watts'));
}

// ---- the lab -----------------------------------------------------------------------------

interface BladeState {
  blade: Blade;
  dir: string;
  sim: ChildProcess | undefined;
  simExited: Promise<void>;
}

/** Resolves once the blade's BMC answers a power query; fails if its ipmi_sim exits or stays silent. */
async function bmcAnswering(s: BladeState): Promise<void> {
  const deadline = Date.now() + BMC_START_TIMEOUT_MS;
  for (;;) {
    if (s.sim?.exitCode !== null) {
      throw new Error(`lab: ipmi_sim of ${s.blade.name} exited (${s.sim?.exitCode}):\n${await tail(join(s.dir, 'ipmi_sim.log'), 20)}`);
    }
    try {
      // -N 1 -R 1: a short question, so the loop notices an answer soon.
      await run('ipmitool', ['-I', 'lanplus', '-C', '3', '-N', '1', '-R', '1', '-H', s.blade.bmc.address, '-p', String(s.blade.bmc.port),
        '-U', s.blade.bmc.username, '-P', s.blade.bmc.password, 'chassis', 'power', 'status'], 5_000);
      return;
    } catch (e) {
      if (Date.now() > deadline) throw new Error(`lab: BMC of ${s.blade.name} not answering after ${BMC_START_TIMEOUT_MS} ms: ${(e as Error).message}`);
    }
    await sleep(50);
  }
}

async function pickPorts(count: number, firstPort: number, exact: boolean): Promise<number[]> {
  const ports: number[] = [];
  for (let port = firstPort; ports.length < count && port < 65535; port++) {
    const free = (await udpFree(port)) && (await tcpFree(BMC_ADDRESS, port));
    if (free) ports.push(port);
    else if (exact) throw new Error(`lab: port ${port} on ${BMC_ADDRESS} (UDP or TCP) is in use; pick another firstPort`);
  }
  if (ports.length < count) throw new Error(`lab: not enough free ports from ${firstPort}`);
  return ports;
}

/** A blade's server certificate, from `storm tls server` as an operator would make it. */
async function issueServerPki(caDir: string, out: string, address: string, name: string): Promise<ServerPki> {
  await run(STORM_CLI, ['tls', 'server', '--ca', caDir, '--host', address, '--host', name, '--out', out, '--force']);
  return { caFile: join(out, 'cacert.pem'), certFile: join(out, 'servercert.pem'), keyFile: join(out, 'serverkey.pem') };
}

/** Deletes the host-kernel bridges of a (dead) blade's libvirt networks, as blade-power.sh's unplug does. */
async function unplugBridges(bladeDir: string): Promise<void> {
  const netDir = join(bladeDir, 'etc', 'qemu', 'networks');
  for (const f of await readdir(netDir).catch(() => [] as string[])) {
    if (!f.endsWith('.xml')) continue;
    const br = /<bridge name='([^']+)'/.exec(await readFile(join(netDir, f), 'utf8').catch(() => ''))?.[1];
    if (br) await run('ip', ['link', 'del', br]).catch(() => undefined);
  }
}

export async function startLab(options: LabOptions): Promise<Lab> {
  const count = options.blades;
  if (!Number.isInteger(count) || count < 1 || count > MAX_BLADES) throw new Error(`lab: blades must be 1..${MAX_BLADES}`);
  if (process.getuid?.() !== 0) throw new Error('lab: needs root (namespaces, mounts, libvirtd)');

  for (let i = 1; i <= count; i++) {
    const addr = `127.0.0.${ADDRESS_BASE + i}`;
    for (const port of options.tls ? [LIBVIRT_PORT, LIBVIRT_TLS_PORT] : [LIBVIRT_PORT]) {
      if (!(await tcpFree(addr, port))) {
        throw new Error(`lab: ${addr}:${port} is in use — a blade libvirtd of another lab still running? (pgrep -af storm-lab)`);
      }
    }
  }

  const ownDir = options.dir === undefined;
  const dir = ownDir ? await mkdtemp('/var/tmp/storm-lab-') : resolve(options.dir!);
  // Paths go unquoted into ipmi_sim's startcmd.
  if (!/^[\w./-]+$/.test(dir)) throw new Error(`lab: dir must match [A-Za-z0-9_./-]+: ${dir}`);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'blade-power.sh'), BLADE_POWER_SH);
  await writeFile(join(dir, 'blade-init.sh'), BLADE_INIT_SH);
  await chmod(join(dir, 'blade-power.sh'), 0o755);
  await chmod(join(dir, 'blade-init.sh'), 0o755);

  const ports = await pickPorts(count, options.firstPort ?? 9601, options.firstPort !== undefined);
  const states: BladeState[] = [];
  let stopped = false;

  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    // Blades first: TERM makes blade-power.sh cut its namespace; then the BMCs.
    const powerPids: number[] = [];
    for (const s of states) {
      const pid = Number((await readFile(join(s.dir, 'power.pid'), 'utf8').catch(() => '')).trim());
      if (pid > 0) { powerPids.push(pid); signal(pid, 'SIGTERM'); }
    }
    for (const pid of await waitGone(powerPids, 10_000)) signal(pid, 'SIGKILL');
    // A frozen BMC (stopBmc) would hold SIGTERM pending until it runs again.
    for (const s of states) if (s.sim?.pid !== undefined && s.sim.exitCode === null) s.sim.kill('SIGCONT');
    for (const s of states) if (s.sim?.pid !== undefined && s.sim.exitCode === null) s.sim.kill('SIGTERM');
    await Promise.race([Promise.all(states.map((s) => s.simExited)), sleep(5_000)]);
    for (const s of states) if (s.sim?.pid !== undefined && s.sim.exitCode === null) s.sim.kill('SIGKILL');
    // A blade killed outright never ran its unplug: its bridges would outlive the lab.
    for (const st of states) await unplugBridges(st.dir);
    // Anything else still mentioning the lab dir (a blade whose power.pid was lost, ...).
    const stray = await pidsMentioning(dir);
    for (const pid of stray) signal(pid, 'SIGKILL');
    const left = await waitGone(stray, 10_000);
    // Mounts live in the blades' namespaces and vanish with them; unmount defensively in case a
    // future change mounts in the host namespace.
    const mounts = (await readFile('/proc/self/mounts', 'utf8')).split('\n')
      .map((l) => l.split(' ')[1] ?? '').filter((m) => m.startsWith(dir + '/')).reverse();
    for (const m of mounts) await run('umount', ['-l', m]).catch(() => undefined);
    if (left.length > 0) throw new Error(`lab: processes ${left.join(', ')} survived SIGKILL`);
    if (ownDir && process.env.STORM_KEEP_LAB !== '1') await rm(dir, { recursive: true, force: true });
  };

  try {
    for (let i = 1; i <= count; i++) {
      const name = `blade${i}`;
      const bdir = join(dir, name);
      for (const sub of ['etc', 'lib', 'cache', 'log/qemu', 'ipmi-state']) await mkdir(join(bdir, sub), { recursive: true });
      // The host UUID persists across labs that reuse a dir, like a board's SMBIOS UUID.
      const uuidFile = join(bdir, 'host-uuid');
      let hostUuid = (await readFile(uuidFile, 'utf8').catch(() => '')).trim();
      if (!hostUuid) { hostUuid = randomUUID(); await writeFile(uuidFile, hostUuid + '\n'); }
      const listenAddr = `127.0.0.${ADDRESS_BASE + i}`;
      const pki = options.tls ? await issueServerPki(options.tls.caDir, join(bdir, 'pki'), listenAddr, name) : null;
      await writeFile(join(bdir, 'etc', 'libvirtd.conf'), libvirtdConf(listenAddr, hostUuid, pki));
      await writeFile(join(bdir, 'etc', 'qemu.conf'), QEMU_CONF);
      const port = ports[i - 1]!;
      await writeFile(join(bdir, 'lan.conf'), lanConf(name, port, hostUuid.replaceAll('-', ''), dir, bdir));
      await writeFile(join(bdir, 'bmc.emu'), bmcEmu(join(bdir, 'watts')));
      await writeWatts(bdir, WATTS_OFF);
      const bmc: Bmc = { address: BMC_ADDRESS, port, username: BMC_USER, password: BMC_PASSWORD };
      const blade: Blade = { name, libvirtUri: `qemu+tcp://${listenAddr}/system`, bmc, ...(pki ? { tlsUri: `qemu+tls://${listenAddr}/system` } : {}) };

      const out = openSync(join(bdir, 'ipmi_sim.log'), 'a');
      // pdeathsig: a test process that dies without stop() takes its BMCs (and through
      // blade-power.sh's own pdeathsig, the blades) with it.
      const sim = spawn('setpriv', ['--pdeathsig', 'TERM', 'ipmi_sim', '-n', '-c', join(bdir, 'lan.conf'), '-f', join(bdir, 'bmc.emu'), '-s', join(bdir, 'ipmi-state')], {
        stdio: ['ignore', out, out],
      });
      closeSync(out);
      const simExited = new Promise<void>((res) => { sim.once('exit', () => res()); sim.once('error', () => res()); });
      states.push({ blade, dir: bdir, sim, simExited });
    }

    await Promise.all(states.map(bmcAnswering));
  } catch (e) {
    await stop().catch(() => undefined);
    throw e;
  }

  const stateOf = (blade: Blade): BladeState => {
    const s = states.find((x) => x.blade === blade || x.blade.name === blade.name);
    if (!s) throw new Error(`lab: unknown blade ${blade.name}`);
    return s;
  };

  const power = (blade: Blade): Promise<'on' | 'off'> => chassisPower(blade.bmc);

  /** What the blade's power sensor reads now, as the lab's own ipmitool sees it. */
  const sensorWatts = async (blade: Blade): Promise<number | null> => {
    const row = (await ipmitool(blade.bmc, '-c', 'sdr', 'list', 'full')).split('\n').find((l) => l.startsWith(`${POWER_SENSOR},`));
    const value = row?.split(',')[1];
    return value ? Number(value) : null;
  };

  /** Waits until the BMC has polled `served` Watts from the blade's file (within WATTS_POLL_MS). */
  const sensorReads = async (blade: Blade, served: number): Promise<void> => {
    const deadline = Date.now() + 5_000;
    for (let last = await sensorWatts(blade); last !== served; last = await sensorWatts(blade)) {
      if (Date.now() > deadline) throw new Error(`lab: ${blade.name}'s BMC still reads ${last} W, 5 s after its file was set to ${served} W`);
      await sleep(WATTS_POLL_MS);
    }
  };

  const setWatts = async (blade: Blade, watts: number): Promise<number> => {
    if (!Number.isInteger(watts) || watts < 0 || watts > 510) throw new Error(`lab: setWatts takes whole Watts 0..510 (the sensor's range), not ${watts}`);
    const served = 2 * Math.round(watts / 2);
    await writeWatts(stateOf(blade).dir, watts);
    await sensorReads(blade, served);
    return served;
  };

  const diagnostics = async (s: BladeState): Promise<string> =>
    `--- ${join(s.dir, 'power.log')}\n${await tail(join(s.dir, 'power.log'), 10)}\n` +
    `--- ${join(s.dir, 'log', 'libvirtd.log')}\n${await tail(join(s.dir, 'log', 'libvirtd.log'), 15)}`;

  const setPower = async (blade: Blade, on: boolean): Promise<void> => {
    const s = stateOf(blade);
    const started = Date.now();
    // The power sensor follows a change (blade-power.sh writes the model's draw), so a test that
    // reads Watts right after it reads the new state's; no change leaves what setWatts set.
    const changes = existsSync(join(s.dir, 'power.pid')) !== on;
    const sensorFollows = () => (changes ? sensorReads(blade, on ? WATTS_ON : WATTS_OFF) : Promise.resolve());
    await ipmitool(blade.bmc, 'chassis', 'power', on ? 'on' : 'off');
    const timeout = on ? POWER_ON_TIMEOUT_MS : POWER_OFF_TIMEOUT_MS;
    let last = { ok: !on, error: '' };
    while (Date.now() - started < timeout) {
      last = await libvirtAnswers(blade.libvirtUri);
      if (last.ok === on) {
        if (on) return sensorFollows();
        // Not answering is not enough: wait until the BMC's process is gone too, so the next
        // power-on really starts a new blade.
        if (!existsSync(join(s.dir, 'power.pid')) && (await power(blade)) === 'off') return sensorFollows();
      }
      if (on && !existsSync(join(s.dir, 'power.pid')) && Date.now() - started > 3_000) {
        throw new Error(`lab: ${blade.name} powered off by itself while booting:\n${await diagnostics(s)}`);
      }
      await sleep(on ? 100 : 50);
    }
    throw new Error(on
      ? `lab: ${blade.name} libvirt at ${blade.libvirtUri} not answering ${timeout} ms after power on (last: ${last.error}):\n${await diagnostics(s)}`
      : `lab: ${blade.name} still up ${timeout} ms after power off:\n${await diagnostics(s)}`);
  };

  const killLibvirtd = async (blade: Blade): Promise<void> => {
    const s = stateOf(blade);
    const conf = join(s.dir, 'etc', 'libvirtd.conf');
    const daemons: number[] = [];
    for (const pid of await pidsMentioning(conf)) {
      if ((await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '')).trim() === 'libvirtd') daemons.push(pid);
    }
    if (!daemons.length) throw new Error(`lab: ${blade.name} runs no libvirtd to kill`);
    for (const pid of daemons) signal(pid, 'SIGKILL');
    if ((await waitGone(daemons, 10_000)).length) throw new Error(`lab: ${blade.name}'s libvirtd survived SIGKILL`);
    const deadline = Date.now() + POWER_ON_TIMEOUT_MS;
    for (;;) {
      const last = await libvirtAnswers(blade.libvirtUri);
      if (last.ok) return;
      if (Date.now() > deadline) throw new Error(`lab: ${blade.name}'s libvirtd did not come back after a kill (last: ${last.error}):\n${await diagnostics(s)}`);
      await sleep(100);
    }
  };


  const simPid = (s: BladeState): number => {
    // spawn('setpriv', …) execs ipmi_sim in place, so the child's pid is ipmi_sim's.
    if (s.sim?.pid === undefined || s.sim.exitCode !== null) throw new Error(`lab: the BMC of ${s.blade.name} is not running (ipmi_sim exited)`);
    return s.sim.pid;
  };

  const stopBmc = async (blade: Blade): Promise<void> => {
    const s = stateOf(blade);
    const pid = simPid(s);
    signal(pid, 'SIGSTOP');
    const deadline = Date.now() + 5_000;
    // 'T': stopped. The signal is asynchronous; callers rely on the BMC being silent on return.
    while (processState(pid) !== 'T') {
      if (Date.now() > deadline) throw new Error(`lab: ipmi_sim of ${blade.name} (pid ${pid}) did not stop: state ${processState(pid)}`);
      await sleep(10);
    }
  };

  const startBmc = async (blade: Blade): Promise<void> => {
    const s = stateOf(blade);
    signal(simPid(s), 'SIGCONT');
    await bmcAnswering(s);
  };

  const lab: Lab = { dir, blades: states.map((s) => s.blade), power, setPower, killLibvirtd, stopBmc, startBmc, setWatts, stop };
  if (options.initialPower === 'on') {
    try {
      await Promise.all(lab.blades.map((b) => setPower(b, true)));
    } catch (e) {
      await stop().catch(() => undefined);
      throw e;
    }
  }
  return lab;
}

/** HCL of a storm_appliance_server for a lab blade, powered through its BMC. */
export function bladeServerHcl(blade: Blade, extra = '', password = blade.bmc.password): string {
  return `
resource "storm_appliance_server" "${blade.name}" {
  name        = "${blade.name}"
  libvirt_uri = "${blade.libvirtUri}"
${extra}
  ipmi {
    address  = "${blade.bmc.address}"
    port     = ${blade.bmc.port}
    username = "${blade.bmc.username}"
    password = "${password}"
  }
}
`;
}
