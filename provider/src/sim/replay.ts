// A live run replayed: the load samples the controller recorded on real guests, fed round by
// round to the same pure functions its passes call (decideScaling, place, groupDemand,
// decidePower, emptySinceAfter), with the group's members, the servers' power and the time of
// the last scalings kept by the replay itself, not read back from the run. If the replay makes
// the decisions the live controller made (the same scale-outs, scale-ins and power changes,
// each within one sampling interval), the simulated policy is the one that runs. What the
// replay cannot know it takes from the run: each power-on lasts as long as the live one did,
// and a server holds only the group's members (a server shared with other work would differ).
import { place, placedCores, shiftedCpu, type PlacementMode, type ServerLoad } from '../policy/placement.ts';
import { decidePower, emptySinceAfter, groupDemand, type PowerPolicy, type ServerPowerView } from '../policy/power.ts';
import { decideScaling, DEFAULT_SCALING, demandMark, type ScalingPolicy } from '../policy/scaling.ts';

export interface RecordedServer {
  name: string;
  cpus: number;
  memoryMib: number;
  reservedMemoryMib: number;
  /** Its power is the controller's to switch (power = "controller", a BMC). */
  managed: boolean;
  /** Seconds each of its power-ons in the run took until libvirt answered, in order. */
  bootSeconds: readonly number[];
}

export interface RecordedDecision {
  at: number;
  kind: 'scale' | 'power';
  /** 'out' | 'in' for a group; 'on' | 'off' for a server. */
  action: string;
  /** The group (scale) or the server (power). */
  subject: string;
  reason: string;
}

export interface Recording {
  /** The controller's --interval, s. */
  intervalSeconds: number;
  /** The span replayed (epoch ms): from the group's registration, with no member yet. */
  from: number;
  to: number;
  group: { name: string; policy: ScalingPolicy; power: PowerPolicy | null; memoryMib: number; vcpus: number; placement: PlacementMode };
  servers: readonly RecordedServer[];
  /** The group's load ('cpu' of the group), each round, oldest first. */
  groupLoad: readonly { at: number; value: number }[];
  /** Each server's CPU ('cpu' of the server), oldest first. */
  serverCpu: readonly { at: number; server: string; value: number }[];
  /** When the controller's rounds ran (its 'members' samples of the group). */
  rounds: readonly number[];
  decisions: readonly RecordedDecision[];
}

export interface Comparison {
  /** Live decisions the replay also made within one interval, with the replay's time. */
  matched: { live: RecordedDecision; replayAt: number }[];
  /** Live decisions the replay did not make. */
  missing: RecordedDecision[];
  /** Replay decisions the live controller did not make. */
  extra: RecordedDecision[];
}

interface Member { name: string; index: number; server: string; createdAt: number }

const isChange = (d: RecordedDecision) => (d.kind === 'scale' && (d.action === 'out' || d.action === 'in')) || (d.kind === 'power' && (d.action === 'on' || d.action === 'off'));

/** Each server's power at the start: on, unless its first switch in the run was an 'on'. */
function initialPower(rec: Recording): Map<string, 'on' | 'off'> {
  const power = new Map(rec.servers.map((s) => [s.name, 'on' as 'on' | 'off']));
  for (const s of rec.servers) {
    const first = rec.decisions.find((d) => d.kind === 'power' && d.subject === s.name && isChange(d));
    if (first?.action === 'on') power.set(s.name, 'off');
  }
  return power;
}

/** The samples of a series sorted by time that fall in [from, to]. */
function span<T extends { at: number }>(series: readonly T[], from: number, to: number): readonly T[] {
  const first = (t: number, after: boolean) => {
    let lo = 0;
    let hi = series.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (series[mid]!.at < t || (after && series[mid]!.at === t)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
  return series.slice(first(from, false), first(to, true));
}

/** The decisions the policy makes on the recorded load, in the run's rounds. */
export function replay(rec: Recording): RecordedDecision[] {
  const { group } = rec;
  const freshMs = 3 * rec.intervalSeconds * 1000;
  const out: RecordedDecision[] = [];
  const members: Member[] = [];
  const power = new Map<string, 'on' | 'off' | 'booting'>(initialPower(rec));
  const bootsDone = new Map<string, number>();
  const bootUntil = new Map<string, number>();
  const emptySince = new Map<string, number | null>();
  let lastOut: number | null = null;
  let lastIn: number | null = null;
  // Each round reads what the live passes read: the samples of a span ending now (as the
  // store's range queries do, ends included), found by binary search, so a day's record
  // replays in a time linear in its length.
  const cpuOf = new Map(rec.servers.map((s) => [s.name, rec.serverCpu.filter((x) => x.server === s.name)]));
  const latest = (server: string, from: number, to: number) => span(cpuOf.get(server) ?? [], from, to);
  for (const now of rec.rounds.filter((t) => t >= rec.from && t <= rec.to)) {
    for (const [server, until] of bootUntil) {
      if (until <= now) {
        power.set(server, 'on');
        bootUntil.delete(server);
      }
    }
    // The group pass: a member made in an earlier round runs by now (its domain is started as it is made).
    // The group pass's span (group-pass.ts runGroupPass): two windows and a minute.
    const load = span(rec.groupLoad, now - 2 * group.policy.windowSeconds * 1000 - 60_000, now).map((x) => ({ at: x.at, utilization: x.value }));
    const d = decideScaling(group.policy, {
      members: members.map((m) => ({ name: m.name, createdAt: m.createdAt, ready: m.createdAt < now, server: m.server })),
      // The record holds this group's members only: a server's count is theirs (the live pass counts every running domain).
      drainable: Object.fromEntries(rec.servers.filter((s) => group.power && s.managed).map((s) => [s.name, members.filter((m) => m.server === s.name).length])),
      load,
      lastScaleOutAt: lastOut,
      lastScaleInAt: lastIn,
      now,
    });
    let unplaced: string | null = null;
    if (d.action === 'out') {
      let made = 0;
      const added = new Map<string, number>();
      for (let n = 0; n < d.count; n++) {
        const placed = placedCores(added, load.at(-1)?.utilization ?? 0, group.vcpus);
        const used = new Set(members.map((m) => m.index));
        let index = 0;
        while (used.has(index)) index++;
        const loads: ServerLoad[] = rec.servers.filter((s) => power.get(s.name) === 'on').map((s) => {
          const here = members.filter((m) => m.server === s.name);
          return {
            server: s.name, cpus: s.cpus, memoryMib: s.memoryMib, reservedMemoryMib: s.reservedMemoryMib,
            committedMemoryMib: here.length * group.memoryMib, committedVcpus: here.length * group.vcpus,
            cpu: shiftedCpu(latest(s.name, now - freshMs, now).at(-1)?.value, placed.get(s.name), s.cpus),
          };
        });
        const where = loads.length ? place({ memoryMib: group.memoryMib, vcpus: group.vcpus }, loads, group.placement, group.policy.saturatedServerCpu ?? DEFAULT_SCALING.saturatedServerCpu) : { error: 'no server answers' };
        if ('error' in where) {
          // Host power's cue only when none was made (group-pass.ts scaleOut).
          if (made === 0) unplaced = `${group.name}-${index}`;
          break;
        }
        members.push({ name: `${group.name}-${index}`, index, server: where.server, createdAt: now });
        added.set(where.server, (added.get(where.server) ?? 0) + 1);
        made++;
      }
      if (made) {
        lastOut = now;
        out.push({ at: now, kind: 'scale', action: 'out', subject: group.name, reason: d.reason });
      }
    } else if (d.action === 'in') {
      for (const name of d.members) members.splice(members.findIndex((m) => m.name === name), 1);
      lastIn = now;
      out.push({ at: now, kind: 'scale', action: 'in', subject: group.name, reason: d.reason });
    }
    if (!group.power) continue;
    // The power pass, as the controller's: what each server holds now, its CPU, its hold.
    const holdMs = group.power.emptyHoldSeconds * 1000;
    const servers: ServerPowerView[] = rec.servers
      .filter((s) => s.managed || power.get(s.name) !== 'off')
      .map((s) => {
        const p = power.get(s.name)!;
        const running = p === 'on' ? members.filter((m) => m.server === s.name).length : null;
        const empty = emptySinceAfter(emptySince.get(s.name) ?? null, p, running, now);
        emptySince.set(s.name, empty);
        const recent = p === 'on' ? latest(s.name, now - holdMs, now) : [];
        return {
          server: s.name,
          power: p,
          canPower: s.managed,
          cpu: p === 'on' ? latest(s.name, now - freshMs, now).at(-1)?.value ?? null : null,
          cpuPeak: recent.length ? Math.max(...recent.map((x) => x.value)) : null,
          emptySince: p === 'on' ? empty : null,
          bootHistorySeconds: s.bootSeconds.slice(0, bootsDone.get(s.name) ?? 0),
        };
      });
    const fresh = span(rec.groupLoad, now - freshMs, now).at(-1)?.value ?? null;
    const decision = decidePower(group.power, { servers, unplaced, now, demand: groupDemand(group.name, fresh, demandMark(group.policy), members.length) });
    if (decision.action === 'none') continue;
    const s = rec.servers.find((x) => x.name === decision.server)!;
    if (decision.action === 'on') {
      const k = bootsDone.get(s.name) ?? 0;
      power.set(s.name, 'booting');
      bootUntil.set(s.name, now + (s.bootSeconds[k] ?? group.power.defaultBootSeconds) * 1000);
      bootsDone.set(s.name, k + 1);
    } else {
      power.set(s.name, 'off');
      emptySince.delete(s.name);
    }
    out.push({ at: now, kind: 'power', action: decision.action, subject: decision.server, reason: decision.reason });
  }
  return out;
}

/**
 * Pairs each live change (scale out or in, power on or off) with the replay's of the same kind,
 * action and subject at most one sampling interval away, in order; what is left on either side
 * differs. With the run's `rounds` (their starts), "one interval" is one round: a live pass
 * decides after its round's sampling and its own look at the hosts, seconds later on a busy
 * machine, so a live decision is counted in the round it was taken in, as the replay's are, and
 * a cooldown that ends between the round's start and its pass moves a decision by one round.
 * Without rounds, by the clock.
 */
export function compareDecisions(live: readonly RecordedDecision[], replayed: readonly RecordedDecision[], intervalSeconds: number, rounds: readonly number[] = []): Comparison {
  const roundOf = (at: number) => {
    let i = rounds.length - 1;
    while (i >= 0 && rounds[i]! > at) i--;
    return i;
  };
  const near = rounds.length
    ? (a: number, b: number) => Math.abs(roundOf(a) - roundOf(b)) <= 1
    : (a: number, b: number) => Math.abs(a - b) <= intervalSeconds * 1000;
  const left = replayed.filter(isChange);
  const matched: Comparison['matched'] = [];
  const missing: RecordedDecision[] = [];
  for (const l of live.filter(isChange)) {
    const i = left.findIndex((r) => r.kind === l.kind && r.action === l.action && r.subject === l.subject && near(r.at, l.at));
    if (i < 0) {
      missing.push(l);
      continue;
    }
    matched.push({ live: l, replayAt: left[i]!.at });
    left.splice(i, 1);
  }
  return { matched, missing, extra: left };
}
