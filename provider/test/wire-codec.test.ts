// The run-time protobuf codec against protobufjs as an independent oracle (protobufjs stays a
// build-time tool: compile-proto.ts parses the .proto files with it).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { log } from '../src/protocol/log.ts';
import { storm } from '../src/provider.ts';
import { PROTOCOL, unaryMethodCodecs, type Message } from '../src/server/proto.ts';
import { createProviderHandlers } from '../src/server/provider-service.ts';
import { ProtoCodec, ProtocolError } from '../src/server/wire/codec.ts';
import type { ProtocolDescriptor } from '../src/server/wire/descriptor.ts';

const protoDir = fileURLToPath(new URL('../proto/', import.meta.url));
const oracle = new protobuf.Root();
oracle.loadSync(['tfplugin6.proto', 'go-plugin.proto', 'health.proto'].map((f) => protoDir + f), { keepCase: true });
const TO_OBJECT: protobuf.IConversionOptions = { longs: Number, enums: Number, defaults: true, oneofs: true };
const codec = new ProtoCodec(PROTOCOL);

function viaOracle(type: string, bytes: Uint8Array): Message {
  const t = oracle.lookupType(type);
  return t.toObject(t.decode(bytes), TO_OBJECT);
}

function oracleEncode(type: string, value: Message): Uint8Array {
  const t = oracle.lookupType(type);
  return t.encode(t.fromObject(value)).finish();
}

/** protobufjs and we may differ in Buffer vs Uint8Array; compare the bytes as plain arrays. */
function plain(value: unknown): unknown {
  if (value instanceof Uint8Array) return [...value];
  if (Array.isArray(value)) return value.map(plain);
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  return value;
}

describe('protobuf codec', () => {
  it("encodes storm's whole GetProviderSchema response as protobufjs reads it, and reads it back the same", async () => {
    const handlers = createProviderHandlers(storm, log, new AbortController());
    const response = await handlers.GetProviderSchema!({});
    const bytes = codec.encode('tfplugin6.GetProviderSchema.Response', response);
    const theirs = viaOracle('tfplugin6.GetProviderSchema.Response', bytes);
    const ours = codec.decode('tfplugin6.GetProviderSchema.Response', bytes);
    assert.deepEqual(plain(ours), plain(theirs));
    assert.ok(Object.keys(ours.resource_schemas as object).includes('storm_appliance_server'));
    // And what protobufjs writes, we read identically.
    assert.deepEqual(plain(codec.decode('tfplugin6.GetProviderSchema.Response', oracleEncode('tfplugin6.GetProviderSchema.Response', response))), plain(theirs));
  });

  it('fills defaults like the handlers expect: null messages, empty bytes, [] and {}, 0 and false', () => {
    const req = codec.decode('tfplugin6.ApplyResourceChange.Request', new Uint8Array(0));
    assert.deepEqual(plain(req), plain(viaOracle('tfplugin6.ApplyResourceChange.Request', new Uint8Array(0))));
    assert.equal(req.prior_state, null);
    assert.equal((req.planned_private as Uint8Array).length, 0);
    assert.equal(req.type_name, '');
  });

  it('keeps oneofs: only the member that is set, and the oneof naming it; negative int64 keys', () => {
    const path = { steps: [{ attribute_name: 'disk' }, { element_key_int: -3 }, { element_key_int: 2 ** 40 }, { element_key_string: '' }] };
    const bytes = codec.encode('tfplugin6.AttributePath', path);
    const ours = codec.decode('tfplugin6.AttributePath', bytes);
    assert.deepEqual(plain(ours), plain(viaOracle('tfplugin6.AttributePath', bytes)));
    assert.deepEqual(ours.steps, [
      { attribute_name: 'disk', selector: 'attribute_name' },
      { element_key_int: -3, selector: 'element_key_int' },
      { element_key_int: 2 ** 40, selector: 'element_key_int' },
      { element_key_string: '', selector: 'element_key_string' },
    ]);
  });

  it('accepts enum names as well as numbers, and refuses names that are not in the enum', () => {
    const byName = codec.encode('tfplugin6.Diagnostic', { severity: 'ERROR', summary: 's' });
    assert.equal(codec.decode('tfplugin6.Diagnostic', byName).severity, 1);
    assert.throws(() => codec.encode('tfplugin6.Diagnostic', { severity: 'LOUD' }), ProtocolError);
  });

  it('carries a 10 MiB state without loss, and skips fields it does not know', () => {
    const msgpack = Buffer.alloc(10 * 1024 * 1024, 0xab);
    const bytes = codec.encode('tfplugin6.ReadResource.Response', { new_state: { msgpack }, private: Buffer.from('p') });
    const unknownField = Buffer.from([0xf8, 0x07, 0x05, 0xfa, 0x07, 0x01, 0x00]); // field 127 varint 5, field 127 bytes [0]
    const ours = codec.decode('tfplugin6.ReadResource.Response', Buffer.concat([unknownField, bytes]));
    assert.ok(((ours.new_state as Message).msgpack as Buffer).equals(msgpack));
    assert.deepEqual([...(ours.private as Buffer)], [0x70]);
  });

  it('reads packed and unpacked repeated numbers, zigzag and fixed types, and maps with non-string keys', () => {
    const descriptor: ProtocolDescriptor = {
      messages: {
        T: {
          fields: [
            { name: 'n', number: 1, type: 'int32', repeated: true },
            { name: 's', number: 2, type: 'sint64' },
            { name: 'f', number: 3, type: 'fixed64' },
            { name: 'd', number: 4, type: 'double' },
            { name: 'm', number: 5, type: 'string', mapKey: 'int64' },
            { name: 'x', number: 6, type: 'sfixed32' },
            { name: 'b', number: 7, type: 'bool', repeated: true },
          ],
        },
      },
      enums: {},
      services: {},
    };
    const c = new ProtoCodec(descriptor);
    const value = { n: [1, -1, 300], s: -12345678901, f: 2 ** 50, d: 1.5, m: { '-7': 'minus seven', '9': 'nine' }, x: -2, b: [true, false] };
    assert.deepEqual(c.decode('T', c.encode('T', value)), value);
    // Unpacked encoding of n (three separate varint fields) reads the same.
    assert.deepEqual(c.decode('T', Buffer.from([0x08, 0x01, 0x08, 0x02, 0x0a, 0x01, 0x03])).n, [1, 2, 3]);
    assert.throws(() => c.decode('T', Buffer.from([0x0a, 0x05, 0x01])), ProtocolError);
  });

  it('gives the provider service one codec pair per unary method', () => {
    const methods = unaryMethodCodecs('tfplugin6.Provider');
    assert.equal(methods.get('GetProviderSchema')!.path, '/tfplugin6.Provider/GetProviderSchema');
    assert.equal(unaryMethodCodecs('plugin.GRPCStdio').size, 0, 'streams are not unary');
  });
});
