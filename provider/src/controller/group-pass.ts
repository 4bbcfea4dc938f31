// One pass over one scaling group: find its members on the hosts (libvirt is the truth),
// bring the store in step with them, read the group's load, decide (pure policy) and act,
// logging every decision with its reason and numbers. A pass interrupted anywhere leaves
// either a member on a host the next pass adopts, or nothing: never a duplicate, never a
// member the controller forgets.
import { createHash, randomBytes } from 'node:crypto';
import type { Logger } from '../contract.ts';
import { DiagnosticError } from '../protocol/diagnostics.ts';
import { LibvirtUnreachableError } from '../drivers/errors.ts';
import { listDomains, setDomainState, type DomainObservation } from '../drivers/domains.ts';
import { makeInstance, removeInstance, type InstanceSpec, type Maker } from '../host/instances.ts';
import { reservationEnd } from '../host/placement.ts';
import { parseLayerId, type LayerRef } from '../host/refs.ts';
import { placedCores } from '../policy/placement.ts';
import { decideScaling, DEFAULT_SCALING, type GroupMember, type ScalingDecision } from '../policy/scaling.ts';
import { freshServerCpu } from './sampler.ts';
import type { ControllerStore, GroupRecord, MemberRecord, ServerRecord } from './store.ts';

/** storm's metadata that marks a domain as a member of a group, and which one. */
export const MEMBER_LABELS = { group: 'group', index: 'member_index', createdAt: 'member_created', tokenSha256: 'member_token_sha256' } as const;

/** Where in a member's disk the controller leaves what it needs to report its own load. */
export const REPORT_FILE = '/etc/storm/controller.json';

/** The metric a group scales on: its members' mean CPU, as the sampler records it. */
export const GROUP_CPU = 'cpu';

export const sha256Hex = (text: string) => createHash('sha256').update(text).digest('hex');

export const memberName = (group: string, index: number) => `${group}-${index}`;

export interface PassContext extends Maker {
  readonly store: ControllerStore;
  readonly now: () => number;
  /** The API's address as members reach it, and its CA; null: members get no report token. */
  readonly report: { url: string; caPem: string } | null;
  /** How far back a server's CPU sample still counts for placement (ms); default a minute. */
  readonly freshMs?: number;
  /** The registered servers as this round read them (the power passes read the same); absent: read from the store. */
  readonly servers?: readonly ServerRecord[];
}

interface HostMember {
  name: string;
  index: number;
  dep: LayerRef;
  domain: DomainObservation;
}

/** The deployments a group's members may stand on (their servers are the group's). */
export function deploymentsOf(group: GroupRecord): LayerRef[] {
  return group.shape.deployments.map((d, index) => parseLayerId(d, 'dep', [{ attribute: 'deployments' }, { index }]));
}

/**
 * The group's members as the hosts show them, and how many domains run on each server (every
 * group's and other instances: what keeps a server on); servers that do not answer are named.
 */
async function membersOnHosts(group: GroupRecord, deployments: readonly LayerRef[]): Promise<{ members: HostMember[]; running: Record<string, number>; unreachable: string[] }> {
  const byUri = new Map(deployments.map((d) => [d.server.uri, d]));
  const members: HostMember[] = [];
  const running: Record<string, number> = {};
  const unreachable: string[] = [];
  await Promise.all([...byUri.values()].map(async (dep) => {
    try {
      const domains = await listDomains(dep.server.uri);
      running[dep.serverId] = domains.filter((d) => d.state === 'running').length;
      for (const d of domains) {
        if (!d.storm || d.metadata[MEMBER_LABELS.group] !== group.name) continue;
        members.push({ name: d.name, index: Number(d.metadata[MEMBER_LABELS.index] ?? -1), dep, domain: d });
      }
    } catch {
      unreachable.push(dep.server.name);
    }
  }));
  return { members: members.sort((a, b) => a.index - b.index), running, unreachable };
}

/**
 * Makes the store say what the hosts say: a member found on a host and not in the store (the
 * controller died between making it and writing it down) is adopted; a member in the store
 * that no answering host has (removed out of band) is forgotten. Members on servers that did
 * not answer are kept as they are: silence is not absence.
 */
async function reconcile(ctx: PassContext, group: GroupRecord, onHosts: readonly HostMember[], unreachable: readonly string[]): Promise<MemberRecord[]> {
  const stored = await ctx.store.members(group.name);
  const seen = new Set(onHosts.map((m) => m.name));
  for (const m of onHosts) {
    if (stored.some((s) => s.name === m.name)) continue;
    ctx.log.warn('adopting a member the store did not know', { group: group.name, member: m.name, server: m.dep.server.name });
    const createdAt = Number(m.domain.metadata[MEMBER_LABELS.createdAt]);
    await ctx.store.putMember({
      group: group.name, name: m.name, server: m.dep.serverId, index: m.index,
      createdAt: Number.isFinite(createdAt) ? createdAt : ctx.now(),
      tokenSha256: m.domain.metadata[MEMBER_LABELS.tokenSha256] ?? null,
    });
  }
  for (const s of stored) {
    if (seen.has(s.name) || unreachable.some((u) => s.server.startsWith(`${u}@`))) continue;
    ctx.log.warn('forgetting a member no host has', { group: group.name, member: s.name, server: s.server });
    await ctx.store.removeMember(group.name, s.name);
  }
  return ctx.store.members(group.name);
}

function lowestFreeIndexes(members: readonly MemberRecord[], count: number): number[] {
  const used = new Set(members.map((m) => m.index));
  const out: number[] = [];
  for (let i = 0; out.length < count; i++) if (!used.has(i)) out.push(i);
  return out;
}

const NO_ROOM = 'No server fits this instance';

/** What a member is made of: the group's shape, its own variables, labels and report token. */
function memberSpec(ctx: PassContext, group: GroupRecord, deployments: readonly LayerRef[], index: number, createdAt: number): { spec: InstanceSpec; tokenSha256: string | null } {
  const name = memberName(group.name, index);
  // The token goes into the member's seed only; the store and the domain keep its hash, so
  // a member adopted after a crash can still report.
  const token = ctx.report ? randomBytes(24).toString('base64url') : null;
  const tokenSha256 = token === null ? null : sha256Hex(token);
  const reportFile = token === null || !ctx.report ? [] : [{
    path: REPORT_FILE,
    content: JSON.stringify({ url: ctx.report.url, member: name, token, ca: ctx.report.caPem }) + '\n',
    permissions: '0600',
  }];
  return {
    tokenSha256,
    spec: {
      name,
      deployments,
      hardware: { memoryMib: group.shape.memoryMib, vcpus: group.shape.vcpus },
      network: group.shape.network,
      variables: { ...group.shape.variables, member: name, index: String(index) },
      files: [...group.shape.files, ...reportFile],
      diskSizeMib: null,
      state: 'running',
      placement: group.shape.placement ?? 'spread',
      labels: {
        [MEMBER_LABELS.group]: group.name, [MEMBER_LABELS.index]: String(index), [MEMBER_LABELS.createdAt]: String(createdAt),
        ...(tokenSha256 ? { [MEMBER_LABELS.tokenSha256]: tokenSha256 } : {}),
      },
    },
  };
}

/** The deployments' servers' CPU as the sampler last recorded it (within `freshMs`), by server id. */
async function serverCpu(ctx: PassContext, deployments: readonly LayerRef[]): Promise<Map<string, number>> {
  const now = ctx.now();
  const freshMs = ctx.freshMs ?? 60_000;
  const cpu = new Map<string, number>();
  for (const d of deployments) {
    const latest = await freshServerCpu(ctx.store, d.server.name, now, freshMs);
    if (latest !== null) cpu.set(d.serverId, latest);
  }
  return cpu;
}

/**
 * Makes `count` members, each placed counting the ones before it (`load`: a member's share now).
 * `unplaced` names the first that found no room: host power's cue only when none was made, since
 * the members made take load first, and a group still hot after its cooldown asks again (a server
 * powered on for a member that was no longer needed sat empty through its hold, in the simulator).
 */
async function scaleOut(ctx: PassContext, group: GroupRecord, deployments: readonly LayerRef[], members: readonly MemberRecord[], count: number, load: number): Promise<{ made: string[]; unplaced: string | null }> {
  const made: string[] = [];
  const cpu = await serverCpu(ctx, deployments);
  const added = new Map<string, number>();
  for (const index of lowestFreeIndexes(members, count)) {
    const createdAt = ctx.now();
    const { spec: base, tokenSha256 } = memberSpec(ctx, group, deployments, index, createdAt);
    const busy = { cpu, saturated: group.policy.saturatedServerCpu ?? DEFAULT_SCALING.saturatedServerCpu!, placedCores: placedCores(added, load, group.shape.vcpus) };
    const spec = { ...base, busy };
    let dep: LayerRef;
    try {
      ({ dep } = await makeInstance(ctx, spec));
    } catch (err) {
      // No room (or no server answering) is the power policy's cue, not a failure of the pass.
      if (err instanceof DiagnosticError && err.diagnostic.summary === NO_ROOM) return { made, unplaced: `${spec.name} (${group.shape.memoryMib} MiB)` };
      if (err instanceof LibvirtUnreachableError) return { made, unplaced: `${spec.name} (no server answers)` };
      throw err;
    }
    await ctx.store.putMember({ group: group.name, name: spec.name, server: dep.serverId, index, createdAt, tokenSha256 });
    made.push(`${spec.name} on ${dep.server.name}`);
    added.set(dep.serverId, (added.get(dep.serverId) ?? 0) + 1);
  }
  return { made, unplaced: null };
}

/**
 * Members a killed controller left half-made (still a placement reservation: no disk or seed
 * yet, or not started) are made whole, on the server they were placed on; makeInstance adopts
 * what exists. A member found shut off is started: the group's members run.
 */
async function finishInterrupted(ctx: PassContext, group: GroupRecord, onHosts: readonly HostMember[], log: Logger): Promise<void> {
  for (const m of onHosts) {
    // One member that cannot be mended (its network down, its server full) must not stop the
    // group from scaling: it is said, and tried again next round.
    try {
      if (reservationEnd(m.domain) !== null) {
        const labelled = Number(m.domain.metadata[MEMBER_LABELS.createdAt]);
        const createdAt = Number.isFinite(labelled) ? labelled : ctx.now();
        const { spec, tokenSha256 } = memberSpec(ctx, group, [m.dep], m.index, createdAt);
        log.warn(`finishing member ${m.name}, which an interrupted scale-out left half-made on ${m.dep.server.name}`, { group: group.name });
        await makeInstance(ctx, spec);
        await ctx.store.putMember({ group: group.name, name: m.name, server: m.dep.serverId, index: m.index, createdAt, tokenSha256 });
        const line = `finish ${group.name}: an interrupted scale-out left ${m.name} half-made → ${m.name} on ${m.dep.server.name}`;
        log.info(line, { group: group.name });
        await ctx.store.recordDecision({ at: ctx.now(), kind: 'scale', subject: group.name, action: 'finish', reason: line });
      } else if (m.domain.state === 'shutoff') {
        log.warn(`starting member ${m.name}, found shut off on ${m.dep.server.name}`, { group: group.name });
        await setDomainState(m.dep.server.uri, m.name, 'running');
      }
    } catch (err) {
      log.error(`member ${m.name} on ${m.dep.server.name} could not be mended: ${(err as Error).message}`, { group: group.name });
    }
  }
}

async function scaleIn(ctx: PassContext, group: GroupRecord, deployments: readonly LayerRef[], members: readonly MemberRecord[], names: readonly string[]): Promise<void> {
  for (const name of names) {
    const m = members.find((x) => x.name === name);
    const uri = m ? deployments.find((d) => d.serverId === m.server)?.server.uri : undefined;
    if (uri) await removeInstance(uri, name);
    await ctx.store.removeMember(group.name, name);
  }
}

export interface PassResult {
  decision: ScalingDecision;
  /** What was done, e.g. "web-1 on blade1". */
  done: string[];
  unreachable: string[];
  /** A member the group needs that no powered server had room for (host power's cue). */
  unplaced: string | null;
  /** The group was drained and its record removed. */
  removed: boolean;
}

/** The group's load series: its members' mean CPU (the sampler's) or a metric they report. */
export async function groupLoad(store: ControllerStore, group: GroupRecord, members: readonly MemberRecord[], from: number, to: number): Promise<{ at: number; utilization: number }[]> {
  if (group.metric === GROUP_CPU) return (await store.samples(group.name, GROUP_CPU, from, to)).map((s) => ({ at: s.at, utilization: s.value }));
  // Reports arrive on each member's own schedule: the group's value at a moment is the mean of
  // each member's latest report up to then.
  const series = await Promise.all(members.map((m) => store.samples(m.name, group.metric, from, to)));
  const times = [...new Set(series.flat().map((s) => s.at))].sort((a, b) => a - b);
  const cursor = series.map(() => -1);
  return times.map((at) => {
    const latest: number[] = [];
    series.forEach((ss, i) => {
      while (cursor[i]! + 1 < ss.length && ss[cursor[i]! + 1]!.at <= at) cursor[i]!++;
      if (cursor[i]! >= 0) latest.push(ss[cursor[i]!]!.value);
    });
    return { at, utilization: latest.reduce((a, b) => a + b, 0) / latest.length };
  });
}

/** Removes every member of a group Terraform destroyed, then its record. */
async function drain(ctx: PassContext, group: GroupRecord, deployments: readonly LayerRef[], members: readonly MemberRecord[], unreachable: readonly string[], log: Logger): Promise<boolean> {
  const names = members.map((m) => m.name);
  await scaleIn(ctx, group, deployments, members, names);
  const line = `drain ${group.name}: destroyed in Terraform → removed ${names.length ? names.join(', ') : 'no member'}`;
  log.info(line, { group: group.name });
  await ctx.store.recordDecision({ at: ctx.now(), kind: 'scale', subject: group.name, action: 'drain', reason: line });
  // Members on a server that did not answer may still exist: the record stays until it answers.
  if (unreachable.length) {
    log.warn(`group ${group.name} kept until ${unreachable.join(', ')} answer(s): members there may remain`);
    return false;
  }
  await ctx.store.deleteGroup(group.name);
  return true;
}

/** One pass over `group`: reconcile, decide, act, record. */
export async function runGroupPass(ctx: PassContext, group: GroupRecord, log: Logger = ctx.log): Promise<PassResult> {
  const deployments = deploymentsOf(group);
  const { members: onHosts, running: onServers, unreachable } = await membersOnHosts(group, deployments);
  let members = await reconcile(ctx, group, onHosts, unreachable);
  const none: ScalingDecision = { action: 'none', reason: 'drained' };
  if (!group.deleting) {
    await finishInterrupted(ctx, group, onHosts, log);
    members = await ctx.store.members(group.name);
  }
  if (group.deleting) {
    const removed = await drain(ctx, group, deployments, members, unreachable, log);
    return { decision: none, done: members.map((m) => m.name), unreachable, unplaced: null, removed };
  }
  const now = ctx.now();
  const load = await groupLoad(ctx.store, group, members, now - 2 * group.policy.windowSeconds * 1000 - 60_000, now);
  const running = new Set(onHosts.filter((m) => m.domain.state === 'running').map((m) => m.name));
  const view: GroupMember[] = members.map((m) => ({ name: m.name, createdAt: m.createdAt, ready: running.has(m.name), server: m.server }));
  // The servers host power may switch off (as the power pass sees them): a scale-in empties one of those first.
  const powered = group.power ? (ctx.servers ?? await ctx.store.servers()).filter((s) => s.managed && s.bmc !== null && onServers[s.id] !== undefined) : [];
  const drainable = Object.fromEntries(powered.map((s) => [s.id, onServers[s.id]!]));
  const decision = decideScaling(group.policy, { members: view, load, lastScaleOutAt: group.lastScaleOutAt, lastScaleInAt: group.lastScaleInAt, now, metric: group.metric, drainable });
  let done: string[] = [];
  let unplaced: string | null = null;
  let waiting: string | null = null;
  if (decision.action === 'out') {
    // A member's share of the CPU: the group's load when it is CPU; a reported metric says nothing of CPU.
    const share = group.metric === GROUP_CPU ? load.at(-1)?.utilization ?? 0 : 0;
    const made = await scaleOut(ctx, group, deployments, members, decision.count, share);
    done = made.made;
    unplaced = made.made.length ? null : made.unplaced;
    waiting = made.made.length ? made.unplaced : null;
    if (done.length) await ctx.store.markScaled(group.name, 'out', now);
  } else if (decision.action === 'in') {
    await scaleIn(ctx, group, deployments, members, decision.members);
    await ctx.store.markScaled(group.name, 'in', now);
    done = [...decision.members];
  }
  if (decision.action !== 'none') {
    const outcome = decision.action === 'out'
      ? [done.join(', '), unplaced ? `no room for ${unplaced} on any powered server` : '', waiting ? `no room yet for ${waiting}: the members made take load first` : ''].filter(Boolean).join('; ')
      : `removed ${done.join(', ')}`;
    const line = `scale ${decision.action} ${group.name}: ${decision.reason} → ${outcome}`;
    log.info(line, { group: group.name });
    await ctx.store.recordDecision({ at: now, kind: 'scale', subject: group.name, action: decision.action, reason: line });
  }
  return { decision, done, unreachable, unplaced, removed: false };
}
