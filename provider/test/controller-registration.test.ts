// What the controller accepts as a group's policy: the checks the API runs on every body, here
// without a server (controller-api.test.ts runs them over HTTPS).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseGroupRegistration } from '../src/controller/registration.ts';
import { DEFAULT_SCALING } from '../src/policy/scaling.ts';

const body = (policy: Record<string, unknown>) => ({
  policy: { min: 1, max: 3, guestCpuHigh: 0.9, guestCpuLow: 0.3, windowSeconds: 30, step: 1, cooldownOutSeconds: 60, cooldownInSeconds: 300, ...policy },
  shape: { deployments: ['dep-web@blade1@qemu+tcp://127.0.0.11/system'], memoryMib: 64, vcpus: 1, network: 'lan', variables: {}, files: [] },
  dnsName: null,
  metric: 'cpu',
  power: null,
});

test('registration: a group from a provider that sends no scale_in_target runs without proportional scale-in, as it did', () => {
  assert.equal(parseGroupRegistration(body({})).policy.scaleInTarget, 0);
  assert.equal(parseGroupRegistration(body({ scaleInTarget: DEFAULT_SCALING.scaleInTarget })).policy.scaleInTarget, 0.7);
});

test('registration: a scale-in target not below the scale-out target is refused, naming both', () => {
  assert.throws(() => parseGroupRegistration(body({ scaleOutTarget: 0.6, scaleInTarget: 0.7 })), /policy\.scaleInTarget \(0\.7\) must be below policy\.scaleOutTarget \(0\.6\), or 0/);
  assert.throws(() => parseGroupRegistration(body({ scaleInTarget: 0.8 })), /must be below policy\.scaleOutTarget \(0\.8\)/, 'against the default scale-out target');
  assert.equal(parseGroupRegistration(body({ scaleOutTarget: 0, scaleInTarget: 0.9 })).policy.scaleInTarget, 0.9, 'one at a time out: any target in');
});
