// Definition → XML, by the element table: one canonical spelling (the table's element and
// attribute order, two-space indent, single-quoted attributes), so a definition written by
// storm diffs cleanly and reads back to the same object.

import type { ApplianceDefinition } from '../types.ts';
import { APPLIANCE, type AttributesElement, type ElementRule } from './elements.ts';

function escText(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/\r/g, '&#13;');
}

// Tabs and newlines are escaped because XML attribute-value normalization would turn them
// into spaces in any conforming parser.
function escAttr(s: string): string {
  return escText(s).replace(/'/g, '&apos;').replace(/\n/g, '&#10;').replace(/\t/g, '&#9;');
}

/** A dotted field ("image.url") of a parsed definition or one of its parts. */
function getField(from: unknown, field: string): unknown {
  let at = from;
  for (const p of field.split('.')) at = at !== null && typeof at === 'object' ? (at as Record<string, unknown>)[p] : undefined;
  return at;
}

function attributes(rule: AttributesElement, value: unknown): string {
  let out = '';
  for (const a of rule.groups.flatMap((g) => g.attributes)) {
    const v = getField(value, a.field);
    // Left out when absent, and when it equals what absence means (an empty cmdline).
    if (v === null || v === undefined || v === a.absent) continue;
    out += ` ${a.name}='${escAttr(a.value.write(v))}'`;
  }
  return out;
}

function write(out: string[], indent: string, rules: readonly ElementRule[], parent: unknown): void {
  for (const rule of rules) {
    const field = getField(parent, rule.field);
    const values = rule.occurs === 'many' ? (Array.isArray(field) ? field : []) : field === null || field === undefined ? [] : [field];
    for (const v of values) {
      switch (rule.content) {
        case 'text':
          out.push(`${indent}<${rule.name}>${escText(rule.value.write(v))}</${rule.name}>`);
          break;
        case 'attributes':
          out.push(`${indent}<${rule.name}${attributes(rule, v)}/>`);
          break;
        case 'elements':
          out.push(`${indent}<${rule.name}>`);
          write(out, `${indent}  `, rule.children, v);
          out.push(`${indent}</${rule.name}>`);
          break;
      }
    }
  }
}

export function serializeApplianceDefinition(def: ApplianceDefinition): string {
  const { attribute, field } = APPLIANCE.formatVersion;
  const out = ["<?xml version='1.0' encoding='utf-8'?>", `<${APPLIANCE.name} ${attribute}='${escAttr(String(getField(def, field)))}'>`];
  write(out, '  ', APPLIANCE.children, def);
  out.push(`</${APPLIANCE.name}>`, '');
  return out.join('\n');
}
