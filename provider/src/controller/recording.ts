// What the controller recorded of one scaling group, as the simulator's replay reads it
// (sim/replay.ts): the group's policy and shape, its rounds, its load and its servers' CPU, the
// servers' boot times and the decisions taken. From the group's first round: the replay starts,
// as the group did, with no member.
import type { Comparison, RecordedServer, Recording } from '../sim/replay.ts';
import { serversOf } from './power-pass.ts';
import { CPU, MEMBERS } from './sampler.ts';
import { GROUP_CPU } from './group-pass.ts';
import type { ControllerStore } from './store.ts';

/** A server's capacity, as placement counts it. */
export interface Capacity {
  cpus: number;
  memoryMib: number;
  reservedMemoryMib: number;
}

export class RecordingError extends Error {}

export async function recordingOf(
  store: ControllerStore,
  groupName: string,
  options: { intervalSeconds: number; to: number; capacity: (server: { id: string; name: string; uri: string }) => Promise<Capacity> },
): Promise<Recording> {
  const group = await store.group(groupName);
  if (!group) throw new RecordingError(`the store holds no group "${groupName}" (the status page lists the groups the controller runs)`);
  if (group.metric !== GROUP_CPU) throw new RecordingError(`group "${groupName}" scales on a metric its members report ("${group.metric}"); the replay reads CPU only`);
  const rounds = (await store.samples(groupName, MEMBERS, 0, options.to)).map((s) => s.at);
  if (!rounds.length) throw new RecordingError(`group "${groupName}" has no recorded rounds up to ${new Date(options.to).toISOString()}`);
  const from = rounds[0]!;
  const records = serversOf(group, await store.servers());
  const servers: RecordedServer[] = await Promise.all(records.map(async (s) => ({
    name: s.name,
    ...(await options.capacity(s)),
    managed: s.managed && s.bmc !== null,
    bootSeconds: await store.bootHistory(s.id),
  })));
  const serverCpu = (await Promise.all(records.map(async (s) => (await store.samples(s.name, CPU, from, options.to)).map((x) => ({ at: x.at, server: s.name, value: x.value }))))).flat().sort((a, b) => a.at - b.at);
  const names = new Set([groupName, ...records.map((s) => s.name)]);
  const decisions = (await Promise.all([...names].map((subject) => store.decisions({ subject, limit: 100_000 }))))
    .flat()
    .filter((d) => d.at >= from && d.at <= options.to)
    .sort((a, b) => a.at - b.at)
    .map((d) => ({ at: d.at, kind: d.kind, action: d.action, subject: d.subject, reason: d.reason }));
  return {
    intervalSeconds: options.intervalSeconds,
    from,
    to: options.to,
    group: { name: groupName, policy: group.policy, power: group.power, memoryMib: group.shape.memoryMib, vcpus: group.shape.vcpus, placement: group.shape.placement ?? 'spread' },
    servers,
    groupLoad: (await store.samples(groupName, GROUP_CPU, from, options.to)).map((s) => ({ at: s.at, value: s.value })),
    serverCpu,
    rounds,
    decisions,
  };
}

const stamp = (at: number, from: number) => `+${((at - from) / 1000).toFixed(1).padStart(7)} s`;

/** The comparison as `storm controller replay` prints it: each live change beside the replay's, then what differs. */
export function replayReport(rec: Recording, c: Comparison): string {
  const lines = [
    `replay of group ${rec.group.name}: ${rec.rounds.length} rounds from ${new Date(rec.from).toISOString()} to ${new Date(rec.to).toISOString()}, ${rec.groupLoad.length} load samples, ${rec.serverCpu.length} server CPU samples`,
    '',
    '  live            replay          decision',
  ];
  const rows = [
    ...c.matched.map((m) => ({ at: m.live.at, text: `  ${stamp(m.live.at, rec.from)}  ${stamp(m.replayAt, rec.from)}  ${m.live.reason}` })),
    ...c.missing.map((d) => ({ at: d.at, text: `  ${stamp(d.at, rec.from)}  ${'(not made)'.padEnd(11)}  ${d.reason}` })),
    ...c.extra.map((d) => ({ at: d.at, text: `  ${'(not made)'.padEnd(11)}  ${stamp(d.at, rec.from)}  ${d.kind === 'scale' ? `scale ${d.action} ${d.subject}` : `power ${d.action} ${d.subject}`}: ${d.reason}` })),
  ].sort((a, b) => a.at - b.at);
  lines.push(...rows.map((r) => r.text), '');
  const total = c.matched.length + c.missing.length;
  lines.push(
    c.missing.length || c.extra.length
      ? `${c.matched.length} of ${total} live decisions made by the replay within one round (${rec.intervalSeconds} s); ${c.missing.length} not made, ${c.extra.length} made that the controller did not`
      : `all ${total} decisions (scale-outs, scale-ins, power changes) made by the replay within one round (${rec.intervalSeconds} s)`,
  );
  return lines.join('\n') + '\n';
}
