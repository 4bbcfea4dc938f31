// Registry-format documentation (the layout tfplugindocs produces) rendered from the schema
// model. Pure: the caller passes example files in and writes the pages out.
import type { AttributeSpec, BlockSpec, NestedBlockSpec, ResourceSchema, ValueType } from './model.ts';
import { attributeDocText } from './docs-text.ts';

export interface ResourceExamples {
  /** HCL of examples/resources/<type>/resource.tf */
  usage?: string;
  /** examples/resources/<type>/import.sh */
  importCommand?: string;
}

function typeLabel(t: ValueType): string {
  if (typeof t === 'string') return t === 'bool' ? 'Boolean' : t[0]!.toUpperCase() + t.slice(1);
  if ('list' in t) return `List of ${typeLabel(t.list)}`;
  if ('set' in t) return `Set of ${typeLabel(t.set)}`;
  if ('object' in t) return `Object`;
  return `Map of ${typeLabel(t.map)}`;
}

function attributeLine(name: string, spec: AttributeSpec): string {
  const label = typeLabel(spec.type) + (spec.sensitive ? ', Sensitive' : '');
  return `- \`${name}\` (${label}) ${attributeDocText(spec)}`;
}

function anchor(path: string[]): string {
  return `nestedblock--${path.join('--')}`;
}

function blockLine(name: string, nested: NestedBlockSpec, path: string[]): string {
  const label = nested.nesting === 'single' ? (nested.minItems ? 'Block, Required' : 'Block, Optional') : `Block List${nested.minItems ? `, Min: ${nested.minItems}` : ''}${nested.maxItems ? `, Max: ${nested.maxItems}` : ''}`;
  return `- \`${name}\` (${label}) ${nested.description} (see [below for nested schema](#${anchor([...path, name])}))`;
}

function sections(block: BlockSpec, path: string[], heading: (title: string) => string): string[] {
  const groups: Record<'Required' | 'Optional' | 'Read-Only', string[]> = { Required: [], Optional: [], 'Read-Only': [] };
  const sorted = <T>(r: Readonly<Record<string, T>>) => Object.entries(r).sort(([a], [b]) => a.localeCompare(b));
  for (const [name, spec] of sorted(block.attributes)) {
    const group = spec.mode === 'required' ? 'Required' : spec.mode === 'optional' ? 'Optional' : 'Read-Only';
    groups[group].push(attributeLine(name, spec));
  }
  for (const [name, nested] of sorted(block.blocks ?? {})) {
    groups[nested.minItems ? 'Required' : 'Optional'].push(blockLine(name, nested, path));
  }
  const out: string[] = [];
  for (const [title, lines] of Object.entries(groups)) {
    if (lines.length) out.push(heading(title), '', ...lines, '');
  }
  for (const [name, nested] of sorted(block.blocks ?? {})) {
    const here = [...path, name];
    out.push(`<a id="${anchor(here)}"></a>`, `### Nested Schema for \`${here.join('.')}\``, '');
    out.push(...sections(nested.block, here, (t) => `${t}:`));
  }
  return out;
}

export function resourcePage(schema: ResourceSchema, providerName: string, examples: ResourceExamples, kind: 'Resource' | 'Data Source' = 'Resource'): string {
  const lines = [
    '---',
    `page_title: "${schema.typeName} ${kind} - ${providerName}"`,
    'subcategory: ""',
    'description: |-',
    `  ${schema.description}`,
    '---',
    '',
    `# ${schema.typeName} (${kind})`,
    '',
    schema.description,
    '',
  ];
  if (examples.usage) lines.push('## Example Usage', '', '```terraform', examples.usage.trimEnd(), '```', '');
  lines.push('<!-- generated from the schema by `npm run docs`; do not edit -->', '## Schema', '');
  lines.push(...sections(schema.block, [], (t) => `### ${t}`));
  if (examples.importCommand) {
    lines.push('## Import', '', 'Import is supported using the following syntax:', '', '```shell', examples.importCommand.trimEnd(), '```', '');
  }
  return lines.join('\n').replace(/\n{3,}/g, '\n\n').trimEnd() + '\n';
}

export function providerPage(providerName: string, description: string, usage: string | undefined, config: BlockSpec): string {
  const lines = ['---', `page_title: "storm Provider"`, 'description: |-', `  ${description}`, '---', '', '# storm Provider', '', description, ''];
  if (usage) lines.push('## Example Usage', '', '```terraform', usage.trimEnd(), '```', '');
  lines.push('<!-- generated from the schema by `npm run docs`; do not edit -->', '## Schema', '');
  const body = sections(config, [], (t) => `### ${t}`);
  lines.push(...(body.length ? body : ['The provider block takes no arguments: every server names its own libvirt URI and BMC.', '']));
  return lines.join('\n').replace(/\n{3,}/g, '\n\n').trimEnd() + '\n';
}
