import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { decode as rawDecode } from '@msgpack/msgpack';
import {
  BOOL,
  CtyPathError,
  DYNAMIC,
  NUMBER,
  STRING,
  TypedValue,
  UNKNOWN,
  Unknown,
  ctyEqual,
  decodeJson,
  decodeMsgpack,
  encodeJson,
  encodeMsgpack,
  isUnknown,
  isWhollyKnown,
  listOf,
  mapOf,
  objectOf,
  setOf,
  tupleOf,
  typeFromJson,
  typeFromJsonBytes,
  typeJsonBytes,
  typeToJson,
} from '../src/protocol/cty/index.ts';
import type { CtyType, CtyValue } from '../src/protocol/cty/index.ts';

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
const bytes = (hexText: string): Uint8Array => new Uint8Array(Buffer.from(hexText.replace(/\s+/g, ''), 'hex'));
const roundTrip = (value: CtyValue, type: CtyType): CtyValue => decodeMsgpack(encodeMsgpack(value, type), type);

const disk = objectOf({ size: NUMBER, tags: setOf(STRING) });
const server = objectOf({
  id: STRING,
  name: STRING,
  cpus: NUMBER,
  enabled: BOOL,
  labels: mapOf(STRING),
  disk: listOf(disk),
});

describe('cty types', () => {
  test('typeToJson and typeFromJson round-trip every kind of type', () => {
    const types: CtyType[] = [
      STRING,
      NUMBER,
      BOOL,
      DYNAMIC,
      listOf(STRING),
      setOf(NUMBER),
      mapOf(listOf(BOOL)),
      objectOf({ a: STRING, b: setOf(objectOf({ c: NUMBER })) }),
      tupleOf([STRING, NUMBER, listOf(DYNAMIC)]),
      tupleOf([]),
      objectOf({}),
    ];
    for (const type of types) {
      assert.deepEqual(typeFromJson(typeToJson(type)), type, JSON.stringify(typeToJson(type)));
    }
  });

  test('typeToJson produces the wire forms Terraform uses', () => {
    assert.equal(typeToJson(STRING), 'string');
    assert.deepEqual(typeToJson(listOf(STRING)), ['list', 'string']);
    assert.deepEqual(typeToJson(objectOf({ a: NUMBER, b: mapOf(BOOL) })), ['object', { a: 'number', b: ['map', 'bool'] }]);
    assert.deepEqual(typeToJson(tupleOf([STRING, BOOL])), ['tuple', ['string', 'bool']]);
  });

  test('the 3-element object form with optional attributes is accepted and kept', () => {
    const json = ['object', { a: 'string', b: 'number' }, ['b']];
    const type = typeFromJson(json);
    assert.deepEqual(type, { kind: 'object', attributes: { a: STRING, b: NUMBER }, optional: ['b'] });
    assert.deepEqual(typeToJson(type), json);
  });

  test('typeJsonBytes quotes primitive names, since a bare string panics Terraform', () => {
    assert.equal(Buffer.from(typeJsonBytes(STRING)).toString(), '"string"');
    assert.equal(Buffer.from(typeJsonBytes(setOf(objectOf({ a: BOOL })))).toString(), '["set",["object",{"a":"bool"}]]');
    assert.deepEqual(typeFromJsonBytes(typeJsonBytes(mapOf(NUMBER))), mapOf(NUMBER));
  });

  test('typeFromJson rejects malformed types with a message naming them', () => {
    assert.throws(() => typeFromJson('text'), /unknown cty type "text"/);
    assert.throws(() => typeFromJson(['list']), /invalid cty type/);
    assert.throws(() => typeFromJson(['bag', 'string']), /unknown cty type kind "bag"/);
    assert.throws(() => typeFromJson(['object', { a: 'string' }, ['b']]), /optional attribute "b" is not an attribute/);
    assert.throws(() => typeFromJsonBytes('string'), /not valid JSON/);
  });
});

describe('cty values', () => {
  test('UNKNOWN is a single sentinel recognised by isUnknown and instanceof', () => {
    assert.ok(isUnknown(UNKNOWN));
    assert.ok(UNKNOWN instanceof Unknown);
    assert.ok(!isUnknown(null));
    assert.ok(!isUnknown({}));
  });

  test('isWhollyKnown looks through lists, objects and dynamic values', () => {
    assert.ok(isWhollyKnown({ a: [1, 2], b: { c: null } }));
    assert.ok(!isWhollyKnown(UNKNOWN));
    assert.ok(!isWhollyKnown({ a: [1, UNKNOWN] }));
    assert.ok(!isWhollyKnown([{ b: { c: UNKNOWN } }]));
    assert.ok(!isWhollyKnown(new TypedValue(listOf(STRING), [UNKNOWN])));
  });

  test('ctyEqual compares sets regardless of order when given the type, lists in order', () => {
    assert.ok(ctyEqual(['a', 'b'], ['b', 'a'], setOf(STRING)));
    assert.ok(!ctyEqual(['a', 'b'], ['b', 'a'], listOf(STRING)));
    assert.ok(!ctyEqual(['a', 'b'], ['b', 'a']));
    assert.ok(!ctyEqual(['a', 'a'], ['a', 'b'], setOf(STRING)));
    const nested = setOf(objectOf({ tags: setOf(STRING) }));
    assert.ok(ctyEqual([{ tags: ['x', 'y'] }, { tags: [] }], [{ tags: [] }, { tags: ['y', 'x'] }], nested));
  });

  test('ctyEqual treats a missing object attribute as null when given the type', () => {
    const type = objectOf({ a: STRING, b: STRING });
    assert.ok(ctyEqual({ a: 'x' }, { a: 'x', b: null }, type));
    assert.ok(!ctyEqual({ a: 'x' }, { a: 'x', b: 'y' }, type));
    assert.ok(!ctyEqual({ a: 'x' }, { a: 'x', b: null }));
  });

  test('ctyEqual distinguishes null, unknown and known values, and equates unknown with itself', () => {
    assert.ok(ctyEqual(UNKNOWN, UNKNOWN, STRING));
    assert.ok(!ctyEqual(UNKNOWN, null, STRING));
    assert.ok(!ctyEqual(UNKNOWN, 'x', STRING));
    assert.ok(!ctyEqual(null, '', STRING));
    assert.ok(ctyEqual({ m: { k: 1 } }, { m: { k: 1 } }, objectOf({ m: mapOf(NUMBER) })));
    assert.ok(!ctyEqual({ m: { k: 1 } }, { m: { k: 1, j: 2 } }, objectOf({ m: mapOf(NUMBER) })));
  });
});

describe('cty msgpack', () => {
  test('round-trips a value of every type', () => {
    const cases: [CtyValue, CtyType][] = [
      ['hello', STRING],
      ['', STRING],
      ['ünïcødé ☃', STRING],
      [42, NUMBER],
      [true, BOOL],
      [false, BOOL],
      [['a', 'b'], listOf(STRING)],
      [[3, 1, 2], setOf(NUMBER)],
      [{ x: true, y: false }, mapOf(BOOL)],
      [{ a: 'x', b: 1 }, objectOf({ a: STRING, b: NUMBER })],
      [['x', 1, [true]], tupleOf([STRING, NUMBER, listOf(BOOL)])],
      [[], listOf(STRING)],
      [{}, mapOf(STRING)],
      [{ m: { k: ['v'] } }, objectOf({ m: mapOf(setOf(STRING)) })],
    ];
    for (const [value, type] of cases) {
      assert.deepEqual(roundTrip(value, type), value, JSON.stringify(typeToJson(type)));
    }
  });

  test('a top-level unknown string encodes as d4 00 00', () => {
    assert.equal(hex(encodeMsgpack(UNKNOWN, STRING)), 'd40000');
    assert.equal(decodeMsgpack(bytes('d4 00 00'), STRING), UNKNOWN);
  });

  test('an unknown in a list inside an object inside a set survives a round trip', () => {
    const type = setOf(objectOf({ name: STRING, addresses: listOf(STRING) }));
    const value = [
      { name: 'a', addresses: ['10.0.0.1', UNKNOWN] },
      { name: 'b', addresses: [] },
    ];
    const decoded = roundTrip(value, type);
    assert.deepEqual(decoded, value);
    assert.equal((decoded as { addresses: CtyValue[] }[])[0]!.addresses[1], UNKNOWN);
  });

  test('whole collections and objects can be unknown', () => {
    const type = objectOf({ list: listOf(STRING), set: setOf(NUMBER), map: mapOf(STRING), inner: objectOf({ a: STRING }), tuple: tupleOf([BOOL]) });
    const value = { list: UNKNOWN, set: UNKNOWN, map: UNKNOWN, inner: UNKNOWN, tuple: UNKNOWN };
    assert.deepEqual(roundTrip(value, type), value);
    assert.equal(roundTrip(UNKNOWN, type), UNKNOWN);
  });

  test('null survives at every level', () => {
    const type = objectOf({
      s: STRING,
      list: listOf(STRING),
      set: setOf(STRING),
      map: mapOf(STRING),
      inner: objectOf({ a: STRING }),
      tuple: tupleOf([STRING, NUMBER]),
      dyn: DYNAMIC,
    });
    const allNull = { s: null, list: null, set: null, map: null, inner: null, tuple: null, dyn: null };
    assert.deepEqual(roundTrip(allNull, type), allNull);
    const nullsInside = { s: null, list: [null], set: [null], map: { k: null }, inner: { a: null }, tuple: [null, null], dyn: null };
    assert.deepEqual(roundTrip(nullsInside, type), nullsInside);
  });

  test('a nil top-level object decodes to null, as prior_state does on create', () => {
    assert.equal(decodeMsgpack(bytes('c0'), server), null);
    assert.equal(hex(encodeMsgpack(null, server)), 'c0');
  });

  test('nested blocks travel as a list of objects', () => {
    const value = {
      id: 'srv-1',
      name: 'alpha',
      cpus: 4,
      enabled: true,
      labels: { env: 'prod', team: 'infra' },
      disk: [
        { size: 20, tags: ['boot'] },
        { size: 500, tags: ['data', 'fast'] },
      ],
    };
    assert.deepEqual(roundTrip(value, server), value);
  });

  test('sets keep their elements and maps keep their keys, including awkward ones', () => {
    const type = objectOf({ set: setOf(STRING), map: mapOf(NUMBER) });
    const value = { set: ['z', 'a', 'm'], map: { '': 0, 'a.b': 1, constructor: 2, '0': 3 } };
    const decoded = roundTrip(value, type);
    assert.deepEqual(decoded, value);
    assert.ok(ctyEqual(decoded, { set: ['a', 'm', 'z'], map: value.map }, type));
  });

  test('integers encode as msgpack ints and fractions as float64', () => {
    assert.equal(hex(encodeMsgpack(0, NUMBER)), '00');
    assert.equal(hex(encodeMsgpack(-1, NUMBER)), 'ff');
    assert.equal(hex(encodeMsgpack(-200, NUMBER)), 'd1ff38');
    assert.equal(hex(encodeMsgpack(2 ** 53 - 1, NUMBER)), 'cf001fffffffffffff');
    assert.equal(hex(encodeMsgpack(1.5, NUMBER)), 'cb3ff8000000000000');
  });

  test('numbers round-trip: 0, negatives, 2^53-1, fractions', () => {
    for (const n of [0, -7, -1e9, 2 ** 53 - 1, -(2 ** 53 - 1), 1.5, -0.25, 1e300]) {
      assert.equal(roundTrip(n, NUMBER), n);
    }
  });

  test('numbers sent as float64 or as decimal strings decode to JS numbers', () => {
    assert.equal(decodeMsgpack(bytes('cb 40 00 00 00 00 00 00 00'), NUMBER), 2);
    // a5 + "12345": the form cty uses for numbers that fit neither int64 nor float64 exactly.
    assert.equal(decodeMsgpack(bytes('a5 31 32 33 34 35'), NUMBER), 12345);
    const big = Buffer.concat([Buffer.from([0xb4]), Buffer.from('12345678901234567890')]);
    assert.equal(decodeMsgpack(new Uint8Array(big), NUMBER), 12345678901234567890);
    assert.throws(() => decodeMsgpack(bytes('a3 61 62 63'), NUMBER), /expected a number, got string "abc"/);
  });

  test('an object with a missing attribute is encoded with nil for it and every key listed', () => {
    const type = objectOf({ a: STRING, b: NUMBER, c: BOOL });
    const encoded = encodeMsgpack({ a: 'x' }, type);
    assert.equal(encoded[0], 0x83, 'a fixmap of 3 entries');
    assert.deepEqual(rawDecode(encoded), { a: 'x', b: null, c: null });
  });

  test('decoding fills attributes missing from the wire with null', () => {
    const type = objectOf({ a: STRING, b: NUMBER });
    assert.deepEqual(decodeMsgpack(bytes('81 a1 61 a1 78'), type), { a: 'x', b: null });
  });

  test('decodes bytes as Terraform writes them: sorted keys, unknown marker', () => {
    // {"id": unknown, "name": "x"}
    const type = objectOf({ name: STRING, id: STRING });
    assert.deepEqual(decodeMsgpack(bytes('82 a2 69 64 d4 00 00 a4 6e 61 6d 65 a1 78'), type), { id: UNKNOWN, name: 'x' });
  });

  test('extension -1 (which the library would make a Date) decodes to UNKNOWN', () => {
    // fixext4, type -1: a 32-bit msgpack timestamp.
    assert.equal(decodeMsgpack(bytes('d6 ff 00 00 00 01'), STRING), UNKNOWN);
    assert.deepEqual(decodeMsgpack(bytes('91 d6 ff 00 00 00 01'), listOf(NUMBER)), [UNKNOWN]);
  });

  test('extension 12 (a refined unknown with a map payload) decodes to UNKNOWN', () => {
    // ext8, 3 bytes, type 12, payload {1: true}: "definitely not null".
    assert.equal(decodeMsgpack(bytes('c7 03 0c 81 01 c3'), STRING), UNKNOWN);
    assert.deepEqual(decodeMsgpack(bytes('81 a1 61 c7 03 0c 81 01 c3'), objectOf({ a: listOf(STRING) })), { a: UNKNOWN });
  });

  test('a dynamic value travels as [type JSON bytes, value] and decodes to a TypedValue', () => {
    const type = objectOf({ extra: DYNAMIC });
    const value = { extra: new TypedValue(listOf(STRING), ['a']) };
    const encoded = encodeMsgpack(value, type);
    const raw = rawDecode(encoded) as { extra: [Uint8Array, unknown] };
    assert.equal(Buffer.from(raw.extra[0]).toString(), '["list","string"]');
    assert.deepEqual(raw.extra[1], ['a']);
    assert.deepEqual(decodeMsgpack(encoded, type), value);
  });

  test('a plain value under dynamic is sent with the type it implies', () => {
    const decoded = roundTrip({ n: 1, s: ['x'] }, DYNAMIC);
    assert.deepEqual(decoded, new TypedValue(objectOf({ n: NUMBER, s: tupleOf([STRING]) }), { n: 1, s: ['x'] }));
  });

  test('null and unknown under dynamic are bare nil and the unknown marker', () => {
    assert.equal(hex(encodeMsgpack(null, DYNAMIC)), 'c0');
    assert.equal(hex(encodeMsgpack(UNKNOWN, DYNAMIC)), 'd40000');
    assert.equal(decodeMsgpack(bytes('d4 00 00'), DYNAMIC), UNKNOWN);
  });

  test('a value that does not fit its type is refused with its path', () => {
    const error = captureError(() => encodeMsgpack({ disk: [{ size: 'big' }] }, server));
    assert.ok(error instanceof CtyPathError);
    assert.deepEqual(error.path, [{ attribute: 'disk' }, { index: 0 }, { attribute: 'size' }]);
    assert.equal(error.message, 'disk[0].size: expected a number, got string "big"');
    assert.throws(() => decodeMsgpack(bytes('81 a1 61 2a'), objectOf({ a: STRING })), /^CtyPathError: a: expected a string, got number 42$/);
  });

  test('an attribute the type does not have is refused on encode and decode', () => {
    const type = objectOf({ a: STRING });
    assert.throws(() => encodeMsgpack({ a: 'x', typo: 'y' }, type), /unexpected attribute "typo"; the type has attributes a/);
    assert.throws(() => decodeMsgpack(bytes('81 a1 62 a1 78'), type), /unexpected attribute "b"/);
  });

  test('a tuple of the wrong length is refused', () => {
    assert.throws(() => encodeMsgpack(['x'], tupleOf([STRING, STRING])), /expected a tuple of 2 elements, got 1/);
  });
});

describe('cty json', () => {
  test('attributes missing from stored state become null', () => {
    const { value, droppedPaths } = decodeJson('{"id":"srv-1","cpus":2}', server);
    assert.deepEqual(value, { id: 'srv-1', name: null, cpus: 2, enabled: null, labels: null, disk: null });
    assert.deepEqual(droppedPaths, []);
  });

  test('attributes the type no longer has are dropped and reported by path', () => {
    const json = JSON.stringify({ id: 'a', legacy: 1, disk: [{ size: 1, tags: [] }, { size: 2, tags: [], old: true }] });
    const { value, droppedPaths } = decodeJson(json, server);
    assert.deepEqual(droppedPaths, ['legacy', 'disk[1].old']);
    assert.deepEqual((value as { disk: CtyValue }).disk, [
      { size: 1, tags: [] },
      { size: 2, tags: [] },
    ]);
  });

  test('numbers and bools stored as strings are converted, as cty does', () => {
    const type = objectOf({ n: NUMBER, big: NUMBER, b: BOOL, s: STRING, t: STRING });
    const { value } = decodeJson('{"n":"42","big":"12345678901234567890","b":"true","s":7,"t":false}', type);
    assert.deepEqual(value, { n: 42, big: 12345678901234567890, b: true, s: '7', t: 'false' });
  });

  test('stored state is accepted as bytes', () => {
    const { value } = decodeJson(new TextEncoder().encode('{"a":"x"}'), objectOf({ a: STRING }));
    assert.deepEqual(value, { a: 'x' });
  });

  test('a null state decodes to null', () => {
    assert.deepEqual(decodeJson('null', server), { value: null, droppedPaths: [] });
  });

  test('encodeJson lists every attribute and decodeJson reads it back', () => {
    const value = { id: 'x', name: null, cpus: 1.5, enabled: false, labels: { a: 'b' }, disk: [{ size: 3, tags: ['t'] }] };
    const text = encodeJson({ ...value, name: undefined } as never, server);
    assert.deepEqual(JSON.parse(text), value);
    assert.deepEqual(decodeJson(text, server).value, value);
  });

  test('dynamic values are stored as {"value", "type"}', () => {
    const type = objectOf({ d: DYNAMIC });
    const value = { d: new TypedValue(mapOf(NUMBER), { k: 1 }) };
    const text = encodeJson(value, type);
    assert.equal(text, '{"d":{"value":{"k":1},"type":["map","number"]}}');
    assert.deepEqual(decodeJson(text, type).value, value);
  });

  test('encodeJson refuses an unknown, naming where it is', () => {
    assert.throws(() => encodeJson({ disk: [{ size: UNKNOWN }] }, server), /^CtyPathError: disk\[0\]\.size: an unknown value cannot be written as JSON/);
  });

  test('decodeJson refuses invalid JSON and values of the wrong shape', () => {
    assert.throws(() => decodeJson('{', server), /stored state is not valid JSON/);
    assert.throws(() => decodeJson('{"labels":["a"]}', server), /labels: expected a map of string, got an array/);
  });
});

function captureError(run: () => unknown): unknown {
  try {
    run();
  } catch (error) {
    return error;
  }
  assert.fail('expected an error');
}
