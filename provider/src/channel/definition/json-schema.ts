// The JSON Schema of the parsed definition (ApplianceDefinition), for publishers who generate
// definitions from JSON: a walk over the element table, where each element's field says which
// property it becomes, its value rule what the property holds, and its occurrence whether the
// property is a value, a value or null, or an array.

import {
  APPLIANCE,
  APPLIANCE_START_TAG,
  type AttributeGroup,
  type AttributeRule,
  type ElementRule,
  type JsonSchema,
  type UniqueRule,
  VALUE_RULES,
  type ValueRule,
} from './elements.ts';

const NULL: JsonSchema = { type: 'null' };

function valueSchema(rule: ValueRule<unknown>, description?: string): JsonSchema {
  const schema = rule.jsonDef !== null ? { $ref: `#/$defs/${rule.jsonDef}` } : structuredClone(rule.json);
  return description === undefined ? schema : { ...schema, description };
}

/** An object whose properties are given by dotted fields ("kernel.url"), nested objects described by `objects`. */
function objectOf(entries: readonly { field: string; schema: JsonSchema }[], objects: Readonly<Record<string, string>> = {}): JsonSchema {
  const order: string[] = [];
  const direct = new Map<string, JsonSchema>();
  const nested = new Map<string, { field: string; schema: JsonSchema }[]>();
  for (const { field, schema } of entries) {
    const dot = field.indexOf('.');
    const key = dot === -1 ? field : field.slice(0, dot);
    if (!direct.has(key) && !nested.has(key)) order.push(key);
    if (dot === -1) direct.set(key, schema);
    else nested.set(key, [...(nested.get(key) ?? []), { field: field.slice(dot + 1), schema }]);
  }
  const properties: Record<string, JsonSchema> = {};
  for (const key of order) {
    const inner = nested.get(key);
    const description = objects[key];
    properties[key] = direct.get(key) ?? { ...(description !== undefined ? { description } : {}), ...objectOf(inner!) };
  }
  return { type: 'object', additionalProperties: false, required: order, properties };
}

function attributeSchema(element: string, a: AttributeRule<unknown>): JsonSchema {
  const description = `<${element} ${a.name}>: ${a.description}`;
  return a.absent === null ? { anyOf: [valueSchema(a.value), NULL], description } : valueSchema(a.value, description);
}

// A disk has file or size: in the parsed object, exactly one of the two fields is non-null.
function exactlyOne(group: AttributeGroup): JsonSchema {
  const fields = group.attributes.map((a) => a.field);
  const typeOf = (a: AttributeRule<unknown>): JsonSchema => ({ type: a.value.json['type'] });
  return {
    description: `exactly one of ${fields.join(' and ')} is non-null`,
    oneOf: group.attributes.map((chosen) => ({
      properties: Object.fromEntries(group.attributes.map((a) => [a.field, a === chosen ? typeOf(a) : NULL])),
    })),
  };
}

function elementSchema(rule: ElementRule): JsonSchema {
  switch (rule.content) {
    case 'text':
      return valueSchema(rule.value);
    case 'attributes': {
      const entries = rule.groups.flatMap((g) => g.attributes.map((a) => ({ field: a.field, schema: attributeSchema(rule.name, a) })));
      const choices = rule.groups.filter((g) => g.exactlyOne).map(exactlyOne);
      return { ...objectOf(entries, rule.objects), ...(choices.length === 1 ? choices[0] : choices.length > 1 ? { allOf: choices } : {}) };
    }
    case 'elements':
      return objectOf(
        rule.children.map((c) => ({ field: c.field, schema: propertySchema(c) })),
        rule.objects,
      );
  }
}

// JSON can only say "no two alike" of whole items; a key on part of an item (a dependency's
// name, a disk's name) is the checker's to enforce.
const wholeValueUnique = (u: UniqueRule<unknown> | undefined): boolean => u !== undefined && u.attribute === undefined && u.key === undefined;

function propertySchema(rule: ElementRule): JsonSchema {
  const description = `<${rule.name}>: ${rule.description}`;
  const schema = elementSchema(rule);
  switch (rule.occurs) {
    case 'one':
      return { ...schema, description };
    case 'optional':
      return { anyOf: [schema, NULL], description };
    case 'many': {
      const unique = rule.content === 'elements' ? undefined : (rule.unique as UniqueRule<unknown> | undefined);
      return {
        type: 'array',
        ...(wholeValueUnique(unique) ? { uniqueItems: true } : {}),
        ...(rule.max !== undefined ? { maxItems: rule.max } : {}),
        items: schema,
        description: `${description}; zero or more${rule.max !== undefined ? `, at most ${rule.max}` : ''}`,
      };
    }
  }
}

/** A fresh object each call, so callers may change theirs. */
export function definitionJsonSchema(): JsonSchema {
  const root = objectOf(
    [
      { field: APPLIANCE.formatVersion.field, schema: { const: APPLIANCE.formatVersion.value, description: APPLIANCE_START_TAG } },
      ...APPLIANCE.children.map((c) => ({ field: c.field, schema: propertySchema(c) })),
    ],
    APPLIANCE.objects,
  );
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    title: 'storm appliance definition',
    description:
      "The parsed form of a storm appliance definition (the XML format of the STORM paper, Figure 2, plus storm's name, sha256, base and boot). Produced by parseApplianceDefinition; serializeApplianceDefinition writes it back as XML.",
    ...root,
    $defs: Object.fromEntries(VALUE_RULES.filter((r) => r.jsonDef !== null).map((r) => [r.jsonDef, structuredClone(r.json)])),
  };
}
