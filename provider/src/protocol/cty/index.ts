// The cty type and value codec: what Terraform's plugin protocol carries in schemas,
// `DynamicValue` (msgpack) and stored state (JSON).

export { BOOL, DYNAMIC, NUMBER, STRING, describeType, listOf, mapOf, objectOf, setOf, tupleOf, typeEqual, typeFromJson, typeFromJsonBytes, typeJsonBytes, typeToJson } from './types.ts';
export type { CollectionKind, CollectionType, CtyType, CtyTypeJson, ObjectType, PrimitiveKind, TupleType } from './types.ts';
export { CtyPathError, TypedValue, UNKNOWN, Unknown, ctyEqual, formatPath, impliedType, isCtyObject, isUnknown, isWhollyKnown } from './values.ts';
export type { CtyObject, CtyValue, PathStep } from './values.ts';
export { decodeMsgpack, encodeMsgpack } from './msgpack.ts';
export { decodeJson, encodeJson } from './json.ts';
export type { JsonDecodeResult } from './json.ts';
