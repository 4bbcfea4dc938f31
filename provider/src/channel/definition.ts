// The one parser/validator for appliance definitions (format in ./types.ts). The provider, the
// `storm` CLI and the catalog site all call this, so a publisher sees the same verdict and the
// same wording wherever a definition is checked. Pure on purpose (string in, result out): the
// site bundles it, and a parser of untrusted documents has no business touching files or network.
//
// This file is the public entry; the work is in ./definition/, one job per module:
//   xml-reader.ts   positioned XML reading: size cap, DOCTYPE/entity refusal, lines for everything
//   elements.ts     the one table of element rules (occurrence, value rule, field, description, wording)
//   checker.ts      the read tree against the table → ApplianceDefinition or problems
//   serializer.ts   ApplianceDefinition → XML, in the table's order
//   json-schema.ts  the JSON Schema of ApplianceDefinition, from the table
//   xsd.ts          the XSD, from the table (committed as ./appliance-definition.xsd)
//   wording.ts      quoting values and guessing what was meant, for messages
// Imports: like all of channel/, only ../rules.ts, node built-ins and the parser dependency
// (fast-xml-parser) — never resources/, drivers/ or server/. definition/ does not use node
// built-ins either, so the site can bundle it for any runtime.

import type { DefinitionProblem, ParseResult } from './types.ts';
import { checkDefinition } from './definition/checker.ts';
import { readXml } from './definition/xml-reader.ts';

export { DEFINITION_FORMAT_VERSION, type JsonSchema } from './definition/elements.ts';
export { MAX_DEFINITION_BYTES } from './definition/xml-reader.ts';
export { serializeApplianceDefinition } from './definition/serializer.ts';
export { definitionJsonSchema } from './definition/json-schema.ts';
export { definitionXsd } from './definition/xsd.ts';

// Problems are found in the table's order; a publisher reads them top to bottom.
function byLine(problems: DefinitionProblem[]): DefinitionProblem[] {
  return problems
    .map((p, i) => ({ p, i }))
    .sort((a, b) => (a.p.line ?? 0) - (b.p.line ?? 0) || a.i - b.i)
    .map(({ p }) => p);
}

/**
 * Parses and validates an appliance definition, collecting every problem rather than stopping at
 * the first. `source` names the document in messages about the document as a whole.
 */
export function parseApplianceDefinition(xml: string, source?: string): ParseResult {
  const read = readXml(xml, source ?? 'the definition');
  if (!read.ok) return { ok: false, problems: byLine(read.problems) };
  const checked = checkDefinition(read.roots);
  const problems = [...read.problems, ...checked.problems];
  if (problems.length > 0 || checked.definition === null) return { ok: false, problems: byLine(problems) };
  return { ok: true, definition: checked.definition };
}

/** One line per problem, `file:line: path: message`, as compilers print them. */
export function formatProblems(problems: DefinitionProblem[], source?: string): string {
  const file = source ?? '<definition>';
  return problems.map((p) => `${file}${p.line !== null ? `:${p.line}` : ''}: ${p.path}: ${p.message}`).join('\n');
}
