// Converts the schema model into tfplugin6 `Schema` messages (plain objects for the protobuf codec).
import { typeJsonBytes } from '../protocol/cty/index.ts';
import type { AttributeSpec, BlockSpec, ResourceSchema } from './model.ts';
import { isComputed } from './model.ts';
import { valueCtyType } from './cty-type.ts';
import { attributeDocText } from './docs-text.ts';

const MARKDOWN = 1;
const NESTING = { single: 1, list: 2 } as const;

export interface ProtoSchema {
  version: number;
  block: ProtoBlock;
}

interface ProtoBlock {
  version: number;
  description: string;
  description_kind: number;
  attributes: ProtoAttribute[];
  block_types: ProtoNestedBlock[];
}

interface ProtoAttribute {
  name: string;
  type: Uint8Array;
  description: string;
  description_kind: number;
  required: boolean;
  optional: boolean;
  computed: boolean;
  sensitive: boolean;
}

interface ProtoNestedBlock {
  type_name: string;
  nesting: number;
  min_items: number;
  max_items: number;
  block: ProtoBlock;
}

function protoAttribute(name: string, spec: AttributeSpec): ProtoAttribute {
  return {
    name,
    type: typeJsonBytes(valueCtyType(spec.type)),
    description: attributeDocText(spec),
    description_kind: MARKDOWN,
    required: spec.mode === 'required',
    optional: spec.mode === 'optional',
    computed: isComputed(spec),
    sensitive: spec.sensitive === true,
  };
}

function protoBlock(block: BlockSpec, version: number, description: string): ProtoBlock {
  return {
    version,
    description,
    description_kind: MARKDOWN,
    attributes: Object.entries(block.attributes).map(([n, s]) => protoAttribute(n, s)),
    block_types: Object.entries(block.blocks ?? {}).map(([typeName, nested]) => ({
      type_name: typeName,
      nesting: NESTING[nested.nesting],
      // Terraform requires min = max for single nesting: 0/0 is "optional, at most one", 1/1 "required".
      min_items: nested.nesting === 'single' ? (nested.minItems ? 1 : 0) : (nested.minItems ?? 0),
      max_items: nested.nesting === 'single' ? (nested.minItems ? 1 : 0) : (nested.maxItems ?? 0),
      block: protoBlock(nested.block, 0, nested.description),
    })),
  };
}

export function protoSchema(schema: ResourceSchema): ProtoSchema {
  return { version: schema.version, block: protoBlock(schema.block, schema.version, schema.description) };
}

export function protoBlockSchema(block: BlockSpec, description: string): ProtoSchema {
  return { version: 0, block: protoBlock(block, 0, description) };
}
