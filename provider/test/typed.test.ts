// Typed models: a schema declared once gives the resource its type, and values are decoded
// into it once, defaults applied there.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UNKNOWN } from '../src/protocol/cty/index.ts';
import type { ResourceSchema } from '../src/schema/model.ts';
import { decodeBlock, encodeBlock, type Model } from '../src/schema/typed.ts';

const schema = {
  typeName: 'storm_example',
  version: 0,
  description: 'x',
  block: {
    attributes: {
      id: { type: 'string', mode: 'computed', description: 'id' },
      name: { type: 'string', mode: 'required', description: 'name' },
      size: { type: 'number', mode: 'optional', default: 7, description: 'size' },
      tags: { type: { map: 'string' }, mode: 'optional', description: 'tags' },
    },
    blocks: {
      one: { nesting: 'single', description: 'one', block: { attributes: { on: { type: 'bool', mode: 'optional', default: true, description: 'on' } } } },
      many: { nesting: 'list', description: 'many', block: { attributes: { path: { type: 'string', mode: 'required', description: 'p' } } } },
    },
  },
} as const satisfies ResourceSchema;

test('decoding applies defaults, turns unknowns into null, and types the model', () => {
  const m: Model<typeof schema> = decodeBlock(schema.block, { id: UNKNOWN, name: 'a', size: null, tags: null, one: { on: null }, many: [{ path: '/x' }] });
  assert.deepEqual(m, { id: null, name: 'a', size: 7, tags: null, one: { on: true }, many: [{ path: '/x' }] });
  // The type follows from the schema: these lines only compile if it does.
  const size: number = m.size;
  const on: boolean | undefined = m.one?.on;
  const path: string | undefined = m.many[0]?.path;
  assert.equal(size + (on ? 1 : 0) + (path?.length ?? 0), 10);
});

test('an absent single block decodes to null, an absent list block to []', () => {
  const m = decodeBlock(schema.block, { name: 'a' });
  assert.equal(m.one, null);
  assert.deepEqual(m.many, []);
});

test('encoding gives every attribute, null when unset', () => {
  const m = decodeBlock(schema.block, { name: 'a' });
  assert.deepEqual(encodeBlock(schema.block, m), { id: null, name: 'a', size: 7, tags: null, one: null, many: [] });
});
