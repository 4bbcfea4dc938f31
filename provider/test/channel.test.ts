import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DependencyCycleError, ResolutionError, findDependencyCycle, resolve } from '../src/channel/resolve.ts';
import { ConstraintError, compareVersions, newestSatisfying, satisfies } from '../src/channel/versions.ts';

test('versions compare numerically, segment by segment', () => {
  assert.ok(compareVersions('1.10.0-0', '1.9.9-9') > 0);
  assert.ok(compareVersions('1.0.0-0', '1.0.0-1') < 0);
  assert.equal(compareVersions('1.0', '1.0.0'), 0);
});

test('constraints: exact, ranges and pessimistic', () => {
  assert.ok(satisfies('1.0.0-0', '1.0.0-0'));
  assert.ok(satisfies('1.4', '>= 1.0, < 2'));
  assert.ok(!satisfies('2.0', '>= 1.0, < 2'));
  assert.ok(satisfies('1.2.9', '~> 1.2.0') && !satisfies('1.3.0', '~> 1.2.0'));
  assert.ok(satisfies('1.9', '~> 1.2') && !satisfies('2.0', '~> 1.2'));
  assert.equal(newestSatisfying(['1.0', '1.2', '2.0'], '< 2'), '1.2');
  assert.throws(() => satisfies('1.0', '>> 1'), ConstraintError);
});

const listing = [
  { name: 'webserv', version: '1.0', dependencies: ['emailserv:1.0', 'firewall'] },
  { name: 'webserv', version: '1.1', dependencies: ['emailserv', 'firewall'] },
  { name: 'emailserv', version: '1.0', dependencies: ['firewall'] },
  { name: 'emailserv', version: '2.0', dependencies: ['firewall'] },
  { name: 'firewall', version: '3.1', dependencies: [] },
];

test('resolution: dependencies first, each once, exact versions honoured', () => {
  assert.deepEqual(resolve(listing, 'webserv', '1.0').map((a) => `${a.name} ${a.version}`), ['firewall 3.1', 'emailserv 1.0', 'webserv 1.0']);
  assert.deepEqual(resolve(listing, 'webserv', null).map((a) => `${a.name} ${a.version}`), ['firewall 3.1', 'emailserv 2.0', 'webserv 1.1']);
});

test('resolution: a missing dependency and a cycle are clear errors', () => {
  assert.throws(() => resolve([{ name: 'a', version: '1', dependencies: ['b:2'] }, { name: 'b', version: '1', dependencies: [] }], 'a', null), /a 1 needs b = 2, but .*has b 1/);
  assert.throws(() => resolve([{ name: 'a', version: '1', dependencies: ['c'] }], 'a', null), /lists no appliance named "c"/);
  assert.throws(
    () => resolve([{ name: 'a', version: '1', dependencies: ['b'] }, { name: 'b', version: '1', dependencies: ['a'] }], 'a', null),
    (e: unknown) => e instanceof ResolutionError && /dependency cycle: a 1 → b 1 → a 1; .*remove one of these dependencies/.test(e.message),
  );
});

// A chain of appliances each needing the next: deeper than any call stack, and still linear.
const chain = (n: number, close = false) =>
  Array.from({ length: n }, (_, i) => ({ name: `a${i}`, version: '1', dependencies: i + 1 < n ? [`a${i + 1}`] : close ? ['a0'] : [] }));

test('resolution: a chain of 20,000 resolves without recursion, in linear time', () => {
  const listing = chain(20_000);
  const started = performance.now();
  const order = resolve(listing, 'a0', null);
  assert.ok(performance.now() - started < 1000);
  assert.equal(order.length, 20_000);
  assert.equal(order[0]!.name, 'a19999');
  assert.equal(order.at(-1)!.name, 'a0');
  // Many versions of one name: each choice of version is made once.
  const versions = Array.from({ length: 5000 }, (_, i) => ({ name: 'b', version: `1.${i}`, dependencies: [] }));
  const wide = [{ name: 'top', version: '1', dependencies: Array.from({ length: 256 }, () => 'b') }, ...versions];
  assert.deepEqual(resolve(wide, 'top', null).map((a) => `${a.name} ${a.version}`), ['b 1.4999', 'top 1']);
});

test('resolution: a cycle at the end of a long chain is found and named', () => {
  assert.throws(
    () => resolve(chain(10_000, true), 'a0', null),
    (e: unknown) => e instanceof DependencyCycleError && e.cycle.length === 10_001 && e.cycle[0]!.name === 'a0' && e.cycle.at(-1)!.name === 'a0',
  );
});

test('resolution: two versions of one appliance in a chain are not a cycle', () => {
  const listing = [
    { name: 'a', version: '2', dependencies: ['b'] },
    { name: 'b', version: '1', dependencies: ['a:1'] },
    { name: 'a', version: '1', dependencies: [] },
  ];
  assert.deepEqual(resolve(listing, 'a', '2').map((a) => `${a.name} ${a.version}`), ['a 1', 'b 1', 'a 2']);
  assert.equal(findDependencyCycle(listing), null);
});

test('findDependencyCycle: the whole listing in one pass, missing dependencies skipped', () => {
  assert.equal(findDependencyCycle(chain(20_000)), null);
  assert.deepEqual(
    findDependencyCycle([
      { name: 'x', version: '1', dependencies: ['nowhere', 'y'] },
      { name: 'y', version: '1', dependencies: ['z:1'] },
      { name: 'z', version: '1', dependencies: ['y'] },
    ])?.map((a) => a.name),
    ['y', 'z', 'y'],
  );
});
