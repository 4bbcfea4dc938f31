// One pass over one group's servers' power: what each BMC and libvirt say, the pure decision
// (policy/power.ts), and the action through the BMC, logged with its reason. Watts are read
// from each BMC's sensor on the way and kept as samples (the paper's Figure 5). A server whose
// BMC does not answer is still counted (libvirt says whether it is on) but never switched:
// the decision then says why it cannot power more.
import type { Logger } from '../contract.ts';
import { listDomains } from '../drivers/domains.ts';
import { chassisPower, readPower, setChassisPower, type Power } from '../drivers/ipmi.ts';
import { decidePower, emptySinceAfter, groupDemand, type PowerDecision, type ServerPowerView } from '../policy/power.ts';
import { demandMark } from '../policy/scaling.ts';
import { deploymentsOf, groupLoad } from './group-pass.ts';
import { CPU, freshServerCpu } from './sampler.ts';
import type { ControllerStore, GroupRecord, SampleRecord, ServerRecord } from './store.ts';

export const WATTS = 'watts';

/** A 'none' the operator must hear about: storm wanted more power and could not have it. */
export const CANNOT_POWER = /no server is left|not answering|at most \d+ power change/;

/** What the controller remembers between power passes, in memory. */
export class PowerMemory {
  /** Server id → epoch ms since which it runs no domain (reset by a restart: a longer hold, never a shorter one). */
  readonly emptySince = new Map<string, number>();
  /** Group → the last reason logged, so an unchanged "none" is said once, not every round. */
  readonly lastReason = new Map<string, string>();
}

export interface PowerContext {
  readonly store: ControllerStore;
  readonly log: Logger;
  readonly now: () => number;
  readonly memory: PowerMemory;
  /** How far back a server's CPU sample still counts (ms). */
  readonly freshMs: number;
}

export interface ObservedServer extends ServerPowerView {
  id: string;
  name: string;
  watts: number | null;
  bmc: 'answering' | 'not answering' | 'none';
  /** Running domains; null when libvirt did not answer. */
  domains: number | null;
}

/** A group's servers: those of its deployments, with their BMCs when registered. */
export function serversOf(group: GroupRecord, registered: readonly ServerRecord[]): ServerRecord[] {
  const byId = new Map<string, ServerRecord>();
  for (const d of deploymentsOf(group)) {
    byId.set(d.serverId, registered.find((r) => r.id === d.serverId) ?? { id: d.serverId, name: d.server.name, uri: d.server.uri, bmc: null, powerSensor: null, managed: false });
  }
  return [...byId.values()];
}

/** Reads one server's power, load and draw; records the Watts and a finished boot. */
export async function observeServer(ctx: PowerContext, s: ServerRecord, samples: SampleRecord[], holdMs: number): Promise<ObservedServer> {
  const now = ctx.now();
  let chassis: Power | null = null;
  let watts: number | null = null;
  if (s.bmc) {
    chassis = await chassisPower(s.bmc).catch(() => null);
    if (chassis !== null) {
      const reading = await readPower(s.bmc, s.powerSensor ?? undefined).catch(() => null);
      watts = reading?.watts ?? null;
      if (watts !== null) samples.push({ at: now, subject: s.name, metric: WATTS, value: watts });
    }
  }
  const domains = chassis === 'off' ? null : await listDomains(s.uri).then((ds) => ds.filter((d) => d.state === 'running').length, () => null);
  const power: ServerPowerView['power'] = chassis === 'off' ? 'off' : domains !== null ? 'on' : chassis === 'on' ? 'booting' : 'off';
  if (power === 'on') {
    const last = await ctx.store.lastPowerOn(s.id);
    if (last && last.bootSeconds === null) {
      const bootSeconds = (now - last.at) / 1000;
      await ctx.store.recordPowerOn({ ...last, bootSeconds });
      ctx.log.info(`${s.name} answers libvirt ${bootSeconds.toFixed(1)} s after its power-on`, { server: s.id });
    }
  }
  const empty = emptySinceAfter(ctx.memory.emptySince.get(s.id) ?? null, power, domains, now);
  if (empty === null) ctx.memory.emptySince.delete(s.id);
  else ctx.memory.emptySince.set(s.id, empty);
  const cpu = power === 'on' ? await freshServerCpu(ctx.store, s.name, now, ctx.freshMs) : null;
  const recent = power === 'on' ? await ctx.store.samples(s.name, CPU, now - holdMs, now) : [];
  const cpuPeak = recent.length ? Math.max(...recent.map((x) => x.value)) : null;
  return {
    id: s.id,
    name: s.name,
    server: s.name,
    power,
    canPower: s.managed && s.bmc !== null && chassis !== null,
    cpu,
    cpuPeak,
    emptySince: power === 'on' ? ctx.memory.emptySince.get(s.id) ?? null : null,
    bootHistorySeconds: await ctx.store.bootHistory(s.id),
    watts,
    bmc: s.bmc === null ? 'none' : chassis === null ? 'not answering' : 'answering',
    domains,
  };
}

export interface PowerPassResult {
  decision: PowerDecision;
  servers: ObservedServer[];
}

/** One pass over a group's servers: observe, decide, act, record. `unplaced` is the group pass's. */
export async function runPowerPass(ctx: PowerContext, group: GroupRecord, registered: readonly ServerRecord[], unplaced: string | null): Promise<PowerPassResult | null> {
  if (!group.power || group.deleting) return null;
  const records = serversOf(group, registered);
  const samples: SampleRecord[] = [];
  const servers = await Promise.all(records.map((s) => observeServer(ctx, s, samples, group.power!.emptyHoldSeconds * 1000)));
  await ctx.store.recordSamples(samples);
  const now = ctx.now();
  // A server not handed to the controller counts while it is on (it carries load) and is
  // nobody's business here while it is off.
  const view = servers.filter((s, i) => records[i]!.managed || s.power !== 'off');
  // While the group's load may grow again soon, an empty server stays on (demandMark).
  const members = await ctx.store.members(group.name);
  const load = (await groupLoad(ctx.store, group, members, now - ctx.freshMs, now)).at(-1)?.utilization ?? null;
  const unit = (x: number) => (group.metric === 'cpu' ? `${Math.round(x * 100)} %` : String(x));
  const demand = groupDemand(group.name, load, demandMark(group.policy), members.length, unit);
  const decision = decidePower(group.power, { servers: view, unplaced, now, demand });
  const target = decision.action === 'none' ? null : records.find((r) => r.name === decision.server && r.managed) ?? null;
  let line = `power ${decision.action === 'none' ? 'none' : `${decision.action} ${decision.server}`} (${group.name}): ${decision.reason}`;
  if (target?.bmc && decision.action === 'on') {
    await ctx.store.recordPowerOn({ server: target.id, at: now, bootSeconds: null });
    await setChassisPower(target.bmc, 'on');
  } else if (target?.bmc && decision.action === 'off') {
    // Checked again just before: a member placed there since the observation keeps it on.
    const running = await listDomains(target.uri).then((ds) => ds.filter((d) => d.state === 'running').length, () => null);
    if (running === 0) {
      await setChassisPower(target.bmc, 'off');
      ctx.memory.emptySince.delete(target.id);
    } else {
      line = `power none (${group.name}): ${target.name} is no longer empty`;
    }
  }
  if (decision.action !== 'none' || ctx.memory.lastReason.get(group.name) !== decision.reason) {
    ctx.memory.lastReason.set(group.name, decision.reason);
    const cannot = decision.action === 'none' && CANNOT_POWER.test(decision.reason);
    ctx.log[cannot ? 'warn' : 'info'](line, { group: group.name });
    // "Power as it should be" is logged when it becomes true, but is no decision worth keeping.
    if (decision.action !== 'none' || cannot) {
      await ctx.store.recordDecision({ at: now, kind: 'power', subject: decision.action === 'none' ? group.name : decision.server, action: decision.action, reason: line });
    }
  }
  return { decision, servers };
}
