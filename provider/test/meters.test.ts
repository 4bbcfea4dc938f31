// The meters' parsers on recorded real answers (fixtures/meters/README.md says where each is
// from); test/e2e/meters.test.ts reads the same things from a lab blade and its BMC.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { IpmiError } from '../src/drivers/errors.ts';
import { powerFromSdr, sdrRows } from '../src/drivers/ipmi.ts';
import { guestCpuReading, type DomainInfoFacts } from '../src/drivers/meters.ts';
import { guestUtilization } from '../src/policy/cpu.ts';

const fixture = (name: string) => readFileSync(new URL(`fixtures/meters/${name}`, import.meta.url), 'utf8');
const SDR = fixture('sdr-list-full.csv');
const SDR_NO_READING = fixture('sdr-list-full-no-reading.csv');
const WHERE = '127.0.0.1:9601';

test('sdr list rows: name, value, unit and status, whatever follows them', () => {
  assert.deepEqual(sdrRows(SDR), [
    { name: 'Inlet Temp', value: '23', unit: 'degrees C', status: 'ok' },
    { name: 'Pwr Consumption', value: '184', unit: 'Watts', status: 'ok' },
    { name: 'PSU2 Input', value: '0', unit: 'Watts', status: 'ok' },
  ]);
});

test('power: the first sensor in Watts, unless one is named', () => {
  assert.deepEqual(powerFromSdr(SDR, WHERE), { sensor: 'Pwr Consumption', watts: 184 });
  assert.deepEqual(powerFromSdr(SDR, WHERE, 'PSU2 Input'), { sensor: 'PSU2 Input', watts: 0 });
});

test('power: a named sensor without a reading is null, not zero (the BMC did not say 0 W)', () => {
  assert.deepEqual(powerFromSdr(SDR_NO_READING, WHERE, 'Pwr Consumption'), { sensor: 'Pwr Consumption', watts: null });
  // Unnamed, the first sensor that reads in Watts now is the one taken.
  assert.deepEqual(powerFromSdr(SDR_NO_READING, WHERE), { sensor: 'PSU2 Input', watts: 0 });
});

test('power: a missing sensor or one in other units fails, naming the BMC and its sensors', () => {
  assert.throws(() => powerFromSdr(SDR, WHERE, 'Total Power'),
    (err: Error) => err instanceof IpmiError && err.message === `the BMC at ${WHERE} has no sensor named "Total Power"; its sensors: Inlet Temp, Pwr Consumption, PSU2 Input`);
  assert.throws(() => powerFromSdr(SDR, WHERE, 'Inlet Temp'), (err: Error) => err instanceof IpmiError && /reads sensor "Inlet Temp" as "23 degrees C", not Watts/.test(err.message));
  const noWatts = SDR.split('\n').filter((l) => l.startsWith('Inlet Temp')).join('\n');
  assert.throws(() => powerFromSdr(noWatts, WHERE), (err: Error) => err instanceof IpmiError && /has no sensor that reads in Watts; its sensors: Inlet Temp$/.test(err.message));
  assert.throws(() => powerFromSdr('', WHERE), (err: Error) => /its sensors: none$/.test(err.message));
});

const INFO = JSON.parse(fixture('domain-info.json')) as { name: string; info: DomainInfoFacts }[];

test('guest CPU: running and paused guests keep their counter, a shut-off one reads 0', () => {
  const at = 1_800_000_000_000;
  assert.deepEqual(INFO.map((d) => guestCpuReading(d.name, d.info, at)), [
    { name: 'meter-bench-01', state: 'running', vcpus: 1, at, cpuTimeNs: 1_450_000_000 },
    { name: 'meter-bench-02', state: 'paused', vcpus: 1, at, cpuTimeNs: 1_570_000_000 },
    { name: 'meter-bench-03', state: 'shutoff', vcpus: 1, at, cpuTimeNs: 0 },
  ]);
});

test('guest CPU: two readings give policy/cpu.ts its utilization', () => {
  const running = INFO[0]!;
  const prev = guestCpuReading(running.name, running.info, 10_000);
  // 250 ms more CPU time over 5 s on 1 vCPU: 5 %.
  const next = guestCpuReading(running.name, { ...running.info, cpuTime: running.info.cpuTime + 250_000_000 }, 15_000);
  assert.equal(guestUtilization(prev, next, next.vcpus), 0.05);
});
