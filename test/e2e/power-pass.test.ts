// The controller's power pass on real hardware: a lab blade's BMC (ipmi_sim, over IPMI lanplus)
// and its own libvirtd, with the SQLite store and a clock the test moves. It proves what the
// pure policy's tests cannot: that what the pass *observes* (chassis power from the BMC, running
// domains from libvirt) turns into the right hold and the right switch, over the wire.
//  - An empty managed server goes off over IPMI only once it has been empty for the hold, and
//    the decision is kept in the store with its reason.
//  - A server powered off and on again behind storm's back is not switched off at once on its
//    old empty-since: seen off, it forgets it, and its hold starts when it is seen on again
//    (the fix "a server seen powered off has no empty-since").
//  - A BMC that does not answer is never switched through, however long the server has been
//    empty; when storm wanted more power from it, the pass says why it could not (a warning and
//    a decision), and once the BMC answers again it powers the server on and learns its boot time.
//
// The group spans two blades: blade1, whose power is handed to the controller (managed), and
// blade2, which is not (it is only watched, and keeps running). The second server is needed:
// decidePower switches an empty server off only when another powered one is not busy (its
// `rest.some(...)`), so a group's last server on stays on even with min_servers_on = 0.
// The group's deployment references are written by hand (dep-web@SERVER_ID): the power pass
// reaches servers through them and never opens the deployment's volume.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, test } from 'node:test';
import type { Logger } from '../../provider/src/contract.ts';
import { listDomains } from '../../provider/src/drivers/domains.ts';
import { CANNOT_POWER, PowerMemory, runPowerPass, WATTS, type PowerPassResult } from '../../provider/src/controller/power-pass.ts';
import { openSqliteStore } from '../../provider/src/controller/store-sqlite.ts';
import type { ControllerStore, GroupRecord, ServerRecord } from '../../provider/src/controller/store.ts';
import { serverId } from '../../provider/src/host/refs.ts';
import type { PowerPolicy } from '../../provider/src/policy/power.ts';
import { DEFAULT_SCALING } from '../../provider/src/policy/scaling.ts';
import { startLab, type Blade, type Lab } from '../lib/lab.ts';

const HOLD_S = 60;
const POLICY: PowerPolicy = { hostCpuHigh: 0.9, minServersOn: 1, emptyHoldSeconds: HOLD_S, maxConcurrentChanges: 1, defaultBootSeconds: 30 };

let lab: Lab;
let blade1: Blade;
let blade2: Blade;
let store: ControllerStore;
let memory = new PowerMemory();
let clock = Math.floor(Date.now() / 1000) * 1000;
const dir = mkdtempSync(join(tmpdir(), 'storm-power-pass-'));
const lines: string[] = [];
const warnings: string[] = [];
const log: Logger = {
  debug: () => {},
  info: (m) => lines.push(m),
  warn: (m) => { lines.push(m); warnings.push(m); },
  error: (m) => lines.push(m),
};
const id = (b: Blade) => serverId(b.name, b.libvirtUri);

/** One power pass as the controller runs it: the group and servers as the store has them, at `clock`. */
async function pass(policy: PowerPolicy = POLICY): Promise<PowerPassResult> {
  const group = (await store.group('web'))!;
  const r = await runPowerPass({ store, log, now: () => clock, memory, freshMs: 15_000 }, { ...group, power: policy }, await store.servers(), null);
  assert.ok(r, 'a group with a power policy gets a pass');
  return r;
}

const summary = (r: PowerPassResult) => `${r.decision.action}${r.decision.action === 'none' ? '' : ` ${r.decision.server}`}: ${r.decision.reason}`;
const observed = (r: PowerPassResult, b: Blade) => r.servers.find((s) => s.id === id(b))!;

/** Waits until a blade the pass switched off is down for good (its libvirtd gone), so the next power-on starts it afresh. */
async function settledOff(b: Blade): Promise<void> {
  await lab.setPower(b, false);
}

before(async () => {
  lab = await startLab({ blades: 2, initialPower: 'on', firstPort: 9770 });
  [blade1, blade2] = lab.blades as [Blade, Blade];
  store = await openSqliteStore(join(dir, 'controller.db'));
  const servers: ServerRecord[] = [
    { id: id(blade1), name: blade1.name, uri: blade1.libvirtUri, bmc: blade1.bmc, powerSensor: null, managed: true },
    { id: id(blade2), name: blade2.name, uri: blade2.libvirtUri, bmc: blade2.bmc, powerSensor: null, managed: false },
  ];
  for (const s of servers) await store.putServer(s);
  const group: GroupRecord = {
    name: 'web',
    policy: { ...DEFAULT_SCALING, min: 0, max: 2 },
    shape: { deployments: servers.map((s) => `dep-web@${s.id}`), memoryMib: 64, vcpus: 1, network: 'lan', variables: {}, files: [], services: [], placement: 'spread' },
    dnsName: null,
    metric: 'cpu',
    power: POLICY,
    deleting: false,
    lastScaleOutAt: null,
    lastScaleInAt: null,
  };
  await store.putGroup(group);
  for (const b of lab.blades) assert.deepEqual(await listDomains(b.libvirtUri), [], `${b.name} starts empty`);
});

// Each test leaves blade1 on, its BMC answering, whatever it ended in.
afterEach(async () => {
  await lab.startBmc(blade1);
  if ((await lab.power(blade1)) === 'off') await settledOff(blade1);
  await lab.setPower(blade1, true);
});

after(async () => {
  await store?.close();
  await lab?.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('an empty managed server goes off over IPMI only after its hold, and the decision is kept', async () => {
  memory = new PowerMemory();
  const start = clock;
  const first = await pass();
  assert.equal(summary(first), 'none: power as it should be');
  const seen = observed(first, blade1);
  assert.equal(seen.power, 'on');
  assert.equal(seen.bmc, 'answering');
  assert.equal(seen.domains, 0);
  assert.equal(seen.canPower, true);
  assert.equal(seen.emptySince, start, 'empty since the first pass that saw it empty');
  assert.equal(observed(first, blade2).canPower, false, 'not handed to the controller: never switched');
  assert.deepEqual((await store.samples(blade1.name, WATTS, start, start)).map((s) => s.value), [120], 'the BMC\'s power sensor, kept as a sample');

  clock = start + (HOLD_S - 1) * 1000;
  assert.equal(summary(await pass()), 'none: power as it should be', 'one second short of the hold');
  assert.equal(await lab.power(blade1), 'on');

  clock = start + HOLD_S * 1000;
  const off = await pass();
  assert.equal(summary(off), `off ${blade1.name}: ${blade1.name} empty for ${HOLD_S} s ≥ ${HOLD_S} s → power off`);
  assert.equal(await lab.power(blade1), 'off', 'switched off through its BMC');
  assert.equal(await lab.power(blade2), 'on', 'the unmanaged neighbour is left alone');
  assert.equal(memory.emptySince.has(id(blade1)), false, 'a server switched off is empty no more');
  const [d] = await store.decisions({ subject: blade1.name, limit: 1 });
  assert.deepEqual(d, { at: clock, kind: 'power', subject: blade1.name, action: 'off', reason: `power off ${blade1.name} (web): ${blade1.name} empty for ${HOLD_S} s ≥ ${HOLD_S} s → power off` });
  assert.ok(lines.includes(d!.reason), lines.join('\n'));

  // Off, it stays off: the minimum is met by blade2, nothing wants room.
  await settledOff(blade1);
  clock += 1000;
  const stays = await pass();
  assert.equal(stays.decision.action, 'none');
  assert.equal(observed(stays, blade1).power, 'off');
  assert.equal(observed(stays, blade1).emptySince, null);
});

test('a server powered off and on again behind storm\'s back starts its hold when it is seen on again', async () => {
  memory = new PowerMemory();
  clock += 1000;
  const emptyAt = clock;
  assert.equal(summary(await pass()), 'none: power as it should be');
  assert.equal(memory.emptySince.get(id(blade1)), emptyAt);

  // Out of band (an operator, a power cut): off, and a pass sees it off, past the old hold.
  await lab.setPower(blade1, false);
  clock = emptyAt + 2 * HOLD_S * 1000;
  const seenOff = await pass();
  assert.equal(seenOff.decision.action, 'none', summary(seenOff));
  assert.equal(observed(seenOff, blade1).power, 'off');
  assert.equal(observed(seenOff, blade1).bmc, 'answering');
  const forgotten = !memory.emptySince.has(id(blade1));

  // On again out of band, empty: the hold counts from now, not from before it went off.
  await lab.setPower(blade1, true);
  clock += 1000;
  const seenOn = clock;
  const back = await pass();
  assert.equal(summary(back), 'none: power as it should be', 'not switched off at once on its old empty-since');
  assert.equal(observed(back, blade1).emptySince, seenOn);
  assert.equal(await lab.power(blade1), 'on');

  clock = seenOn + (HOLD_S - 1) * 1000;
  assert.equal(summary(await pass()), 'none: power as it should be');
  assert.equal(await lab.power(blade1), 'on');

  clock = seenOn + HOLD_S * 1000;
  assert.equal(summary(await pass()), `off ${blade1.name}: ${blade1.name} empty for ${HOLD_S} s ≥ ${HOLD_S} s → power off`);
  assert.equal(await lab.power(blade1), 'off');
  assert.ok(forgotten, 'the pass that saw it off dropped its empty-since');
  await settledOff(blade1);
});

test('a BMC that does not answer is never switched through; wanting its power is said, and it is powered on once the BMC answers', async () => {
  memory = new PowerMemory();
  // Empty, then its BMC goes silent (each silent pass waits out ipmitool's retries, ~10 s) and
  // the hold passes twice over: libvirt says on and empty, but storm cannot switch it.
  clock += 1000;
  const emptyAt = clock;
  assert.equal(observed(await pass(), blade1).emptySince, emptyAt);
  await lab.stopBmc(blade1);
  try {
    clock = emptyAt + 2 * HOLD_S * 1000;
    const later = await pass();
    const seen = observed(later, blade1);
    assert.equal(seen.bmc, 'not answering');
    assert.equal(seen.power, 'on', 'libvirt answers: it is on');
    assert.equal(seen.canPower, false);
    assert.equal(seen.watts, null, 'no sensor reading without the BMC');
    assert.equal(seen.domains, 0);
    assert.equal(seen.emptySince, emptyAt, 'still empty, and known to be');
    assert.equal(summary(later), 'none: power as it should be', 'empty for twice the hold, but never switched off through a BMC that cannot switch it on again');
    assert.doesNotMatch(later.decision.reason, CANNOT_POWER, 'storm wanted no more power: nothing to warn about');
  } finally {
    await lab.startBmc(blade1);
  }
  assert.equal(await lab.power(blade1), 'on');

  // Off, and the BMC silent, while the policy wants both servers on: the pass cannot, and says so.
  await lab.setPower(blade1, false);
  const wantBoth = { ...POLICY, minServersOn: 2 };
  const warned = warnings.length;
  await lab.stopBmc(blade1);
  try {
    clock += 1000;
    const stuck = await pass(wantBoth);
    assert.equal(summary(stuck), `none: 1 server(s) on < min 2, but no server is left to power on (${blade1.name}: BMC not answering)`);
    assert.match(stuck.decision.reason, CANNOT_POWER);
    assert.equal(observed(stuck, blade1).bmc, 'not answering');
    assert.equal(observed(stuck, blade1).power, 'off', 'neither the BMC nor libvirt answers: counted off');
    assert.equal(warnings.length, warned + 1, 'an operator must hear it');
    const [d] = await store.decisions({ subject: 'web', limit: 1 });
    assert.deepEqual(d, { at: clock, kind: 'power', subject: 'web', action: 'none', reason: `power none (web): ${stuck.decision.reason}` });
    clock += 1000;
    assert.equal((await pass(wantBoth)).decision.reason, stuck.decision.reason);
    assert.equal(warnings.length, warned + 1, 'said once, not every round');
  } finally {
    await lab.startBmc(blade1);
  }
  assert.equal(await lab.power(blade1), 'off', 'nothing switched it meanwhile');

  // The BMC answers again: the pass powers the server on and, once libvirt answers, learns its boot time.
  clock += 1000;
  const poweredAt = clock;
  const on = await pass(wantBoth);
  assert.equal(summary(on), `on ${blade1.name}: 1 server(s) on < min 2 → power on ${blade1.name} (boots in ~30 s)`);
  assert.equal(await lab.power(blade1), 'on');
  assert.deepEqual(await store.lastPowerOn(id(blade1)), { server: id(blade1), at: poweredAt, bootSeconds: null });
  await lab.setPower(blade1, true); // waits until its libvirt answers
  clock = poweredAt + 25_000;
  const booted = await pass(wantBoth);
  assert.equal(observed(booted, blade1).power, 'on');
  assert.equal(booted.decision.action, 'none', summary(booted));
  assert.deepEqual(await store.bootHistory(id(blade1)), [25], 'the next power-on\'s lead time');
  assert.ok(lines.some((l) => l.startsWith(`${blade1.name} answers libvirt 25.0 s after its power-on`)), lines.join('\n'));
});
