// The replay of a recorded run (sim/replay.ts) on a small recording made by hand: one group on
// two blades of 2 CPUs, a round every 2 s, the load stepping up at 50 s and down at 110 s. The
// decisions expected are worked out below from the policy's rules, not read off the replay.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { openSqliteStore } from '../src/controller/store-sqlite.ts';
import { DEFAULT_POWER } from '../src/policy/power.ts';
import { DEFAULT_SCALING } from '../src/policy/scaling.ts';
import { compareDecisions, replay, type RecordedDecision, type Recording } from '../src/sim/replay.ts';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const S = 1000;
const rounds = Array.from({ length: 121 }, (_, i) => i * 2 * S); // 0 … 240 s
const step = (at: number, before: number, after: number, until = Infinity) => (t: number) => (t >= at && t < until ? after : before);
const groupLoad = step(50 * S, 0.1, 1, 110 * S);
const blade1 = step(50 * S, 0.1, 0.95, 110 * S);

function recording(decisions: RecordedDecision[]): Recording {
  return {
    intervalSeconds: 2,
    from: 0,
    to: 240 * S,
    group: {
      name: 'web',
      policy: { ...DEFAULT_SCALING, min: 1, max: 4, guestCpuHigh: 0.6, guestCpuLow: 0.3, windowSeconds: 10, cooldownOutSeconds: 40, cooldownInSeconds: 45, scaleOutTarget: 0, scaleInTarget: 0 },
      power: { ...DEFAULT_POWER, hostCpuHigh: 0.75, emptyHoldSeconds: 20, defaultBootSeconds: 5 },
      memoryMib: 256,
      vcpus: 1,
      placement: 'spread',
    },
    servers: [
      { name: 'blade1', cpus: 2, memoryMib: 4096, reservedMemoryMib: 128, managed: false, bootSeconds: [] },
      { name: 'blade2', cpus: 2, memoryMib: 4096, reservedMemoryMib: 128, managed: true, bootSeconds: [6] },
    ],
    // Measured from the round after the first member runs (a rate needs two readings).
    groupLoad: rounds.filter((t) => t >= 4 * S).map((at) => ({ at, value: groupLoad(at) })),
    serverCpu: rounds.flatMap((at) => [{ at, server: 'blade1', value: blade1(at) }, ...(at >= 20 * S && at < 56 * S ? [] : [{ at, server: 'blade2', value: 0.02 }])]),
    rounds,
    decisions,
  };
}

const d = (at: number, kind: 'scale' | 'power', action: string, subject: string): RecordedDecision => ({ at: at * S, kind, action, subject, reason: `${kind} ${action} ${subject}` });

// 0 s: no member < min 1 → one, on blade1 (both on and empty: the name breaks the tie).
// 20 s: blade2 empty since 0 s for its 20 s hold, the group's load (10 %) below its low mark → off.
// 50 s: blade1 at 95 % ≥ 75 %, the only powered server → blade2 on (up at 56 s, its boot of 6 s).
// 60 s: the load at 100 % since 50 s held the 10 s window → a member (one at a time: target 0),
// on blade2 (up, and emptier).
// 100 s: still ≥ 60 %, the 40 s out-cooldown over → another, on blade2 (blade1 at 95 % is
// saturated: it takes no member).
// 110 s: the load drops; 120 s it has held below 30 % for the window, but the in-cooldown runs
// 45 s from the last change (100 s) → 146 s: the newest goes; 192 s, 45 s later, the next.
// Both were on blade2: it is empty from 192 s, and off after its 20 s hold, at 212 s.
const expected = [
  d(0, 'scale', 'out', 'web'), d(20, 'power', 'off', 'blade2'), d(50, 'power', 'on', 'blade2'), d(60, 'scale', 'out', 'web'),
  d(100, 'scale', 'out', 'web'), d(146, 'scale', 'in', 'web'), d(192, 'scale', 'in', 'web'), d(212, 'power', 'off', 'blade2'),
];

test('replay: the decisions worked out by hand, each at its round', () => {
  const made = replay(recording(expected)).map((x) => `${x.at / S} ${x.kind} ${x.action} ${x.subject}`);
  assert.deepEqual(made, expected.map((x) => `${x.at / S} ${x.kind} ${x.action} ${x.subject}`));
});

test('replay: a live decision one round off still matches; one the policy would not make, or missed, is told', () => {
  const rec = recording(expected);
  const shifted = expected.map((x) => (x.at === 60 * S ? { ...x, at: 62 * S } : x));
  const same = compareDecisions(shifted, replay(rec), rec.intervalSeconds);
  assert.equal(same.matched.length, expected.length);
  assert.deepEqual([same.missing, same.extra], [[], []]);

  const late = expected.map((x) => (x.at === 60 * S ? { ...x, at: 66 * S } : x));
  const off = compareDecisions([...late, d(30, 'power', 'on', 'blade2')], replay(rec), rec.intervalSeconds);
  assert.deepEqual(off.missing.map((x) => x.at / S).sort((a, b) => a - b), [30, 66]);
  assert.deepEqual(off.extra.map((x) => `${x.at / S} ${x.action}`), ['60 out']);
});

test('storm controller replay: a group the store does not hold, or missing options, is said plainly', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'storm-replay-'));
  try {
    const db = join(dir, 'controller.db');
    (await openSqliteStore(db)).close();
    const run = (args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> =>
      new Promise((resolve) => {
        const child = execFile(process.execPath, ['--import', 'tsx', 'provider/src/main.ts', 'controller', 'replay', ...args], { cwd: REPO, timeout: 30_000 }, (_e, stdout, stderr) =>
          resolve({ code: child.exitCode, stdout, stderr }),
        );
      });
    const none = await run(['--db', db, '--group', 'web']);
    assert.equal(none.code, 1);
    assert.equal(none.stderr.trim(), 'storm controller replay: the store holds no group "web" (the status page lists the groups the controller runs)');
    const bare = await run(['--db', db]);
    assert.equal(bare.code, 2);
    assert.match(bare.stderr, /replay needs --db \(the store the controller runs with\) and --group NAME/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('replay: with the run\'s rounds, a live decision counts in the round it was taken in, one round either way', () => {
  const rec = recording(expected);
  const replayed = replay(rec);
  // The pass of the round at 60 s decided 1.5 s into it: the same round.
  const inRound = compareDecisions(expected.map((x) => (x.at === 60 * S ? { ...x, at: 61.5 * S } : x)), replayed, 2, rec.rounds);
  assert.deepEqual([inRound.missing, inRound.extra], [[], []]);
  // A cooldown that ended between a round's start and its pass: the next round's pass, 3.9 s later.
  const nextRound = compareDecisions(expected.map((x) => (x.at === 60 * S ? { ...x, at: 63.9 * S } : x)), replayed, 2, rec.rounds);
  assert.deepEqual([nextRound.missing, nextRound.extra], [[], []]);
  // Two rounds later is another decision.
  const twoRounds = compareDecisions(expected.map((x) => (x.at === 60 * S ? { ...x, at: 64.1 * S } : x)), replayed, 2, rec.rounds);
  assert.deepEqual([twoRounds.missing.map((x) => x.at / S), twoRounds.extra.map((x) => x.at / S)], [[64.1], [60]]);
});
