import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ResolutionError, resolve } from '../src/channel/resolve.ts';
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
    (e: unknown) => e instanceof ResolutionError && /dependency cycle: a → b → a/.test(e.message),
  );
});
