// The provider schema in the JSON form of `terraform providers schema -json`: the input of
// the registry docs generator and of the cdktf binding generator.
import { typeToJson } from '../protocol/cty/index.ts';
import type { ProviderDefinition } from '../contract.ts';
import type { BlockSpec, ResourceSchema } from './model.ts';
import { isComputed } from './model.ts';
import { valueCtyType } from './cty-type.ts';
import { attributeDocText } from './docs-text.ts';

export const PROVIDER_ADDRESS = 'registry.terraform.io/storm/storm';

type Json = string | number | boolean | null | Json[] | { [k: string]: Json };

function blockJson(block: BlockSpec, description?: string): { [k: string]: Json } {
  const attributes: { [k: string]: Json } = {};
  for (const [name, spec] of Object.entries(block.attributes)) {
    const a: { [k: string]: Json } = { type: typeToJson(valueCtyType(spec.type)) as Json, description: attributeDocText(spec), description_kind: 'markdown' };
    if (spec.mode === 'required') a.required = true;
    if (spec.mode === 'optional') a.optional = true;
    if (isComputed(spec)) a.computed = true;
    if (spec.sensitive) a.sensitive = true;
    attributes[name] = a;
  }
  const blockTypes: { [k: string]: Json } = {};
  for (const [name, nested] of Object.entries(block.blocks ?? {})) {
    blockTypes[name] = {
      nesting_mode: nested.nesting,
      block: blockJson(nested.block, nested.description),
      ...(nested.minItems ? { min_items: nested.minItems } : {}),
      ...(nested.maxItems || (nested.nesting === 'single' && nested.minItems) ? { max_items: nested.nesting === 'single' ? 1 : nested.maxItems } : {}),
    };
  }
  return {
    attributes,
    ...(Object.keys(blockTypes).length ? { block_types: blockTypes } : {}),
    ...(description ? { description, description_kind: 'markdown' } : {}),
  };
}

const schemaJson = (s: ResourceSchema): Json => ({ version: s.version, block: blockJson(s.block, s.description) });

export function providerSchemaJson(provider: ProviderDefinition): Json {
  return {
    format_version: '1.0',
    provider_schemas: {
      [PROVIDER_ADDRESS]: {
        provider: { version: 0, block: blockJson(provider.configBlock, provider.description) },
        resource_schemas: Object.fromEntries(provider.resources.map((r) => [r.schema.typeName, schemaJson(r.schema)])),
        data_source_schemas: Object.fromEntries(provider.dataSources.map((d) => [d.schema.typeName, schemaJson(d.schema)])),
      },
    },
  };
}
