import type { AttributeSpec } from './model.ts';

/** The attribute description Terraform shows and the docs print: the text plus its rules. */
export function attributeDocText(spec: AttributeSpec): string {
  const notes: string[] = [];
  if (spec.default !== undefined) notes.push(`Defaults to \`${JSON.stringify(spec.default)}\`.`);
  if (spec.forceNew) notes.push('Changing it replaces the resource.');
  return [spec.description, ...notes].join(' ');
}
