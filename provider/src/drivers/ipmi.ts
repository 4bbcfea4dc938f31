// Chassis power through a BMC with ipmitool over lanplus.
import { IpmiAuthError, IpmiError, IpmiUnreachableError } from './errors.ts';

export interface Bmc {
  address: string;
  port: number;
  username: string;
  password: string;
}

export type Power = 'on' | 'off';

// A wrong password and an unreachable BMC both end in "Unable to establish IPMI v2 / RMCP+
// session"; only -v output tells them apart (RAKP 2 fails for bad credentials, while an
// unreachable BMC never answers Get Channel Authentication Capabilities).
const AUTH_FAILURE = /RAKP 2 HMAC is invalid|unauthorized name|RAKP 2 message indicates an error|insufficient privilege/i;
const NO_SESSION = /Get Auth Capabilities error|Error issuing Get Channel Authentication|unable to establish|no response|timeout/i;

async function ipmitool(bmc: Bmc, args: string[]): Promise<string> {
  const { execa } = await import('execa');
  const result = await execa(
    'ipmitool',
    // -C 3: fixed cipher suite; without it ipmitool probes suites first, which costs ~10 s on
    // BMCs that don't answer the probe. -E reads the password from the environment, so it
    // never shows in the process list.
    ['-I', 'lanplus', '-C', '3', '-v', '-H', bmc.address, '-p', String(bmc.port), '-U', bmc.username, '-E', '-N', '2', '-R', '2', ...args],
    { reject: false, timeout: 30_000, env: { IPMI_PASSWORD: bmc.password, LC_ALL: 'C' } },
  );
  if (result.exitCode === 0 && !result.timedOut) return result.stdout;
  const output = String(result.stderr || result.stdout || result.shortMessage || '');
  // -v adds chatter ("Loading IANA PEN Registry..."); keep the lines that say what failed.
  const message = output.split('\n').map((l) => l.replace(/^>\s*/, '').trim()).filter((l) => /error|invalid|unable|unauthorized|failed/i.test(l)).join('; ') || output.trim();
  const where = `${bmc.address}:${bmc.port}`;
  if (AUTH_FAILURE.test(message)) throw new IpmiAuthError(`the BMC at ${where} refused user "${bmc.username}" with this password (${message})`);
  if (result.timedOut || NO_SESSION.test(message)) throw new IpmiUnreachableError(`no IPMI session with the BMC at ${where} (${message || 'timed out'})`);
  throw new IpmiError(`ipmitool ${args.join(' ')} failed at ${where}: ${message}`);
}

export async function chassisPower(bmc: Bmc): Promise<Power> {
  const out = await ipmitool(bmc, ['chassis', 'power', 'status']);
  if (/power is on/i.test(out)) return 'on';
  if (/power is off/i.test(out)) return 'off';
  throw new IpmiError(`unexpected answer from the BMC at ${bmc.address}:${bmc.port}: ${out}`);
}

/**
 * Switches chassis power and waits until the BMC reports it: BMCs acknowledge the command
 * before the host has actually changed state (ipmi_sim ~0.4 s, real ones longer).
 */
export async function setChassisPower(bmc: Bmc, power: Power, timeoutMs = 60_000): Promise<void> {
  await ipmitool(bmc, ['chassis', 'power', power]);
  const deadline = Date.now() + timeoutMs;
  while ((await chassisPower(bmc)) !== power) {
    if (Date.now() >= deadline) throw new IpmiError(`the BMC at ${bmc.address}:${bmc.port} accepted "power ${power}" but still reports the opposite after ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** A BMC's power sensor at one moment. */
export interface PowerReading {
  /** The SDR sensor that was read, e.g. "Pwr Consumption". */
  sensor: string;
  /** Watts drawn; null when the BMC has no reading now (status "ns": many BMCs say so while the chassis is off). */
  watts: number | null;
  /** Epoch ms when the answer arrived. */
  at: number;
}

/** One row of `ipmitool -c sdr list full`. */
interface SdrRow { name: string; value: string; unit: string; status: string }

/**
 * Rows of `ipmitool -c sdr list full`: "name,value,unit,status" (with -v, more fields follow:
 * entity, type, thresholds, range). A sensor without a reading has empty value and unit.
 * Names with a comma would split wrongly; SDR names are 16 bytes of labels, none seen with one.
 */
export function sdrRows(csv: string): SdrRow[] {
  return csv.split('\n').map((line) => line.trim().split(',')).filter((f) => f.length >= 4 && f[0])
    .map(([name, value, unit, status]) => ({ name: name!.trim(), value: value!.trim(), unit: unit!.trim(), status: status!.trim() }));
}

/**
 * The power reading among the SDR's sensors: the one named `sensor`, or else the first that
 * reads in Watts. Throws IpmiError when there is none, listing what the BMC does have, since
 * the fix is naming the right sensor.
 */
export function powerFromSdr(csv: string, where: string, sensor?: string): { sensor: string; watts: number | null } {
  const rows = sdrRows(csv);
  const names = rows.map((r) => r.name).join(', ') || 'none';
  const row = sensor === undefined ? rows.find((r) => r.unit === 'Watts') : rows.find((r) => r.name === sensor);
  if (!row) {
    const wanted = sensor === undefined ? 'no sensor that reads in Watts' : `no sensor named "${sensor}"`;
    throw new IpmiError(`the BMC at ${where} has ${wanted}; its sensors: ${names}`);
  }
  if (row.status === 'ns' || row.value === '') return { sensor: row.name, watts: null };
  const watts = Number(row.value);
  if (row.unit !== 'Watts' || !Number.isFinite(watts)) throw new IpmiError(`the BMC at ${where} reads sensor "${row.name}" as "${row.value} ${row.unit}", not Watts`);
  return { sensor: row.name, watts };
}

/**
 * Reads the server's power draw from its BMC's sensor data records. The SDR is read whole
 * each time (~60 ms with ipmi_sim's few records; on a BMC with hundreds of sensors an SDR cache,
 * `ipmitool sdr dump` then `-S FILE`, would save most of it). DCMI's `power reading`, which
 * many real BMCs also offer, is not asked: ipmi_sim does not implement it.
 */
export async function readPower(bmc: Bmc, sensor?: string): Promise<PowerReading> {
  const csv = await ipmitool(bmc, ['-c', 'sdr', 'list', 'full']);
  return { ...powerFromSdr(csv, `${bmc.address}:${bmc.port}`, sensor), at: Date.now() };
}
