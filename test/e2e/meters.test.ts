// What the controller will sample, read from real parts: a lab blade's libvirt (a guest that
// spins, one that is off) and its BMC's power sensor through ipmitool over lanplus.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, test } from 'node:test';
import { POWER_SENSOR, startLab, type Blade, type Lab } from '../lib/lab.ts';
import { virsh } from '../lib/terraform.ts';
import { IpmiError } from '../../provider/src/drivers/errors.ts';
import { readPower } from '../../provider/src/drivers/ipmi.ts';
import { readHost } from '../../provider/src/drivers/libvirt.ts';
import { readGuestCpu, type GuestCpuReading, type HostCpuReading } from '../../provider/src/drivers/meters.ts';
import { guestUtilization, serverUtilization } from '../../provider/src/policy/cpu.ts';

const SPINNER = 'meter-spinner';
const IDLE = 'meter-idle';

let lab: Lab;
let blade: Blade;

/**
 * A boot sector that is one instruction, `jmp $` (EB FE), then the boot signature: SeaBIOS
 * boots it and the guest's vCPU spins at whatever the host gives it, with no OS to build.
 */
function spinningDisk(file: string): void {
  const sector = Buffer.alloc(512);
  sector.set([0xeb, 0xfe], 0);
  sector.set([0x55, 0xaa], 510);
  writeFileSync(file, sector);
}

function domainXml(name: string, disk: string): string {
  // TCG: the blades' QEMU runs without KVM on every machine the suite runs on.
  return `<domain type='qemu'><name>${name}</name><memory unit='MiB'>32</memory><vcpu current='1'>2</vcpu>
<os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os>
<devices><disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='${disk}'/><target dev='hda' bus='ide'/></disk></devices></domain>`;
}

async function define(name: string): Promise<void> {
  const disk = join(lab.dir, `${name}.img`);
  spinningDisk(disk);
  const xml = join(lab.dir, `${name}.xml`);
  writeFileSync(xml, domainXml(name, disk));
  const r = await virsh(blade.libvirtUri, 'define', xml);
  assert.equal(r.exitCode, 0, r.output);
}

function guest(reading: HostCpuReading, name: string): GuestCpuReading {
  const g = reading.guests.find((x) => x.name === name);
  assert.ok(g, `${name} missing from ${JSON.stringify(reading.guests.map((x) => x.name))}`);
  return g;
}

before(async () => {
  lab = await startLab({ blades: 1, initialPower: 'on' });
  blade = lab.blades[0]!;
});

after(async () => {
  await lab?.stop();
});

test('guest CPU: a spinning guest reads busy, a stopped one reads nothing, in one round per host', async (t) => {
  await define(SPINNER);
  await define(IDLE);
  const started = await virsh(blade.libvirtUri, 'start', SPINNER);
  assert.equal(started.exitCode, 0, started.output);
  try {
    await sleep(500); // past QEMU's start, into the loop
    const t0 = performance.now();
    const first = await readGuestCpu(blade.libvirtUri);
    const t1 = performance.now();
    await sleep(2_000);
    const t2 = performance.now();
    const second = await readGuestCpu(blade.libvirtUri);
    t.diagnostic(`a round over ${second.guests.length} guests (qemu+tcp): first ${Math.round(t1 - t0)} ms (loads the binding), then ${Math.round(performance.now() - t2)} ms`);

    assert.deepEqual(second.guests.map((g) => g.name), [SPINNER, IDLE].sort());
    const [prev, next] = [guest(first, SPINNER), guest(second, SPINNER)];
    assert.equal(next.state, 'running');
    assert.equal(next.vcpus, 1, 'the current vCPUs, not the maximum');
    assert.ok(next.cpuTimeNs > prev.cpuTimeNs, `CPU time grew: ${prev.cpuTimeNs} -> ${next.cpuTimeNs}`);
    const idle = guest(second, IDLE);
    assert.deepEqual([idle.state, idle.cpuTimeNs, idle.vcpus], ['shutoff', 0, 1]);

    const used = guestUtilization(prev, next, next.vcpus);
    const host = await readHost(blade.libvirtUri);
    t.diagnostic(`${SPINNER}: ${((used ?? 0) * 100).toFixed(0)} % of its vCPU over ${next.at - prev.at} ms; the blade: ${(serverUtilization([used ?? 0], host.cpus) * 100).toFixed(0)} % of ${host.cpus} CPUs`);
    // A spinning vCPU under TCG gets a host core, less what the machine's other work takes.
    assert.ok(used !== null && used > 0.25 && used <= 1, `utilization ${used}`);
    assert.ok(serverUtilization([used], host.cpus) <= used);
  } finally {
    await virsh(blade.libvirtUri, 'destroy', SPINNER);
  }
});

test('power: the BMC reports the Watts the lab sets, and the model follows the chassis power', async (t) => {
  const t0 = performance.now();
  const on = await readPower(blade.bmc);
  t.diagnostic(`readPower: ${Math.round(performance.now() - t0)} ms`);
  assert.deepEqual([on.sensor, on.watts], [POWER_SENSOR, 120], 'a powered blade draws the model\'s 120 W');

  assert.equal(await lab.setWatts(blade, 233), 234, 'the sensor serves 2 W steps');
  assert.equal((await readPower(blade.bmc, POWER_SENSOR)).watts, 234);

  await lab.setPower(blade, false);
  assert.equal((await readPower(blade.bmc)).watts, 8, 'a blade powered off draws the standby 8 W');

  await assert.rejects(readPower(blade.bmc, 'Total Power'), (err: Error) => err instanceof IpmiError && /no sensor named "Total Power"; its sensors: Pwr Consumption/.test(err.message));
});
